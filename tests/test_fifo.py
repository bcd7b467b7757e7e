"""FIFO-Diffusion: every frame through every level once, in order (exact, on a frame-local backbone whose
trajectory factor is computed here from the scheduler's own alphas), the windows by hand, the base clip as
the clip sampler's, and the refusals before any work."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler

from models import GaussianVideoPrior
from samplers import LongVideoSampler
from samplers.fifo import FIFO

C = 0.7  # the frame-local backbone's x0 estimate: c z


class FrameLocal:
    """x0 = c z for every frame, returned as epsilon at each frame's own DDIM level: no frame sees another,
    so a frame's end depends only on the levels it went through, in which order."""

    frame_timesteps = True

    def __init__(self, scheduler):
        self.alphas = scheduler.alphas_cumprod.double()
        self.timesteps = []

    def __call__(self, latents, t):
        b, f = latents.shape[0], latents.shape[2]
        t = torch.as_tensor(t).reshape(-1, f if torch.as_tensor(t).numel() > 1 else 1).expand(b, f)
        assert (t == t[:1]).all()  # FIFO moves every video of the batch alike
        self.timesteps.append(t[0].tolist())
        abar = self.alphas[t.long()].to(latents.dtype).reshape(b, 1, f, 1, 1)
        return (latents - abar.sqrt() * C * latents) / (1 - abar).sqrt()


def level_alphas(scheduler, steps: int) -> list[float]:
    """abar of the S DDIM levels, then the clean one (1), read from the scheduler's own table."""
    scheduler.set_timesteps(steps)
    return [float(scheduler.alphas_cumprod[int(t)]) for t in scheduler.timesteps] + [1.0]


def trajectory_factor(scheduler, steps: int, first: int = 0) -> float:
    """prod_s [a_{s+1} c + s_{s+1} (1 - a_s c) / s_s] over the DDIM levels from `first` to the clean one."""
    abar = level_alphas(scheduler, steps)[first:]
    factor = 1.0
    for now, after in itertools.pairwise(abar):
        a, s, a2, s2 = math.sqrt(now), math.sqrt(1 - now), math.sqrt(after), math.sqrt(1 - after)
        factor *= a2 * C + s2 * (1 - a * C) / s
    return factor


@pytest.mark.parametrize("fifo", [FIFO(4, 1), FIFO(4, 3), FIFO(4, 2, lookahead=True)])
def test_every_frame_passes_every_level_once_in_order_and_leaves_in_order(fifo):
    # Output frame k >= f entered the tail as the noise drawn at iteration k - f (draws: the base clip,
    # the queue, then one tail frame per iteration); it must come out as P times that noise, P the product
    # over the schedule's consecutive levels. A skipped, repeated or reordered level, a frame left unwritten
    # by the windows, a wrong pop or a wrong count of dropped warm-up frames all break the equality.
    scheduler = DDIMScheduler(clip_sample=False)
    shape, f, steps = (2, 1, 9, 2, 2), fifo.num_frames, fifo.steps
    g = torch.Generator().manual_seed(0)
    out = fifo.sample(FrameLocal(scheduler), scheduler, shape, g, torch.float64)
    g = torch.Generator().manual_seed(0)
    torch.randn((2, 1, f, 2, 2), generator=g, dtype=torch.float64)
    torch.randn((2, 1, steps, 2, 2), generator=g, dtype=torch.float64)
    tails = [torch.randn((2, 1, 1, 2, 2), generator=g, dtype=torch.float64) for _ in range(9 + steps - f)]
    factor = trajectory_factor(DDIMScheduler(clip_sample=False), steps)
    assert out.latents.shape == shape and out.clip_starts == list(range(0, 9, f))
    for k in range(f, 9):
        torch.testing.assert_close(out.latents[:, :, k : k + 1], factor * tails[k - f], rtol=1e-10, atol=0)
    # Output k < f started at queue position p = S - f + k as base frame k (the base clip: P times its
    # noise) noised to level L_{S-1-p} with the queue's noise at p, then took the levels' last p + 1 steps.
    g = torch.Generator().manual_seed(0)
    base = factor * torch.randn((2, 1, f, 2, 2), generator=g, dtype=torch.float64)
    queue_noise = torch.randn((2, 1, steps, 2, 2), generator=g, dtype=torch.float64)
    abar = level_alphas(DDIMScheduler(clip_sample=False), steps)
    for k in range(f):
        p = steps - f + k
        start = abar[steps - 1 - p]
        noised = math.sqrt(start) * base[:, :, k] + math.sqrt(1 - start) * queue_noise[:, :, p]
        expected = trajectory_factor(DDIMScheduler(clip_sample=False), steps, first=steps - 1 - p) * noised
        torch.testing.assert_close(out.latents[:, :, k], expected, rtol=1e-10, atol=0)


def test_lookahead_shows_each_window_the_last_outputs_ahead_of_the_queue():
    # FIFO(4, 1, lookahead): the queue behind f/2 = 2 clean frames; window 0 of iteration i (call 4 + 2i,
    # after the base clip's 4) sees, ahead of the queue, the outputs of iterations i-2 and i-1
    scheduler = DDIMScheduler(clip_sample=False)
    seen = []

    class Recording(FrameLocal):
        def __call__(self, latents, t):
            seen.append(latents.clone())
            return super().__call__(latents, t)

    out = FIFO(4, 1, lookahead=True).sample(Recording(scheduler), scheduler, (1, 1, 7, 1, 1),
                                            torch.Generator().manual_seed(0), torch.float64)  # fmt: skip
    for i in range(2, 7):
        assert torch.equal(seen[4 + 2 * i][:, :, :2], out.latents[:, :, i - 2 : i]), i


def test_each_call_gives_each_frame_its_own_timestep():
    # one iteration of FIFO(4, 2): windows [0, 4) and [4, 8) of the queue, position p at step S-1-p
    scheduler = DDIMScheduler(clip_sample=False)
    backbone = FrameLocal(scheduler)
    FIFO(4, 2).sample(backbone, scheduler, (1, 1, 1, 1, 1), torch.Generator().manual_seed(0))
    timesteps = scheduler.timesteps.tolist()  # S = 8, noisiest first
    assert backbone.timesteps[:8] == [[t] * 4 for t in timesteps]  # the base clip, one level per step
    assert backbone.timesteps[8:10] == [timesteps[7:3:-1], timesteps[3::-1]]


def test_windows_by_hand():
    assert FIFO(4, 2).windows() == [(0, 4, 0), (4, 8, 4)]
    # lookahead: the queue behind f/2 = 2 clean frames; each window writes back its later half
    assert FIFO(4, 2, lookahead=True).windows() == [(0, 4, 2), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    assert FIFO(16, 4).steps == 64


SCHEDULERS = [DDIMScheduler(clip_sample=False), FlowMatchEulerDiscreteScheduler(shift=3.0)]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_the_base_clip_is_the_clip_samplers_clip(scheduler):
    # the per-frame step read off the levels is DDIM (eta 0) and the flow Euler step: with all frames at
    # one level it is the scheduler's own step; diffusers computes its step coefficients in float32 (the
    # dtype of alphas_cumprod and sigmas), ours in float64: 8 steps of float32 rounding (eps 1.2e-7) apart
    from samplers.fifo import _Run
    from samplers.schedulers import as_schedule

    prior = GaussianVideoPrior(num_frames=4, frame_shape=(2, 2, 2), lengthscale=3.0)
    denoiser, schedule = prior.denoiser(scheduler), as_schedule(scheduler)
    noise = torch.randn((2, 2, 4, 2, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sampler = LongVideoSampler([], prompt_frames=1, progress=False)
    g = torch.Generator().manual_seed(1)
    clip = sampler.sample(denoiser, scheduler, noise.shape, 1, 8, generator=g, dtype=torch.float64)
    timesteps = schedule.set_timesteps(8)
    run = _Run(denoiser, schedule, timesteps, [*schedule.levels(), schedule.final_level()], {})
    torch.testing.assert_close(run.clip(noise), clip.latents, rtol=0, atol=1e-6)


def test_refusals_before_any_work():
    prior = GaussianVideoPrior(num_frames=4, frame_shape=(1, 1, 1), lengthscale=3.0)
    ddim, g = DDIMScheduler(clip_sample=False), torch.Generator().manual_seed(0)
    with pytest.raises(TypeError, match="FIFO needs a denoiser that takes one timestep per frame"):
        FIFO(4, 1).sample(lambda z, t: z, ddim, (1, 1, 4, 1, 1), g)
    euler = EulerDiscreteScheduler()
    with pytest.raises(ValueError, match="FIFO needs a VP or flow scheduler"):
        FIFO(4, 1).sample(prior.denoiser(euler), euler, (1, 1, 4, 1, 1), g)
    with pytest.raises(ValueError, match="num_frames must be even with lookahead"):
        FIFO(5, 1, lookahead=True)
    with pytest.raises(ValueError, match=r"partitions must be an integer in \[1, inf\]; got 0"):
        FIFO(4, 0)
    for shape in ((1, 4, 1, 1), (0, 1, 4, 1, 1)):
        with pytest.raises(ValueError, match=r"shape must be 5 positive ints \(B, C, L, H, W\)"):
            FIFO(4, 1).sample(prior.denoiser(ddim), ddim, shape, g)
    with pytest.raises(ValueError, match=r"dtype must be a floating torch\.dtype"):
        FIFO(4, 1).sample(prior.denoiser(ddim), ddim, (1, 1, 4, 1, 1), g, dtype=torch.int64)
    from samplers import Schedule

    with pytest.raises(ValueError, match=r"the schedule's 3 sigmas must be num_frames \* partitions = 4"):
        FIFO(4, 1).sample(prior.denoiser(ddim), Schedule(ddim, sigmas=[1.0, 0.5, 0.2]), (1, 1, 4, 1, 1), g)
    with pytest.raises(TypeError, match=r"FIFO makes the whole long video itself: call its .sample"):
        LongVideoSampler([FIFO(4, 1)])
