"""Metrics against exact values known by construction (benchmarks/metrics.py, docs/DESIGN.md §5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks.metrics import (
    autocorrelation,
    autocorrelation_error,
    frechet_distance,
    frechet_distance_from_stats,
    mirror_correlation,
    pearson,
    repetition,
    seam_jump_ratio,
    seam_windows,
    trajectory_features,
)

SHAPE = (2, 2, 3, 3)  # B, C, H, W of the tiny test videos


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def frames(values, elements: torch.Tensor | None = None) -> torch.Tensor:
    """Video whose frame f is values[f] (times `elements`, shape (B, C, H, W), if given)."""
    v = torch.as_tensor(values, dtype=torch.float64).view(1, 1, -1, 1, 1)
    z = torch.ones(SHAPE, dtype=torch.float64) if elements is None else elements
    return v * z.unsqueeze(2)


def steps_video(steps) -> list[float]:
    """Frame values whose pair (f, f+1) differs by steps[f]."""
    return np.concatenate([[0.0], np.cumsum(steps)]).tolist()


def alternating(length: int, seed: int = 0) -> torch.Tensor:
    """x_f = (-1)^f z: its autocorrelation at lag tau is exactly (-1)^tau."""
    return frames([(-1.0) ** f for f in range(length)], randn(*SHAPE, seed=seed))


def periodic(length: int, period: int, seed: int = 0) -> torch.Tensor:
    """x_f = pattern[f % period] with random pattern frames."""
    pattern = randn(SHAPE[0], SHAPE[1], period, *SHAPE[2:], seed=seed)
    return pattern[:, :, [f % period for f in range(length)]]


# ---------------------------------------------------------------- pearson


def test_pearson_known_values():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert pearson(a, 2 * a + 7) == pytest.approx(1.0, abs=1e-15)
    assert pearson(a, -a) == pytest.approx(-1.0, abs=1e-15)
    assert pearson(np.array([1.0, -1.0, 1.0, -1.0]), np.array([1.0, 1.0, -1.0, -1.0])) == 0.0
    assert math.isnan(pearson(a, np.ones(4)))


# ---------------------------------------------------------------- seam jump ratio


@pytest.mark.parametrize("elements", [None, randn(*SHAPE, seed=1)])
def test_seam_jump_ratio_jump_of_three_gives_nine(elements):
    starts = [0, 4, 8, 12]
    steps = [3.0 if f + 1 in starts else 1.0 for f in range(15)]
    video = frames(steps_video(steps), elements)
    assert seam_jump_ratio(video, starts) == pytest.approx(9.0, rel=1e-12)


def test_seam_jump_ratio_unequal_clips():
    starts = [0, 3, 4, 9]  # clips of 3, 1, 5 and 3 frames
    jumps = {3: 1.0, 4: 2.0, 9: 3.0}
    steps = [jumps.get(f + 1, 2.0) for f in range(11)]
    # across: (1 + 4 + 9) / 3; inside: 2^2 = 4
    assert seam_jump_ratio(frames(steps_video(steps)), starts) == pytest.approx(14 / 12, rel=1e-12)


def test_seam_jump_ratio_duplicated_seam_frame_is_zero():
    video = randn(*SHAPE[:2], 12, *SHAPE[2:], seed=2)
    for b in (5, 9):
        video[:, :, b] = video[:, :, b - 1]
    assert seam_jump_ratio(video, [0, 5, 9]) == 0.0


def test_seam_jump_ratio_frozen_clips():
    assert seam_jump_ratio(frames([0, 0, 1, 1]), [0, 2]) == math.inf
    assert math.isnan(seam_jump_ratio(frames([0, 0, 0, 0]), [0, 2]))


# ---------------------------------------------------------------- mirror correlation


def test_mirror_correlation_palindrome_is_one_and_negated_is_minus_one():
    clip = randn(*SHAPE[:2], 4, *SHAPE[2:], seed=3)
    rev = torch.flip(clip, dims=(2,))
    starts = [0, 4, 8, 12]
    palindrome, negated = torch.cat([clip, rev, clip, rev], 2), torch.cat([clip, -rev, clip, -rev], 2)
    assert mirror_correlation(palindrome, starts, skip=0) == pytest.approx(1.0, abs=1e-12)
    assert mirror_correlation(negated, starts, skip=0) == pytest.approx(-1.0, abs=1e-12)


def unit_zero_mean(seed: int) -> torch.Tensor:
    z = randn(*SHAPE, seed=seed)
    z = z - z.mean()
    return z / z.norm()


@pytest.mark.parametrize(
    ("skip", "max_offset", "expected"),
    [
        (0, None, 0.0),
        (1, None, 1 / 3),
        (1, 2, 1.0),
        (0, 0, -1.0),
        (3, None, -1.0),
        (2, None, 0.0),
        (0, 1, 0.0),
        (0, 2, 1 / 3),
        (2, 3, 0.0),
    ],
)
def test_mirror_correlation_selects_offsets(skip, max_offset, expected):
    # One seam at 4 (J = 3). Left frame 3-j is z_j, right frame 4+j is sign_j z_j, each z_j zero-mean with
    # unit norm, so the pooled correlation over the chosen offsets is the mean of their signs.
    signs = [-1.0, 1.0, 1.0, -1.0]
    z = [unit_zero_mean(seed=10 + j) for j in range(4)]
    video = torch.stack([z[3], z[2], z[1], z[0]] + [s * zj for s, zj in zip(signs, z, strict=True)], dim=2)
    got = mirror_correlation(video, [0, 4], skip=skip, max_offset=max_offset)
    assert got == pytest.approx(expected, abs=1e-12)


def test_mirror_correlation_stays_inside_adjacent_clips():
    # Seams 3 (J = min(3, 2) - 1 = 1) and 5 (J = min(2, 5) - 1 = 1): pairs (2,3), (1,4), (4,5), (3,6)
    # mirror exactly; the pairs one offset further, (0,5) and (2,7), are random.
    video = randn(*SHAPE[:2], 10, *SHAPE[2:], seed=4)
    x1, x2 = video[:, :, 1].clone(), video[:, :, 2].clone()
    video[:, :, 3], video[:, :, 4], video[:, :, 5], video[:, :, 6] = x2, x1, x1, x2
    assert mirror_correlation(video, [0, 3, 5], skip=0) == pytest.approx(1.0, abs=1e-12)
    assert mirror_correlation(video, [0, 3, 5], skip=0, max_offset=1) == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- autocorrelation


def test_autocorrelation_alternating_sign():
    ac = autocorrelation(alternating(9), max_lag=8)
    np.testing.assert_allclose(ac, [(-1.0) ** t for t in range(9)], rtol=0, atol=1e-12)


def test_autocorrelation_periodic_is_one_at_the_period():
    ac = autocorrelation(periodic(12, period=3), max_lag=9)
    assert ac.shape == (10,)
    np.testing.assert_allclose(ac[[0, 3, 6, 9]], 1.0, rtol=0, atol=1e-12)


def test_autocorrelation_error_against_array():
    ac = np.array([(-1.0) ** t for t in range(5)])  # exact autocorrelation of alternating(8) up to L//2
    diff = np.array([0.0, 0.1, -0.3, 0.2, 0.05])
    reference = np.concatenate([ac + diff, [9.0, 9.0]])  # entries past max_lag are ignored
    video = alternating(8)
    assert autocorrelation_error(video, reference) == pytest.approx(0.3, abs=1e-12)
    assert autocorrelation_error(video, reference, min_lag=3) == pytest.approx(0.2, abs=1e-12)
    assert autocorrelation_error(video, reference, max_lag=1) == pytest.approx(0.1, abs=1e-12)
    got = autocorrelation_error(video, list(reference), min_lag=4, max_lag=4)
    assert got == pytest.approx(0.05, abs=1e-12)


def test_autocorrelation_error_video_vs_itself_is_zero():
    video = randn(*SHAPE[:2], 10, *SHAPE[2:], seed=5)
    assert autocorrelation_error(video, video, max_lag=9) == 0.0


# ---------------------------------------------------------------- repetition


def test_repetition_periodic_peak_minus_reference():
    video = periodic(16, period=4, seed=6)
    assert repetition(video, min_lag=2) == pytest.approx(1.0, abs=1e-12)
    assert repetition(video, min_lag=5, max_lag=9) == pytest.approx(1.0, abs=1e-12)
    reference = np.array([1.0, 0.9, 0.25, 0.1, 0.2] + [0.0] * 11)  # peak over lags >= 2 is 0.25
    assert repetition(video, min_lag=2, reference=reference) == pytest.approx(0.75, abs=1e-12)
    assert repetition(video, min_lag=2, reference=video) == pytest.approx(0.0, abs=1e-12)


def test_repetition_uses_only_the_lag_range():
    video = alternating(8)  # ac[tau] = (-1)^tau
    assert repetition(video, min_lag=3, max_lag=3) == pytest.approx(-1.0, abs=1e-12)
    assert repetition(video, min_lag=3, max_lag=4) == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- seam windows, features


def test_seam_windows_positions_batch_major():
    video = frames(np.arange(12.0), torch.ones(2, 1, 1, 1)) + 100.0 * torch.arange(2.0).view(2, 1, 1, 1, 1)
    win = seam_windows(video, [0, 4, 8], window=4)
    assert win.shape == (4, 1, 4, 1, 1)
    expected = [[2, 3, 4, 5], [6, 7, 8, 9], [102, 103, 104, 105], [106, 107, 108, 109]]
    np.testing.assert_array_equal(win[:, 0, :, 0, 0], expected)
    odd = seam_windows(video, [0, 4, 8], window=3)
    np.testing.assert_array_equal(odd[:2, 0, :, 0, 0], [[3, 4, 5], [7, 8, 9]])


def test_trajectory_features_rows_are_element_trajectories():
    n, c, f, h, w = 2, 3, 4, 2, 5
    windows = np.arange(n * c * f * h * w, dtype=np.float64).reshape(n, c, f, h, w)
    feats = trajectory_features(windows)
    assert feats.shape == (n * c * h * w, f)
    i, j, y, x = 1, 2, 1, 3
    np.testing.assert_array_equal(feats[((i * c + j) * h + y) * w + x], windows[i, j, :, y, x])


# ---------------------------------------------------------------- Fréchet distance


def test_frechet_from_stats_diagonal_and_identical():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.5, 2.0, size=5), rng.uniform(0.5, 2.0, size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance_from_stats(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10)
    assert frechet_distance_from_stats(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-10)


def test_frechet_from_stats_commuting_covariances():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    l1, l2 = rng.uniform(0.2, 3.0, size=4), rng.uniform(0.2, 3.0, size=4)
    mu1, mu2 = np.zeros(4), np.full(4, 0.5)
    expected = 4 * 0.25 + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    got = frechet_distance_from_stats(mu1, q @ np.diag(l1) @ q.T, mu2, q @ np.diag(l2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_self_and_constant_shift():
    video = randn(*SHAPE[:2], 16, *SHAPE[2:], seed=7)
    starts = [0, 5, 11]
    assert frechet_distance(video, starts, video, window=4) == pytest.approx(0.0, abs=1e-9)
    # Same covariance, every one of the `window` feature means shifted by c: distance c^2 * window.
    assert frechet_distance(video + 0.5, starts, video, window=4) == pytest.approx(0.25 * 4, abs=1e-9)
    longer = torch.cat([video, randn(*SHAPE[:2], 3, *SHAPE[2:], seed=8)], dim=2)
    assert frechet_distance(video + 0.5, starts, longer, window=4) == pytest.approx(1.0, abs=1e-9)


def test_frechet_distance_pluggable_features():
    video = randn(*SHAPE[:2], 12, *SHAPE[2:], seed=9)

    def first_frame(windows: np.ndarray) -> np.ndarray:
        return trajectory_features(windows)[:, :1]

    got = frechet_distance(video - 2.0, [0, 6], video, window=4, features=first_frame)
    assert got == pytest.approx(4.0, abs=1e-9)


# ---------------------------------------------------------------- validation


VIDEO = randn(*SHAPE[:2], 8, *SHAPE[2:], seed=11)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: seam_jump_ratio(torch.zeros(2, 3, 4), [0, 2]), "latents"),
        (lambda: autocorrelation(VIDEO.clone().index_fill_(2, torch.tensor([3]), math.nan), 2), "latents"),
        (lambda: seam_jump_ratio(VIDEO, [0, 4, 4]), "clip_starts"),
        (lambda: seam_jump_ratio(VIDEO, [1, 4]), "clip_starts"),
        (lambda: seam_jump_ratio(VIDEO, [0, 8]), "clip_starts"),
        (lambda: seam_jump_ratio(VIDEO, [0]), "clip_starts"),
        (lambda: mirror_correlation(VIDEO, [], skip=0), "clip_starts"),
        (lambda: mirror_correlation(VIDEO, [0, 4], skip=-1), "skip"),
        (lambda: mirror_correlation(VIDEO, [0, 4], skip=4), "skip"),
        (lambda: mirror_correlation(VIDEO, [0, 4], skip=2, max_offset=1), "max_offset"),
        (lambda: autocorrelation(VIDEO, 0), "max_lag"),
        (lambda: autocorrelation(VIDEO, 8), "max_lag"),
        (lambda: autocorrelation_error(VIDEO, VIDEO, min_lag=5), "min_lag"),
        (lambda: autocorrelation_error(VIDEO, [1.0, 0.5, 0.2]), "reference"),
        (lambda: repetition(VIDEO, min_lag=0), "min_lag"),
        (lambda: repetition(VIDEO, min_lag=2, max_lag=8), "max_lag"),
        (lambda: repetition(VIDEO, min_lag=2, reference=VIDEO[:, :, :5]), "reference"),
        (lambda: seam_windows(VIDEO, [0, 2], window=6), "window"),
        (lambda: seam_windows(VIDEO, [0, 6], window=6), "window"),
        (lambda: frechet_distance(VIDEO, [0, 4], VIDEO[:, :, :6], window=2), "reference"),
        (lambda: frechet_distance_from_stats(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), "sigma1"),
        (lambda: pearson(np.zeros(3), np.zeros(4)), "a and b"),
    ],
)
def test_invalid_arguments_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
