"""Continuity metrics for long videos made clip by clip (docs/DESIGN.md §5).

Videos are tensors (B, C, L, H, W); `clip_starts` lists the first frame of every clip (0 first, strictly
increasing, all < L) and the seams are clip_starts[1:]. Every metric is an exact function of its inputs,
computed in float64 numpy, and checks its arguments up front (ValueError naming the parameter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral

import numpy as np
import scipy.linalg
import torch
from einops import rearrange

from samplers.validation import check_int

Reference = torch.Tensor | Sequence[float] | np.ndarray


def _video(name: str, x: torch.Tensor) -> np.ndarray:
    """`x` (B, C, L, H, W) as a finite float64 numpy array."""
    if not isinstance(x, torch.Tensor) or x.ndim != 5:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"{name} must be a 5-D tensor (B, C, L, H, W); got {shape}")
    out = x.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(out).all():
        raise ValueError(f"{name} must be finite; got {int((~np.isfinite(out)).sum())} non-finite values")
    return out


def check_clip_starts(clip_starts: Sequence[int], length: int, min_clips: int = 2) -> list[int]:
    """Validated clip starts: 0 first, strictly increasing inside [0, L), at least `min_clips` clips."""
    starts = list(clip_starts)
    ok = all(isinstance(s, Integral) and not isinstance(s, bool) for s in starts)
    if not ok or not starts or starts[0] != 0 or starts[-1] >= length or np.any(np.diff(starts) <= 0):
        raise ValueError(
            f"clip_starts must start at 0 and be strictly increasing inside [0, L={length}); got {starts}"
        )
    if len(starts) < min_clips:
        raise ValueError(
            f"clip_starts must hold at least {min_clips} clips (seam metrics need a seam); got {starts}"
        )
    return [int(s) for s in starts]


def _reference_ac(ref: Reference, max_lag: int) -> np.ndarray:
    """Reference autocorrelations for lags 0..max_lag: of a video tensor, or a 1-D array-like."""
    if isinstance(ref, torch.Tensor) and ref.ndim == 5:
        _video("reference", ref)
        if ref.shape[2] <= max_lag:
            raise ValueError(f"reference must have more than max_lag={max_lag} frames; got L={ref.shape[2]}")
        return autocorrelation(ref, max_lag)
    arr = np.asarray(ref.detach().cpu() if isinstance(ref, torch.Tensor) else ref, dtype=np.float64)
    if arr.ndim != 1 or arr.size <= max_lag or not np.isfinite(arr).all():
        raise ValueError(
            f"reference must be a video tensor or a finite 1-D array of length > max_lag="
            f"{max_lag}; got shape {arr.shape}"
        )
    return arr


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of `a` and `b` flattened (pooled), each centred by its own mean.

    nan when either has zero variance (the correlation is undefined).
    """
    # np.asarray copies only what is not float64 already; ravel copies only what is not contiguous.
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"a and b must be non-empty with the same size; got {a.size} and {b.size}")
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denom) if denom > 0 else float("nan")


def seam_jump_ratio(latents: torch.Tensor, clip_starts: Sequence[int]) -> float:
    """mean |x[b] - x[b-1]|^2 over seams b / mean |x[f+1] - x[f]|^2 over pairs inside clips.

    Means run over all B, C, H, W elements and the pairs. 1 is ideal, ~0 a frozen frame, >> 1 a cut;
    inf if frames never change inside clips but do at a seam, nan if they never change at all.
    """
    x = _video("latents", latents)
    seams = check_clip_starts(clip_starts, x.shape[2])[1:]
    sq = (np.diff(x, axis=2) ** 2).mean(axis=(0, 1, 3, 4))  # sq[f]: pair (f, f+1)
    across = np.zeros(sq.shape, dtype=bool)
    across[np.asarray(seams) - 1] = True
    if across.all():
        raise ValueError(f"clip_starts must leave a clip of >= 2 frames; got {list(clip_starts)}")
    num, den = sq[across].mean(), sq[~across].mean()
    return float(num / den) if den > 0 else (float("inf") if num > 0 else float("nan"))


def mirror_correlation(
    latents: torch.Tensor, clip_starts: Sequence[int], skip: int, max_offset: int | None = None
) -> float:
    """pearson(x[b-1-j], x[b+j]) pooled over seams b and offsets j in [skip, min(J_b, max_offset)].

    J_b = min(b - previous_start, next_start - b) - 1 keeps both frames in the clips beside seam b
    (next_start = L after the last seam). 1 for a palindrome around every seam (ping-pong looping).
    """
    x = _video("latents", latents)
    length = x.shape[2]
    starts = check_clip_starts(clip_starts, length)
    check_int("skip", skip, 0, length)
    if max_offset is not None:
        check_int("max_offset", max_offset, skip, length)
    bounds = [*starts, length]
    left, right = [], []
    for prev, b, nxt in zip(bounds[:-2], bounds[1:-1], bounds[2:], strict=True):
        last = min(b - prev, nxt - b) - 1
        last = last if max_offset is None else min(last, max_offset)
        left += [b - 1 - j for j in range(skip, last + 1)]
        right += [b + j for j in range(skip, last + 1)]
    if not left:
        raise ValueError(
            f"skip={skip} (max_offset={max_offset}) leaves no offsets inside the clips "
            f"around the seams of clip_starts={starts}"
        )
    return pearson(x[:, :, left], x[:, :, right])


def autocorrelation(latents: torch.Tensor, max_lag: int) -> np.ndarray:
    """ac[tau] = pearson(x[:, :, :L-tau], x[:, :, tau:]) for tau = 0..max_lag, 1 <= max_lag < L."""
    x = _video("latents", latents)
    length = x.shape[2]
    check_int("max_lag", max_lag, 1, length - 1)
    # Frames as contiguous rows, so that every lagged slice is one block (no copy per lag).
    rows = np.ascontiguousarray(rearrange(x, "b c f h w -> f (b c h w)"))
    return np.array([pearson(rows[: length - t], rows[t:]) for t in range(max_lag + 1)])


def autocorrelation_error(
    latents: torch.Tensor, reference: Reference, min_lag: int = 1, max_lag: int | None = None
) -> float:
    """max over tau in [min_lag, max_lag] of |ac(latents)[tau] - ac_ref[tau]| (max_lag default L // 2).

    `reference` is a video tensor (its empirical autocorrelation) or reference values indexed by lag.
    """
    length = _video("latents", latents).shape[2]
    max_lag = length // 2 if max_lag is None else max_lag
    check_int("max_lag", max_lag, 1, length - 1)
    check_int("min_lag", min_lag, 0, max_lag)
    diff = autocorrelation(latents, max_lag) - _reference_ac(reference, max_lag)[: max_lag + 1]
    return float(np.abs(diff[min_lag:]).max())


def repetition(
    latents: torch.Tensor, min_lag: int, max_lag: int | None = None, reference: Reference | None = None
) -> float:
    """max over tau in [min_lag, max_lag] of ac(latents)[tau], minus the same peak of `reference`.

    max_lag defaults to L - 1; `reference` is a video tensor or autocorrelations indexed by lag.
    """
    length = _video("latents", latents).shape[2]
    max_lag = length - 1 if max_lag is None else max_lag
    check_int("max_lag", max_lag, 1, length - 1)
    check_int("min_lag", min_lag, 1, max_lag)
    peak = float(autocorrelation(latents, max_lag)[min_lag:].max())
    if reference is None:
        return peak
    return peak - float(_reference_ac(reference, max_lag)[min_lag : max_lag + 1].max())


def seam_windows(latents: torch.Tensor, clip_starts: Sequence[int], window: int) -> np.ndarray:
    """Frames [b - window//2, b - window//2 + window) around each seam b, as (B * seams, C, window, H, W).

    Windows are stacked batch-major: row i * seams + s is sample i around seam s.
    """
    x = _video("latents", latents)
    length = x.shape[2]
    seams = check_clip_starts(clip_starts, length)[1:]
    check_int("window", window, 1, length)
    lo = [b - window // 2 for b in seams]
    if lo[0] < 0 or lo[-1] + window > length:
        raise ValueError(
            f"window={window} must fit inside [0, L={length}) around every seam of "
            f"clip_starts={list(clip_starts)}"
        )
    stacked = np.stack([x[:, :, s : s + window] for s in lo])
    return rearrange(stacked, "s b c f h w -> (b s) c f h w")


def trajectory_features(windows: np.ndarray) -> np.ndarray:
    """Each element's temporal trajectory is one sample: (n, c, f, h, w) -> (n*c*h*w, f)."""
    if np.ndim(windows) != 5:
        raise ValueError(f"windows must be 5-D (n, c, f, h, w); got shape {np.shape(windows)}")
    return rearrange(np.asarray(windows), "n c f h w -> (n c h w) f")


def frechet_distance_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)) (real part; tiny negative results become 0)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"mu1, mu2 must be (D,) and sigma1, sigma2 (D, D); got {mu1.shape}, {mu2.shape}, "
            f"{s1.shape}, {s2.shape}"
        )
    covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2.0 * covmean))
    return max(value, 0.0)


def frechet_distance(
    latents: torch.Tensor,
    clip_starts: Sequence[int],
    reference: torch.Tensor,
    window: int = 8,
    features: Callable[[np.ndarray], np.ndarray] = trajectory_features,
) -> float:
    """Fréchet distance between Gaussians fitted to features of seam windows of `latents` and `reference`.

    The reference windows sit at the same `clip_starts` (reference needs at least the same L).
    """
    length = _video("latents", latents).shape[2]
    ref_length = _video("reference", reference).shape[2]
    if ref_length < length:
        raise ValueError(f"reference must have at least L={length} frames; got {ref_length}")
    stats = []
    for name, video in (("latents", latents), ("reference", reference)):
        feats = np.asarray(features(seam_windows(video, clip_starts, window)), dtype=np.float64)
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise ValueError(f"features of {name} must be (n >= 2, D); got shape {feats.shape}")
        stats.append((feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))))
    (mu1, s1), (mu2, s2) = stats
    return frechet_distance_from_stats(mu1, s1, mu2, s2)
