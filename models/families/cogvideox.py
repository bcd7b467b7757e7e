"""CogVideoX 1.0 / 1.5 (`CogVideoXPipeline`): `CogVideoXTransformer3DModel`, v-prediction DDIM, T5 prompts.

The loop, as `CogVideoXPipeline.__call__` runs it in diffusers 0.42: latents (B, F, C, h, w) in the prompt
embeddings' dtype, never cast to the transformer's; `set_timesteps(N, device=...)` (retrieve_timesteps
with the count alone); classifier-free guidance is ONE transformer call on the batch [uncond, cond]: the
latents duplicated, the embeddings concatenated negative first; the int64 timestep t is expanded to that
batch; CogVideoX-5b and 1.5 also get rotary embeddings from the pixel size and the latent frame count
(`_prepare_rotary_positional_embeddings`). The output is cast to float32 and combined as u + g (c - u),
with `use_dynamic_cfg` g = 1 + g0 (1 - cos(pi ((N - t) / N) ** 5)) / 2 (t the timestep value, N the step
count). CogVideoXDPMScheduler (CogVideoX-5b) steps with two more arguments, the previous step's x0
estimate and the previous timestep, and draws its noise from the generator in the pipeline's layout:
`DPMStep` carries both and steps in that layout. Decoding: (1 / scaling_factor) * latents, then the VAE.

What the kit refuses, before any model call: CogVideoX 1.5 clips whose latent frame count is not a multiple
of `patch_size_t` (the pipeline pads leading noise frames there and drops them before decoding; the kit's
sampler would have to carry them as clip frames), custom `timesteps`, `eta` other than 0 (the kit steps the
scheduler without it), `num_videos_per_prompt` other than 1 (the pipeline ignores it), and transformers with
`ofs` embeddings (CogVideoX 1.5 I2V: the text-to-video loop passes no `ofs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from diffusers import CogVideoXDPMScheduler
from einops import rearrange

from samplers import Schedule
from samplers.validation import check_int, check_real

from ..stream_decode import pixel_range
from .base import (
    ClipPlan,
    VideoFamily,
    check_guidance,
    clip_index,
    no_check,
    per_clip,
    take,
)

_ALLOWED = {
    "prompt": None, "negative_prompt": None, "prompt_embeds": None, "negative_prompt_embeds": None,
    "height": None, "width": None, "num_frames": None, "num_inference_steps": 50, "timesteps": None,
    "guidance_scale": 6.0, "use_dynamic_cfg": False, "num_videos_per_prompt": 1, "eta": 0.0,
    "attention_kwargs": None, "max_sequence_length": 226,
}  # fmt: skip


def to_model_layout(latents: torch.Tensor) -> torch.Tensor:
    return rearrange(latents, "b c f h w -> b f c h w")


def from_model_layout(latents: torch.Tensor) -> torch.Tensor:
    return rearrange(latents, "b f c h w -> b c f h w")


class CogVideoXDenoiser:
    """The CogVideoX transformer as a `VideoDenoiser`, with the pipeline's guidance: one call on the batch
    [uncond, cond], the output in float32, u + g (c - u) (g per step with `use_dynamic_cfg`)."""

    def __init__(self, pipe: Any, guidance_scale: float, use_dynamic_cfg: bool, num_inference_steps: int,
                 ) -> None:  # fmt: skip
        self.pipe = pipe
        self.guidance_scale, self.use_dynamic_cfg = guidance_scale, use_dynamic_cfg
        self.num_inference_steps = num_inference_steps
        self._rotary: dict[tuple, Any] = {}  # (F, h, w, device) -> rotary embeddings

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor, *, prompt_embeds: torch.Tensor,
                 attention_kwargs: dict | None = None) -> torch.Tensor:  # fmt: skip
        model = self.pipe.transformer
        guided = self.guidance_scale > 1.0
        frames = to_model_layout(latents)
        model_input = torch.cat([frames] * 2) if guided else frames.contiguous()
        t = torch.as_tensor(timestep, device=latents.device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and latents.requires_grad):
            with model.cache_context("cond_uncond"):
                output = model(hidden_states=model_input, encoder_hidden_states=prompt_embeds,
                               timestep=t.expand(model_input.shape[0]), image_rotary_emb=self.rotary(frames),
                               attention_kwargs=attention_kwargs, return_dict=False)[0]  # fmt: skip
            output = output.float()
            if guided:
                uncond, cond = output.chunk(2)
                output = uncond + self.scale(t) * (cond - uncond)
        return from_model_layout(output)  # float32: the pipeline steps with it, then casts the latents

    def scale(self, t: torch.Tensor) -> float:
        """The guidance scale at timestep t: fixed, or the pipeline's dynamic formula (in t's value)."""
        if not self.use_dynamic_cfg:
            return self.guidance_scale
        n = self.num_inference_steps
        return 1 + self.guidance_scale * ((1 - math.cos(math.pi * ((n - t.item()) / n) ** 5.0)) / 2)

    def rotary(self, frames: torch.Tensor) -> Any:
        """The pipeline's rotary embeddings for latents (B, F, C, h, w), or None without them."""
        if not self.pipe.transformer.config.use_rotary_positional_embeddings:
            return None
        _, num_frames, _, h, w = frames.shape
        key = (num_frames, h, w, frames.device)
        if key not in self._rotary:
            spatial = self.pipe.vae_scale_factor_spatial
            self._rotary[key] = self.pipe._prepare_rotary_positional_embeddings(
                h * spatial, w * spatial, num_frames, frames.device
            )
        return self._rotary[key]


class DPMStep:
    """CogVideoXDPMScheduler as a scheduler the kit's `Schedule` can step, as the pipeline steps it.

    The pipeline calls `step(output, old_x0, t, t_previous, latents, eta, generator)` and keeps the x0
    estimate it returns for the next step; this keeps both (reset by `set_timesteps`) and steps in the
    pipeline's (B, F, C, h, w) layout so that the noise the step draws lands where the pipeline's does.
    Every other attribute is the scheduler's. `model_outputs` is the step's history (the kit's sign of a
    multistep solver: latent replacement before a step is then not the paper's exact formula).
    """

    def __init__(self, scheduler: CogVideoXDPMScheduler, eta: float = 0.0) -> None:
        self.scheduler, self.eta = scheduler, eta
        self.model_outputs: list[torch.Tensor | None] = [None]  # the previous step's x0 estimate
        self.step_index = 0

    def __getattr__(self, name: str) -> Any:
        if name == "scheduler":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.scheduler, name)

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> None:
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        self.model_outputs, self.step_index = [None], 0

    def step(self, model_output: torch.Tensor, timestep: torch.Tensor, sample: torch.Tensor,
             generator: torch.Generator | None = None) -> Any:  # fmt: skip
        i = self.step_index
        previous = self.scheduler.timesteps[i - 1] if i > 0 else None
        latents, x0 = self.scheduler.step(
            to_model_layout(model_output), self.model_outputs[0], timestep, previous,
            to_model_layout(sample), eta=self.eta, generator=generator, return_dict=False,
        )  # fmt: skip
        self.model_outputs, self.step_index = [x0], i + 1
        return _Stepped(from_model_layout(latents))


class _Stepped:
    def __init__(self, prev_sample: torch.Tensor) -> None:
        self.prev_sample = prev_sample


class CogVideoXFamily(VideoFamily):
    pipeline_names = ("CogVideoXPipeline",)

    @property
    def config(self) -> Any:
        return self.pipe.transformer.config

    @property
    def patch_size_t(self) -> int:
        return int(self.config.patch_size_t or 1)

    def latent_frames(self, num_frames: int) -> int:
        """F = (num_frames - 1) / 4 + 1, and for CogVideoX 1.5 a multiple of patch_size_t (unpadded)."""
        frames = super().latent_frames(num_frames)
        p_t, t = self.patch_size_t, self.temporal
        if frames % p_t:
            below = (frames // p_t * p_t - 1) * t + 1
            valid = f"{below} or {below + p_t * t}" if below > 0 else f"{(p_t - 1) * t + 1}"
            raise ValueError(
                f"num_frames must make a multiple of patch_size_t={p_t} latent frames for this CogVideoX 1.5 "
                f"transformer, i.e. be of the form {p_t * t}k+{(p_t - 1) * t + 1}: the pipeline pads other "
                f"counts with leading noise frames that the kit's sampler cannot carry; got {num_frames} "
                f"({frames} latent frames), nearest valid: {valid}"
            )
        return frames

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        h, w = super().latent_size(height, width)
        config, sample = self.config, (self.config.sample_height, self.config.sample_width)
        if config.use_learned_positional_embeddings and (h, w) != sample:
            raise ValueError(
                f"height and width must be {sample[0] * self.spatial} and {sample[1] * self.spatial} for "
                f"this transformer (learned positional embeddings); got {height} and {width}"
            )
        if config.patch_size_t is not None and (h > sample[0] or w > sample[1]):  # rotary grid "slice"
            raise ValueError(
                f"height and width can be at most {sample[0] * self.spatial} and {sample[1] * self.spatial} "
                f"for this CogVideoX 1.5 transformer (its rotary grid); got {height} and {width}"
            )
        return h, w

    def plan(self, num_clips: int, generator: torch.Generator | None, kwargs: dict[str, Any],
             check_frames: Callable[[int], None] = no_check) -> ClipPlan:  # fmt: skip
        args = take(kwargs, _ALLOWED, type(self.pipe).__name__)
        self._check_model()
        spatial, config = self.spatial, self.config
        frames = self.latent_frames(_default(args["num_frames"], config.sample_frames))
        check_frames(frames)  # the sampler's clip checks, before any model call
        h, w = self.latent_size(_default(args["height"], config.sample_height * spatial),
                                _default(args["width"], config.sample_width * spatial))  # fmt: skip
        steps = check_int("num_inference_steps", args["num_inference_steps"], 1,
                          self.pipe.scheduler.config.num_train_timesteps)  # fmt: skip
        scale = check_guidance("guidance_scale", args["guidance_scale"])
        _check_options(args)
        conds = self._encode(args, num_clips, scale > 1.0)
        embeds = conds[0]["prompt_embeds"]
        batch = embeds.shape[0] // 2 if scale > 1.0 else embeds.shape[0]
        shape = (batch, config.in_channels, frames, h, w)
        denoiser = CogVideoXDenoiser(self.pipe, scale, args["use_dynamic_cfg"], steps)
        schedule = self.schedule(args["eta"], embeds.dtype)
        return ClipPlan(shape, denoiser, lambda i: clip_index(conds, i), schedule, steps, self.device,
                        embeds.dtype)  # fmt: skip

    def schedule(self, eta: float = 0.0, dtype: torch.dtype | None = None) -> Schedule:
        """The pipeline's `set_timesteps(N)`, its latents cast back to `dtype` after every step;
        CogVideoXDPMScheduler stepped through `DPMStep`."""
        scheduler = self.pipe.scheduler
        dpm = isinstance(scheduler, CogVideoXDPMScheduler)
        return Schedule(DPMStep(scheduler, eta) if dpm else scheduler, state_dtype=dtype)

    def _check_model(self) -> None:
        if self.config.ofs_embed_dim:
            raise ValueError(
                "this transformer has ofs embeddings (CogVideoX 1.5 image-to-video); CogVideoXPipeline's "
                "text-to-video loop passes no ofs, so the kit refuses it as the pipeline would fail"
            )

    def _encode(self, args: dict[str, Any], num_clips: int, guided: bool) -> list[dict[str, Any]]:
        """One conditioning dict per distinct clip prompt, through the pipeline's own encode_prompt; with
        guidance its prompt_embeds are [negative, positive] concatenated, as the pipeline's."""
        items = {
            "prompt": per_clip("prompt", args["prompt"], num_clips, str),
            "negative_prompt": per_clip("negative_prompt", args["negative_prompt"], num_clips, str),
            "prompt_embeds": per_clip("prompt_embeds", args["prompt_embeds"], num_clips, torch.Tensor),
            "negative_prompt_embeds": per_clip("negative_prompt_embeds", args["negative_prompt_embeds"],
                                               num_clips, torch.Tensor),
        }  # fmt: skip
        count = max(len(v) for v in items.values())
        clips = [{name: clip_index(values, i) for name, values in items.items()} for i in range(count)]
        for i, clip in enumerate(clips):
            self._check_prompts(clip, guided, f" (clip {i})" if count > 1 else "")
        conds = []
        for clip in clips:
            positive, negative = self.pipe.encode_prompt(
                **clip, do_classifier_free_guidance=guided, num_videos_per_prompt=1,
                max_sequence_length=args["max_sequence_length"], device=self.device,
            )  # fmt: skip
            embeds = torch.cat([negative, positive], dim=0) if guided else positive
            conds.append({"prompt_embeds": embeds, "attention_kwargs": args["attention_kwargs"]})
        _check_same(conds)
        return conds

    def _check_prompts(self, clip: dict[str, Any], guided: bool, where: str) -> None:
        """The pipeline's check_inputs on one clip's prompts, and the embeddings' shapes."""
        for a, b in (("prompt", "prompt_embeds"), ("prompt", "negative_prompt_embeds"),
                     ("negative_prompt", "negative_prompt_embeds")):  # fmt: skip
            if clip[a] is not None and clip[b] is not None:
                raise ValueError(f"pass {a} or {b}, not both{where}")
        if clip["prompt"] is None and clip["prompt_embeds"] is None:
            raise ValueError(f"prompt or prompt_embeds is required{where}")
        for name in ("prompt_embeds", "negative_prompt_embeds"):
            if clip[name] is not None:
                self._check_embeds(name, clip[name], where)
        positive, negative = clip["prompt_embeds"], clip["negative_prompt_embeds"]
        if positive is not None and negative is not None and positive.shape != negative.shape:
            raise ValueError(f"prompt_embeds and negative_prompt_embeds must have the same shape{where}; got "
                             f"{tuple(positive.shape)} and {tuple(negative.shape)}")  # fmt: skip
        if self.pipe.tokenizer is None and (clip["prompt"] is not None or (guided and negative is None)):
            raise ValueError(f"this pipeline has no tokenizer: pass prompt_embeds, and "
                             f"negative_prompt_embeds with guidance_scale > 1{where}")  # fmt: skip

    def _check_embeds(self, name: str, embeds: torch.Tensor, where: str) -> None:
        config = self.config
        length = config.max_text_seq_length
        fixed = not config.use_rotary_positional_embeddings or config.use_learned_positional_embeddings
        width = config.text_embed_dim
        if embeds.ndim != 3 or embeds.shape[2] != width or (fixed and embeds.shape[1] != length):
            wanted = f"(B, {length if fixed else 'S'}, {width})"
            why = f" (its positional embeddings take exactly {length} text tokens)" if fixed else ""
            raise ValueError(f"{name} must have the shape {wanted} for this transformer{why}{where}; got "
                             f"{tuple(embeds.shape)}")  # fmt: skip

    def to_pipeline_layout(self, latents: torch.Tensor) -> torch.Tensor:
        return to_model_layout(latents)

    def from_pipeline_layout(self, latents: torch.Tensor, clip_shape: Sequence[int]) -> torch.Tensor:
        b, c, f, h, w = clip_shape
        return rearrange(latents, "b f c h w -> b c f h w", b=b, c=c, f=f, h=h, w=w)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """The pipeline's decode. Its VAE (two latent frames at a time) turns an odd number n of latent
        frames into 1 + (n-1) t frames but an even n into n t (the first latent frame then decodes to t
        frames, not one): the frames beyond 1 + (n-1) t are dropped from the start of such a decode."""
        vae = self.pipe.vae
        latents = latents.to(vae.device, vae.dtype)
        frames = vae.decode(1 / self.pipe.vae_scaling_factor_image * latents).sample
        excess = frames.shape[2] - pixel_range(0, latents.shape[2], self.temporal)[1]
        return frames[:, :, excess:] if excess > 0 else frames


    def stream_decoder(self, context: int, options: dict[str, Any] | None = None,
                       total: int | None = None) -> Any:  # fmt: skip
        """CogVideoX's VAE decodes two latent frames at a time (three first when the count is odd),
        carrying its convolutions' cache: decoding the long video's batches as they arrive, with that
        cache, is the whole-video decode of `total` frames exactly. With spatial tiling on (or the total
        unknown), the generic context decode."""
        vae = self.pipe.vae
        if total is None or getattr(vae, "use_tiling", False):
            return super().stream_decoder(context, options, total)
        return _CachedCogVideoXDecoder(vae, 1 / self.pipe.vae_scaling_factor_image, total, self.temporal)


class _CachedCogVideoXDecoder:
    """AutoencoderKLCogVideoX's batched decode of `total` latent frames, batch by batch as frames arrive."""

    def __init__(self, vae: Any, scale: float, total: int, temporal: int) -> None:
        self.vae, self.scale = vae, scale
        size = vae.num_latent_frames_batch_size
        first = size + total % size if total >= size else total  # the odd frame joins the first batch
        self.batches = [first] + [size] * ((total - first) // size)
        # an even count decodes its first latent frame to t frames: the video has 1 + (n-1) t of them
        self.trim = temporal - 1 if total >= size and total % size == 0 else 0
        self.pending: torch.Tensor | None = None
        self.cache: Any = None

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor) -> torch.Tensor | None:
        self.pending = latents if self.pending is None else torch.cat([self.pending, latents], dim=2)
        out = []
        while self.batches and self.pending.shape[2] >= self.batches[0]:
            size = self.batches.pop(0)
            z, self.pending = self.pending[:, :, :size], self.pending[:, :, size:]
            z = (self.scale * z).to(self.vae.device, self.vae.dtype)
            if self.vae.post_quant_conv is not None:
                z = self.vae.post_quant_conv(z)
            frames, self.cache = self.vae.decoder(z, conv_cache=self.cache)
            out.append(frames[:, :, self.trim :])
            self.trim = 0
        return torch.cat(out, dim=2) if out else None

    def flush(self) -> None:
        """Every batch was decoded as its frames arrived."""
        return None


def _default(value: Any, default: Any) -> Any:
    """The pipeline's `value or default` for height, width and num_frames."""
    return value or default


def _check_options(args: dict[str, Any]) -> None:
    """The keywords the kit takes only at the values with which the pipeline's loop is the kit's."""
    if args["timesteps"] is not None:
        raise ValueError("timesteps must be None: the kit sets the scheduler's timesteps from "
                         "num_inference_steps, as the pipeline does without them; got "
                         f"{args['timesteps']!r}")  # fmt: skip
    if not isinstance(args["use_dynamic_cfg"], bool):
        raise TypeError(f"use_dynamic_cfg must be a bool; got {args['use_dynamic_cfg']!r}")
    if check_int("num_videos_per_prompt", args["num_videos_per_prompt"], 1) != 1:
        raise ValueError("num_videos_per_prompt must be 1 (CogVideoXPipeline makes one video per prompt "
                         f"whatever it is given); got {args['num_videos_per_prompt']}")  # fmt: skip
    if check_real("eta", args["eta"], 0.0, 1.0) != 0.0:
        raise ValueError(f"eta must be 0.0: the kit's sampler steps the scheduler without eta; got "
                         f"{args['eta']}")  # fmt: skip
    check_int("max_sequence_length", args["max_sequence_length"], 1)
    if args["attention_kwargs"] is not None and not isinstance(args["attention_kwargs"], dict):
        raise TypeError(f"attention_kwargs must be None or a dict; got {args['attention_kwargs']!r}")


def _check_same(conds: list[dict[str, Any]]) -> None:
    """Every clip's embeddings must share their batch size and dtype (the latents' dtype is theirs)."""
    first = conds[0]["prompt_embeds"]
    for i, cond in enumerate(conds[1:], 1):
        embeds = cond["prompt_embeds"]
        if embeds.shape[0] != first.shape[0] or embeds.dtype != first.dtype:
            raise ValueError(
                f"the prompt embeddings of every clip must share batch size and dtype; clip 0's are "
                f"{tuple(first.shape)} {first.dtype}, clip {i}'s {tuple(embeds.shape)} {embeds.dtype} (with "
                "guidance, negative and positive concatenated)"
            )


__all__ = ["CogVideoXDenoiser", "CogVideoXFamily", "DPMStep"]
