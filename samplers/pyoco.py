"""PYoCo noise priors (Ge et al. 2023) for the first clip, with exactly unit-variance frames.

Both priors correlate the N frames of zT[0] and leave later clips' candidates alone, so they compose
with FNR, PNS or FreeNoiseRescheduling (which then carry the correlation forward). With a = alpha >= 0:

- mixed:       eps_j = sqrt(a^2 / (1+a^2)) * shared + sqrt(1 / (1+a^2)) * ind_j,
               frames correlate by a^2 / (1+a^2) at every lag;
- progressive: eps_0 = ind_0,  eps_j = a / sqrt(1+a^2) * eps_{j-1} + 1 / sqrt(1+a^2) * ind_j,
               an AR(1) process whose frames correlate by rho^|j-k|, rho = a / sqrt(1+a^2).

The weights are standard deviations whose squares sum to 1. The official VidRD code uses
a^2/(1+a^2) (mixed) and 1/(1+a^2) (progressive) as standard deviations where they are variances, so
its frames have variance below 1; tests/test_pyoco.py catches exactly that. `ind_j` is the candidate's
frame j; the shared noise is drawn from the context's generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .noise import UnitVarianceMix, fresh_noise
from .protocols import NoiseContext


@dataclass(frozen=True)
class PYoCoMixed(UnitVarianceMix):
    """Clip 0's frames share one noise with weight `kept_weight` = sqrt(a^2 / (1+a^2)), each frame's own
    part has standard deviation `fresh_std` = sqrt(1 / (1+a^2)); a = 0 is i.i.d. noise."""

    alpha: float = 1.0

    def __call__(self, noise: torch.Tensor, context: NoiseContext) -> torch.Tensor:
        if context.previous_noise is not None:  # later clips keep their candidate
            return noise
        shared = fresh_noise(noise[:, :, :1], context.generator)  # (B, C, 1, H, W), broadcast over frames
        return self.kept_weight * shared + self.fresh_std * noise


@dataclass(frozen=True)
class PYoCoProgressive(UnitVarianceMix):
    """Clip 0's frames form an AR(1) chain: eps_j = `kept_weight` * eps_{j-1} + `fresh_std` * ind_j, so
    neighbours correlate by rho = a / sqrt(1+a^2)."""

    alpha: float = 1.0

    def __call__(self, noise: torch.Tensor, context: NoiseContext) -> torch.Tensor:
        if context.previous_noise is not None:
            return noise
        frames = [noise[:, :, 0]]  # eps_0 = ind_0
        for j in range(1, noise.shape[2]):
            frames.append(self.kept_weight * frames[-1] + self.fresh_std * noise[:, :, j])
        return torch.stack(frames, dim=2)
