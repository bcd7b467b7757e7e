"""What a long-video method costs in backbone work: `CountingDenoiser` counts frame evaluations.

A frame evaluation is one latent frame of one video through the backbone once: a call on latents
(B, C, F, H, W) adds F (the batch holds B videos made in parallel, each paying F). Calls on latents that
require grad (a guidance differentiating the x0 estimate, e.g. reconstruction guidance) add F backward
evaluations as well: their gradient costs about one more pass. `per_output_frame(L)` divides both by the
L frames of each output video.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

COST = ("frame_evals", "backward_evals")  # the columns of `per_output_frame`, beside the quality metrics


class CountingDenoiser:
    """A VideoDenoiser that counts the frame evaluations of the one it wraps (and passes it everything,
    including its `frame_timesteps` declaration)."""

    def __init__(self, denoiser: Callable[..., torch.Tensor]) -> None:
        self.denoiser = denoiser
        self.forward_frames = 0
        self.backward_frames = 0

    @property
    def frame_timesteps(self) -> bool:
        return bool(getattr(self.denoiser, "frame_timesteps", False))

    def __call__(self, latents: torch.Tensor, timestep: Any, **cond: Any) -> torch.Tensor:
        self.forward_frames += latents.shape[2]
        if latents.requires_grad:
            self.backward_frames += latents.shape[2]
        return self.denoiser(latents, timestep, **cond)

    def per_output_frame(self, frames: int) -> dict[str, float]:
        """{"frame_evals": forward, "backward_evals": backward} evaluations per output frame."""
        return {"frame_evals": self.forward_frames / frames, "backward_evals": self.backward_frames / frames}
