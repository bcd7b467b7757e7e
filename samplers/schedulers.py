"""The kit's one view of a diffusers scheduler: `Schedule`.

Nothing else in the kit reads scheduler internals (`alphas_cumprod`, `sigmas`, `scale_model_input`,
`init_noise_sigma`, `step_index`): the sampler, the strategies and the analytic backbone ask a `Schedule`.
It knows three kinds (samplers.noise_level):

  vp    alphas_cumprod and init_noise_sigma 1: DDIM, DDPM, DPM-Solver, UniPC, DEIS, CogVideoX's DDIM/DPM;
  ve    alphas_cumprod and init_noise_sigma > 1: Euler, Euler ancestral, LMS (the state is x0 + sigma eps);
  flow  FlowMatchEuler (with `shift`, dynamic shifting via `mu`, `shift_terminal`, `invert_sigmas`) and
        any scheduler with `use_flow_sigmas` or prediction_type "flow_prediction" (UniPC and DPM-Solver
        as Wan ships them carry alphas_cumprod that do not describe their noise: the flag wins).

A `Schedule` sets the timesteps the way a pipeline does (a plain count, or `sigmas=` and `mu=`, then
`set_begin_index`), reads the schedule back from the scheduler after each `set_timesteps` (never
recomputing it: a shifted schedule recomputed would be shifted twice), gives the noise level of the
latents before every step, converts model outputs to x0 and says whether same-step latent replacement
(DSG, ForwardOverlap) is exact with it.

Latent replacement is exact where the scheduler's state between steps is the latent alone (DDIM, DDPM,
Euler, FlowMatchEuler). A multistep solver (DPM-Solver++ or UniPC with solver_order >= 2, DEIS, PNDM,
LMS) also extrapolates from model outputs of earlier steps, computed on latents the guidance has since
overwritten; the result is well defined but is not the paper's formula, so the sampler warns
(`GuidanceExactnessWarning`). Schedulers with several denoiser calls per step (Heun, KDPM2) are refused.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .noise_level import FLOW, NoiseLevel, x0_from_output

KINDS = ("vp", "ve", "flow")
_REQUIRED = ("set_timesteps", "step")
_HISTORY_ATTRIBUTES = ("model_outputs", "ets", "derivatives", "prev_derivative")
_PREDICTIONS = {"vp": ("epsilon", "v_prediction", "sample"), "ve": ("epsilon", "v_prediction", "sample"),
                "flow": (FLOW, "epsilon", "sample")}  # fmt: skip


class GuidanceExactnessWarning(UserWarning):
    """Latent guidance is used with a scheduler for which it is not the paper's exact formula."""


class Schedule:
    """A diffusers scheduler with the timestep arguments its pipeline passes.

    `Schedule(scheduler)` sets timesteps from the step count alone; `Schedule(scheduler, sigmas=...,
    mu=...)` passes those as LTX, HunyuanVideo and Mochi do (the count is then len(sigmas)).
    `begin_index` (default 0) is given to `set_begin_index` where the scheduler has it, so that step s is
    the s-th entry of the schedule even where timesteps repeat. `step_dtype` and `state_dtype` are the
    casts a pipeline makes around its step (e.g. Mochi steps in float32 and keeps bf16 latents).
    """

    def __init__(
        self,
        scheduler: Any,
        sigmas: Sequence[float] | None = None,
        mu: float | None = None,
        begin_index: int | None = 0,
        step_dtype: torch.dtype | None = None,
        state_dtype: torch.dtype | None = None,
    ) -> None:
        if isinstance(scheduler, Schedule):
            raise TypeError("scheduler is already a Schedule; pass its .scheduler to build another")
        missing = [name for name in _REQUIRED if not callable(getattr(scheduler, name, None))]
        if missing:
            raise TypeError(
                f"scheduler must be a diffusers-style scheduler with {', '.join(_REQUIRED)}; "
                f"{type(scheduler).__name__} lacks {', '.join(missing)}"
            )
        order = getattr(scheduler, "order", 1)
        if order != 1:
            raise ValueError(
                f"scheduler {type(scheduler).__name__} has order={order} (several denoiser calls per step); "
                "allowed: schedulers with order 1 (DDIM, DDPM, DPM-Solver++ multistep, Euler, UniPC, "
                "FlowMatchEuler, ...)"
            )
        self.scheduler = scheduler
        self.kind = scheduler_kind(scheduler)
        self.sigmas = None if sigmas is None else [float(s) for s in sigmas]
        self.mu = mu
        self.begin_index = begin_index
        # Where a pipeline casts around its step: the latents to `step_dtype` before it (Mochi: float32)
        # and the result to `state_dtype` after it (CogVideoX, Mochi: the embeddings' dtype). None: as is.
        self.step_dtype, self.state_dtype = step_dtype, state_dtype
        config = getattr(scheduler, "config", {})
        self.inverted = self.kind == "flow" and bool(getattr(config, "invert_sigmas", False))
        # FlowMatchEuler states none (its model predicts the velocity); UniPC/DPM flow state theirs
        stated = getattr(config, "prediction_type", None)
        self.prediction_type = stated or (FLOW if self.kind == "flow" else None)
        self._levels: list[NoiseLevel] | None = None
        self._takes_generator = "generator" in inspect.signature(scheduler.step).parameters

    def __repr__(self) -> str:
        pairs = (("sigmas", self.sigmas), ("mu", self.mu))
        extra = "".join(f", {k}={v!r}" for k, v in pairs if v is not None)
        return f"Schedule({type(self.scheduler).__name__}, kind={self.kind!r}{extra})"

    # -- timesteps -------------------------------------------------------------------------------------

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> Tensor:
        """Set the scheduler's timesteps (also resetting its solver state) as the pipeline does; return
        them. With explicit `sigmas` the count is theirs and `num_inference_steps` must agree."""
        scheduler = self.scheduler
        extra = {} if self.mu is None else {"mu": self.mu}
        if self.sigmas is not None:
            if num_inference_steps != len(self.sigmas):
                raise ValueError(f"num_inference_steps must be len(sigmas) = {len(self.sigmas)} with this "
                                 f"Schedule; got {num_inference_steps}")  # fmt: skip
            scheduler.set_timesteps(sigmas=self.sigmas, device=device, **extra)
        else:
            scheduler.set_timesteps(num_inference_steps, device=device, **extra)
        if self.begin_index is not None and callable(getattr(scheduler, "set_begin_index", None)):
            scheduler.set_begin_index(self.begin_index)
        self._levels = None
        return scheduler.timesteps

    @property
    def timesteps(self) -> torch.Tensor:
        return self.scheduler.timesteps

    def levels(self) -> list[NoiseLevel]:
        """The noise level of the latents before each step s = 0..T-1, read back from the scheduler."""
        if self._levels is None:
            timesteps = self.scheduler.timesteps.detach().cpu().double()
            self._levels = [self._level(s, float(t)) for s, t in enumerate(timesteps)]
        return self._levels

    def final_level(self) -> NoiseLevel:
        """The noise level of the scheduler's output after its last step: the sigma after the last where
        the scheduler keeps sigmas (flow, Euler, DPM-Solver: 0, clean), else DDIM's final_alpha_cumprod
        (1 unless set_alpha_to_one is False), else clean."""
        sigmas = getattr(self.scheduler, "sigmas", None)
        steps = len(self.scheduler.timesteps)
        if sigmas is not None and len(sigmas) > steps:
            return self._level(steps, math.nan)
        final = getattr(self.scheduler, "final_alpha_cumprod", None)
        return NoiseLevel.vp(1.0 if final is None else float(final))

    def _level(self, step: int, timestep: float) -> NoiseLevel:
        sigmas = getattr(self.scheduler, "sigmas", None)
        if self.kind == "flow":
            stored = float(sigmas[step])
            return NoiseLevel.flow(1.0 - stored if self.inverted else stored)
        if self.kind == "ve":
            return NoiseLevel.ve(float(sigmas[step]))
        if sigmas is not None:  # DPM-Solver, UniPC, DEIS step with their own (VE) sigmas, respaced or not
            sigma = float(sigmas[step])
            return NoiseLevel.vp(1.0 / (1.0 + sigma * sigma))
        return NoiseLevel.vp(float(self.scheduler.alphas_cumprod[int(timestep)].double()))

    def level_at(self, timestep: torch.Tensor | float) -> NoiseLevel:
        """The latents' noise level at `timestep`: the step the scheduler is on when its timestep is
        `timestep` (timesteps can repeat), else the first step with it, else (a timestep off the schedule)
        VP alphas_cumprod interpolated in sigma, or flow sigma = t / num_train_timesteps."""
        t = float(timestep)
        timesteps = getattr(self.scheduler, "timesteps", None)
        if timesteps is not None and getattr(self.scheduler, "num_inference_steps", None) is not None:
            timesteps = torch.as_tensor(timesteps).detach().cpu().double()
            index = getattr(self.scheduler, "step_index", None)
            if index is None or index >= len(timesteps) or float(timesteps[index]) != t:
                match = (timesteps == t).nonzero()
                index = int(match[0, 0]) if len(match) else None
            if index is not None:
                return self._level(index, t)
        return self._off_schedule_level(t)

    def _off_schedule_level(self, t: float) -> NoiseLevel:
        if self.kind == "flow":
            sigma = t / self.scheduler.config.num_train_timesteps
            return NoiseLevel.flow(1.0 - sigma if self.inverted else sigma)
        alphas_cumprod = np.asarray(self.scheduler.alphas_cumprod, dtype=np.float64)
        with np.errstate(divide="ignore"):  # abar = 0 (zero terminal SNR) is sigma = inf
            train_sigmas = np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)
        sigma = float(np.interp(t, np.arange(len(train_sigmas)), train_sigmas))
        level = NoiseLevel.vp(1.0 / (1.0 + sigma * sigma)) if math.isfinite(sigma) else NoiseLevel.vp(0.0)
        return NoiseLevel.ve(sigma) if self.kind == "ve" else level

    def model_level(self, level: NoiseLevel) -> NoiseLevel:
        """The noise level of what the model sees: `scale_model_input` turns a VE state into VP."""
        return NoiseLevel.vp(level.alpha_bar) if self.kind == "ve" else level

    # -- one step --------------------------------------------------------------------------------------

    @property
    def init_noise_sigma(self) -> float:
        return float(getattr(self.scheduler, "init_noise_sigma", 1.0))

    def model_input(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """`scale_model_input` where the scheduler has one (flow schedulers do not scale)."""
        scale = getattr(self.scheduler, "scale_model_input", None)
        return latents if scale is None else scale(latents, timestep)

    def step(self, output: torch.Tensor, timestep: torch.Tensor, latents: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:  # fmt: skip
        """The scheduler's next latents (its generator where it draws noise)."""
        kwargs = {"generator": generator} if self._takes_generator else {}
        if self.step_dtype is not None:
            latents = latents.to(self.step_dtype)
        latents = self.scheduler.step(output, timestep, latents, **kwargs).prev_sample
        return latents if self.state_dtype is None else latents.to(self.state_dtype)

    # -- what is exact ---------------------------------------------------------------------------------

    def x0(self, output: torch.Tensor, latents: torch.Tensor, level: NoiseLevel) -> torch.Tensor:
        """The model output at `level` as an x0 estimate, for the latents z (before model_input)."""
        return x0_from_output(output, latents, level, self.prediction_type, self.inverted)

    def x0_problem(self) -> str | None:
        """Why the model output cannot be turned into an exact x0 estimate; None where it can."""
        name = type(self.scheduler).__name__
        allowed = _PREDICTIONS[self.kind]
        if self.prediction_type not in allowed:
            return f"{name} ({self.kind}) has prediction_type={self.prediction_type!r}; allowed: {allowed}"
        return None

    @property
    def keeps_solver_history(self) -> bool:
        """True when the next step depends on model outputs of earlier steps (then latent replacement is
        not exact). Where the scheduler states its solver order (DPM-Solver, UniPC, DEIS), order 1 keeps
        none; otherwise the attributes in which multistep schedulers keep their history tell."""
        order = getattr(getattr(self.scheduler, "config", None), "solver_order", None)
        if order is not None:
            return order > 1
        return any(hasattr(self.scheduler, name) for name in _HISTORY_ATTRIBUTES)

    @property
    def replacement_exact(self) -> bool:
        """Whether replacing frames of z_s before a step (DSG, ForwardOverlap) is exactly the formula."""
        return not self.keeps_solver_history


def scheduler_kind(scheduler: Any) -> str:
    """'vp', 've' or 'flow' (module docstring); ValueError where it cannot be determined."""
    config = getattr(scheduler, "config", {})
    names = [cls.__name__ for cls in type(scheduler).__mro__]
    if (
        any("FlowMatch" in name for name in names)
        or getattr(config, "use_flow_sigmas", False)
        or getattr(config, "prediction_type", None) == FLOW
    ):
        return "flow"
    sigma = getattr(scheduler, "init_noise_sigma", None)
    if getattr(scheduler, "alphas_cumprod", None) is not None and sigma is not None:
        return "vp" if float(sigma) == 1.0 else "ve"
    raise ValueError(
        f"scheduler kind of {type(scheduler).__name__} cannot be determined: allowed are VP schedulers "
        "(alphas_cumprod, init_noise_sigma 1: DDIM, DDPM, DPM-Solver, UniPC), VE-state schedulers "
        "(alphas_cumprod, init_noise_sigma > 1: Euler, LMS) and flow schedulers (FlowMatchEuler, or "
        "use_flow_sigmas / prediction_type='flow_prediction')"
    )


def as_schedule(scheduler: Any) -> Schedule:
    """`scheduler` if it is a Schedule, else `Schedule(scheduler)` (timesteps from the count); TypeError
    or ValueError, before any work, where it is not usable."""
    return scheduler if isinstance(scheduler, Schedule) else Schedule(scheduler)


def x0_conversion_problem(scheduler: Any) -> str | None:
    """Why `scheduler`'s model output has no exact x0 estimate; None where it has (Schedule.x0_problem)."""
    return as_schedule(scheduler).x0_problem()


def warn_if_guidance_inexact(schedule: Schedule, guidance_names: list[str]) -> None:
    """Warn once per sample() call when guidance meets a multistep solver."""
    if guidance_names and not schedule.replacement_exact:
        warnings.warn(
            f"{', '.join(guidance_names)} with {type(schedule.scheduler).__name__}: the solver extrapolates "
            "from model outputs of earlier steps, computed before the guidance replaced those frames; the "
            "guided frames follow the previous clip exactly only with single-step schedulers "
            "(DDIM, DDPM, Euler, FlowMatchEuler). See samplers/schedulers.py.",
            GuidanceExactnessWarning,
            stacklevel=3,
        )
