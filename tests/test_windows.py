"""Windowed co-denoising: window schedules cover every frame, fusion weights sum to one per frame, one
window over a one-clip video is the clip-by-clip sampler's clip bit for bit, and the fused output is the
weighted mean of the windows' outputs (hand-computed on a backbone whose output is a known function)."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler
from hypothesis import given
from hypothesis import strategies as st

from models import GaussianVideoPrior
from samplers import LongVideoSampler
from samplers.windows import ContextWindows, WindowedSampler


@given(size=st.integers(1, 12), stride_less=st.integers(0, 11), length=st.integers(1, 40),
       schedule=st.sampled_from(["static", "uniform", "looped"]), fusion=st.sampled_from(["flat", "pyramid"]),
       step=st.integers(0, 7))  # fmt: skip
def test_every_frame_is_covered_and_its_weights_sum_to_one(size, stride_less, length, schedule, fusion, step):
    windows = ContextWindows(size, max(1, size - stride_less), schedule, fusion)
    frames = windows.frames(length, step)
    total = torch.zeros(length, dtype=torch.float64)
    for f, w in zip(frames, windows.normalised(frames, length), strict=True):
        assert len(f) == min(size, length) and all(0 <= j < length for j in f)
        total.index_add_(0, torch.tensor(f), w)
    torch.testing.assert_close(total, torch.ones(length, dtype=torch.float64), rtol=0, atol=1e-12)


def test_schedules_by_hand():
    assert ContextWindows(4, 2, "static").starts(10) == [0, 2, 4, 6]
    assert ContextWindows(4, 3, "static").starts(10) == [0, 3, 6]  # the last flush with the end
    assert ContextWindows(4, 2, "uniform").starts(10, step=1) == [0, 1, 3, 5, 6]  # shifted by 1, clamped
    assert ContextWindows(4, 2, "looped").frames(6, step=0)[-1] == [4, 5, 0, 1]  # wraps around
    assert ContextWindows(4, 2, fusion="pyramid").weights().tolist() == [1, 2, 2, 1]
    with pytest.raises(ValueError, match=r"stride must be an integer in \[1, 4\]; got 5"):
        ContextWindows(4, 5)
    with pytest.raises(ValueError, match=r"schedule must be one of \('static', 'uniform', 'looped'\)"):
        ContextWindows(4, 2, "random")


SCHEDULERS = [DDIMScheduler(clip_sample=False), FlowMatchEulerDiscreteScheduler(shift=3.0)]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_one_window_over_one_clip_is_the_clip_by_clip_sampler(scheduler):
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=3.0)
    shape, denoiser = (2, 2, 8, 3, 3), prior.denoiser(scheduler)
    windowed = WindowedSampler(ContextWindows(8, 4))
    windowed = windowed.sample(denoiser, scheduler, shape, 6, generator=torch.Generator().manual_seed(0))
    clip = LongVideoSampler([], progress=False)
    clip = clip.sample(denoiser, scheduler, shape, 1, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(windowed.latents, clip.latents)


def test_the_fused_output_is_the_weighted_mean_of_the_windows():
    # a backbone whose output for a window is the window's own mean frame: frame j of the fused output is
    # sum_w W_w(j) mean(window w) / sum_w W_w(j), computed here window by window
    windows = ContextWindows(4, 2, "static", "pyramid")
    x = torch.arange(10, dtype=torch.float64).reshape(1, 1, 10, 1, 1)
    fused = WindowedSampler(windows)._fused_output(lambda z, t: z.mean(dim=2, keepdim=True).expand_as(z),
                                                   x, torch.tensor(0), 0, {})  # fmt: skip
    expected = torch.zeros(10, dtype=torch.float64)
    weight = torch.zeros(10, dtype=torch.float64)
    for start in (0, 2, 4, 6):
        for k, w in enumerate([1, 2, 2, 1]):
            expected[start + k] += w * (start + 1.5)
            weight[start + k] += w
    torch.testing.assert_close(fused.flatten(), expected / weight, rtol=0, atol=1e-12)
