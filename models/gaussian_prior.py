"""The analytic backbone: a stationary Gaussian process over time with an exact denoiser (docs/DESIGN.md §4).

Every latent element (c, h, w) of a video is an independent zero-mean, unit-variance Gaussian process
over frames with kernel k(tau) = exp(-tau^2 / (2 l^2)). For a clip of F frames with covariance
K = U diag(lam) U^T and a noisy latent x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, the exact posterior
mean is E[x0 | x_t] = sqrt(abar) K (abar K + (1 - abar) I)^-1 x_t
                    = U diag(sqrt(abar) lam / (abar lam + 1 - abar)) U^T x_t.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from samplers.schedulers import PREDICTION_TYPES
from samplers.validation import check_generator, check_int, check_real


@dataclass(frozen=True)
class GaussianVideoPrior:
    num_frames: int = 16  # N: the clip length of `sample`
    frame_shape: tuple[int, int, int] = (4, 8, 8)  # (C, H, W) of one latent frame
    lengthscale: float = 3.0  # l, in frames

    def __post_init__(self) -> None:
        check_int("num_frames", self.num_frames, 1)
        check_real("lengthscale", self.lengthscale, 1e-6)
        if len(self.frame_shape) != 3 or any(not isinstance(d, int) or d < 1 for d in self.frame_shape):
            raise ValueError(f"frame_shape must be 3 positive ints (C, H, W); got {self.frame_shape!r}")

    def autocorrelation(self, lags: Any) -> np.ndarray:
        """k(tau) = exp(-tau^2 / (2 l^2)) at the given lags (frames), float64."""
        tau = np.asarray(lags, dtype=np.float64)
        return np.exp(-(tau**2) / (2.0 * self.lengthscale**2))

    def covariance(self, num_frames: int) -> np.ndarray:
        """K[f, g] = k(f - g): the (F, F) temporal covariance of F consecutive frames."""
        f = np.arange(num_frames)
        return self.autocorrelation(f[:, None] - f[None, :])

    def eigh(self, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """(lam, U) with K = U diag(lam) U^T; tiny negative round-off eigenvalues clipped to 0."""
        return _eigh(self.lengthscale, num_frames)

    def sample_long(
        self,
        num_frames: int,
        batch: int = 1,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """True videos of any length from the process: (batch, C, num_frames, H, W)."""
        check_int("num_frames", num_frames, 1)
        check_int("batch", batch, 1)
        check_generator(generator)
        lam, u = self.eigh(num_frames)
        root = torch.from_numpy(u * np.sqrt(lam))  # K^(1/2) up to rotation: root @ root.T = K
        z = torch.randn(
            (batch, *self._layout(num_frames)),
            generator=generator,
            dtype=torch.float64,
            device=generator.device,
        ).cpu()
        x = torch.einsum("fg,bcghw->bcfhw", root, z)
        return x.to(dtype)

    def sample(
        self, batch: int = 1, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """True clips of `num_frames` frames."""
        return self.sample_long(self.num_frames, batch, generator, dtype)

    def denoiser(self, scheduler: Any) -> ExactDenoiser:
        """The exact `VideoDenoiser` for `scheduler` (its noise levels and `prediction_type`)."""
        return ExactDenoiser(self, scheduler)

    def _layout(self, num_frames: int) -> tuple[int, int, int, int]:
        c, h, w = self.frame_shape
        return (c, num_frames, h, w)


@lru_cache(maxsize=64)
def _eigh(lengthscale: float, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    f = np.arange(num_frames)
    k = np.exp(-((f[:, None] - f[None, :]) ** 2) / (2.0 * lengthscale**2))
    lam, u = np.linalg.eigh(k)
    return np.clip(lam, 0.0, None), u




def _warn_if_clipping(scheduler: Any) -> None:
    """The prior's data have unit variance, far outside the [-1, 1] a clipping scheduler enforces."""
    config = scheduler.config
    clip, threshold = getattr(config, "clip_sample", False), getattr(config, "thresholding", False)
    if clip or threshold:
        warnings.warn(
            f"{type(scheduler).__name__} clips or thresholds x0 (clip_sample={clip}, "
            f"thresholding={threshold}); the Gaussian prior's unit-variance "
            "samples will be distorted. Build the scheduler with clip_sample=False, thresholding=False.",
            UserWarning,
            stacklevel=3,
        )


class ExactDenoiser:
    """E[x0 | x_t] of a `GaussianVideoPrior`, returned in the scheduler's prediction type."""

    def __init__(self, prior: GaussianVideoPrior, scheduler: Any) -> None:
        config = getattr(scheduler, "config", None)
        if getattr(scheduler, "alphas_cumprod", None) is None or "prediction_type" not in (config or {}):
            raise ValueError(
                "scheduler must be a diffusers DDPM-family scheduler with alphas_cumprod and prediction_type "
                f"(DDIM, DDPM, DPM-Solver, Euler, UniPC, ...); got {type(scheduler).__name__}"
            )
        prediction_type = config.prediction_type
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}; got {prediction_type!r}")
        self.prior, self.scheduler, self.prediction_type = prior, scheduler, prediction_type
        _warn_if_clipping(scheduler)
        alphas_cumprod = np.asarray(scheduler.alphas_cumprod, dtype=np.float64)
        with np.errstate(divide="ignore"):  # abar = 0 (zero terminal SNR) is sigma = inf, abar 0 again below
            self._train_sigmas = np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)  # VP -> VE noise level

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        abar = self.alpha_bar(timestep)
        x0 = self.posterior_mean(latents, abar)
        a, b = np.sqrt(abar), np.sqrt(1.0 - abar)
        if self.prediction_type == "sample":
            return x0
        eps = (latents - a * x0) / b
        return eps if self.prediction_type == "epsilon" else a * eps - b * x0

    def alpha_bar(self, timestep: torch.Tensor | float) -> float:
        """abar of the latents at `timestep`: 1 / (1 + sigma^2) with the scheduler's own sigma of that step
        where it keeps one (Euler, DPM-Solver with Karras sigmas, ...), else `alphas_cumprod` interpolated
        in sigma (exact at integer timesteps)."""
        t = float(timestep)
        sigma = self._scheduler_sigma(t)
        if sigma is None:
            sigma = float(np.interp(t, np.arange(len(self._train_sigmas)), self._train_sigmas))
        return 1.0 / (1.0 + sigma**2)

    def posterior_mean(self, latents: torch.Tensor, abar: float) -> torch.Tensor:
        """sqrt(abar) K (abar K + (1 - abar) I)^-1 x_t along the frame axis of (B, C, F, H, W) latents."""
        lam, u = self.prior.eigh(latents.shape[2])
        gain = np.sqrt(abar) * lam / (abar * lam + 1.0 - abar)
        matrix = torch.from_numpy((u * gain) @ u.T).to(latents)
        return torch.einsum("fg,bcghw->bcfhw", matrix, latents)

    def _scheduler_sigma(self, t: float) -> float | None:
        """The scheduler's sigma of the step being denoised: at its `step_index` when that step's timestep
        is `t` (timesteps can repeat, e.g. rounded Karras schedules), else at the first step with `t`."""
        sigmas, timesteps = (
            getattr(self.scheduler, "sigmas", None),
            getattr(self.scheduler, "timesteps", None),
        )
        if sigmas is None or timesteps is None:
            return None
        timesteps = torch.as_tensor(timesteps, dtype=torch.float64)
        index = getattr(self.scheduler, "step_index", None)
        if index is None or index >= len(timesteps) or float(timesteps[index]) != t:
            match = (timesteps == t).nonzero()
            if not len(match):
                return None
            index = int(match[0, 0])
        return float(sigmas[index])
