"""Temporal quality scores on constructed videos whose values are known by hand, and streaming in chunks
equal to the whole video at once."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.temporal_quality import TemporalQuality, temporal_quality


def video(values) -> np.ndarray:
    """Frames of one flat grey level each: (L, 4, 6, 3) uint8."""
    return np.stack([np.full((4, 6, 3), v, dtype=np.uint8) for v in values])


def test_a_still_video_scores_perfect_and_does_not_drift():
    s = temporal_quality(video([100] * 5))
    still = pytest.approx(0.0, abs=1e-9)
    assert s == {"temporal_flickering": 1.0, "motion_smoothness": 1.0, "dynamic_degree": 0.0,
                 "brightness_drift": still, "colour_drift": still}  # fmt: skip


def test_black_white_alternation_is_full_flicker_and_no_smoothness():
    # |f_t - f_t+1| = 255 everywhere; each frame is 255 away from the mean of its two neighbours
    s = temporal_quality(video([0, 255, 0, 255, 0]))
    assert s["temporal_flickering"] == 0.0 and s["motion_smoothness"] == 0.0


def test_one_cut_is_a_third_of_the_flicker_and_half_the_smoothness():
    # 0, 0, 255, 255: consecutive differences 0, 255, 0 (mean 85); frames 1 and 2 are each 127.5 from the
    # mean of their neighbours
    s = temporal_quality(video([0, 0, 255, 255]))
    assert s["temporal_flickering"] == pytest.approx(2 / 3, abs=1e-12)
    assert s["motion_smoothness"] == pytest.approx(0.5, abs=1e-12)


def test_a_linear_ramp_is_smooth_and_drifts_by_its_rise():
    # grey 10, 30, ..., 90: consecutive frames differ by 20; every frame is the mean of its neighbours; the
    # luma and every channel rise by 80 over the video (luma weights sum to 1), colour drift 80 sqrt(3)
    s = temporal_quality(video([10, 30, 50, 70, 90]))
    assert s["temporal_flickering"] == pytest.approx((255 - 20) / 255, abs=1e-12)
    assert s["motion_smoothness"] == pytest.approx(1.0, abs=1e-12)
    assert s["brightness_drift"] == pytest.approx(80.0, abs=1e-9)
    assert s["colour_drift"] == pytest.approx(80.0 * np.sqrt(3), abs=1e-9)


def test_a_square_moving_two_pixels_a_frame_has_that_dynamic_degree():
    frames = np.zeros((6, 16, 16, 3), dtype=np.uint8)
    for t in range(6):
        frames[t, 5:8, 2 * t : 2 * t + 3] = (200, 40, 40)  # a red 3x3 square, 2 px right per frame
    s = temporal_quality(frames)
    assert s["dynamic_degree"] == pytest.approx(2.0, abs=1e-12)
    assert s["colour_drift"] == pytest.approx(0.0, abs=1e-9)  # the same pixels, moved


def test_streaming_in_chunks_equals_the_whole_video():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(9, 8, 8, 3), dtype=np.uint8)
    scores = TemporalQuality()
    for chunk in (frames[:1], frames[1:4], frames[4:5], frames[5:]):
        scores.update(chunk)
    assert scores.result() == temporal_quality(frames)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"frames must be a uint8 array \(F, H, W, 3\); got float64"):
        TemporalQuality().update(np.zeros((2, 4, 4, 3)))
    scores = TemporalQuality()
    scores.update(video([1, 2]))
    with pytest.raises(ValueError, match="a video needs at least 3 frames"):
        scores.result()
    with pytest.raises(ValueError, match=r"frames must keep the video's size \(4, 6, 3\)"):
        scores.update(np.zeros((1, 5, 6, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"threshold must be"):
        TemporalQuality(threshold=-1)
    with pytest.raises(ValueError, match=r"start must be 2, the frames seen so far \(in order\); got 4"):
        scores.update(video([3]), start=4)  # a clip out of order (FanOutSink gives each clip's start)
