"""Subject consistency from classifier features (benchmarks.subject_consistency), against hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.subject_consistency import SubjectConsistency


class MeanColour(nn.Module):
    """A stand-in classifier whose features are the clip's mean R, G, B (+1 so that black is not 0)."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4)) + 1.0


def _clip(rgb) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (4, 8, 8, 3)).copy()


def test_identical_clips_score_one_and_one_clip_is_undefined():
    score = SubjectConsistency(MeanColour())
    score.update(_clip((255, 0, 0)), 0)
    assert math.isnan(score.result())
    for k in range(1, 4):
        score.update(_clip((255, 0, 0)), 4 * k)
    assert score.result() == pytest.approx(1.0, abs=1e-12)


def test_by_hand():
    # features (mean colour in [-1, 1]) + 1: red (2, 0, 0), green (0, 2, 0), red again
    score = SubjectConsistency(MeanColour())
    for k, rgb in enumerate([(255, 0, 0), (0, 255, 0), (255, 0, 0)]):
        score.update(_clip(rgb), 4 * k)
    # clip 1: cos(red, green) = 0 twice; clip 2: cos(red, red) = 1, cos(green, red) = 0
    assert score.result() == pytest.approx((0.0 + 0.5) / 2, abs=1e-12)


def test_the_bundled_classifier_by_its_own_features():
    from benchmarks.classifier import CLASSIFIERS, load_classifier
    from benchmarks.video_scores import video_features
    from models.data.long_world import Mover, WorldConfig, WorldSpec, render_world
    from models.data.shapes import frames_to_tensor

    classifier = load_classifier(CLASSIFIERS["long"])
    video = render_world(WorldSpec((Mover("square", "green", "around", 0.8, 5.0, 10.0, 12.0),), "gray"),
                         WorldConfig(), 0, 24)  # fmt: skip
    other = render_world(WorldSpec((Mover("triangle", "red", "sideways", 0.8, 5.0, 10.0, 12.0),), "gray"),
                         WorldConfig(), 0, 8)  # fmt: skip
    clips = [video[:8], other, video[16:]]  # the subject changes in the middle clip
    score = SubjectConsistency(classifier)
    for k, clip in enumerate(clips):
        score.update(clip, 8 * k)
    f = [video_features(classifier, frames_to_tensor(c)[None])[0].double() for c in clips]
    cos = torch.nn.functional.cosine_similarity
    expected = ((cos(f[0], f[1], dim=0) + cos(f[0], f[1], dim=0)) / 2
                + (cos(f[0], f[2], dim=0) + cos(f[1], f[2], dim=0)) / 2) / 2  # fmt: skip
    assert score.result() == pytest.approx(float(expected), rel=1e-12)
    steady = SubjectConsistency(classifier)
    for k in range(3):
        steady.update(video[8 * k : 8 * k + 8], 8 * k)
    assert steady.result() > score.result()  # the same shape throughout reads as more consistent
