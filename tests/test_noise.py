"""FNR, PNS and IndependentNoise: exact index arithmetic and noise statistics (docs/DESIGN.md §2)."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from samplers import FNR, PNS, IndependentNoise, NoiseContext


def context(previous, m, seed=1, clip_index=1):
    return NoiseContext(clip_index, m, previous, torch.Generator().manual_seed(seed))


def randn(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@given(n=st.integers(2, 12), seed=st.integers(0, 2**16))
def test_fnr_is_exact_reversal_and_involution(n, seed):
    previous = randn((2, 3, n, 2, 2), seed)
    once = FNR()(randn(previous.shape, seed + 1), context(previous, 1))
    for j in range(n):  # hand-written index arithmetic: zT[i, j] = zT[i-1, N-1-j]
        assert torch.equal(once[:, :, j], previous[:, :, n - 1 - j])
    twice = FNR()(randn(previous.shape, seed + 2), context(once, 1))
    assert torch.equal(twice, previous)


def test_first_clip_keeps_candidate():
    candidate = randn((1, 2, 6, 2, 2), 0)
    for strategy in (FNR(), PNS(alpha=2.0), IndependentNoise()):
        assert torch.equal(strategy(candidate, context(None, 2, clip_index=0)), candidate)


def test_independent_noise_is_the_candidate():
    candidate, previous = randn((1, 2, 6, 2, 2), 0), randn((1, 2, 6, 2, 2), 1)
    assert torch.equal(IndependentNoise()(candidate, context(previous, 2)), candidate)


# Statistics of FNR then PNS over many i.i.d. elements. For n pooled samples of unit-variance noise,
# the sample variance has standard error sqrt(2/n) and a correlation rho has standard error
# (1 - rho^2)/sqrt(n); we allow 6 standard errors (false-failure rate ~1e-9 per check).
ELEMENTS = 2**16  # B * C * H * W per frame


def fnr_pns(alpha, n, m, seed, pns=PNS):
    previous = randn((16, 4, n, 32, 32), seed)
    ctx = context(previous, m, seed + 1)
    return previous, pns(alpha=alpha)(FNR()(randn(previous.shape, seed + 2), ctx), ctx)


def check_pns_statistics(previous, noise, alpha, m):
    n = noise.shape[2]
    head, tail = noise[:, :, :m], noise[:, :, m:]
    assert torch.equal(head, torch.flip(previous, dims=(2,))[:, :, :m])  # correlation exactly 1 for j < M
    count = tail.numel()
    assert abs(tail.var().item() - 1.0) < 6 * math.sqrt(2 / count), "PNS must keep unit variance"
    assert abs(tail.mean().item()) < 6 / math.sqrt(count)
    rho = alpha / math.sqrt(1 + alpha**2)
    reversed_previous = torch.flip(previous, dims=(2,))[:, :, m:n]
    corr = torch.corrcoef(torch.stack([tail.flatten(), reversed_previous.flatten()]))[0, 1].item()
    assert abs(corr - rho) < 6 * (1 - rho**2) / math.sqrt(count) + 1e-9


@given(
    alpha=st.one_of(st.floats(0.0, 20.0), st.sampled_from([0.0, 4.0])),
    n=st.integers(2, 16),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_pns_marginals_and_correlation(alpha, n, data, seed):
    m = data.draw(st.integers(1, n - 1), label="M")
    previous, noise = fnr_pns(alpha, n, m, seed)
    check_pns_statistics(previous, noise, alpha, m)


def test_pns_infinite_alpha_is_fnr():
    previous = randn((1, 2, 8, 3, 3), 0)
    ctx = context(previous, 3)
    assert torch.equal(PNS(alpha=math.inf)(FNR()(randn(previous.shape, 1), ctx), ctx), FNR()(None, ctx))


def test_pns_weights():
    assert PNS(alpha=4).kept_weight == pytest.approx(4 / math.sqrt(17), abs=1e-15)
    assert PNS(alpha=4).fresh_std == pytest.approx(1 / math.sqrt(17), abs=1e-15)
    assert PNS(alpha=0).kept_weight == 0.0 and PNS(alpha=0).fresh_std == 1.0


class StdVarianceBugPNS(PNS):
    """The official code's confusion, applied to PNS: 1/(1+alpha^2) used as a standard deviation."""

    @property
    def fresh_std(self) -> float:
        return 1.0 / (1.0 + self.alpha**2)


@pytest.mark.parametrize("alpha", [1.0, 4.0])
def test_statistics_catch_the_std_vs_variance_bug(alpha):
    # With the bug the tail variance is alpha^2/(1+alpha^2) + 1/(1+alpha^2)^2: 0.75 at alpha=1, 0.945 at
    # alpha=4, i.e. 0.25 and 0.055 below 1, while the tolerance above is 6*sqrt(2/(12*2^16)) ~ 0.0068.
    previous, noise = fnr_pns(alpha, 16, 4, 7, pns=StdVarianceBugPNS)
    with pytest.raises(AssertionError, match="unit variance"):
        check_pns_statistics(previous, noise, alpha, 4)


def test_pns_alone_mixes_fresh_noise_with_fresh_noise():
    # Composition semantics: without FNR the candidate is fresh, so the tail stays N(0, 1) and is
    # uncorrelated with the previous noise (6 standard errors of 1/sqrt(n)).
    previous = randn((16, 4, 8, 32, 32), 3)
    ctx = context(previous, 2, 4)
    noise = PNS(alpha=4)(randn(previous.shape, 5), ctx)
    tail = noise[:, :, 2:]
    assert abs(tail.var().item() - 1) < 6 * math.sqrt(2 / tail.numel())
    corr = torch.corrcoef(torch.stack([tail.flatten(), torch.flip(previous, dims=(2,))[:, :, 2:].flatten()]))
    assert abs(corr[0, 1].item()) < 6 / math.sqrt(tail.numel())


def test_pns_then_fnr_equals_fnr():
    previous, candidate = randn((1, 2, 8, 3, 3), 0), randn((1, 2, 8, 3, 3), 1)
    ctx = context(previous, 3)
    assert torch.equal(FNR()(PNS(alpha=1.0)(candidate, ctx), ctx), torch.flip(previous, dims=(2,)))


def test_pns_is_deterministic_given_the_generator():
    previous, candidate = randn((1, 2, 8, 3, 3), 0), randn((1, 2, 8, 3, 3), 1)
    a = PNS(alpha=2.0)(candidate, context(previous, 3, seed=9))
    b = PNS(alpha=2.0)(candidate, context(previous, 3, seed=9))
    c = PNS(alpha=2.0)(candidate, context(previous, 3, seed=10))
    assert torch.equal(a, b) and not torch.equal(a, c)
