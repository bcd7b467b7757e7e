"""Reconstruction guidance (Ho et al. 2022, "Video Diffusion Models", §3.1), clip by clip.

Clip i >= 1 should continue the previous clip's final latents x_prev of its last M frames (forward
order) with its first M frames. Before each denoiser call of step s, the new frames z^b (j >= M) take
a gradient step on the mismatch of the x0 estimate of the prompt frames (j < M):

    z^b_s <- z^b_s - w_s * grad_{z^b} || xhat0(z_s)[:, :, :M] - x_prev ||^2,
    w_s = (weight / T) * sqrt(abar_t) * r_t^2 / 2,

where xhat0 is the denoiser's x0 estimate at this step (StepContext.predict_x0), abar_t the
VP-equivalent noise level of z_s and r_t its scale (samplers.noise_level: z_s = r_t times a VP latent).
For VP schedules r_t = 1 and this is Ho et al.'s step; for any other schedule (Euler's VE state,
rectified flow) it is the same step taken on the VP latent z_s / r_t and mapped back (a step
c * grad on z / r is r^2 c * grad on z), so one weight means the same guidance under every schedule.
The prompt frames z^a are left as they are: in Ho et al. they are replaced by noised conditioning
frames, which `ForwardOverlap` does when listed first. Ho et al. add -(w_r sqrt(abar_t) / 2) grad to
the x0 estimate of z^b; we take the same step on z^b, where the scheduler then sees it, so that
the guidance is a plain `LatentGuidance`, with w_r = weight / T because the T steps add up: `weight` is
the guidance of the whole trajectory, so the default (10, `benchmarks.compare.GAP_CLOSING` with
ForwardOverlap) suits any number of steps. What each weight does on the analytic backbone is measured in
the report (benchmarks/report/report.md: the trade-off curve), not quoted here.

Cost: one extra denoiser forward and backward per step of clips i >= 1 (the x0 estimate with a graph),
about three times the denoiser work of a step without it. Needs a schedule whose model output converts
to x0 exactly (Schedule.x0_problem: VP, Euler and flow-matching schedulers with their prediction
types); others are refused before any work. At abar = 0 (the first step of a zero-terminal-SNR
schedule, or sigma = 1 of a flow schedule) the step is zero and is skipped.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import torch

from .noise_level import NoiseLevel
from .protocols import RecordSpec, StepContext, last_frames
from .schedulers import x0_conversion_problem
from .validation import check_real


@dataclass(frozen=True)
class ReconstructionGuidance:
    """Gradient steps pulling clip i's x0 estimate of its first M frames toward clip i-1's last M frames."""

    weight: float = 10.0  # w_r of Ho et al. times T (the steps add up over the T steps); 0 = no guidance

    def __post_init__(self) -> None:
        check_real("weight", self.weight, 0.0, sys.float_info.max)  # finite

    @property
    def needs_x0(self) -> bool:
        """The steps' contexts must carry predict_x0 and alpha_bar: unless weight = 0."""
        return self.weight > 0

    @property
    def duplicates_prompt_frames(self) -> bool:
        """Clip i's first M frames are pulled onto clip i-1's last M (so dropped): unless weight = 0."""
        return self.weight > 0

    def check_scheduler(self, scheduler: Any) -> None:
        """ValueError, before any work, where the scheduler's model output has no exact x0 conversion."""
        problem = x0_conversion_problem(scheduler)
        if problem is not None and self.weight > 0:
            raise ValueError(
                f"ReconstructionGuidance needs an exact x0 estimate (a VP, Euler or flow-matching "
                f"scheduler with its own prediction type); {problem}"
            )

    def record_spec(self, num_frames: int, prompt_frames: int, num_steps: int) -> RecordSpec:
        frames = last_frames(num_frames, prompt_frames)
        return RecordSpec(frames=frames, steps=0, final=self.weight > 0)

    def step_weight(self, level: NoiseLevel, num_steps: int) -> float:
        """w_s = (weight / T) * sqrt(abar_t) * r_t^2 / 2: Ho et al.'s scaling of w_r = weight / T, taken
        on the VP latent z_s / r_t (r_t = 1 under VP)."""
        return self.weight / num_steps * math.sqrt(level.alpha_bar) * level.scale**2 / 2.0

    def __call__(self, latents: torch.Tensor, context: StepContext) -> torch.Tensor:
        if context.previous is None or self.weight == 0:
            return latents
        if context.predict_x0 is None or context.noise_level is None:
            raise ValueError("ReconstructionGuidance needs StepContext.predict_x0 and noise_level (exact x0)")
        step = self.step_weight(context.noise_level, context.num_steps)
        if step == 0:  # abar = 0 (zero terminal SNR): no step, and an epsilon model's x0 is undefined there
            return latents
        n, m = context.num_frames, context.prompt_frames
        target = context.previous.at_end(last_frames(n, m)).to(latents)  # x_prev, forward order
        with torch.enable_grad():  # callers often sample under no_grad
            z = latents.detach().requires_grad_(True)
            residual = context.predict_x0(z)[:, :, :m] - target
            (grad,) = torch.autograd.grad(residual.square().sum(), z)
        # Ho et al.: the step moves the new frames z^b (j >= M) only; the prompt frames z^a stay as they
        # are (replaced by ForwardOverlap when it runs first).
        return torch.cat([latents[:, :, :m], latents[:, :, m:] - step * grad[:, :, m:]], dim=2)
