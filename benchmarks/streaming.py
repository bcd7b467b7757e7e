"""Streaming continuity metrics: fed one clip at a time, equal to the batch metrics on the whole video.

`vidrd generate` used to keep every latent and every decoded frame of the long video only to compute its
metrics at the end. These objects take each clip as the sampler streams it out (`update(clip, start)`,
`start` = the clip's first frame in the long video) and return from `result()` what the batch function
returns on the concatenated video, up to float rounding (running float64 sums instead of one pass).

State kept, and why it is bounded in the number of clips K:

- `SeamJumpRatio`: the last frame of the previous clip (B, C, 1, H, W), for the seam pair (b-1, b), and two
  running sums with counts: of the per-pair mean squared difference at seams and inside clips.
- `MirrorCorrelation`: the tail of the previous clip (at most one clip: offsets j <= J_b < both clips'
  lengths, and at most max_offset + 1 frames when max_offset is set), its length, and the pooled
  co-moments of the pairs (x[b-1-j], x[b+j]) seen so far (count, two means, two sums of squared
  deviations, one sum of cross products), merged seam by seam (Chan et al.'s update, no cancellation).
- `PixelMetrics`: the centroid track, two floats per frame. It is part of the summary itself
  (`centroid_track`), so no smaller state can return it; every other field is a function of the track and
  the clip starts (`pixel_metrics.track_summary`). Frames are dropped once their centroids are known.
- `LatentMetrics`: both latent metrics, and `vidrd generate`'s dict around them (None with a reason).
- `ContactSheetClips`: the contact sheet draws every frame of every clip it shows, so it is bounded only
  if it shows at most `max_rows` clips (evenly spaced, first and last included); with the default
  max_rows=None it keeps every frame, as the sheet needs today.

`FanOutSink` forwards each decoded clip to the video file and feeds it to the frame streams.

Every object also keeps `clip_starts`, one integer per clip. Each `update` checks the clip (its shape
against the previous clips', that it is finite, that `start` is the number of frames seen so far) and
raises ValueError naming the parameter; `result()` raises the batch function's ValueError where it would.
"""

from __future__ import annotations

from itertools import pairwise
from numbers import Integral
from typing import Any

import numpy as np
import torch

from samplers.validation import check_int

from . import pixel_metrics
from .metrics import _video, check_clip_starts


def _start(start: int, expected: int) -> int:
    if isinstance(start, bool) or not isinstance(start, Integral) or start != expected:
        raise ValueError(f"start must be {expected} (the number of frames seen so far); got {start!r}")
    return int(start)


class _Clips:
    """Bookkeeping every stream shares: the clip starts, the frames seen so far (`length`) and the shape
    every frame of every clip must keep."""

    def __init__(self) -> None:
        self.clip_starts: list[int] = []
        self.length = 0
        self._frame_shape: tuple[int, ...] | None = None

    def _count(self, start: int, frames: int, frame_shape: tuple[int, ...], layout: str, got) -> None:
        """Count a clip of `frames` frames at `start`; ValueError if it is empty or its frames' shape is
        not the earlier clips' (`layout` is "what must be (...) with (per-frame axes)")."""
        if frames < 1 or self._frame_shape not in (None, frame_shape):
            raise ValueError(f"{layout} = {self._frame_shape or 'any'}; got {got}")
        self.clip_starts.append(_start(start, self.length))
        self.length += frames
        self._frame_shape = frame_shape


class _LatentClips(_Clips):
    """The latent streams' clips: float64 numpy (B, C, n, H, W)."""

    def _accept(self, latents: torch.Tensor, start: int) -> np.ndarray:
        """The clip as float64 numpy (B, C, n, H, W), n >= 1, after every check; then counts it."""
        x = _video("latents", latents)
        frame_shape = (*x.shape[:2], *x.shape[3:])
        layout = "latents must be (B, C, n >= 1, H, W) with (B, C, H, W)"
        self._count(start, x.shape[2], frame_shape, layout, tuple(x.shape))
        return x

    @property
    def shape(self) -> tuple[int, ...]:
        """(B, C, L, H, W) of the video so far, as `torch.cat(clips, dim=2).shape` would be."""
        if self._frame_shape is None:
            raise ValueError("latents: no clip has been added yet")
        b, c, h, w = self._frame_shape
        return (b, c, self.length, h, w)


class SeamJumpRatio(_LatentClips):
    """Streaming `metrics.seam_jump_ratio`: update(latents (B, C, n, H, W), start), then result()."""

    def __init__(self) -> None:
        super().__init__()
        self._last: np.ndarray | None = None  # (B, C, 1, H, W): the previous clip's last frame
        self._seam = [0.0, 0]  # sum of the per-pair mean squared differences, number of pairs
        self._inside = [0.0, 0]

    def update(self, latents: torch.Tensor, start: int) -> None:
        x = self._accept(latents, start)
        if self._last is not None:
            self._seam[0] += float(((x[:, :, :1] - self._last) ** 2).mean())
            self._seam[1] += 1
        sq = (np.diff(x, axis=2) ** 2).mean(axis=(0, 1, 3, 4))  # sq[f]: pair (f, f+1) of this clip
        self._inside[0] += float(sq.sum())
        self._inside[1] += sq.size
        self._last = x[:, :, -1:].copy()

    def result(self) -> float:
        check_clip_starts(self.clip_starts, self.length)  # the batch function's error for fewer than 2 clips
        if self._inside[1] == 0:
            raise ValueError(f"clip_starts must leave a clip of >= 2 frames; got {self.clip_starts}")
        num, den = self._seam[0] / self._seam[1], self._inside[0] / self._inside[1]
        return float(num / den) if den > 0 else (float("inf") if num > 0 else float("nan"))


class _Comoments:
    """Pooled count, means, sums of squared deviations and of cross products of pairs (a_i, b_i)."""

    def __init__(self) -> None:
        self.n, self.mean_a, self.mean_b, self.ss_a, self.ss_b, self.cross = 0, 0.0, 0.0, 0.0, 0.0, 0.0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        a, b = a.ravel(), b.ravel()
        n, mean_a, mean_b = a.size, float(a.mean()), float(b.mean())
        da, db = a - mean_a, b - mean_b
        total = self.n + n
        shift_a, shift_b, weight = mean_a - self.mean_a, mean_b - self.mean_b, self.n * n / total
        self.ss_a += float(da @ da) + shift_a * shift_a * weight
        self.ss_b += float(db @ db) + shift_b * shift_b * weight
        self.cross += float(da @ db) + shift_a * shift_b * weight
        self.mean_a += shift_a * n / total
        self.mean_b += shift_b * n / total
        self.n = total

    def pearson(self) -> float:
        """As `metrics.pearson` on all pairs: nan when either side has zero variance."""
        denom = np.sqrt(self.ss_a * self.ss_b)
        return float(self.cross / denom) if denom > 0 else float("nan")


class MirrorCorrelation(_LatentClips):
    """Streaming `metrics.mirror_correlation(latents, clip_starts, skip, max_offset)`."""

    def __init__(self, skip: int, max_offset: int | None = None) -> None:
        super().__init__()
        self.skip = check_int("skip", skip, 0, np.iinfo(np.int64).max)
        self.max_offset = None if max_offset is None else check_int("max_offset", max_offset, skip, 2**62)
        self._tail: np.ndarray | None = None  # the previous clip's last frames (all, or max_offset + 1)
        self._tail_clip_length = 0
        self._pairs = _Comoments()

    def update(self, latents: torch.Tensor, start: int) -> None:
        x = self._accept(latents, start)
        if self._tail is not None:
            last = min(self._tail_clip_length, x.shape[2]) - 1  # J_b
            last = last if self.max_offset is None else min(last, self.max_offset)
            offsets = np.arange(self.skip, last + 1)
            if offsets.size:
                self._pairs.add(self._tail[:, :, -1 - offsets], x[:, :, offsets])
        keep = x.shape[2] if self.max_offset is None else min(x.shape[2], self.max_offset + 1)
        self._tail, self._tail_clip_length = x[:, :, -keep:].copy(), x.shape[2]

    def result(self) -> float:
        starts = check_clip_starts(self.clip_starts, self.length)
        check_int("skip", self.skip, 0, self.length)
        if self.max_offset is not None:
            check_int("max_offset", self.max_offset, self.skip, self.length)
        if self._pairs.n == 0:
            raise ValueError(
                f"skip={self.skip} (max_offset={self.max_offset}) leaves no offsets inside the clips "
                f"around the seams of clip_starts={starts}"
            )
        return self._pairs.pearson()


class LatentMetrics:
    """`vidrd generate`'s latent metrics, streamed: the dict `benchmarks.cli.latent_metrics(latents,
    clip_starts, skip)` returns, with None and a reason where a metric is undefined."""

    def __init__(self, skip: int) -> None:
        self.seam_jump = SeamJumpRatio()
        self.mirror = MirrorCorrelation(skip)

    def update(self, latents: torch.Tensor, start: int) -> None:
        self.seam_jump.update(latents, start)
        self.mirror.update(latents, start)

    @property
    def shape(self) -> tuple[int, ...]:
        """(B, C, L, H, W) of the whole latent video."""
        return self.seam_jump.shape

    def result(self) -> dict:
        starts, skip = self.seam_jump.clip_starts, self.mirror.skip
        result: dict = {"seam_jump_ratio": None, "mirror_correlation": None, "mirror_correlation_skip": skip}
        reasons: dict[str, str] = {}
        lengths = np.diff([*starts, self.seam_jump.length]).tolist()
        if len(starts) < 2:
            reasons["seam_jump_ratio"] = reasons["mirror_correlation"] = "needs at least 2 clips (a seam)"
        else:
            result["seam_jump_ratio"] = self.seam_jump.result()
            if min(lengths) > skip:
                result["mirror_correlation"] = self.mirror.result()
            else:
                reasons["mirror_correlation"] = (
                    f"every clip needs more than skip={skip} frames (the prompt frames); "
                    f"clip lengths {lengths}"
                )
        for name in ("seam_jump_ratio", "mirror_correlation"):
            value = result[name]
            if value is not None and not np.isfinite(value):
                reasons[name] = f"undefined ({value}): the frames do not change inside clips"
                result[name] = None
        result["reasons"] = reasons
        return result


class _FrameClips(_Clips):
    """The frame streams' clips: uint8 arrays (n, H, W, 3)."""

    def _accept(self, frames: np.ndarray, start: int) -> np.ndarray:
        arr = np.asarray(frames)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"frames must be an array (n >= 1, H, W, 3); got shape {arr.shape}")
        layout = "frames must be an array (n >= 1, H, W, 3) with (H, W, 3)"
        self._count(start, arr.shape[0], arr.shape[1:], layout, f"shape {arr.shape}")
        return arr

    @property
    def num_frames(self) -> int:
        return self.length

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """(H, W, 3) of every frame."""
        if self._frame_shape is None:
            raise ValueError("frames: no clip has been added yet")
        return self._frame_shape


class PixelMetrics(_FrameClips):
    """Streaming `pixel_metrics.summary(frames, clip_starts, threshold, min_speed, saturation)`:
    update(frames of a clip (n, H, W, 3), start), then result() -> the same dict."""

    def __init__(
        self,
        threshold: float = pixel_metrics.DEFAULT_THRESHOLD,
        min_speed: float = pixel_metrics.DEFAULT_MIN_SPEED,
        saturation: float | None = None,
    ) -> None:
        super().__init__()
        self.threshold = pixel_metrics._nonnegative("threshold", threshold)
        self.min_speed = pixel_metrics._nonnegative("min_speed", min_speed)
        self.saturation = None if saturation is None else pixel_metrics._nonnegative("saturation", saturation)
        self._tracks: list[np.ndarray] = []  # (n, 2) centroids per clip

    def update(self, frames: np.ndarray, start: int) -> None:
        track = pixel_metrics.centroid_track(frames, self.threshold, self.saturation)  # checks finiteness
        self._accept(frames, start)
        self._tracks.append(track)

    def result(self) -> dict:
        if not self._tracks:
            raise ValueError("frames must be an array (L, H, W, 3) with L >= 1; got no clip")
        track = np.concatenate(self._tracks)
        return pixel_metrics.track_summary(
            track, self.clip_starts, self.threshold, self.min_speed, self.saturation
        )


def sheet_rows(num_clips: int, max_rows: int | None) -> list[int]:
    """The clips a contact sheet of at most `max_rows` rows shows: all, or evenly spaced ones including
    the first and the last (max_rows >= 2)."""
    num_clips = check_int("num_clips", num_clips, 1, 2**62)
    if max_rows is None or num_clips <= max_rows:
        return list(range(num_clips))
    check_int("max_rows", max_rows, 2, 2**62)
    return sorted({round(k * (num_clips - 1) / (max_rows - 1)) for k in range(max_rows)})


class ContactSheetClips(_FrameClips):
    """The frames a contact sheet draws (every frame of every clip it shows), collected clip by clip.

    With max_rows=None (default) it keeps every clip; `frames` and `sheet_clip_starts` are then exactly the
    `save_contact_sheet(frames, clip_starts, ...)` arguments of today. With max_rows it keeps only the clips
    of `sheet_rows(num_clips, max_rows)`: memory is bounded, and `rows` gives each kept clip's index and
    first frame in the long video, for labels.
    """

    def __init__(self, num_clips: int | None = None, max_rows: int | None = None) -> None:
        super().__init__()
        if max_rows is not None and num_clips is None:
            raise ValueError("num_clips must be given with max_rows (to space the rows evenly)")
        self._show = None if max_rows is None else set(sheet_rows(num_clips, max_rows))
        self._clips: list[np.ndarray] = []
        self.rows: list[tuple[int, int]] = []  # (clip index, first frame in the long video) per kept clip

    def update(self, frames: np.ndarray, start: int) -> None:
        arr = self._accept(frames, start)
        index = len(self.clip_starts) - 1
        if self._show is None or index in self._show:
            self._clips.append(arr.copy())
            self.rows.append((index, start))

    @property
    def frames(self) -> np.ndarray:
        """(sum of the kept clips' lengths, H, W, 3): the kept clips, joined."""
        if not self._clips:
            raise ValueError("frames: no clip has been added yet")
        return np.concatenate(self._clips)

    @property
    def sheet_clip_starts(self) -> list[int]:
        """The first frame of every kept clip inside `frames`."""
        return np.cumsum([0, *(len(c) for c in self._clips[:-1])]).tolist()


class FanOutSink:
    """A FrameSink that writes every clip to `sink`, then feeds it to each stream as update(frames, start).

    Each `write` must be one whole clip, as `VidRDPipeline` writes them (the streams count one clip per
    call). `close` does not close `sink`: its owner does."""

    def __init__(self, sink, *streams) -> None:
        self.sink, self.streams = sink, streams
        self.frames_written = 0

    def write(self, frames: np.ndarray) -> None:
        self.sink.write(frames)
        for stream in self.streams:
            stream.update(frames, self.frames_written)
        self.frames_written += len(frames)

    def close(self) -> None:
        pass


def latent_metrics(latents: torch.Tensor, clip_starts: list[int], skip: int) -> dict[str, Any]:
    """Seam-jump ratio and mirror correlation (skip = prompt frames) of a whole video; None with a reason
    where undefined. The same numbers as `vidrd generate` streams (LatentMetrics)."""
    stream = LatentMetrics(skip)
    for start, end in pairwise([*clip_starts, latents.shape[2]]):
        stream.update(latents[:, :, start:end], start)
    return stream.result()
