"""The sweep's table and figures: each ablation's metrics against its swept parameter, over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from benchmarks.compare import REFERENCE
from benchmarks.figures import save_figure
from benchmarks.sweep_grid import Ablation, GridPoint, SweepConfig
from benchmarks.sweep_model import ModelBackbone

SHORT = {"seam_jump_ratio": "seam-jump", "mirror_correlation": "mirror", "repetition": "repetition",
         "autocorrelation_error": "acf-error", "frechet_distance": "frechet", "velocity_jump": "vel-jump",
         "reversals_per_seam": "reversals", "speed_inside": "speed", "frame_evals": "evals/frame",
         "backward_evals": "bwd/frame"}  # fmt: skip
PLOTTED = ("seam_jump_ratio", "mirror_correlation", "repetition")  # continuity and looping
PIXEL_PLOTTED = ("velocity_jump", "reversals_per_seam")  # the same in pixels (model backbone)
LABELS = {"prompt_frames": "M (prompt frames)", "alpha": "alpha (PNS)", "beta": "beta (DSG)"}


def by_point(rows: list[dict[str, Any]]) -> dict[GridPoint, dict[str, Any]]:
    """Rows keyed by their point (`GridPoint.of`), as `series` looks them up."""
    return {GridPoint.of(row): row for row in rows}


def series(by_key: dict[GridPoint, dict], config: SweepConfig, ablation: Ablation, template: str) -> dict:
    """metric -> array (values, seeds) of `template` along the ablation (rows looked up by point)."""
    out = {metric: np.empty((len(ablation.values), len(config.seeds))) for metric in config.metrics}
    for i, value in enumerate(ablation.values):
        for k, seed in enumerate(config.seeds):
            point = GridPoint.at(template, **config.defaults(**{ablation.parameter: value}), seed=seed)
            row = by_key[point]
            for metric in config.metrics:
                out[metric][i, k] = row[metric]
    return out


def _fixed(config: SweepConfig, swept: str | None = None) -> str:
    """The parameters held at their defaults, as text: "M=4, alpha=4"."""
    fixed = {k: v for k, v in config.defaults().items() if k != swept}
    return ", ".join(f"{'M' if k == 'prompt_frames' else k}={v:g}" for k, v in fixed.items())


def format_table(rows: list[dict[str, Any]], config: SweepConfig) -> str:
    """Means over seeds, one block per ablation (the reference process first), then the extras."""
    by_key, metrics = by_point(rows), config.metrics
    head = "".join(f"{SHORT[m]:>12}" for m in metrics)
    lines = []
    for ablation in config.ablations:
        lines += [f"{ablation.parameter} swept ({_fixed(config, ablation.parameter)}); mean over "
                  f"{len(config.seeds)} seeds x {config.backbone.samples} videos",
                  f"{'template':<28}{ablation.parameter:>14}{head}"]  # fmt: skip
        for template in (REFERENCE, *ablation.templates):
            means = {m: v.mean(axis=1) for m, v in series(by_key, config, ablation, template).items()}
            for i, value in enumerate(ablation.values):
                cells = "".join(f"{means[m][i]:>12.4g}" for m in metrics)
                lines.append(f"{template:<28}{value:>14g}{cells}")
        lines.append("")
    if config.extra_combinations:
        lines += [f"extra combinations ({_fixed(config)})", f"{'combination':<42}{head}"]
        for combination, means in extra_means(rows, config).items():
            lines.append(f"{combination:<42}" + "".join(f"{means[m]:>12.4g}" for m in metrics))
    return "\n".join(lines)


def interval(per_seed: np.ndarray) -> np.ndarray:
    """Half-widths of the 95% intervals of the means over the last axis (Student's t with n - 1 degrees
    of freedom); nan with one seed."""
    n = per_seed.shape[-1]
    if n < 2:
        return np.full(per_seed.shape[:-1], np.nan)
    return stats.t.ppf(0.975, n - 1) * per_seed.std(axis=-1, ddof=1) / np.sqrt(n)


def default_point_intervals(
    rows: list[dict[str, Any]], config: SweepConfig, templates: tuple[str, ...], metrics: tuple[str, ...]
) -> dict[str, tuple[str, dict[str, tuple[float, float]]]]:
    """template -> (combination, metric -> (mean over seeds, 95% half-width)) at the default point, for
    each of `templates` the sweep has there at every seed (the others left out)."""
    by_key, out = by_point(rows), {}
    for template in templates:
        points = [GridPoint.at(template, **config.defaults(), seed=seed) for seed in config.seeds]
        if not all(point in by_key for point in points):
            continue
        found = [by_key[point] for point in points]
        values = np.array([[r[m] for r in found] for m in metrics], dtype=np.float64)  # (metrics, seeds)
        stats_of = {
            m: (float(v.mean()), float(w)) for m, v, w in zip(metrics, values, interval(values), strict=True)
        }
        out[template] = (found[0]["combination"], stats_of)
    return out


def extra_means(rows: list[dict[str, Any]], config: SweepConfig) -> dict[str, dict[str, float]]:
    """combination -> metric -> mean over seeds, for every extra combination (at the default point)."""
    found = default_point_intervals(rows, config, config.extra_combinations, config.metrics)
    return {name: {m: mean for m, (mean, _) in values.items()} for name, values in found.values()}


def backbone_name(config: SweepConfig) -> str:
    """The backbone in a few words, for titles."""
    b = config.backbone
    if isinstance(b, ModelBackbone):
        return f"VidRD {Path(b.model).name}, guidance {b.guidance:g}, N={b.num_frames}, DDIM {b.steps}"
    return f"Gaussian-process backbone, DDIM {b.steps}"


def plot_ablation(rows: list[dict[str, Any]], config: SweepConfig, ablation: Ablation, path) -> None:
    """Continuity and looping against the swept parameter: mean over seeds, min-max band, reference dashed."""
    by_key = by_point(rows)
    x = np.asarray(ablation.values, dtype=float)
    plotted = (*PLOTTED, *(m for m in PIXEL_PLOTTED if m in config.metrics))
    fig, axes = plt.subplots(1, len(plotted), figsize=(5 * len(plotted), 4.2))
    reference = series(by_key, config, ablation, REFERENCE)
    for template in ablation.templates:
        values = series(by_key, config, ablation, template)
        for ax, metric in zip(axes, plotted, strict=True):
            (line,) = ax.plot(x, values[metric].mean(axis=1), marker="o", label=template)
            ax.fill_between(x, values[metric].min(axis=1), values[metric].max(axis=1),
                            color=line.get_color(), alpha=0.2)  # fmt: skip
    for ax, metric in zip(axes, plotted, strict=True):
        ref = reference[metric].mean(axis=1)
        if np.allclose(ref, ref[0], rtol=0, atol=1e-12):  # the same at every value: a horizontal line
            ax.axhline(ref[0], color="black", linestyle="--", label=REFERENCE)
        else:  # mirror correlation pools offsets j >= M, so its reference moves with M
            ax.plot(x, ref, color="black", linestyle="--", label=REFERENCE)
        if metric == "seam_jump_ratio":  # from a duplicated frame (~0) to a cut (>> 1)
            ax.set_yscale("log")
        ax.set_xlabel(LABELS[ablation.parameter])
        ax.set_title(metric)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{ablation.parameter} ablation ({_fixed(config, ablation.parameter)}), "
                 f"{backbone_name(config)}; mean and min-max over {len(config.seeds)} seeds x "
                 f"{config.backbone.samples} videos")  # fmt: skip
    save_figure(fig, path)


def plot_ablations(rows: list[dict[str, Any]], config: SweepConfig, out, prefix: str = "sweep") -> list[Path]:
    """One `prefix`_<parameter>.png per ablation in `out`."""
    paths = [Path(out) / f"{prefix}_{ablation.parameter}.png" for ablation in config.ablations]
    for ablation, path in zip(config.ablations, paths, strict=True):
        plot_ablation(rows, config, ablation, path)
    return paths
