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

Each backbone is measured in a child process whose allocator keeps the memory it frees (glibc's
`MALLOC_TRIM_THRESHOLD_` and `MALLOC_MMAP_THRESHOLD_`, `ALLOCATOR_ENV`). With glibc's defaults, whether a
freed 16 MB tensor goes back to the system, to be page-faulted in again by the next one, depends on the
order of allocations, and it moves either loop by up to 20% (the `faults` columns show it); kept memory
measures the loops' own work. `--allocator system` measures under the defaults instead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
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


# glibc's allocator, told to keep freed memory: no trimming of the heap, no mmap for large blocks.
ALLOCATOR_ENV = {"MALLOC_TRIM_THRESHOLD_": str(2**40), "MALLOC_MMAP_THRESHOLD_": str(2**32)}
ALLOCATORS = ("kept", "system")


def seconds_and_faults(fn: Callable[[], object]) -> tuple[float, int]:
    """Wall seconds of `fn()` and the minor page faults it caused."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


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
    calls = [seconds_and_faults(lambda: denoiser(probe, torch.tensor(500)))[0] for _ in range(20)]
    call = statistics.median(calls)
    paper(), bare()  # warm-up
    runs: dict[str, list[tuple[float, int]]] = {"sampler": [], "bare": []}
    for _ in range(repeats):  # alternate, so slow phases of the machine hit both alike
        runs["sampler"].append(seconds_and_faults(paper))
        runs["bare"].append(seconds_and_faults(bare))
    median = {k: [statistics.median(r[j] for r in v) for j in (0, 1)] for k, v in runs.items()}
    (sampler_s, sampler_faults), (bare_s, bare_faults) = median["sampler"], median["bare"]
    return {"call_ms": 1e3 * call, "sampler_s": sampler_s, "bare_s": bare_s, "ratio": sampler_s / bare_s,
            "sampler_faults": sampler_faults, "bare_faults": bare_faults}  # fmt: skip


def measure_in_child(backbone: str, num_clips: int, steps: int, repeats: int, allocator: str = "kept",
                     threads: int | None = None) -> dict:  # fmt: skip
    """`measure` in a fresh process, under the allocator named (ALLOCATORS), on `threads` threads (None:
    torch's default)."""
    if allocator not in ALLOCATORS:
        raise ValueError(f"allocator must be one of {ALLOCATORS}; got {allocator!r}")
    env = {**os.environ, **(ALLOCATOR_ENV if allocator == "kept" else {})}
    if allocator == "system":
        env = {k: v for k, v in env.items() if k not in ALLOCATOR_ENV}
    code = ("import json, torch\nfrom benchmarks.perf import measure\n"
            "from models.threads import limit_threads\n"
            f"with limit_threads({threads or 'torch.get_num_threads()'}):\n"
            f"    r = measure({backbone!r}, {num_clips}, {steps}, {repeats})\n"
            f"print(json.dumps(r))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--allocator", choices=ALLOCATORS, default="kept",
                        help="kept: freed memory stays in the process; system: glibc's defaults")  # fmt: skip
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
    print(f"{args.clips} clips x {args.steps} DDIM steps, medians of {args.repeats} alternated repeats, "
          f"allocator: {args.allocator}")  # fmt: skip
    print(f"{'backbone':<12}{'call ms':>9}{'bare s':>9}{'sampler s':>11}{'ratio':>8}"
          f"{'faults: bare':>14}{'sampler':>9}")  # fmt: skip
    for name in names:
        r = measure_in_child(name, args.clips, args.steps, args.repeats, args.allocator)
        print(f"{name:<12}{r['call_ms']:>9.2f}{r['bare_s']:>9.3f}{r['sampler_s']:>11.3f}{r['ratio']:>8.3f}"
              f"{r['bare_faults']:>14.0f}{r['sampler_faults']:>9.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
