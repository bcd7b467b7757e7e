"""LongVideoSampler: a long video clip by clip, with composable noise initializers and guidances.

Per clip i (DESIGN.md §2):
  1. zT[i] <- initializers applied in list order to fresh N(0, I) noise (FNR, PNS, ...);
  2. z_0 <- zT[i] * init_noise_sigma, then for each step s = 0..T-1:
       z_s <- guidances applied in list order (DSG, ...);  record what the guidances declared;
       z_{s+1} <- scheduler.step(denoiser(scale_model_input(z_s), t_s), t_s, z_s);
  3. stream the finished clip out (`on_clip`), keep zT[i] and the recording for clip i+1.

Guidances may differentiate through the denoiser: where the scheduler converts its model output to x0
exactly (schedulers.x0_conversion_problem), each step's context carries `predict_x0`, a closure that
calls the denoiser once on latents shaped like z_s (with the clip's conditioning) and returns x0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import torch
from tqdm.auto import tqdm

from .protocols import LatentGuidance, NoiseContext, NoiseInitializer, Recording, RecordSpec, StepContext
from .schedulers import (
    alpha_bar,
    check_scheduler,
    step_kwargs,
    warn_if_guidance_inexact,
    x0_conversion_problem,
    x0_from_output,
)
from .validation import check_int


@dataclass(frozen=True)
class Clip:
    """One finished clip, as streamed to `on_clip`."""

    index: int  # i
    start: int  # frame index of its first kept frame in the long video
    latents: torch.Tensor  # (B, C, n, H, W): the kept frames (n = N, or N - M when prompt frames are dropped)
    initial_noise: torch.Tensor  # zT[i], unit variance, (B, C, N, H, W)


@dataclass(frozen=True)
class LongVideo:
    """The sampler's result."""

    latents: torch.Tensor | None  # (B, C, L, H, W); None when sampled with return_latents=False
    clip_starts: list[int]  # frame index where each clip begins in `latents`


def _split_strategies(strategies: Sequence[Any]) -> tuple[list[NoiseInitializer], list[LatentGuidance]]:
    """Guidances are recognised by `record_spec`; any other callable is a noise initializer."""
    initializers, guidances = [], []
    for k, strategy in enumerate(strategies):
        if isinstance(strategy, type):  # a runtime Protocol check would accept the class itself
            name = strategy.__name__
            raise TypeError(f"strategies[{k}] is the class {name}; pass an instance, e.g. {name}()")
        if isinstance(strategy, LatentGuidance):
            guidances.append(strategy)
        elif isinstance(strategy, NoiseInitializer):
            initializers.append(strategy)
        else:
            raise TypeError(
                f"strategies[{k}] must be a NoiseInitializer or a LatentGuidance; got {strategy!r}"
            )
    return initializers, guidances


def _merge_specs(specs: list[RecordSpec]) -> RecordSpec:
    """The union of what every guidance asked to keep."""
    frames = tuple(sorted({f for spec in specs for f in spec.frames}))
    steps = max((spec.steps for spec in specs), default=0)
    return RecordSpec(frames=frames, steps=steps, final=any(spec.final for spec in specs))


def _duplicates_prompt_frames(strategies: Sequence[Any]) -> bool:
    """True when a strategy declares that its clips' first M frames repeat the previous clip."""
    return any(getattr(strategy, "duplicates_prompt_frames", False) for strategy in strategies)


class LongVideoSampler:
    """`LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)])` is the paper's VidRD sampler.

    `drop_prompt_frames`: True drops the first M frames of clips i >= 1 from the output, False keeps all
    N frames of every clip (the paper, whose prompt frames mirror the previous clip). None (the default)
    drops them when some strategy declares `duplicates_prompt_frames` (e.g. `ForwardOverlap`, whose
    prompt frames repeat the previous clip's last M frames in forward order) and keeps them otherwise.
    """

    def __init__(
        self,
        strategies: Sequence[Any] = (),
        prompt_frames: int = 4,
        drop_prompt_frames: bool | None = None,
        progress: bool = True,
    ) -> None:
        self.prompt_frames = check_int("prompt_frames", prompt_frames, 1)
        self.initializers, self.guidances = _split_strategies(strategies)
        if drop_prompt_frames is not None and not isinstance(drop_prompt_frames, bool):
            raise TypeError(f"drop_prompt_frames must be True, False or None; got {drop_prompt_frames!r}")
        if drop_prompt_frames is None:
            drop_prompt_frames = _duplicates_prompt_frames([*self.initializers, *self.guidances])
        self.drop_prompt_frames = drop_prompt_frames  # resolved: True drops clips' prompt frames (i >= 1)
        self.progress = progress

    def __repr__(self) -> str:
        names = ", ".join(repr(s) for s in (*self.initializers, *self.guidances))
        return f"LongVideoSampler([{names}], prompt_frames={self.prompt_frames})"

    def sample(
        self,
        denoiser: Callable[..., torch.Tensor],
        scheduler: Any,
        clip_shape: Sequence[int],
        num_clips: int,
        num_inference_steps: int = 50,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        on_clip: Callable[[Clip], None] | None = None,
        return_latents: bool = True,
        clip_cond: Callable[[int], dict[str, Any]] | None = None,
        **cond: Any,
    ) -> LongVideo:
        """Sample `num_clips` clips of shape `clip_shape` = (B, C, N, H, W).

        `cond` goes to every denoiser call; `clip_cond(i)` adds (or overrides) keyword arguments for the
        calls of clip i, e.g. one prompt per clip.
        """
        clip_shape = self._validate(
            denoiser, scheduler, clip_shape, num_clips, num_inference_steps, generator
        )
        if clip_cond is not None and not callable(clip_cond):
            raise TypeError(
                f"clip_cond must be a callable clip index -> dict of denoiser kwargs; got {clip_cond!r}"
            )
        device = torch.device(device) if device is not None else generator.device
        scheduler.set_timesteps(num_inference_steps)  # T = len(timesteps); each clip sets them again
        num_steps = len(scheduler.timesteps)
        specs = [g.record_spec(clip_shape[2], self.prompt_frames, num_steps) for g in self.guidances]
        # A guidance that records nothing has nothing of the previous clip to impose (e.g. DSG(beta=0)).
        active = [
            type(g).__name__
            for g, spec in zip(self.guidances, specs, strict=True)
            if spec.steps > 0 or spec.final
        ]
        warn_if_guidance_inexact(scheduler, active)
        spec = _merge_specs(specs)
        run = _ClipRun(self, denoiser, scheduler, num_inference_steps, generator, spec)
        kept, starts, start = [], [], 0
        noise, recording = None, None
        with tqdm(total=num_clips * num_steps, disable=not self.progress, desc="clips") as bar:
            for i in range(num_clips):
                noise = self._initial_noise(i, noise, clip_shape, generator, dtype, device)
                clip_kwargs = cond if clip_cond is None else {**cond, **clip_cond(i)}
                latents, recording = run.denoise(i, noise, recording, clip_kwargs, bar)
                if self.drop_prompt_frames and i > 0:
                    latents = latents[:, :, self.prompt_frames :]
                if on_clip is not None:
                    on_clip(Clip(index=i, start=start, latents=latents, initial_noise=noise))
                if return_latents:
                    kept.append(latents)
                starts.append(start)
                start += latents.shape[2]
        return LongVideo(latents=torch.cat(kept, dim=2) if return_latents else None, clip_starts=starts)

    def check_clip(self, num_frames: int) -> None:
        """ValueError unless clips of N = `num_frames` suit M and every strategy (its optional
        `check_clip(num_frames, prompt_frames)` hook); callers may run it before loading a model."""
        if not self.prompt_frames < num_frames:
            raise ValueError(
                f"prompt_frames must be in [1, N-1] = [1, {num_frames - 1}] for clips of N={num_frames} "
                f"frames; got {self.prompt_frames}"
            )
        for strategy in (*self.initializers, *self.guidances):
            if callable(getattr(strategy, "check_clip", None)):
                strategy.check_clip(num_frames, self.prompt_frames)

    def _validate(self, denoiser, scheduler, clip_shape, num_clips, num_inference_steps, generator):
        """Every check that can be made before any work; returns clip_shape as a tuple."""
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable (a VideoDenoiser); got {type(denoiser).__name__}")
        check_scheduler(scheduler)
        for strategy in (*self.initializers, *self.guidances):  # e.g. a guidance that needs exact x0
            if callable(getattr(strategy, "check_scheduler", None)):
                strategy.check_scheduler(scheduler)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator (no global RNG); got {generator!r}")
        shape = tuple(clip_shape) if isinstance(clip_shape, (tuple, list, torch.Size)) else ()
        if len(shape) != 5 or not all(
            isinstance(d, Integral) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise ValueError(f"clip_shape must be 5 positive ints (B, C, N, H, W); got {clip_shape!r}")
        self.check_clip(shape[2])
        check_int("num_clips", num_clips, 1)
        check_int("num_inference_steps", num_inference_steps, 1)
        return tuple(int(d) for d in shape)

    def _initial_noise(self, i, previous, shape, generator, dtype, device) -> torch.Tensor:
        """zT[i]: fresh N(0, I) noise transformed by the initializers in list order."""
        noise = torch.randn(shape, generator=generator, dtype=dtype, device=generator.device).to(device)
        context = NoiseContext(
            clip_index=i, prompt_frames=self.prompt_frames, previous_noise=previous, generator=generator
        )
        for initializer in self.initializers:
            noise = initializer(noise, context)
        return noise


class _ClipRun:
    """The denoising loop of one clip, with what is fixed across clips precomputed once."""

    def __init__(self, sampler, denoiser, scheduler, num_inference_steps, generator, spec) -> None:
        self.sampler, self.denoiser, self.scheduler = sampler, denoiser, scheduler
        self.num_inference_steps = num_inference_steps
        self.step_kwargs = step_kwargs(scheduler, generator)
        self.spec = spec  # what the guidances record of every clip
        # Whether steps carry predict_x0: for guidances that declare `needs_x0`, where the scheduler
        # converts its output exactly (else those guidances refused the scheduler up front).
        wanted = any(getattr(g, "needs_x0", False) for g in sampler.guidances)
        self.exact_x0 = wanted and x0_conversion_problem(scheduler) is None

    def denoise(self, i, noise, previous, cond, bar) -> tuple[torch.Tensor, Recording | None]:
        """Denoise clip i from its initial noise; return its latents and what the guidances recorded."""
        scheduler, sampler = self.scheduler, self.sampler
        scheduler.set_timesteps(self.num_inference_steps, device=noise.device)  # also resets solver state
        timesteps = scheduler.timesteps
        num_frames, num_steps, spec = noise.shape[2], len(timesteps), self.spec
        record = noise.new_empty((spec.steps, *noise.shape[:2], len(spec.frames), *noise.shape[3:]))
        frames = torch.tensor(spec.frames, dtype=torch.long, device=noise.device)
        latents = noise * scheduler.init_noise_sigma
        # abar_t of every step, read once per clip (a host copy of the timesteps, no sync per step)
        abars = [alpha_bar(scheduler, t) for t in timesteps.cpu()] if self.exact_x0 else None
        for s, t in enumerate(timesteps):
            abar = abars[s] if abars else None
            predict_x0 = self._x0_closure(t, abar, cond, i, s) if abars else None
            context = StepContext(i, s, num_steps, t, sampler.prompt_frames, num_frames, previous,
                                  predict_x0=predict_x0, alpha_bar=abar)  # fmt: skip
            for guidance in sampler.guidances:
                latents = guidance(latents, context)
            if s < spec.steps:
                record[s] = latents.index_select(2, frames)
            model_input = scheduler.scale_model_input(latents, t)
            output = self._call_denoiser(model_input, t, cond, i, s)
            latents = scheduler.step(output, t, latents, **self.step_kwargs).prev_sample
            bar.update(1)
        if not (spec.steps or spec.final):
            return latents, None
        final = latents.index_select(2, frames) if spec.final else None
        return latents, Recording(frames=spec.frames, latents=record, final=final)

    def _x0_closure(self, t, abar, cond, i, s) -> Callable[[torch.Tensor], torch.Tensor]:
        """z -> the denoiser's x0 estimate at step s: one more denoiser call per use, differentiable where
        the denoiser is."""

        def predict_x0(latents: torch.Tensor) -> torch.Tensor:
            output = self._call_denoiser(self.scheduler.scale_model_input(latents, t), t, cond, i, s)
            if latents.requires_grad and not output.requires_grad:  # else x0's gradient would be partial
                raise ValueError(
                    "a guidance differentiates the x0 estimate, but the denoiser's output carries no "
                    f"gradient (does it run under torch.no_grad or detach?) at clip {i}, step {s}"
                )
            return x0_from_output(self.scheduler, output, latents, abar)

        return predict_x0

    def _call_denoiser(self, model_input, t, cond, i, s) -> torch.Tensor:
        output = self.denoiser(model_input, t, **cond)
        if not isinstance(output, torch.Tensor) or output.shape != model_input.shape:
            got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(
                f"denoiser must return a tensor of the latents' shape {tuple(model_input.shape)}; "
                f"got {got} (clip {i}, step {s})"
            )
        # NaN/inf anywhere make the sum non-finite; one cheap pass, accumulated in float32 so that large
        # float16 outputs do not overflow into a false alarm.
        if not torch.isfinite(output.sum(dtype=torch.float32)):
            raise ValueError(f"denoiser returned non-finite values (NaN or inf) at clip {i}, step {s}")
        return output
