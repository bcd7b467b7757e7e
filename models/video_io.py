"""Decoded frames out: conversion to uint8 and sinks that take a long video clip by clip.

A sink receives each decoded clip as soon as it is finished (`write`), so memory does not grow with the
video's length. `VideoFileSink` streams into a temporary file beside the target and renames it into
place only on a clean `close()`: a failure midway never leaves a half-written video where a good one was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from einops import rearrange

from samplers.validation import check_int

from .files import atomic_path, remove, temporary_sibling

VIDEO_SUFFIXES = (".mp4", ".gif")
MAX_FPS = 240  # frames per second a video file may ask for (players and codecs stop well before)


def to_uint8_frames(decoded: torch.Tensor) -> np.ndarray:
    """VAE output (B, 3, F, H, W) in [-1, 1] -> (B, F, H, W, 3) uint8."""
    scaled = ((decoded.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(scaled, "b c f h w -> b f h w c").cpu().numpy()


def save_video(frames: np.ndarray, path: str | os.PathLike, fps: int = 8) -> Path:
    """All frames (L, H, W, 3) uint8 at once with diffusers' `export_to_video` / `export_to_gif`, written to
    a temporary file and renamed into place."""
    from diffusers.utils import export_to_gif, export_to_video
    from PIL import Image

    check_int("fps", fps, 1, MAX_FPS)
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"path must end in one of {VIDEO_SUFFIXES}; got {str(target)!r}")
    with atomic_path(target) as tmp:
        if suffix == ".gif":
            export_to_gif([Image.fromarray(f) for f in frames], str(tmp), fps=fps)
        else:
            frames01 = [f.astype(np.float32) / 255.0 for f in frames]
            export_to_video(frames01, str(tmp), fps=fps, macro_block_size=1)
    return target


@runtime_checkable
class FrameSink(Protocol):
    """Takes uint8 frames (F, H, W, 3), clip after clip."""

    def write(self, frames: np.ndarray) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps every frame: `clips` the writes as they came (one clip each), `frames` all of them
    (L, H, W, 3) uint8 after `close()`."""

    def __init__(self) -> None:
        self.clips: list[np.ndarray] = []
        self.frames: np.ndarray | None = None

    def write(self, frames: np.ndarray) -> None:
        self.clips.append(frames)

    def close(self) -> None:
        self.frames = np.concatenate(self.clips, axis=0) if self.clips else None


class VideoFileSink:
    """Streams frames into an MP4 (imageio-ffmpeg) or GIF file; atomic on success, removed on failure.

    `atomic=False` writes straight into `path`, for a caller that already writes to a temporary path and
    moves it into place itself (`models.files.atomic_files`)."""

    def __init__(self, path: str | os.PathLike, fps: int = 8, atomic: bool = True) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"path must end in one of {VIDEO_SUFFIXES}; got {str(self.path)!r}")
        check_int("fps", fps, 1, MAX_FPS)
        # the umask's mode, renamed into place by close()
        self._tmp = temporary_sibling(self.path) if atomic else self.path
        self.atomic = atomic
        import imageio.v2 as imageio  # a dependency of the kit, imported when a file is written

        options = (
            {"fps": fps, "macro_block_size": 1}
            if self.path.suffix.lower() == ".mp4"
            else {"duration": 1 / fps}
        )
        try:
            self._writer = imageio.get_writer(self._tmp, **options)
        except BaseException:
            remove(self._tmp)
            raise
        self.frames_written = 0
        self._closed = False

    def write(self, frames: np.ndarray) -> None:
        for frame in frames:
            self._writer.append_data(frame)
        self.frames_written += len(frames)

    def close(self) -> None:
        """Finish the file and move it into place (once; later calls do nothing)."""
        if not self._closed:
            self._closed = True
            try:
                self._writer.close()
                if self.atomic:
                    os.replace(self._tmp, self.path)
            except BaseException:  # the file could not be finished: drop the partial one
                remove(self._tmp)
                raise

    def abort(self) -> None:
        """Drop the partial file; the target path is left as it was."""
        self._closed = True
        try:
            self._writer.close()
        finally:
            remove(self._tmp)

    def __enter__(self) -> VideoFileSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
