"""LongVideoSampler: the clip loop against hand-written references on the exact Gaussian backbone."""

import warnings

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)

from models import GaussianVideoPrior
from samplers import DSG, FNR, PNS, GuidanceExactnessWarning, IndependentNoise, LongVideoSampler

PRIOR = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=2.0)
SHAPE = (2, 2, 8, 3, 3)  # B, C, N, H, W


def bare_loop(denoiser, scheduler, clip_shape, num_clips, steps, generator, dtype=torch.float32):
    """The reference: a plain diffusers loop, clip after clip, fresh noise for each, nothing else."""
    clips = []
    for _ in range(num_clips):
        scheduler.set_timesteps(steps)
        latents = torch.randn(clip_shape, generator=generator, dtype=dtype) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            output = denoiser(scheduler.scale_model_input(latents, t), t)
            latents = scheduler.step(output, t, latents).prev_sample
        clips.append(latents)
    return torch.cat(clips, dim=2)


def sample(strategies, scheduler, num_clips=3, steps=10, seed=0, m=3, **kwargs):
    sampler = LongVideoSampler(strategies, prompt_frames=m, progress=False, **kwargs.pop("init", {}))
    return sampler.sample(
        PRIOR.denoiser(scheduler), scheduler, SHAPE, num_clips, steps,
        generator=torch.Generator().manual_seed(seed), dtype=torch.float64, **kwargs,
    )  # fmt: skip


def test_layout_and_clip_starts(ddim):
    video = sample([FNR(), PNS(alpha=4), DSG(beta=0.4)], ddim)
    assert video.latents.shape == (2, 2, 24, 3, 3) and video.clip_starts == [0, 8, 16]
    dropped = sample([FNR(), PNS(alpha=4), DSG(beta=0.4)], ddim, init={"drop_prompt_frames": True})
    assert dropped.latents.shape == (2, 2, 8 + 5 + 5, 3, 3) and dropped.clip_starts == [0, 8, 13]
    # Dropping is a view of the same computation: clip 1 minus its M=3 prompt frames.
    assert torch.equal(dropped.latents[:, :, 8:13], video.latents[:, :, 11:16])


@pytest.mark.parametrize(
    "strategies", [[], [IndependentNoise()], [DSG(beta=0.0)], [IndependentNoise(), DSG(0)]]
)
def test_no_op_strategies_equal_the_bare_diffusers_loop(ddim, strategies):
    # The reference is a plain diffusers loop (bare_loop): fresh noise per clip, nothing else.
    reference = bare_loop(
        PRIOR.denoiser(ddim), ddim, SHAPE, 3, 10, torch.Generator().manual_seed(0), torch.float64
    )
    assert torch.equal(sample(strategies, ddim).latents, reference)


def test_same_seed_same_bits_other_seed_other_bits():
    for scheduler in (DDIMScheduler(clip_sample=False), EulerAncestralDiscreteScheduler()):
        paper = [FNR(), PNS(alpha=4), DSG(beta=0.4)]
        a, b = sample(paper, scheduler).latents, sample(paper, scheduler).latents
        assert torch.equal(a, b)
        assert not torch.equal(a, sample(paper, scheduler, seed=1).latents)


@pytest.mark.parametrize("strategies", [[FNR()], [FNR(), DSG(beta=0.7)]])
def test_fnr_on_a_stationary_prior_is_an_exact_palindrome(ddim, strategies):
    # The exact denoiser of a stationary process commutes with time reversal, and DDIM is deterministic,
    # so reversed initial noise gives the reversed clip (docs/DESIGN.md §4); DSG's replacement is then a
    # no-op.
    x = sample(strategies, ddim).latents
    for i in (1, 2):
        clip, previous = x[:, :, 8 * i : 8 * i + 8], x[:, :, 8 * i - 8 : 8 * i]
        torch.testing.assert_close(clip, torch.flip(previous, dims=(2,)), rtol=0, atol=1e-10)


SCHEDULERS = {
    "ddim": lambda: DDIMScheduler(clip_sample=False),
    "dpm++": lambda: DPMSolverMultistepScheduler(),
    "euler": lambda: EulerDiscreteScheduler(),
}


class Spy:
    """Records every denoiser input; wraps the exact denoiser."""

    def __init__(self, denoiser):
        self.denoiser, self.inputs = denoiser, []

    def __call__(self, latents, t):
        self.inputs.append(latents.clone())
        return self.denoiser(latents, t)


@pytest.mark.parametrize("beta", [0.4, 1.0])
@pytest.mark.parametrize("name", ["ddim", "euler", "dpm++"])
@pytest.mark.parametrize(("n", "m"), [(8, 3), (6, 4)])
def test_dsg_feeds_the_mirrored_previous_latents_to_the_denoiser(name, beta, n, m):
    # The replacement itself is exact with every scheduler (same step -> same noise level and the same
    # input scaling); what a multistep solver changes is what happens after release (see schedulers.py).
    # With N < 2M the guided frames (0..M-1) and the recorded ones (N-M..N-1) overlap: this only holds if
    # the recording is taken after the guidance, as docs/DESIGN.md §2 says.
    steps, clips = 10, 3
    scheduler = SCHEDULERS[name]()
    spy = Spy(PRIOR.denoiser(scheduler))
    sampler = LongVideoSampler([PNS(alpha=1.0), DSG(beta=beta)], prompt_frames=m, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GuidanceExactnessWarning)
        sampler.sample(
            spy,
            scheduler,
            (2, 2, n, 3, 3),
            clips,
            steps,
            generator=torch.Generator().manual_seed(3),
            dtype=torch.float64,
        )
    inputs = [spy.inputs[i * steps : (i + 1) * steps] for i in range(clips)]  # scale_model_input(z_s)
    for i in range(1, clips):
        for s in range(steps):
            for j in range(n):
                same = torch.equal(inputs[i][s][:, :, j], inputs[i - 1][s][:, :, n - 1 - j])
                held = j < m and s < beta * steps * (m - j) / m  # by hand, from docs/DESIGN.md §2
                assert same == held, (i, s, j)


class Probe:
    """A guidance that asks for what DSG asks and reports the recording it is handed."""

    def __init__(self):
        self.dsg, self.seen = DSG(beta=0.4), []

    def record_spec(self, num_frames, prompt_frames, num_steps):
        return self.dsg.record_spec(num_frames, prompt_frames, num_steps)

    def __call__(self, latents, context):
        if context.previous is not None:
            self.seen.append((context.previous.frames, tuple(context.previous.latents.shape)))
        return latents


def test_only_the_declared_frames_and_steps_are_recorded(ddim):
    probe = Probe()
    sample([probe], ddim, steps=20)
    # M=3 frames (5, 6, 7) of N=8; frame 0 held for ceil(0.4 * 20) = 8 steps.
    assert set(probe.seen) == {((5, 6, 7), (8, 2, 2, 3, 3, 3))}


def test_streaming_sink_sees_every_clip(ddim):
    streamed = []
    video = sample([FNR(), DSG(beta=0.4)], ddim, on_clip=streamed.append, init={"drop_prompt_frames": True})
    quiet = sample(
        [FNR(), DSG(beta=0.4)],
        ddim,
        on_clip=lambda c: None,
        return_latents=False,
        init={"drop_prompt_frames": True},
    )
    assert quiet.latents is None and quiet.clip_starts == video.clip_starts
    assert [c.index for c in streamed] == [0, 1, 2] and [c.start for c in streamed] == video.clip_starts
    assert torch.equal(torch.cat([c.latents for c in streamed], dim=2), video.latents)
    assert torch.equal(streamed[1].initial_noise, torch.flip(streamed[0].initial_noise, dims=(2,)))


@pytest.mark.parametrize("name", SCHEDULERS)
def test_paper_sampler_runs_with_each_scheduler(name):
    scheduler = SCHEDULERS[name]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        video = sample([FNR(), PNS(alpha=4), DSG(beta=0.4)], scheduler, steps=12)
    inexact = [w for w in caught if issubclass(w.category, GuidanceExactnessWarning)]
    assert len(inexact) == (1 if name == "dpm++" else 0)
    assert video.latents.shape == (2, 2, 24, 3, 3) and torch.isfinite(video.latents).all()
    # The strategies leave clip 0 alone: it is bit for bit the plain loop's first clip.
    plain = bare_loop(PRIOR.denoiser(scheduler), scheduler, SHAPE, 1, 12, torch.Generator().manual_seed(0),
                      torch.float64)  # fmt: skip
    assert torch.equal(video.latents[:, :, :8], plain)


@pytest.mark.parametrize(
    ("strategies", "scheduler"),
    [
        ([FNR(), PNS(alpha=4)], lambda: DPMSolverMultistepScheduler()),  # no guidance
        ([FNR(), DSG(beta=0.0)], lambda: DPMSolverMultistepScheduler()),  # a guidance that does nothing
        ([FNR(), DSG(beta=0.4)], lambda: DPMSolverMultistepScheduler(solver_order=1)),  # first order = DDIM
    ],
)
def test_no_exactness_warning_where_dsg_is_exact_or_idle(strategies, scheduler):
    with warnings.catch_warnings():
        warnings.simplefilter("error", GuidanceExactnessWarning)
        sample(strategies, scheduler(), steps=5)


def test_seam_statistics_of_the_paper_strategies(ddim):
    # FNR family: the first frame of clip i shares the last frame's noise -> a (near) duplicate at the
    # seam; independent noise -> a cut. Exact for FNR alone (palindrome), approximate for PNS.
    def seam_gap(strategies):
        x = sample(strategies, ddim, steps=20).latents
        return (x[:, :, 8] - x[:, :, 7]).abs().max().item()

    assert seam_gap([FNR()]) < 1e-10
    independent = seam_gap([])
    assert independent > 0.5
    # PNS(4) keeps correlation 4/sqrt(17) ~ 0.97 with the reversed noise, so the seam stays a near-duplicate.
    assert seam_gap([FNR(), PNS(alpha=4), DSG(beta=0.4)]) < 0.25 * independent


def test_clip_cond_reaches_the_calls_of_its_clip(ddim):
    seen = []
    exact = PRIOR.denoiser(ddim)

    def denoiser(latents, t, shared, prompt):
        seen.append((shared, prompt))
        return exact(latents, t)

    sampler = LongVideoSampler([FNR()], prompt_frames=3, progress=False)
    sampler.sample(denoiser, ddim, SHAPE, 3, 4, generator=torch.Generator().manual_seed(0),
                   clip_cond=lambda i: {"prompt": f"clip {i}"}, shared="s", prompt="overridden")  # fmt: skip
    assert seen == [("s", f"clip {i}") for i in range(3) for _ in range(4)]
    with pytest.raises(TypeError, match="clip_cond must be None or a callable"):
        sampler.sample(denoiser, ddim, SHAPE, 3, 4, generator=torch.Generator().manual_seed(0), clip_cond={})


def test_float16_outputs_are_not_mistaken_for_overflow():
    # 4 * 16 * 64 * 64 values of 0.5 sum to 131072, beyond float16's 65504: the finiteness check must not
    # overflow where every single value is finite.
    def halves(latents, t):
        return torch.full_like(latents, 0.5)

    sampler = LongVideoSampler([FNR()], progress=False)
    video = sampler.sample(halves, DDIMScheduler(clip_sample=False), (1, 4, 16, 64, 64), 1, 2,
                           generator=torch.Generator().manual_seed(0), dtype=torch.float16)  # fmt: skip
    assert video.latents.dtype == torch.float16 and torch.isfinite(video.latents).all()


@pytest.mark.parametrize(
    ("strategies", "draws"),
    [([FNR()], False), ([FNR(), DSG(0.4)], False), ([IndependentNoise()], True), ([PNS(4), FNR()], True)],
)
def test_no_candidate_is_drawn_where_the_first_initializer_discards_it(ddim, strategies, draws):
    # DDIM with eta = 0 draws nothing while denoising, so the generator only moves for initial noise: with
    # FNR first, clips 1.. draw nothing (their candidate would be thrown away), and one clip or three leave
    # the generator in the same state; a composition that reads its candidate draws it for every clip.
    states = []
    for clips in (1, 3):
        generator = torch.Generator().manual_seed(0)
        LongVideoSampler(strategies, prompt_frames=3, progress=False).sample(
            PRIOR.denoiser(ddim), ddim, SHAPE, clips, 4, generator=generator, dtype=torch.float64)
        states.append(generator.get_state())
    assert torch.equal(*states) is not draws
