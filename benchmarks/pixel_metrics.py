"""Pixel-space continuity metrics on the synthetic moving-shapes domain (docs/DESIGN.md §5), pure numpy.

A video is frames (L, H, W, 3) (uint8, or floats on the same scale as `threshold`) cut into clips at
`clip_starts` (0 first, strictly increasing, all < L); the seams are clip_starts[1:].

- The object of frame f is the set of pixels that differ from the frame's background, its per-channel
  median colour, by more than `threshold` in some channel; its centroid c[f] = (x, y) in pixels (x to
  the right, y down) is nan where no pixel differs.
- Velocities v[f] = c[f+1] - c[f] in px/frame. The pair (f, f+1) is *inside* a clip unless f+1 is a
  seam; the pair (b-1, b) of seam b is the seam velocity.
- Velocity jump at seam b: |v_seam - v_around|, with v_around the mean inside velocity of the two clips
  beside the seam; a continuous motion gives ~0, a jump back or a cut gives a large value. Its yardstick
  inside clips: the frame-to-frame velocity change |v[f+1] - v[f]| over pairs where nothing is cut.
- With `saturation`, only pixels whose channel spread reaches it belong to the object (the long world's
  textured backgrounds differ from their median but are dull; its shapes are pure primaries).
- Direction reversal at seam b: on the dominant axis (the larger of |v_before| + |v_after| per axis,
  v_before / v_after the mean inside velocities of the clip before / after), the two have opposite
  signs — the ping-pong signature. Undetermined (nan) unless both move at least `min_speed` on it.

nan means undefined (no object found, or no inside pair); the summaries keep nan, JSON writers map it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from einops import rearrange

from .metrics import check_clip_starts

DEFAULT_THRESHOLD = 40.0  # uint8 levels: well above VAE noise, well below a shape's contrast
DEFAULT_MIN_SPEED = 0.25  # px/frame: slower than this on the dominant axis has no clear direction
SHAPE_SATURATION = 80.0  # channel spread of the worlds' shapes (255) vs their backgrounds (<= 20)


def _frames(frames: np.ndarray) -> np.ndarray:
    """`frames` as a finite float64 array (L, H, W, 3)."""
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] < 1:
        raise ValueError(f"frames must be an array (L, H, W, 3) with L >= 1; got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"frames must be finite; got {int((~np.isfinite(arr)).sum())} non-finite values")
    return arr


def _track(track: np.ndarray) -> np.ndarray:
    arr = np.asarray(track, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(f"track must be an array (L, 2) of (x, y) centroids; got shape {arr.shape}")
    return arr


def _nonnegative(name: str, value: float) -> float:
    if isinstance(value, bool) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)


def background_colour(frames: np.ndarray) -> np.ndarray:
    """(L, 3): the per-channel median colour of every frame."""
    x = _frames(frames)
    return np.median(rearrange(x, "l h w c -> l (h w) c"), axis=1)


def foreground_mask(
    frames: np.ndarray, threshold: float = DEFAULT_THRESHOLD, saturation: float | None = None
) -> np.ndarray:
    """(L, H, W) bool: pixels differing from their frame's background by > threshold in some channel and,
    with `saturation`, whose channel spread (max - min) is at least `saturation`: the shapes of the long
    world (pure primaries) and not its striped or gradient backgrounds (spread <= 20)."""
    x = _frames(frames)
    threshold = _nonnegative("threshold", threshold)
    saturation = None if saturation is None else _nonnegative("saturation", saturation)
    background = background_colour(x)[:, None, None, :]
    mask = (np.abs(x - background) > threshold).any(axis=-1)
    return mask if saturation is None else mask & (np.ptp(x, axis=-1) >= saturation)


def centroid_track(
    frames: np.ndarray, threshold: float = DEFAULT_THRESHOLD, saturation: float | None = None
) -> np.ndarray:
    """(L, 2): the (x, y) centroid of every frame's object in pixels; nan where there is none."""
    mask = foreground_mask(frames, threshold, saturation).astype(np.float64)
    ys, xs = np.indices(mask.shape[1:], dtype=np.float64)
    count = mask.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (mask * xs).sum(axis=(1, 2)) / count
        y = (mask * ys).sum(axis=(1, 2)) / count
    return np.stack([x, y], axis=1)


def _inside_pairs(length: int, starts: list[int]) -> np.ndarray:
    """(L-1,) bool: pair (f, f+1) lies inside a clip."""
    inside = np.ones(max(length - 1, 0), dtype=bool)
    inside[np.asarray(starts[1:], dtype=int) - 1] = False
    return inside


def _nanmean_rows(v: np.ndarray) -> np.ndarray:
    """Mean over rows ignoring rows with a nan; nan when no row is complete."""
    ok = np.isfinite(v).all(axis=1)
    return v[ok].mean(axis=0) if ok.any() else np.full(v.shape[1], np.nan)


def clip_velocities(track: np.ndarray, clip_starts: Sequence[int]) -> np.ndarray:
    """(K, 2): the mean inside velocity of every clip (nan where it has no pair with both centroids)."""
    c = _track(track)
    starts = check_clip_starts(clip_starts, len(c), min_clips=1)
    bounds = [*starts, len(c)]
    v = np.diff(c, axis=0)
    return np.stack([_nanmean_rows(v[a : b - 1]) for a, b in pairwise(bounds)])


def mean_inside_speed(track: np.ndarray, clip_starts: Sequence[int]) -> float:
    """Mean |v| over the pairs inside clips with both centroids; nan if there is none."""
    c = _track(track)
    inside = _inside_pairs(len(c), check_clip_starts(clip_starts, len(c), min_clips=1))
    speed = np.linalg.norm(np.diff(c, axis=0)[inside], axis=1)
    speed = speed[np.isfinite(speed)]
    return float(speed.mean()) if speed.size else float("nan")


def velocity_changes(track: np.ndarray, clip_starts: Sequence[int]) -> np.ndarray:
    """|v[f+1] - v[f]| for every two consecutive pairs inside one clip with all three centroids: how much
    the motion changes from one frame to the next where nothing is cut."""
    c = _track(track)
    inside = _inside_pairs(len(c), check_clip_starts(clip_starts, len(c), min_clips=1))
    v = np.diff(c, axis=0)
    both = inside[:-1] & inside[1:]
    change = np.linalg.norm(np.diff(v, axis=0)[both], axis=1)
    return change[np.isfinite(change)]


def seam_velocities(track: np.ndarray, clip_starts: Sequence[int]) -> np.ndarray:
    """(S, 2): c[b] - c[b-1] at every seam b."""
    c = _track(track)
    seams = np.asarray(check_clip_starts(clip_starts, len(c), min_clips=1)[1:], dtype=int)
    return c[seams] - c[seams - 1]


def seam_velocity_jumps(track: np.ndarray, clip_starts: Sequence[int]) -> np.ndarray:
    """(S,): |v_seam - v_around| per seam, v_around = mean inside velocity of the clips before and after."""
    c = _track(track)
    starts = check_clip_starts(clip_starts, len(c), min_clips=1)
    bounds = [*starts, len(c)]
    v = np.diff(c, axis=0)
    around = [
        _nanmean_rows(np.concatenate([v[a : b - 1], v[b : n - 1]]))
        for a, b, n in zip(bounds[:-2], bounds[1:-1], bounds[2:], strict=True)
    ]
    around = np.asarray(around, dtype=np.float64).reshape(-1, 2)
    return np.linalg.norm(seam_velocities(c, starts) - around, axis=1)


def direction_reversals(
    track: np.ndarray, clip_starts: Sequence[int], min_speed: float = DEFAULT_MIN_SPEED
) -> np.ndarray:
    """(S,): 1.0 where the dominant-axis motion flips sign across the seam, 0.0 where it does not, nan
    where either clip moves slower than `min_speed` on that axis (or not at all, or has no track)."""
    min_speed = _nonnegative("min_speed", min_speed)
    per_clip = clip_velocities(track, clip_starts)
    result = np.full(len(per_clip) - 1, np.nan)
    for k, (before, after) in enumerate(pairwise(per_clip)):
        if not (np.isfinite(before).all() and np.isfinite(after).all()):
            continue
        axis = int(np.argmax(np.abs(before) + np.abs(after)))
        slowest = min(abs(before[axis]), abs(after[axis]))
        if slowest >= min_speed and slowest > 0:  # a zero velocity has no direction, even with min_speed 0
            result[k] = float(before[axis] * after[axis] < 0)
    return result


def finite_mean(values: np.ndarray) -> float:
    """The mean of the finite values; nan if there is none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def summary(
    frames: np.ndarray,
    clip_starts: Sequence[int],
    threshold: float = DEFAULT_THRESHOLD,
    min_speed: float = DEFAULT_MIN_SPEED,
    saturation: float | None = None,
) -> dict:
    """Every pixel metric of a video as plain Python values (nan where undefined)."""
    track = centroid_track(frames, threshold, saturation)
    return track_summary(track, clip_starts, threshold, min_speed, saturation)


def track_summary(
    track: np.ndarray,
    clip_starts: Sequence[int],
    threshold: float = DEFAULT_THRESHOLD,
    min_speed: float = DEFAULT_MIN_SPEED,
    saturation: float | None = None,
) -> dict:
    """`summary` of the video whose centroid track (L, 2) is `track` (found with `threshold` and
    `saturation`, which are recorded)."""
    track = _track(track)
    starts = check_clip_starts(clip_starts, len(track), min_clips=1)
    speed = mean_inside_speed(track, starts)
    jumps = seam_velocity_jumps(track, starts)
    reversals = direction_reversals(track, starts, min_speed)
    mean_jump = finite_mean(jumps)
    return {
        "threshold": float(threshold),
        "saturation": None if saturation is None else float(saturation),
        "min_speed": float(min_speed),
        "centroid_track": track.tolist(),
        "frames_without_object": int(np.isnan(track).any(axis=1).sum()),
        "clip_velocities": clip_velocities(track, starts).tolist(),
        "mean_speed_inside": speed,
        "seam_velocities": seam_velocities(track, starts).tolist(),
        "velocity_jump_per_seam": jumps.tolist(),
        "mean_velocity_jump": mean_jump,
        "mean_velocity_change_inside": finite_mean(velocity_changes(track, starts)),
        "jump_to_speed_ratio": mean_jump / speed if speed > 0 else float("nan"),
        "direction_reversal_per_seam": reversals.tolist(),
        "direction_reversals": int(np.nansum(reversals)),
        "seams_with_clear_direction": int(np.isfinite(reversals).sum()),
        "reversals_per_seam": float(np.nansum(reversals) / len(reversals))
        if len(reversals)
        else float("nan"),
    }
