"""Forward-order overlap: the first M frames of clip i continue the last M of clip i-1, in forward order.

Before the denoiser call of step s < beta * T of clip i >= 1, z_s[i, j] <- z_s[i-1, N-M+j] for j < M:
the previous clip's latents of the same step (so the same noise level), frame order kept. Unlike DSG
(mirrored), the prompt frames then repeat the previous clip's last M frames, so the sampler drops them
from the output by default (`duplicates_prompt_frames`). beta = 1 holds them at every step, including
s = 0, which also makes their initial noise the previous clip's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .protocols import RecordSpec, StepContext, last_frames
from .validation import check_real


@dataclass(frozen=True)
class ForwardOverlap:
    """The first M frames become the previous clip's last M frames of the same step, for beta * T steps."""

    beta: float = 1.0  # share of the steps (from the noisiest) at which the prompt frames are replaced

    def __post_init__(self) -> None:
        check_real("beta", self.beta, 0.0, 1.0)

    @property
    def duplicates_prompt_frames(self) -> bool:
        """Whether clip i's first M frames repeat clip i-1 (the sampler then drops them): unless beta = 0."""
        return self.beta > 0

    def held_steps(self, num_steps: int) -> int:
        """The steps s = 0..h-1 with s < beta * T."""
        return min(num_steps, math.ceil(self.beta * num_steps))

    def record_spec(self, num_frames: int, prompt_frames: int, num_steps: int) -> RecordSpec:
        frames = last_frames(num_frames, prompt_frames)
        return RecordSpec(frames=frames, steps=self.held_steps(num_steps))

    def __call__(self, latents: torch.Tensor, context: StepContext) -> torch.Tensor:
        if context.previous is None or context.step_index >= self.held_steps(context.num_steps):
            return latents
        n, m = context.num_frames, context.prompt_frames
        tail = context.previous.at(context.step_index, last_frames(n, m))  # forward order
        return torch.cat([tail.to(latents), latents[:, :, m:]], dim=2)
