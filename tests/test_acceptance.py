"""The issue's user snippet as written, and the paper's strategies behaving as the mathematics says."""

import pytest
import torch
from diffusers import DDIMScheduler

from benchmarks.compare import CompareConfig, run
from benchmarks.metrics import mirror_correlation, seam_jump_ratio
from models import GaussianVideoPrior
from samplers import DSG, FNR, PNS, LongVideoSampler


def test_user_snippet():
    prior = GaussianVideoPrior(num_frames=16, frame_shape=(4, 8, 8), lengthscale=3.0)
    scheduler = DDIMScheduler(clip_sample=False)
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=4, progress=False)
    video = sampler.sample(
        prior.denoiser(scheduler), scheduler, clip_shape=(2, 4, 16, 8, 8), num_clips=4,
        num_inference_steps=50, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert video.latents.shape == (2, 4, 64, 8, 8)
    assert video.clip_starts == [0, 16, 32, 48]
    assert seam_jump_ratio(video.latents, video.clip_starts) < 0.2
    assert mirror_correlation(video.latents, video.clip_starts, skip=4) > 0.5
    reference = prior.sample_long(num_frames=64, batch=2, generator=torch.Generator().manual_seed(1))
    assert reference.shape == (2, 4, 64, 8, 8)
    assert abs(mirror_correlation(reference, video.clip_starts, skip=4)) < 0.05


@pytest.fixture(scope="module")
def table():
    # The acceptance setting (DDIM 50 steps, N=16, M=4, lengthscale 3, 4 clips) with 32 samples instead
    # of 256: ~3e5 pooled pairs per correlation (standard error ~0.002), far inside every margin below.
    config = CompareConfig(samples=32)
    return {
        row["strategies"]: row
        for row in run(config, ["independent", "fnr", "fnr,pns:4", "fnr,pns:4,dsg:0.4"])
    }


def test_independent_noise_cuts_at_every_seam(table):
    assert table["independent"]["seam_jump_ratio"] > 5


@pytest.mark.parametrize("name", ["fnr", "fnr,pns:4", "fnr,pns:4,dsg:0.4"])
def test_paper_strategies_duplicate_the_seam_frame_and_ping_pong(table, name):
    # The true process has k(2j+1) <= k(9) = exp(-4.5) ~ 0.011 between mirrored frames j >= 4.
    assert table["reference process"]["mirror_correlation"] < 0.05
    assert table[name]["seam_jump_ratio"] < 0.2
    assert table[name]["mirror_correlation"] > 0.5
