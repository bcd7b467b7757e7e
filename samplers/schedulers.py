"""What the sampler needs of a diffusers scheduler, and where latent guidance is exact with it.

Any single-call diffusers scheduler works (`order == 1`: DDIM, DDPM, DPM-Solver++ multistep, Euler,
Euler ancestral, UniPC, ...). Schedulers with two denoiser calls per step (Heun, KDPM2) are refused,
because a step index would no longer name one denoiser call.

Latent guidance (DSG and peers) replaces frames of z_s before the denoiser call. With a scheduler whose
state between steps is the latent alone (DDIM, DDPM, Euler) the replacement is exact: the replaced
frames continue from exactly the previous clip's latents. A multistep solver (DPM-Solver++ with
solver_order >= 2, UniPC, DEIS, PNDM, LMS) also extrapolates from model outputs of earlier steps, which
were computed on latents the guidance has since overwritten; the result is well defined but is not the
paper's DDIM formula, so the sampler warns (`GuidanceExactnessWarning`).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch

_REQUIRED = ("set_timesteps", "scale_model_input", "step")
_HISTORY_ATTRIBUTES = ("model_outputs", "ets", "derivatives", "prev_derivative")


class GuidanceExactnessWarning(UserWarning):
    """Latent guidance is used with a scheduler for which it is not the paper's exact formula."""


def check_scheduler(scheduler: Any) -> None:
    """Raise TypeError/ValueError (before any work) unless `scheduler` is a usable single-call scheduler."""
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
            "allowed: schedulers with order 1 (DDIM, DDPM, DPM-Solver++ multistep, Euler, UniPC, ...)"
        )


def keeps_solver_history(scheduler: Any) -> bool:
    """True when the scheduler's next step depends on model outputs of earlier steps.

    Where the scheduler states its solver order (DPM-Solver, UniPC, DEIS), order 1 keeps none (first-order
    DPM-Solver is DDIM); otherwise the attributes in which multistep schedulers keep their history tell.
    """
    order = getattr(getattr(scheduler, "config", None), "solver_order", None)
    if order is not None:
        return order > 1
    return any(hasattr(scheduler, name) for name in _HISTORY_ATTRIBUTES)


def warn_if_guidance_inexact(scheduler: Any, guidance_names: list[str]) -> None:
    """Warn once per sample() call when guidance meets a multistep solver."""
    if guidance_names and keeps_solver_history(scheduler):
        warnings.warn(
            f"{', '.join(guidance_names)} with {type(scheduler).__name__}: the solver extrapolates from "
            "model outputs of earlier steps, computed before the guidance replaced those frames; the "
            "guided frames follow the previous clip exactly only with single-step schedulers "
            "(DDIM, DDPM, Euler). See samplers/schedulers.py.",
            GuidanceExactnessWarning,
            stacklevel=3,
        )


def step_kwargs(scheduler: Any, generator: torch.Generator) -> dict[str, Any]:
    """Keyword arguments for `scheduler.step`: the generator, where the scheduler draws noise."""
    accepts = inspect.signature(scheduler.step).parameters
    return {"generator": generator} if "generator" in accepts else {}
