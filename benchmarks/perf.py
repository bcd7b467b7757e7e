"""Sampler overhead: LongVideoSampler with FNR+PNS+DSG vs a bare diffusers loop, same denoiser calls.

    python -m benchmarks.perf

Both loops sample the same number of clips with the same scheduler, denoiser and number of denoiser
calls; the bare loop draws fresh noise per clip and does nothing else. The two are run alternately
and the printed ratio is median(sampler) / median(bare) over the repeats, in one process, so machine
speed cancels out. The denoiser is the exact Gaussian-process prior at a size where one call costs
a few milliseconds (printed), as a real backbone's call would.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from diffusers import DDIMScheduler

from models import GaussianVideoPrior
from samplers import DSG, FNR, PNS, LongVideoSampler


def bare_loop(denoiser, scheduler, clip_shape, num_clips: int, steps: int, generator) -> torch.Tensor:
    """The baseline: what a user would write with diffusers alone, clip after clip."""
    clips = []
    for _ in range(num_clips):
        scheduler.set_timesteps(steps)
        latents = torch.randn(clip_shape, generator=generator) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            output = denoiser(scheduler.scale_model_input(latents, t), t)
            latents = scheduler.step(output, t, latents).prev_sample
        clips.append(latents)
    return torch.cat(clips, dim=2)


def seconds(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def measure(clip_shape=(2, 4, 16, 64, 64), num_clips=4, steps=25, repeats=7) -> dict[str, float]:
    prior = GaussianVideoPrior(num_frames=clip_shape[2], frame_shape=tuple(clip_shape[i] for i in (1, 3, 4)))
    scheduler = DDIMScheduler(clip_sample=False)
    denoiser = prior.denoiser(scheduler)
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], progress=False)

    def paper() -> object:
        gen = torch.Generator().manual_seed(0)
        return sampler.sample(denoiser, scheduler, clip_shape, num_clips, steps, generator=gen)

    def bare() -> object:
        return bare_loop(denoiser, scheduler, clip_shape, num_clips, steps, torch.Generator().manual_seed(0))

    probe = torch.randn(clip_shape, generator=torch.Generator().manual_seed(1))
    call = statistics.median(seconds(lambda: denoiser(probe, torch.tensor(500))) for _ in range(20))
    paper(), bare()  # warm-up
    timings: dict[str, list[float]] = {"sampler": [], "bare": []}
    for _ in range(repeats):  # alternate, so slow phases of the machine hit both alike
        timings["sampler"].append(seconds(paper))
        timings["bare"].append(seconds(bare))
    sampler_s, bare_s = statistics.median(timings["sampler"]), statistics.median(timings["bare"])
    return {"call_ms": 1e3 * call, "sampler_s": sampler_s, "bare_s": bare_s, "ratio": sampler_s / bare_s}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args(argv)
    result = measure(num_clips=args.clips, steps=args.steps, repeats=args.repeats)
    print(f"denoiser call (median of 20): {result['call_ms']:.2f} ms")
    print(f"bare diffusers loop (median of {args.repeats}): {result['bare_s']:.3f} s")
    print(f"LongVideoSampler FNR+PNS(4)+DSG(0.4) (median of {args.repeats}): {result['sampler_s']:.3f} s")
    print(f"ratio sampler / bare: {result['ratio']:.3f}")


if __name__ == "__main__":
    main()
