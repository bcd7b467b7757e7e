"""`vidrd generate`: a long video from a text prompt with the bundled tiny VidRD (or any saved VidRD, or
any diffusers video pipeline saved with save_pretrained: --pipeline).

    vidrd generate "a red circle moving right" --clips 8 --strategies fnr,pns:4,dsg:0.4 --out out/
    python -m benchmarks.cli generate "a red circle moving right | a red circle moving left" --clips 2
    vidrd generate "a corgi runs along the beach" --pipeline local/Wan2.1-T2V-1.3B-Diffusers --frames 81 \
        --height 480 --width 832 --clips 6 --prompt-frames 4 --steps 50 --guidance 5

Several prompts separated by "|" give one prompt per clip (story mode). Writes into --out:

    video.mp4 (or video.gif)   every frame, clip after clip
    contact_sheet.png          one row per clip; the first frame after each seam framed in red
    metrics.json               the parameters, clip starts, latent-space continuity metrics
                               (benchmarks.metrics), pixel-space centroid metrics (benchmarks.pixel_metrics),
                               VBench-style temporal quality (benchmarks.temporal_quality),
                               subject consistency across clips from the world's classifier
                               (benchmarks.subject_consistency),
                               the same metrics of true long videos of a long-world caption
                               (benchmarks.true_reference) and timings

Every argument is checked before any work (ValueError naming it, its value and the allowed range). The
three files are written to temporary files beside their targets and renamed into place only once all
three are complete, so a failure midway leaves a previous run's files as they were.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.classifier import CLASSIFIERS, load_classifier
from benchmarks.cli_compare import COMPARED, compare_jobs, run_compare, table_lines
from benchmarks.cli_diffusers import check_pipeline_folder, load_long_pipeline, sample_long
from benchmarks.document import number
from benchmarks.number_lists import json_safe
from benchmarks.pixel_metrics import SHAPE_SATURATION
from benchmarks.streaming import ContactSheetClips, FanOutSink, LatentMetrics, PixelMetrics
from benchmarks.subject_consistency import SubjectConsistency
from benchmarks.temporal_quality import TemporalQuality
from benchmarks.true_reference import true_reference
from models.bundled import (
    BUNDLED,
    VIDRD_FRAMES,
    VIDRD_GUIDANCE,
    VIDRD_STEPS,
    load_pipeline,
    missing_files,
)
from models.contact_sheet import save_contact_sheet
from models.data.long_world import parse_caption
from models.files import atomic_files, check_out_folder, exit_on_sigterm, remove
from models.flow import read_defaults
from models.loading import DamagedCheckpointError
from models.long_pipeline import PipelineInputError
from models.resume import ClipStore, ResumeError
from models.threads import limit_threads
from models.video_io import MAX_FPS, FrameSink, VideoFileSink
from samplers import Clip, LongVideoSampler
from samplers.registry import KIT_DEFAULT, PAPER, STRATEGIES, parse_strategies
from samplers.validation import check_int, check_real

PROMPT_SEPARATOR = "|"
SHEET_NAME = "contact_sheet.png"
SHEET_ROWS = 8  # clips the contact sheet shows at most (evenly spaced, first and last): its size is bounded
METRICS_NAME = "metrics.json"
FORMATS = ("mp4", "gif")
RESUME_FOLDER = ".vidrd-resume"  # in --out: what the next clip needs, kept after every clip (models.resume)


@dataclass(frozen=True)
class GenerateJob:
    """The validated arguments of `vidrd generate`."""

    prompt: str
    prompts: tuple[str, ...]  # one, or one per clip
    clips: int
    strategies: str
    out: Path
    frames: int | None = VIDRD_FRAMES  # None with --pipeline: the pipeline's own default
    prompt_frames: int = 2
    steps: int | None = VIDRD_STEPS  # None with --pipeline: the pipeline's own default
    guidance: float | None = VIDRD_GUIDANCE
    seed: int = 0
    model: Path = BUNDLED
    pipeline: Path | None = None  # a saved diffusers pipeline, used instead of `model`
    kit_world: bool = True  # a model of the kit's worlds (a VidRD or flow bundle): the world's metrics apply
    height: int | None = None
    width: int | None = None
    format: str = "mp4"
    fps: int = 8
    drop_prompt_frames: bool = False  # resolved from the flag and the strategies (see job_from_args)
    progress: bool = False
    resume: bool = False  # continue a killed run from --out's resume folder (RESUME_FOLDER)
    # The sampler built once from --strategies, --prompt-frames, --[no-]drop-prompt-frames, --progress:
    # parsed here only, and what the pipeline runs (its strategies are listed in metrics.json).
    sampler: LongVideoSampler | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def paths(self) -> dict[str, Path]:
        return {
            "video": self.out / f"video.{self.format}",
            "contact_sheet": self.out / SHEET_NAME,
            "metrics": self.out / METRICS_NAME,
        }

    def parameters(self) -> dict[str, Any]:
        """What decides the result (how the run went, e.g. `resume`, is under the metrics' "timing")."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values = {k: v for k, v in values.items() if k not in ("resume", "sampler")}
        return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


@dataclass(frozen=True)
class GenerateResult:
    paths: dict[str, Path]
    metrics: dict[str, Any]


# ----------------------------------------------------------------------------------------------------
# Arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidrd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser(
        "generate",
        help="generate a long video, its contact sheet and metrics",
        description="Generate a long video clip by clip and write video.mp4 (or .gif), contact_sheet.png "
        "and metrics.json into --out.",
    )
    gen.add_argument("prompt", help='the text; "a | b | c" gives one prompt per clip (story mode)')
    gen.add_argument("--clips", type=int, default=8, help="number of clips K (default 8)")
    gen.add_argument("--strategies", default=KIT_DEFAULT,
                     help=f"from {sorted(STRATEGIES)} (default {KIT_DEFAULT}; the paper's: {PAPER})")
    gen.add_argument("--compare", action="store_true",
                     help=f"also run {', '.join(COMPARED.values())}: one seam sheet, one table (compare.*)")
    gen.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out/)")
    gen.add_argument("--frames", type=int, default=None,
                     help=f"frames per clip N (default {VIDRD_FRAMES}; a diffusers pipeline: pixel frames, "
                     "of the form its VAE takes, e.g. 4k+1, default a flow bundle's generation.json or "
                     "the pipeline's own)")  # fmt: skip
    gen.add_argument("--prompt-frames", type=int, default=2,
                     help="prompt frames M, 1..N-1 (default 2; with --pipeline: latent frames)")  # fmt: skip
    gen.add_argument("--steps", type=int, default=None,
                     help=f"steps per clip (default {VIDRD_STEPS}; a diffusers pipeline: a flow bundle's "
                     "generation.json or its own)")  # fmt: skip
    gen.add_argument("--guidance", type=float, default=None,
                     help=f"guidance scale (default {VIDRD_GUIDANCE:g}; a diffusers pipeline: a flow "
                     "bundle's generation.json or its own)")  # fmt: skip
    gen.add_argument("--seed", type=int, default=0, help="seed of the torch.Generator")
    gen.add_argument("--model", type=Path, default=BUNDLED,
                     help="folder of a saved VidRD pipeline, or of a flow bundle (models/weights/tiny-wan)")
    gen.add_argument("--pipeline", type=Path, default=None,
                     help="folder of a diffusers video pipeline saved with save_pretrained (Wan, CogVideoX, "
                     "LTX-Video, HunyuanVideo, Mochi), used instead of --model; local files only",
                     )  # fmt: skip
    gen.add_argument("--height", type=int, default=None, help="frame height (default: the model's)")
    gen.add_argument("--width", type=int, default=None, help="frame width (default: the model's)")
    gen.add_argument("--format", choices=FORMATS, default="mp4", help="video file format")
    gen.add_argument("--fps", type=int, default=8, help="frames per second of the video file")
    gen.add_argument(
        "--drop-prompt-frames",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop (or keep) the M prompt frames of clips after the first (default: drop only where a "
        "strategy makes them repeat the previous clip, e.g. overlap; the paper keeps them)",
    )
    gen.add_argument("--progress", action="store_true", help="show a progress bar")
    gen.add_argument(
        "--resume",
        action="store_true",
        help=f"continue a run that was killed, from --out/{RESUME_FOLDER} (same arguments required; the "
        "result is the same as an uninterrupted run's)",
    )
    gen.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (default 1: tiny models gain nothing)"
    )
    return parser


def split_prompts(prompt: str, clips: int) -> tuple[str, ...]:
    """One prompt, or one per clip when the text holds `|` separators."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt must be a non-empty string; got {prompt!r}")
    parts = tuple(p.strip() for p in prompt.split(PROMPT_SEPARATOR))
    if any(not p for p in parts):
        raise ValueError(f"prompt must not hold empty prompts between '{PROMPT_SEPARATOR}'; got {prompt!r}")
    if len(parts) not in (1, clips):
        raise ValueError(
            f"prompt must be one prompt or clips={clips} prompts separated by '{PROMPT_SEPARATOR}'; "
            f"got {len(parts)}: {prompt!r}"
        )
    return parts


def check_strategies(text: str) -> list[Any]:
    """The strategies of `text`; ValueError for an unknown name, a bad value or an empty list."""
    strategies = parse_strategies(text)
    if not strategies:
        raise ValueError(
            f"strategies must name at least one of {sorted(STRATEGIES)} (e.g. 'fnr,pns:4,dsg:0.4', or "
            f"'independent' for none); got {text!r}"
        )
    return strategies


def check_guidance(value: float) -> float:
    return check_real("guidance", value, 0.0, sys.float_info.max)  # finite


def check_model(model: Path) -> Path:
    """`model` if it is a folder holding every file of a saved VidRD pipeline."""
    if not model.is_dir():
        raise ValueError(f"model must be the folder of a saved VidRD pipeline; got {str(model)!r}")
    missing = missing_files(model)
    if missing:
        raise ValueError(f"model must be the folder of a saved VidRD pipeline; {missing[0]} is missing")
    return model


def check_steps(steps: int, model: Path) -> int:
    """`steps` if in [1, the model scheduler's num_train_timesteps] (read from its config, no model load)."""
    config = model / "scheduler" / "scheduler_config.json"
    try:
        trained = json.loads(config.read_text(encoding="utf-8"))["num_train_timesteps"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"model's scheduler config {config} is unreadable ({error!r})") from error
    return check_int("steps", steps, 1, trained)


def diffusers_bundle(model: Path) -> Path | None:
    """`model` where it is a saved diffusers pipeline (the kit's flow bundle, say), else None."""
    return model if (model / "model_index.json").is_file() else None


def _defaults(pipeline: Path | None) -> dict[str, Any]:
    """The generation defaults a kit-trained diffusers bundle records ({} for VidRD or another pipeline)."""
    defaults = None if pipeline is None else read_defaults(pipeline)
    return {} if defaults is None else dataclasses.asdict(defaults)


def _given(value: Any, default: Any) -> Any:
    return default if value is None else value


def job_from_args(args: argparse.Namespace) -> GenerateJob:
    """Every check that can be made before any work (with --pipeline, the checks that need the model's
    geometry, e.g. the frame count's form, run once it is loaded, before any sampling)."""
    clips = check_int("clips", args.clips, 1)
    pipeline = args.pipeline if args.pipeline is not None else diffusers_bundle(args.model)
    vidrd = pipeline is None  # else a diffusers pipeline: its bundle's or its own defaults fill the rest
    defaults = _defaults(pipeline)
    frames = _given(args.frames, VIDRD_FRAMES if vidrd else defaults.get("num_frames"))
    steps = _given(args.steps, VIDRD_STEPS if vidrd else defaults.get("num_inference_steps"))
    guidance = _given(args.guidance, VIDRD_GUIDANCE if vidrd else defaults.get("guidance_scale"))
    height, width = _given(args.height, defaults.get("height")), _given(args.width, defaults.get("width"))
    if frames is not None:
        check_int("frames", frames, 2)
    for name, value in (("height", height), ("width", width)):
        if value is not None:
            check_int(name, value, 1)
    check_int("fps", args.fps, 1, MAX_FPS)
    check_int("seed", args.seed, 0, 2**63 - 1)
    check_int("threads", args.threads, 1)
    # The sampler the job will build: every strategy's constraints on N and M checked before any work,
    # and None for dropping resolved by its rule (drop where a strategy duplicates the prompt frames).
    sampler = LongVideoSampler(check_strategies(args.strategies), args.prompt_frames, args.drop_prompt_frames,
                               progress=args.progress)  # fmt: skip
    if pipeline is None:
        sampler.check_clip(frames)
        folder = check_model(args.model)
    else:
        check_pipeline_folder(pipeline)
        if args.resume:
            raise ValueError(f"resume is for VidRD models; got --resume with the diffusers pipeline "
                             f"{pipeline}")  # fmt: skip
        folder = pipeline
    return GenerateJob(
        prompt=args.prompt, prompts=split_prompts(args.prompt, clips), clips=clips,
        strategies=args.strategies,
        out=check_out_folder("out", args.out), frames=frames, prompt_frames=args.prompt_frames,
        steps=None if steps is None else check_steps(steps, folder),
        guidance=None if guidance is None else check_guidance(guidance), seed=args.seed,
        model=args.model if pipeline else folder, pipeline=pipeline, kit_world=vidrd or bool(defaults),
        height=height, width=width, format=args.format, fps=args.fps,
        drop_prompt_frames=sampler.drop_prompt_frames,
        progress=args.progress, resume=args.resume, sampler=sampler,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------
# The job


def generate(job: GenerateJob, streams: tuple = ()) -> GenerateResult:
    """Sample the video, then write the video file, the contact sheet and the metrics: the three replace
    the old ones together or not at all. `streams` are fed every clip's frames too (`update(frames,
    start)`). A failure (or SIGTERM under `exit_on_sigterm`) leaves no
    temporary file, nor an --out folder that this run created and left empty."""
    start = time.perf_counter()
    # a damaged model fails here, before anything is written
    pipe = load_pipeline(job.model) if job.pipeline is None else load_long_pipeline(job.pipeline)
    created = _missing_folders(job.out)
    try:
        with atomic_files(job.paths) as tmp:
            saturation = SHAPE_SATURATION if job.kit_world else None  # the worlds' shapes
            pixels = PixelMetrics(saturation=saturation)
            sheet = ContactSheetClips(job.clips, max_rows=SHEET_ROWS)
            quality = TemporalQuality()
            subject = _subject_stream(job)
            streams = (*streams, *([] if subject is None else [subject]))
            with VideoFileSink(tmp["video"], fps=job.fps, atomic=False) as video:
                latent = LatentMetrics(job.prompt_frames)
                sink = FanOutSink(video, pixels, sheet, quality, *streams)
                output, seconds = _sample(pipe, job, sink, latent)
            metrics = collect_metrics(job, latent, pixels, output.clip_starts, seconds)
            metrics["temporal_quality"] = quality.result() if quality.frames >= 3 else None
            metrics["timing"]["resumed_clips"] = getattr(output, "resumed_clips", 0)
            metrics["true_videos"] = _true_videos(job, metrics)
            metrics["subject_consistency"] = None if subject is None else {
                "value": subject.result(), "classifier": _world_of(job.prompts[0])}  # fmt: skip
            save_contact_sheet(sheet.frames, sheet.sheet_clip_starts, tmp["contact_sheet"],
                               title=_sheet_title(job, sheet), rows=sheet.rows)  # fmt: skip
            metrics["timing"]["seconds_total"] = time.perf_counter() - start
            text = json.dumps(json_safe(metrics), indent=2) + "\n"
            tmp["metrics"].write_text(text, encoding="utf-8")
    except BaseException:
        for folder in created:  # deepest first; only those still empty
            if folder.is_dir() and not any(folder.iterdir()):
                remove(folder)
        raise
    ClipStore(job.out / RESUME_FOLDER, {}).clear()  # only now: the outputs are in place
    return GenerateResult(paths=job.paths, metrics=metrics)


def _world_of(prompt: str) -> str:
    """'long' for a caption of the long world, else 'shapes' (the clip world)."""
    try:
        parse_caption(prompt)
    except ValueError:
        return "shapes"
    return "long"


def _subject_stream(job: GenerateJob) -> SubjectConsistency | None:
    """Subject consistency from the world's classifier, for the bundled kind of model (None with
    another diffusers pipeline: the classifiers read the kit's worlds only)."""
    if not job.kit_world:
        return None
    return SubjectConsistency(load_classifier(CLASSIFIERS[_world_of(job.prompts[0])]))


def _true_videos(job: GenerateJob, metrics: dict) -> dict | None:
    """The reference of the pixel metrics: true long videos of the caption, cut at the same clip starts,
    where the bundled model makes one video of one long-world caption; None otherwise."""
    if not job.kit_world or len(job.prompts) != 1 or _world_of(job.prompts[0]) != "long":
        return None
    return true_reference(job.prompts[0], metrics["num_frames"], metrics["clip_starts"], seed=job.seed)


def _missing_folders(path: Path) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first."""
    return [p for p in (path.absolute(), *path.absolute().parents) if not p.exists()]


def _sample(pipe, job: GenerateJob, sink: FrameSink, latent: LatentMetrics):
    """Run the pipeline into `sink`, each clip's latents streamed into `latent` (memory flat in --clips);
    return its output and the seconds taken. The resume folder stays until the outputs are in place."""

    def measure(clip: Clip) -> None:
        latent.update(clip.latents.detach().to("cpu", torch.float32), clip.start)

    began = time.perf_counter()
    if job.pipeline is not None:
        size = {"num_frames": job.frames, "height": job.height, "width": job.width,
                "num_inference_steps": job.steps, "guidance_scale": job.guidance}  # fmt: skip
        output = sample_long(pipe, job.prompts, job.sampler, job.clips, size, job.seed, sink, measure)
        return output, time.perf_counter() - began
    prompt = job.prompts[0] if len(job.prompts) == 1 else list(job.prompts)
    output = pipe(
        prompt, sampler=job.sampler, num_clips=job.clips, num_frames=job.frames, height=job.height,
        width=job.width, num_inference_steps=job.steps, guidance_scale=job.guidance,
        generator=torch.Generator().manual_seed(job.seed), sink=sink,
        resume_folder=job.out / RESUME_FOLDER, resume=job.resume, on_clip=measure, clear_resume=False,
    )  # fmt: skip
    return output, time.perf_counter() - began


def collect_metrics(job, latents: LatentMetrics, pixels: PixelMetrics, clip_starts,
                    seconds_generation) -> dict[str, Any]:  # fmt: skip
    """metrics.json's content, from the streamed metrics of the whole video."""
    strategies = [*job.sampler.initializers, *job.sampler.guidances]
    return {
        "parameters": job.parameters(),
        "strategies": [{"name": type(s).__name__, **dataclasses.asdict(s)} for s in strategies],
        "clip_starts": list(clip_starts),
        "num_frames": pixels.num_frames,
        "frame_shape": list(pixels.frame_shape),
        "latent_shape": list(latents.shape),
        "latent_metrics": latents.result(),
        "pixel_metrics": pixels.result(),
        "timing": {
            "seconds_generation": seconds_generation,
            "frames_per_second": pixels.num_frames / seconds_generation,
            "seconds_total": None,  # set just before metrics.json is written
            "torch_threads": torch.get_num_threads(),
        },
    }


def _sheet_title(job: GenerateJob, sheet: ContactSheetClips) -> str:
    shown = "" if len(sheet.rows) == job.clips else f", {len(sheet.rows)} of {job.clips} clips shown"
    return f"{' | '.join(job.prompts)}  [{job.strategies}, M={job.prompt_frames}, seed {job.seed}{shown}]"


# ----------------------------------------------------------------------------------------------------
# Entry point


def summary_lines(result: GenerateResult) -> list[str]:
    m = result.metrics
    timing, latent, pixel = m["timing"], m["latent_metrics"], m["pixel_metrics"]
    seams = len(m["clip_starts"]) - 1
    return [
        f"generated {m['num_frames']} frames in {len(m['clip_starts'])} clips (starts {m['clip_starts']}) "
        f"in {timing['seconds_generation']:.1f} s ({timing['frames_per_second']:.1f} frames/s), "
        f"{timing['seconds_total']:.1f} s in all",
        f"latents: seam-jump ratio {number(latent['seam_jump_ratio'])}, mirror correlation "
        f"(skip {latent['mirror_correlation_skip']}) {number(latent['mirror_correlation'])}",
        f"pixels: speed inside clips {number(pixel['mean_speed_inside'])} px/frame, velocity jump at seams "
        f"{number(pixel['mean_velocity_jump'])} px/frame, direction reversals {pixel['direction_reversals']} "
        f"of {seams} seams",
        *_true_lines(m.get("true_videos")),
        *(f"wrote {path}" for path in result.paths.values()),
    ]


def _true_lines(true: dict | None) -> list[str]:
    if true is None:
        return []
    pixel = true["pixel_metrics"]
    return [
        f"true videos of the caption ({true['videos']}, same clip starts): speed "
        f"{number(pixel['mean_speed_inside'])} px/frame, velocity jump at the same seams "
        f"{number(pixel['mean_velocity_jump'])}, frame-to-frame velocity change "
        f"{number(pixel['mean_velocity_change_inside'])}, reversals per seam "
        f"{number(pixel['reversals_per_seam'])}"
    ]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "generate":
        try:
            job = job_from_args(args)
        except (TypeError, ValueError) as error:  # a usage error: argparse's message and exit status 2
            parser.error(str(error))
        if args.compare and args.resume:
            parser.error("--resume continues one run; got it with --compare")
        try:
            runs = compare_jobs(job) if args.compare else None
        except (TypeError, ValueError) as error:  # a compared composition that does not fit the clip
            parser.error(str(error))
        try:  # with several threads, OpenMP barriers on a busy machine cost ~100x
            with exit_on_sigterm(), limit_threads(args.threads):
                if runs is not None:
                    rows, paths = run_compare(job, runs, generate)
                    print("\n".join([*table_lines(rows), *(f"wrote {p}" for p in paths.values())]))
                    return
                result = generate(job)
        except ResumeError as error:  # --resume with other arguments or another model: a usage error
            parser.error(str(error))
        except (DamagedCheckpointError, PipelineInputError) as error:  # a damaged model (its file and
            # tensor), or --frames not of a --pipeline's form (found once it is loaded): no traceback
            parser.exit(1, f"{parser.prog}: error: {error}\n")
        print("\n".join(summary_lines(result)))


if __name__ == "__main__":
    main()
