"""FreeNoise-style noise rescheduling (Qiu et al. 2023), clip by clip.

FreeNoise makes a long video's noise by reusing earlier frames' noise in locally shuffled chunks. Here it
is defined on the concatenation [zT[i-1], zT[i]], frames -N..-1 then 0..N-1: clip i is filled chunk by
chunk in order; the chunk of frames j0..j0+len-1 (j0 = 0, stride, 2*stride, ...; len = stride, the last
chunk may be shorter) takes the noise of frames j0-window..j0-window+len-1 in the order of a random
permutation. Those frames are already defined because stride <= window, so every frame of clip i is
exactly one frame of zT[i-1] and the marginals stay exactly N(0, I).

window = N, stride = 1 copies zT[i-1] forward; window = N, stride = 4 is the paper's setting for
16-frame clips (the previous clip's noise, shuffled within chunks of 4 frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .protocols import NoiseContext
from .validation import check_int


def chunk_sources(num_frames: int, window: int, stride: int) -> list[range]:
    """The source frames of every chunk of clip i, in chunk order; sources index [-N, N) (negative: clip
    i-1). The chunk starting at frame j0 has length min(stride, N - j0) and sources j0-window, ..."""
    return [
        range(j0 - window, j0 - window + min(stride, num_frames - j0))
        for j0 in range(0, num_frames, stride)
    ]


@dataclass(frozen=True)
class FreeNoise:
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
