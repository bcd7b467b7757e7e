"""Pipeline memory and throughput: peak RSS of a 16-clip video vs a 2-clip one, streamed to an MP4.

    python -m benchmarks.pipeline_memory

Each run is a fresh child process (peak RSS is a per-process high-water mark) that builds the tiny
untrained VidRD pipeline, samples with FNR+PNS(4)+DSG(0.4) and classifier-free guidance, and streams
every decoded clip into an MP4 file as it finishes. The parent prints the median peak RSS of each
length, their ratio (1.0 = memory does not grow with the video), and the frames per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.number_lists import parse_numbers


def child(num_clips: int, num_frames: int, steps: int, out: Path) -> dict[str, float]:
    import torch

    from models.threads import limit_threads
    from models.tiny import tiny_pipeline
    from models.video_io import VideoFileSink
    from samplers import DSG, FNR, PNS, LongVideoSampler

    pipe = tiny_pipeline()
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], progress=False)
    began = time.perf_counter()
    with limit_threads(1), VideoFileSink(out) as sink:  # one thread: steady timings on a shared machine
        pipe("a red circle moving right", sampler=sampler, num_clips=num_clips, num_frames=num_frames,
             num_inference_steps=steps, generator=torch.Generator().manual_seed(0), sink=sink)  # fmt: skip
    seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_mib": peak_kib / 1024, "seconds": seconds, "frames": sink.frames_written}


def run_child(num_clips: int, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        options = ["--frames", str(args.frames), "--steps", str(args.steps), "--out", f"{tmp}/video.mp4"]
        command = [sys.executable, "-m", "benchmarks.pipeline_memory", "--child", str(num_clips), *options]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", default="2,16", help="comma-separated clip counts to compare")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps per clip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.frames, args.steps, args.out)))
        return
    counts = parse_numbers(args.clips, int)
    results = {n: [run_child(n, args) for _ in range(args.repeats)] for n in counts}
    print(f"tiny VidRD pipeline, {args.frames} frames/clip, {args.steps} DDIM steps, CFG, streamed to MP4, "
          f"medians of {args.repeats} child processes, 1 thread")  # fmt: skip
    print(f"{'clips':>6}{'frames':>8}{'peak RSS MiB':>14}{'seconds':>9}{'frames/s':>10}")
    peaks = {}
    for n, runs in results.items():
        peaks[n] = statistics.median(r["peak_mib"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        frames = runs[0]["frames"]
        print(f"{n:>6}{frames:>8}{peaks[n]:>14.1f}{seconds:>9.2f}{frames / seconds:>10.1f}")
    print(
        f"peak RSS ratio {counts[-1]} clips / {counts[0]} clips: {peaks[counts[-1]] / peaks[counts[0]]:.3f}"
    )


if __name__ == "__main__":
    main()
