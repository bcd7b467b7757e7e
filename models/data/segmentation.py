"""Segment-then-caption for long multi-scene videos (the paper's Figure 4, docs/DESIGN.md §7).

    cuts = shot_boundaries(frames)          # e.g. [120, 305]: the first frame of each new shot
    segment_and_caption(frames, captioner)  # [(0, 120, "..."), (120, 305, "..."), (305, F, "...")]

The cut detector uses robust statistics of the frame differences d_t = mean |frame_t - frame_(t-1)|
(t = 1 .. F-1): a shot starts at t when d_t > threshold, by default

    threshold = median(d) + k * max(1.4826 * MAD(d), 0.1 * median(d)),   k = 6,

where MAD is the median absolute deviation (1.4826 MAD estimates the standard deviation of Gaussian
noise; the 0.1 * median floor keeps steady motion with near-constant differences from producing cuts).
Cuts are few, so they barely move the median and the MAD. With `min_length`, cuts are accepted strongest
first and only when every shot, the first and the last included, keeps at least `min_length` frames.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from samplers.validation import check_int, check_real

__all__ = ["frame_differences", "segment_and_caption", "shot_boundaries"]

MAD_K = 6.0  # default k: how many robust standard deviations above the median a cut must be
_MAD_SCALE = 1.4826  # MAD -> standard deviation for Gaussian noise
_MEDIAN_FLOOR = 0.1  # the robust spread is at least this fraction of the median difference


def frame_differences(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """d_t = mean |frame_t - frame_(t-1)|, float64 (F-1,), for a tensor (F, C, H, W) or an array
    (F, H, W, C) (uint8 arrays in 0..255 units)."""
    if isinstance(frames, torch.Tensor):
        values = frames.detach().to(torch.float64).cpu().numpy()
    elif isinstance(frames, np.ndarray):
        values = frames.astype(np.float64)
    else:
        raise TypeError(f"frames must be a torch.Tensor or a numpy.ndarray; got {type(frames).__name__}")
    if values.ndim != 4:
        raise ValueError(f"frames must be 4-D (F, C, H, W) tensor or (F, H, W, C) array; got {values.shape}")
    return np.abs(np.diff(values, axis=0)).reshape(values.shape[0] - 1, -1).mean(axis=1)


def default_threshold(differences: np.ndarray, k: float = MAD_K) -> float:
    """median + k * max(1.4826 * MAD, 0.1 * median) of the differences."""
    median = float(np.median(differences))
    mad = float(np.median(np.abs(differences - median)))
    return median + k * max(_MAD_SCALE * mad, _MEDIAN_FLOOR * median)


def shot_boundaries(
    frames: torch.Tensor | np.ndarray,
    threshold: float | None = None,
    min_length: int = 1,
    k: float = MAD_K,
) -> list[int]:
    """Sorted frame indices where a new shot starts (0 excluded); see the module docstring."""
    check_int("min_length", min_length, 1)
    check_real("k", k, 0.0)
    differences = frame_differences(frames)
    if differences.size == 0:
        return []
    limit = default_threshold(differences, k) if threshold is None else check_real("threshold", threshold, 0)
    candidates = np.flatnonzero(differences > limit) + 1  # d_t compares frames t-1 and t
    return _enforce_min_length(candidates, differences, len(differences) + 1, min_length)


def _enforce_min_length(candidates: np.ndarray, differences: np.ndarray, length: int, min_length: int):
    """Accept cuts strongest first while every shot keeps at least `min_length` frames."""
    accepted: list[int] = []
    for cut in sorted(candidates.tolist(), key=lambda t: -differences[t - 1]):
        edges = [0, *accepted, length]
        if all(abs(cut - edge) >= min_length for edge in edges):
            accepted.append(cut)
    return sorted(accepted)


def segment_and_caption(
    frames: torch.Tensor | np.ndarray,
    captioner: Callable[[Any], str],
    **kwargs: Any,
) -> list[tuple[int, int, str]]:
    """Split at `shot_boundaries(frames, **kwargs)` and caption each shot: [(start, end exclusive,
    captioner(frames[start:end]))], covering all frames in order."""
    cuts = shot_boundaries(frames, **kwargs)
    edges = [0, *cuts, len(frames)]
    return [(start, end, captioner(frames[start:end])) for start, end in pairwise(edges)]
