"""Latent guidance: DSG, denoising with staged guidance (docs/DESIGN.md §2).

Before the denoiser call of step s of clip i >= 1, frame j < M is replaced by the previous clip's latent
of the same step, mirrored: z_s[i, j] <- z_s[i-1, N-1-j], while s < beta * T * (M - j) / M. Frame 0 is
held for the first beta*T steps, frame M-1 for beta*T/M. In the paper's notation (t counting down from
T) this is t > (1 - beta) T + beta T j / M.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .protocols import RecordSpec, StepContext, last_frames
from .validation import check_real


def dsg_threshold(j: int, prompt_frames: int, num_steps: int, beta: float) -> float:
    """Frame j is held while s < threshold; the official code's order of operations, in floats."""
    return (prompt_frames - j) * (num_steps / prompt_frames) * beta


def held_frames(step: int, prompt_frames: int, num_steps: int, beta: float) -> int:
    """How many leading frames (j = 0..h-1) are held at `step`; the threshold falls as j rises."""
    return sum(step < dsg_threshold(j, prompt_frames, num_steps, beta) for j in range(prompt_frames))


@dataclass(frozen=True)
class DSG:
    """Guide the first M frames toward the previous clip's mirrored latents for a `beta` share of steps."""

    beta: float = 0.4

    def __post_init__(self) -> None:
        check_real("beta", self.beta, 0.0, 1.0)

    def record_spec(self, num_frames: int, prompt_frames: int, num_steps: int) -> RecordSpec:
        # The last M frames (mirrors of frames M-1..0), during the steps at which frame 0 is held.
        steps = min(num_steps, math.ceil(dsg_threshold(0, prompt_frames, num_steps, self.beta)))
        return RecordSpec(frames=last_frames(num_frames, prompt_frames), steps=steps)

    def __call__(self, latents: torch.Tensor, context: StepContext) -> torch.Tensor:
        if context.previous is None:
            return latents
        h = held_frames(context.step_index, context.prompt_frames, context.num_steps, self.beta)
        if h == 0:
            return latents
        n = context.num_frames
        mirrored = context.previous.at(context.step_index, tuple(range(n - 1, n - 1 - h, -1)))
        latents[:, :, :h] = mirrored  # in place (LatentGuidance): h frames written, not the clip copied
        return latents
