"""models.training.loop.train: the gradient clipping of every step, against hand-computed Adam updates."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models.training.loop import CHECKPOINT, LoopConfig, train

GRADIENT = (3.0, 4.0)  # the loss below is linear: its gradient is this vector, of norm 5, at every step
NORM = math.hypot(*GRADIENT)
LR, BETA1, BETA2, EPS = 0.1, 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults besides lr


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, dtype=torch.float64))


def run_one_step(tmp_path, grad_clip: float):
    model = Linear()
    gradient = torch.tensor(GRADIENT, dtype=torch.float64)
    config = LoopConfig(steps=1, lr=LR, checkpoint_every=1, grad_clip=grad_clip)
    losses = train("linear", model, lambda g: (model.w * gradient).sum(), config, tmp_path, progress=False)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=False)["optimiser"]["state"][0]
    return model.w.detach(), state, losses


def adam_first_step(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(update, exp_avg, exp_avg_sq) of Adam's first step from zero state, by its definition."""
    m, v = (1 - BETA1) * grad, (1 - BETA2) * grad**2
    m_hat, v_hat = m / (1 - BETA1), v / (1 - BETA2)
    return -LR * m_hat / (v_hat.sqrt() + EPS), m, v


@pytest.mark.parametrize(
    ("grad_clip", "scale"),
    [
        (1.0, 1.0 / NORM),  # the default: norm 5 clipped to 1
        (1e-8, 1e-8 / NORM),  # below Adam's eps: the first update shrinks from ~lr to ~lr * g / (g + eps)
        (100.0, 1.0),  # above the norm: untouched
    ],
)
def test_the_optimiser_sees_the_clipped_gradient(tmp_path, grad_clip, scale):
    w, state, losses = run_one_step(tmp_path, grad_clip)
    assert losses == [0.0]  # the loss at w = 0
    clipped = torch.tensor(GRADIENT, dtype=torch.float64) * scale
    update, exp_avg, exp_avg_sq = adam_first_step(clipped)
    # clip_grad_norm_ divides by (norm + 1e-6): relative 2e-7 off the exact scale, inside rtol.
    torch.testing.assert_close(state["exp_avg"], exp_avg, rtol=1e-6, atol=0)
    torch.testing.assert_close(state["exp_avg_sq"], exp_avg_sq, rtol=1e-6, atol=0)
    torch.testing.assert_close(w, update, rtol=1e-6, atol=0)


def test_a_tiny_clip_changes_the_parameters_themselves(tmp_path):
    # Adam's first step is lr * g / (|g| + eps), ~lr * sign(g) for any clip above eps, so only a clip below
    # eps shows in the parameters: w = -lr * (0.6e-8, 0.8e-8) / ((0.6e-8, 0.8e-8) + 1e-8) = -lr * (3/8, 4/9).
    clipped, _, _ = run_one_step(tmp_path / "clipped", 1e-8)
    free, _, _ = run_one_step(tmp_path / "free", 100.0)
    torch.testing.assert_close(clipped, torch.tensor([-LR * 3 / 8, -LR * 4 / 9], dtype=torch.float64),
                               rtol=1e-6, atol=0)  # fmt: skip
    torch.testing.assert_close(free, torch.full((2,), -LR, dtype=torch.float64), rtol=1e-6, atol=0)


def test_a_zero_gradient_norm_bound_is_refused():
    with pytest.raises(ValueError, match="grad_clip must be > 0"):
        LoopConfig(steps=1, lr=0.1, grad_clip=0.0)
