"""Mochi 1 (`MochiPipeline`): `MochiTransformer3DModel`, rectified flow, T5 prompts with attention masks.

The loop, as `MochiPipeline.__call__` runs it in diffusers 0.42: latents (B, C, F, h, w) in the prompt
embeddings' dtype; `set_timesteps(sigmas=linear_quadratic_schedule(N, 0.025))` (no count, no mu) then
`set_begin_index(0)`; classifier-free guidance is one batched call, [unconditional, conditional] latents,
embeddings and boolean masks concatenated in that order; the transformer sees the latents as they are
and the scheduler's timestep `t` expanded to the batch (2B with guidance) and cast to the latents'
dtype (with the released `invert_sigmas` scheduler t = 1000 sigma_stored, 0 at pure noise); its output
is cast to float32 and combined as u + g (c - u); the step runs in float32 and the latents go back to
their dtype. The pipeline's `current_timestep` (read by cache hooks) is set to 1000 - t. Decoding:
latents * latents_std / scaling_factor + latents_mean (latents / scaling_factor without them), then the
VAE. The VAE compresses time by 6 and space by 8 (num_frames = 6k + 1), the transformer's patches are
2 x 2. The denoiser returns the float32 guided output and the Schedule steps float32 latents and casts
them back (its step_dtype and state_dtype), so one clip equals the pipeline bit for bit in bf16 too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from diffusers.pipelines.mochi.pipeline_mochi import linear_quadratic_schedule
from einops import rearrange

from samplers import Schedule
from samplers.validation import check_int

from .base import (
    ClipPlan,
    VideoFamily,
    check_guidance,
    check_steps,
    clip_index,
    no_check,
    take,
)
from .masked_prompts import MaskedPrompts

THRESHOLD_NOISE = 0.025  # the pipeline's linear_quadratic_schedule threshold
_ALLOWED = {
    "prompt": None, "negative_prompt": None, "prompt_embeds": None, "prompt_attention_mask": None,
    "negative_prompt_embeds": None, "negative_prompt_attention_mask": None, "height": None, "width": None,
    "num_frames": 19, "num_inference_steps": 64, "timesteps": None, "guidance_scale": 4.5,
    "max_sequence_length": 256, "attention_kwargs": None,
}  # fmt: skip


class MochiDenoiser:
    """The Mochi transformer as a `VideoDenoiser`, with the pipeline's guidance: one batched call, uncond
    first, in float32."""

    def __init__(self, pipe: Any, guidance_scale: float) -> None:
        self.pipe = pipe
        self.guidance_scale = guidance_scale

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor, *, prompt_embeds: torch.Tensor,
                 prompt_attention_mask: torch.Tensor,
                 attention_kwargs: dict | None = None) -> torch.Tensor:  # fmt: skip
        guided = self.guidance_scale > 1.0
        model_input = torch.cat([latents] * 2) if guided else latents
        t = torch.as_tensor(timestep, device=latents.device)
        self.pipe._current_timestep = 1000 - t  # what cache hooks read (FasterCache), as the pipeline sets
        transformer = self.pipe.transformer
        with torch.set_grad_enabled(torch.is_grad_enabled() and latents.requires_grad):
            with transformer.cache_context("cond_uncond"):
                output = transformer(hidden_states=model_input, encoder_hidden_states=prompt_embeds,
                                     timestep=t.expand(model_input.shape[0]).to(latents.dtype),
                                     encoder_attention_mask=prompt_attention_mask,
                                     attention_kwargs=attention_kwargs, return_dict=False)[0]  # fmt: skip
            output = output.to(torch.float32)
            if guided:
                uncond, cond = output.chunk(2)
                output = uncond + self.guidance_scale * (cond - uncond)
        return output  # float32: the pipeline steps with it (Schedule's step_dtype and state_dtype)


class MochiFamily(MaskedPrompts, VideoFamily):
    pipeline_names = ("MochiPipeline",)

    @property
    def temporal(self) -> int:
        return int(self.pipe.vae_temporal_scale_factor)

    @property
    def spatial(self) -> int:
        return int(self.pipe.vae_spatial_scale_factor)

    def plan(self, num_clips: int, generator: torch.Generator | None, kwargs: dict[str, Any],
             check_frames: Callable[[int], None] = no_check) -> ClipPlan:  # fmt: skip
        args = take(kwargs, _ALLOWED, type(self.pipe).__name__)
        frames = self.latent_frames(args["num_frames"])
        check_frames(frames)  # the sampler's clip checks, before any model call
        height = self.pipe.default_height if args["height"] is None else args["height"]
        width = self.pipe.default_width if args["width"] is None else args["width"]
        h, w = self.latent_size(height, width)
        steps = self._check_steps(args)
        scale = check_guidance("guidance_scale", args["guidance_scale"])
        check_int("max_sequence_length", args["max_sequence_length"], 1)
        if args["attention_kwargs"] is not None and not isinstance(args["attention_kwargs"], dict):
            raise TypeError(f"attention_kwargs must be None or a dict; got {args['attention_kwargs']!r}")
        clips = self._clip_inputs(args, num_clips, scale > 1.0)
        batch, dtype = self._batch_and_dtype(clips)
        conds = [self._encode(clip, args, scale > 1.0) for clip in clips]
        sigmas = linear_quadratic_schedule(steps, THRESHOLD_NOISE)
        shape = (batch, self.pipe.transformer.config.in_channels, frames, h, w)
        return ClipPlan(shape, MochiDenoiser(self.pipe, scale), lambda i: clip_index(conds, i),
                        Schedule(self.pipe.scheduler, sigmas=sigmas, step_dtype=torch.float32,
                                 state_dtype=dtype), steps, self.device, dtype)  # fmt: skip

    def _check_steps(self, args: dict[str, Any]) -> int:
        """num_inference_steps >= 2 (the linear-quadratic schedule divides by N // 2); no custom timesteps
        (the pipeline passes its sigmas, and retrieve_timesteps refuses both); a scheduler taking sigmas."""
        steps, name = check_steps(args["num_inference_steps"]), type(self.pipe).__name__
        if steps < 2:
            raise ValueError(
                f"num_inference_steps must be at least 2 for {name} (its linear-quadratic sigma schedule "
                f"needs N // 2 >= 1); got {steps}"
            )
        if args["timesteps"] is not None:
            raise ValueError(
                f"timesteps must be None for {name}: it always sets its own sigmas, and custom timesteps "
                f"with them are refused; got {args['timesteps']!r}"
            )
        scheduler = self.pipe.scheduler
        if "sigmas" not in inspect.signature(scheduler.set_timesteps).parameters:
            raise ValueError(
                f"the scheduler of {name} must take custom sigmas in set_timesteps (as FlowMatchEuler "
                f"does); {type(scheduler).__name__} does not"
            )
        return steps

    # -- conditioning ----------------------------------------------------------------------------------

    def _batch_and_dtype(self, clips: list[dict[str, Any]]) -> tuple[int, torch.dtype]:
        """The batch and the latents' dtype (the positive embeddings', to which the pipeline's
        prepare_latents casts), the same for every clip."""
        found = {self._batch_dtype(clip["prompt_embeds"]) for clip in clips}
        if len(found) > 1:
            got = ", ".join(f"batch {b} {d}" for b, d in sorted(found, key=str))
            raise ValueError(f"every clip's prompt must give one batch size and dtype; got {got}")
        return found.pop()

    def _batch_dtype(self, embeds: torch.Tensor | None) -> tuple[int, torch.dtype]:
        """A prompt string is a batch of 1 in the text encoder's dtype; embeddings keep their own."""
        return (1, self.pipe.text_encoder.dtype) if embeds is None else (embeds.shape[0], embeds.dtype)

    # -- decoding --------------------------------------------------------------------------------------

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        latents = latents.to(vae.device)
        mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
        if mean is not None and std is not None:
            mean, std = (rearrange(torch.tensor(v), "c -> 1 c 1 1 1").to(latents.device, latents.dtype)
                         for v in (mean, std))  # fmt: skip
            latents = latents * std / vae.config.scaling_factor + mean
        else:
            latents = latents / vae.config.scaling_factor
        return vae.decode(latents.to(vae.dtype), return_dict=False)[0]
