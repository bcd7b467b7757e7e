"""The true long videos of a caption as the reference of every pixel metric (docs/DESIGN.md §5).

    reference = true_reference("a red circle bouncing around over black", length=64, clip_starts=[0, 8, ...])
    reference["pixel_metrics"]["mean_velocity_jump"]       # the same "seams", cut nowhere in truth
    reference["pixel_metrics"]["mean_velocity_change_inside"]   # how much true motion changes per frame

`count` long videos that the caption describes (`models.data.long_world.spec_for_caption`: its shapes,
motions and backdrop; sizes, speeds, starts drawn from a seeded generator) are rendered at the generated
video's length and scored with the same streamed metrics at the same clip starts: pixel metrics (shapes
found by saturation, `SHAPE_SATURATION`) and temporal quality. Each number is the mean over the videos
where it is defined, with its standard error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.data.long_world import WorldConfig, render_world, spec_for_caption
from samplers.validation import check_int

from .metrics import check_clip_starts
from .pixel_metrics import SHAPE_SATURATION, summary
from .temporal_quality import temporal_quality

__all__ = ["REFERENCE_VIDEOS", "mean_and_error", "true_reference"]

REFERENCE_VIDEOS = 16  # true videos per reference
_PIXEL_KEYS = ("mean_speed_inside", "mean_velocity_jump", "mean_velocity_change_inside", "reversals_per_seam")


def mean_and_error(values) -> tuple[float, float]:
    """(mean, standard error) of the finite values (None and nan left out); nan where undefined."""
    finite = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if not finite.size:
        return float("nan"), float("nan")
    error = finite.std(ddof=1) / np.sqrt(finite.size) if finite.size > 1 else float("nan")
    return float(finite.mean()), float(error)


def true_reference(
    caption: str,
    length: int,
    clip_starts: Sequence[int],
    count: int = REFERENCE_VIDEOS,
    seed: int = 0,
    size: int = 32,
) -> dict:
    """{"caption", "videos", "pixel_metrics": {key: mean}, "pixel_metrics_error": {key: standard error},
    "temporal_quality": {key: mean}} over `count` true videos of `length` frames."""
    check_int("length", length, 1)
    check_int("count", count, 1)
    starts = check_clip_starts(clip_starts, length, min_clips=1)
    config, generator = WorldConfig(size=size), torch.Generator().manual_seed(seed)
    pixels: dict[str, list[float]] = {k: [] for k in _PIXEL_KEYS}
    quality: dict[str, list[float]] = {}
    for _ in range(count):
        frames = render_world(spec_for_caption(caption, config, generator), config, 0, length)
        scores = summary(frames, starts, saturation=SHAPE_SATURATION)
        for key in _PIXEL_KEYS:
            pixels[key].append(scores[key])
        if length >= 3:
            for key, value in temporal_quality(frames).items():
                quality.setdefault(key, []).append(value)
    means = {k: mean_and_error(v) for k, v in pixels.items()}
    return {
        "caption": caption,
        "videos": count,
        "pixel_metrics": {k: m for k, (m, _) in means.items()},
        "pixel_metrics_error": {k: e for k, (_, e) in means.items()},
        "temporal_quality": {k: mean_and_error(v)[0] for k, v in quality.items()},
    }
