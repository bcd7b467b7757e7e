"""Memory of `vidrd generate` against --clips: peak RSS of K = 64 clips vs K = 2, each in a fresh process.

    python -m benchmarks.cli_memory                      # K = 2 and 64, 3 repeats each
    python -m benchmarks.cli_memory --clips 2,16 --repeats 1 --out results/

Each run is `python -m benchmarks.cli generate PROMPT --clips K --frames N --steps S --out DIR` in a child
process of its own (peak RSS is a per-process high-water mark), timed and measured by the parent with
`os.wait4`: ru_maxrss is the largest resident set of the child, or of any process it waited for (the
ffmpeg writer). The children run in turn; the parent prints the median peak and wall time of each K and
the ratio median peak(largest K) / median peak(smallest K), whose target is <= --target (1.10: memory
flat in --clips, issue 9 §5).

The children write into a temporary folder, removed at the end; nothing is written elsewhere unless
--out is given: then every child's outputs are kept in OUT/clips-K-run-R/ and the results go to
OUT/cli_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.number_lists import parse_numbers

PROMPT = "a red circle moving right"
REPO = Path(__file__).resolve().parents[1]  # the children run here, so that `-m benchmarks.cli` is found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cli_memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clips", default="2,64", help="comma-separated clip counts K, >= 2 of them")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip N (default 8)")
    parser.add_argument("--steps", type=int, default=2, help="DDIM steps per clip (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="child processes per K (default 3)")
    parser.add_argument("--target", type=float, default=1.10, help="largest acceptable ratio (1.10)")
    parser.add_argument("--prompt", default=PROMPT, help=f"the prompt (default {PROMPT!r})")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per child")
    parser.add_argument("--out", type=Path, help="keep the outputs and write cli_memory.json here")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments, every check made through `parser.error` (usage, message, exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.clips = parse_numbers(args.clips, int)
    except ValueError:
        parser.error(f"--clips must be comma-separated integers; got {args.clips!r}")
    if len(args.clips) < 2 or min(args.clips) < 1 or len(set(args.clips)) != len(args.clips):
        parser.error(f"--clips must list >= 2 different clip counts, each >= 1; got {list(args.clips)}")
    for name, low in (("frames", 2), ("steps", 1), ("repeats", 1)):
        if getattr(args, name) < low:
            parser.error(f"--{name} must be >= {low}; got {getattr(args, name)}")
    for name in ("target", "timeout"):
        value = getattr(args, name)
        if not 0 < value < float("inf"):
            parser.error(f"--{name} must be a finite number > 0; got {value}")
    if not args.prompt.strip():
        parser.error("--prompt must not be empty")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out must be a folder (or a path where one can be made); got {str(args.out)!r}")
    return args


def run_child(clips: int, out: Path, args: argparse.Namespace) -> dict:
    """One `generate` in a fresh process: its peak RSS (MiB), wall seconds and frame count."""
    out = out.absolute()
    command = [sys.executable, "-m", "benchmarks.cli", "generate", args.prompt, "--clips", str(clips),
               "--frames", str(args.frames), "--steps", str(args.steps), "--out", str(out)]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "stdout.txt", "w+b") as stdout, open(out / "stderr.txt", "w+b") as stderr:
        began = time.perf_counter()
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=REPO)
        status, usage = _wait(proc, args.timeout)
        seconds = time.perf_counter() - began
        stderr.seek(0)
        if status != 0:
            tail = stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(command)} exited with {status}:\n{tail}")
    frames = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["num_frames"]
    return {"clips": clips, "peak_mib": usage.ru_maxrss / 1024, "seconds": seconds, "frames": frames}


def _wait(proc: subprocess.Popen, timeout: float):
    """Reap `proc` with os.wait4 (its own rusage, not the sum of all children); kill it after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"the child for --clips took more than {timeout} s; killed")
        time.sleep(0.05)


def measure(args: argparse.Namespace, folder: Path) -> dict[int, list[dict]]:
    """`args.repeats` runs of every K, interleaved (K1, K2, K1, K2, ...) so that load drifts hit all."""
    runs: dict[int, list[dict]] = {k: [] for k in args.clips}
    for r in range(args.repeats):
        for k in args.clips:
            runs[k].append(run_child(k, folder / f"clips-{k}-run-{r}", args))
    return runs


def report(runs: dict[int, list[dict]], args: argparse.Namespace) -> dict:
    """Print the table and the ratio; return them as a dict."""
    print(f"vidrd generate (tiny bundled VidRD), {args.frames} frames/clip, {args.steps} DDIM steps, "
          f"medians of {args.repeats} fresh processes")  # fmt: skip
    print(f"{'clips':>6}{'frames':>8}{'peak RSS MiB':>14}{'seconds':>9}")
    table = {}
    for k, rows in runs.items():
        peak = statistics.median(r["peak_mib"] for r in rows)
        seconds = statistics.median(r["seconds"] for r in rows)
        table[k] = {"peak_mib": peak, "seconds": seconds, "frames": rows[0]["frames"], "runs": rows}
        print(f"{k:>6}{rows[0]['frames']:>8}{peak:>14.1f}{seconds:>9.2f}")
    small, large = min(args.clips), max(args.clips)
    ratio = table[large]["peak_mib"] / table[small]["peak_mib"]
    verdict = "met" if ratio <= args.target else "NOT met"
    print(f"peak RSS ratio {large} clips / {small} clips: {ratio:.3f} (target <= {args.target:g}: {verdict})")
    return {"table": table, "ratio": ratio, "target": args.target, "target_met": ratio <= args.target}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cli_memory.") as tmp:
        folder = Path(tmp) if args.out is None else args.out
        results = report(measure(args, folder), args)
    if args.out is not None:
        settings = {k: v for k, v in vars(args).items() if k != "out"}
        path = args.out / "cli_memory.json"
        path.write_text(json.dumps({"settings": settings, **results}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
