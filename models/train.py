"""Train the kit's tiny VidRD on the synthetic moving-shapes world and bundle it.

    python -m models.train --out runs/tiny --bundle models/weights/tiny-vidrd

Stages (DESIGN.md §7): vae, t2i, temporal, temporal_vae; each resumes from its checkpoint in
`--out/<stage>/` when run again, so a killed run continues where it stopped. `--steps-scale` multiplies
every stage's step count (tiny runs for tests). Uses CUDA when present, else the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from diffusers import DDIMScheduler

from samplers.validation import check_int, check_real

from .bundled import save_pipeline
from .pipeline import VidRDPipeline
from .temporal_vae import TemporalVAE
from .text import WordEncoder
from .tiny import TINY_SCHEDULER
from .training.stages import (
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="run folder (checkpoints, models, loss curves)"
    )
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {list(STAGES)}")
    parser.add_argument("--bundle", type=Path, help="write the assembled pipeline here when all stages ran")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps-scale", type=float, default=1.0)
    parser.add_argument("--no-pseudo-videos", action="store_true", help="temporal stage on real videos only")
    parser.add_argument("--train-text-encoder", action="store_true", help="temporal stage also trains it")
    parser.add_argument(
        "--temporal-text-attention", action="store_true", help="caption cross-attention layers"
    )
    parser.add_argument("--device", default=RecipeConfig.device, help="cuda when present, else cpu")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (more may spin, slower)")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in RUNNERS]
    if unknown:
        raise ValueError(f"stages must be some of {list(RUNNERS)}; got {unknown}")
    check_real("steps_scale", args.steps_scale, 1e-9)
    check_int("threads", args.threads, 1)
    torch.set_num_threads(args.threads)
    recipe = RecipeConfig(out=args.out, seed=args.seed, pseudo_videos=not args.no_pseudo_videos,
                          train_text_encoder=args.train_text_encoder, device=args.device,
                          temporal_text_attention=args.temporal_text_attention,
                          progress=not args.no_progress)  # fmt: skip
    for name in stages:
        RUNNERS[name](recipe, stage_loop(name, args.steps_scale, args.seed))
    if args.bundle is not None:
        save_pipeline(assemble(args.out), args.bundle)
        print(f"bundled the pipeline into {args.bundle}")


if __name__ == "__main__":
    main()
