"""The analytic backbone: a stationary Gaussian process over time with an exact denoiser (docs/DESIGN.md §4).

Every latent element (c, h, w) of a video is an independent zero-mean, unit-variance Gaussian process
over frames with kernel k(tau) = exp(-tau^2 / (2 l^2)). For a clip of F frames with covariance
K = U diag(lam) U^T and a noisy latent x_t = a x0 + s eps (VP: a = sqrt(abar), s = sqrt(1 - abar);
rectified flow: a = 1 - sigma, s = sigma), the exact posterior mean is
    E[x0 | x_t] = a K (a^2 K + s^2 I)^-1 x_t = U diag(a lam / (a^2 lam + s^2)) U^T x_t.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from samplers.noise_level import FrameLevels, NoiseLevel, output_from_x0
from samplers.schedulers import as_schedule
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

    def sample_continuation(
        self, previous: torch.Tensor, num_frames: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """`num_frames` frames drawn from the exact conditional distribution of the process given the
        frames `previous` (B, C, P, H, W) (the oracle continuation: what a perfect clip-by-clip method
        would make). With K the covariance of the P + n frames, the mean is K_np K_pp^+ x_p and the
        covariance K_nn - K_np K_pp^+ K_pn (pseudo-inverses: an RBF kernel's K_pp is nearly singular)."""
        check_int("num_frames", num_frames, 1)
        check_generator(generator)
        if previous.ndim != 5 or tuple(previous.shape[1:2] + previous.shape[3:]) != (
            self.frame_shape[0], *self.frame_shape[1:]
        ):
            raise ValueError(f"previous must be (B, C, P, H, W) with (C, H, W) = {self.frame_shape}; got "
                             f"{tuple(previous.shape)}")  # fmt: skip
        mean, root = _continuation(self.lengthscale, previous.shape[2], num_frames)
        z = torch.randn((previous.shape[0], self.frame_shape[0], num_frames, *self.frame_shape[1:]),
                        generator=generator, dtype=torch.float64, device=generator.device).cpu()  # fmt: skip
        x = torch.einsum("np,bcphw->bcnhw", torch.from_numpy(mean), previous.double().cpu())
        x = x + torch.einsum("nm,bcmhw->bcnhw", torch.from_numpy(root), z)
        return x.to(previous.dtype)

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
def _continuation(lengthscale: float, past: int, future: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, R) with x_future = M x_past + R z the exact conditional draw: M = K_np K_pp^+, R R^T =
    K_nn - M K_pn (eigenvalues below 1e-12 of the largest treated as 0)."""
    f = np.arange(past + future)
    k = np.exp(-((f[:, None] - f[None, :]) ** 2) / (2.0 * lengthscale**2))
    k_pp, k_np, k_nn = k[:past, :past], k[past:, :past], k[past:, past:]
    mean = k_np @ np.linalg.pinv(k_pp, rcond=1e-12, hermitian=True)
    lam, u = np.linalg.eigh(k_nn - mean @ k_np.T)
    return mean, u * np.sqrt(np.clip(lam, 0.0, None))


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
    """E[x0 | x_t] of a `GaussianVideoPrior`, returned in the schedule's prediction type.

    The noise level of each call comes from `samplers.schedulers.Schedule.level_at(timestep)`: VP
    (x_t = sqrt(abar) x0 + sqrt(1-abar) eps), Euler's scaled VE state, or rectified flow
    (x_t = (1-sigma) x0 + sigma eps, the model predicting v = eps - x0), with the scheduler's own
    schedule read back (shifted, dynamically shifted, inverted) rather than recomputed.
    """

    def __init__(self, prior: GaussianVideoPrior, scheduler: Any) -> None:
        self.schedule = as_schedule(scheduler)
        problem = self.schedule.x0_problem()
        if problem is not None:
            raise ValueError(f"scheduler has no exact denoiser output for the Gaussian prior: {problem}")
        self.prior, self.scheduler = prior, self.schedule.scheduler
        self.prediction_type = self.schedule.prediction_type
        _warn_if_clipping(self.scheduler)

    frame_timesteps = True  # takes one timestep per frame, (F,) or (B, F) (samplers.protocols)

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(timestep)
        if t.numel() > 1:  # one timestep per frame
            return self._per_frame(latents, t)
        level = self.level(timestep)
        x0 = self.posterior_mean(latents, level)
        return output_from_x0(x0, latents, level, self.prediction_type, self.schedule.inverted)

    def _per_frame(self, latents: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Frame j at its own level (a_j, s_j): E[x0 | x] = K A (A K A + S^2)^-1 x with A = diag(a_j),
        S = diag(s_j), then each frame's output at its own level; rows of a (B, F) timestep separately."""
        batch, frames = latents.shape[0], latents.shape[2]
        rows = timesteps.reshape(-1, frames) if timesteps.numel() % frames == 0 else None
        if rows is None or rows.shape[0] not in (1, batch):
            raise ValueError(f"timestep must be a scalar, (F,) or (B, F) = ({batch}, {frames}) for latents "
                             f"{tuple(latents.shape)}; got shape {tuple(timesteps.shape)}")  # fmt: skip
        if rows.shape[0] > 1 and bool((rows == rows[:1]).all()):
            rows = rows[:1]  # every video at the same levels: one solve for the batch
        outputs = []
        for b in range(rows.shape[0]):  # one row for the whole batch, or one per video
            row = rows[b].detach().cpu().double()
            levels = [self.level(t) for t in row]
            x = latents if rows.shape[0] == 1 else latents[b : b + 1]
            x0 = torch.einsum("fg,bcghw->bcfhw", self._frame_matrix(levels).to(x), x)
            per_frame = FrameLevels.of(levels, x)
            outputs.append(output_from_x0(x0, x, per_frame, self.prediction_type, self.schedule.inverted))
        return torch.cat(outputs, dim=0)

    def _frame_matrix(self, levels: list[NoiseLevel]) -> torch.Tensor:
        """K A (A K A + S^2)^-1 for the levels of frames 0..F-1 (float64), by a linear solve; kept per
        levels, as samplers that move frames at their own levels repeat them (FIFO: every iteration)."""
        key = tuple((level.signal, level.noise) for level in levels)
        cache = self.__dict__.setdefault("_frame_matrices", {})
        if key not in cache:
            k = self.prior.covariance(len(levels))
            a = np.diag([level.signal for level in levels])
            s2 = np.diag([level.noise**2 for level in levels])
            cache[key] = torch.from_numpy(np.linalg.solve(a @ k @ a + s2, a @ k).T)
        return cache[key]

    def level(self, timestep: torch.Tensor | float) -> NoiseLevel:
        """The noise level of the model input at `timestep` (Schedule.level_at, then model_level)."""
        return self.schedule.model_level(self.schedule.level_at(timestep))

    def alpha_bar(self, timestep: torch.Tensor | float) -> float:
        """The VP-equivalent abar of the model input at `timestep` (1 / (1 + sigma^2) for Euler)."""
        return self.level(timestep).alpha_bar

    def posterior_mean(self, latents: torch.Tensor, level: NoiseLevel | float) -> torch.Tensor:
        """a K (a^2 K + s^2 I)^-1 x_t along the frame axis of (B, C, F, H, W) latents x_t = a x0 + s eps;
        written as (1/r) sqrt(abar) K (abar K + (1 - abar) I)^-1 x_t (r = 1 under VP). A float `level`
        is a VP abar."""
        if not isinstance(level, NoiseLevel):
            level = NoiseLevel.vp(float(level))
        lam, u = self.prior.eigh(latents.shape[2])
        abar = level.alpha_bar
        gain = np.sqrt(abar) * lam / (abar * lam + 1.0 - abar) / level.scale
        matrix = torch.from_numpy((u * gain) @ u.T).to(latents)
        return torch.einsum("fg,bcghw->bcfhw", matrix, latents)
