"""Windowed co-denoising (Gen-L-Video / MultiDiffusion, ComfyUI's context windows): the long video at once.

A long latent video of L frames is denoised jointly. At every step the backbone runs on windows of N
frames (the clip length it was trained on), and each frame's model output is the weighted mean of the
outputs of the windows that hold it; then the scheduler takes one step of the whole video:

    z_{s+1} = step( sum_w W_w(j) out_w(j) / sum_w W_w(j),  t_s,  z_s )

Window schedules (`ContextWindows.schedule`), windows of `size` frames every `stride` frames:
  static   the same windows at every step, the last one flush with the video's end;
  uniform  the static windows shifted by (s * ceil(stride / 2)) mod stride frames at step s (clamped to
           the video), so that window boundaries move between steps and no frame pair always sits on one;
  looped   windows wrap around the end (frame indices mod L), for videos meant to loop.
Fusion weights (`fusion`): `flat` (every frame of a window 1) or `pyramid` (frame k of a window
min(k + 1, size - k): a window's edges count least). Per frame the normalised weights sum to one.
The cost is (windows per step) x N frame evaluations per step, against L for one pass over the video.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .sampler import LongVideo
from .schedulers import as_schedule
from .validation import check_generator, check_int

SCHEDULES = ("static", "uniform", "looped")
FUSIONS = ("flat", "pyramid")


@dataclass(frozen=True)
class ContextWindows:
    size: int = 16  # N: frames per window (the backbone's clip length)
    stride: int = 4  # frames between window starts (overlap = size - stride)
    schedule: str = "uniform"
    fusion: str = "flat"

    def __post_init__(self) -> None:
        check_int("size", self.size, 1)
        check_int("stride", self.stride, 1, self.size)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}; got {self.fusion!r}")

    def starts(self, length: int, step: int = 0) -> list[int]:
        """First frames of the windows at `step` (frame indices mod `length` for `looped`)."""
        if length <= self.size:
            return [0]
        offset = (step * math.ceil(self.stride / 2)) % self.stride  # looped and uniform move by it
        if self.schedule == "looped":
            return list(range(offset, length + offset, self.stride))[: math.ceil(length / self.stride)]
        static = [*list(range(0, length - self.size, self.stride)), length - self.size]
        if self.schedule == "static":
            return static
        shifted = [min(max(s - offset, 0), length - self.size) for s in static]
        return sorted(set(shifted) | {0, length - self.size})

    def frames(self, length: int, step: int = 0) -> list[list[int]]:
        """The frame indices of every window at `step`."""
        size = min(self.size, length)
        return [[(start + k) % length for k in range(size)] for start in self.starts(length, step)]

    def weights(self, size: int | None = None) -> torch.Tensor:
        """The fusion weight of frame k of a window, k = 0..size-1 (float64)."""
        n = self.size if size is None else size
        if self.fusion == "flat":
            return torch.ones(n, dtype=torch.float64)
        return torch.tensor([min(k + 1, n - k) for k in range(n)], dtype=torch.float64)

    def normalised(self, windows: list[list[int]], length: int) -> list[torch.Tensor]:
        """Each window's per-frame weights (windows as `frames` gives them for a video of `length`
        frames) divided by the frame's total: they sum to one per frame."""
        total = torch.zeros(length, dtype=torch.float64)
        w = self.weights(len(windows[0]))
        for frames in windows:
            total.index_add_(0, torch.tensor(frames), w)
        return [w / total[torch.tensor(frames)] for frames in windows]


class WindowedSampler:
    """`WindowedSampler(ContextWindows(size=16, stride=4)).sample(denoiser, scheduler, (B, C, L, H, W), T,
    generator=g)`: the whole long video denoised jointly over fused windows (module docstring)."""

    def __init__(self, windows: ContextWindows) -> None:
        if not isinstance(windows, ContextWindows):
            raise TypeError(f"windows must be a ContextWindows; got {windows!r}")
        self.windows = windows

    def __repr__(self) -> str:
        return f"WindowedSampler({self.windows!r})"

    def sample(self, denoiser: Callable[..., torch.Tensor], scheduler: Any, shape: Sequence[int],
               num_inference_steps: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, noise: torch.Tensor | None = None,
               **cond: Any) -> LongVideo:  # fmt: skip
        """The long video of `shape` (B, C, L, H, W) from fresh N(0, I) noise (or `noise` of that shape,
        e.g. FreeNoise's); `clip_starts` are the static windows' first frames (where a window begins)."""
        schedule = as_schedule(scheduler)
        check_generator(generator)
        check_int("num_inference_steps", num_inference_steps, 1)
        if len(shape) != 5:
            raise ValueError(f"shape must be (B, C, L, H, W); got {tuple(shape)}")
        if noise is None:
            noise = torch.randn(tuple(shape), generator=generator, dtype=dtype, device=generator.device)
        elif tuple(noise.shape) != tuple(shape):
            raise ValueError(f"noise must have the shape {tuple(shape)}; got {tuple(noise.shape)}")
        timesteps = schedule.set_timesteps(num_inference_steps, noise.device)
        latents, length = noise * schedule.init_noise_sigma, noise.shape[2]
        for s, t in enumerate(timesteps):
            fused = self._fused_output(denoiser, schedule.model_input(latents, t), t, s, cond)
            latents = schedule.step(fused, t, latents, generator)
        static = ContextWindows(self.windows.size, self.windows.stride, schedule="static")
        return LongVideo(latents=latents, clip_starts=static.starts(length))

    def _fused_output(self, denoiser, model_input: torch.Tensor, t, step: int, cond) -> torch.Tensor:
        """sum_w W_w(j) out_w(j) over the windows of `step`, with weights normalised per frame."""
        length = model_input.shape[2]
        fused = torch.zeros_like(model_input)
        windows = self.windows.frames(length, step)
        for frames, w in zip(windows, self.windows.normalised(windows, length), strict=True):
            index = torch.tensor(frames, device=model_input.device)
            out = denoiser(model_input.index_select(2, index), t, **cond)
            weight = w.to(out.device, out.dtype).reshape(1, 1, -1, 1, 1)
            fused.index_add_(2, index, out * weight)
        return fused
