"""Sampler overhead: LongVideoSampler with FNR+PNS+DSG vs a bare diffusers loop, same denoiser calls.

    python -m benchmarks.perf

Both loops sample the same number of clips with the same scheduler, denoiser and number of denoiser
calls; the bare loop draws fresh noise per clip and does nothing else. The two are run alternately
and the printed ratio is median(sampler) / median(bare) over the repeats, in one process, so machine
speed cancels out. Two backbones, each call's cost printed:
- `conv`: a stand-in for a video UNet (random-weight 3-D convolutions on 1x4x16x32x32 latents): compute
  per latent element like a real network, so the sampler's per-step tensor work is small beside it;
- `prior-large`: the exact Gaussian prior on 4x4x16x128x128 latents: a call of a few milliseconds that is
  all memory traffic, the worst case for the sampler's own copies (DSG's replacement, the recording).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from itertools import pairwise

import torch
from diffusers import DDIMScheduler
from torch.nn.utils import skip_init

from models import GaussianVideoPrior
from samplers import DSG, FNR, PNS, LongVideoSampler
from samplers.validation import check_int


def bare_loop(denoiser, scheduler, clip_shape, num_clips: int, steps: int, generator, dtype=torch.float32):
    """The baseline: what a user would write with diffusers alone, clip after clip, fresh noise each."""
    clips = []
    for _ in range(num_clips):
        scheduler.set_timesteps(steps)
        latents = torch.randn(clip_shape, generator=generator, dtype=dtype) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            output = denoiser(scheduler.scale_model_input(latents, t), t)
            latents = scheduler.step(output, t, latents).prev_sample
        clips.append(latents)
    return torch.cat(clips, dim=2)


def seconds(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


class ConvBackbone(torch.nn.Module):
    """Random-weight 3-D convolutions with the cost profile of a small video UNet; ignores the timestep."""

    def __init__(self, channels: int = 4, width: int = 48, depth: int = 3, seed: int = 0) -> None:
        super().__init__()
        widths = [channels, *[width] * (depth - 1), channels]
        convs = [skip_init(torch.nn.Conv3d, a, b, kernel_size=3, padding=1) for a, b in pairwise(widths)]
        self.net = torch.nn.Sequential(*[m for conv in convs for m in (conv, torch.nn.SiLU())][:-1])
        generator = torch.Generator().manual_seed(seed)  # weights from an explicit generator
        with torch.no_grad():
            for conv in convs:
                fan_in = conv.weight[0].numel()
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) / fan_in**0.5)
                conv.bias.zero_()

    @torch.no_grad()
    def forward(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        return self.net(latents)


def conv_backbone(scheduler) -> tuple[Callable, tuple[int, ...]]:
    return ConvBackbone(), (1, 4, 16, 32, 32)


def prior_large(scheduler) -> tuple[Callable, tuple[int, ...]]:
    shape = (4, 4, 16, 128, 128)
    return GaussianVideoPrior(num_frames=16, frame_shape=(4, 128, 128)).denoiser(scheduler), shape


BACKBONES = {"conv": conv_backbone, "prior-large": prior_large}


def measure(backbone: str = "conv", num_clips=4, steps=25, repeats=7) -> dict[str, float]:
    scheduler = DDIMScheduler(clip_sample=False)
    denoiser, clip_shape = BACKBONES[backbone](scheduler)
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
    parser.add_argument(
        "--backbones", default=",".join(BACKBONES), help=f"comma-separated, of {list(BACKBONES)}"
    )
    args = parser.parse_args(argv)
    for flag in ("repeats", "clips", "steps"):
        try:
            check_int(f"--{flag}", getattr(args, flag), 1)
        except ValueError as error:
            parser.error(str(error))
    names = [name.strip() for name in args.backbones.split(",")]
    unknown = [name for name in names if name not in BACKBONES]
    if unknown:
        parser.error(f"--backbones must name some of {list(BACKBONES)}; got {unknown}")
    print(f"{args.clips} clips x {args.steps} DDIM steps, medians of {args.repeats} alternated repeats")
    print(f"{'backbone':<12}{'call ms':>9}{'bare s':>9}{'sampler s':>11}{'ratio':>8}")
    for name in names:
        r = measure(name, num_clips=args.clips, steps=args.steps, repeats=args.repeats)
        print(f"{name:<12}{r['call_ms']:>9.2f}{r['bare_s']:>9.3f}{r['sampler_s']:>11.3f}{r['ratio']:>8.3f}")


if __name__ == "__main__":
    main()
