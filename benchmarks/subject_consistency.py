"""Subject consistency across the clips of a long video, from the shapes classifier's features, streamed.

VBench scores subject consistency as the mean over frames t >= 1 of (cos(f_1, f_t) + cos(f_{t-1}, f_t)) / 2,
with f_t the DINO features of frame t. Offline and with a clip model, the kit does the same per clip:

    subject_consistency = mean over clips k >= 1 of (cos(f_0, f_k) + cos(f_{k-1}, f_k)) / 2,

f_k the penultimate-layer features (`video_features`) of clip k from the world's classifier
(`benchmarks.classifier`: the long world's for its captions, the clip world's otherwise). 1 when every
clip reads the same to the classifier (same shape, colour, motion, wherever it is), lower as the subject
drifts; nan for a video of one clip. The state is two feature vectors and a running sum.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmarks.video_scores import video_features
from models.data.shapes import frames_to_tensor

__all__ = ["SubjectConsistency"]


class SubjectConsistency:
    """Streaming: `update(frames of one clip (n, H, W, 3) uint8, start)`, then `result()`."""

    def __init__(self, classifier: nn.Module) -> None:
        self.classifier = classifier
        self._first: torch.Tensor | None = None
        self._previous: torch.Tensor | None = None
        self._sum, self._clips = 0.0, 0

    def update(self, frames: np.ndarray, start: int | None = None) -> None:
        clip = frames_to_tensor(frames)[None]  # (1, 3, n, H, W) in [-1, 1]; refuses anything but uint8 RGB
        feature = video_features(self.classifier, clip)[0].double()
        if self._first is None:
            self._first = feature
        else:
            cos = torch.nn.functional.cosine_similarity
            self._sum += 0.5 * float(cos(self._first, feature, dim=0) + cos(self._previous, feature, dim=0))
        self._previous = feature
        self._clips += 1

    def result(self) -> float:
        """The score over the clips seen so far (nan before the second clip)."""
        return self._sum / (self._clips - 1) if self._clips > 1 else float("nan")
