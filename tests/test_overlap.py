"""ForwardOverlap: the forward-order replacement by hand, in the sampler, and dropping duplicated frames."""

import pytest
import torch
from diffusers import DDIMScheduler
from test_sampler import Spy  # records every denoiser input

from models import GaussianVideoPrior
from samplers import DSG, FNR, PNS, ForwardOverlap, LongVideoSampler, Recording, StepContext

PRIOR = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=2.0)


def step_context(s, t, m, n, previous):
    return StepContext(1, s, t, torch.tensor(999), m, n, previous)


@pytest.mark.parametrize(("beta", "held"), [(1.0, 10), (0.45, 5), (0.4, 4), (0.0, 0)])
def test_replacement_is_the_previous_clips_last_frames_in_forward_order(beta, held):
    n, m, t = 8, 3, 10
    spec = ForwardOverlap(beta).record_spec(n, m, t)
    assert spec.frames == (5, 6, 7) and spec.steps == held  # held = the s in 0..T-1 with s < beta * T
    recorded = torch.arange(held * m, dtype=torch.float64).reshape(held, 1, 1, m, 1, 1)
    recorded = recorded.expand(-1, 2, 2, -1, 2, 2)  # (steps, B, C, M, H, W): step s, column j = s * M + j
    previous = Recording(spec.frames, recorded)
    latents = -torch.ones(2, 2, n, 2, 2, dtype=torch.float64)
    for s in range(t):
        out = ForwardOverlap(beta)(latents, step_context(s, t, m, n, previous))
        for j in range(n):
            if j < m and s < beta * t:  # z_s[i, j] <- z_s[i-1, N-M+j]: recorded column j
                assert torch.equal(out[:, :, j], recorded[s, :, :, j]), (s, j)
            else:
                assert torch.equal(out[:, :, j], latents[:, :, j]), (s, j)


def test_first_clip_is_left_alone():
    latents = torch.zeros(1, 1, 8, 1, 1)
    assert ForwardOverlap()(latents, step_context(0, 10, 3, 8, None)) is latents


@pytest.mark.parametrize("beta", [-0.1, 1.5, float("nan")])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match=r"beta must be in \[0.0, 1.0\]"):
        ForwardOverlap(beta)


@pytest.mark.parametrize(("beta", "n", "m"), [(1.0, 8, 3), (0.5, 6, 4)])
def test_the_denoiser_sees_the_previous_clips_frames_forward(beta, n, m):
    # N < 2M in the second case: the guided frames overlap the recorded ones, which works only because
    # the recording is taken after the guidance (docs/DESIGN.md §2).
    steps, clips, scheduler = 10, 3, DDIMScheduler(clip_sample=False)
    spy = Spy(PRIOR.denoiser(scheduler))
    LongVideoSampler([PNS(1.0), ForwardOverlap(beta)], prompt_frames=m, progress=False).sample(
        spy, scheduler, (2, 2, n, 3, 3), clips, steps, generator=torch.Generator().manual_seed(3),
        dtype=torch.float64,
    )  # fmt: skip
    inputs = [spy.inputs[i * steps : (i + 1) * steps] for i in range(clips)]
    for i in range(1, clips):
        for s in range(steps):
            for j in range(m):
                same = torch.equal(inputs[i][s][:, :, j], inputs[i - 1][s][:, :, n - m + j])
                assert same == (s < beta * steps), (i, s, j)


def test_prompt_frames_are_dropped_by_default_only_when_they_duplicate():
    assert LongVideoSampler([ForwardOverlap()]).drop_prompt_frames is True
    assert LongVideoSampler([FNR(), ForwardOverlap(0.5)]).drop_prompt_frames is True
    assert LongVideoSampler([ForwardOverlap(0.0)]).drop_prompt_frames is False  # replaces nothing
    assert LongVideoSampler([FNR(), PNS(4), DSG(0.4)]).drop_prompt_frames is False  # the paper keeps them
    assert LongVideoSampler([]).drop_prompt_frames is False
    assert LongVideoSampler([ForwardOverlap()], drop_prompt_frames=False).drop_prompt_frames is False
    assert LongVideoSampler([FNR()], drop_prompt_frames=True).drop_prompt_frames is True
    with pytest.raises(TypeError, match="drop_prompt_frames must be True, False or None"):
        LongVideoSampler([], drop_prompt_frames="yes")


def test_output_drops_the_duplicated_prompt_frames():
    scheduler = DDIMScheduler(clip_sample=False)

    def sample(**kwargs):
        sampler = LongVideoSampler([ForwardOverlap()], prompt_frames=3, progress=False, **kwargs)
        denoiser, generator = PRIOR.denoiser(scheduler), torch.Generator().manual_seed(0)
        return sampler.sample(denoiser, scheduler, (1, 2, 8, 3, 3), 3, 5, generator=generator)

    dropped, kept = sample(), sample(drop_prompt_frames=False)
    assert dropped.clip_starts == [0, 8, 13] and dropped.latents.shape[2] == 18
    assert kept.clip_starts == [0, 8, 16]
    assert torch.equal(dropped.latents[:, :, 8:13], kept.latents[:, :, 11:16])
