"""The benchmark report's sections as document blocks (`benchmarks.document`): the header with the commit
and the commands that regenerate each part, then one renderer per section. Each takes computed rows and
writes its figures into the staging folder it is given; nothing here samples or times anything."""

from __future__ import annotations

import hashlib
import math
import os
import platform
import shlex
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from benchmarks import compare, seams, sweep, sweep_grid, tradeoff
from benchmarks.claims import CHECKS, MODEL_CHECKS, claims, label
from benchmarks.compare import CompareConfig
from benchmarks.document import Block, Code, Heading, Image, Paragraph, Table, number
from benchmarks.figures import save_figure
from benchmarks.model_continuity import regenerate_flags
from benchmarks.number_lists import format_numbers
from benchmarks.report_config import REPORT_PATHSPEC, ROOT, TITLE, PerfConfig, ReportConfig, read_continuity
from benchmarks.report_science import interval_table
from benchmarks.sweep_report import SHORT, extra_means, plot_ablations
from models.bundled import BUNDLED


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
        f"python -m benchmarks.compare --scheduler {config.flow_scheduler} --samples {t.samples} "
        f"--steps {t.steps}   # section 6's table",
        f"python -m benchmarks.sweep --scheduler {config.flow_scheduler} --out out/sweep-flow --extras ''"
        "   # section 6's claims",
    ]
    if config.sweep_model_json is not None:
        lines.insert(2, "python -m benchmarks.sweep --backbone model --out out/sweep-model   # section 2b")
    if config.continuity_json is not None:
        study = read_continuity(config.continuity_json)
        model, out = (shlex.quote(_shown(path)) for path in (study["model"], config.continuity_json))
        flags = f"--model {model} {regenerate_flags(study)} --out {out}"
        lines.insert(3, f"python -m benchmarks.model_continuity {flags}   # section 2c")
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
        f"the Gaussian-process backbone (exact denoiser, lengthscale {b.lengthscale:g} frames), "
        f"{compare.SCHEDULE_NAMES[b.scheduler]} {b.steps} steps, N={b.num_frames} frames per clip, "
        f"{fixed}{b.num_clips} clips, "
        f"{b.samples} videos of {c}x{h}x{w} latents" + ("" if per_point else f", seed {b.seed}")
    )


def _metric_row(name: str, row: dict[str, Any], metrics=compare.METRICS) -> tuple[str, ...]:
    return (f"`{name}`", *(number(row[m], ".4g") for m in metrics))


def table_section(rows: list[dict], config: tradeoff.TradeoffConfig, folder: Path) -> list[Block]:
    shown = [r for r in rows if r["strategies"] in (compare.REFERENCE, compare.ORACLE, *config.combinations)]
    title = "Gaussian-process backbone: " + _setting(config.backbone)
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
            ("strategies", *(SHORT[m] for m in compare.METRICS), "frame evals / frame", "in band"),
            tuple((*_metric_row(r["strategies"], r), number(r["frame_evals"], ".4g"),
                   in_band[r["strategies"]]) for r in shown),
        ),
        Image("compare.png", "compare's metrics per combination"),
        *cost_paragraphs(shown, folder),
    ]


def cost_paragraphs(rows: list[dict], folder: Path) -> list[Block]:
    """Which method is closest to the true process at which cost, the best clip-by-clip composition
    against the oracle continuation, and the quality-versus-cost chart."""
    by_name = {r["strategies"]: r for r in rows}
    methods = [r for r in rows if r["strategies"] not in (compare.REFERENCE, compare.ORACLE)]
    in_band = [r for r in methods if tradeoff.in_band(r)]
    closest = min(in_band, key=lambda r: r["autocorrelation_error"], default=None)
    seams = min(in_band, key=lambda r: r["frechet_distance"], default=None)
    best, oracle = tradeoff.best(rows), by_name[compare.ORACLE]

    def stated(r: dict) -> str:
        backward = f" and {r['backward_evals']:.4g} backward" if r["backward_evals"] else ""
        return (f"`{r['strategies']}` (seam-jump ratio {r['seam_jump_ratio']:.3f}, autocorrelation error "
                f"{r['autocorrelation_error']:.4f}, Fréchet {r['frechet_distance']:.4f}, "
                f"{r['frame_evals']:.4g} frame evaluations{backward} per output frame)")  # fmt: skip

    if closest is None:
        text = "No method is in band."
    else:
        text = (f"Closest to the true process among the methods in band, by autocorrelation error: "
                f"{stated(closest)}.")  # fmt: skip
        if seams is not closest:
            text += f" The smallest Fréchet distance at the seams in band: {stated(seams)}."
    if best is not None:
        named = "that one" if best is closest else stated(best)
        text += (f" The best clip-by-clip composition is {named}; the oracle continuation (each clip an "
                 f"exact draw given every frame before it, the ceiling of clip-by-clip methods) has "
                 f"seam-jump ratio {oracle['seam_jump_ratio']:.3f}, autocorrelation error "
                 f"{oracle['autocorrelation_error']:.4f}, Fréchet {oracle['frechet_distance']:.4f}.")
    text += (" Methods that are not clip by clip (windows, FreeNoise, FIFO) have their seam metrics read at "
             "window starts or every N frames (benchmarks.joint); FIFO runs its own n N steps.")
    cost_chart(methods, folder / "quality_cost.png")
    return [Paragraph(text), Image("quality_cost.png", "autocorrelation error against backbone work")]


def cost_chart(rows: list[dict], path: Path, metric: str = "autocorrelation_error",
               reference: float | None = None) -> None:  # fmt: skip
    """Each method a point: backbone evaluations per output frame (log) against `metric` (log); on the
    analytic backbone the points in band are red and the band's limit is drawn, else `reference` (the
    true videos' value) is."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    analytic = reference is None
    for r in rows:
        x, y = r["frame_evals"] + r["backward_evals"], max(r[metric], 1e-4)
        ax.scatter(x, y, color="tab:red" if analytic and tradeoff.in_band(r) else "tab:blue")
        ax.annotate(r["strategies"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if analytic:
        ax.axhline(tradeoff.ACF_LIMIT, color="grey", linestyle=":", label="band's autocorrelation limit")
    else:
        ax.axhline(reference, color="black", linestyle="--", label=compare.REFERENCE)
    ax.set(xscale="log", yscale="log", xlabel="backbone evaluations per output frame (forward + backward)",
           ylabel=metric.replace("_", " "))  # fmt: skip
    ax.legend(fontsize=8)
    save_figure(fig, path)


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


def model_sweep_section(model_sweep: tuple[list[dict], sweep_grid.SweepConfig] | None, source: Path | None,
                        folder: Path) -> list[Block]:  # fmt: skip
    """Section 2b from the rows and config of a sweep.json of the model backbone (read from `source`);
    nothing without one."""
    if model_sweep is None:
        return []
    rows, config = model_sweep
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
        *interval_table(rows, config),
        *_model_cost(rows, config, folder),
    ]


def _model_cost(rows: list[dict], config: sweep_grid.SweepConfig, folder: Path) -> list[Block]:
    """The model's quality-versus-cost chart: the extras and the paper's default point, velocity jump at
    the seams against guided evaluations per output frame, the true videos' jump as the reference."""
    means = extra_means(rows, config)
    first = [r for r in rows if r["seed"] == config.seeds[0] and r["prompt_frames"] == config.prompt_frames]
    paper = next((r for r in first if r["template"] == sweep_grid.PAPER_TEMPLATE
                  and (r["alpha"], r["beta"]) == (config.alpha, config.beta)), None)  # fmt: skip
    reference = next((r for r in first if r["template"] == compare.REFERENCE), None)  # no alpha, beta
    if not means or reference is None:
        return []
    points = [{"strategies": name, **row} for name, row in means.items()]
    if paper is not None:
        points.append({"strategies": paper["combination"], **paper})
    cost_chart(points, folder / "quality_cost_model.png", "velocity_jump", reference["velocity_jump"])
    return [
        Paragraph("Velocity jump at the seams against backbone work on the model (evaluations of the guided "
                  f"model per output frame; first seed's paper point, extras' means; the dashed line is the "
                  f"true videos' {reference['velocity_jump']:.3g} px/frame):"),
        Image("quality_cost_model.png", "velocity jump against backbone work, bundled model"),
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
            f"{config.steps} steps, medians of {config.repeats} alternated repeats, one thread, in a child "
            "process whose allocator keeps the memory it frees (`benchmarks.perf.ALLOCATOR_ENV`: with "
            "glibc's defaults, page faults from returned 16 MB blocks move either loop by up to 20%; "
            "`python -m benchmarks.perf --allocator system` measures them)."
        ),
        Table(("backbone", "one call (ms)", "bare loop (s)", "sampler (s)", "ratio sampler / bare"), rows),
        Paragraph(
            f"The sweep of section 2: {swept}. Generation with the bundled model (section 4, sampling "
            f"and decoding, one thread): {speed}. This whole report: {seconds:.0f} s."
        ),
    ]


# ---------------------------------------------------------------------------------------------- entry point




Sweep = tuple[list[dict], sweep_grid.SweepConfig]  # a sweep's rows and config


def flow_section(rows: list[dict], config: ReportConfig, ddim_sweep: Sweep, flow_sweep: Sweep,
                 folder: Path) -> list[Block]:  # fmt: skip
    """Section 6: section 1's table and section 2's claims under rectified flow, the claims beside DDIM's."""
    b = config.flow_backbone
    names = (compare.REFERENCE, compare.ORACLE, *config.tradeoff.combinations)
    shown = [r for r in rows if r["strategies"] in names]
    compare.plot(shown, folder / "compare_flow.png", "Gaussian-process backbone: " + _setting(b))
    sweep.write_json(*flow_sweep, folder / "sweep_flow.json")
    before, after = claims(*ddim_sweep, CHECKS), claims(*flow_sweep, CHECKS)
    changed = [a.statement for a, f in zip(before, after, strict=True) if label(a) != label(f)]
    return [
        Heading(2, f"6. Under {compare.SCHEDULE_NAMES[b.scheduler]}"),
        Paragraph(
            f"Section 1's table with {_setting(b)}: the analytic backbone's denoiser is exact under "
            "rectified flow too (x_s = (1 - s) x0 + s eps, the model predicting v = eps - x0), so the rows "
            "differ from section 1's only by the schedule."
        ),
        Table(
            ("strategies", *(SHORT[m] for m in compare.METRICS), "in band"),
            tuple((*_metric_row(r["strategies"], r), "yes" if tradeoff.in_band(r) else "no") for r in shown),
        ),
        Image("compare_flow.png", "compare's metrics per combination under rectified flow"),
        Paragraph(
            f"Section 2's sweep under the same schedule (its rows in `sweep_flow.json`), the paper's claims "
            f"beside section 2's: {len(changed)} of {len(after)} verdicts change"
            + (f" ({'; '.join(changed)})." if changed else ".")
        ),
        Table(("claim", "DDIM", "rectified flow"), tuple(
            (a.statement, label(a), label(f)) for a, f in zip(before, after, strict=True)
        )),
        *(Paragraph(f"**{claim.statement}** (rectified flow). {claim.text}") for claim in after),
    ]
