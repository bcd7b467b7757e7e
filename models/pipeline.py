"""VidRDPipeline: text -> embeddings -> LongVideoSampler -> temporal VAE, clip by clip.

Each finished clip is decoded and handed to a sink as soon as the sampler streams it out, so neither
latents nor frames accumulate with the video's length unless the caller keeps them (`MemorySink`, the
default, does; `VideoFileSink` writes to disk).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from samplers import ClassifierFreeGuidance, Clip, LongVideo, LongVideoSampler
from samplers.validation import check_generator, check_int, check_real

from .adapters import denoiser_for
from .digest import content_digest
from .resume import ClipStore
from .video_io import FrameSink, MemorySink, to_uint8_frames


def _latent_channels(config) -> int:
    """in_channels of a diffusers UNet config, or of the 2-D UNet inside a VidRDUNet config."""
    return config["unet_config"]["in_channels"] if "unet_config" in config else config["in_channels"]


class IgnoredWordsWarning(UserWarning):
    """Words of a prompt that the model's text encoder reads as unknown (or truncates)."""


@dataclass(frozen=True)
class VidRDPipelineOutput:
    frames: np.ndarray | list | None  # (L, H, W, 3) uint8, a list of PIL images, or None (custom sink)
    clip_starts: list[int]  # first frame of every clip
    latents: torch.Tensor | None = None  # (B, C, L, h, w): the latents that were decoded (return_latents)
    resumed_clips: int = 0  # clips that came from the resume folder rather than from sampling


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
        negative_prompt: str | None = "",
        generator: torch.Generator | None = None,
        sink: FrameSink | None = None,
        output_type: str = "np",
        resume_folder: str | os.PathLike | None = None,
        resume: bool = False,
        on_clip: Callable[[Clip], None] | None = None,
        return_latents: bool = False,
        clear_resume: bool = True,
    ) -> VidRDPipelineOutput:
        """One prompt for the whole video, or a list of `num_clips` prompts, one per clip (a story).
        `negative_prompt` None means no negative prompt, as "" does. Every argument is checked first.

        With `resume_folder`, what the next clip needs is kept there after every finished clip
        (models.resume), and removed once the video is complete; `resume=True` continues a run killed
        midway from that folder (the same bits as an uninterrupted run), refusing other parameters.

        `on_clip(clip)` sees every finished clip (its latents, start and initial noise) once it is decoded;
        `return_latents=True` also returns the latents of the whole video (`output.latents`), which then
        grow with its length. Neither needs a wrapper around the sampler. `clear_resume=False` leaves the
        resume folder for the caller to clear once its own outputs are safe (models.resume.ClipStore)."""
        prompts = self._check(prompt, num_clips, num_frames, guidance_scale, output_type)
        negative_prompt = self._check_extras(negative_prompt, sink, sampler, resume_folder, resume, generator)
        if on_clip is not None and not callable(on_clip):
            raise TypeError(f"on_clip must be None or a callable Clip -> None; got {on_clip!r}")
        sampler = sampler if sampler is not None else LongVideoSampler(progress=False)
        self._warn_ignored_words([*prompts, negative_prompt])
        clip_shape = self.clip_shape(1, num_frames, height, width)
        if hasattr(sampler, "check_clip"):
            sampler.check_clip(num_frames)
        run = {"prompts": prompts, "negative_prompt": negative_prompt, "clip_shape": list(clip_shape),
               "num_clips": num_clips, "num_inference_steps": num_inference_steps,
               "guidance_scale": guidance_scale, "sampler": repr(sampler),
               "drop_prompt_frames": getattr(sampler, "drop_prompt_frames", None),
               "torch_threads": torch.get_num_threads()}  # fmt: skip
        store, point = self._resume_point(resume_folder, resume, run, generator)
        with torch.no_grad():
            embeddings = self.text_encoder.encode(prompts)  # (len(prompts), S, D)
            negative = self.text_encoder.encode([negative_prompt])
        denoiser, clip_cond = self._conditioning(embeddings, negative, guidance_scale)
        keep = sink is None
        sink = MemorySink() if keep else sink
        kept: list[torch.Tensor] | None = [] if return_latents else None
        video = sampler.sample(
            denoiser, self.scheduler, clip_shape, num_clips, num_inference_steps,
            generator=generator, on_clip=self._on_clip(sink, store, on_clip, kept), return_latents=False,
            clip_cond=clip_cond, resume=point, on_state=store.save_state if store else None,
        )  # fmt: skip
        if store is not None and clear_resume:
            store.clear()
        frames = None
        if keep:  # a sink the caller passed is the caller's to close
            sink.close()
            frames = sink.frames
        if frames is not None and output_type == "pil":
            from PIL import Image  # Pillow comes with diffusers

            frames = [Image.fromarray(f) for f in frames]
        latents = torch.cat(kept, dim=2) if kept else None
        resumed = point.state.next_clip if point is not None else 0
        return VidRDPipelineOutput(frames=frames, clip_starts=video.clip_starts, latents=latents,
                                   resumed_clips=resumed)  # fmt: skip

    def _check_extras(self, negative_prompt, sink, sampler, resume_folder, resume, generator) -> str:
        """Checks of the keyword arguments; returns the negative prompt ("" for None)."""
        negative_prompt = "" if negative_prompt is None else negative_prompt
        if not isinstance(negative_prompt, str):
            raise TypeError(f"negative_prompt must be a string or None; got {negative_prompt!r}")
        if sink is not None and not isinstance(sink, FrameSink):
            raise TypeError(f"sink must be a FrameSink (with write(frames) and close()); got {sink!r}")
        if sampler is not None and not callable(getattr(sampler, "sample", None)):
            raise TypeError(f"sampler must be a LongVideoSampler (with .sample); got {sampler!r}")
        if resume_folder is not None:
            check_generator(generator)
        if not isinstance(resume, bool) or (resume and resume_folder is None):
            raise ValueError(f"resume must be True (with a resume_folder) or False; got {resume!r}")
        return negative_prompt

    def _resume_point(self, folder, resume: bool, run: dict[str, Any], generator):
        """(store, Resume or None): where to keep the run's state, and where to continue from. The
        fingerprint holds the run's parameters, the model's digest and the generator's starting state."""
        if folder is None:
            return None, None
        start = content_digest(generator.get_state())
        identity = {"model": self.digest(), "generator_seed": generator.initial_seed(), "generator": start}
        store = ClipStore(folder, {**run, **identity})
        if not resume:
            store.clear()  # a fresh run: an old state there would be stale
            return store, None
        return store, store.load(device=generator.device)

    def digest(self) -> str:
        """The model's identity: the content digest (models.digest) of the scheduler's config and, for
        each of the three models, its config, run-time switches (`use_*`), dtype, device and weights."""
        parts = {"scheduler": dict(self.scheduler.config)}
        for name in ("unet", "vae", "text_encoder"):
            model = getattr(self, name)
            switches = {k: v for k, v in vars(model).items() if k.startswith("use_") and isinstance(v, bool)}
            parts[name] = {
                "config": dict(getattr(model, "config", {})),
                "switches": switches,
                "dtype": str(getattr(model, "dtype", "")),
                "device": str(getattr(model, "device", "")),
                "weights": dict(sorted(model.state_dict().items())),
            }
        return content_digest(parts)

    def _on_clip(self, sink: FrameSink, store: ClipStore | None, then, kept: list | None):
        """Each clip: decoded into the sink, kept for resuming, handed to the caller, kept if asked."""

        def on_clip(clip: Clip) -> None:
            self._decode_into(clip, sink)
            if store is not None:
                store.save_clip(clip)
            if then is not None:
                then(clip)
            if kept is not None:
                kept.append(clip.latents)

        return on_clip

    def _check(self, prompt, num_clips, num_frames, guidance_scale, output_type) -> list[str]:
        check_int("num_clips", num_clips, 1)
        check_int("num_frames", num_frames, 2)
        check_real("guidance_scale", guidance_scale, 0.0, sys.float_info.max)  # finite
        if output_type not in ("np", "pil"):
            raise ValueError(f"output_type must be 'np' or 'pil'; got {output_type!r}")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if len(prompts) not in (1, num_clips) or not all(isinstance(p, str) for p in prompts):
            raise ValueError(
                f"prompt must be a string or a list of num_clips={num_clips} strings; "
                f"got {len(prompts)} items"
            )
        if any(not p.strip() for p in prompts):
            raise ValueError(f"prompt must not be empty or blank; got {prompt!r}")
        return prompts

    def _warn_ignored_words(self, prompts: list[str]) -> None:
        """An `IgnoredWordsWarning` naming the words the text encoder cannot read (where it can tell)."""
        tokenizer = getattr(self.text_encoder, "tokenizer", None)
        if not callable(getattr(tokenizer, "ignored_words", None)):
            return
        for prompt in dict.fromkeys(prompts):
            ignored = tokenizer.ignored_words(prompt)
            if ignored:
                warnings.warn(
                    f"the text encoder ignores {ignored} of the prompt {prompt!r}: out of its vocabulary "
                    f"or past its {tokenizer.max_length} words",
                    IgnoredWordsWarning,
                    stacklevel=3,
                )

    def clip_shape(self, batch: int, num_frames: int, height: int | None = None, width: int | None = None):
        """The latent clip shape (B, C, N, h, w) for frames of height x width (None: the VAE's size)."""
        size = self.vae.vae.config.sample_size
        factor = self.vae_scale_factor
        height, width = (size if v is None else v for v in (height, width))
        for name, value in (("height", height), ("width", width)):
            if check_int(name, value, factor) % factor:
                raise ValueError(f"{name} must be a positive multiple of {factor} (or None); got {value}")
        return (batch, _latent_channels(self.unet.config), num_frames, height // factor, width // factor)

    @torch.no_grad()
    def sample_batch(
        self,
        prompts: list[str],
        generator: torch.Generator,
        sampler: LongVideoSampler | None = None,
        num_frames: int = 8,
        num_clips: int = 1,
        num_inference_steps: int = 25,
        guidance_scale: float = 7.5,
    ) -> LongVideo:
        """One long video per prompt, all in one batch, with the empty prompt as the negative one: the
        latents (B, C, L, h, w) and clip starts, undecoded (`decode_clip` decodes a clip). The batched
        form the benchmarks use to score many captions at once; the same conditioning as `__call__`."""
        check_int("num_frames", num_frames, 2)
        _check_batch(prompts, guidance_scale)
        sampler = sampler if sampler is not None else LongVideoSampler(progress=False)
        denoiser, cond = self.batch_conditioning(prompts, guidance_scale)
        shape = self.clip_shape(len(prompts), num_frames)
        return sampler.sample(denoiser, self.scheduler, shape, num_clips, num_inference_steps,
                              generator=generator, **cond)  # fmt: skip

    @torch.no_grad()
    def batch_conditioning(self, prompts: list[str], guidance_scale: float = 7.5) -> tuple[Any, dict]:
        """(denoiser, keyword arguments of its calls) for one video per prompt, the empty prompt as the
        negative one: what `sample_batch` samples with, for samplers of the whole video at once."""
        _check_batch(prompts, guidance_scale)
        embeddings = self.text_encoder.encode(list(prompts))  # (B, S, D)
        negative = self.text_encoder.encode([""]).expand_as(embeddings)
        denoiser, clip_cond = self._conditioning(embeddings, negative, guidance_scale, per_clip=False)
        return denoiser, clip_cond(0)

    def _conditioning(self, embeddings, negative, guidance_scale, per_clip: bool = True):
        """The denoiser and the per-clip keyword arguments; CFG as one batched call when scale != 1.
        `per_clip`: embeddings (num_prompts, S, D) are one prompt per clip of one video; otherwise they
        are one prompt per video of the batch, for every clip."""

        def pick(i: int) -> torch.Tensor:
            return embeddings[min(i, len(embeddings) - 1)][None] if per_clip else embeddings

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


def _check_batch(prompts: list[str], guidance_scale: float) -> None:
    """ValueError unless `prompts` is a non-empty list of non-blank strings and the scale finite >= 0."""
    check_real("guidance_scale", guidance_scale, 0.0, sys.float_info.max)
    listed = isinstance(prompts, list) and len(prompts) > 0
    if not listed or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError(f"prompts must be a non-empty list of non-blank strings; got {prompts!r}")
