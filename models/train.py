"""Train the kit's tiny VidRD on the synthetic moving-shapes world and bundle it.

    python -m models.train --out runs/tiny --bundle models/weights/tiny-vidrd

Stages (docs/DESIGN.md §7): vae, t2i, temporal, temporal_vae; each resumes from its checkpoint in
`--out/<stage>/` when run again, so a killed run continues where it stopped (a checkpoint written with
another --seed or other settings is refused: delete the folder or use another --out). A stage needs the
folders of the stages before it (vae before t2i, both before temporal). `--steps-scale` multiplies every
stage's step count (tiny runs for tests). Uses CUDA when present, else the CPU. `--bundle` writes the
assembled pipeline all or nothing, checked by loading it back.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import torch
from diffusers import DDIMScheduler

from .bundled import save_pipeline
from .data.worlds import WORLDS
from .files import exit_on_sigterm
from .loading import DamagedCheckpointError
from .pipeline import VidRDPipeline
from .temporal_vae import TemporalVAE
from .text import WordEncoder
from .threads import limit_threads
from .tiny import TINY_SCHEDULER
from .training.loop import CheckpointMismatchError
from .training.stages import (
    MAKES,
    NEEDS,
    STAGES,
    RecipeConfig,
    train_t2i,
    train_temporal,
    train_temporal_vae,
    train_vae,
)
from .vidrd_unet import VidRDUNet

RUNNERS = {"vae": train_vae, "t2i": train_t2i, "temporal": train_temporal, "temporal_vae": train_temporal_vae}


def stage_loop(name: str, steps_scale: float, seed: int):
    """The stage's loop config with its steps scaled (at least one step) and a per-stage seed."""
    base = STAGES[name]
    steps = max(1, round(base.steps * steps_scale))
    every = max(1, min(base.checkpoint_every, steps))
    return dataclasses.replace(
        base, steps=steps, checkpoint_every=every, seed=seed + list(STAGES).index(name)
    )


def _text_encoder_folder(out: Path) -> Path:
    """The temporal stage's text encoder where that stage trained one, else stage 1's."""
    trained = out / "temporal" / "text_encoder"
    return trained if trained.is_dir() else out / "t2i" / "text_encoder"


def assemble(out: Path) -> VidRDPipeline:
    """The trained pipeline from a run folder."""
    return VidRDPipeline(
        unet=VidRDUNet.from_pretrained(out / "temporal" / "unet").eval(),
        vae=TemporalVAE.from_pretrained(out / "temporal_vae" / "vae").eval(),
        text_encoder=WordEncoder.from_pretrained(_text_encoder_folder(out)).eval(),
        scheduler=DDIMScheduler(**TINY_SCHEDULER),
    )


def positive_real(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text!r}")
    return value


def int_at_least(low: int):
    """argparse type: an integer >= `low`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def device_problem(name: str) -> str | None:
    """Why `--device name` cannot be used here, or None."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return f"--device must be cpu, cuda, cuda:N or mps; got {name!r}"
    if device.type == "cuda" and not torch.cuda.is_available():
        return f"--device {name}: no CUDA GPU is available on this machine (use --device cpu)"
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        return f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return f"--device {name}: MPS is not available on this machine (use --device cpu)"
    if device.type not in ("cpu", "cuda", "mps"):
        return f"--device must be cpu, cuda, cuda:N or mps; got {name!r}"
    return None


def parse_stages(text: str) -> list[str]:
    """The stage names of `--stages` (comma-separated, in the order given); ValueError if none or unknown."""
    stages = [s.strip() for s in text.split(",") if s.strip()]
    if not stages:
        raise ValueError(f"--stages must name at least one of {list(RUNNERS)}; got {text!r}")
    if unknown := [s for s in stages if s not in RUNNERS]:
        raise ValueError(f"--stages must be some of {list(RUNNERS)}; unknown: {', '.join(unknown)}")
    return stages


BUNDLE_NEEDS = ("temporal/unet", "temporal_vae/vae", "t2i/text_encoder")  # what `assemble` reads


def _producer(folder: str) -> str:
    return next(stage for stage in STAGES if folder in MAKES[stage])


def missing_inputs(stages: list[str], out: Path, bundle: bool) -> str | None:
    """What the first stage (in order) that cannot run lacks: folders neither under `out` nor written
    by a stage before it; with `bundle`, then the folders `assemble` reads. None when all can run."""
    steps = [(f"the {name} stage", NEEDS[name], MAKES[name], [name]) for name in stages]
    steps += [("--bundle", BUNDLE_NEEDS, (), [])] if bundle else []
    made: set[str] = set()
    for what, needs, makes, then in steps:
        if lacking := [f for f in needs if f not in made and not (out / f).is_dir()]:
            producers = sorted({_producer(f) for f in lacking}, key=list(STAGES).index)
            written = ", ".join(f"{out / f} (written by the {_producer(f)} stage)" for f in lacking)
            first = f"the {' and '.join(producers)} stage{'s' if len(producers) > 1 else ''} first"
            return f"{what} needs {written}: run {first}, e.g. --stages {','.join([*producers, *then])}"
        made.update(makes)
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="run folder (checkpoints, models, loss curves)"
    )
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {list(STAGES)}")
    parser.add_argument("--bundle", type=Path, help="write the assembled pipeline here when all stages ran")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--world", choices=tuple(WORLDS), default=RecipeConfig.world,
                        help="shapes (a crossing per clip) or long (bouncing); default the bundle's")
    parser.add_argument("--steps-scale", type=positive_real, default=1.0)
    parser.add_argument("--no-pseudo-videos", action="store_true", help="temporal stage on real videos only")
    parser.add_argument("--train-text-encoder", action="store_true", help="temporal stage also trains it")
    parser.add_argument(
        "--temporal-text-attention", action="store_true", help="caption cross-attention layers"
    )
    parser.add_argument("--device", default=RecipeConfig.device, help="cuda when present, else cpu")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--threads", type=int_at_least(1), default=1, help="torch threads (more may spin, slower)"
    )
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[str], dict]:
    """Every flag checked before any work (parser.error: message, exit status 2); the stages and their
    loop configs."""
    try:
        stages = parse_stages(args.stages)
        loops = {name: stage_loop(name, args.steps_scale, args.seed) for name in stages}
    except (ValueError, OverflowError) as err:
        parser.error(str(err))
    if problem := device_problem(args.device):
        parser.error(problem)
    if args.bundle is not None and args.bundle.exists() and not args.bundle.is_dir():
        parser.error(f"--bundle must be a folder (or not exist yet); {args.bundle} is a file")
    if problem := missing_inputs(stages, args.out, args.bundle is not None):
        parser.error(problem)
    return stages, loops


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    stages, loops = check_args(parser, args)
    recipe = RecipeConfig(out=args.out, seed=args.seed, world=args.world,
                          pseudo_videos=not args.no_pseudo_videos,
                          train_text_encoder=args.train_text_encoder, device=args.device,
                          temporal_text_attention=args.temporal_text_attention,
                          progress=not args.no_progress)  # fmt: skip
    try:
        with exit_on_sigterm(), limit_threads(args.threads):  # more threads spin on a small machine
            for name in stages:
                RUNNERS[name](recipe, loops[name])
            if args.bundle is not None:
                save_pipeline(assemble(args.out), args.bundle)  # all or nothing, loaded back first
                print(f"bundled the pipeline into {args.bundle}")
    except (DamagedCheckpointError, CheckpointMismatchError, FileNotFoundError) as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")


if __name__ == "__main__":
    main()
