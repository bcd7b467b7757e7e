"""FreeNoise (Qiu et al. 2023): its noise rescheduling clip by clip (`FreeNoiseRescheduling`), and whole.

FreeNoise makes a long video's noise by reusing earlier frames' noise in locally shuffled chunks. Here it
is defined on the concatenation [zT[i-1], zT[i]], frames -N..-1 then 0..N-1: clip i is filled chunk by
chunk in order; the chunk of frames j0..j0+len-1 (j0 = 0, stride, 2*stride, ...; len = stride, the last
chunk may be shorter) takes the noise of frames j0-window..j0-window+len-1 in the order of a random
permutation. Those frames are already defined because stride <= window, so every frame of clip i is
exactly one frame of zT[i-1] and the marginals stay exactly N(0, I).

window = N, stride = 1 copies zT[i-1] forward; window = N, stride = 4 is the paper's setting for
16-frame clips (the previous clip's noise, shuffled within chunks of 4 frames).

That alone is not FreeNoise: the authors denoise the whole long video at once, over windows of N frames
every `stride` frames whose outputs are fused (`FreeNoise`: `long_noise` + samplers.windows). The noise is
the same rule on the long video: frames 0..N-1 fresh, then each chunk of `stride` frames the frames N
earlier, shuffled. The authors fuse inside the temporal attention layers; a backbone here is a black box,
so the windows' outputs are fused instead (as Gen-L-Video and ComfyUI's context windows do), with the
pyramid weights and static windows of their released defaults (16 frames, stride 4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .protocols import NoiseContext
from .sampler import LongVideo
from .schedulers import as_schedule
from .validation import check_generator, check_int
from .windows import ContextWindows, WindowedSampler


def chunk_sources(num_frames: int, window: int, stride: int) -> list[range]:
    """The source frames of every chunk of clip i, in chunk order; sources index [-N, N) (negative: clip
    i-1). The chunk starting at frame j0 has length min(stride, N - j0) and sources j0-window, ..."""
    return [
        range(j0 - window, j0 - window + min(stride, num_frames - j0))
        for j0 in range(0, num_frames, stride)
    ]


@dataclass(frozen=True)
class FreeNoiseRescheduling:
    """Each chunk of `stride` frames of clip i reuses, shuffled, the noise of the frames `window` earlier."""

    discards_candidate = True  # clips i >= 1 are built from the previous clip's noise alone (StrategyHooks)
    window: int = 16  # how far back a chunk takes its noise, in frames (1 <= stride <= window <= N)
    stride: int = 4  # chunk length, in frames

    def __post_init__(self) -> None:
        check_int("window", self.window, 1)
        check_int("stride", self.stride, 1, self.window)

    def check_clip(self, num_frames: int, prompt_frames: int) -> None:
        """The window reaches back at most one clip: stride <= window <= N (the sampler asks up front)."""
        check_int("window", self.window, self.stride, num_frames)

    def __call__(self, noise: torch.Tensor, context: NoiseContext) -> torch.Tensor:
        previous = context.previous_noise
        if previous is None:  # clip 0 keeps its candidate
            return noise
        n = noise.shape[2]
        self.check_clip(n, context.prompt_frames)
        frames = list(previous.unbind(dim=2))  # frames[n + j] is frame j of the concatenation
        for sources in chunk_sources(n, self.window, self.stride):
            order = torch.randperm(len(sources), generator=context.generator, device=context.generator.device)
            frames += [frames[n + sources[k]] for k in order.tolist()]
        return torch.stack(frames[n:], dim=2).to(noise)


def long_noise(shape: Sequence[int], window: int, stride: int, generator: torch.Generator,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:  # fmt: skip
    """FreeNoise's initial noise of a long video (B, C, L, H, W): frames 0..window-1 fresh N(0, I); then,
    chunk by chunk of `stride` frames (the last may be shorter), the noise of the frames `window` earlier,
    in the order of a random permutation. Every frame is exactly one fresh frame: unit marginals."""
    check_int("stride", stride, 1, window)
    b, c, length, h, w = shape
    fresh = torch.randn((b, c, min(window, length), h, w), generator=generator, dtype=dtype,
                        device=generator.device)  # fmt: skip
    frames = list(fresh.unbind(dim=2))
    for j0 in range(window, length, stride):
        count = min(stride, length - j0)
        order = torch.randperm(count, generator=generator, device=generator.device)
        frames += [frames[j0 - window + k] for k in order.tolist()]
    return torch.stack(frames, dim=2)


@dataclass(frozen=True)
class FreeNoise:
    """FreeNoise (Qiu et al. 2023) whole: `long_noise` over windows of `windows.size` frames every
    `windows.stride` frames, then windowed co-denoising with those windows (module docstring)."""

    windows: ContextWindows = field(default_factory=lambda: ContextWindows(16, 4, "static", "pyramid"))

    def __post_init__(self) -> None:
        if not isinstance(self.windows, ContextWindows):
            raise TypeError(f"windows must be a ContextWindows; got {self.windows!r} (the clip-by-clip "
                            "noise rule alone is FreeNoiseRescheduling(window, stride))")  # fmt: skip

    def sample(self, denoiser: Callable[..., torch.Tensor], scheduler: Any, shape: Sequence[int],
               num_inference_steps: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, **cond: Any) -> LongVideo:  # fmt: skip
        """The long video of `shape` (B, C, L, H, W); `clip_starts` are the windows' first frames."""
        check_generator(generator)
        as_schedule(scheduler)  # every check before the noise is drawn
        check_int("num_inference_steps", num_inference_steps, 1)
        if len(shape) != 5 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(f"shape must be 5 positive ints (B, C, L, H, W); got {tuple(shape)}")
        noise = long_noise(shape, self.windows.size, self.windows.stride, generator, dtype)
        return WindowedSampler(self.windows).sample(denoiser, scheduler, shape, num_inference_steps,
                                                    generator=generator, dtype=dtype, noise=noise,
                                                    **cond)  # fmt: skip
