"""Pixel-space metrics on constructed shape videos with exact answers (benchmarks/pixel_metrics.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.pixel_metrics import (
    background_colour,
    centroid_track,
    clip_velocities,
    direction_reversals,
    foreground_mask,
    mean_inside_speed,
    seam_velocities,
    seam_velocity_jumps,
    summary,
    track_summary,
    velocity_changes,
)

BACKGROUND = (20, 40, 60)
RED = (230, 10, 10)


def square_video(positions, size=32, side=4, background=BACKGROUND, colour=RED) -> np.ndarray:
    """Frame f: a `side`-px square with its top-left corner at positions[f] = (x, y); None = no square."""
    video = np.empty((len(positions), size, size, 3), dtype=np.uint8)
    video[:] = background
    for f, pos in enumerate(positions):
        if pos is not None:
            x, y = pos
            video[f, y : y + side, x : x + side] = colour
    return video


def right_then_back(jump=-8) -> np.ndarray:
    """Clip 0 (frames 0-3) moves right 2 px/frame from x=10; at the seam (frame 4) the square jumps by
    `jump` px, then clip 1 (frames 4-7) moves right 2 px/frame again."""
    xs = [10, 12, 14, 16, 16 + jump, 18 + jump, 20 + jump, 22 + jump]
    return square_video([(x, 5) for x in xs])


def test_background_is_the_median_colour_and_the_mask_is_the_square():
    video = square_video([(3, 7), (10, 2)])
    np.testing.assert_array_equal(background_colour(video), [BACKGROUND, BACKGROUND])
    mask = foreground_mask(video)
    assert mask.shape == (2, 32, 32) and mask.sum() == 32
    assert mask[0, 7:11, 3:7].all() and mask[1, 2:6, 10:14].all()
    # a colour closer to the background than the threshold is not an object
    faint = square_video([(3, 7)], colour=(30, 50, 70))
    assert not foreground_mask(faint, threshold=10).any() and foreground_mask(faint, threshold=9).sum() == 16


def test_centroid_is_the_square_centre_and_nan_without_object():
    track = centroid_track(square_video([(10, 5), (0, 0), None], side=3))
    np.testing.assert_array_equal(track[:2], [[11.0, 6.0], [1.0, 1.0]])
    assert np.isnan(track[2]).all()


def test_square_moving_right_then_jumping_back_at_the_seam():
    track = centroid_track(right_then_back())
    np.testing.assert_array_equal(track[:, 0], [11.5, 13.5, 15.5, 17.5, 9.5, 11.5, 13.5, 15.5])
    np.testing.assert_array_equal(track[:, 1], 6.5)
    starts = [0, 4]
    assert mean_inside_speed(track, starts) == 2.0
    np.testing.assert_array_equal(clip_velocities(track, starts), [[2, 0], [2, 0]])
    np.testing.assert_array_equal(seam_velocities(track, starts), [[-8, 0]])
    np.testing.assert_array_equal(seam_velocity_jumps(track, starts), [10.0])  # |-8 - 2|
    np.testing.assert_array_equal(direction_reversals(track, starts), [0.0])  # both clips move right


def test_continuous_motion_has_no_jump():
    track = centroid_track(right_then_back(jump=2))  # the seam step is the same 2 px as inside
    np.testing.assert_array_equal(seam_velocity_jumps(track, [0, 4]), [0.0])


def test_ping_pong_reverses_direction_at_every_seam():
    xs = [4, 6, 8, 10, 10, 8, 6, 4, 4, 6, 8, 10]  # right, mirrored left, right again (FNR-like)
    track = centroid_track(square_video([(x, 20) for x in xs]))
    starts = [0, 4, 8]
    np.testing.assert_array_equal(direction_reversals(track, starts), [1.0, 1.0])
    np.testing.assert_array_equal(seam_velocity_jumps(track, starts), [0.0, 0.0])  # around mean is 0
    result = summary(square_video([(x, 20) for x in xs]), starts)
    assert result["direction_reversals"] == 2 and result["reversals_per_seam"] == 1.0
    assert result["seams_with_clear_direction"] == 2 and result["mean_speed_inside"] == 2.0


def test_dominant_axis_is_the_faster_one():
    # clip 0: down 3 px/frame and right 1; clip 1: up 3 and right 1 -> a vertical reversal
    pos = [(2, 2), (3, 5), (4, 8), (5, 11), (6, 8), (7, 5)]
    track = centroid_track(square_video(pos))
    np.testing.assert_array_equal(direction_reversals(track, [0, 3]), [1.0])
    assert mean_inside_speed(track, [0, 3]) == pytest.approx(math.sqrt(10))


def test_slow_or_static_clips_have_no_clear_direction():
    pos = [(5, 5), (5, 5), (5, 5), (9, 5), (8, 5), (7, 5)]  # clip 0 static, clip 1 moves left
    track = centroid_track(square_video(pos))
    assert np.isnan(direction_reversals(track, [0, 3])).all()
    assert np.isnan(direction_reversals(track, [0, 3], min_speed=0.0)).all()  # zero has no sign
    # clip 0 moves +0.5 px/frame on average, clip 1 -0.5: a reversal only if 0.5 counts as moving
    slow = centroid_track(square_video([(5, 5), (5, 5), (6, 5), (6, 5), (5, 5), (5, 5)]))
    assert direction_reversals(slow, [0, 3], min_speed=0.5).tolist() == [1.0]
    assert np.isnan(direction_reversals(slow, [0, 3], min_speed=0.6)).all()


def test_missing_object_makes_that_clip_undefined():
    pos = [(5, 5), (7, 5), (9, 5), None, None, None]
    result = summary(square_video(pos), [0, 3])
    assert result["frames_without_object"] == 3
    assert result["mean_speed_inside"] == 2.0
    assert math.isnan(result["velocity_jump_per_seam"][0])
    assert math.isnan(result["direction_reversal_per_seam"][0])
    assert result["direction_reversals"] == 0 and result["reversals_per_seam"] == 0.0


def test_summary_of_one_clip_has_no_seams():
    result = summary(square_video([(1, 1), (2, 1), (3, 1)]), [0])
    assert result["velocity_jump_per_seam"] == [] and math.isnan(result["mean_velocity_jump"])
    assert math.isnan(result["reversals_per_seam"]) and result["mean_speed_inside"] == 1.0


def test_summary_of_the_jump_back():
    result = summary(right_then_back(), [0, 4])
    assert result["velocity_jump_per_seam"] == [10.0] and result["mean_velocity_jump"] == 10.0
    assert result["jump_to_speed_ratio"] == 5.0
    assert result["seam_velocities"] == [[-8.0, 0.0]]
    assert result["direction_reversals"] == 0 and result["frames_without_object"] == 0


def test_track_summary_of_a_known_track():
    # clip 0 (frames 0-2) moves +1 px/frame in x, then the seam jumps +8, clip 1 (3-5) moves +1 again;
    # frame 6 has no object, so clip 1's last pair is left out.
    track = np.array([[0, 5], [1, 5], [2, 5], [10, 5], [11, 5], [12, 5], [np.nan, np.nan]], dtype=float)
    result = track_summary(track, [0, 3], threshold=7.0)
    assert result["threshold"] == 7.0 and result["frames_without_object"] == 1
    assert result["clip_velocities"] == [[1.0, 0.0], [1.0, 0.0]] and result["mean_speed_inside"] == 1.0
    assert result["seam_velocities"] == [[8.0, 0.0]] and result["velocity_jump_per_seam"] == [7.0]
    assert result["jump_to_speed_ratio"] == 7.0 and result["direction_reversal_per_seam"] == [0.0]
    assert result["centroid_track"][:2] == [[0.0, 5.0], [1.0, 5.0]]


@pytest.mark.parametrize(("starts", "threshold"), [([0, 4], 40.0), ([0], 40.0), ([0, 2, 5], 30.0)])
def test_summary_is_the_track_summary_of_the_centroid_track(starts, threshold):
    video = square_video([(10, 5), None, (14, 5), (16, 6), (8, 5), (10, 5), (12, 5), (14, 5)])
    got = track_summary(centroid_track(video, threshold), starts, threshold, min_speed=0.5)
    want = summary(video, starts, threshold, min_speed=0.5)
    assert json.dumps(got) == json.dumps(want)  # nan written as NaN on both sides


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: centroid_track(np.zeros((4, 8, 8))), "frames"),
        (lambda: centroid_track(np.full((1, 8, 8, 3), np.nan)), "finite"),
        (lambda: foreground_mask(np.zeros((1, 8, 8, 3)), threshold=-1), "threshold"),
        (lambda: mean_inside_speed(np.zeros((4, 2)), [1, 2]), "clip_starts"),
        (lambda: mean_inside_speed(np.zeros((4, 2)), [0, 2, 2]), "clip_starts"),
        (lambda: mean_inside_speed(np.zeros((4, 2)), [0, 4]), "clip_starts"),
        (lambda: mean_inside_speed(np.zeros((4, 3)), [0]), "track"),
        (lambda: direction_reversals(np.zeros((4, 2)), [0, 2], min_speed=math.inf), "min_speed"),
        (lambda: track_summary(np.zeros((4, 3)), [0, 2]), "track"),
        (lambda: track_summary(np.zeros((4, 2)), [0, 4]), "clip_starts"),
        (lambda: track_summary(np.zeros((4, 2)), [0, 2], min_speed=-1.0), "min_speed"),
    ],
)
def test_bad_arguments_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_saturation_keeps_the_shape_and_drops_dull_stripes():
    video = square_video([(3, 7), (10, 2)], background=(30, 30, 40))
    stripes = np.zeros(video.shape[:3], bool)
    stripes[:, :, ::4] = True
    video[stripes & (video != RED).any(-1)] = (90, 90, 100)  # dull stripes, 60 levels from the median
    assert foreground_mask(video).sum() > 32  # without saturation the stripes count as object
    mask = foreground_mask(video, saturation=80)
    assert mask.sum() == 32 and mask[0, 7:11, 3:7].all() and mask[1, 2:6, 10:14].all()
    np.testing.assert_array_equal(centroid_track(video, saturation=80), [[4.5, 8.5], [11.5, 3.5]])
    assert summary(video, [0], saturation=80)["saturation"] == 80.0
    with pytest.raises(ValueError, match="saturation"):
        foreground_mask(video, saturation=-1)


def test_velocity_changes_by_hand():
    xs = [0.0, 1.0, 3.0, 6.0, 6.0, 7.0, 9.0]  # v = 1, 2, 3 | 0 (the seam) | 1, 2
    track = np.stack([xs, np.zeros(7)], axis=1)
    np.testing.assert_array_equal(velocity_changes(track, [0, 4]), [1.0, 1.0, 1.0])
    assert summary(square_video([(int(x), 3) for x in xs]), [0, 4])["mean_velocity_change_inside"] == 1.0
