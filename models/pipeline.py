"""VidRDPipeline: text -> embeddings -> LongVideoSampler -> temporal VAE, clip by clip.

Each finished clip is decoded and handed to a sink as soon as the sampler streams it out, so neither
latents nor frames accumulate with the video's length unless the caller keeps them (`MemorySink`, the
default, does; `VideoFileSink` writes to disk).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from samplers import ClassifierFreeGuidance, Clip, LongVideoSampler
from samplers.validation import check_int, check_real

from .adapters import denoiser_for
from .video_io import FrameSink, MemorySink, to_uint8_frames


def _latent_channels(config) -> int:
    """in_channels of a diffusers UNet config, or of the 2-D UNet inside a VidRDUNet config."""
    return config["unet_config"]["in_channels"] if "unet_config" in config else config["in_channels"]


@dataclass(frozen=True)
class VidRDPipelineOutput:
    frames: np.ndarray | list | None  # (L, H, W, 3) uint8, a list of PIL images, or None (custom sink)
    clip_starts: list[int]  # first frame of every clip


class VidRDPipeline:
    def __init__(self, unet: Any, vae: Any, text_encoder: Any, scheduler: Any) -> None:
        self.unet, self.vae, self.text_encoder, self.scheduler = unet, vae, text_encoder, scheduler
        self.denoiser = denoiser_for(unet)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.vae.config.block_out_channels) - 1)

    def __call__(
        self,
        prompt: str | list[str],
        sampler: LongVideoSampler | None = None,
        num_clips: int = 4,
        num_frames: int = 16,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 10.0,
        negative_prompt: str = "",
        generator: torch.Generator | None = None,
        sink: FrameSink | None = None,
        output_type: str = "np",
    ) -> VidRDPipelineOutput:
        """One prompt for the whole video, or a list of `num_clips` prompts, one per clip (a story)."""
        prompts = self._check(prompt, num_clips, num_frames, guidance_scale, output_type)
        sampler = sampler if sampler is not None else LongVideoSampler(progress=False)
        clip_shape = self.clip_shape(1, num_frames, height, width)
        with torch.no_grad():
            embeddings = self.text_encoder.encode(prompts)  # (len(prompts), S, D)
            negative = self.text_encoder.encode([negative_prompt])
        denoiser, clip_cond = self._conditioning(embeddings, negative, guidance_scale)
        keep = sink is None
        sink = MemorySink() if keep else sink
        video = sampler.sample(
            denoiser, self.scheduler, clip_shape, num_clips, num_inference_steps,
            generator=generator, on_clip=lambda clip: self._decode_into(clip, sink), return_latents=False,
            clip_cond=clip_cond,
        )  # fmt: skip
        frames = None
        if keep:  # a sink the caller passed is the caller's to close
            sink.close()
            frames = sink.frames
        if frames is not None and output_type == "pil":
            from PIL import Image  # Pillow comes with diffusers

            frames = [Image.fromarray(f) for f in frames]
        return VidRDPipelineOutput(frames=frames, clip_starts=video.clip_starts)

    def _check(self, prompt, num_clips, num_frames, guidance_scale, output_type) -> list[str]:
        check_int("num_clips", num_clips, 1)
        check_int("num_frames", num_frames, 2)
        check_real("guidance_scale", guidance_scale, 0.0)
        if output_type not in ("np", "pil"):
            raise ValueError(f"output_type must be 'np' or 'pil'; got {output_type!r}")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if len(prompts) not in (1, num_clips) or not all(isinstance(p, str) for p in prompts):
            raise ValueError(
                f"prompt must be a string or a list of num_clips={num_clips} strings; "
                f"got {len(prompts)} items"
            )
        return prompts

    def clip_shape(self, batch: int, num_frames: int, height: int | None = None, width: int | None = None):
        """The latent clip shape (B, C, N, h, w) for frames of height x width (default: the VAE's size)."""
        size = self.vae.vae.config.sample_size
        height, width = height or size, width or size
        factor = self.vae_scale_factor
        if height % factor or width % factor:
            raise ValueError(f"height and width must be multiples of {factor}; got {height}x{width}")
        return (batch, _latent_channels(self.unet.config), num_frames, height // factor, width // factor)

    def _conditioning(self, embeddings, negative, guidance_scale):
        """The denoiser and the per-clip keyword arguments; CFG as one batched call when scale != 1."""

        def pick(i: int) -> torch.Tensor:
            return embeddings[min(i, len(embeddings) - 1)][None]

        if guidance_scale == 1.0:
            return self.denoiser, lambda i: {"encoder_hidden_states": pick(i)}
        cfg = ClassifierFreeGuidance(self.denoiser, guidance_scale)
        return cfg, lambda i: {
            "cond": {"encoder_hidden_states": pick(i)},
            "uncond": {"encoder_hidden_states": negative},
        }

    @torch.no_grad()
    def decode_clip(self, latents: torch.Tensor) -> torch.Tensor:
        """One clip's latents (B, C, N, h, w) -> frames (B, 3, N, H, W), about [-1, 1] (not clamped), in the
        VAE's dtype. A clip at a time: the temporal decoder never mixes frames across a seam."""
        return self.vae.decode(latents.to(self.vae.dtype))

    def _decode_into(self, clip: Clip, sink: FrameSink) -> None:
        sink.write(to_uint8_frames(self.decode_clip(clip.latents))[0])
