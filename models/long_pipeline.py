"""LongVideoPipeline: any supported diffusers video pipeline (or the kit's VidRDPipeline) made long.

    pipe = WanPipeline.from_pretrained("local/Wan2.1-T2V-1.3B-Diffusers", torch_dtype=torch.bfloat16)
    long = LongVideoPipeline.from_pipe(pipe)
    result = long("a corgi runs along the beach", sampler=LongVideoSampler([FNR(), PNS(alpha=4),
                  DSG(beta=0.4)], prompt_frames=4), num_clips=6, num_frames=81,
                  generator=torch.Generator().manual_seed(0))

The call takes the wrapped pipeline's own conditioning keywords (models.families: prompt or prompt
embeddings, negative prompt, guidance, height, width, num_frames, num_inference_steps and the family's
extras), each prompt keyword either one value for every clip or a list of `num_clips` (a story), plus
`sampler`, `num_clips`, `generator`, `output_type` ("latent", "np", "pil") and a streaming `sink`.
`num_frames` counts pixel frames per clip, as the pipeline does; the sampler's `prompt_frames` counts
latent frames. Everything is checked before any model call. One clip with no strategy reproduces the
pipeline's own loop (tests/test_family_*.py).

Decoding streams, so memory stays flat in the number of clips and the VAE adds no seam: Wan's VAE keeps
its causal cache across clips (exactly the whole-video decode); the others decode each clip with the last
`decode_context` latent frames before it (models.stream_decode; benchmarks/stream_decode.py measures the
difference from a whole-video decode).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from einops import rearrange

from samplers import Clip, LongVideoSampler
from samplers.validation import check_generator, check_int

from .families import VideoFamily, family_for
from .stream_decode import pixel_range
from .video_io import FrameSink, to_uint8_frames

OUTPUT_TYPES = ("latent", "np", "pil")
DECODE_CONTEXT = 4  # latent frames decoded before each clip (benchmarks/stream_decode.py measures it)


@dataclass(frozen=True)
class LongVideoOutput:
    # "np": (L, H, W, 3) float32 in [0, 1] for one video, (B, L, H, W, 3) for several; "pil": a list of
    # L images (one video) or B lists; None for "latent" or when a sink took the frames
    frames: np.ndarray | list | None
    latents: torch.Tensor  # (B, C, L', h, w) in the kit's layout, as the pipeline's loop leaves them
    clip_starts: list[int]  # the pixel frame of `frames` where each clip starts
    latent_clip_starts: list[int]  # the latent frame of `latents` where each clip starts


class LongVideoPipeline:
    """Long videos from a diffusers video pipeline, clip by clip, with the kit's samplers."""

    def __init__(self, family: VideoFamily) -> None:
        if not isinstance(family, VideoFamily):
            raise TypeError(f"family must be a models.families.VideoFamily; got {family!r}")
        self.family = family
        self.pipe = family.pipe

    def __repr__(self) -> str:
        return f"LongVideoPipeline({type(self.pipe).__name__})"

    @classmethod
    def from_pipe(cls, pipe: Any) -> LongVideoPipeline:
        """The long-video pipeline of `pipe`: a diffusers Wan, CogVideoX, LTX-Video, HunyuanVideo or Mochi
        pipeline, or the kit's VidRDPipeline (TypeError listing them for anything else)."""
        return cls(family_for(pipe))

    def __call__(
        self,
        prompt: str | list[str] | None = None,
        *,
        sampler: LongVideoSampler | None = None,
        num_clips: int = 4,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        sink: FrameSink | None = None,
        decode_context: int = DECODE_CONTEXT,
        on_clip: Callable[[Clip], None] | None = None,
        **kwargs: Any,
    ) -> LongVideoOutput:
        sampler = self._check(sampler, num_clips, generator, output_type, sink, decode_context, on_clip)
        try:  # the family's checks, then the sampler's clip checks, all before any model call; the
            # prompts are encoded without gradients, as the pipelines' own no_grad __call__ does (torch's
            # kernels differ in the last bits with them)
            with torch.no_grad():
                plan = self.family.plan(num_clips, generator, {"prompt": prompt, **kwargs},
                                        check_frames=lambda f: self._check_clip(sampler, f))  # fmt: skip
        except ValueError as error:  # (a TypeError passes as it is)
            raise PipelineInputError(str(error)) from error
        if sink is not None and plan.clip_shape[0] != 1:
            raise PipelineInputError(
                f"sink takes one video; this call makes {plan.clip_shape[0]} (prompt embeddings with a "
                "batch): pass no sink, or one video's embeddings"
            )
        video, clips = self._sample(sampler, plan, num_clips, generator, output_type, sink,
                                    decode_context, on_clip)  # fmt: skip
        frames = _frames(clips.kept, output_type) if output_type != "latent" and sink is None else None
        starts = [pixel_range(s, 1, self.family.temporal)[0] for s in video.clip_starts]
        return LongVideoOutput(frames=frames, latents=video.latents, clip_starts=starts,
                               latent_clip_starts=video.clip_starts)  # fmt: skip

    def _sample(self, sampler, plan, num_clips, generator, output_type, sink, decode_context, on_clip):
        """The sampler's run, each finished clip decoded (streamed) into the sink or kept."""
        decoder = None
        if output_type != "latent":
            n, m = plan.clip_shape[2], sampler.prompt_frames if sampler.drop_prompt_frames else 0
            total = n + (num_clips - 1) * (n - m)  # the long video's latent frames
            decoder = self.family.stream_decoder(decode_context, plan.decode_options, total)
        clips = _ClipFrames(self.family.temporal, sink)

        def on_finished(clip: Clip) -> None:
            if decoder is not None:
                clips.expect(clip.start, clip.latents.shape[2])
                clips.add(decoder(clip.latents))
            if on_clip is not None:
                on_clip(clip)

        with torch.no_grad():
            video = sampler.sample(
                plan.denoiser, plan.schedule, plan.clip_shape, num_clips, plan.num_inference_steps,
                generator=generator, dtype=plan.dtype, device=plan.device, on_clip=on_finished,
                clip_cond=plan.clip_cond,
            )
            if decoder is not None:
                clips.add(decoder.flush())  # the frames a non-causal decoder held back for its lookahead
        return video, clips

    @staticmethod
    def _check(sampler, num_clips, generator, output_type, sink, decode_context, on_clip) -> Any:
        """The call's own arguments; returns the sampler (no strategy by default: independent clips,
        prompt_frames 1, which fits every clip length)."""
        check_int("num_clips", num_clips, 1)
        check_generator(generator)
        check_int("decode_context", decode_context, 1)
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}; got {output_type!r}")
        if sink is not None and not isinstance(sink, FrameSink):
            raise TypeError(f"sink must be a FrameSink (with write(frames) and close()); got {sink!r}")
        if sink is not None and output_type == "latent":
            raise ValueError("sink takes decoded frames; with output_type='latent' nothing is decoded")
        if on_clip is not None and not callable(on_clip):
            raise TypeError(f"on_clip must be None or a callable Clip -> None; got {on_clip!r}")
        sampler = sampler if sampler is not None else LongVideoSampler(prompt_frames=1, progress=False)
        if not all(callable(getattr(sampler, name, None)) for name in ("sample", "check_clip")):
            raise TypeError(f"sampler must be a LongVideoSampler (with .sample); got {sampler!r}")
        return sampler

    def _check_clip(self, sampler: Any, latent_frames: int) -> None:
        """The sampler's checks of the clip, in latent frames, with the pixel count named."""
        try:
            sampler.check_clip(latent_frames)
        except ValueError as error:
            pixels = pixel_range(0, latent_frames, self.family.temporal)[1]
            raise ValueError(
                f"{error} (prompt_frames counts latent frames: num_frames={pixels} pixel frames are "
                f"{latent_frames} latent frames per clip)"
            ) from None


class PipelineInputError(ValueError):
    """An argument of a LongVideoPipeline call that its family or sampler refuses, before any sampling."""


class _ClipFrames:
    """Decoded frames, handed on one whole clip at a time (to the sink, else kept): a decoder that looks
    ahead returns a clip's last frames only with the next clip's, and sinks take one clip per write."""

    def __init__(self, temporal: int, sink: FrameSink | None) -> None:
        self.temporal, self.sink = temporal, sink
        self.bounds: list[tuple[int, int]] = []  # pixel frames [start, stop) of clips not yet handed on
        self.buffer: torch.Tensor | None = None  # decoded frames not yet handed on, from `offset`
        self.offset = 0
        self.kept: list[torch.Tensor] = []

    def expect(self, latent_start: int, latent_frames: int) -> None:
        """The clip of latent frames start..start+n-1 (its pixel frames: stream_decode.pixel_range)."""
        self.bounds.append(pixel_range(latent_start, latent_frames, self.temporal))

    def _ready(self) -> bool:
        """Whether the next clip's frames are all decoded."""
        return self.offset + self.buffer.shape[2] >= self.bounds[0][1]

    def add(self, frames: torch.Tensor | None) -> None:
        if frames is not None:
            self.buffer = frames if self.buffer is None else torch.cat([self.buffer, frames], dim=2)
        while self.bounds and self.buffer is not None and self._ready():
            start, stop = self.bounds.pop(0)
            clip, self.buffer = self.buffer[:, :, : stop - start], self.buffer[:, :, stop - start :]
            self.offset = stop
            if self.sink is not None:
                self.sink.write(to_uint8_frames(clip)[0])
            else:
                self.kept.append(clip.float().cpu())


def _frames(clips: list[torch.Tensor], output_type: str) -> np.ndarray | list:
    """Decoded clips (B, 3, n, H, W) in about [-1, 1] -> the pipeline's "np" or "pil" output."""
    video = torch.cat(clips, dim=2)
    array = rearrange(((video.clamp(-1, 1) + 1) / 2).numpy(), "b c f h w -> b f h w c").astype(np.float32)
    if output_type == "pil":
        from PIL import Image

        pil = [[Image.fromarray((f * 255).round().astype(np.uint8)) for f in v] for v in array]
        return pil[0] if len(pil) == 1 else pil
    return array[0] if len(array) == 1 else array
