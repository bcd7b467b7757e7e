"""Strategy combinations vs continuity and looping metrics on the analytic backbone (the main job).

    python -m benchmarks.compare --out out/compare

Every combination (by default the paper's strategies, then the peers) samples the same number of long
videos from `GaussianVideoPrior` with DDIM (or `--scheduler flow-euler` / `unipc-flow`: rectified flow
with Wan 2.1's shift); the reference row applies the same metrics to true videos of
the process cut at the same clip starts. A composition that drops prompt frames (forward overlap) yields
N - M frames per clip after the first: its autocorrelation error then spans lags 1..L/2 of that shorter
video, and its seam windows sit at its own clip starts (the process is stationary, so the reference's
windows anywhere are equivalent). Methods that make the whole long video at once (windows, FreeNoise,
FIFO: benchmarks.joint) are rows too, their seams read where benchmarks.joint says; the oracle
continuation is the ceiling of clip-by-clip methods; `frame_evals` and `backward_evals` count backbone
work per output frame (benchmarks.cost).
Writes `compare.csv` and `compare.png` to --out and prints the table.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from benchmarks import metrics
from benchmarks.cost import COST, CountingDenoiser
from benchmarks.figures import save_figure
from benchmarks.joint import JOINT_COMBINATIONS, JOINT_METHODS, NOISE_TAKERS, Joint
from models import GaussianVideoPrior
from models.files import atomic_files, atomic_path, check_out_folder, exit_on_sigterm
from samplers import DSG, PNS, LatentGuidance, LongVideoSampler, ReconstructionGuidance
from samplers.registry import parse_strategies
from samplers.validation import check_int

REFERENCE = "reference process"  # the row (and the sweep's points) that score true videos of the process
# The ceiling of clip-by-clip methods: clip 0 a true clip, each next one drawn from the exact conditional
# distribution of the process given every frame made so far (GaussianVideoPrior.sample_continuation).
ORACLE = "oracle continuation"
ALPHA, BETA = PNS().alpha, DSG().beta  # the paper's default point (alpha=4, beta=0.4): the strategies' own
PAPER = f"fnr,pns:{ALPHA:g},dsg:{BETA:g}"  # the paper's composition at that point
# The composition that closes the gap to the reference process: forward-order overlap with reconstruction
# guidance at its default weight (a whole trajectory's, so for any number of steps). Every benchmark,
# the report, the notebook and the tests take it from here; tests/test_peers.py checks it is in band.
GAP_CLOSING = f"overlap,recon:{ReconstructionGuidance().weight:g}"
DEFAULT_COMBINATIONS = ("independent", "fnr", f"fnr,pns:{ALPHA:g}", PAPER, f"dsg:{BETA:g}")
# Peer strategies at the paper's default point: FreeNoise's shuffled noise reuse, the paper's composition
# on a PYoCo-progressive first clip, forward-order overlap alone, and GAP_CLOSING (Ho et al. 2022).
PEER_COMBINATIONS = ("freenoise-noise", f"pyoco-progressive:{ALPHA:g},{PAPER}", "overlap", GAP_CLOSING)
# Rectified flow as Wan 2.1 samples it at 480p (its released scheduler's flow_shift): the schedule of the
# benchmarks' flow rows. The analytic backbone's denoiser is exact under every one of these schedulers.
WAN_SHIFT = 3.0
SCHEDULERS = {
    "ddim": lambda: DDIMScheduler(clip_sample=False),
    "flow-euler": lambda: FlowMatchEulerDiscreteScheduler(shift=WAN_SHIFT),
    "unipc-flow": lambda: UniPCMultistepScheduler(
        use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=WAN_SHIFT, solver_order=2
    ),
}
SCHEDULE_NAMES = {"ddim": "DDIM", "flow-euler": f"rectified flow (FlowMatchEuler, shift {WAN_SHIFT:g})",
                  "unipc-flow": f"rectified flow (UniPC order 2, shift {WAN_SHIFT:g})"}  # fmt: skip
METRICS = ("seam_jump_ratio", "mirror_correlation", "repetition", "autocorrelation_error", "frechet_distance")


@dataclass(frozen=True)
class CompareConfig:
    samples: int = 256  # B: independent long videos per combination
    frame_shape: tuple[int, int, int] = (4, 8, 8)  # (C, H, W) of a latent frame
    num_frames: int = 16  # N: frames per clip
    prompt_frames: int = 4  # M
    num_clips: int = 4  # K
    steps: int = 50  # T: sampling steps
    lengthscale: float = 3.0  # of the prior's kernel, in frames
    window: int = 8  # frames per seam window for the Fréchet distance
    seed: int = 0
    scheduler: str = "ddim"  # a key of SCHEDULERS

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {sorted(SCHEDULERS)}; got {self.scheduler!r}")
        for name in ("samples", "num_frames", "steps", "window"):
            check_int(name, getattr(self, name), 1)
        check_int("num_clips", self.num_clips, 2)  # the metrics need a seam
        check_int("prompt_frames", self.prompt_frames, 1, self.num_frames - 1)
        check_int("seed", self.seed, 0)

    @property
    def clip_shape(self) -> tuple[int, ...]:
        c, h, w = self.frame_shape
        return (self.samples, c, self.num_frames, h, w)


def evaluate(video: torch.Tensor, clip_starts: list[int], config: CompareConfig, prior, reference) -> dict:
    """All metrics of one long video; `reference` is a true video of the process of the same length."""
    true_acf = prior.autocorrelation(np.arange(video.shape[2]))
    return scores(video, clip_starts, reference, true_acf, config.prompt_frames, config.num_frames,
                  config.window)  # fmt: skip


def scores(video: torch.Tensor, clip_starts: list[int], reference: torch.Tensor, reference_acf: np.ndarray,
           prompt_frames: int, num_frames: int, window: int) -> dict[str, float]:  # fmt: skip
    """METRICS of `video` against true videos `reference` (at least as long: the Fréchet windows) and the
    true autocorrelation by lag `reference_acf` (lags 0..L-1 at least: a kernel, or an empirical one)."""
    return {
        "seam_jump_ratio": metrics.seam_jump_ratio(video, clip_starts),
        "mirror_correlation": metrics.mirror_correlation(video, clip_starts, skip=prompt_frames),
        "repetition": metrics.repetition(video, min_lag=num_frames, reference=reference_acf),
        "autocorrelation_error": metrics.autocorrelation_error(video, reference_acf),
        "frechet_distance": metrics.frechet_distance(video, clip_starts, reference, window=window),
    }


def run(
    config: CompareConfig, combinations=DEFAULT_COMBINATIONS, progress: bool = False, oracle: bool = True
) -> list[dict[str, Any]]:
    """The reference process, the oracle continuation (unless `oracle` is False), then one row per
    combination; the oracle and every combination use the same seed."""
    parsed = {name: check_combination(name) for name in combinations}  # validate all before any work
    for joint in (p for p in parsed.values() if isinstance(p, Joint)):
        joint.check_clip(config.num_frames, config.prompt_frames)
    prior = make_prior(config)
    reference = true_videos(config, prior, torch.Generator().manual_seed(config.seed + 1))
    fresh = true_videos(config, prior, torch.Generator().manual_seed(config.seed + 2))
    free = dict.fromkeys(COST, 0.0)  # no backbone: true draws
    rows = [{"strategies": REFERENCE, **score_reference(config, prior, reference, fresh)[1], **free}]
    if oracle:
        generator = torch.Generator().manual_seed(config.seed)
        rows.append({"strategies": ORACLE, **score_oracle(config, prior, generator, reference)[1], **free})
    for name, strategies in parsed.items():
        generator, cost = torch.Generator().manual_seed(config.seed), {}
        if isinstance(strategies, Joint):
            values = score_joint(config, prior, strategies, generator, reference, cost)[1]
        else:
            values = score_sampler(config, prior, strategies, generator, reference, progress, cost)[1]
        rows.append({"strategies": name, **values, **cost})
    return rows


def make_prior(config: CompareConfig) -> GaussianVideoPrior:
    """The analytic backbone of `config`: the Gaussian process with its clip length, frames and kernel."""
    return GaussianVideoPrior(config.num_frames, config.frame_shape, config.lengthscale)


def true_videos(config: CompareConfig, prior: GaussianVideoPrior, generator: torch.Generator) -> torch.Tensor:
    """`samples` true long videos of the process, K clips long: (B, C, N * K, H, W)."""
    return prior.sample_long(config.num_frames * config.num_clips, config.samples, generator)


def score_sampler(config: CompareConfig, prior: GaussianVideoPrior, strategies: Sequence[Any],
                  generator: torch.Generator, reference: torch.Tensor, progress: bool = False,
                  cost: dict | None = None) -> tuple[int, dict[str, float]]:  # fmt: skip
    """(frames, METRICS) of the long videos `strategies` sample from `prior` with the config's scheduler
    (noise from `generator`), against the true videos `reference` (`true_videos`); `cost`, if given,
    receives COST (frame evaluations per output frame)."""
    scheduler = SCHEDULERS[config.scheduler]()
    sampler = LongVideoSampler(strategies, prompt_frames=config.prompt_frames, progress=progress)
    denoiser = CountingDenoiser(prior.denoiser(scheduler))
    video = sampler.sample(denoiser, scheduler, config.clip_shape, config.num_clips, config.steps,
                           generator=generator)  # fmt: skip
    if cost is not None:
        cost.update(denoiser.per_output_frame(video.latents.shape[2]))
    return video.latents.shape[2], evaluate(video.latents, video.clip_starts, config, prior, reference)


def check_combination(name: str) -> list[Any] | Joint:
    """A strategy list (samplers.registry), Joint for JOINT_COMBINATIONS' names, or 'windows:...+<noise
    initializers>'; ValueError naming what is allowed otherwise."""
    name = name.strip()
    if name in JOINT_METHODS:
        return Joint(name)
    method, plus, noise = name.partition("+")
    if plus and method.strip() in JOINT_METHODS:
        return _joint_with_noise(method.strip(), noise)
    parts = [part.strip() for part in name.split(",")]
    joint = [part for part in parts if part in JOINT_METHODS]
    if joint:
        raise ValueError(f"{joint[0]!r} makes the whole long video at once and does not compose with the "
                         f"clip-by-clip strategies of {name!r}: name it alone (FreeNoise's noise rule with "
                         "window fusion is 'freenoise')")  # fmt: skip
    if name.startswith(("windows", "fifo")):
        raise ValueError(f"a method that is not clip by clip must be one of {JOINT_COMBINATIONS}; "
                         f"got {name!r}")  # fmt: skip
    return parse_strategies(name)


def _joint_with_noise(method: str, noise: str) -> Joint:
    """`method` with the initial noise of the noise initializers named in `noise`."""
    if method not in NOISE_TAKERS:
        raise ValueError(f"{method!r} makes its own noise; only {NOISE_TAKERS} take a noise composition "
                         f"('+{noise}')")  # fmt: skip
    if not noise.strip():
        raise ValueError(f"'{method}+' must name noise initializers after '+', e.g. '{method}+fnr,pns:4'")
    strategies = parse_strategies(noise)
    guidances = [s for s in strategies if isinstance(s, LatentGuidance)]  # (a guidance is callable too)
    if guidances:
        raise ValueError(f"{method!r} takes noise initializers after '+', not guidances, which act on clips: "
                         f"got {guidances[0]!r}")  # fmt: skip
    return Joint(method, tuple(strategies))


def score_joint(config: CompareConfig, prior: GaussianVideoPrior, joint: Joint, generator: torch.Generator,
                reference: torch.Tensor,
                cost: dict | None = None) -> tuple[int, dict[str, float]]:  # fmt: skip
    """(frames, METRICS) of `joint` (check_combination's) making K N frames at once, seams where
    benchmarks.joint says; `cost`, if given, receives COST."""
    scheduler = SCHEDULERS[config.scheduler]()
    denoiser = CountingDenoiser(prior.denoiser(scheduler))
    video = joint.sample(denoiser, scheduler, config.clip_shape, config.num_clips, config.steps, generator,
                         config.prompt_frames)  # fmt: skip
    if cost is not None:
        cost.update(denoiser.per_output_frame(video.latents.shape[2]))
    return video.latents.shape[2], evaluate(video.latents, video.clip_starts, config, prior, reference)


def score_oracle(config: CompareConfig, prior: GaussianVideoPrior, generator: torch.Generator,
                 reference: torch.Tensor) -> tuple[int, dict[str, float]]:  # fmt: skip
    """(frames, METRICS) of oracle continuations (ORACLE) of `samples` videos, K clips of N frames, cut at
    the clip starts; no scheduler: each clip is an exact draw."""
    video = prior.sample(config.samples, generator, torch.float64)
    for _ in range(config.num_clips - 1):
        video = torch.cat([video, prior.sample_continuation(video, config.num_frames, generator)], dim=2)
    starts = list(range(0, video.shape[2], config.num_frames))
    return video.shape[2], evaluate(video.float(), starts, config, prior, reference)


def score_reference(config: CompareConfig, prior: GaussianVideoPrior, truth: torch.Tensor,
                    second: torch.Tensor) -> tuple[int, dict[str, float]]:  # fmt: skip
    """(frames, METRICS) of the true videos `truth` cut at the clip starts, against a second, independent
    draw `second` (the Fréchet reference of the reference row itself)."""
    starts = list(range(0, truth.shape[2], config.num_frames))
    return truth.shape[2], evaluate(truth, starts, config, prior, second)


def columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """METRICS, then COST where the rows carry it (compare.run's do; the sweep's do not)."""
    return (*METRICS, *(c for c in COST if all(c in row for row in rows)))


def format_table(rows: list[dict[str, Any]], config: CompareConfig) -> str:
    shown = columns(rows)
    header = f"{'strategies':<22}" + "".join(f"{m:>23}" for m in shown)
    lines = [header, "-" * len(header)]
    lines += [f"{row['strategies']:<22}" + "".join(f"{row[m]:>23.4f}" for m in shown) for row in rows]
    lines.append(
        f"mirror_correlation pools offsets j >= M = {config.prompt_frames}; repetition is the peak "
        f"autocorrelation at lags >= N = {config.num_frames} minus the process's; autocorrelation_error is "
        f"over lags 1..L/2 against the process's kernel; frechet_distance compares {config.window}-frame "
        "seam windows with the same windows of true videos."
    )
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as the Markdown table the README quotes: 4 significant digits, float dust below 1e-9 as 0."""
    shown = columns(rows)
    lines = ["| strategies | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for row in rows:
        cells = ("0" if abs(row[m]) < 1e-9 else f"{row[m]:.4g}" for m in shown)
        lines.append(f"| {row['strategies']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["strategies", *columns(rows)])
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict[str, Any]], path, title: str) -> None:
    """One panel per metric: a bar per combination, the reference process as a dashed line."""
    reference, combos = rows[0], rows[1:]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 4.2))
    for ax, metric in zip(axes, METRICS, strict=True):
        bars = ax.bar(range(len(combos)), [r[metric] for r in combos], color="tab:blue")
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        if metric == "seam_jump_ratio":  # spans a duplicated frame (~0) to a cut (>> 1)
            ax.set_yscale("log")
        ax.axhline(reference[metric], color="black", linestyle="--", label=REFERENCE)
        ax.set_xticks(range(len(combos)), [r["strategies"] for r in combos], rotation=45, ha="right")
        ax.set_title(metric)
    axes[0].legend()
    fig.suptitle(title)
    save_figure(fig, path)


def main(argv=None) -> None:
    defaults = CompareConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="out/compare", help="folder for compare.csv and compare.png")
    parser.add_argument(
        "--combinations",
        default=";".join((*DEFAULT_COMBINATIONS, *PEER_COMBINATIONS, *JOINT_COMBINATIONS)),
        help="';'-separated strategy lists, each like 'fnr,pns:4,dsg:0.4'",
    )
    for field in ("samples", "num_clips", "steps", "seed"):
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=getattr(defaults, field))
    parser.add_argument("--scheduler", default=defaults.scheduler, choices=sorted(SCHEDULERS),
                        help=f"the sampling schedule (flow schedules with shift {WAN_SHIFT:g}, as Wan 2.1)")
    parser.add_argument("--progress", action="store_true", help="show tqdm progress bars")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    combinations = [c.strip() for c in args.combinations.split(";") if c.strip()]
    try:  # every check before any work: argparse's message and exit status 2
        out = check_out_folder("--out", args.out)
        config = CompareConfig(samples=args.samples, num_clips=args.num_clips, steps=args.steps,
                               seed=args.seed, scheduler=args.scheduler)  # fmt: skip
        for name in combinations:
            check_combination(name)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    paths = {"csv": out / "compare.csv", "png": out / "compare.png"}
    with exit_on_sigterm():
        rows = run(config, combinations, args.progress)
        print(format_table(rows, config))
        if args.markdown:
            print(markdown_table(rows))
        title = ", ".join(f"{k}={v}" for k, v in asdict(config).items())
        with atomic_files(paths) as tmp:  # both replaced together or neither
            write_csv(rows, tmp["csv"])
            plot(rows, tmp["png"], f"Gaussian-process backbone: {title}")
    print(f"wrote {paths['csv']} and {paths['png']}")


if __name__ == "__main__":
    main()
