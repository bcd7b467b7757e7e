"""HunyuanVideo (`HunyuanVideoPipeline`): `HunyuanVideoTransformer3DModel`, rectified flow, Llama + CLIP.

The loop, as `HunyuanVideoPipeline.__call__` runs it in diffusers 0.42: latents (B, C, F, h, w) in
float32 (the pipeline's layout is the kit's); `set_timesteps(sigmas=linspace(1, 0, N + 1)[:-1])` (or the
caller's `sigmas`) then `set_begin_index(0)`; the transformer sees the latents in its dtype, the timestep
`t` expanded to (B,) in the latents' dtype, the Llama prompt embeddings with their attention mask, the
CLIP pooled embeddings and the embedded guidance `[guidance_scale] * B` in its dtype times 1000, one call
under `cache_context("cond")`. True classifier-free guidance (`true_cfg_scale > 1` with a negative prompt
or negative embeddings and pooled embeddings) adds a second call with the negative conditioning under
`cache_context("uncond")`, combined as u + g (c - u). Prompts go through the pipeline's `encode_prompt`;
its outputs are cast to the transformer's dtype. Decoding: latents / vae.config.scaling_factor, then the
VAE. Height and width must be multiples of 16 (the pipeline's check) and of the VAE factor times the patch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

import numpy as np
import torch
from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import DEFAULT_PROMPT_TEMPLATE

from samplers import Schedule
from samplers.validation import check_int

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
    "prompt": None, "prompt_2": None, "negative_prompt": None, "negative_prompt_2": None, "height": 720,
    "width": 1280, "num_frames": 129, "num_inference_steps": 50, "sigmas": None, "true_cfg_scale": 1.0,
    "guidance_scale": 6.0, "prompt_embeds": None, "pooled_prompt_embeds": None,
    "prompt_attention_mask": None, "negative_prompt_embeds": None, "negative_pooled_prompt_embeds": None,
    "negative_prompt_attention_mask": None, "attention_kwargs": None,
    "prompt_template": DEFAULT_PROMPT_TEMPLATE, "max_sequence_length": 256,
}  # fmt: skip
_TEXTS = ("prompt", "prompt_2", "negative_prompt", "negative_prompt_2")
_TENSORS = ("prompt_embeds", "pooled_prompt_embeds", "prompt_attention_mask", "negative_prompt_embeds",
            "negative_pooled_prompt_embeds", "negative_prompt_attention_mask")  # fmt: skip


class HunyuanVideoDenoiser:
    """The HunyuanVideo transformer as a `VideoDenoiser`: embedded guidance in one call, plus true CFG
    (a second call with the negative conditioning) where the clip's conditioning carries negatives."""

    def __init__(self, pipe: Any, guidance_scale: float, true_cfg_scale: float) -> None:
        self.pipe = pipe
        self.guidance_scale, self.true_cfg_scale = guidance_scale, true_cfg_scale

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor, *, prompt_embeds: torch.Tensor,
                 prompt_attention_mask: torch.Tensor, pooled_prompt_embeds: torch.Tensor,
                 negative_prompt_embeds: torch.Tensor | None = None,
                 negative_prompt_attention_mask: torch.Tensor | None = None,
                 negative_pooled_prompt_embeds: torch.Tensor | None = None,
                 attention_kwargs: dict | None = None) -> torch.Tensor:  # fmt: skip
        model = self.pipe.transformer
        batch = latents.shape[0]
        common = {
            "hidden_states": latents.to(model.dtype),
            "timestep": torch.as_tensor(timestep, device=latents.device).expand(batch).to(latents.dtype),
            "guidance": torch.tensor([self.guidance_scale] * batch, dtype=model.dtype, device=latents.device)
            * 1000.0,
            "attention_kwargs": attention_kwargs,
            "return_dict": False,
        }
        with torch.set_grad_enabled(torch.is_grad_enabled() and latents.requires_grad):
            with model.cache_context("cond"):
                output = model(encoder_hidden_states=prompt_embeds,
                               encoder_attention_mask=prompt_attention_mask,
                               pooled_projections=pooled_prompt_embeds, **common)[0]  # fmt: skip
            if negative_prompt_embeds is not None:
                with model.cache_context("uncond"):
                    uncond = model(encoder_hidden_states=negative_prompt_embeds,
                                   encoder_attention_mask=negative_prompt_attention_mask,
                                   pooled_projections=negative_pooled_prompt_embeds, **common)[0]  # fmt: skip
                output = uncond + self.true_cfg_scale * (output - uncond)
        return output  # in the model's dtype, as the pipeline steps with it


class HunyuanVideoFamily(VideoFamily):
    pipeline_names = ("HunyuanVideoPipeline",)
    pipeline_multiple = 16  # HunyuanVideoPipeline.check_inputs: height and width divisible by 16

    def plan(self, num_clips: int, generator: torch.Generator | None, kwargs: dict[str, Any],
             check_frames: Callable[[int], None] = no_check) -> ClipPlan:  # fmt: skip
        args = take(kwargs, _ALLOWED, type(self.pipe).__name__)
        frames = self._latent_frames(args["num_frames"])
        check_frames(frames)  # the sampler's clip checks, before any model call
        h, w = self.latent_size(args["height"], args["width"])
        steps, sigmas = _steps_and_sigmas(args["num_inference_steps"], args["sigmas"])
        scale = check_guidance("guidance_scale", args["guidance_scale"])
        true_scale = check_guidance("true_cfg_scale", args["true_cfg_scale"])
        check_int("max_sequence_length", args["max_sequence_length"], 1)
        _check_options(args["prompt_template"], args["attention_kwargs"])
        clips = self._clip_args(args, num_clips, true_scale > 1.0)
        conds = [self._encode(clip, args) for clip in clips]
        batch = conds[0]["prompt_embeds"].shape[0]
        shape = (batch, self.pipe.transformer.config.in_channels, frames, h, w)
        return ClipPlan(shape, HunyuanVideoDenoiser(self.pipe, scale, true_scale),
                        lambda i: clip_index(conds, i), Schedule(self.pipe.scheduler, sigmas=sigmas), steps,
                        self.device)  # fmt: skip

    def _latent_frames(self, num_frames: int) -> int:
        """F latent frames, which the transformer's temporal patch must divide."""
        frames = self.latent_frames(num_frames)
        patch_t = int(self.pipe.transformer.config.patch_size_t)
        if frames % patch_t:
            raise ValueError(
                f"num_frames={num_frames} makes {frames} latent frames, which the transformer's temporal "
                f"patch patch_size_t={patch_t} does not divide; allowed: latent frame counts divisible by it"
            )
        return frames

    # -- prompts ---------------------------------------------------------------------------------------

    def _clip_args(self, args: dict[str, Any], num_clips: int, true_cfg: bool) -> list[dict[str, Any]]:
        """One dict of prompt keywords per distinct clip prompt (one for all clips, or num_clips), each
        checked; the `negative_*` ones are dropped from clips without true classifier-free guidance."""
        lists = {name: per_clip(name, args[name], num_clips, str) for name in _TEXTS}
        lists |= {name: per_clip(name, args[name], num_clips, torch.Tensor) for name in _TENSORS}
        count = max(len(values) for values in lists.values())
        clips = [{name: clip_index(values, i) for name, values in lists.items()} for i in range(count)]
        batches = set()
        for i, clip in enumerate(clips):
            where = f" (clip {i})" if count > 1 else ""
            batches.add(self._check_side(clip, "", where))
            negative = clip["negative_prompt"] is not None or (  # the pipeline's has_neg_prompt
                clip["negative_prompt_embeds"] is not None
                and clip["negative_pooled_prompt_embeds"] is not None
            )
            if true_cfg and negative:
                batches.add(self._check_side(clip, "negative_", where))
            else:
                clip.update(dict.fromkeys((*_TEXTS[2:], *_TENSORS[3:])))
        if len(batches) > 1:
            raise ValueError(f"every clip's prompts and negative prompts must have one batch size; got "
                             f"{sorted(batches)} (a prompt string is a batch of 1)")  # fmt: skip
        return clips

    def _check_side(self, clip: dict[str, Any], prefix: str, where: str) -> int:
        """The checks of the pipeline (and of what its encode_prompt needs) on the positive (prefix "") or
        negative ("negative_") prompt keywords of one clip; returns their batch size."""
        text, text_2 = clip[f"{prefix}prompt"], clip[f"{prefix}prompt_2"]
        embeds, pooled = clip[f"{prefix}prompt_embeds"], clip[f"{prefix}pooled_prompt_embeds"]
        mask = clip[f"{prefix}prompt_attention_mask"]
        if not prefix and embeds is not None and (text is not None or text_2 is not None):
            raise ValueError(f"pass prompt (and prompt_2) or prompt_embeds, not both{where}")
        if embeds is None and text is None:
            raise ValueError(f"{prefix}prompt or {prefix}prompt_embeds is required{where}")
        if embeds is None:
            self._need_encoder(("tokenizer", "text_encoder"), f"{prefix}prompt_embeds", where)
        elif mask is None:
            raise ValueError(f"{prefix}prompt_attention_mask is required with {prefix}prompt_embeds{where}")
        if pooled is None:  # encode_prompt pools `prompt` through CLIP
            if text is None:
                raise ValueError(
                    f"{prefix}pooled_prompt_embeds is required with {prefix}prompt_embeds{where}"
                )
            self._need_encoder(("tokenizer_2", "text_encoder_2"), f"{prefix}pooled_prompt_embeds", where)
        return self._check_shapes(prefix, embeds, pooled, mask, where)

    def _need_encoder(self, parts: tuple[str, str], instead: str, where: str) -> None:
        missing = [name for name in parts if getattr(self.pipe, name, None) is None]
        if missing:
            raise ValueError(
                f"encoding a prompt string needs the pipeline's {' and '.join(parts)}; this pipeline has "
                f"no {', '.join(missing)}: pass {instead} instead{where}"
            )

    def _check_shapes(self, prefix: str, embeds: Any, pooled: Any, mask: Any, where: str) -> int:
        """(B, S, text_embed_dim), (B, pooled_projection_dim) and (B, S) where given; returns B."""
        config = self.pipe.transformer.config
        first = next((t for t in (embeds, pooled) if t is not None), None)
        batch = 1 if first is None or first.ndim == 0 else first.shape[0]
        length = None if embeds is None else embeds.shape[1] if embeds.ndim == 3 else None
        expected = (
            (f"{prefix}prompt_embeds", embeds, (batch, length, config.text_embed_dim)),
            (f"{prefix}pooled_prompt_embeds", pooled, (batch, config.pooled_projection_dim)),
            (f"{prefix}prompt_attention_mask", mask if embeds is not None else None, (batch, length)),
        )
        for name, tensor, shape in expected:
            if tensor is not None and not _fits(tensor.shape, shape):
                wanted = "(" + ", ".join("S" if n is None else str(n) for n in shape) + ")"
                raise ValueError(f"{name} must have shape {wanted}; got {tuple(tensor.shape)}{where}")
        return batch

    def _encode(self, clip: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        """The clip's denoiser keywords, through the pipeline's own encode_prompt, cast to the
        transformer's dtype as the pipeline casts them."""
        cond: dict[str, Any] = {"attention_kwargs": args["attention_kwargs"]}
        negative = clip["negative_prompt"] is not None or clip["negative_prompt_embeds"] is not None
        for prefix in ("", "negative_") if negative else ("",):
            encoded = self.pipe.encode_prompt(
                prompt=clip[f"{prefix}prompt"], prompt_2=clip[f"{prefix}prompt_2"],
                prompt_template=args["prompt_template"], num_videos_per_prompt=1,
                prompt_embeds=clip[f"{prefix}prompt_embeds"],
                pooled_prompt_embeds=clip[f"{prefix}pooled_prompt_embeds"],
                prompt_attention_mask=clip[f"{prefix}prompt_attention_mask"], device=self.device,
                max_sequence_length=args["max_sequence_length"],
            )  # fmt: skip
            names = ("prompt_embeds", "pooled_prompt_embeds", "prompt_attention_mask")
            dtype = self.pipe.transformer.dtype
            cond |= {prefix + name: t.to(self.device, dtype) for name, t in zip(names, encoded, strict=True)}
        return cond

    # -- decoding --------------------------------------------------------------------------------------

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        latents = latents.to(vae.device, vae.dtype) / vae.config.scaling_factor
        return vae.decode(latents, return_dict=False)[0]

    def stream_decoder(self, context: int, options: dict[str, Any] | None = None,
                       total: int | None = None) -> Any:  # fmt: skip
        """The VAE's own frame-wise (temporal-tile) decode, tile by tile (`_TiledHunyuanDecoder`): exactly
        the whole-video decode of `total` latent frames; without `total`, the generic context decode."""
        if total is None:
            return super().stream_decoder(context, options, total)
        return _TiledHunyuanDecoder(self.pipe.vae, total)


class _TiledHunyuanDecoder:
    """AutoencoderKLHunyuanVideo's frame-wise decode of a long latent video, tile by tile as frames arrive.

    With `use_framewise_decoding` (the default) the VAE decodes more than tile_min latent frames in
    temporal tiles of tile_min + 1 latent frames every `stride` latent frames, each on its own, and blends
    consecutive tiles over `blend` pixel frames; a tile is decoded here as soon as its frames are in, so
    the result is the whole-video decode of `total` frames exactly, in memory flat in the video's length.
    At most tile_min frames in all are decoded at once, as the VAE does.
    """

    def __init__(self, vae: Any, total: int) -> None:
        self.vae, self.total = vae, total
        t = vae.temporal_compression_ratio
        self.tile, self.stride = vae.tile_sample_min_num_frames // t, vae.tile_sample_stride_num_frames // t
        self.blend = vae.tile_sample_min_num_frames - vae.tile_sample_stride_num_frames
        self.keep = vae.tile_sample_stride_num_frames  # pixel frames each tile contributes
        self.length = (total - 1) * t + 1  # pixel frames of the whole video
        self.tiled = vae.use_framewise_decoding and total > self.tile
        self.pending: torch.Tensor | None = None  # latent frames from `start` on
        self.start, self.received, self.emitted = 0, 0, 0
        self.previous: torch.Tensor | None = None  # the previous tile's decoded frames

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor) -> torch.Tensor | None:
        latents = (latents / self.vae.config.scaling_factor).to(self.vae.device, self.vae.dtype)
        self.pending = latents if self.pending is None else torch.cat([self.pending, latents], dim=2)
        self.received += latents.shape[2]
        return self._tiles(final=self.received >= self.total) if self.tiled else None

    @torch.no_grad()
    def flush(self) -> torch.Tensor | None:
        if self.tiled:
            return self._tiles(final=True)
        if self.pending is None or self.emitted:
            return None
        self.emitted = self.length
        return self.vae.decode(self.pending, return_dict=False)[0]  # few frames: the VAE's plain decode

    def _tiles(self, final: bool) -> torch.Tensor | None:
        """The tiles whose frames are all in (all that start before `total` when `final`), blended."""
        out = []
        while self.start < self.total and (final or self.received - self.start >= self.tile + 1):
            tile = self.pending[:, :, : self.tile + 1]
            decoded = self._decode_tile(tile)
            if self.start > 0:
                decoded = self.vae.blend_t(self.previous, decoded[:, :, 1:], self.blend)
            self.previous = decoded
            out.append(decoded[:, :, : self.keep + (1 if self.start == 0 else 0)])
            self.pending, self.start = self.pending[:, :, self.stride :], self.start + self.stride
        if not out:
            return None
        frames = torch.cat(out, dim=2)[:, :, : self.length - self.emitted]
        self.emitted += frames.shape[2]
        return frames

    def _decode_tile(self, tile: torch.Tensor) -> torch.Tensor:
        vae, ratio = self.vae, self.vae.spatial_compression_ratio
        wide = tile.shape[-1] > vae.tile_sample_min_width // ratio
        if vae.use_tiling and (wide or tile.shape[-2] > vae.tile_sample_min_height // ratio):
            return vae.tiled_decode(tile, return_dict=True).sample
        return vae.decoder(vae.post_quant_conv(tile))


def _steps_and_sigmas(num_inference_steps: int, sigmas: Any) -> tuple[int, list[float] | np.ndarray]:
    """The step count and the sigmas the pipeline gives retrieve_timesteps: linspace(1, 0, N + 1)[:-1],
    or the caller's (whose length is then the step count, as retrieve_timesteps makes it)."""
    steps = check_steps(num_inference_steps)
    if sigmas is None:
        return steps, np.linspace(1.0, 0.0, steps + 1)[:-1]
    values = sigmas.tolist() if isinstance(sigmas, (np.ndarray, torch.Tensor)) else sigmas
    if (
        not isinstance(values, Sequence)
        or not values
        or not all(isinstance(s, Real) and not isinstance(s, bool) and 0.0 <= s <= 1.0 for s in values)
    ):
        raise ValueError(f"sigmas must be None or a non-empty 1-D sequence of noise levels in [0, 1] (one "
                         f"per step); got {sigmas!r}")  # fmt: skip
    return len(values), [float(s) for s in values]


def _check_options(prompt_template: Any, attention_kwargs: Any) -> None:
    if not isinstance(prompt_template, dict) or "template" not in prompt_template:
        raise ValueError(f"prompt_template must be a dict with a 'template' key (and optionally "
                         f"'crop_start'), as the pipeline takes; got {prompt_template!r}")  # fmt: skip
    if attention_kwargs is not None and not isinstance(attention_kwargs, dict):
        raise TypeError(f"attention_kwargs must be None or a dict; got {attention_kwargs!r}")


def _fits(shape: Sequence[int], expected: Sequence[int | None]) -> bool:
    return len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected, strict=True)
    )
