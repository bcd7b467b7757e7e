"""The paper's Figure-6 claims, checked on a sweep's rows: each a verdict and a paragraph with the numbers.

A trend claim holds when the mean over seeds moves the claimed way at every step along the ablation; the
flatness claim holds when the means stay within FLAT of each other. With two seeds or more a verdict is
also *resolved* or not, by paired 95% intervals (Student's t over the seeds of a difference taken seed by
seed: a seed's points share their random numbers, `paired`): a trend that holds is resolved when the last
point minus the first is beyond its interval the claimed way; one that does not, when some step goes
against the claim beyond its interval (each step tested alone, no correction for testing several);
flatness that holds, when every pair of points differs by at most FLAT even at its interval's far end;
flatness that does not, when some pair differs by more than FLAT even at its near end. Otherwise the
verdict stands on the means alone, within the noise (`label`). Nothing here is hard-coded to a result:
feed it other rows and the verdicts and the text follow them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.compare import REFERENCE
from benchmarks.document import number
from benchmarks.number_lists import format_numbers
from benchmarks.sweep_grid import PAPER_TEMPLATE, SweepConfig
from benchmarks.sweep_report import by_point, interval, series
from benchmarks.tradeoff import SEAM_BAND

FLAT = 0.05  # "hardly moves": the largest minus the smallest mean, at most this
SYMBOL = {"prompt_frames": "M", "alpha": "alpha", "beta": "beta"}
NAMES = {"seam_jump_ratio": "seam-jump ratio", "mirror_correlation": "mirror correlation (j >= M)",
         "velocity_jump": "velocity jump at the seams (px/frame)",
         "reversals_per_seam": "direction reversals per seam"}  # fmt: skip


@dataclass(frozen=True)
class Claim:
    statement: str  # what is checked, as a sentence
    holds: bool | None  # None: not measured (the sweep lacks that ablation or template)
    text: str  # one paragraph with the numbers
    resolved: bool | None = None  # the 95% intervals bear the verdict out; None: not measured or one seed


def label(claim: Claim) -> str:
    """The verdict in a few words: "holds", "does not hold", either "within the noise" (the intervals
    do not bear it out) or "on one seed" (no intervals), or "not measured"."""
    if claim.holds is None:
        return "not measured"
    word = "holds" if claim.holds else "does not hold"
    return {True: word, False: f"{word} within the noise", None: f"{word} on one seed"}[claim.resolved]


@dataclass(frozen=True)
class Check:
    statement: str  # the sentence of the claim
    parameter: str  # the ablation swept
    template: str  # the line along it
    metric: str  # what moves
    direction: int  # +1 rises, -1 falls, 0 hardly moves


CHECKS = (
    Check(
        "Seam-jump ratio falls as M rises (fnr,pns:alpha,dsg:beta)",
        "prompt_frames",
        PAPER_TEMPLATE,
        "seam_jump_ratio",
        -1,
    ),
    Check(
        "Seam-jump ratio falls as beta rises, with FNR (fnr,pns:alpha,dsg:beta)",
        "beta",
        PAPER_TEMPLATE,
        "seam_jump_ratio",
        -1,
    ),
    Check(
        "Seam-jump ratio falls as beta rises, without FNR (dsg:beta)",
        "beta",
        "dsg:{beta}",
        "seam_jump_ratio",
        -1,
    ),
    Check(
        "Mirror correlation rises with alpha (fnr,pns:alpha,dsg:beta)",
        "alpha",
        PAPER_TEMPLATE,
        "mirror_correlation",
        +1,
    ),
    Check(
        "Mirror correlation beyond the prompt frames hardly moves with M (fnr,pns:alpha,dsg:beta)",
        "prompt_frames",
        PAPER_TEMPLATE,
        "mirror_correlation",
        0,
    ),
)


# The same claims in pixels, for a sweep of the model backbone (benchmarks.sweep_model): looping shows as
# the motion reversing at a seam, continuity as a small velocity jump there.
PIXEL_CHECKS = (
    Check("Velocity jump at the seams falls as M rises (fnr,pns:alpha,dsg:beta)", "prompt_frames",
          PAPER_TEMPLATE, "velocity_jump", -1),
    Check("Direction reversals at the seams rise with M, 'severe looping' (fnr,pns:alpha,dsg:beta)",
          "prompt_frames", PAPER_TEMPLATE, "reversals_per_seam", +1),
    Check("Direction reversals at the seams rise with alpha (fnr,pns:alpha,dsg:beta)", "alpha",
          PAPER_TEMPLATE, "reversals_per_seam", +1),
    Check("Velocity jump at the seams falls as beta rises, with FNR (fnr,pns:alpha,dsg:beta)", "beta",
          PAPER_TEMPLATE, "velocity_jump", -1),
)  # fmt: skip
MODEL_CHECKS = (*CHECKS, *PIXEL_CHECKS)


def means(rows: list[dict[str, Any]], config: SweepConfig, parameter: str, template: str, metric: str):
    """(values, means over seeds, per-seed values (values, seeds)) of `metric` along the `parameter`
    ablation; None if the sweep lacks it."""
    ablation = next((a for a in config.ablations if a.parameter == parameter), None)
    if ablation is None or template not in (*ablation.templates, REFERENCE):
        return None
    per_seed = series(by_point(rows), config, ablation, template)[metric]
    return np.asarray(ablation.values, dtype=float), per_seed.mean(axis=1), per_seed


def paired(per_seed: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """(mean, 95% half-width) of point j minus point i over the seeds, seed by seed: a seed's points share
    their random numbers, so the differences are paired."""
    difference = per_seed[j] - per_seed[i]
    return float(difference.mean()), float(interval(difference))


def _flat_noise(per_seed: np.ndarray, holds: bool) -> tuple[bool, tuple[int, int]]:
    """(resolved, the pair that decides it): every pair's difference within FLAT even at its interval's
    far end (holds), or some pair's beyond FLAT even at its near end (does not)."""
    pairs = [(i, j) for i in range(len(per_seed)) for j in range(i + 1, len(per_seed))]
    found = {p: paired(per_seed, *p) for p in pairs}  # (mean, half-width) of each pair's difference
    if holds:
        far = {p: abs(m) + h for p, (m, h) in found.items()}
        worst = max(pairs, key=far.get)
        return far[worst] <= FLAT, worst
    near = {p: abs(m) - h for p, (m, h) in found.items()}
    best = max(pairs, key=near.get)
    return near[best] > FLAT, best


def _noise(per_seed: np.ndarray, direction: int, holds: bool, symbol: str, x: np.ndarray):
    """(resolved, text): whether the paired 95% intervals bear the verdict out (module docstring); None
    and no text with one seed."""
    n = per_seed.shape[1]
    if n < 2:
        return None, ""

    def shown(i: int, j: int) -> str:
        m, h = paired(per_seed, i, j)
        return f"{symbol}={x[j]:g} minus {symbol}={x[i]:g}: {number(m)} ± {number(h, '.2g')}"

    if direction == 0:
        resolved, pair = _flat_noise(per_seed, holds)
        decides = [pair]
    elif holds:
        decides = [(0, len(x) - 1)]
        m, h = paired(per_seed, *decides[0])
        resolved = direction * m > h
    else:
        steps = {(k, k + 1): paired(per_seed, k, k + 1) for k in range(len(x) - 1)}
        against = [p for p, (m, h) in steps.items() if -direction * m > h]
        resolved, decides = bool(against), against or list(steps)
    verdict = "bear the verdict out" if resolved else "do not bear it out: it stands within the noise"
    return bool(resolved), (f" Paired 95% intervals over the {n} seeds, "
                            f"{'; '.join(shown(*p) for p in decides)}: they {verdict}.")  # fmt: skip


def _flat_text(rows, config, spec: Check, x, y, seeds: str) -> tuple[bool, str]:
    symbol, name = SYMBOL[spec.parameter], NAMES[spec.metric]
    spread = float(y.max() - y.min())
    holds = spread <= FLAT
    reference = means(rows, config, spec.parameter, REFERENCE, spec.metric)[1]
    text = (
        f"{name} stays within [{number(y.min())}, {number(y.max())}] (range {number(spread)}; "
        f"'hardly moves' means a range <= {FLAT:g}) over {symbol} = {format_numbers(x, ', ')} "
        f"({seeds}), where the reference process has {number(reference.min())} to "
        f"{number(reference.max())}."
    )
    looping = y.min() > reference.max() + FLAT  # above the true process's at every M
    text += (
        " The paper's 'larger M, severe looping' does not show in this metric"
        + (": the looping is there at every M." if looping else ".")
        if holds
        else f" It moves by {number(spread)}, more than {FLAT:g}."
    )
    return holds, text


def _trend_text(spec: Check, x, y, seeds: str) -> tuple[bool, str]:
    symbol, name = SYMBOL[spec.parameter], NAMES[spec.metric]
    along = ", ".join(f"{number(v)} at {symbol}={p:g}" for p, v in zip(x, y, strict=True))
    wrong = [k for k, d in enumerate(np.diff(y)) if not d * spec.direction > 0]
    word = "rises" if spec.direction > 0 else "falls"
    text = f"{name}: {along} ({seeds})."
    if wrong:
        steps = ", ".join(f"{symbol}={x[k]:g} -> {x[k + 1]:g}" for k in wrong)
        text += f" It does not {word[:-1]} at {steps}."
    else:
        text += f" It {word} at every step."
    if spec.metric == "seam_jump_ratio" and np.all(y < SEAM_BAND[0]):
        text += (
            " Every value is below the acceptable seam-jump ratios (1 is ideal): falling further "
            "means a more frozen, duplicated seam, not a smoother one."
        )
    return not wrong, text


def check(rows: list[dict[str, Any]], config: SweepConfig, spec: Check) -> Claim:
    found = means(rows, config, spec.parameter, spec.template, spec.metric)
    if found is None:
        return Claim(
            spec.statement,
            None,
            f"**Not measured**: the sweep has no {spec.parameter} ablation of `{spec.template}`.",
        )
    x, y, per_seed = found
    seeds = f"mean over {len(config.seeds)} seed(s) x {config.backbone.samples} videos"
    if spec.direction == 0:
        holds, text = _flat_text(rows, config, spec, x, y, seeds)
    else:
        holds, text = _trend_text(spec, x, y, seeds)
    resolved, noise = _noise(per_seed, spec.direction, holds, SYMBOL[spec.parameter], x)
    verdict = "**Holds.**" if holds else "**Does not hold.**"
    if resolved is False:
        verdict = (
            "**Holds on the means, within the noise.**" if holds else "**Does not hold, within the noise.**"
        )
    return Claim(spec.statement, holds, f"{verdict} {text}{noise}", resolved)


def claims(rows: list[dict[str, Any]], config: SweepConfig, checks=CHECKS) -> list[Claim]:
    return [check(rows, config, spec) for spec in checks]
