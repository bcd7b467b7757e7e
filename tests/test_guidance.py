"""DSG: the staged schedule (which frame is held at which step) and the mirrored replacement."""

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from samplers import DSG, Recording, StepContext
from samplers.guidance import held_frames


def held_steps(j, m, t, beta):
    """Steps s in 0..T-1 at which DSG holds frame j."""
    return sum(held_frames(s, m, t, beta) > j for s in range(t))


def test_paper_configuration_by_hand():
    # T=50, M=4, beta=0.4: frame j held while s < 0.4*50*(4-j)/4 = 20, 15, 10, 5.
    assert [held_steps(j, 4, 50, 0.4) for j in range(4)] == [20, 15, 10, 5]
    # T=25, M=4, beta=0.4: thresholds 10, 7.5, 5, 2.5 -> 10, 8, 5, 3 steps.
    assert [held_steps(j, 4, 25, 0.4) for j in range(4)] == [10, 8, 5, 3]


@given(
    beta=st.floats(0.0, 1.0),
    t=st.integers(1, 60),
    m=st.integers(1, 8),
)
def test_held_steps_match_the_paper_inequality(beta, t, m):
    """Frame j is held for ceil(x) steps, x = beta*T*(M-j)/M: the s in 0..T-1 with s < x."""
    for j in range(m):
        exact = Fraction(beta) * t * (m - j) / m  # exact rational value of the threshold
        count = held_steps(j, m, t, beta)
        # Paper: t' > (1-beta)T + beta*T*j/M with t' = T - s  <=>  s < exact.
        paper = sum(Fraction(t - s) > (1 - Fraction(beta)) * t + Fraction(beta) * t * j / m for s in range(t))
        if abs(exact - round(exact)) > Fraction(1, 10**9):  # away from an integer, float == exact
            assert count == math.ceil(exact) == paper
        else:  # at an integer threshold the float expression may land on either side by one ulp
            assert abs(count - paper) <= 1
        # ... and on which side is the official code's: (M - j) * (T / M) * beta, in that order.
        assert count == math.ceil((m - j) * (t / m) * beta)


def test_official_order_of_operations_at_an_integer_threshold():
    # T=6, M=6, beta=0.4, j=1: (6-1)*(6/6)*0.4 = 2.0 exactly -> steps 0, 1 (2 steps); the algebraically
    # equal beta*T*(M-j)/M = 2.0000000000000004 in floats would hold frame 1 for 3 steps.
    assert 0.4 * 6 * 5 / 6 > 2.0 and (6 - 1) * (6 / 6) * 0.4 == 2.0
    assert held_steps(1, 6, 6, 0.4) == 2


def test_frames_are_held_in_decreasing_order():
    for s in range(50):
        h = held_frames(s, 4, 50, 0.4)
        assert h == sum(s < x for x in (20, 15, 10, 5))


def step_context(s, t=10, m=3, n=8, previous=None):
    return StepContext(1, s, t, torch.tensor(999), m, n, previous)


def test_replacement_is_mirrored_previous_latents():
    n, m, t = 8, 3, 10
    spec = DSG(beta=0.6).record_spec(n, m, t)
    assert spec.frames == (5, 6, 7)  # the last M frames
    assert spec.steps == 6  # frame 0 is held for ceil(0.6 * 10) steps
    recorded = torch.arange(spec.steps * m, dtype=torch.float64).reshape(spec.steps, 1, 1, m, 1, 1)
    previous = Recording(spec.frames, recorded.expand(-1, 2, 2, -1, 2, 2))
    latents = -torch.ones(2, 2, n, 2, 2, dtype=torch.float64)
    for s in range(t):
        out = DSG(beta=0.6)(latents.clone(), step_context(s, t, m, n, previous))  # it may edit in place
        for j in range(n):
            if j < m and s < 0.6 * t * (m - j) / m:  # held: frame N-1-j of the previous clip, step s
                k = spec.frames.index(n - 1 - j)
                assert torch.equal(out[:, :, j], recorded[s, :, :, k].expand(2, 2, 2, 2)), (s, j)
            else:
                assert torch.equal(out[:, :, j], latents[:, :, j]), (s, j)


def test_clip_zero_and_beta_zero_leave_latents_alone():
    latents = torch.randn(1, 2, 8, 2, 2, generator=torch.Generator().manual_seed(0))
    assert DSG(beta=0.9)(latents, step_context(0)) is latents
    previous = Recording((5, 6, 7), torch.zeros(0, 1, 2, 3, 2, 2))
    assert DSG(beta=0.0).record_spec(8, 3, 10).steps == 0
    kept = latents.clone()  # DSG may write in place: give it a copy and compare with the original
    assert torch.equal(DSG(beta=0.0)(kept, step_context(0, previous=previous)), latents)
    assert torch.equal(kept, latents)


@pytest.mark.parametrize("beta", [-0.1, 1.5, float("nan"), float("inf")])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match=r"beta must be in \[0.0, 1.0\]"):
        DSG(beta=beta)
