"""PYoCo noise priors: unit variance, the closed-form inter-frame correlations, the official bug caught."""

import math

import pytest
import torch
from diffusers import DDIMScheduler
from hypothesis import given
from hypothesis import strategies as st

from models import GaussianVideoPrior
from samplers import FNR, LongVideoSampler, NoiseContext, PYoCoMixed, PYoCoProgressive


def first_clip(seed):
    return NoiseContext(0, 2, None, torch.Generator().manual_seed(seed))


def randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def mixed_correlation(alpha, j, k):
    """a^2 / (1 + a^2) between distinct frames (the shared part's variance), 1 on the diagonal."""
    return 1.0 if j == k else (1.0 if math.isinf(alpha) else alpha**2 / (1 + alpha**2))


def progressive_correlation(alpha, j, k):
    """rho^|j-k|, rho = a / sqrt(1 + a^2): an AR(1) chain started in its stationary law."""
    rho = 1.0 if math.isinf(alpha) else alpha / math.sqrt(1 + alpha**2)
    return rho ** abs(j - k)


# Each frame pools `elements` i.i.d. values (B * C * H * W). Sample variance of unit-variance normals has
# standard error sqrt(2/n); a correlation rho has standard error (1 - rho^2)/sqrt(n). We allow 6 standard
# errors (false-failure rate ~1e-9 per check, so ~1e-4 over all hypothesis examples and frame pairs).
def check_statistics(noise, correlation):
    n = noise.shape[2]
    frames = noise.transpose(0, 2).reshape(n, -1)  # (N, elements): frame j's pooled values
    count = frames.shape[1]
    for j in range(n):
        assert abs(frames[j].var().item() - 1.0) < 6 * math.sqrt(2 / count), f"unit variance, frame {j}"
        assert abs(frames[j].mean().item()) < 6 / math.sqrt(count)
    empirical = torch.corrcoef(frames)
    for j in range(n):
        for k in range(j + 1, n):
            rho = correlation(j, k)
            assert abs(empirical[j, k].item() - rho) < 6 * (1 - rho**2) / math.sqrt(count) + 1e-9, (j, k)


ALPHAS = st.one_of(st.sampled_from([0.0, 1.0, 4.0]), st.floats(0.0, 20.0))


@given(alpha=ALPHAS, n=st.integers(2, 16), seed=st.integers(0, 2**16))
def test_mixed_prior_statistics(alpha, n, seed):
    noise = PYoCoMixed(alpha)(randn((4, 4, n, 32, 32), seed), first_clip(seed + 1))  # 2^14 per frame
    check_statistics(noise, lambda j, k: mixed_correlation(alpha, j, k))


@given(alpha=ALPHAS, n=st.integers(2, 16), seed=st.integers(0, 2**16))
def test_progressive_prior_statistics(alpha, n, seed):
    noise = PYoCoProgressive(alpha)(randn((4, 4, n, 32, 32), seed), first_clip(seed + 1))
    check_statistics(noise, lambda j, k: progressive_correlation(alpha, j, k))


@given(alpha=st.floats(0.0, 1e6))
def test_weights_are_standard_deviations_whose_squares_sum_to_one(alpha):
    mixed, progressive = PYoCoMixed(alpha), PYoCoProgressive(alpha)
    assert mixed.kept_weight**2 + mixed.fresh_std**2 == pytest.approx(1.0, abs=1e-12)
    assert progressive.kept_weight**2 + progressive.fresh_std**2 == pytest.approx(1.0, abs=1e-12)
    assert mixed.kept_weight**2 == pytest.approx(alpha**2 / (1 + alpha**2), abs=1e-12)


def test_limits_by_hand():
    candidate = randn((2, 2, 5, 2, 2), 0)
    # alpha = 0: the candidate itself (i.i.d. frames).
    assert torch.equal(PYoCoMixed(0.0)(candidate, first_clip(1)), candidate)
    assert torch.equal(PYoCoProgressive(0.0)(candidate, first_clip(1)), candidate)
    # alpha = inf: one noise for every frame (the shared one, or frame 0's).
    mixed = PYoCoMixed(math.inf)(candidate, first_clip(1))
    assert all(torch.equal(mixed[:, :, j], mixed[:, :, 0]) for j in range(5))
    progressive = PYoCoProgressive(math.inf)(candidate, first_clip(1))
    assert torch.equal(progressive, candidate[:, :, :1].expand_as(candidate))


def test_later_clips_keep_their_candidate_and_same_seed_same_bits():
    candidate, previous = randn((1, 2, 6, 2, 2), 0), randn((1, 2, 6, 2, 2), 1)
    later = NoiseContext(1, 2, previous, torch.Generator().manual_seed(0))
    for prior in (PYoCoMixed(2.0), PYoCoProgressive(2.0)):
        assert prior(candidate, later) is candidate
    a, b = PYoCoMixed(2.0)(candidate, first_clip(3)), PYoCoMixed(2.0)(candidate, first_clip(3))
    assert torch.equal(a, b) and not torch.equal(a, PYoCoMixed(2.0)(candidate, first_clip(4)))


class OfficialMixed(PYoCoMixed):
    """The official code's confusion: a^2/(1+a^2) and 1/(1+a^2) used as standard deviations."""

    @property
    def kept_weight(self):
        return self.alpha**2 / (1 + self.alpha**2)

    @property
    def fresh_std(self):
        return 1 / (1 + self.alpha**2)


class OfficialProgressive(PYoCoProgressive):
    """The official code's confusion: 1/(1+a^2) used as the fresh part's standard deviation."""

    @property
    def fresh_std(self):
        return 1 / (1 + self.alpha**2)


@pytest.mark.parametrize("alpha", [1.0, 4.0])
@pytest.mark.parametrize(
    ("prior", "correlation"),
    [(OfficialMixed, mixed_correlation), (OfficialProgressive, progressive_correlation)],
)
def test_statistics_catch_the_std_vs_variance_bug(prior, correlation, alpha):
    # Buggy variances (frame 1 of the progressive prior): mixed (a^4 + 1)/(1 + a^2)^2 = 0.5 at a=1, 0.889
    # at a=4; progressive a^2/(1+a^2) + 1/(1+a^2)^2 = 0.75 at a=1, 0.945 at a=4. The tolerance with 2^16
    # values per frame is 6*sqrt(2/2^16) ~ 0.033, below the smallest gap 0.055.
    noise = prior(alpha)(randn((4, 4, 8, 64, 64), 2), first_clip(3))
    with pytest.raises(AssertionError, match="unit variance"):
        check_statistics(noise, lambda j, k: correlation(alpha, j, k))


def test_composes_with_fnr_in_the_sampler():
    # The prior shapes clip 0 only (from the sampler's fresh candidate); FNR then carries it forward.
    prior, scheduler = GaussianVideoPrior(8, (2, 2, 2)), DDIMScheduler(clip_sample=False)

    def initial_noise(strategies):
        clips = []
        sampler = LongVideoSampler(strategies, prompt_frames=2, progress=False)
        sampler.sample(prior.denoiser(scheduler), scheduler, (1, 2, 8, 2, 2), 2, 2,
                       generator=torch.Generator().manual_seed(0), on_clip=clips.append)  # fmt: skip
        return [clip.initial_noise for clip in clips]

    candidate = initial_noise([])[0]  # the sampler's first draw, before any initializer
    shaped, carried = initial_noise([PYoCoProgressive(4.0), FNR()])
    ar = [candidate[:, :, 0]]
    for j in range(1, 8):  # by hand: eps_j = 4/sqrt(17) eps_{j-1} + 1/sqrt(17) ind_j
        ar.append(4 / math.sqrt(17) * ar[-1] + 1 / math.sqrt(17) * candidate[:, :, j])
    torch.testing.assert_close(shaped, torch.stack(ar, dim=2), rtol=1e-6, atol=1e-6)
    assert torch.equal(carried, torch.flip(shaped, dims=(2,)))
