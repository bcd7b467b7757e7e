"""Temporal quality of a video in pixels, the way users know it from VBench, offline and streaming.

All scores read uint8 RGB frames (H, W, 3) one chunk at a time (`TemporalQuality.update`), so a long
video never has to be held in memory; `result()` gives:
  temporal_flickering   VBench's formula: (255 - mean |f_t - f_{t+1}|) / 255, the mean absolute difference
                        of consecutive frames over every pixel and channel (1: no change at all);
  motion_smoothness     a stand-in for VBench's (which interpolates with a learned model): each frame
                        against the mean of its two neighbours, (255 - mean |f_t - (f_{t-1} + f_{t+1}) / 2|)
                        / 255 (1: every frame on the straight line between its neighbours);
  dynamic_degree        the mean speed (px/frame) of the centroid of the pixels that differ from the
                        background colour (the median colour of the first frame) by more than `threshold`
                        grey levels in some channel, over consecutive frames that have such pixels (0 for
                        a still video); a stand-in for optical flow that suits a plain background;
  brightness_drift      the least-squares slope of the mean luma (0.299 R + 0.587 G + 0.114 B) over frame
                        indices, times the number of frames - 1: the change over the video, in grey levels;
  colour_drift          the same slope for each of R, G, B, as the Euclidean norm of the three changes.
"""

from __future__ import annotations

import itertools

import numpy as np

from samplers.validation import check_real

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 weights of R, G, B
SCORES = ("temporal_flickering", "motion_smoothness", "dynamic_degree", "brightness_drift", "colour_drift")


class TemporalQuality:
    """Streaming accumulator of SCORES over the frames of one video, given in order, in chunks."""

    def __init__(self, threshold: float = 16.0) -> None:
        self.threshold = check_real("threshold", threshold, 0.0, 255.0)
        self.frames = 0
        self._last: list[np.ndarray] = []  # the last two frames (float64), for differences across chunks
        self._shape: tuple[int, ...] | None = None  # (H, W, 3) of the first frame
        self._background: np.ndarray | None = None  # the median colour of the first frame
        self._flicker = self._smooth = 0.0  # sums of per-frame mean absolute errors
        self._centroids: list[np.ndarray | None] = []
        self._means = []  # per-frame mean (R, G, B)

    def update(self, frames: np.ndarray, start: int | None = None) -> None:
        """Frames (F, H, W, 3) uint8, the next F of the video (`start`, where given, must be the number of
        frames already seen: a stream of `FanOutSink`)."""
        if start is not None and start != self.frames:
            raise ValueError(f"start must be {self.frames}, the frames seen so far (in order); got {start}")
        ok = isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4
        if not ok or frames.shape[-1] != 3:
            what = getattr(frames, "dtype", type(frames).__name__)
            raise ValueError(f"frames must be a uint8 array (F, H, W, 3); got {what} of shape "
                             f"{getattr(frames, 'shape', None)}")  # fmt: skip
        if self._shape is not None and frames.shape[1:] != self._shape:
            raise ValueError(f"frames must keep the video's size {self._shape}; got {frames.shape[1:]}")
        for frame in frames.astype(np.float64):
            self._add(frame)

    def _add(self, frame: np.ndarray) -> None:
        if self._shape is None:
            self._shape = frame.shape
            self._background = np.median(frame.reshape(-1, 3), axis=0)
        if self._last:
            self._flicker += float(np.abs(frame - self._last[-1]).mean())
        if len(self._last) == 2:
            self._smooth += float(np.abs(self._last[-1] - (self._last[-2] + frame) / 2).mean())
        self._last = [*self._last[-1:], frame]
        self._centroids.append(_centroid(np.abs(frame - self._background).max(axis=-1) > self.threshold))
        self._means.append(frame.reshape(-1, 3).mean(axis=0))
        self.frames += 1

    def result(self) -> dict[str, float]:
        """SCORES of the frames so far (at least 3: smoothness needs a frame between two others)."""
        if self.frames < 3:
            raise ValueError(f"a video needs at least 3 frames for these scores; got {self.frames}")
        means = np.stack(self._means)  # (L, 3)
        index = np.arange(self.frames, dtype=np.float64)
        slopes = np.polyfit(index, means, 1)[0] * (self.frames - 1)  # change over the video, per channel
        return {
            "temporal_flickering": (255.0 - self._flicker / (self.frames - 1)) / 255.0,
            "motion_smoothness": (255.0 - self._smooth / (self.frames - 2)) / 255.0,
            "dynamic_degree": _mean_speed(self._centroids),
            "brightness_drift": float(slopes @ LUMA),
            "colour_drift": float(np.linalg.norm(slopes)),
        }


def _centroid(mask: np.ndarray) -> np.ndarray | None:
    """The (row, column) centroid of a boolean mask; None where it is empty."""
    rows, cols = np.nonzero(mask)
    return None if len(rows) == 0 else np.array([rows.mean(), cols.mean()])


def _mean_speed(centroids: list[np.ndarray | None]) -> float:
    """Mean |c_{t+1} - c_t| over consecutive frames that both have a centroid; 0 where none do."""
    steps = [np.linalg.norm(b - a) for a, b in itertools.pairwise(centroids)
             if a is not None and b is not None]  # fmt: skip
    return float(np.mean(steps)) if steps else 0.0


def temporal_quality(video: np.ndarray, threshold: float = 16.0) -> dict[str, float]:
    """SCORES of a whole uint8 video (L, H, W, 3): one `TemporalQuality` fed at once."""
    scores = TemporalQuality(threshold)
    scores.update(video)
    return scores.result()
