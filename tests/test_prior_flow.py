"""The analytic prior under rectified flow, against closed forms per eigenvalue of the kernel.

With x_s = (1 - s) x0 + s eps and x0 ~ N(0, K), each eigen-direction of K (eigenvalue lam) is a scalar
Gaussian: E[x0 | x] = g x with g = a lam / (a^2 lam + s^2), a = 1 - s, and the velocity is
v = eps_hat - x0_hat = (1 - g) / s * x (because a + s = 1). A FlowMatchEuler run is then a scalar
recursion x <- x + (s_next - s) v per eigen-direction. The references use np.linalg.solve and the
kernel built entry by entry, not the code's eigendecomposition.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from einops import rearrange

from models import GaussianVideoPrior
from samplers import LongVideoSampler

SHIFT = 3.0


def rbf(n: int, lengthscale: float) -> np.ndarray:
    return np.array([[math.exp(-((f - g) ** 2) / (2 * lengthscale**2)) for g in range(n)] for f in range(n)])


def velocity_reference(x: torch.Tensor, sigma: float, lengthscale: float) -> np.ndarray:
    """v = (x - a x0) / s - x0 with x0 = a K (a^2 K + s^2 I)^-1 x, by a linear solve along frames."""
    k, a = rbf(x.shape[2], lengthscale), 1.0 - sigma
    cols = rearrange(x.double().numpy(), "b c f h w -> f (b c h w)")
    x0 = a * k @ np.linalg.solve(a * a * k + sigma * sigma * np.eye(len(k)), cols)
    v = (cols - a * x0) / sigma - x0
    b, c, _, h, w = x.shape
    return rearrange(v, "f (b c h w) -> b c f h w", b=b, c=c, h=h, w=w)


@pytest.mark.parametrize("invert", [False, True])
def test_flow_velocity_is_the_closed_form(invert):
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 2, 2), lengthscale=3.0)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=SHIFT, invert_sigmas=invert)
    scheduler.set_timesteps(6)
    denoiser = prior.denoiser(scheduler)
    x = torch.randn((1, 2, 8, 2, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for k, t in enumerate(scheduler.timesteps):
        stored = float(scheduler.sigmas[k])
        sigma = 1.0 - stored if invert else stored
        expected = velocity_reference(x, sigma, prior.lengthscale)
        if invert:  # Mochi's convention: the model predicts x0 - eps
            expected = -expected
        np.testing.assert_allclose(denoiser(x, t).numpy(), expected, rtol=0, atol=1e-9, err_msg=f"step {k}")


def euler_reference(noise: torch.Tensor, sigmas: np.ndarray, lengthscale: float) -> np.ndarray:
    """The FlowMatchEuler run with the exact velocity, as a scalar recursion per eigenvalue of K."""
    n = noise.shape[2]
    lam, u = np.linalg.eigh(rbf(n, lengthscale))
    lam = np.clip(lam, 0, None)
    gain = np.ones(n)
    for s, s_next in itertools.pairwise(sigmas):
        a = 1.0 - s
        g = a * lam / (a * a * lam + s * s)
        gain = gain * (1.0 + (s_next - s) * (1.0 - g) / s)
    return np.einsum("fg,bcghw->bcfhw", (u * gain) @ u.T, noise.double().numpy())


@pytest.mark.parametrize("invert", [False, True])
def test_a_flow_euler_run_is_the_recursion_per_eigenvalue(invert):
    # Under inverted sigmas (Mochi) the stored schedule is 1 - sigma and the model predicts x0 - eps:
    # the same flow, so the same result.
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=3.0)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=SHIFT, invert_sigmas=invert)
    captured = []
    video = LongVideoSampler([], progress=False).sample(
        prior.denoiser(scheduler), scheduler, (2, 2, 8, 3, 3), num_clips=1, num_inference_steps=20,
        generator=torch.Generator().manual_seed(0), on_clip=lambda clip: captured.append(clip.initial_noise),
    )  # fmt: skip
    stored = scheduler.sigmas.double().numpy()
    sigmas = 1.0 - stored if invert else stored
    expected = euler_reference(captured[0], sigmas, prior.lengthscale)
    np.testing.assert_allclose(video.latents.double().numpy(), expected, rtol=0, atol=2e-5)


def test_many_flow_steps_transport_noise_to_the_process():
    # The reference recursion itself: with the exact velocity, 4000 shifted Euler steps map unit noise to
    # the process, gain^2 -> lam per eigenvalue (Euler error ~0.26% at 4000 steps): the closed form is right.
    scheduler = FlowMatchEulerDiscreteScheduler(shift=SHIFT)
    scheduler.set_timesteps(4000)
    lam = np.clip(np.linalg.eigvalsh(rbf(8, 3.0)), 0, None)
    sigmas = scheduler.sigmas.double().numpy()
    gain = np.ones(8)
    for s, s_next in itertools.pairwise(sigmas):
        g = (1 - s) * lam / ((1 - s) ** 2 * lam + s * s)
        gain = gain * (1.0 + (s_next - s) * (1.0 - g) / s)
    big = lam > 0.05
    np.testing.assert_allclose(gain[big] ** 2, lam[big], rtol=0.004)
