"""The long-video methods that are not clip by clip, as the benchmarks name and configure them.

Each name maps to a function of the clip length N giving `sample(denoiser, scheduler, shape, steps,
generator) -> LongVideo` for a long video of `shape` (B, C, L, H, W):
  windows:flat, windows:pyramid   windowed co-denoising (samplers.windows): windows of N frames
                                  overlapping by N/4 (ComfyUI's default 16/4), the uniform schedule;
  freenoise                       FreeNoise whole (samplers.freenoise): its long noise, then static windows
                                  of N frames every N/4 frames with pyramid fusion (the authors' 16/4);
  fifo:1, fifo:4                  FIFO-Diffusion (samplers.fifo) with 1 or 4 partitions;
  fifo:4:lookahead                and with lookahead denoising (the authors' default configuration).
FIFO steps its own schedule of n N steps (the `steps` given is not used). None of them has clips: their
`clip_starts`, where the seam metrics are read, are the static windows' first frames (windows; for
FreeNoise, whose windows start every N/4 frames, those every N frames) or every N frames (FIFO, whose
partition boundaries move with the queue).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from samplers.fifo import FIFO
from samplers.freenoise import FreeNoise
from samplers.sampler import LongVideo
from samplers.windows import ContextWindows, WindowedSampler

Sample = Callable[..., LongVideo]


def _windows(fusion: str) -> Callable[[int], Sample]:
    return lambda n: WindowedSampler(ContextWindows(n, n - max(1, n // 4), "uniform", fusion)).sample


def _freenoise(n: int) -> Sample:
    freenoise = FreeNoise(ContextWindows(n, max(1, n // 4), "static", "pyramid"))

    def sample(denoiser: Any, scheduler: Any, shape, steps: int, generator=None) -> LongVideo:
        video = freenoise.sample(denoiser, scheduler, shape, steps, generator)
        # a window starts every N/4 frames: the seams are read at those every N frames, like the clips'
        return LongVideo(video.latents, [s for s in video.clip_starts if s % n == 0])

    return sample


def _fifo(partitions: int, lookahead: bool) -> Callable[[int], Sample]:
    def make(n: int) -> Sample:
        fifo = FIFO(n, partitions, lookahead)

        def sample(denoiser: Any, scheduler: Any, shape, steps: int, generator=None) -> LongVideo:
            return fifo.sample(denoiser, scheduler, shape, generator)  # its own n N steps

        return sample

    return make


JOINT_METHODS: dict[str, Callable[[int], Sample]] = {
    "windows:flat": _windows("flat"),
    "windows:pyramid": _windows("pyramid"),
    "freenoise": _freenoise,
    "fifo:1": _fifo(1, False),
    "fifo:4": _fifo(4, False),
    "fifo:4:lookahead": _fifo(4, True),
}
JOINT_COMBINATIONS = tuple(JOINT_METHODS)
