"""The noise level of latents at a step, for variance-preserving and flow-matching schedules alike.

Every schedule the kit drives writes the latents of a step as z = a x0 + s eps (x0 the clean latents,
eps unit Gaussian noise):

  VP (DDIM, DDPM, DPM-Solver, UniPC, CogVideoX)   a = sqrt(abar),  s = sqrt(1 - abar)
  VE state (Euler, LMS: sigma-parameterised)      a = 1,           s = sigma
  flow (FlowMatchEuler, UniPC/DPM flow sigmas)    a = 1 - sigma,   s = sigma

`NoiseLevel` holds (a, s) and two derived numbers every consumer wants: the VP-equivalent
abar = a^2 / (a^2 + s^2) and the scale r = sqrt(a^2 + s^2), so that z = r (sqrt(abar) x0 + sqrt(1-abar) eps).
For VP levels r is exactly 1 and abar is what the scheduler steps with (its alphas_cumprod entry, or
1 / (1 + sigma^2) from the sigmas DPM-Solver and UniPC keep), so formulas written for VP
(reconstruction guidance's step size) keep their bits.

`x0_from_output` turns a model output into the x0 estimate for every prediction type: epsilon,
v_prediction (v on the VP-scaled model input), sample and flow velocity (v = eps - x0; with inverted
sigmas, as Mochi stores them, the model predicts x0 - eps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample", "flow_prediction")
FLOW = "flow_prediction"


@dataclass(frozen=True)
class NoiseLevel:
    """z = signal * x0 + noise * eps. Build with `vp`, `ve` or `flow`."""

    signal: float  # a
    noise: float  # s
    alpha_bar: float  # a^2 / (a^2 + s^2): the VP-equivalent abar
    scale: float  # r = sqrt(a^2 + s^2): z / r is a VP latent (what scale_model_input feeds a VP model)

    @classmethod
    def vp(cls, alpha_bar: float) -> NoiseLevel:
        """z = sqrt(abar) x0 + sqrt(1 - abar) eps."""
        return cls(math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar), alpha_bar, 1.0)

    @classmethod
    def ve(cls, sigma: float) -> NoiseLevel:
        """z = x0 + sigma eps (Euler's state; its model sees z / sqrt(1 + sigma^2))."""
        return cls(1.0, sigma, 1.0 / (1.0 + sigma * sigma), math.sqrt(1.0 + sigma * sigma))

    @classmethod
    def flow(cls, sigma: float) -> NoiseLevel:
        """z = (1 - sigma) x0 + sigma eps (rectified flow)."""
        a = 1.0 - sigma
        r2 = a * a + sigma * sigma
        return cls(a, sigma, a * a / r2 if r2 > 0 else 0.0, math.sqrt(r2))

    @property
    def sigma(self) -> float:
        """s / a: the VE noise level (inf where a = 0)."""
        return self.noise / self.signal if self.signal > 0 else math.inf


def x0_from_output(
    output: torch.Tensor,
    latents: torch.Tensor,
    level: NoiseLevel | FrameLevels,
    prediction_type: str,
    inverted: bool = False,
) -> torch.Tensor:
    """The x0 estimate from a model output, given the latents z (the scheduler's state, before
    `scale_model_input`) and their `level`.

    epsilon: (z - s eps) / a. v_prediction (v = a~ eps - s~ x0 on the model input z / r, a~ = a / r,
    s~ = s / r): a z / r^2 - s v / r. sample: the output. flow_prediction (v = eps - x0):
    z - s v, or z + s v when `inverted` (the model predicts x0 - eps).
    """
    a, s, r = level.signal, level.noise, level.scale
    if prediction_type == "epsilon":
        return (latents - s * output) / a
    if prediction_type == "v_prediction":
        if isinstance(r, float) and r == 1.0:  # VP: the familiar form, bit for bit
            return a * latents - s * output
        return (a / (r * r)) * latents - (s / r) * output
    if prediction_type == "sample":
        return output
    if prediction_type == FLOW:
        return latents + s * output if inverted else latents - s * output
    raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}; got {prediction_type!r}")


def output_from_x0(
    x0: torch.Tensor,
    latents: torch.Tensor,
    level: NoiseLevel | FrameLevels,
    prediction_type: str,
    inverted: bool = False,
) -> torch.Tensor:
    """The model output of `prediction_type` whose x0 estimate is `x0` (the inverse of x0_from_output):
    what an exact denoiser returns. Needs s > 0 except for `sample`."""
    a, s, r = level.signal, level.noise, level.scale
    if prediction_type == "sample":
        return x0
    eps = (latents - a * x0) / s
    if prediction_type == "epsilon":
        return eps
    if prediction_type == "v_prediction":
        return (a / r) * eps - (s / r) * x0
    if prediction_type == FLOW:
        return x0 - eps if inverted else eps - x0
    raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}; got {prediction_type!r}")


@dataclass(frozen=True)
class FrameLevels:
    """One noise level per frame: `signal`, `noise` and `scale` as tensors (1, 1, F, 1, 1) that broadcast
    along the frame axis of (B, C, F, H, W) latents, so that `output_from_x0` and `x0_from_output` apply
    frame by frame (a backbone that takes one timestep per frame: `frame_timesteps`)."""

    signal: torch.Tensor
    noise: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def of(cls, levels: list[NoiseLevel], like: torch.Tensor) -> FrameLevels:
        """The levels of frames 0..F-1, as tensors of `like`'s dtype and device."""

        def column(name: str) -> torch.Tensor:
            values = torch.tensor([getattr(level, name) for level in levels], dtype=torch.float64)
            return values.to(like.device, like.dtype).reshape(1, 1, -1, 1, 1)

        return cls(column("signal"), column("noise"), column("scale"))
