"""`vidrd generate --compare`: the same caption and seed under the paper's composition, independent clips and
the chosen composition, side by side, with the caption's true long videos as the reference.

Each composition is a full `vidrd generate` run into `--out/<name>/` (video, contact sheet, metrics.json).
Then `--out/compare.png` shows, one row per run and one for a true video of the caption, the frames around
every seam (`SEAM_WINDOW` before and after, the first frame after the seam framed in red), and
`--out/compare.json` holds the table that is printed: per run its velocity jump at the seams, direction
reversals per seam, speed inside clips, mirror correlation (looping), temporal quality and subject
consistency, beside the true videos' values. The two files are replaced together or not at all.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.document import number
from benchmarks.number_lists import json_safe
from models.contact_sheet import CELL_RGB, SEAM_RGB
from models.data.long_world import WorldConfig, render_world, spec_for_caption
from models.files import atomic_files
from samplers import LongVideoSampler
from samplers.registry import PAPER, parse_strategies

__all__ = ["COMPARED", "SEAM_WINDOW", "SeamFrames", "compare_jobs", "compare_rows", "run_compare",
           "table_lines"]  # fmt: skip

COMPARED = {"independent": "independent", "paper": PAPER}  # beside the job's own --strategies
SEAM_WINDOW = 2  # frames shown on each side of a seam


class SeamFrames:
    """A stream that keeps, for every seam, the last `window` frames before it and the first after it."""

    def __init__(self, window: int = SEAM_WINDOW) -> None:
        self.window = window
        self.seams: list[tuple[np.ndarray, np.ndarray]] = []  # (frames before, frames after) per seam
        self._tail: np.ndarray | None = None

    def update(self, frames: np.ndarray, start: int) -> None:
        if self._tail is not None:
            self.seams.append((self._tail, frames[: self.window].copy()))
        self._tail = frames[-self.window :].copy()

    def strip(self) -> tuple[np.ndarray, list[int]]:
        """The kept frames seam after seam, (n, H, W, 3), and the positions of each first frame after."""
        frames, firsts = [], []
        for before, after in self.seams:
            firsts.append(sum(map(len, frames)) + len(before))
            frames += [before, after]
        return np.concatenate(frames), firsts


def compare_jobs(job) -> dict[str, Any]:
    """{name: GenerateJob}: `COMPARED` (each with the prompt-frame rule of its own strategies) and the job
    itself (named by its --strategies, its sampler and prompt-frame choice as given; run once if it is one
    of `COMPARED`), each into its own sub-folder of --out, all with the job's seed and settings. Every
    composition is checked against the clip here, before any work."""
    if job.clips < 2:
        raise ValueError(f"clips must be >= 2 with --compare (it compares seams); got {job.clips}")
    jobs = {}
    for name, text in COMPARED.items():
        if text == job.strategies:  # the job's own composition runs once, under this name
            jobs[name] = dataclasses.replace(job, out=job.out / name)
            continue
        sampler = LongVideoSampler(parse_strategies(text), job.prompt_frames, None, progress=job.progress)
        if job.frames is not None:
            sampler.check_clip(job.frames)
        jobs[name] = dataclasses.replace(job, strategies=text, sampler=sampler, out=job.out / name,
                                         drop_prompt_frames=sampler.drop_prompt_frames)  # fmt: skip
    if job.strategies not in COMPARED.values():
        folder = job.strategies.replace(":", "-").replace(",", "+")
        jobs[job.strategies] = dataclasses.replace(job, out=job.out / folder)
    return jobs


def _row(name: str, metrics: dict) -> dict[str, Any]:
    pixel, latent = metrics["pixel_metrics"], metrics["latent_metrics"]
    quality = metrics["temporal_quality"] or {}
    true = (metrics.get("true_videos") or {}).get("pixel_metrics", {})
    return {
        "run": name,
        "velocity_jump": pixel["mean_velocity_jump"],
        "true_velocity_jump": true.get("mean_velocity_jump"),  # true videos cut at this run's starts
        "reversals_per_seam": pixel["reversals_per_seam"],
        "true_reversals_per_seam": true.get("reversals_per_seam"),
        "speed_inside": pixel["mean_speed_inside"],
        "mirror_correlation": latent["mirror_correlation"],
        "temporal_flickering": quality.get("temporal_flickering"),
        "motion_smoothness": quality.get("motion_smoothness"),
        "subject_consistency": (metrics.get("subject_consistency") or {}).get("value"),
    }


def compare_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The table: one row per run, each beside the true videos of the caption cut at that run's own clip
    starts (strategies that drop prompt frames cut elsewhere); then the true videos' own row where every
    run has the same starts."""
    rows = [_row(name, result.metrics) for name, result in results.items()]
    metrics = [result.metrics for result in results.values()]
    true = metrics[0].get("true_videos")
    if true is None or any(m["clip_starts"] != metrics[0]["clip_starts"] for m in metrics):
        return rows
    pixel, quality = true["pixel_metrics"], true["temporal_quality"]
    rows.append(dict.fromkeys(rows[0]) | {  # the columns a true video has; the others stay None
        "run": f"true videos ({true['videos']})", "velocity_jump": pixel["mean_velocity_jump"],
        "reversals_per_seam": pixel["reversals_per_seam"], "speed_inside": pixel["mean_speed_inside"],
        "temporal_flickering": quality.get("temporal_flickering"),
        "motion_smoothness": quality.get("motion_smoothness"),
    })  # fmt: skip
    return rows


def _true_strip(caption: str, length: int, starts: list[int], seed: int):
    config = WorldConfig()
    spec = spec_for_caption(caption, config, torch.Generator().manual_seed(seed))
    video = render_world(spec, config, 0, length)
    seams = SeamFrames()
    for a, b in zip(starts, [*starts[1:], length], strict=True):
        seams.update(video[a:b], a)
    return seams.strip()


def _sheet(strips: dict[str, tuple[np.ndarray, list[int]]], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pad, names = 2, list(strips)
    n, h, w = strips[names[0]][0].shape[:3]
    grid = np.full((len(names), n, h + 2 * pad, w + 2 * pad, 3), 255, dtype=np.uint8)
    for r, name in enumerate(names):
        frames, firsts = strips[name]
        grid[r] = CELL_RGB
        grid[r, firsts] = SEAM_RGB
        grid[r, :, pad : pad + h, pad : pad + w] = frames
    sheet = grid.transpose(0, 2, 1, 3, 4).reshape(len(names) * (h + 2 * pad), n * (w + 2 * pad), 3)
    fig = Figure(figsize=(1.6 + 0.35 * n, 0.9 + 0.5 * len(names)), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(sheet, interpolation="nearest")
    ax.set_yticks([(r + 0.5) * (h + 2 * pad) - 0.5 for r in range(len(names))])
    ax.set_yticklabels(names, fontsize=6)
    ax.set_xticks([])
    ax.set_xlabel(f"{SEAM_WINDOW} frames before and after every seam (red: the first after it)", fontsize=6)
    ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")


def run_compare(job, jobs: dict[str, Any], generate) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Every run of `jobs` (`compare_jobs(job)`) through `generate(job, extra_streams)`, then compare.png
    and compare.json (together). Returns the table and the two paths."""
    results, strips = {}, {}
    for name, run in jobs.items():
        seams = SeamFrames()
        results[name] = generate(run, (seams,))
        strips[name] = seams.strip()
    rows = compare_rows(results)
    metrics = next(iter(results.values())).metrics
    true = None
    if metrics.get("true_videos") is not None:  # the first run's starts (the sheet shows seams only)
        true = _true_strip(job.prompts[0], metrics["num_frames"], metrics["clip_starts"], job.seed)
    paths = {"sheet": job.out / "compare.png", "table": job.out / "compare.json"}
    with atomic_files(paths) as tmp:
        _sheet({**strips, **({"true video": true} if true is not None else {})}, tmp["sheet"],
               f"{job.prompt}  [seed {job.seed}, {job.clips} clips]")  # fmt: skip
        tmp["table"].write_text(json.dumps(json_safe(rows), indent=2) + "\n", encoding="utf-8")
    return rows, paths


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The printed table: one line per run."""
    keys = [k for k in rows[0] if k != "run"]
    width = max(len(r["run"]) for r in rows)
    head = f"{'run':<{width}}  " + "  ".join(f"{k:>22}" for k in keys)

    def cell(value) -> str:
        return f"{number(value):>22}"

    return [head, *(f"{r['run']:<{width}}  " + "  ".join(cell(r[k]) for k in keys) for r in rows)]


