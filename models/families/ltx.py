"""LTX-Video (`LTXPipeline`): `LTXVideoTransformer3DModel` over packed tokens, rectified flow, T5 prompts.

The loop, as `LTXPipeline.__call__` runs it in diffusers 0.42: latents in float32, packed into tokens
(B, F/pt * h/p * w/p, C pt p p) in the order f, h, w (`_pack_latents`; the patches are 1 x 1 x 1 in the
released model and in the tests); `set_timesteps(sigmas=linspace(1, 1/N, N), mu=calculate_shift(F h w,
...the scheduler config's base/max sequence lengths and shifts))` then `set_begin_index(0)` (mu is used
only with dynamic shifting: the released scheduler, exponential, stretched to end at 0.1); classifier-free
guidance is one batched call, [unconditional, conditional] latents, embeddings and masks concatenated in
that order; the transformer sees the latents cast to the prompt embeddings' dtype, the scheduler's
timestep t = 1000 sigma (float32) expanded to (2B,), the embeddings' attention mask, the latent grid
(F, h, w) and `rope_interpolation_scale = (t_vae / frame_rate, s_vae, s_vae)`; its output is cast to
float32, combined as u + g (c - u) and, with `guidance_rescale > 0`, rescaled towards the conditional
output's standard deviation (`rescale_noise_cfg`). The VAE compresses time by 8 and space by 32
(num_frames = 8k + 1), and `check_inputs` asks height and width to be multiples of 32.

Decoding: unpacked latents * latents_std / scaling_factor + latents_mean (`_denormalize_latents`), cast
to the embeddings' dtype; a VAE with timestep conditioning (0.9.1 and later) decodes at `decode_timestep`.
The pipeline also mixes noise drawn from its generator after the loop into the latents before decoding
(`decode_noise_scale`, by default equal to `decode_timestep`); the kit decodes clip by clip while sampling
and has no such draw to reproduce, so it decodes deterministically: the effective decode noise scale must
be 0 (which is the pipeline's own result with `decode_noise_scale=0`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from numbers import Real
from typing import Any

import numpy as np
import torch
from diffusers.pipelines.ltx.pipeline_ltx import calculate_shift, rescale_noise_cfg
from einops import rearrange

from samplers import Schedule
from samplers.validation import check_int, check_real

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

_ALLOWED = {
    "prompt": None, "negative_prompt": None, "prompt_embeds": None, "prompt_attention_mask": None,
    "negative_prompt_embeds": None, "negative_prompt_attention_mask": None, "height": 512, "width": 704,
    "num_frames": 161, "frame_rate": 25, "num_inference_steps": 50, "timesteps": None, "guidance_scale": 3.0,
    "guidance_rescale": 0.0, "num_videos_per_prompt": 1, "decode_timestep": 0.0, "decode_noise_scale": None,
    "attention_kwargs": None, "max_sequence_length": 128,
}  # fmt: skip


class LTXDenoiser:
    """The LTX transformer as a `VideoDenoiser` over (B, C, F, h, w) latents: packed to tokens, one batched
    call [uncond, cond] under guidance, combined in float32, unpacked."""

    def __init__(self, family: LTXFamily, guidance_scale: float, guidance_rescale: float,
                 frame_rate: float) -> None:  # fmt: skip
        self.family, self.pipe = family, family.pipe
        self.guidance_scale, self.guidance_rescale = guidance_scale, guidance_rescale
        pipe = self.pipe
        self.rope_interpolation_scale = (pipe.vae_temporal_compression_ratio / frame_rate,
                                         pipe.vae_spatial_compression_ratio,
                                         pipe.vae_spatial_compression_ratio)  # fmt: skip

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor, *, prompt_embeds: torch.Tensor,
                 prompt_attention_mask: torch.Tensor,
                 attention_kwargs: dict | None = None) -> torch.Tensor:  # fmt: skip
        guided = self.guidance_scale > 1.0
        _, _, frames, height, width = latents.shape
        tokens = self.family.to_pipeline_layout(latents)
        model_input = (torch.cat([tokens] * 2) if guided else tokens).to(prompt_embeds.dtype)
        t = torch.as_tensor(timestep, device=latents.device)
        self.pipe._current_timestep = t  # what cache hooks read, as the pipeline sets it
        transformer = self.pipe.transformer
        with torch.set_grad_enabled(torch.is_grad_enabled() and latents.requires_grad):
            with transformer.cache_context("cond_uncond"):
                output = transformer(hidden_states=model_input, encoder_hidden_states=prompt_embeds,
                                     timestep=t.expand(model_input.shape[0]),
                                     encoder_attention_mask=prompt_attention_mask, num_frames=frames,
                                     height=height, width=width,
                                     rope_interpolation_scale=self.rope_interpolation_scale,
                                     attention_kwargs=attention_kwargs, return_dict=False)[0]  # fmt: skip
            output = output.float()
            if guided:
                uncond, cond = output.chunk(2)
                output = uncond + self.guidance_scale * (cond - uncond)
                if self.guidance_rescale > 0:  # on the tokens, as the pipeline does (its std's reduction)
                    output = rescale_noise_cfg(output, cond, guidance_rescale=self.guidance_rescale)
        return self.family.from_pipeline_layout(output, latents.shape).to(latents.dtype)


class LTXFamily(MaskedPrompts, VideoFamily):
    """A plan carries its call's decode settings (`decode_timestep`, the embeddings' dtype) as
    `decode_options` for `decode_latents`."""

    pipeline_names = ("LTXPipeline",)
    pipeline_multiple = 32  # what LTXPipeline.check_inputs asks of height and width, whatever the VAE

    # -- geometry: the pipeline's own names --------------------------------------------------------------

    @property
    def temporal(self) -> int:
        return int(self.pipe.vae_temporal_compression_ratio)

    @property
    def spatial(self) -> int:
        return int(self.pipe.vae_spatial_compression_ratio)

    @property
    def patch_size(self) -> int:
        return int(self.pipe.transformer_spatial_patch_size)

    @property
    def patch_size_t(self) -> int:
        return int(self.pipe.transformer_temporal_patch_size)

    def _latent_frames(self, num_frames: int) -> int:
        frames, pt = self.latent_frames(num_frames), self.patch_size_t
        if frames % pt:
            raise ValueError(
                f"num_frames must make a multiple of the transformer's temporal patch {pt} latent frames for "
                f"{type(self.pipe).__name__}; got {num_frames} ({frames} latent frames)"
            )
        return frames

    # -- layouts: packed tokens (B, F/pt * h/p * w/p, C pt p p), f, h, w order -------------------------

    def to_pipeline_layout(self, latents: torch.Tensor) -> torch.Tensor:
        p, pt = self.patch_size, self.patch_size_t
        return rearrange(latents, "b c (f pt) (h p) (w q) -> b (f h w) (c pt p q)", pt=pt, p=p, q=p)

    def from_pipeline_layout(self, latents: torch.Tensor, clip_shape: Any) -> torch.Tensor:
        _, _, frames, height, width = clip_shape
        p, pt = self.patch_size, self.patch_size_t
        return rearrange(latents, "b (f h w) (c pt p q) -> b c (f pt) (h p) (w q)", f=frames // pt,
                         h=height // p, w=width // p, pt=pt, p=p, q=p)  # fmt: skip

    # -- the plan ----------------------------------------------------------------------------------------

    def plan(self, num_clips: int, generator: torch.Generator | None, kwargs: dict[str, Any],
             check_frames: Callable[[int], None] = no_check) -> ClipPlan:  # fmt: skip
        args = take(kwargs, _ALLOWED, type(self.pipe).__name__)
        frames = self._latent_frames(args["num_frames"])
        check_frames(frames)  # the sampler's clip checks, before any model call
        h, w = self.latent_size(args["height"], args["width"])
        steps = self._check_steps(args)
        scale = check_guidance("guidance_scale", args["guidance_scale"])
        rescale = check_real("guidance_rescale", args["guidance_rescale"], 0.0, 1.0)
        frame_rate = check_real("frame_rate", args["frame_rate"], 1e-6, math.inf)
        self._check_options(args)
        clips = self._clip_inputs(args, num_clips, scale > 1.0)
        batch, dtype = self._batch_and_dtype(clips, args["num_videos_per_prompt"])
        self._check_decode(args, batch)
        conds = [self._encode(clip, args, scale > 1.0, num_videos_per_prompt=args["num_videos_per_prompt"])
                 for clip in clips]  # fmt: skip
        options = {"dtype": dtype, "decode_timestep": args["decode_timestep"]}
        shape = (batch, self.pipe.transformer.config.in_channels, frames, h, w)
        return ClipPlan(shape, LTXDenoiser(self, scale, rescale, frame_rate), lambda i: clip_index(conds, i),
                        self._schedule(steps, frames * h * w), steps, self.device,
                        decode_options=options)  # fmt: skip

    def _schedule(self, steps: int, sequence_length: int) -> Schedule:
        """The pipeline's sigmas and mu (from the latent grid's token count before patching)."""
        config = self.pipe.scheduler.config
        mu = calculate_shift(sequence_length, config.get("base_image_seq_len", 256),
                             config.get("max_image_seq_len", 4096), config.get("base_shift", 0.5),
                             config.get("max_shift", 1.15))  # fmt: skip
        return Schedule(self.pipe.scheduler, sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)

    def _check_steps(self, args: dict[str, Any]) -> int:
        """No custom timesteps (the pipeline always passes its sigmas, and both are refused); a scheduler
        whose set_timesteps takes sigmas and mu, as the pipeline passes them."""
        steps, name = check_steps(args["num_inference_steps"]), type(self.pipe).__name__
        if args["timesteps"] is not None:
            raise ValueError(
                f"timesteps must be None for {name}: it always sets its own sigmas, and custom timesteps "
                f"with them are refused; got {args['timesteps']!r}"
            )
        scheduler = self.pipe.scheduler
        missing = {"sigmas", "mu"} - set(inspect.signature(scheduler.set_timesteps).parameters)
        if missing:
            raise ValueError(
                f"the scheduler of {name} must take sigmas and mu in set_timesteps (as FlowMatchEuler "
                f"does); {type(scheduler).__name__} lacks {', '.join(sorted(missing))}"
            )
        return steps

    def _check_options(self, args: dict[str, Any]) -> None:
        check_int("max_sequence_length", args["max_sequence_length"], 1)
        check_int("num_videos_per_prompt", args["num_videos_per_prompt"], 1)
        if args["attention_kwargs"] is not None and not isinstance(args["attention_kwargs"], dict):
            raise TypeError(f"attention_kwargs must be None or a dict; got {args['attention_kwargs']!r}")

    # -- conditioning ------------------------------------------------------------------------------------

    def _batch_and_dtype(self, clips: list[dict[str, Any]], per_prompt: int) -> tuple[int, torch.dtype]:
        """The batch and the embeddings' dtype (the transformer's input dtype), the same for every clip.
        num_videos_per_prompt repeats encoded prompts only: the pipeline leaves given embeddings as they
        are (its latents would then outnumber them)."""
        found = set()
        for clip in clips:
            embeds = clip["prompt_embeds"]
            if embeds is None:
                found.add((per_prompt, self.pipe.text_encoder.dtype))
            elif per_prompt > 1:
                raise ValueError(
                    f"num_videos_per_prompt must be 1 with prompt_embeds ({type(self.pipe).__name__} does "
                    f"not repeat given embeddings); got {per_prompt}"
                )
            else:
                found.add((embeds.shape[0], embeds.dtype))
        if len(found) > 1:
            got = ", ".join(f"batch {b} {d}" for b, d in sorted(found, key=str))
            raise ValueError(f"every clip's prompt must give one batch size and dtype; got {got}")
        return found.pop()

    # -- decoding ----------------------------------------------------------------------------------------

    def _check_decode(self, args: dict[str, Any], batch: int) -> None:
        """decode_timestep and decode_noise_scale: a real in [0, 1] or a list of one per video; with a
        timestep-conditioned VAE the effective noise scale (decode_timestep where None) must be 0."""
        timestep = _per_video("decode_timestep", args["decode_timestep"], batch)
        noise = args["decode_noise_scale"]
        effective = timestep if noise is None else _per_video("decode_noise_scale", noise, batch)
        if self.pipe.vae.config.timestep_conditioning and any(effective):
            said = repr(noise) if noise is not None else f"None (decode_timestep={args['decode_timestep']!r})"
            raise ValueError(
                f"decode_noise_scale must be 0 with {type(self.pipe).__name__}'s timestep-conditioned VAE in "
                "the kit: the pipeline mixes noise drawn from its generator after its loop into the latents, "
                "which clip-by-clip decoding cannot reproduce, so the kit decodes deterministically (the "
                f"pipeline's result with decode_noise_scale=0); got {said}"
            )

    @property
    def causal_decoder(self) -> bool:
        """LTX's VAE decoder is non-causal unless its config says decoder_causal: streamed decoding then
        looks ahead into the next clip (models.stream_decode)."""
        return bool(getattr(self.pipe.vae.config, "decoder_causal", False))

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, dtype: torch.dtype | None = None,
                       decode_timestep: float | list[float] = 0.0) -> torch.Tensor:  # fmt: skip
        """(B, C, F, h, w) loop latents -> (B, 3, 1 + (F-1) t, H, W) frames: denormalised, cast to the
        embeddings' dtype (a plan's `decode_options`; default the transformer's), decoded at
        `decode_timestep` where the VAE is timestep-conditioned."""
        vae = self.pipe.vae
        latents = latents.to(vae.device)
        mean, std = (rearrange(v, "c -> 1 c 1 1 1").to(latents.device, latents.dtype)
                     for v in (vae.latents_mean, vae.latents_std))  # fmt: skip
        latents = latents * std / vae.config.scaling_factor + mean
        latents = latents.to(dtype or self.pipe.transformer.dtype)
        timestep = None
        if vae.config.timestep_conditioning:
            values = decode_timestep
            values = values if isinstance(values, (list, tuple)) else [values] * latents.shape[0]
            timestep = torch.tensor(values, device=latents.device, dtype=latents.dtype)
        return vae.decode(latents.to(vae.dtype), timestep, return_dict=False)[0]


def _per_video(name: str, value: Any, batch: int) -> list[float]:
    """One real in [0, 1] for every video, or a list of `batch` of them."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * batch
    if len(values) != batch or not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
        raise ValueError(
            f"{name} must be a real in [0, 1] or a list of one per video (batch {batch}); got {value!r}"
        )
    return [check_real(name, v, 0.0, 1.0) for v in values]
