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
pipeline's own loop (tests/test_families.py).

Decoding streams (models.stream_decode): each clip is decoded with the last `decode_context` latent
frames before it, so memory stays flat in the number of clips and no seam is added by the VAE.
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
from .stream_decode import StreamingDecoder
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
    def from_pipe(cls, pipe: Any) -> Any:
        """The long-video pipeline of `pipe`: a diffusers Wan, CogVideoX, LTX-Video, HunyuanVideo or Mochi
        pipeline, or the kit's VidRDPipeline (which is already long: returned as is)."""
        from .pipeline import VidRDPipeline

        if isinstance(pipe, VidRDPipeline):
            return pipe
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
        check_int("num_clips", num_clips, 1)
        check_generator(generator)
        check_int("decode_context", decode_context, 1)
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}; got {output_type!r}")
        if sink is not None and not isinstance(sink, FrameSink):
            raise TypeError(f"sink must be a FrameSink (with write(frames) and close()); got {sink!r}")
        if on_clip is not None and not callable(on_clip):
            raise TypeError(f"on_clip must be None or a callable Clip -> None; got {on_clip!r}")
        # no strategy: independent clips (prompt_frames is then unused; 1 fits every clip length)
        sampler = sampler if sampler is not None else LongVideoSampler(prompt_frames=1, progress=False)
        if not callable(getattr(sampler, "sample", None)):
            raise TypeError(f"sampler must be a LongVideoSampler (with .sample); got {sampler!r}")
        plan = self.family.plan(num_clips, generator, {"prompt": prompt, **kwargs})
        self._check_prompt_frames(sampler, plan.clip_shape[2], kwargs)
        decode = output_type != "latent"
        decoder = StreamingDecoder(self._decode, self.family.temporal, decode_context) if decode else None
        kept_frames: list[torch.Tensor] = []
        starts: list[int] = []  # pixel frame of each clip's start
        made = [0]  # pixel frames decoded so far

        def on_finished(clip: Clip) -> None:
            if decoder is not None:
                frames = decoder(clip.latents)
                starts.append(made[0])
                made[0] += frames.shape[2]
                if sink is not None:
                    sink.write(to_uint8_frames(frames)[0])
                else:
                    kept_frames.append(frames.float().cpu())
            if on_clip is not None:
                on_clip(clip)

        with torch.no_grad():
            video = sampler.sample(
                plan.denoiser, plan.schedule, plan.clip_shape, num_clips, plan.num_inference_steps,
                generator=generator, dtype=plan.dtype, device=plan.device, on_clip=on_finished,
                clip_cond=plan.clip_cond,
            )
        frames = _frames(kept_frames, output_type) if decode and sink is None else None
        return LongVideoOutput(frames=frames, latents=video.latents, clip_starts=starts if decode else [],
                               latent_clip_starts=video.clip_starts)  # fmt: skip

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.family.decode_latents(latents)

    def _check_prompt_frames(self, sampler: Any, latent_frames: int, kwargs: dict[str, Any]) -> None:
        """The sampler's checks of the clip, in latent frames, with the pixel count named."""
        try:
            sampler.check_clip(latent_frames)
        except ValueError as error:
            raise ValueError(
                f"{error} (prompt_frames counts latent frames: num_frames={kwargs.get('num_frames')} pixel "
                f"frames are {latent_frames} latent frames per clip)"
            ) from None


def _frames(clips: list[torch.Tensor], output_type: str) -> np.ndarray | list:
    """Decoded clips (B, 3, n, H, W) in about [-1, 1] -> the pipeline's "np" or "pil" output."""
    video = torch.cat(clips, dim=2)
    array = rearrange(((video.clamp(-1, 1) + 1) / 2).numpy(), "b c f h w -> b f h w c").astype(np.float32)
    if output_type == "pil":
        from PIL import Image

        pil = [[Image.fromarray((f * 255).round().astype(np.uint8)) for f in v] for v in array]
        return pil[0] if len(pil) == 1 else pil
    return array[0] if len(array) == 1 else array
