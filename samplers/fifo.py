"""FIFO-Diffusion (Kim et al. 2024): diagonal denoising over a queue of frames at increasing noise levels.

With f = `num_frames` (the backbone's clip length) and n = `partitions`, the schedule has S = n f steps
(its levels L_0 noisiest .. L_{S-1}, then the level L_S of the scheduler's output). The queue holds S
frames, position p = 0 (head) .. S-1 (tail); the frame at position p is at level L_{S-1-p}. One iteration:
  1. the backbone runs on windows of f queue frames, each frame at its own timestep (a backbone that
     takes one timestep per frame): n disjoint windows [r f, r f + f); with `lookahead`, 2n windows
     [r f/2, r f/2 + f) over the queue preceded by f/2 clean frames (the last outputs), each window
     writing back only its later half, so that a frame is denoised seeing f/2 cleaner frames ahead;
  2. every frame takes one step of its own level, from the kit's noise-level view of the schedule rather
     than a scheduler object (z = a x0 + s eps at L_k, to a' x0^ + s' eps^ at L_{k+1}: DDIM with eta 0,
     and exactly the Euler step under rectified flow);
  3. the head, now at L_S, leaves the queue as an output frame; fresh noise (the level-0 latents, as a
     clip sampler starts) enters at the tail.
So every frame passes through L_0 .. L_S once each, in order. As in the authors' code the queue starts
from a clip of f frames sampled with the same S steps: position p holds base frame max(0, p - (S - f))
noised to its level with fresh noise, and the first S - f outputs (re-denoised copies of base frame 0)
are dropped. Differences from the reference code, for the kit's exactness: the head frame leaves at the
scheduler's own final level (not at t = 0 after a no-op step), the step is deterministic (eta 0, as the
kit's other samplers; the authors use eta 1), and the clean frames ahead of the first lookahead window
are shown to the backbone at the schedule's last timestep.

Cost per iteration: n f frame evaluations (2 n f with lookahead), plus f S for the base clip. Noise is
drawn in this order from the generator: the base clip's initial noise, the queue's noise, then one tail
frame per iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .noise_level import FrameLevels, NoiseLevel, x0_from_output
from .protocols import check_frame_timesteps
from .sampler import LongVideo
from .schedulers import Schedule, as_schedule
from .validation import check_dtype, check_generator, check_int


@dataclass(frozen=True)
class FIFO:
    num_frames: int = 16  # f: frames per backbone call (its clip length)
    partitions: int = 4  # n: the queue holds n f frames at n f levels (S = n f steps)
    lookahead: bool = False  # 2n half-overlapping windows, each writing back its later half

    def __post_init__(self) -> None:
        check_int("num_frames", self.num_frames, 2 if self.lookahead else 1)
        check_int("partitions", self.partitions, 1)
        if not isinstance(self.lookahead, bool):
            raise TypeError(f"lookahead must be a bool; got {self.lookahead!r}")
        if self.lookahead and self.num_frames % 2:
            raise ValueError(f"num_frames must be even with lookahead (windows overlap by f/2); got "
                             f"{self.num_frames}")  # fmt: skip

    @property
    def steps(self) -> int:
        """S = n f: the schedule's steps, one per queue position."""
        return self.num_frames * self.partitions

    def windows(self) -> list[tuple[int, int, int]]:
        """(start, stop, first written) of every window, in the coordinates of the queue with its f/2 clean
        frames in front when `lookahead` (position p of the queue is index p + f/2 there)."""
        f = self.num_frames
        if not self.lookahead:
            return [(r * f, r * f + f, r * f) for r in range(self.partitions)]
        half = f // 2
        return [(r * half, r * half + f, r * half + half) for r in range(2 * self.partitions)]

    def sample(self, denoiser: Callable[..., torch.Tensor], scheduler: Any, shape: Sequence[int],
               generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
               **cond: Any) -> LongVideo:  # fmt: skip
        """`shape` = (B, C, L, H, W): L output frames; `clip_starts` every f frames (FIFO has no clips; the
        seam metrics are read on that grid). The schedule is set to S = n f steps."""
        schedule = _checked_schedule(scheduler)
        check_frame_timesteps(denoiser, "FIFO")
        check_generator(generator)
        if len(shape) != 5 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(f"shape must be 5 positive ints (B, C, L, H, W); got {tuple(shape)}")
        check_dtype("dtype", dtype)
        sigmas = schedule.sigmas
        if sigmas is not None and len(sigmas) != self.steps:
            raise ValueError(f"the schedule's {len(sigmas)} sigmas must be num_frames * partitions = "
                             f"{self.steps}, FIFO's steps")  # fmt: skip
        b, c, length, h, w = (int(d) for d in shape)
        device, f, steps = generator.device, self.num_frames, self.steps
        timesteps = schedule.set_timesteps(steps, device)
        levels = [*schedule.levels(), schedule.final_level()]  # L_0 .. L_S
        run = _Run(denoiser, schedule, timesteps, levels, cond)
        base = run.clip(torch.randn((b, c, f, h, w), generator=generator, dtype=dtype, device=device))
        queue = _initial_queue(base, levels, steps, generator)
        front = base[:, :, :1].expand(-1, -1, f // 2 if self.lookahead else 0, -1, -1)
        outputs = []
        for i in range(length + steps - f):
            queue = self._iterate(run, queue, front)
            head = queue[:, :, :1].clone()  # a copy: a view would keep every old queue alive
            if i >= steps - f:
                outputs.append(head)
            if self.lookahead:
                front = torch.cat([front[:, :, 1:], head], dim=2)
            tail = torch.randn((b, c, 1, h, w), generator=generator, dtype=dtype, device=device)
            queue = torch.cat([queue[:, :, 1:], tail * schedule.init_noise_sigma], dim=2)
        return LongVideo(latents=torch.cat(outputs, dim=2), clip_starts=list(range(0, length, f)))

    def _iterate(self, run: _Run, queue: torch.Tensor, front: torch.Tensor) -> torch.Tensor:
        """Every queue frame one step down its own level; the windows all read the queue as it was."""
        pad, steps = front.shape[2], self.steps
        full = torch.cat([front, queue], dim=2)
        step_of = [steps - 1] * pad + [steps - 1 - p for p in range(steps)]  # step index per full position
        outputs = torch.empty_like(queue)
        for start, stop, first in self.windows():
            out = run.call(full[:, :, start:stop], step_of[start:stop])
            outputs[:, :, first - pad : stop - pad] = out[:, :, first - start :]
        return run.step(queue, outputs, step_of[pad:])


class _Run:
    """The backbone and the schedule's levels: per-frame calls and per-frame steps."""

    def __init__(self, denoiser, schedule: Schedule, timesteps, levels: list[NoiseLevel], cond) -> None:
        self.denoiser, self.schedule, self.timesteps, self.levels, self.cond = (
            denoiser, schedule, timesteps, levels, cond)  # fmt: skip
        # a queue position keeps its step index for good: what depends on the steps alone is made once
        self._timesteps: dict[tuple[int, ...], torch.Tensor] = {}
        self._levels: dict[tuple, tuple[FrameLevels, FrameLevels]] = {}

    def call(self, latents: torch.Tensor, steps: list[int]) -> torch.Tensor:
        """The backbone on `latents`, frame j at the timestep of step `steps[j]`: a (B, F) timestep, which
        no backbone reads as one per video."""
        key = tuple(steps)
        if key not in self._timesteps:
            self._timesteps[key] = self.timesteps[torch.tensor(steps, device=self.timesteps.device)]
        return self.denoiser(latents, self._timesteps[key].expand(latents.shape[0], -1), **self.cond)

    def step(self, latents: torch.Tensor, output: torch.Tensor, steps: list[int]) -> torch.Tensor:
        """Frame j from L_{steps[j]} to L_{steps[j] + 1}: a' x0^ + s' eps^, eps^ = (z - a x0^) / s, computed
        in float32 at least (half-precision coefficients would round every step), returned in the latents'
        dtype."""
        z = latents.to(torch.promote_types(latents.dtype, torch.float32))
        key = (tuple(steps), z.dtype, z.device)
        if key not in self._levels:
            self._levels[key] = (FrameLevels.of([self.levels[s] for s in steps], z),
                                 FrameLevels.of([self.levels[s + 1] for s in steps], z))  # fmt: skip
        now, after = self._levels[key]
        x0 = x0_from_output(output.to(z.dtype), z, now, self.schedule.prediction_type, self.schedule.inverted)
        eps = (z - now.signal * x0) / now.noise
        return (after.signal * x0 + after.noise * eps).to(latents.dtype)

    def clip(self, noise: torch.Tensor) -> torch.Tensor:
        """One clip from `noise` through all S steps, every frame at the same level: the base clip."""
        latents = noise * self.schedule.init_noise_sigma
        for s in range(len(self.timesteps)):
            frames = [s] * latents.shape[2]
            latents = self.step(latents, self.call(latents, frames), frames)
        return latents


def _initial_queue(base: torch.Tensor, levels: list[NoiseLevel], steps: int, generator) -> torch.Tensor:
    """Position p: base frame max(0, p - (S - f)) at level L_{S-1-p}, with fresh noise."""
    f = base.shape[2]
    index = torch.tensor([max(0, p - (steps - f)) for p in range(steps)], device=base.device)
    at = FrameLevels.of([levels[steps - 1 - p] for p in range(steps)], base)
    shape = (*base.shape[:2], steps, *base.shape[3:])
    noise = torch.randn(shape, generator=generator, dtype=base.dtype, device=base.device)
    return at.signal * base.index_select(2, index) + at.noise * noise


def _checked_schedule(scheduler: Any) -> Schedule:
    """The scheduler as a Schedule, refused where a per-frame step cannot be read off its levels."""
    schedule = as_schedule(scheduler)
    if schedule.kind == "ve":
        raise ValueError(
            f"FIFO needs a VP or flow scheduler (the model sees the latents unscaled); got "
            f"{type(schedule.scheduler).__name__} of kind 've' (scale_model_input per step)"
        )
    problem = schedule.x0_problem()
    if problem is not None:
        raise ValueError(f"FIFO needs the x0 estimate of every frame: {problem}")
    return schedule
