"""The analytic prior with one noise level per frame (issue 12's protocol foundation): against a closed
form E[x0 | x] = K A (A K A + S^2)^-1 x built entry by entry and inverted explicitly, equal to the
shared-timestep denoiser when every frame shares the level, per batch row for (B, F) timesteps, and the
protocol's declaration and refusal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler
from hypothesis import given
from hypothesis import strategies as st

from models import GaussianVideoPrior
from samplers.protocols import check_frame_timesteps, takes_frame_timesteps

PRIOR = GaussianVideoPrior(num_frames=6, frame_shape=(2, 2, 2), lengthscale=2.0)


def schedulers():
    ddim = DDIMScheduler(clip_sample=False, prediction_type="v_prediction")
    ddim.set_timesteps(10)
    flow = FlowMatchEulerDiscreteScheduler(shift=3.0)
    flow.set_timesteps(10)
    return {"ddim-v": ddim, "flow": flow}


def latents(seed: int, batch: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch, 2, 6, 2, 2), generator=generator, dtype=torch.float64)


def levels_of(scheduler, indices) -> tuple[np.ndarray, np.ndarray]:
    """(a_j, s_j) of the model input at the steps `indices`, from the scheduler's own tables."""
    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        sigma = scheduler.sigmas.double().numpy()[list(indices)]
        return 1 - sigma, sigma
    abar = scheduler.alphas_cumprod.double().numpy()[scheduler.timesteps.numpy()[list(indices)]]
    return np.sqrt(abar), np.sqrt(1 - abar)


def reference_output(x: torch.Tensor, a: np.ndarray, s: np.ndarray, prediction: str) -> np.ndarray:
    n = x.shape[2]
    k = np.array([[math.exp(-((f - g) ** 2) / (2 * 2.0**2)) for g in range(n)] for f in range(n)])
    gain = k @ np.diag(a) @ np.linalg.inv(np.diag(a) @ k @ np.diag(a) + np.diag(s**2))
    x0 = np.einsum("fg,bcghw->bcfhw", gain, x.numpy())
    shape = (1, 1, n, 1, 1)
    eps = (x.numpy() - a.reshape(shape) * x0) / s.reshape(shape)
    if prediction == "flow":
        return eps - x0
    r = np.sqrt(a**2 + s**2).reshape(shape)
    return a.reshape(shape) / r * eps - s.reshape(shape) / r * x0  # v (r = 1 under VP)


@pytest.mark.parametrize("name", ["ddim-v", "flow"])
def test_distinct_frame_levels_are_the_closed_form(name):
    scheduler = schedulers()[name]
    indices = [0, 2, 3, 5, 8, 9]  # frame j at step indices[j]: noisy first, clean last (FIFO-like)
    x = latents(0)
    out = PRIOR.denoiser(scheduler)(x, scheduler.timesteps[indices])
    a, s = levels_of(scheduler, indices)
    np.testing.assert_allclose(out.numpy(), reference_output(x, a, s, "flow" if name == "flow" else "v"),
                               rtol=0, atol=1e-8)  # fmt: skip


@given(step=st.integers(0, 9), name=st.sampled_from(["ddim-v", "flow"]))
def test_shared_frame_levels_equal_the_shared_timestep_denoiser(step, name):
    scheduler = schedulers()[name]
    denoiser, x = PRIOR.denoiser(scheduler), latents(1)
    t = scheduler.timesteps[step]
    per_frame = denoiser(x, t.repeat(6))
    torch.testing.assert_close(per_frame, denoiser(x, t), rtol=0, atol=1e-9)


def test_batch_rows_take_their_own_frame_levels():
    scheduler = schedulers()["flow"]
    denoiser, x = PRIOR.denoiser(scheduler), latents(2, batch=2)
    rows = torch.stack([scheduler.timesteps[[0, 1, 2, 3, 4, 5]], scheduler.timesteps[[4, 5, 6, 7, 8, 9]]])
    out = denoiser(x, rows)
    for b in range(2):
        torch.testing.assert_close(out[b : b + 1], denoiser(x[b : b + 1], rows[b]), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"timestep must be a scalar, \(F,\) or \(B, F\) = \(2, 6\)"):
        denoiser(x, scheduler.timesteps[:4])


def test_the_declaration_and_the_refusal():
    assert takes_frame_timesteps(PRIOR.denoiser(DDIMScheduler(clip_sample=False)))
    check_frame_timesteps(PRIOR.denoiser(DDIMScheduler(clip_sample=False)), "FIFO")
    with pytest.raises(TypeError, match=r"FIFO needs a denoiser that takes one timestep per frame.*function"):
        check_frame_timesteps(lambda x, t: x, "FIFO")
