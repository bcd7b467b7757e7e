"""The reconstruction-guidance weight's trade-off on the analytic backbone: seam jump vs long-lag statistics.

    python -m benchmarks.tradeoff --out out/tradeoff

"overlap,recon:w" at every weight w, beside compare's default combinations and the peer strategies, all
sampled by `benchmarks.compare.run` in compare's setting (DDIM 50, N=16, M=4, lengthscale 3, 4 clips)
with 64 videos each and one seed (common random numbers across combinations). At w = 0 the curve is the
overlap alone ("overlap,recon:0" samples the same bits), sampled once. A small weight leaves the
overlap's jump at every seam; a large one over-smooths the seam (ratio < 1) and bends the autocorrelation.
The acceptance band: seam-jump ratio in [0.8, 1.25] and autocorrelation error < 0.05.
Writes tradeoff.csv, tradeoff_curve.png (the metrics against w) and tradeoff_scatter.png (seam-jump ratio
against autocorrelation error for every combination) to --out; prints the table and the best composition.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmarks import compare
from benchmarks.compare import (
    DEFAULT_COMBINATIONS,
    JOINT_COMBINATIONS,
    ORACLE,
    PAPER,
    PEER_COMBINATIONS,
    REFERENCE,
    CompareConfig,
)
from benchmarks.document import number
from benchmarks.figures import save_figure
from benchmarks.number_lists import format_numbers, parse_numbers
from models.threads import limit_threads
from samplers.validation import check_real

WEIGHTS = (0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 30.0, 50.0)  # a whole trajectory's (default 10)
OVERLAP = "overlap"  # the curve at w = 0 (recon:0 guides nothing)
CURVE = OVERLAP + ",recon:{weight:g}"  # the composition along the curve at w > 0
CURVE_LABEL = "overlap,recon:w"
SEAM_BAND = (0.8, 1.25)  # acceptable seam-jump ratios (1 is ideal)
ACF_LIMIT = 0.05  # acceptable autocorrelation error (strictly below)
PANELS = ("seam_jump_ratio", "autocorrelation_error", "mirror_correlation")  # the curve's metrics
FLOOR = 1e-3  # the scatter shows smaller seam-jump ratios (frozen seams) at this value


BACKBONE = CompareConfig(samples=64)  # compare's setting (DDIM 50, N=16, M=4, l=3, 4 clips), fewer videos


@dataclass(frozen=True)
class TradeoffConfig:
    backbone: CompareConfig = BACKBONE  # where every combination is sampled
    weights: tuple[float, ...] = WEIGHTS  # reconstruction-guidance weights along the curve, increasing
    # the scatter's other points: the paper's, the peers', and the methods that are not clip by clip
    combinations: tuple[str, ...] = (*DEFAULT_COMBINATIONS, *PEER_COMBINATIONS, *JOINT_COMBINATIONS)

    def __post_init__(self) -> None:
        if not self.weights or any(b <= a for a, b in zip(self.weights, self.weights[1:], strict=False)):
            raise ValueError(f"weights must be a non-empty increasing sequence; got {self.weights!r}")
        for w in self.weights:
            check_real("weight", w, 0.0, sys.float_info.max)  # finite
        for name in self.combinations:  # every combination checked before any work
            compare.check_combination(name)

    def curve_names(self) -> list[str]:
        """The composition at each weight: the overlap alone at w = 0, which recon:0 equals bit for bit."""
        return [CURVE.format(weight=w) if w > 0 else OVERLAP for w in self.weights]


def run(config: TradeoffConfig, progress: bool = False) -> list[dict[str, Any]]:
    """compare.run's rows (the reference process first) for the combinations, then the curve's new names
(each distinct composition sampled once)."""
    names = dict.fromkeys([*config.combinations, *config.curve_names()])  # each distinct name once
    return compare.run(config.backbone, list(names), progress)


def in_band(row: dict[str, Any]) -> bool:
    low, high = SEAM_BAND
    return low <= row["seam_jump_ratio"] <= high and row["autocorrelation_error"] < ACF_LIMIT


def best(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The clip-by-clip composition in the band with the smallest autocorrelation error (the reference
    process, the oracle continuation and the methods that are not clip by clip excluded)."""
    found = [row for row in rows if row["strategies"] not in (REFERENCE, ORACLE)
             and not isinstance(compare.check_combination(row["strategies"]), compare.Joint)
             and in_band(row)]  # fmt: skip
    return min(found, key=lambda row: row["autocorrelation_error"], default=None)


def curve(rows: list[dict[str, Any]], config: TradeoffConfig) -> dict[str, np.ndarray]:
    """metric -> values along config.weights."""
    by_name = {row["strategies"]: row for row in rows}
    return {m: np.array([by_name[n][m] for n in config.curve_names()]) for m in compare.METRICS}


def describe_best(rows: list[dict[str, Any]], config: TradeoffConfig) -> str:
    """One paragraph: the best composition in the band, and where every other listed combination falls."""
    low, high = SEAM_BAND
    band = f"seam-jump ratio in [{low:g}, {high:g}] and autocorrelation error < {ACF_LIMIT:g}"
    winner = best(rows)
    lines = [
        f"**No composition meets {band}.**"
        if winner is None
        else f"**Best composition meeting {band}: `{winner['strategies']}`** (seam-jump ratio "
        f"{number(winner['seam_jump_ratio'])}, autocorrelation error "
        f"{number(winner['autocorrelation_error'])}, mirror correlation "
        f"{number(winner['mirror_correlation'])}; the smallest autocorrelation error in the band)."
    ]
    for row in rows:
        if row["strategies"] in config.combinations and row is not winner:
            verdict = "meets the band" if in_band(row) else "misses it"
            lines.append(
                f"`{row['strategies']}`: seam-jump ratio {number(row['seam_jump_ratio'])}, "
                f"autocorrelation error {number(row['autocorrelation_error'])} ({verdict})."
            )
    return " ".join(lines)


def _reference_lines(ax, rows: list[dict[str, Any]], metric: str) -> None:
    by_name = {row["strategies"]: row for row in rows}
    ax.axhline(by_name[REFERENCE][metric], color="black", linestyle="--", label=REFERENCE)
    if PAPER in by_name:
        ax.axhline(by_name[PAPER][metric], color="tab:red", linestyle=":", label=f"paper: {PAPER}")


def plot_curve(rows: list[dict[str, Any]], config: TradeoffConfig, path) -> None:
    """Seam-jump ratio, autocorrelation error and mirror correlation against the weight; the band shaded."""
    values, x = curve(rows, config), np.asarray(config.weights, dtype=float)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(15, 4.4))
    for ax, metric in zip(axes, PANELS, strict=True):
        ax.plot(x, values[metric], marker="o", color="tab:blue", label=CURVE_LABEL)
        _reference_lines(ax, rows, metric)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("reconstruction-guidance weight w")
        ax.set_title(metric)
    axes[0].axhspan(*SEAM_BAND, color="tab:green", alpha=0.2, label="acceptance band")
    axes[1].axhspan(0, ACF_LIMIT, color="tab:green", alpha=0.2, label="acceptance band")
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8)
    b = config.backbone
    fig.suptitle(
        f"overlap + reconstruction guidance, Gaussian-process backbone: DDIM {b.steps}, "
        f"N={b.num_frames}, M={b.prompt_frames}, l={b.lengthscale:g}, {b.num_clips} clips, "
        f"{b.samples} videos, seed {b.seed}"
    )
    save_figure(fig, path)


def plot_scatter(rows: list[dict[str, Any]], config: TradeoffConfig, path) -> None:
    """Every combination at (seam-jump ratio, autocorrelation error), log-log; the band as a green box."""
    fig, ax = plt.subplots(figsize=(11, 6.5))
    values = curve(rows, config)
    jumps, errors = np.maximum(values["seam_jump_ratio"], FLOOR), values["autocorrelation_error"]
    ax.plot(jumps, errors, marker="o", color="tab:blue", alpha=0.6, label=CURVE_LABEL)
    for w, x, y in zip(config.weights, jumps, errors, strict=True):
        ax.annotate(f"w={w:g}", (x, y), fontsize=7, xytext=(4, -9), textcoords="offset points")
    markers = iter("sDv^<>ph8")
    for k, row in enumerate(r for r in rows if r["strategies"] in (REFERENCE, ORACLE, *config.combinations)):
        name, jump = row["strategies"], row["seam_jump_ratio"]
        style = (
            {"marker": "*", "color": "black", "s": 120}
            if name == REFERENCE
            else {"marker": next(markers, "o"), "color": plt.get_cmap("tab10")((k + 1) % 10), "s": 45}
        )
        shown = f"{name}: {number(jump)}, {number(row['autocorrelation_error'])}"
        ax.scatter(max(jump, FLOOR), row["autocorrelation_error"], zorder=3, label=shown, **style)
    low, high = SEAM_BAND
    bottom = min(min(r["autocorrelation_error"] for r in rows) / 2, ACF_LIMIT / 10)
    ax.fill_between(
        [low, high],
        [ACF_LIMIT] * 2,
        [bottom] * 2,
        color="tab:green",
        alpha=0.2,
        label=f"acceptance: seam-jump in [{low:g}, {high:g}], acf error < {ACF_LIMIT:g}",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"seam-jump ratio (1 is ideal; values below {FLOOR:g} drawn at {FLOOR:g})")
    ax.set_ylabel("autocorrelation error")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="(seam-jump, acf error)")
    ax.set_title("continuity (seam-jump ratio) vs long-lag statistics (autocorrelation error)")
    save_figure(fig, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = TradeoffConfig()
    parser.add_argument("--out", default="out/tradeoff", help="folder for tradeoff.csv and the two plots")
    parser.add_argument("--weights", default=format_numbers(WEIGHTS), help="comma-separated")
    for field in ("samples", "steps", "seed"):
        parser.add_argument(f"--{field}", type=int, default=getattr(defaults.backbone, field))
    parser.add_argument("--progress", action="store_true", help="show tqdm progress bars")
    args = parser.parse_args(argv)
    try:
        weights = parse_numbers(args.weights)
    except ValueError as error:
        parser.error(f"--weights takes numbers: {error}")
    backbone = replace(defaults.backbone, samples=args.samples, steps=args.steps, seed=args.seed)
    config = TradeoffConfig(backbone=backbone, weights=weights)
    with limit_threads(1):  # BLAS threads only spin on a small machine
        rows = run(config, args.progress)
    print(compare.format_table(rows, backbone))
    print(describe_best(rows, config))
    compare.write_csv(rows, f"{args.out}/tradeoff.csv")
    plot_curve(rows, config, f"{args.out}/tradeoff_curve.png")
    plot_scatter(rows, config, f"{args.out}/tradeoff_scatter.png")
    print(f"wrote tradeoff.csv, tradeoff_curve.png and tradeoff_scatter.png to {args.out}")


if __name__ == "__main__":
    main()
