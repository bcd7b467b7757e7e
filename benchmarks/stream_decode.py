"""Streamed decoding vs a whole-video decode, for every diffusers family (tiny random pipelines).

    python -m benchmarks.stream_decode [--clips 4] [--contexts 1,4] [--memory-clips 2,8]

Per family, the paper's composition samples a long latent video (LongVideoPipeline, output "latent");
it is then decoded three ways: whole (one VAE call on the long latent video: the reference, memory
growing with its length), streamed (the family's stream decoder, clip by clip, as LongVideoPipeline
decodes) and independently (each clip alone: the VAE's causal context restarts at every seam). The table
gives the largest difference of the streamed frames from the whole decode (pixel values in [0, 1]) and
the pixel seam-jump ratio (benchmarks.metrics) of all three. Then, per family, the peak RSS of a child
process that samples and stream-decodes into a sink that drops the frames, for two clip counts (medians
of --repeats processes): their ratio is 1 when memory is flat in the number of clips.

The pipelines are untrained (random weights): the figures measure the decoding machinery (what the
streamed decode loses against the whole decode), not a model's quality.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import numpy as np
import torch

from benchmarks.metrics import seam_jump_ratio
from benchmarks.number_lists import parse_numbers
from models.long_pipeline import DECODE_CONTEXT, LongVideoPipeline
from models.stream_decode import pixel_range
from models.threads import limit_threads
from models.tiny_diffusers.examples import EXAMPLES
from samplers import DSG, FNR, PNS, LongVideoSampler
from samplers.validation import check_int

STEPS = 3


def sampler() -> LongVideoSampler:
    return LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=1, progress=False)


def latents_of(name: str, clips: int) -> tuple[LongVideoPipeline, torch.Tensor, list[torch.Tensor]]:
    """The family's long pipeline, the long latent video and its clips' latents."""
    pipe, kwargs = EXAMPLES[name](0)
    long = LongVideoPipeline.from_pipe(pipe)
    seen: list[torch.Tensor] = []
    out = long(**kwargs, num_inference_steps=STEPS, sampler=sampler(), num_clips=clips,
               output_type="latent", generator=torch.Generator().manual_seed(0),
               on_clip=lambda c: seen.append(c.latents))  # fmt: skip
    return long, out.latents, seen


def to_unit(frames: torch.Tensor) -> np.ndarray:
    return ((frames.float().clamp(-1, 1) + 1) / 2).numpy()


def pixel_starts(clips: list[torch.Tensor], temporal: int) -> list[int]:
    """Where each clip starts in the decoded frames (models.stream_decode.pixel_range)."""
    latent_starts = np.cumsum([0] + [clip.shape[2] for clip in clips[:-1]])
    return [pixel_range(int(s), 1, temporal)[0] for s in latent_starts]


def decodes(long: LongVideoPipeline, latents: torch.Tensor, clips: list[torch.Tensor],
            context: int) -> dict[str, float]:  # fmt: skip
    family = long.family
    whole = to_unit(family.decode_latents(latents))
    decoder = family.stream_decoder(context, total=latents.shape[2])  # as LongVideoPipeline makes it
    parts = [decoder(c) for c in clips] + [decoder.flush()]
    streamed = to_unit(torch.cat([p for p in parts if p is not None], dim=2))
    alone = [family.decode_latents(c) for c in clips]
    alone_starts = list(np.cumsum([0] + [a.shape[2] for a in alone[:-1]]))
    independent = to_unit(torch.cat(alone, dim=2))
    starts = pixel_starts(clips, family.temporal)
    return {
        "max_difference": float(np.abs(streamed - whole).max()),
        "seam_jump_whole": seam_jump_ratio(torch.from_numpy(whole), starts),
        "seam_jump_streamed": seam_jump_ratio(torch.from_numpy(streamed), starts),
        "seam_jump_independent": seam_jump_ratio(torch.from_numpy(independent), alone_starts),
    }


class _DropSink:
    def write(self, frames: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass


def child(name: str, clips: int) -> None:
    """Sample and stream-decode `clips` clips into a sink that drops them; print the peak RSS (kB)."""
    with limit_threads(1):
        pipe, kwargs = EXAMPLES[name](0)
        LongVideoPipeline.from_pipe(pipe)(**kwargs, num_inference_steps=STEPS, sampler=sampler(),
                                          num_clips=clips, sink=_DropSink(),
                                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def median_rss(name: str, clips: int, repeats: int) -> float:
    """The median peak RSS (kB) of `repeats` fresh processes making `clips` clips."""
    return float(np.median([peak_rss(name, clips) for _ in range(repeats)]))


def peak_rss(name: str, clips: int) -> int:
    code = f"from benchmarks.stream_decode import child; child({name!r}, {clips})"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_kb"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--clips", type=int, default=4, help="clips of the long video (default 4)")
    parser.add_argument("--contexts", default=f"1,{DECODE_CONTEXT}", help="decode contexts, latent frames")
    parser.add_argument("--memory-clips", default="2,8", help="two clip counts for the peak-RSS ratio")
    parser.add_argument("--repeats", type=int, default=3, help="processes per clip count (median RSS)")
    parser.add_argument("--families", default=",".join(EXAMPLES), help=f"from {sorted(EXAMPLES)}")
    args = parser.parse_args(argv)
    try:
        contexts = [check_int("--contexts", c, 1) for c in parse_numbers(args.contexts, int)]
        low, high = (check_int("--memory-clips", c, 1) for c in parse_numbers(args.memory_clips, int))
        check_int("--clips", args.clips, 2)
        check_int("--repeats", args.repeats, 1)
        families = [f.strip() for f in args.families.split(",")]
        unknown = sorted(set(families) - set(EXAMPLES))
        if unknown:
            raise ValueError(f"--families must be from {sorted(EXAMPLES)}; got {unknown}")
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    with limit_threads(1):
        table(families, args, contexts, low, high)


def table(families: list[str], args: argparse.Namespace, contexts: list[int], low: int, high: int) -> None:
    """Print the streamed-versus-whole decode table, one row per family and context."""
    print(f"{'family':<10}{'context':>8}{'max |streamed - whole|':>24}{'seam jump: whole':>18}"
          f"{'streamed':>10}{'independent':>13}{f'RSS {high}/{low} clips':>18}")  # fmt: skip
    for name in families:
        long, latents, clips = latents_of(name, args.clips)
        ratio = median_rss(name, high, args.repeats) / median_rss(name, low, args.repeats)
        for context in contexts:
            d = decodes(long, latents, clips, context)
            print(f"{name:<10}{context:>8}{d['max_difference']:>24.3g}{d['seam_jump_whole']:>18.3f}"
                  f"{d['seam_jump_streamed']:>10.3f}{d['seam_jump_independent']:>13.3f}"
                  f"{ratio:>18.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
