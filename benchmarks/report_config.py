"""What the benchmark report runs: its configuration, where it writes, and the sweep files it may reuse
(`benchmarks.report` builds the page, `benchmarks.report_sections` renders its sections)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks import perf, seams, sweep, sweep_grid, tradeoff
from benchmarks.compare import CompareConfig
from benchmarks.model_continuity import check_counts
from benchmarks.sweep_model import ModelBackbone
from models.bundled import missing_files
from samplers.validation import check_int

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "report"
PAGES = ("report.md", "report.html")  # moved into --out last, once every file they show is there
# The names of what a report writes (patterns): files of --out that match one and that a run did not
# write are stale and removed; every other file of --out is left alone.
OWN_NAMES = (*PAGES, "compare.png", "compare_flow.png", "sweep.json", "sweep_flow.json", "sweep_*.png",
             "sweep_model.json", "continuity.json", "tradeoff.csv", "tradeoff_*.png",
             "seams.png")  # fmt: skip
TITLE = "Reuse & Diffuse kit: benchmark report"
FLOW_SCHEDULERS = ("flow-euler", "unipc-flow")  # compare.SCHEDULERS' rectified-flow ones
REPORT_PATHSPEC = f":(exclude){DEFAULT_OUT.relative_to(ROOT).as_posix()}"  # the committed report itself


@dataclass(frozen=True)
class PerfConfig:
    backbones: tuple[str, ...] = tuple(perf.BACKBONES)  # perf's backbones, each measured
    clips: int = 2  # clips per timed run
    steps: int = 10  # DDIM steps per clip
    repeats: int = 3  # alternated repeats of sampler and bare loop (medians)

    def __post_init__(self) -> None:
        unknown = [b for b in self.backbones if b not in perf.BACKBONES]
        if unknown or not self.backbones:
            raise ValueError(f"backbones must be some of {list(perf.BACKBONES)}; got {self.backbones!r}")
        for name in ("clips", "steps", "repeats"):
            check_int(name, getattr(self, name), 1)


# Section 2's sweep: the default ablations only. Section 1 samples the strategy combinations, which the
# sweep's default extras would sample a second time (on other seeds: other numbers for the same names).
SWEEP = sweep_grid.SweepConfig(extra_combinations=())


@dataclass(frozen=True)
class ReportConfig:
    sweep: sweep_grid.SweepConfig = SWEEP  # the Figure-6 sweep, run here unless sweep_json is set
    sweep_json: Path | None = None  # a sweep.json (benchmarks.sweep) to read instead of running the sweep
    sweep_model_json: Path | None = None  # a sweep.json of `benchmarks.sweep --backbone model`: section 2b
    continuity_json: Path | None = None  # the --out JSON of `benchmarks.model_continuity`: section 2c
    tradeoff: tradeoff.TradeoffConfig = field(default_factory=tradeoff.TradeoffConfig)  # sections 1 and 3
    seams: seams.SeamsConfig = field(default_factory=seams.SeamsConfig)  # section 4
    perf: PerfConfig = field(default_factory=PerfConfig)  # section 5
    flow_scheduler: str = "flow-euler"  # section 6: the main table and the claims under rectified flow
    command: str = "python -m benchmarks.report"  # the command line quoted at the top of the page

    def __post_init__(self) -> None:
        if self.flow_scheduler not in FLOW_SCHEDULERS:
            raise ValueError(f"flow_scheduler must be one of {FLOW_SCHEDULERS}; got {self.flow_scheduler!r}")

    @property
    def flow_backbone(self) -> CompareConfig:
        """Section 1's setting under the flow scheduler (section 6)."""
        return replace(self.tradeoff.backbone, scheduler=self.flow_scheduler)

    def check_inputs(self, out: Path) -> None:
        """The files this report reads exist and `out` can be a folder (the configs checked the rest)."""
        if out.exists() and not out.is_dir():
            raise ValueError(f"out must be a folder (or a path where one can be made); got {str(out)!r}")
        missing = missing_files(self.seams.model)
        if missing:
            raise ValueError(f"model must be a saved VidRD pipeline; {missing[0]} is missing")
        if self.sweep_json is not None:
            read_sweep("sweep_json", self.sweep_json, CompareConfig)
        if self.sweep_model_json is not None:
            read_sweep("sweep_model_json", self.sweep_model_json, ModelBackbone)
        if self.continuity_json is not None:
            read_continuity(self.continuity_json)


CONTINUITY_KEYS = ("model", "steps", "prompt_frames", "captions", "seeds", "clips", "table")
CONTINUITY_METRICS = (
    "jump_excess",
    "reversal_excess",
    "mirror_correlation",
)  # each row's, as section 2c shows


def read_continuity(path: Path) -> dict[str, Any]:
    """The JSON `benchmarks.model_continuity --out` writes; ValueError naming the file unless it is one."""
    wanted = f"continuity_json must be the --out file of benchmarks.model_continuity; got {str(path)!r}"
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{wanted} ({type(error).__name__}: {error})") from error
    missing = [key for key in CONTINUITY_KEYS if not isinstance(found, dict) or key not in found]
    if missing or not isinstance(found["table"], dict) or not found["table"]:
        raise ValueError(f"{wanted} (it lacks {missing or ['table entries']})")
    captions = found["captions"]
    if not (isinstance(captions, list) and all(isinstance(c, str) for c in captions)):
        raise ValueError(f"{wanted} (its captions must be a list of strings; got {captions!r})")
    counts = {key: found[key] for key in ("steps", "prompt_frames", "seeds", "clips")}
    try:  # the ranges the study itself runs, so that its regenerate command runs
        check_counts({**counts, "captions": len(captions)})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{wanted} (its {error})") from error
    for name, row in found["table"].items():
        for metric in CONTINUITY_METRICS:
            cell = row.get(metric) if isinstance(row, dict) else None
            if not (
                isinstance(cell, dict)
                and all(isinstance(cell.get(k), (int, float)) for k in ("mean", "ci95"))
            ):
                raise ValueError(f"{wanted} (its row {name!r} lacks {metric} with a mean and a ci95)")
    guidance = found.get("guidance")  # absent from files written before --guidance: the bundle's own
    if guidance is not None and not (isinstance(guidance, (int, float)) and 0 <= guidance < math.inf):
        raise ValueError(f"{wanted} (its guidance must be a finite number >= 0; got {guidance!r})")
    return found


BACKBONE_FLAGS = {CompareConfig: "--backbone analytic", ModelBackbone: "--backbone model"}


def read_sweep(name: str, path: Path, backbone: type) -> tuple[list[dict], sweep_grid.SweepConfig]:
    """The rows and config of the sweep.json at `path`; ValueError naming `name` unless it is one whose
    backbone is a `backbone` (CompareConfig: `benchmarks.sweep`; ModelBackbone: `--backbone model`)."""
    wanted = f"{name} must be a sweep.json of {BACKBONE_FLAGS[backbone]}; got {str(path)!r}"
    try:
        rows, config = sweep.read_json(path)
    except (OSError, ValueError, TypeError, KeyError) as error:  # missing, not JSON, or not a sweep's
        raise ValueError(f"{wanted} ({type(error).__name__}: {error})") from error
    if not isinstance(config.backbone, backbone):
        raise ValueError(wanted)
    return rows, config
