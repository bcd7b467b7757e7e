"""Sampler wrappers that see every clip a `LongVideoSampler` streams out, for callers (the CLI, the seams
benchmark, the notebook) that run the sampler inside a pipeline which decodes each clip itself:
`LatentRecorder` keeps the clips' latents, `LatentStreamer` feeds them to the streamed latent metrics
and keeps nothing. Both chain before the caller's `on_clip` and otherwise act as the wrapped sampler.
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks.streaming import LatentMetrics
from samplers import Clip, LongVideoSampler


class LatentRecorder:
    """A sampler wrapper that keeps the latents of every clip the wrapped `LongVideoSampler` streams out.

    `VidRDPipeline` decodes each clip in its own `on_clip` callback and never returns latents; passing
    this wrapper as its `sampler` chains the recorder before that callback, so the latent-space metrics
    see exactly the latents that were decoded, and the pipeline stays unchanged.
    """

    def __init__(self, sampler: LongVideoSampler) -> None:
        self.sampler = sampler
        self.clips: list[torch.Tensor] = []

    def sample(self, *args: Any, on_clip=None, **kwargs: Any):
        """`LongVideoSampler.sample` with the same arguments; each clip is recorded, then passed on."""

        def record(clip: Clip) -> None:
            self.clips.append(clip.latents.detach().to("cpu", torch.float32))
            if on_clip is not None:
                on_clip(clip)

        self.clips = []
        return self.sampler.sample(*args, on_clip=record, **kwargs)

    @property
    def latents(self) -> torch.Tensor:
        """(B, C, L, H, W): the recorded clips joined along the frames."""
        return torch.cat(self.clips, dim=2)


class LatentStreamer:
    """A sampler wrapper that feeds each clip the wrapped `LongVideoSampler` streams out to the streaming
    latent metrics (benchmarks.streaming.LatentMetrics) and keeps nothing else: memory flat in --clips."""

    def __init__(self, sampler: LongVideoSampler, skip: int) -> None:
        self.sampler, self.skip = sampler, skip
        self.metrics = LatentMetrics(skip)

    def __getattr__(self, name: str) -> Any:  # the wrapped sampler's check_clip, drop_prompt_frames, ...
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)

    def __repr__(self) -> str:
        return repr(self.sampler)

    def sample(self, *args: Any, on_clip=None, **kwargs: Any):
        """`LongVideoSampler.sample` with the same arguments; each clip is measured, then passed on."""

        def measure(clip: Clip) -> None:
            self.metrics.update(clip.latents.detach().to("cpu", torch.float32), clip.start)
            if on_clip is not None:
                on_clip(clip)

        self.metrics = LatentMetrics(self.skip)
        return self.sampler.sample(*args, on_clip=measure, **kwargs)
