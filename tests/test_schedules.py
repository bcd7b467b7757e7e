"""The scheduler seam (samplers.schedulers.Schedule, samplers.noise_level) against diffusers' own numbers.

Each x0 conversion is checked against the x0 the scheduler itself computes inside `step` (its
`pred_original_sample`, or the converted output a multistep solver keeps in `model_outputs`), and each
flow schedule against an independent closed form of what diffusers builds (the double shift, dynamic
shifting through `mu`, inverted sigmas).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from diffusers import (
    CogVideoXDDIMScheduler,
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EDMEulerScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    LMSDiscreteScheduler,
    UniPCMultistepScheduler,
)

from samplers import DSG, GuidanceExactnessWarning, LongVideoSampler, NoiseLevel
from samplers.schedulers import Schedule, scheduler_kind

SHAPE = (1, 2, 4, 3, 3)


def rand(seed: int, shape=SHAPE) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def unipc_flow(**kwargs) -> UniPCMultistepScheduler:
    return UniPCMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=3.0,
                                   **kwargs)  # fmt: skip


SINGLE_STEP = [  # schedulers whose step returns pred_original_sample
    lambda: DDIMScheduler(clip_sample=False),
    lambda: DDIMScheduler(clip_sample=False, prediction_type="v_prediction"),
    lambda: DDIMScheduler(clip_sample=False, prediction_type="sample"),
    lambda: DDPMScheduler(clip_sample=False, prediction_type="v_prediction"),
    EulerDiscreteScheduler,
    lambda: EulerDiscreteScheduler(prediction_type="v_prediction"),
    EulerAncestralDiscreteScheduler,
    LMSDiscreteScheduler,
    lambda: CogVideoXDDIMScheduler(prediction_type="v_prediction", rescale_betas_zero_snr=True,
                                   timestep_spacing="trailing", clip_sample=False),
]


@pytest.mark.parametrize("make", SINGLE_STEP)
def test_x0_is_the_schedulers_own_pred_original_sample(make):
    scheduler = make()
    schedule = Schedule(scheduler)
    timesteps = schedule.set_timesteps(5)
    latents = rand(0) * schedule.init_noise_sigma
    for s, t in enumerate(timesteps):
        output = rand(100 + s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Euler's note that scale_model_input was not called
            extra = {"generator": torch.Generator().manual_seed(s)} if schedule._takes_generator else {}
            step = scheduler.step(output, t, latents, **extra)
        level = schedule.levels()[s]
        if level.signal == 0 and scheduler.config.prediction_type == "epsilon":
            continue  # x0 undefined at zero SNR for an epsilon model
        where = f"{type(scheduler).__name__} step {s}"
        torch.testing.assert_close(schedule.x0(output, latents, level), step.pred_original_sample,
                                   rtol=1e-5, atol=1e-5, msg=where)  # fmt: skip
        latents = step.prev_sample


@pytest.mark.parametrize(
    "make",
    [lambda: DPMSolverMultistepScheduler(use_karras_sigmas=True), DPMSolverMultistepScheduler,
     UniPCMultistepScheduler, unipc_flow],
)
def test_x0_is_what_a_multistep_solver_keeps(make):
    """DPM-Solver++ and UniPC convert the output to x0 at each step and keep it in model_outputs[-1]."""
    scheduler = make()
    schedule = Schedule(scheduler)
    latents = rand(0)
    for s, t in enumerate(schedule.set_timesteps(6)):
        output = rand(100 + s)
        x0 = schedule.x0(output, latents, schedule.levels()[s])
        latents = scheduler.step(output, t, latents).prev_sample
        torch.testing.assert_close(x0, scheduler.model_outputs[-1], rtol=1e-5, atol=1e-5, msg=f"step {s}")


@pytest.mark.parametrize("invert", [False, True])
def test_flow_x0_is_the_last_euler_step(invert):
    """The last FlowMatchEuler step goes to sigma 0 (stored 1 when inverted): x + (0 - s) v is x0."""
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, invert_sigmas=invert)
    schedule = Schedule(scheduler)
    timesteps = schedule.set_timesteps(4)
    latents = rand(0)
    for s, t in enumerate(timesteps):
        output = rand(100 + s)
        x0 = schedule.x0(output, latents, schedule.levels()[s])
        latents = scheduler.step(output, t, latents).prev_sample
    torch.testing.assert_close(x0, latents, rtol=0, atol=1e-6)
    assert schedule.inverted is invert


def shifted(sigma: np.ndarray, shift: float) -> np.ndarray:
    return shift * sigma / (1 + (shift - 1) * sigma)


def test_flow_levels_are_read_back_not_recomputed():
    # FlowMatchEuler(shift) shifts its training sigmas at construction and the inference ones again:
    # sigmas = shift(linspace(1, shift(1/1000), T)). A kit that recomputed shift(linspace(1, 1/T, T))
    # would be wrong; the Schedule reads the scheduler's own.
    shift, steps = 3.0, 10
    schedule = Schedule(FlowMatchEulerDiscreteScheduler(shift=shift))
    schedule.set_timesteps(steps)
    expected = shifted(np.linspace(1.0, shifted(np.array(1 / 1000), shift), steps), shift)
    noise = np.array([level.noise for level in schedule.levels()])
    np.testing.assert_allclose(noise, expected, rtol=2e-6, atol=0)
    assert all(level.signal == pytest.approx(1 - level.noise, abs=1e-12) for level in schedule.levels())


def test_dynamic_shift_through_mu_and_shift_terminal():
    # LTX-Video: set_timesteps(sigmas=linspace(1, 1/N, N), mu) with exponential time shift
    # s' = e^mu / (e^mu + 1/s - 1), then stretched so that the last one is shift_terminal.
    steps, mu, terminal = 8, 1.2, 0.1
    sigmas = np.linspace(1.0, 1.0 / steps, steps)
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, shift_terminal=terminal)
    schedule = Schedule(scheduler, sigmas=sigmas, mu=mu)
    schedule.set_timesteps(steps)
    s = math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1))
    one_minus = 1 - s
    s = 1 - one_minus / (one_minus[-1] / (1 - terminal))
    np.testing.assert_allclose([lv.noise for lv in schedule.levels()], s, rtol=2e-6, atol=0)
    with pytest.raises(ValueError, match=r"num_inference_steps must be len\(sigmas\) = 8.*got 9"):
        schedule.set_timesteps(9)


def test_kinds():
    assert scheduler_kind(DDIMScheduler()) == "vp"
    assert scheduler_kind(EulerDiscreteScheduler()) == "ve"
    assert scheduler_kind(FlowMatchEulerDiscreteScheduler()) == "flow"
    flow_unipc = unipc_flow()
    assert flow_unipc.alphas_cumprod is not None  # present, but not its noise: the flag wins
    assert scheduler_kind(flow_unipc) == "flow"
    with pytest.raises(ValueError, match="scheduler kind of EDMEulerScheduler cannot be determined"):
        scheduler_kind(EDMEulerScheduler())


def test_an_undeterminable_scheduler_is_refused_before_any_work():
    calls = []
    with pytest.raises(ValueError, match="cannot be determined"):
        LongVideoSampler([], progress=False).sample(lambda x, t: calls.append(t) or x, EDMEulerScheduler(),
                                                    SHAPE, 1, 2, generator=torch.Generator())  # fmt: skip
    assert calls == []


def test_replacement_exactness_is_stated():
    assert Schedule(FlowMatchEulerDiscreteScheduler()).replacement_exact
    assert Schedule(DDIMScheduler()).replacement_exact
    assert not Schedule(unipc_flow(solver_order=2)).replacement_exact
    assert Schedule(unipc_flow(solver_order=1)).replacement_exact
    sampler = LongVideoSampler([DSG(beta=0.5)], prompt_frames=2, progress=False)
    with pytest.warns(GuidanceExactnessWarning, match="UniPCMultistepScheduler"):
        sampler.sample(lambda x, t: x * 0, unipc_flow(solver_order=2), SHAPE, 2, 3,
                       generator=torch.Generator())  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", GuidanceExactnessWarning)
        sampler.sample(lambda x, t: x * 0, FlowMatchEulerDiscreteScheduler(), SHAPE, 2, 3,
                       generator=torch.Generator())  # fmt: skip


@pytest.mark.parametrize("sigma", [0.0, 0.3, 0.9])
def test_noise_level_constructors(sigma):
    flow = NoiseLevel.flow(sigma)
    a, r = 1 - sigma, math.hypot(1 - sigma, sigma)
    assert (flow.signal, flow.noise) == (a, sigma)
    assert flow.scale == pytest.approx(r, rel=1e-15)
    assert flow.alpha_bar == pytest.approx(a * a / (a * a + sigma * sigma), rel=1e-15)
    ve = NoiseLevel.ve(sigma)
    assert ve.alpha_bar == pytest.approx(1 / (1 + sigma**2), rel=1e-15)
    assert ve.scale == math.sqrt(1 + sigma**2)
    vp = NoiseLevel.vp(0.36)
    assert (vp.signal, vp.noise, vp.scale) == (0.6, 0.8, 1.0)
