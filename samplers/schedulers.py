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

Guidances that differentiate through the denoiser (reconstruction guidance) need the model output as an
exact x0 estimate: `x0_conversion_problem` says where that holds (variance-preserving schedulers whose
noise level at a step is alphas_cumprod at its integer timestep) and `x0_from_output` converts.
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


# ----------------------------------------------------------------------------------------------------
# Exact x0 estimates (for guidances that differentiate through the denoiser, e.g. reconstruction guidance)

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")  # what a VP model output may be
# Config flags under which a scheduler's noise level at a step is no longer alphas_cumprod[timestep]
# (timesteps rounded from a respaced sigma schedule, or shifted at run time).
_RESPACING_FLAGS = (
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "use_lu_lambdas",
    "use_flow_sigmas",
    "use_dynamic_shifting",
)


def x0_conversion_problem(scheduler: Any) -> str | None:
    """Why the model output cannot be turned into an exact x0 estimate with `scheduler`; None if it can.

    Exact means variance preserving: z_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps with
    abar_t = alphas_cumprod[t] at the step's integer timestep and unscaled model inputs
    (init_noise_sigma == 1): DDIM, DDPM, DPM-Solver, UniPC, DEIS. Sigma-parameterised schedulers
    (Euler, LMS, ...) and respaced sigma schedules (Karras, ...) are not.
    """
    name = type(scheduler).__name__
    if getattr(scheduler, "alphas_cumprod", None) is None:
        return f"{name} has no alphas_cumprod"
    sigma = getattr(scheduler, "init_noise_sigma", None)
    if sigma is None or float(sigma) != 1.0:
        return f"{name} has init_noise_sigma={sigma!r}, not 1 (a sigma-parameterised, non-VP scheduler)"
    config = getattr(scheduler, "config", {})
    prediction_type = getattr(config, "prediction_type", None)
    if prediction_type not in PREDICTION_TYPES:
        return f"{name} has prediction_type={prediction_type!r}; allowed: {PREDICTION_TYPES}"
    flags = [flag for flag in _RESPACING_FLAGS if getattr(config, flag, False)]
    if flags:
        return f"{name} has {', '.join(f'{flag}=True' for flag in flags)} (noise levels off alphas_cumprod)"
    return None


def alpha_bar(scheduler: Any, timestep: torch.Tensor) -> float:
    """abar_t = alphas_cumprod[t] at the integer timestep `t` of a VP scheduler (float64 precision)."""
    t = float(timestep)
    if t != int(t):
        raise ValueError(f"timestep must be an integer for an exact x0 estimate; got {t}")
    return float(scheduler.alphas_cumprod[int(t)].double())


def x0_from_output(scheduler: Any, output: torch.Tensor, latents: torch.Tensor, abar: float) -> torch.Tensor:
    """x0 = (z - sqrt(1-abar) eps) / sqrt(abar), sqrt(abar) z - sqrt(1-abar) v, or the sample itself, with
    abar = `alpha_bar(scheduler, t)` of the step."""
    a, b = abar**0.5, (1.0 - abar) ** 0.5
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return (latents - b * output) / a
    if prediction_type == "v_prediction":
        return a * latents - b * output
    return output
