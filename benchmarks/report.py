"""The kit's benchmark report: one Markdown page and its HTML rendering, with the PNGs beside them.

    python -m benchmarks.report --out benchmarks/report
    python -m benchmarks.report --sweep out/sweep/sweep.json      # reuse a sweep instead of running it
    python -m benchmarks.report --sweep-model out/sweep-model/sweep.json   # add section 2b

Sections: (1) strategy combinations on the analytic backbone (compare's metrics, the reference process
first); (2) the Figure-6 ablations of the sweep with the paper's claims checked on its numbers; (2b, with
--sweep-model) the same ablations and claims on the bundled model, read from a sweep of it; (3) the
reconstruction-guidance weight's trade-off and the best composition in the acceptance band; (4) the
bundled model's frames at every seam with its pixel metrics; (5) performance measured in this run.
Everything is computed in this process on one thread and written into a temporary folder beside --out;
its files replace those of --out only once all of them exist (the page last), so a failure midway
leaves a previous report as it was. Files of the report's own names that this run did not write (e.g.
section 2b's, from an earlier run with --sweep-model) are then removed from --out.
Section 1 samples the strategy combinations; section 2's sweep holds the ablations only (the report runs
it with no extra combinations, and leaves out those of a --sweep file), so no combination shows twice.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import torch

from benchmarks import compare, perf, seams, sweep, sweep_grid, tradeoff
from benchmarks.claims import CHECKS, MODEL_CHECKS, claims
from benchmarks.compare import CompareConfig
from benchmarks.document import Block, Code, Heading, Image, Paragraph, Table, number, to_html, to_markdown
from benchmarks.number_lists import format_numbers, parse_numbers
from benchmarks.sweep_model import ModelBackbone
from benchmarks.sweep_report import SHORT, extra_means, plot_ablations
from models.bundled import BUNDLED, missing_files
from models.files import exit_on_sigterm, move_into_place, remove, temporary_sibling
from models.threads import limit_threads
from samplers.validation import check_int

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "report"
PAGES = ("report.md", "report.html")  # moved into --out last, once every file they show is there
# The names of what a report writes (patterns): files of --out that match one and that a run did not
# write are stale and removed; every other file of --out is left alone.
OWN_NAMES = (*PAGES, "compare.png", "sweep.json", "sweep_*.png", "sweep_model.json", "tradeoff.csv",
             "tradeoff_*.png", "seams.png")  # fmt: skip
TITLE = "Reuse & Diffuse kit: benchmark report"
REPORT_PATHSPEC = f":(exclude){DEFAULT_OUT.relative_to(ROOT).as_posix()}"  # the committed report itself


@dataclass(frozen=True)
class PerfConfig:
    backbones: tuple[str, ...] = tuple(perf.BACKBONES)  # perf's backbones, each measured
    clips: int = 2  # clips per timed run
    steps: int = 10  # DDIM steps per clip
    repeats: int = 3  # alternated repeats of sampler and bare loop (medians)

    def __post_init__(self) -> None:
        unknown = [b for b in self.backbones if b not in perf.BACKBONES]
        if unknown or not self.backbones:
            raise ValueError(f"backbones must be some of {list(perf.BACKBONES)}; got {self.backbones!r}")
        for name in ("clips", "steps", "repeats"):
            check_int(name, getattr(self, name), 1)


# Section 2's sweep: the default ablations only. Section 1 samples the strategy combinations, which the
# sweep's default extras would sample a second time (on other seeds: other numbers for the same names).
SWEEP = sweep_grid.SweepConfig(extra_combinations=())


@dataclass(frozen=True)
class ReportConfig:
    sweep: sweep_grid.SweepConfig = SWEEP  # the Figure-6 sweep, run here unless sweep_json is set
    sweep_json: Path | None = None  # a sweep.json (benchmarks.sweep) to read instead of running the sweep
    sweep_model_json: Path | None = None  # a sweep.json of `benchmarks.sweep --backbone model`: section 2b
    tradeoff: tradeoff.TradeoffConfig = field(default_factory=tradeoff.TradeoffConfig)  # sections 1 and 3
    seams: seams.SeamsConfig = field(default_factory=seams.SeamsConfig)  # section 4
    perf: PerfConfig = field(default_factory=PerfConfig)  # section 5
    command: str = "python -m benchmarks.report"  # the command line quoted at the top of the page

    def check_inputs(self, out: Path) -> None:
        """The files this report reads exist and `out` can be a folder (the configs checked the rest)."""
        if out.exists() and not out.is_dir():
            raise ValueError(f"out must be a folder (or a path where one can be made); got {str(out)!r}")
        missing = missing_files(self.seams.model)
        if missing:
            raise ValueError(f"model must be a saved VidRD pipeline; {missing[0]} is missing")
        if self.sweep_json is not None:
            read_sweep("sweep_json", self.sweep_json, CompareConfig)
        if self.sweep_model_json is not None:
            read_sweep("sweep_model_json", self.sweep_model_json, ModelBackbone)


BACKBONE_FLAGS = {CompareConfig: "--backbone analytic", ModelBackbone: "--backbone model"}


def read_sweep(name: str, path: Path, backbone: type) -> tuple[list[dict], sweep_grid.SweepConfig]:
    """The rows and config of the sweep.json at `path`; ValueError naming `name` unless it is one whose
    backbone is a `backbone` (CompareConfig: `benchmarks.sweep`; ModelBackbone: `--backbone model`)."""
    wanted = f"{name} must be a sweep.json of {BACKBONE_FLAGS[backbone]}; got {str(path)!r}"
    try:
        rows, config = sweep.read_json(path)
    except (OSError, ValueError, TypeError, KeyError) as error:  # missing, not JSON, or not a sweep's
        raise ValueError(f"{wanted} ({type(error).__name__}: {error})") from error
    if not isinstance(config.backbone, backbone):
        raise ValueError(wanted)
    return rows, config


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh folder beside `out`; on success its files replace `out`'s of the same names, all together or
    none (`models.files.move_into_place`), then `out`'s files of the report's own names (OWN_NAMES) that
    this run did not write are removed."""
    folder = temporary_sibling(out, folder=True)
    try:
        yield folder
        out.mkdir(exist_ok=True)
        written = sorted(folder.iterdir(), key=lambda p: (p.name in PAGES, p.name))
        move_into_place([(path, out / path.name) for path in written])
        names = {path.name for path in written}
        for path in sorted(out.iterdir()):  # stale: the new page no longer shows them
            own = any(fnmatchcase(path.name, pattern) for pattern in OWN_NAMES)
            if own and path.name not in names and path.is_file():
                path.unlink()
    finally:
        remove(folder)


def build(config: ReportConfig, out=DEFAULT_OUT) -> Path:
    """Check the inputs, compute everything, write the page and its files into `out`; returns `out`."""
    out = Path(out)
    config.check_inputs(out)
    return _build(config, out)


def _build(config: ReportConfig, out: Path) -> Path:
    """`build` with inputs already checked (`parse_args` checks them)."""
    began = time.perf_counter()
    with staging(out) as folder, limit_threads(1):
        sweep_rows, sweep_config, sweep_seconds = _sweep(config)
        rows = tradeoff.run(config.tradeoff)
        videos = seams.generate(config.seams)
        timings = {
            name: perf.measure(name, config.perf.clips, config.perf.steps, config.perf.repeats)
            for name in config.perf.backbones
        }
        body = [
            *table_section(rows, config.tradeoff, folder),
            *sweep_section(sweep_rows, sweep_config, folder, config.sweep_json),
            *model_sweep_section(config.sweep_model_json, folder),
            *tradeoff_section(rows, config.tradeoff, folder),
            *seams_section(videos, config.seams, folder),
            *perf_section(timings, config.perf, sweep_seconds, videos, time.perf_counter() - began),
        ]
        blocks = [*header(config), *body]
        (folder / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
        (folder / "report.html").write_text(to_html(blocks, TITLE), encoding="utf-8")
    return out


def _sweep(config: ReportConfig) -> tuple[list[dict], sweep_grid.SweepConfig, float | None]:
    """The sweep's rows and config, run here (timed, single process) or read from sweep_json (no time)."""
    if config.sweep_json is not None:
        rows, sweep_config = read_sweep("sweep_json", config.sweep_json, CompareConfig)
        return rows, sweep_config, None
    began = time.perf_counter()
    rows = sweep.run(config.sweep)
    return rows, config.sweep, time.perf_counter() - began


# ---------------------------------------------------------------------------------------------- header


def git_commit() -> str:
    """The short commit of the checkout (and whether tracked files other than the committed report
    changed since), or why it is unknown."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", REPORT_PATHSPEC],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (git is not available)"
    dirty = " with uncommitted changes" if status.stdout.strip() else ""
    return f"`{head.stdout.strip()}`{dirty}"


def regenerate_commands(config: ReportConfig) -> str:
    s, t = config.seams, config.tradeoff.backbone
    lines = [
        f"{config.command}   # this page, everything below",
        "python -m benchmarks.sweep --out out/sweep --extras ''   # section 2 alone (add --sweep "
        "out/sweep/sweep.json to the report to reuse it)",
        f"python -m benchmarks.tradeoff --out out/tradeoff --samples {t.samples} --steps {t.steps} "
        f"--weights {format_numbers(config.tradeoff.weights)}   # sections 1 and 3",
        "python -m benchmarks.perf                       # section 5 with more repeats",
    ]
    if config.sweep_model_json is not None:
        lines.insert(2, "python -m benchmarks.sweep --backbone model --out out/sweep-model   # section 2b")
    for k, composition in enumerate(s.compositions):
        lines.append(
            f'vidrd generate "{s.caption}" --clips {s.clips} --frames {s.frames} --prompt-frames '
            f"{s.prompt_frames} --steps {s.steps} --guidance {s.guidance:g} --seed {s.seed} "
            f"--strategies {composition} --model {_shown(s.model)} --out out/seams-{k}"
            "   # section 4"
        )
    return "\n".join(lines)


def header(config: ReportConfig) -> list[Block]:
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, computed on one thread"
    )
    return [
        Heading(1, TITLE),
        Paragraph(
            f"Generated {date} from commit {git_commit()} on this machine ({machine}). "
            "Every number and figure below was computed by the command that wrote this page; "
            "timings are of this machine and this run."
        ),
        Paragraph("Regenerate everything (the first line) or each part:"),
        Code(regenerate_commands(config)),
    ]


def _bundled(path) -> bool:
    """Whether `path` is the bundled tiny VidRD's folder."""
    return Path(path).resolve() == BUNDLED.resolve()


def _shown(path: Path) -> str:
    """`path` relative to the repository where it is inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# ---------------------------------------------------------------------------------------------- sections


def _setting(b: CompareConfig, per_point: bool = False) -> str:
    """The analytic setting in words; `per_point` leaves out M and the seed (a sweep sets them per point)."""
    c, h, w = b.frame_shape
    fixed = "" if per_point else f"M={b.prompt_frames}, "
    return (
        f"the Gaussian-process backbone (exact denoiser, lengthscale {b.lengthscale:g} frames), DDIM "
        f"{b.steps} steps, N={b.num_frames} frames per clip, {fixed}{b.num_clips} clips, "
        f"{b.samples} videos of {c}x{h}x{w} latents" + ("" if per_point else f", seed {b.seed}")
    )


def _metric_row(name: str, row: dict[str, Any], metrics=compare.METRICS) -> tuple[str, ...]:
    return (f"`{name}`", *(number(row[m], ".4g") for m in metrics))


def table_section(rows: list[dict], config: tradeoff.TradeoffConfig, folder: Path) -> list[Block]:
    shown = [r for r in rows if r["strategies"] in (compare.REFERENCE, *config.combinations)]
    title = "Gaussian-process backbone, DDIM: " + _setting(config.backbone)
    compare.plot(shown, folder / "compare.png", title)
    in_band = {r["strategies"]: "yes" if tradeoff.in_band(r) else "no" for r in shown}
    return [
        Heading(2, "1. Strategy combinations on the analytic backbone"),
        Paragraph(
            f"Setting: {_setting(config.backbone)}; every combination samples from the same seed; the "
            "reference row scores true videos of the process cut at the same clip starts. Mirror "
            "correlation pools offsets j >= M; repetition is the peak autocorrelation at lags >= N "
            "minus the process's; the autocorrelation error is over lags 1..L/2; the Fréchet distance "
            f"compares {config.backbone.window}-frame seam windows with true ones. 'In band': seam-jump "
            f"ratio in [{tradeoff.SEAM_BAND[0]:g}, {tradeoff.SEAM_BAND[1]:g}] and autocorrelation error < "
            f"{tradeoff.ACF_LIMIT:g}."
        ),
        Table(
            ("strategies", *(SHORT[m] for m in compare.METRICS), "in band"),
            tuple((*_metric_row(r["strategies"], r), in_band[r["strategies"]]) for r in shown),
        ),
        Image("compare.png", "compare's metrics per combination"),
    ]


def sweep_section(rows: list[dict], config: sweep_grid.SweepConfig, folder: Path, source) -> list[Block]:
    """Section 2: the ablations and the claims; a sweep's extra combinations are section 1's, not shown."""
    origin = "run in this process" if source is None else f"read from `{source}`"
    extras = (
        " Its extra combinations at the default point are left out here: section 1 shows those combinations."
        if config.extra_combinations
        else ""
    )
    return [
        Heading(2, "2. The paper's Figure-6 ablations"),
        Paragraph(
            f"The sweep ({origin}; its rows are in `sweep.json`): {_setting(config.backbone, True)} per "
            f"point, seeds {list(config.seeds)}; each ablation moves one parameter with the others at "
            f"M={config.prompt_frames}, alpha={config.alpha:g}, beta={config.beta:g}. Lines are means "
            f"over seeds, bands min-max, the dashed line the reference process.{extras}"
        ),
        *_ablations(rows, config, folder, "sweep", CHECKS, extras=False),
    ]


def model_sweep_section(source: Path | None, folder: Path) -> list[Block]:
    """Section 2b from a sweep.json of the model backbone; nothing without one."""
    if source is None:
        return []
    rows, config = read_sweep("sweep_model_json", source, ModelBackbone)
    b = config.backbone
    return [
        Heading(2, f"2b. The ablations on {'the bundled model' if _bundled(b.model) else 'a saved VidRD'}"),
        Paragraph(
            f"The sweep of `benchmarks.sweep --backbone model` (read from `{source}`; its rows are in "
            f"`sweep_model.json`): model `{_shown(b.model)}`, per point {b.samples} long videos of "
            f"{b.num_clips} clips of N={b.num_frames} frames in one batch, DDIM {b.steps} steps, "
            f"classifier-free guidance {b.guidance:g}, seeds {list(config.seeds)}; each ablation moves one "
            f"parameter with the others at M={config.prompt_frames}, alpha={config.alpha:g}, "
            f"beta={config.beta:g}. The captions are those of {b.samples} true long videos of the world "
            "drawn with the point's seed (bouncing shapes); the metrics are section 2's in latent space "
            "with those videos, encoded by the model's VAE, as the reference (their empirical "
            "autocorrelation replaces the analytic kernel), plus pixel metrics of the decoded frames: the "
            "velocity jump at the seams (px/frame), the share of seams whose motion reverses, the speed "
            "inside clips. The reference process is the encoded true videos against a second draw (in "
            "pixels: their rendered frames). Lines are means over seeds, the dashed line the reference."
        ),
        *_ablations(rows, config, folder, "sweep_model", MODEL_CHECKS),
    ]


def _ablations(rows: list[dict], config: sweep_grid.SweepConfig, folder: Path, name: str, checks,
               extras: bool = True) -> list[Block]:  # fmt: skip
    """The sweep's plots, its rows as `name`.json, the paper's claims and (`extras`) the extras' table."""
    images = plot_ablations(rows, config, folder, name)
    sweep.write_json(rows, config, folder / f"{name}.json")
    blocks: list[Block] = [
        *(Image(path.name, f"{path.stem} ablation") for path in images),
        Heading(3, "The paper's claims on these numbers"),
    ]
    for claim in claims(rows, config, checks):
        blocks.append(Paragraph(f"**{claim.statement}.** {claim.text}"))
    means = extra_means(rows, config) if extras else {}
    if means:
        blocks += [
            Paragraph("Extra combinations at the default point (means over seeds):"),
            Table(
                ("combination", *(SHORT[m] for m in config.metrics)),
                tuple(_metric_row(name, row, config.metrics) for name, row in means.items()),
            ),
        ]
    return blocks


def tradeoff_section(rows: list[dict], config: tradeoff.TradeoffConfig, folder: Path) -> list[Block]:
    tradeoff.plot_curve(rows, config, folder / "tradeoff_curve.png")
    tradeoff.plot_scatter(rows, config, folder / "tradeoff_scatter.png")
    compare.write_csv(rows, folder / "tradeoff.csv")
    values = tradeoff.curve(rows, config)
    table = tuple(
        (
            f"{w:g}",
            *(number(values[m][k], ".4g") for m in tradeoff.PANELS),
            "yes" if tradeoff.in_band({m: values[m][k] for m in compare.METRICS}) else "no",
        )
        for k, w in enumerate(config.weights)
    )
    return [
        Heading(2, "3. Reconstruction guidance: the weight's trade-off"),
        Paragraph(
            f"`{tradeoff.CURVE_LABEL}` for w = {format_numbers(config.weights, ', ')} in the setting of "
            "section 1 (rows in `tradeoff.csv`; w = 0 is the overlap alone). The green areas are the "
            f"acceptance band; the dotted red line is the paper's `{compare.PAPER}`, the dashed black one "
            "the reference process."
        ),
        Image("tradeoff_curve.png", "metrics against the reconstruction-guidance weight"),
        Table(("w", *(SHORT[m] for m in tradeoff.PANELS), "in band"), table),
        Image("tradeoff_scatter.png", "seam-jump ratio against autocorrelation error, every combination"),
        Paragraph(tradeoff.describe_best(rows, config)),
    ]


def seams_section(videos: list[seams.SeamVideo], config: seams.SeamsConfig, folder: Path) -> list[Block]:
    seams.plot(videos, config, folder / "seams.png")
    weights = Path(config.model) / "unet" / "diffusion_pytorch_model.safetensors"
    digest = hashlib.sha256(weights.read_bytes())
    rows = []
    for video in videos:
        latent, pixel = video.metrics["latent"], video.metrics["pixel"]
        rows.append(
            (
                f"`{video.composition}`",
                str(video.clip_starts),
                number(latent["seam_jump_ratio"]),
                number(latent["mirror_correlation"]),
                number(pixel["mean_speed_inside"]),
                number(pixel["mean_velocity_jump"]),
                number(pixel["jump_to_speed_ratio"]),
                f"{pixel['direction_reversals']} of {pixel['seams_with_clear_direction']}",
            )
        )
    bundled = _bundled(config.model)
    return [
        Heading(2, f"4. {'The bundled' if bundled else 'A saved'} VidRD at its seams"),
        Paragraph(
            f"Model `{_shown(config.model)}`{' (the bundled tiny VidRD)' if bundled else ''}, UNet weights "
            f"sha256 `{digest.hexdigest()[:12]}`; "
            f'caption "{config.caption}", {config.clips} clips of N={config.frames} frames, '
            f"M={config.prompt_frames}, DDIM {config.steps} steps, guidance {config.guidance:g}, seed "
            f"{config.seed}. Each row shows, for every seam, the last {config.context} frames before it "
            f"and the first {config.context} after it (red line). The overlap drops the prompt frames it "
            "repeats, so its clips after the first are N-M frames long; recon's weight is a whole "
            "trajectory's, the same at any number of steps."
        ),
        Image("seams.png", "frames either side of every seam, one row per composition"),
        Paragraph(smoothest(videos)),
        Table(
            (
                "composition",
                "clip starts",
                "seam-jump (latents)",
                "mirror corr. (latents)",
                "speed inside (px/frame)",
                "velocity jump at seams (px/frame)",
                "jump / speed",
                "direction reversals (of seams with a clear direction)",
            ),
            tuple(rows),
        ),
    ]


def smoothest(videos: list[seams.SeamVideo]) -> str:
    """Which composition has the smallest mean velocity jump at its seams, against its speed inside clips."""
    jumps = {v.composition: v.metrics["pixel"]["mean_velocity_jump"] for v in videos}
    finite = {name: jump for name, jump in jumps.items() if math.isfinite(jump)}
    if not finite:
        return "No composition has a measurable velocity jump (no object found at the seams)."
    name = min(finite, key=finite.get)
    others = "; ".join(f"`{n}` {number(j)}" for n, j in jumps.items() if n != name)
    return (
        f"Smallest mean velocity jump at the seams: `{name}`, {number(finite[name])} px/frame "
        f"(others: {others}). A continuous motion has ~0; the speed inside clips sets the scale."
    )


def perf_section(timings: dict, config: PerfConfig, sweep_seconds, videos, seconds: float) -> list[Block]:
    rows = tuple(
        (
            f"`{name}`",
            number(r["call_ms"], ".3g"),
            number(r["bare_s"], ".3g"),
            number(r["sampler_s"], ".3g"),
            number(r["ratio"], ".3f"),
        )
        for name, r in timings.items()
    )
    swept = (
        "not measured in this run (the sweep was read from a file)"
        if sweep_seconds is None
        else f"{sweep_seconds:.1f} s in one process"
    )
    speed = "; ".join(
        f"`{v.composition}` {len(v.frames) / v.seconds:.1f} frames/s ({len(v.frames)} frames in "
        f"{v.seconds:.1f} s)"
        for v in videos
    )
    return [
        Heading(2, "5. Performance (measured on this machine, in this run)"),
        Paragraph(
            f"Sampler overhead (`benchmarks.perf`): `LongVideoSampler` with FNR+PNS(4)+DSG(0.4) against a "
            f"bare diffusers DDIM loop making the same denoiser calls, {config.clips} clips x "
            f"{config.steps} steps, medians of {config.repeats} alternated repeats, one thread."
        ),
        Table(("backbone", "one call (ms)", "bare loop (s)", "sampler (s)", "ratio sampler / bare"), rows),
        Paragraph(
            f"The sweep of section 2: {swept}. Generation with the bundled model (section 4, sampling "
            f"and decoding, one thread): {speed}. This whole report: {seconds:.0f} s."
        ),
    ]


# ---------------------------------------------------------------------------------------------- entry point


def parse_args(argv=None) -> tuple[argparse.Namespace, ReportConfig]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    t, s, p = tradeoff.TradeoffConfig(), seams.SeamsConfig(), PerfConfig()
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the report (replaced files)")
    parser.add_argument("--sweep", type=Path, help="a sweep.json to use instead of running the default sweep")
    parser.add_argument("--sweep-model", type=Path, help="a sweep.json of --backbone model: adds section 2b")
    parser.add_argument(
        "--samples", type=int, default=t.backbone.samples, help="videos per combination, sections 1 and 3"
    )
    parser.add_argument("--steps", type=int, default=t.backbone.steps, help="DDIM steps of sections 1 and 3")
    parser.add_argument("--weights", default=format_numbers(t.weights), help="recon weights of section 3")
    parser.add_argument("--model", type=Path, default=s.model, help="saved VidRD pipeline (section 4)")
    parser.add_argument("--caption", default=s.caption, help="caption of section 4")
    parser.add_argument("--clips", type=int, default=s.clips, help="clips of section 4")
    parser.add_argument("--model-steps", type=int, default=s.steps, help="DDIM steps of section 4")
    parser.add_argument("--perf-repeats", type=int, default=p.repeats, help="repeats of section 5")
    parser.add_argument("--perf-backbones", default=",".join(p.backbones), help=f"of {list(perf.BACKBONES)}")
    args = parser.parse_args(argv)
    try:
        weights = parse_numbers(args.weights)
    except ValueError as error:
        parser.error(f"--weights takes numbers: {error}")
    argv_shown = sys.argv[1:] if argv is None else list(argv)
    config = ReportConfig(
        sweep_json=args.sweep,
        sweep_model_json=args.sweep_model,
        tradeoff=replace(
            t, backbone=replace(t.backbone, samples=args.samples, steps=args.steps), weights=weights
        ),
        seams=replace(s, model=args.model, caption=args.caption, clips=args.clips, steps=args.model_steps),
        perf=replace(
            p,
            backbones=tuple(b.strip() for b in args.perf_backbones.split(",") if b.strip()),
            repeats=args.perf_repeats,
        ),
        command=shlex.join(["python", "-m", "benchmarks.report", *argv_shown]),
    )
    config.check_inputs(args.out)
    return args, config


def main(argv=None) -> None:
    args, config = parse_args(argv)  # everything validated before any work, once
    began = time.perf_counter()
    with exit_on_sigterm():  # SIGTERM unwinds: the staging folder is removed, --out left as it was
        out = _build(config, args.out)
    print(f"wrote {out}/report.md and report.html in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
