"""The kit's own VidRD (`VidRDPipeline`) as a family, so that `LongVideoPipeline.from_pipe` treats it as it
treats the diffusers pipelines: the same call, the same output (latents, frames in [0, 1], clip starts).

The loop is `VidRDPipeline`'s: word-level (or CLIP) prompt embeddings from its text encoder, the
negative prompt ("" by default) as the unconditional embedding, classifier-free guidance as one batched
call [uncond, cond] (`samplers.ClassifierFreeGuidance`) unless guidance_scale is 1, the pipeline's
scheduler with the plain step count. Its VAE has no temporal compression (t = 1: a latent frame is a
frame) but temporal convolutions in its decoder, so the streamed decode gives each clip the latent frames
before it as context, where `VidRDPipeline` itself decodes each clip alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from samplers import Schedule

from .base import ClipPlan, VideoFamily, check_guidance, check_steps, no_check, per_clip, take

_ALLOWED = {"prompt": None, "negative_prompt": "", "num_frames": 16, "height": None, "width": None,
            "num_inference_steps": 25, "guidance_scale": 10.0}  # fmt: skip


class VidRDFamily(VideoFamily):
    pipeline_names = ("VidRDPipeline",)

    @property
    def temporal(self) -> int:
        return 1

    @property
    def spatial(self) -> int:
        return self.pipe.vae_scale_factor

    @property
    def patch_size(self) -> int:
        return 1

    @property
    def device(self) -> torch.device:
        return next(self.pipe.unet.parameters()).device

    def plan(self, num_clips: int, generator: torch.Generator | None, kwargs: dict[str, Any],
             check_frames: Callable[[int], None] = no_check) -> ClipPlan:  # fmt: skip
        args = take(kwargs, _ALLOWED, "VidRDPipeline")
        prompts = per_clip("prompt", args["prompt"], num_clips, str)
        if prompts == [None] or any(not p or not p.strip() for p in prompts):
            raise ValueError(f"prompt must be a non-empty string or a list of num_clips={num_clips} of them; "
                             f"got {args['prompt']!r}")  # fmt: skip
        negative = "" if args["negative_prompt"] is None else args["negative_prompt"]
        if not isinstance(negative, str):
            raise TypeError(f"negative_prompt must be a string or None; got {negative!r}")
        steps = check_steps(args["num_inference_steps"])
        scale = check_guidance("guidance_scale", args["guidance_scale"])
        shape = self.pipe.clip_shape(1, args["num_frames"], args["height"], args["width"])
        check_frames(shape[2])  # the sampler's clip checks, before any model call
        with torch.no_grad():
            embeddings = self.pipe.text_encoder.encode(prompts)
            unconditional = self.pipe.text_encoder.encode([negative])
        denoiser, cond = self.pipe._conditioning(embeddings, unconditional, scale)
        return ClipPlan(tuple(shape), denoiser, lambda i: cond(min(i, len(prompts) - 1)),
                        Schedule(self.pipe.scheduler), steps, self.device)  # fmt: skip

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return self.pipe.decode_clip(latents)
