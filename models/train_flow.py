"""Train the kit's tiny Wan (flow matching) on the long world and bundle it.

    python -m models.train_flow --out runs/flow --bundle models/weights/tiny-wan

Stages (models.training.flow): vae, then transformer (with the T5 encoder). Each resumes from its
checkpoint in `--out/<stage>/` when run again; a checkpoint written with other settings is refused.
`--steps-scale` multiplies every stage's step count (tiny runs for tests). `--bundle` writes the
assembled WanPipeline all or nothing, checked by loading it back (models.flow.save_flow).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .files import exit_on_sigterm
from .flow import save_flow
from .loading import DamagedCheckpointError
from .threads import limit_threads
from .train import device_problem, int_at_least, positive_real
from .training.flow import (
    FLOW_MAKES,
    FLOW_NEEDS,
    FLOW_STAGES,
    FlowRecipe,
    assemble_flow,
    train_flow_transformer,
    train_flow_vae,
)
from .training.loop import CheckpointMismatchError

RUNNERS = {"vae": train_flow_vae, "transformer": train_flow_transformer}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, models, losses)")
    parser.add_argument("--stages", default=",".join(RUNNERS), help=f"comma-separated, of {list(RUNNERS)}")
    parser.add_argument("--bundle", type=Path, help="write the assembled pipeline here after the stages")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--clips", type=int_at_least(1), default=FlowRecipe.clips,
                        help="clips the transformer stage encodes once and trains on")  # fmt: skip
    parser.add_argument("--steps-scale", type=positive_real, default=1.0)
    parser.add_argument("--device", default=FlowRecipe.device, help="cuda when present, else cpu")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--threads", type=int_at_least(1), default=1, help="torch threads")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """{stage: its loop config} in the order given, every flag checked before any work (parser.error:
    exit status 2); each stage's inputs must exist or be made by a stage before it."""
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if not stages or any(s not in RUNNERS for s in stages):
        parser.error(f"--stages must be some of {list(RUNNERS)}; got {args.stages!r}")
    try:
        loops = {stage: scaled(stage, args.steps_scale, args.seed) for stage in stages}
    except (ValueError, OverflowError) as error:
        parser.error(f"--steps-scale {args.steps_scale}: {error}")
    if problem := device_problem(args.device):
        parser.error(problem)
    made: set[str] = set()
    for stage in stages:
        if lacking := [f for f in FLOW_NEEDS[stage] if f not in made and not (args.out / f).is_dir()]:
            parser.error(f"the {stage} stage needs {args.out / lacking[0]}: run the vae stage before it")
        made.update(FLOW_MAKES[stage])
    needs = [f for folder in FLOW_MAKES.values() for f in folder]
    lacking = [f for f in needs if f not in made and not (args.out / f).is_dir()]
    if args.bundle is not None and lacking:
        parser.error(f"--bundle needs {args.out / lacking[0]}: run every stage first")
    if args.bundle is not None and args.bundle.exists() and not args.bundle.is_dir():
        parser.error(f"--bundle must be a folder (or not exist yet); {args.bundle} is a file")
    return loops


def scaled(name: str, scale: float, seed: int):
    base = FLOW_STAGES[name]
    steps = max(1, round(base.steps * scale))
    return dataclasses.replace(base, steps=steps, checkpoint_every=min(base.checkpoint_every, steps),
                               seed=seed + list(FLOW_STAGES).index(name))  # fmt: skip


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    loops = check_args(parser, args)
    recipe = FlowRecipe(out=args.out, seed=args.seed, clips=args.clips, device=args.device,
                        progress=not args.no_progress)  # fmt: skip
    try:
        with exit_on_sigterm(), limit_threads(args.threads):
            for stage, loop in loops.items():
                print(f"{stage}: {RUNNERS[stage](recipe, loop)}")
            if args.bundle is not None:
                print(f"bundle: {save_flow(assemble_flow(args.out), args.bundle)}")
    except (DamagedCheckpointError, CheckpointMismatchError, FileNotFoundError) as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")


if __name__ == "__main__":
    main()
