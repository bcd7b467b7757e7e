"""True long videos of a caption as the pixel metrics' reference (benchmarks.true_reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.pixel_metrics import SHAPE_SATURATION, summary
from benchmarks.temporal_quality import temporal_quality
from benchmarks.true_reference import true_reference
from models.data.long_world import WorldConfig, render_world, spec_for_caption, world_caption

CAPTION = "a blue square bouncing vertically over a gradient drifting right"


def test_the_reference_is_the_mean_over_true_videos_of_the_caption():
    starts = [0, 8, 16]
    reference = true_reference(CAPTION, 24, starts, count=3, seed=4)
    generator, config = torch.Generator().manual_seed(4), WorldConfig()
    videos = []
    for _ in range(3):
        spec = spec_for_caption(CAPTION, config, generator)
        assert world_caption(spec) == CAPTION
        videos.append(render_world(spec, config, 0, 24))
    jumps = [summary(v, starts, saturation=SHAPE_SATURATION)["mean_velocity_jump"] for v in videos]
    assert reference["pixel_metrics"]["mean_velocity_jump"] == pytest.approx(np.mean(jumps), rel=1e-12)
    assert reference["pixel_metrics_error"]["mean_velocity_jump"] == pytest.approx(
        np.std(jumps, ddof=1) / np.sqrt(3), rel=1e-12
    )
    flicker = [temporal_quality(v)["temporal_flickering"] for v in videos]
    assert reference["temporal_quality"]["temporal_flickering"] == pytest.approx(np.mean(flicker), rel=1e-12)
    speeds = [summary(v, starts, saturation=SHAPE_SATURATION)["mean_speed_inside"] for v in videos]
    assert reference["pixel_metrics"]["mean_speed_inside"] == pytest.approx(np.mean(speeds), rel=1e-12)
    # vertical motion over a drifting gradient: the saturated shape moves on y only, never on x
    for video in videos:
        track = summary(video, starts, saturation=SHAPE_SATURATION)["centroid_track"]
        assert np.ptp(np.array(track)[:, 0]) == 0 and np.ptp(np.array(track)[:, 1]) > 3


def test_refuses_what_is_not_a_caption_of_the_world():
    with pytest.raises(ValueError, match="caption"):
        true_reference("a red circle moving right", 24, [0, 8])
    with pytest.raises(ValueError, match="count"):
        true_reference(CAPTION, 24, [0, 8], count=0)
