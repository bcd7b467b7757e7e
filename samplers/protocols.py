"""The three contracts between the sampler, the strategies and a backbone.

`samplers` never imports a model: a backbone is anything that satisfies `VideoDenoiser`, a strategy is
anything that satisfies `NoiseInitializer` or `LatentGuidance`. The contexts handed to strategies are
plain frozen dataclasses, so a strategy is a pure function of (tensor, context).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from .noise_level import NoiseLevel


@runtime_checkable
class VideoDenoiser(Protocol):
    """`denoiser(latents, timestep, **cond) -> Tensor`.

    `latents` is `(B, C, F, H, W)` as scaled by the scheduler's `scale_model_input` (flow schedulers do
    not scale); the result has the same shape and is the model output in the scheduler's prediction type
    (epsilon, v_prediction, sample, or the flow velocity of flow-matching schedulers). Adapters hide
    everything model-specific: output unwrapping, layout, dtype, timestep broadcasting and
    classifier-free guidance (batched as the model's own pipeline batches it). A denoiser that also takes
    one timestep per frame, `(F,)` or `(B, F)`, declares `frame_timesteps = True` (`takes_frame_timesteps`);
    samplers that move frames at different noise levels refuse the others (`check_frame_timesteps`).
    """

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor, **cond: Any) -> torch.Tensor: ...


def takes_frame_timesteps(denoiser: Any) -> bool:
    """Whether `denoiser` declares (`frame_timesteps = True`) that it takes one timestep per frame,
    `(F,)` or `(B, F)`, each frame of the latents at its own noise level (the analytic prior does)."""
    return bool(getattr(denoiser, "frame_timesteps", False))


def check_frame_timesteps(denoiser: Any, who: str) -> None:
    """TypeError, before any work, unless `denoiser` takes one timestep per frame; `who` needs it."""
    if not takes_frame_timesteps(denoiser):
        raise TypeError(
            f"{who} needs a denoiser that takes one timestep per frame (declared by frame_timesteps = True, "
            f"as the analytic prior's ExactDenoiser does); {type(denoiser).__name__} does not declare it"
        )


@dataclass(frozen=True)
class NoiseContext:
    """What a `NoiseInitializer` may read when it shapes the initial noise of clip `clip_index`."""

    clip_index: int  # i = 0..K-1
    prompt_frames: int  # M: frames of clip i that continue clip i-1
    previous_noise: torch.Tensor | None  # zT[i-1], unit variance, (B, C, N, H, W); None for clip 0
    generator: torch.Generator  # the only source of fresh randomness


class StrategyHooks:
    """The optional hooks of a strategy (initializer or guidance), in one place: the sampler reads each
    one through `hook(strategy, name)`, which falls back to the default here, so a strategy may subclass
    this class or simply define the few it needs (as an attribute, a property or a method).
    """

    # Clips i >= 1 start with M prompt frames that repeat the previous clip (forward copies), so the
    # sampler drops them from the output when `drop_prompt_frames=None` (ForwardOverlap, recon).
    duplicates_prompt_frames: bool = False
    # Steps must carry `StepContext.predict_x0` and `alpha_bar` (a guidance differentiating x0).
    needs_x0: bool = False
    # An initializer that, for clips i >= 1, never reads the candidate it is given (it rebuilds the noise
    # from the previous clip's: FNR, FreeNoiseRescheduling). When the first initializer says so, the sampler
    # draws no fresh candidate for those clips: it would only be thrown away (and its draw cost memory
    # bandwidth).
    discards_candidate: bool = False

    def check_clip(self, num_frames: int, prompt_frames: int) -> None:
        """Raise ValueError unless clips of N = `num_frames` with M = `prompt_frames` suit the strategy;
        called before any work (and by callers before loading a model)."""

    def check_scheduler(self, scheduler: Any) -> None:
        """Raise ValueError if the strategy cannot be exact with `scheduler`; called before any work, with
        the sampler's `samplers.Schedule` (its kind, noise levels, `x0_problem()`; the diffusers object
        is its `.scheduler`)."""


_DEFAULT_HOOKS = StrategyHooks()


def hook(strategy: Any, name: str) -> Any:
    """`strategy`'s optional hook `name` (a StrategyHooks attribute or method), or the default."""
    if not hasattr(StrategyHooks, name):
        raise AttributeError(f"{name!r} is not a strategy hook; the hooks are StrategyHooks' attributes")
    return getattr(strategy, name, getattr(_DEFAULT_HOOKS, name))


@runtime_checkable
class NoiseInitializer(Protocol):
    """Turns the candidate unit-variance initial noise of a clip into the new candidate.

    Initializers run in list order; the sampler draws the first candidate as fresh N(0, I) noise (unless
    the first initializer `discards_candidate`, StrategyHooks) and multiplies the final one by the
    scheduler's `init_noise_sigma`. The result must be a tensor of the candidate's shape, dtype and device
    (the sampler checks, naming the initializer). Optional hooks: StrategyHooks.
    """

    def __call__(self, noise: torch.Tensor, context: NoiseContext) -> torch.Tensor: ...


@dataclass(frozen=True)
class RecordSpec:
    """What of the current clip's trajectory a guidance needs when the next clip is sampled."""

    frames: tuple[int, ...]  # frame indices of the clip to keep, in increasing order
    steps: int  # keep the latents of steps s = 0..steps-1 (before each denoiser call)
    final: bool = False  # also keep those frames of the clip's final (denoised) latents


def last_frames(num_frames: int, count: int) -> tuple[int, ...]:
    """The indices N-count..N-1 of a clip's last `count` frames, in forward order."""
    return tuple(range(num_frames - count, num_frames))


@dataclass(frozen=True)
class Recording:
    """The previous clip's recorded latents: `latents[s, :, :, k]` is frame `frames[k]` at step s."""

    frames: tuple[int, ...]
    latents: torch.Tensor  # (steps, B, C, len(frames), H, W)
    final: torch.Tensor | None = None  # (B, C, len(frames), H, W) after the last step, if some spec asked

    def at(self, step: int, frames: tuple[int, ...]) -> torch.Tensor:
        """Latents `(B, C, len(frames), H, W)` of the given frames before the denoiser call of `step`."""
        index = [self.frames.index(f) for f in frames]
        return self.latents[step][:, :, index]

    def at_end(self, frames: tuple[int, ...]) -> torch.Tensor:
        """The final latents `(B, C, len(frames), H, W)` of the given frames (RecordSpec.final)."""
        if self.final is None:
            raise ValueError("the recording holds no final latents; ask for them with RecordSpec(final=True)")
        return self.final[:, :, [self.frames.index(f) for f in frames]]


@dataclass(frozen=True)
class StepContext:
    """What a `LatentGuidance` may read before the denoiser call of step `step_index` of a clip."""

    clip_index: int  # i
    step_index: int  # s = 0..T-1, s = 0 the noisiest
    num_steps: int  # T
    timestep: torch.Tensor  # the scheduler's timestep of step s
    prompt_frames: int  # M
    num_frames: int  # N
    previous: Recording | None  # the previous clip's recording (None for clip 0)
    # latents shaped like z_s -> the denoiser's x0 estimate at this step: one more denoiser call,
    # differentiable where the denoiser is (ValueError if the latents require grad and its output does not);
    # None where the scheduler cannot convert its output to x0 exactly (schedulers.x0_conversion_problem)
    predict_x0: Callable[[torch.Tensor], torch.Tensor] | None = None
    alpha_bar: float | None = None  # noise_level.alpha_bar (the VP-equivalent abar of z_s) with predict_x0
    # z_s = signal x0 + noise eps: VP, VE-state and flow schedules alike (samplers.noise_level)
    noise_level: NoiseLevel | None = None


@runtime_checkable
class LatentGuidance(Protocol):
    """Intervenes on the latents `z_s` of a clip before each denoiser call.

    `record_spec` declares what of the current clip must be kept for the next one; the sampler records
    the union over all guidances and nothing else (memory O(M * T), not O(N * T)). `__call__` returns
    the latents, unchanged or edited in place, or a new tensor of their shape, dtype and device (the
    sampler checks). The sampler passes latents that it owns and that nothing else holds, so an in-place
    edit of a few frames spares a copy of the whole clip; a caller of a guidance passes a copy where it
    needs its own tensor kept.

    Optional hooks the sampler honours when a strategy (guidance or initializer) has them, all before
    any work: `check_scheduler(scheduler)` and `check_clip(num_frames, prompt_frames)` (raise ValueError
    where the strategy cannot work with that scheduler or clip length), `duplicates_prompt_frames` (True:
    the clip's first M frames repeat the previous clip, so the sampler drops them from the output unless
    told otherwise) and `needs_x0` (True: the steps' contexts must carry `predict_x0` and `alpha_bar`).
    """

    def record_spec(self, num_frames: int, prompt_frames: int, num_steps: int) -> RecordSpec: ...

    def __call__(self, latents: torch.Tensor, context: StepContext) -> torch.Tensor: ...
