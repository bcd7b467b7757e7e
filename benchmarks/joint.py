"""The long-video methods that are not clip by clip, as the benchmarks name and configure them.

Each name maps to a function of the clip length N giving `sample(denoiser, scheduler, shape, steps,
generator, **cond) -> LongVideo` for a long video of `shape` (B, C, L, H, W), `cond` going to every
denoiser call:
  windows:flat, windows:pyramid   windowed co-denoising (samplers.windows): windows of N frames
                                  overlapping by N/4 (ComfyUI's default 16/4), the uniform schedule;
  freenoise                       FreeNoise whole (samplers.freenoise): its long noise, then static windows
                                  of N frames every N/4 frames with pyramid fusion (the authors' 16/4);
  fifo:1, fifo:4                  FIFO-Diffusion (samplers.fifo) with 1 or 4 partitions;
  fifo:4:lookahead                and with lookahead denoising (the authors' default configuration).
Windows also take the initial noise that noise initializers make clip by clip (`windows:pyramid+pns:4`:
`LongVideoSampler.initial_noise`, `NOISE_TAKERS`); FreeNoise and FIFO make their own noise.
FIFO steps its own schedule of n N steps (the `steps` given is not used). None of them has clips: their
`clip_starts`, where the seam metrics are read, are the static windows' first frames (windows, less a
last one within a stride of the one before; for
FreeNoise, whose windows start every N/4 frames, those every N frames) or every N frames (FIFO, whose
partition boundaries move with the queue).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from samplers import LongVideoSampler
from samplers.fifo import FIFO
from samplers.freenoise import FreeNoise
from samplers.sampler import LongVideo
from samplers.windows import ContextWindows, WindowedSampler

Sample = Callable[..., LongVideo]


def _windows(fusion: str) -> Callable[[int], Sample]:
    def make(n: int) -> Sample:
        windows = ContextWindows(n, n - max(1, n // 4), "uniform", fusion)

        def sample(denoiser: Any, scheduler: Any, shape, steps: int, generator=None, noise=None, **cond: Any):
            video = WindowedSampler(windows).sample(denoiser, scheduler, shape, steps, generator, noise=noise,
                                                    **cond)  # fmt: skip
            return LongVideo(video.latents, spaced(video.clip_starts, windows.stride))

        return sample

    return make


def spaced(starts: list[int], stride: int) -> list[int]:
    """The window starts at least `stride` frames after the previous one kept: the last window, flush with
    the video's end, can start a few frames after the one before it, too close for a seam window."""
    kept = starts[:1]
    for start in starts[1:]:
        if start - kept[-1] >= stride:
            kept.append(start)
    return kept


def _freenoise(n: int) -> Sample:
    freenoise = FreeNoise(ContextWindows(n, max(1, n // 4), "static", "pyramid"))

    def sample(denoiser: Any, scheduler: Any, shape, steps: int, generator=None, **cond: Any) -> LongVideo:
        video = freenoise.sample(denoiser, scheduler, shape, steps, generator, **cond)
        # a window starts every N/4 frames: the seams are read at those every N frames, like the clips'
        return LongVideo(video.latents, [s for s in video.clip_starts if s % n == 0])

    return sample


def _fifo(partitions: int, lookahead: bool) -> Callable[[int], Sample]:
    def make(n: int) -> Sample:
        fifo = FIFO(n, partitions, lookahead)

        def sample(denoiser: Any, scheduler: Any, shape, steps: int, generator=None, **cond: Any):
            return fifo.sample(denoiser, scheduler, shape, generator, **cond)  # its own n N steps

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
NOISE_TAKERS = ("windows:flat", "windows:pyramid")  # methods whose initial noise initializers may make


@dataclass(frozen=True)
class Joint:
    """A method of JOINT_METHODS, with the initial noise of the noise initializers `noise` (clip by clip,
    end to end) where it takes one (NOISE_TAKERS); benchmarks.compare.check_combination parses its names."""

    name: str
    noise: tuple[Any, ...] = ()

    def check_clip(self, num_frames: int, prompt_frames: int) -> None:
        """ValueError, before any work, unless the noise initializers suit clips of `num_frames`."""
        if self.noise:
            LongVideoSampler(list(self.noise), prompt_frames=prompt_frames).check_clip(num_frames)

    def sample(self, denoiser: Any, scheduler: Any, clip_shape, num_clips: int, steps: int, generator,
               prompt_frames: int, **cond: Any) -> LongVideo:  # fmt: skip
        """The long video of `num_clips` clips of `clip_shape` (B, C, N, H, W), made at once."""
        shape = (*clip_shape[:2], clip_shape[2] * num_clips, *clip_shape[3:])
        if self.noise:
            clips = LongVideoSampler(list(self.noise), prompt_frames=prompt_frames, progress=False)
            cond["noise"] = clips.initial_noise(clip_shape, num_clips, generator)
        return JOINT_METHODS[self.name](clip_shape[2])(denoiser, scheduler, shape, steps, generator, **cond)
