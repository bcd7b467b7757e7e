"""The grids of the ablation sweeps (the paper's Figure 6): grid points, ablations, the sweep's config
and the default grids of the two backbones. `benchmarks.sweep` runs them, `benchmarks.sweep_report`
tabulates and plots their rows; both import this module, and it neither of them.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from benchmarks.compare import (
    GAP_CLOSING,
    METRICS,
    PEER_COMBINATIONS,
    REFERENCE,
    CompareConfig,
    check_combination,
)
from benchmarks.cost import COST
from benchmarks.sweep_model import PIXEL_METRICS, ModelBackbone
from samplers.validation import check_int, check_real

# REFERENCE (compare's) is the template of the points that score true videos of the process.
PAPER_TEMPLATE = "fnr,pns:{alpha},dsg:{beta}"  # the paper's composition, at any (alpha, beta)
PARAMETERS = ("prompt_frames", "alpha", "beta")  # what an ablation can sweep
FIELDS = ("point", "combination", "template", "prompt_frames", "alpha", "beta", "seed", "frames")


def placeholders(template: str) -> set[str]:
    """The {names} of a template; ValueError unless they are among {alpha} and {beta}."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ValueError(f"template {template!r} is not a valid format string: {error}") from error
    if not names <= {"alpha", "beta"}:
        raise ValueError(f"template {template!r} may use only {{alpha}} and {{beta}}; got {sorted(names)}")
    return names


@dataclass(frozen=True)
class GridPoint:
    """One computation of the sweep; `GridPoint.at` drops the parameters that a template ignores."""

    template: str  # strategies with {alpha}/{beta} placeholders, or REFERENCE
    prompt_frames: int  # M
    alpha: float | None  # fills {alpha}; None exactly when the template has no {alpha}
    beta: float | None  # fills {beta}; None exactly when the template has no {beta}
    seed: int  # the point's own seed: its sampler noise and reference videos derive from it alone

    def __post_init__(self) -> None:
        check_int("prompt_frames", self.prompt_frames, 1)
        check_int("seed", self.seed, 0)
        used = placeholders(self.template)
        for name, high in (("alpha", sys.float_info.max), ("beta", 1.0)):  # alpha: any finite weight
            value = getattr(self, name)
            if (name in used) != (value is not None):
                raise ValueError(
                    f"{name} must be given exactly when template {self.template!r} has {{{name}}}; "
                    f"got {value!r}"
                )
            if value is not None:  # stored as a float, so that 4 and 4.0 fill the template alike
                object.__setattr__(self, name, check_real(name, value, 0.0, high))

    @classmethod
    def at(cls, template: str, prompt_frames: int, alpha: float, beta: float, seed: int) -> GridPoint:
        used = placeholders(template)
        return cls(template, prompt_frames, alpha if "alpha" in used else None,
                   beta if "beta" in used else None, seed)  # fmt: skip

    @classmethod
    def of(cls, row: dict[str, Any]) -> GridPoint:
        """The point a row was computed at (a row of `compute`, or one read back from sweep.json)."""
        return cls(*(row[field.name] for field in fields(cls)))

    @property
    def combination(self) -> str:
        return self.template.format(alpha=self.alpha, beta=self.beta)


@dataclass(frozen=True)
class Ablation:
    """One panel group of Figure 6: `parameter` swept, the others at the sweep's defaults."""

    parameter: str  # "prompt_frames", "alpha" or "beta"
    values: tuple[float, ...]  # its values, strictly increasing (the plots' x axis)
    templates: tuple[str, ...]  # combinations, one line each in the plots

    def __post_init__(self) -> None:
        if self.parameter not in PARAMETERS:
            raise ValueError(f"parameter must be one of {PARAMETERS}; got {self.parameter!r}")
        if not self.values or not self.templates:
            raise ValueError(
                f"an ablation needs values and templates; got {self.values!r} and {self.templates!r}"
            )
        if any(b <= a for a, b in zip(self.values, self.values[1:], strict=False)):
            raise ValueError(f"values must be strictly increasing; got {self.values!r}")


DEFAULT_ABLATIONS = (
    Ablation("prompt_frames", (1, 2, 3, 4, 6, 8), (PAPER_TEMPLATE, "fnr,pns:{alpha}")),
    Ablation("alpha", (0.0, 0.5, 1.0, 2.0, 4.0, 8.0), (PAPER_TEMPLATE,)),
    Ablation("beta", (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), (PAPER_TEMPLATE, "dsg:{beta}")),
)
# ---- EXTRA COMBINATIONS: templates scored at the default point only (one row per seed), no figure. ----
# The controls and compare's peer strategies. They are sampled with LongVideoSampler's default for dropping
# prompt frames (frames a strategy duplicates, e.g. the overlap's).
EXTRA_COMBINATIONS = ("independent", "fnr", *PEER_COMBINATIONS)
BACKBONE = CompareConfig(samples=32)  # compare's setting (DDIM 50, N=16, l=3, 4 clips), fewer samples


@dataclass(frozen=True)
class SweepConfig:
    """The grid (ablations and extras at the defaults, each once per seed) and the backbone it runs on."""

    ablations: tuple[Ablation, ...] = DEFAULT_ABLATIONS  # the figures; their points form the grid
    extra_combinations: tuple[str, ...] = EXTRA_COMBINATIONS  # templates at the default point only
    prompt_frames: int = 4  # M wherever it is not swept (the official config)
    alpha: float = 4.0  # PNS weight wherever it is not swept
    beta: float = 0.4  # DSG share of steps wherever it is not swept
    seeds: tuple[int, ...] = (0, 1, 2)  # every point is computed once per seed
    backbone: CompareConfig | ModelBackbone = BACKBONE  # analytic (N, K, T, l, ...) or a saved VidRD
    device: str = "cpu"  # where sampling runs ("cuda" becomes cuda:LOCAL_RANK under torchrun)

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one; got {self.seeds!r}")
        if not self.ablations and not self.extra_combinations:
            raise ValueError(
                "a sweep needs points: at least one of ablations and extra_combinations; got "
                f"ablations={self.ablations!r}, extra_combinations={self.extra_combinations!r}"
            )
        for point in self.points():  # every template, value and seed checked before any work
            check_int("prompt_frames", point.prompt_frames, 1, self.backbone.num_frames - 1)
            if point.template != REFERENCE:
                parsed = check_combination(point.combination)
                if hasattr(parsed, "check_clip"):  # a whole-video method with initializers' noise
                    parsed.check_clip(self.backbone.num_frames, point.prompt_frames)

    @property
    def metrics(self) -> tuple[str, ...]:
        """What a row measures: compare.METRICS, the pixel metrics on the model backbone, then the cost."""
        pixels = PIXEL_METRICS if isinstance(self.backbone, ModelBackbone) else ()
        return (*METRICS, *pixels, *COST)

    def defaults(self, **swept: float) -> dict[str, float]:
        return {"prompt_frames": self.prompt_frames, "alpha": self.alpha, "beta": self.beta, **swept}

    def lines(self) -> Iterator[tuple[str, dict[str, float]]]:
        """(template, parameters) of every ablation value and extra combination, in table order."""
        for ablation in self.ablations:
            for template in ablation.templates:
                for value in ablation.values:
                    yield template, self.defaults(**{ablation.parameter: value})
        for template in self.extra_combinations:
            yield template, self.defaults()

    def points(self) -> list[GridPoint]:
        """Every distinct point once: the reference process at each M, then the lines; seeds innermost."""
        lines = list(self.lines())
        lines = [(REFERENCE, self.defaults(prompt_frames=p["prompt_frames"])) for _, p in lines] + lines
        found = (GridPoint.at(template, **p, seed=seed) for template, p in lines for seed in self.seeds)
        return list(dict.fromkeys(found))


# ---- THE MODEL BACKBONE'S GRID: Figure 6 at N=8 (the bundled model's clip), 25 DDIM steps, guidance 7.5.
# M=2 by default (the paper's 4 of 16 frames, as `vidrd generate`).
MODEL_ABLATIONS = (
    Ablation("prompt_frames", (1, 2, 4, 6), (PAPER_TEMPLATE,)),
    Ablation("alpha", (0.0, 1.0, 4.0, 8.0), (PAPER_TEMPLATE,)),
    Ablation("beta", (0.0, 0.4, 1.0), (PAPER_TEMPLATE, "dsg:{beta}")),
)


# the model grid's controls, the gap-closer, and methods that are not clip by clip (FIFO with one and four
# partitions: 8 and 32 steps of its own; windows with pyramid fusion)
MODEL_EXTRAS = ("independent", "overlap", GAP_CLOSING, "windows:pyramid", "fifo:1", "fifo:4")


MODEL_SWEEP = SweepConfig(MODEL_ABLATIONS, MODEL_EXTRAS, prompt_frames=2, seeds=(0, 1, 2),
                          backbone=ModelBackbone())  # fmt: skip
PRESETS = {"analytic": SweepConfig(), "model": MODEL_SWEEP}  # --backbone: the default grid of each


