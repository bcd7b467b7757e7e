"""Wan 2.1 / 2.2 (`WanPipeline`): `WanTransformer3DModel`, rectified flow, UMT5 prompts.

The loop, as `WanPipeline.__call__` runs it in diffusers 0.42: latents (B, C, F, h, w) in float32;
`set_timesteps(N)` then `set_begin_index(0)`; the transformer sees the latents in its dtype and the
timestep `t` expanded to (B,) (Wan 2.2's `expand_timesteps`: t for every token, (B, F * h/2 * w/2));
classifier-free guidance is two calls, conditional first, combined as u + g (c - u); Wan 2.2's two
experts switch at `boundary_ratio * num_train_timesteps` (the low-noise expert `transformer_2` with
`guidance_scale_2`). Decoding: latents / (1 / latents_std) + latents_mean, then the VAE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from einops import rearrange, repeat

from samplers import Schedule

from .base import (
    ClipPlan,
    VideoFamily,
    check_guidance,
    check_steps,
    clip_index,
    no_check,
    per_clip,
    take,
)

_ALLOWED = {
    "prompt": None, "negative_prompt": None, "prompt_embeds": None, "negative_prompt_embeds": None,
    "height": 480, "width": 832, "num_frames": 81, "num_inference_steps": 50, "guidance_scale": 5.0,
    "guidance_scale_2": None, "max_sequence_length": 512, "attention_kwargs": None,
}  # fmt: skip


class WanDenoiser:
    """The Wan transformer(s) as a `VideoDenoiser`, with the pipeline's guidance: two calls, cond first."""

    def __init__(self, pipe: Any, guidance_scale: float, guidance_scale_2: float | None) -> None:
        self.pipe = pipe
        self.guidance_scale, self.guidance_scale_2 = guidance_scale, guidance_scale_2
        self.guided = guidance_scale > 1.0  # the pipeline decides once (from guidance_scale) for both
        ratio = pipe.config.boundary_ratio
        self.boundary = None if ratio is None else ratio * pipe.scheduler.config.num_train_timesteps

    @property
    def frame_timesteps(self) -> bool:
        """One timestep per frame where the transformer takes one per token (Wan 2.2's expand_timesteps)."""
        return bool(self.pipe.config.expand_timesteps)

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor, *, prompt_embeds: torch.Tensor,
                 negative_prompt_embeds: torch.Tensor | None = None,
                 attention_kwargs: dict | None = None) -> torch.Tensor:  # fmt: skip
        model, scale = self._expert(torch.as_tensor(timestep))
        dtype = model.dtype
        model_input = latents.to(dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and latents.requires_grad):
            t = self._timestep(timestep, latents)
            output = model(hidden_states=model_input, timestep=t, encoder_hidden_states=prompt_embeds,
                           attention_kwargs=attention_kwargs, return_dict=False)[0]  # fmt: skip
            if self.guided:
                uncond = model(hidden_states=model_input, timestep=t,
                               encoder_hidden_states=negative_prompt_embeds,
                               attention_kwargs=attention_kwargs, return_dict=False)[0]  # fmt: skip
                output = uncond + scale * (output - uncond)
        # in the model's dtype, as the pipeline steps with it (FlowMatchEuler and UniPC then return the
        # next latents in that dtype: bf16 latents after the first step of a bf16 model, as in the loop)
        return output

    def _expert(self, timestep: torch.Tensor) -> tuple[Any, float]:
        """(transformer, guidance scale) for `timestep`: Wan 2.1's one, or Wan 2.2's high-noise expert at
        timesteps >= the boundary and its low-noise one below. Frames at their own timesteps must all fall
        on one side: one call runs one expert."""
        if self.boundary is None:
            return self.pipe.transformer, self.guidance_scale
        high = timestep >= self.boundary
        if bool(high.all()):
            return self.pipe.transformer, self.guidance_scale
        if not bool(high.any()):
            return self.pipe.transformer_2, self.guidance_scale_2
        raise ValueError(f"the frames' timesteps {timestep.tolist()} straddle Wan 2.2's expert boundary "
                         f"{self.boundary:g}: one call runs one expert")  # fmt: skip

    def _timestep(self, timestep: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """(B,), or with expand_timesteps one per token of the 2x2 patches, (B, F h/2 w/2), each frame's
        tokens at its frame's timestep (one number, (F,) or (B, F))."""
        batch, _, frames, height, width = latents.shape
        t = torch.as_tensor(timestep, device=latents.device)
        if not self.pipe.config.expand_timesteps:
            if t.numel() != 1:
                raise ValueError(f"timestep must be one number (this Wan takes one per video); got shape "
                                 f"{tuple(t.shape)}")  # fmt: skip
            return t.expand(batch)
        if t.numel() != 1 and t.shape not in ((frames,), (1, frames), (batch, frames)):
            raise ValueError(f"timestep must be one number, (F,) or (B, F) = ({batch}, {frames}); got shape "
                             f"{tuple(t.shape)}")  # fmt: skip
        per_frame = t.reshape(-1, 1).expand(frames, 1) if t.numel() == 1 else t.reshape(-1, frames).T
        mask = torch.ones((frames, height, width), dtype=torch.float32, device=latents.device)
        tokens = mask[:, ::2, ::2].unsqueeze(0) * rearrange(per_frame, "f b -> b f 1 1")
        return repeat(tokens, "b f h w -> (repeat b) (f h w)", repeat=batch // tokens.shape[0])


class WanFamily(VideoFamily):
    pipeline_names = ("WanPipeline",)

    @property
    def model(self) -> Any:
        return self.pipe.transformer if self.pipe.transformer is not None else self.pipe.transformer_2

    @property
    def patch_size(self) -> int:
        return int(self.model.config.patch_size[-1])

    def plan(self, num_clips: int, generator: torch.Generator | None, kwargs: dict[str, Any],
             check_frames: Callable[[int], None] = no_check) -> ClipPlan:  # fmt: skip
        args = take(kwargs, _ALLOWED, type(self.pipe).__name__)
        frames = self.latent_frames(args["num_frames"])
        check_frames(frames)  # the sampler's clip checks, before any model call
        h, w = self.latent_size(args["height"], args["width"])
        steps = check_steps(args["num_inference_steps"])
        scale = check_guidance("guidance_scale", args["guidance_scale"])
        scale_2 = self._second_scale(scale, args["guidance_scale_2"])
        conds = self._encode(args, num_clips, scale > 1.0)
        batch = _same_batch(conds)
        shape = (batch, self.model.config.in_channels, frames, h, w)
        return ClipPlan(shape, WanDenoiser(self.pipe, scale, scale_2), lambda i: clip_index(conds, i),
                        Schedule(self.pipe.scheduler), steps, self.device)  # fmt: skip

    def _second_scale(self, scale: float, scale_2: float | None) -> float | None:
        """Wan 2.2's low-noise expert's guidance (default guidance_scale); refused without that expert."""
        if self.pipe.config.boundary_ratio is not None:
            return scale if scale_2 is None else check_guidance("guidance_scale_2", scale_2)
        if scale_2 is not None:
            raise ValueError("guidance_scale_2 is for Wan 2.2's second expert (a pipeline with "
                             f"boundary_ratio); this pipeline has none; got {scale_2!r}")  # fmt: skip
        return None

    def _encode(self, args: dict[str, Any], num_clips: int, guided: bool) -> list[dict[str, Any]]:
        """One conditioning dict per distinct clip prompt, through the pipeline's own encode_prompt."""
        prompts = per_clip("prompt", args["prompt"], num_clips, str)
        embeds = per_clip("prompt_embeds", args["prompt_embeds"], num_clips, torch.Tensor)
        negatives = per_clip("negative_prompt", args["negative_prompt"], num_clips, str)
        negative_embeds = per_clip("negative_prompt_embeds", args["negative_prompt_embeds"], num_clips,
                                   torch.Tensor)  # fmt: skip
        count = max(len(prompts), len(embeds), len(negatives), len(negative_embeds))
        self._check_text(prompts, embeds, negative_embeds, guided, count)
        dtype = self.model.dtype
        conds = []
        for i in range(count):
            positive, negative = self.pipe.encode_prompt(
                prompt=clip_index(prompts, i), negative_prompt=clip_index(negatives, i),
                do_classifier_free_guidance=guided, prompt_embeds=clip_index(embeds, i),
                negative_prompt_embeds=clip_index(negative_embeds, i),
                max_sequence_length=args["max_sequence_length"], device=self.device,
            )  # fmt: skip
            cond = {"prompt_embeds": positive.to(dtype), "attention_kwargs": args["attention_kwargs"]}
            if guided:
                cond["negative_prompt_embeds"] = negative.to(dtype)
            conds.append(cond)
        return conds

    def _check_text(self, prompts: list, embeds: list, negative_embeds: list, guided: bool,
                    count: int) -> None:  # fmt: skip
        """Per clip, a prompt or its embeddings (not both); text to encode needs the tokenizer and text
        encoder (with guidance, a missing negative embedding is encoded from the negative prompt)."""
        if any(p is not None for p in prompts) and any(e is not None for e in embeds):
            raise ValueError("prompt and prompt_embeds are exclusive: pass one of them")
        if prompts == [None] and embeds == [None]:
            raise ValueError("prompt or prompt_embeds is required")
        encodes = prompts != [None] or (guided and None in negative_embeds)
        if encodes and (self.pipe.tokenizer is None or self.pipe.text_encoder is None):
            raise ValueError("this pipeline has no tokenizer or text encoder: pass prompt_embeds and, with "
                             "guidance_scale > 1, negative_prompt_embeds")  # fmt: skip
        for i in range(count):
            positive, negative = clip_index(embeds, i), clip_index(negative_embeds, i)
            if positive is not None and negative is not None and positive.shape != negative.shape:
                raise ValueError(
                    f"negative_prompt_embeds must have prompt_embeds' shape {tuple(positive.shape)} "
                    f"(clip {i}); got {tuple(negative.shape)}"
                )

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return self.pipe.vae.decode(self._denormalize(latents), return_dict=False)[0]

    def _denormalize(self, latents: torch.Tensor) -> torch.Tensor:
        """The pipeline's latents / (1 / latents_std) + latents_mean, in the VAE's dtype and device."""
        vae = self.pipe.vae
        latents = latents.to(vae.device, vae.dtype)
        mean, std = (rearrange(torch.tensor(v), "c -> 1 c 1 1 1").to(latents.device, latents.dtype)
                     for v in (vae.config.latents_mean, vae.config.latents_std))  # fmt: skip
        return latents / (1.0 / std) + mean

    def stream_decoder(self, context: int, options: dict[str, Any] | None = None,
                       total: int | None = None) -> Any:  # fmt: skip
        """Wan's VAE decodes one latent frame at a time, carrying a cache of causal-convolution features:
        keeping that cache across clips decodes the long video exactly as a whole-video decode, in memory
        flat in its length. With tiling on, the generic context decode (models.stream_decode)."""
        if getattr(self.pipe.vae, "use_tiling", False):
            return super().stream_decoder(context, options)
        return _CachedWanDecoder(self.pipe.vae, self._denormalize)


class _CachedWanDecoder:
    """AutoencoderKLWan's frame-by-frame decode with its feature cache kept between calls."""

    def __init__(self, vae: Any, denormalize: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.vae, self.denormalize = vae, denormalize
        self.cache: list[Any] = [None] * vae._cached_conv_counts["decoder"]  # one slot per causal conv
        self.first = True

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor) -> torch.Tensor:
        x = self.vae.post_quant_conv(self.denormalize(latents.contiguous()))  # 1x1x1: frame by frame
        frames = []
        for i in range(x.shape[2]):
            frames.append(self.vae.decoder(x[:, :, i : i + 1], feat_cache=self.cache, feat_idx=[0],
                                           first_chunk=self.first))  # fmt: skip
            self.first = False
        out = torch.cat(frames, dim=2)
        if self.vae.config.patch_size is not None:
            from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify

            out = unpatchify(out, patch_size=self.vae.config.patch_size)
        return out.clamp(-1.0, 1.0)

    def flush(self) -> None:
        """Nothing is held back: a causal cache decodes every frame as it comes."""
        return None


def _same_batch(conds: list[dict[str, Any]]) -> int:
    """The batch every clip's conditioning shares; ValueError naming the clip that differs."""
    batch = conds[0]["prompt_embeds"].shape[0]
    for i, cond in enumerate(conds):
        if cond["prompt_embeds"].shape[0] != batch:
            raise ValueError(f"every clip's prompt must make the same batch; clip 0 has {batch}, clip {i} "
                             f"has {cond['prompt_embeds'].shape[0]}")  # fmt: skip
    return batch
