"""Reconstruction guidance: the gradient step in closed form, exact x0, inexact schedulers refused."""

import itertools
import math

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)

from models import GaussianVideoPrior
from models.tiny import TINY_SCHEDULER
from samplers import (
    ForwardOverlap,
    LongVideoSampler,
    ReconstructionGuidance,
    Recording,
    RecordSpec,
    StepContext,
)
from samplers.noise_level import NoiseLevel
from samplers.schedulers import x0_conversion_problem

PRIOR = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=2.0)
SHAPE = (2, 2, 8, 3, 3)


def randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("weight", [2.0, 10.0, 30.0])
def test_one_step_is_the_closed_form_gradient_step(weight):
    # With a linear x0 estimate xhat0(z) = A z along frames, grad_z |(A z)[:M] - x|^2 = 2 A_M^T (A_M z - x),
    # so z^b <- z^b - (weight / T) * sqrt(abar) / 2 * [2 A_M^T (A_M z - x)]^b (frames j >= M), written here
    # without autograd; the prompt frames z^a (j < M) are not moved (Ho et al.).
    n, m, abar, t = 6, 2, 0.36, 10
    a = randn((n, n), 0)
    target = randn((2, 2, m, 3, 3), 1)  # x_prev: the previous clip's final frames N-M..N-1
    previous = Recording(tuple(range(n - m, n)), torch.zeros(0, 2, 2, m, 3, 3), final=target)
    z = randn((2, 2, n, 3, 3), 2)
    context = StepContext(1, 0, t, torch.tensor(500), m, n, previous,
                          lambda x: torch.einsum("fg,bcghw->bcfhw", a, x), abar,
                          noise_level=NoiseLevel.vp(abar))  # fmt: skip
    out = ReconstructionGuidance(weight)(z, context)
    residual = torch.einsum("fg,bcghw->bcfhw", a[:m], z) - target
    grad = 2 * torch.einsum("fg,bcfhw->bcghw", a[:m], residual)
    expected = z - weight / t * math.sqrt(abar) / 2 * grad
    assert torch.equal(out[:, :, :m], z[:, :, :m])
    torch.testing.assert_close(out[:, :, m:], expected[:, :, m:], rtol=1e-12, atol=1e-12)
    assert not out.requires_grad


class X0Probe:
    """A guidance that compares the sampler's predict_x0 with the prior's exact posterior mean."""

    needs_x0 = True

    def __init__(self, scheduler, tolerance):
        self.scheduler, self.tolerance, self.checked = scheduler, tolerance, 0

    def expected_level(self, context) -> NoiseLevel:
        """The scheduler's own noise level of z_s, by its kind: flow sigmas (1 - stored when inverted),
        Euler's VE sigmas, a VP solver's VE sigmas, or alphas_cumprod at the integer timestep."""
        scheduler, s = self.scheduler, context.step_index
        if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
            stored = float(scheduler.sigmas[s])
            return NoiseLevel.flow(1.0 - stored if scheduler.config.invert_sigmas else stored)
        if isinstance(scheduler, EulerDiscreteScheduler):
            return NoiseLevel.ve(float(scheduler.sigmas[s]))
        if hasattr(scheduler, "sigmas"):
            return NoiseLevel.vp(1.0 / (1.0 + float(scheduler.sigmas[s]) ** 2))
        return NoiseLevel.vp(float(scheduler.alphas_cumprod[int(context.timestep)].double()))

    def record_spec(self, num_frames, prompt_frames, num_steps):
        return RecordSpec(frames=(), steps=0)

    def __call__(self, latents, context):
        level = self.expected_level(context)
        got = context.noise_level
        assert (got.signal, got.noise) == (pytest.approx(level.signal, rel=1e-12),
                                           pytest.approx(level.noise, rel=1e-12))  # fmt: skip
        assert context.alpha_bar == pytest.approx(level.alpha_bar, rel=1e-12)
        exact = PRIOR.denoiser(self.scheduler).posterior_mean(latents, level)
        tol = self.tolerance
        torch.testing.assert_close(context.predict_x0(latents), exact, rtol=tol, atol=tol)
        self.checked += 1
        return latents


# Float64 round-off only: the sampler's x0 conversion and the prior's denoiser read the same noise level
# (samplers.schedulers.Schedule), also where it comes from the scheduler's float32 sigmas.
@pytest.mark.parametrize(
    ("make", "tolerance"),
    [
        (lambda: DDIMScheduler(clip_sample=False), 1e-10),
        (lambda: DDIMScheduler(clip_sample=False, prediction_type="v_prediction"), 1e-10),
        (lambda: DDIMScheduler(clip_sample=False, prediction_type="sample"), 1e-10),
        (lambda: DDPMScheduler(clip_sample=False), 1e-10),
        # the bundled model's schedule: zero terminal SNR (abar = 0 at the first step, x0 = -v), v, trailing
        (lambda: DDIMScheduler(**{**TINY_SCHEDULER, "prediction_type": "v_prediction"}), 1e-10),
        (lambda: DPMSolverMultistepScheduler(prediction_type="v_prediction"), 1e-10),
        (lambda: UniPCMultistepScheduler(), 1e-10),
        (lambda: DPMSolverMultistepScheduler(use_karras_sigmas=True), 1e-10),  # repeated timesteps
        # VE state, x0 from the scaled model input: diffusers computes the scale sqrt(sigma^2 + 1) of
        # scale_model_input in float32, which the epsilon -> x0 conversion amplifies at large sigma
        (EulerDiscreteScheduler, 2e-5),
        (lambda: EulerDiscreteScheduler(prediction_type="v_prediction"), 1e-6),
        (lambda: FlowMatchEulerDiscreteScheduler(shift=3.0), 1e-10),
        (lambda: FlowMatchEulerDiscreteScheduler(invert_sigmas=True), 1e-10),  # Mochi's convention
    ],
)
def test_predict_x0_is_the_exact_posterior_mean(make, tolerance):
    scheduler = make()
    assert x0_conversion_problem(scheduler) is None
    probe = X0Probe(scheduler, tolerance)
    LongVideoSampler([probe], progress=False).sample(PRIOR.denoiser(scheduler), scheduler, SHAPE, 2, 4,
                                                     generator=torch.Generator().manual_seed(0),
                                                     dtype=torch.float64)  # fmt: skip
    assert probe.checked == 8


def test_steps_carry_no_x0_estimate_unless_a_guidance_needs_it():
    seen = []

    class Probe(X0Probe):
        needs_x0 = False

        def __call__(self, latents, context):
            seen.append((context.predict_x0, context.alpha_bar))
            return latents

    scheduler = DDIMScheduler(clip_sample=False)
    LongVideoSampler([Probe(scheduler, 0)], progress=False).sample(
        PRIOR.denoiser(scheduler), scheduler, SHAPE, 1, 3, generator=torch.Generator().manual_seed(0)
    )
    assert seen == [(None, None)] * 3


def test_a_scheduler_without_an_exact_x0_is_refused_before_any_work():
    scheduler, calls = DDIMScheduler(prediction_type="vector"), []  # no such prediction type

    def denoiser(latents, t):
        calls.append(t)
        return latents

    sampler = LongVideoSampler([ForwardOverlap(), ReconstructionGuidance(1.0)], progress=False)
    with pytest.raises(ValueError, match=r"ReconstructionGuidance needs an exact x0 estimate.*'vector'"):
        sampler.sample(denoiser, scheduler, SHAPE, 2, 3, generator=torch.Generator().manual_seed(0))
    assert calls == []
    assert x0_conversion_problem(scheduler) is not None
    assert x0_conversion_problem(EulerDiscreteScheduler()) is None  # exact since the scheduler seam
    ReconstructionGuidance(0.0).check_scheduler(scheduler)  # weight 0 is no guidance: accepted anywhere


def sample(strategies, scheduler, clips=3, steps=6, **kwargs):
    sampler = LongVideoSampler(strategies, prompt_frames=3, progress=False, **kwargs.pop("init", {}))
    generator = torch.Generator().manual_seed(0)
    return sampler.sample(PRIOR.denoiser(scheduler), scheduler, SHAPE, clips, steps, generator=generator,
                          dtype=torch.float64, **kwargs)  # fmt: skip


class FinalProbe:
    """Asks for the final latents of the last M frames, as ReconstructionGuidance does, and keeps them."""

    def __init__(self):
        self.guidance, self.finals = ReconstructionGuidance(1.0), []

    def record_spec(self, num_frames, prompt_frames, num_steps):
        return self.guidance.record_spec(num_frames, prompt_frames, num_steps)

    def __call__(self, latents, context):
        if context.previous is not None and context.step_index == 0:
            assert context.previous.frames == (5, 6, 7) and context.previous.latents.shape[0] == 0
            self.finals.append(context.previous.at_end((5, 6, 7)))
        return latents


def test_the_target_is_the_previous_clips_final_latents_in_forward_order():
    clips, probe = [], FinalProbe()
    sample([probe], DDIMScheduler(clip_sample=False), on_clip=clips.append)
    assert len(probe.finals) == 2
    for i, final in enumerate(probe.finals):
        assert torch.equal(final, clips[i].latents[:, :, 5:8])


def test_no_final_latents_unless_asked():
    with pytest.raises(ValueError, match=r"RecordSpec\(final=True\)"):
        Recording((5, 6, 7), torch.zeros(1, 1, 1, 3, 1, 1)).at_end((5, 6, 7))


def test_one_extra_denoiser_call_per_step_of_later_clips_and_no_grad_is_fine():
    scheduler, calls = DDIMScheduler(clip_sample=False), []
    exact = PRIOR.denoiser(scheduler)

    def denoiser(latents, t):
        calls.append(latents.requires_grad)
        return exact(latents, t)

    strategies = [ForwardOverlap(), ReconstructionGuidance(0.5)]
    sampler = LongVideoSampler(strategies, prompt_frames=3, progress=False)
    run = lambda: sampler.sample(denoiser, scheduler, SHAPE, 3, 6, generator=torch.Generator().manual_seed(0),  # noqa: E731
                                 dtype=torch.float64).latents  # fmt: skip
    with torch.no_grad():
        quiet = run()
    assert len(calls) == 6 * (1 + 2 * 2) and sum(calls) == 6 * 2  # the extra calls carry a graph
    assert torch.equal(quiet, run())


def test_guidance_pulls_the_prompt_frames_onto_the_previous_clip():
    # A property of the whole loop on the exact backbone (same seed, so deterministic): the guided clip's
    # first M frames end closer to the previous clip's last M frames (what they duplicate) the stronger the
    # guidance, although the step moves only the new frames: the joint denoiser carries the pull over.
    # (Measured: 1.64 without, 1.22 / 1.01 / 0.82 at weights 10 / 20 / 40; with ForwardOverlap, 2e-4.)
    scheduler = DDIMScheduler(clip_sample=False)

    def gap(strategies):
        x = sample(strategies, scheduler, clips=2, steps=20, init={"drop_prompt_frames": False}).latents
        return (x[:, :, 8:11] - x[:, :, 5:8]).square().mean().item()

    gaps = [gap([ReconstructionGuidance(w)]) for w in (0.0, 10.0, 20.0, 40.0)]
    assert all(b < 0.9 * a for a, b in itertools.pairwise(gaps))


class Spy:
    """Records every latent the denoiser is called on outside a guidance's x0 estimate (no graph)."""

    def __init__(self, denoiser):
        self.denoiser, self.inputs = denoiser, []

    def __call__(self, latents, t):
        if not latents.requires_grad:
            self.inputs.append(latents.detach().clone())
        return self.denoiser(latents, t)


def test_with_overlap_the_denoiser_sees_the_previous_clips_frames_in_the_prompt_frames():
    # Ho et al.: replacement for the prompt frames, the gradient step for the rest. Listed after
    # ForwardOverlap, the guidance leaves the replaced frames exactly as they are.
    scheduler, steps, clips = DDIMScheduler(clip_sample=False), 5, []
    spy = Spy(PRIOR.denoiser(scheduler))
    sampler = LongVideoSampler([ForwardOverlap(), ReconstructionGuidance(10.0)], prompt_frames=3,
                               drop_prompt_frames=False, progress=False)  # fmt: skip
    sampler.sample(spy, scheduler, SHAPE, 2, steps, generator=torch.Generator().manual_seed(0),
                   dtype=torch.float64, on_clip=clips.append)  # fmt: skip
    assert len(spy.inputs) == 2 * steps
    for s in range(steps):  # clip 1's step s sees clip 0's frames 5..7 of step s, forward, bit for bit
        assert torch.equal(spy.inputs[steps + s][:, :, :3], spy.inputs[s][:, :, 5:8])


def test_a_denoiser_without_gradients_is_reported():
    scheduler = DDIMScheduler(clip_sample=False)
    exact = PRIOR.denoiser(scheduler)

    def frozen(latents, t):  # like an adapter that runs its model under no_grad
        with torch.no_grad():
            return exact(latents, t)

    sampler = LongVideoSampler([ReconstructionGuidance(10.0)], progress=False)
    # With an epsilon model x0 = (z - sqrt(1-abar) eps) / sqrt(abar) would still depend on z: a silently
    # partial gradient, which the sampler's predict_x0 refuses.
    with pytest.raises(ValueError, match="the denoiser's output carries no gradient"):
        sampler.sample(frozen, scheduler, SHAPE, 2, 3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_bad_weight(weight):
    with pytest.raises(ValueError, match="weight must be in"):
        ReconstructionGuidance(weight)


@pytest.mark.parametrize("level", [NoiseLevel.flow(0.3), NoiseLevel.flow(0.8), NoiseLevel.ve(2.0)])
def test_off_vp_the_step_is_ho_et_als_vp_step_taken_on_z_over_r(level):
    # Under a non-VP level z = r * (VP latent), the guidance must equal: take Ho et al.'s VP step (weight
    # (w / T) sqrt(abar) / 2, gradient by autograd) on the VP latent y = z / r of the same x0 estimate,
    # then map back z' = r y'. Computed here without the code's r^2 factor.
    n, m, t, weight = 6, 2, 10, 10.0
    a = randn((n, n), 0)
    target = randn((2, 2, m, 3, 3), 1)
    previous = Recording(tuple(range(n - m, n)), torch.zeros(0, 2, 2, m, 3, 3), final=target)
    z = randn((2, 2, n, 3, 3), 2)

    def x0_of_z(x):
        return torch.einsum("fg,bcghw->bcfhw", a, x)

    context = StepContext(1, 0, t, torch.tensor(500), m, n, previous, x0_of_z, level.alpha_bar,
                          noise_level=level)  # fmt: skip
    out = ReconstructionGuidance(weight)(z, context)
    r = level.scale
    y = (z / r).requires_grad_(True)
    loss = (x0_of_z(r * y)[:, :, :m] - target).square().sum()
    (grad_y,) = torch.autograd.grad(loss, y)
    y_new = y.detach() - weight / t * math.sqrt(level.alpha_bar) / 2 * grad_y
    expected = torch.cat([z[:, :, :m], (r * y_new)[:, :, m:]], dim=2)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
