"""Noise initializers: how the initial noise zT[i] of clip i is made from zT[i-1] (docs/DESIGN.md §2).

Each initializer maps the candidate unit-variance noise of clip i to a new candidate; the sampler
draws the first candidate fresh, applies the initializers in list order and keeps the result as zT[i].
Frame j of clip i is `noise[:, :, j]`; N is the clip length and M the number of prompt frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .protocols import NoiseContext
from .validation import check_real


def reverse_frames(noise: torch.Tensor) -> torch.Tensor:
    """Frame j of the result is frame N-1-j of `noise` (B, C, N, H, W)."""
    return torch.flip(noise, dims=(2,))


def fresh_noise(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise shaped like `like`, drawn from `generator` on its device."""
    noise = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=generator.device)
    return noise.to(like.device)


@dataclass(frozen=True)
class UnitVarianceMix:
    """Mixes a kept unit-variance part with weight `kept_weight` = alpha / sqrt(1 + alpha^2) and a fresh one
    with standard deviation `fresh_std` = 1 / sqrt(1 + alpha^2): the squares sum to 1, so the result is
    unit variance. alpha = 0 keeps nothing, alpha = inf keeps everything (PNS, the PYoCo priors)."""

    alpha: float = 4.0

    def __post_init__(self) -> None:
        check_real("alpha", self.alpha, 0.0)

    @property
    def kept_weight(self) -> float:
        """alpha / sqrt(1 + alpha^2): the kept part's weight (its correlation with the result)."""
        return 1.0 if math.isinf(self.alpha) else self.alpha / math.hypot(1.0, self.alpha)

    @property
    def fresh_std(self) -> float:
        """1 / sqrt(1 + alpha^2): the standard deviation (not the variance) of the fresh part."""
        return 1.0 / math.hypot(1.0, self.alpha)


@dataclass(frozen=True)
class IndependentNoise:
    """The control: every clip starts from its own fresh noise (the candidate, unchanged)."""

    def __call__(self, noise: torch.Tensor, context: NoiseContext) -> torch.Tensor:
        return noise


@dataclass(frozen=True)
class FNR:
    """Frame-level noise reversion: zT[i, j] = zT[i-1, N-1-j] for every frame j."""

    discards_candidate = True  # clips i >= 1 never read the candidate (StrategyHooks)

    def __call__(self, noise: torch.Tensor, context: NoiseContext) -> torch.Tensor:
        if context.previous_noise is None:  # clip 0 keeps its fresh noise
            return noise
        return reverse_frames(context.previous_noise)


@dataclass(frozen=True)
class PNS(UnitVarianceMix):
    """Past-dependent noise sampling with weight `alpha` (0 = fresh noise, inf = keep the candidate).

    Frames j < M keep the candidate; frames j >= M become
    `alpha / sqrt(1 + alpha^2) * candidate[j] + eps`, eps ~ N(0, 1 / (1 + alpha^2) I), so a
    unit-variance candidate stays exactly unit variance. After FNR the candidate is the reversed previous
    noise, which is the paper's formula. Clip 0 is left unchanged.
    """

    def __call__(self, noise: torch.Tensor, context: NoiseContext) -> torch.Tensor:
        if context.previous_noise is None:
            return noise
        m = context.prompt_frames
        tail = noise[:, :, m:]
        mixed = self.kept_weight * tail + self.fresh_std * fresh_noise(tail, context.generator)
        return torch.cat([noise[:, :, :m], mixed], dim=2)
