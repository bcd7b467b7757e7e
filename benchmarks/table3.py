"""The paper's Table 3 on the kit's world: temporal layers fine-tuned with vs without pseudo-videos.

    python -m benchmarks.table3 --run runs/tiny

`--run` is a folder of `python -m models.train` (its `temporal` stage used pseudo-videos, the default). This
trains the same stage again, same steps and seed, on real videos only (`temporal_no_pseudo/`, resumable),
then generates every caption of the world with each UNet (same VAE, text encoder, seeds) and scores both
with the world's classifier (`--world`, the bundle's by default): IS-style (higher is better), FVD-style
(lower is better) and caption consistency. Prints the table and writes `table3.csv` into the run folder.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from benchmarks.classifier import CLASSIFIERS, HEADS_OF, load_classifier
from benchmarks.model_quality import all_captions, generate_clips, real_clips, score
from models.bundled import BUNDLED_WORLD
from models.files import atomic_path
from models.pipeline import VidRDPipeline
from models.threads import limit_threads
from models.train import assemble, stage_loop
from models.training.stages import RecipeConfig, train_temporal
from models.vidrd_unet import VidRDUNet


def columns(world: str) -> tuple[str, ...]:
    motion = "direction" if world == "shapes" else "motion"
    judge = ("judge_all",) if world == "long" else ()
    return ("is_style", "fvd_style", "shape", "colour", motion, "shape_and_colour", *judge)


def pipeline_with(run: Path, unet_folder: Path) -> VidRDPipeline:
    pipe = assemble(run)
    return VidRDPipeline(
        VidRDUNet.from_pretrained(unet_folder).eval(), pipe.vae, pipe.text_encoder, pipe.scheduler
    )


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--world", choices=tuple(HEADS_OF), default=BUNDLED_WORLD, help="the run's world")
    parser.add_argument("--classifier", type=Path, help="default: the world's bundled classifier")
    parser.add_argument("--repeats", type=int, default=2, help="clips per caption (36 or 48 captions)")
    parser.add_argument("--seed", type=int, default=0, help="the training run's seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--steps-scale", type=float, default=1.0, help="as given to models.train's temporal stage"
    )
    args = parser.parse_args(argv)
    with limit_threads(args.threads):
        return table(args)


def table(args: argparse.Namespace) -> list[dict]:
    """Train the run's temporal stage again without pseudo-videos and score both models."""
    if not (args.run / "t2i" / "unet").is_dir():
        raise FileNotFoundError(
            f"{args.run}/t2i is missing: run `python -m models.train --out {args.run}` first"
        )
    recipe = RecipeConfig(out=args.run, seed=args.seed, world=args.world, pseudo_videos=False)
    loop = stage_loop("temporal", args.steps_scale, args.seed)  # the same steps and seed as the run's
    without = train_temporal(recipe, loop, out_name="temporal_no_pseudo")
    with_pseudo = args.run / "temporal" / "unet"
    if not with_pseudo.is_dir():
        raise FileNotFoundError(
            f"{with_pseudo} is missing: let `python -m models.train --out {args.run}` finish"
        )
    classifier = load_classifier(args.classifier or CLASSIFIERS[args.world])
    captions, shown = all_captions(args.repeats, args.world), columns(args.world)
    reference = real_clips(len(captions), 8, world=args.world)
    rows = []
    for name, folder in (("VidRD w/o pseudo-videos", without), ("VidRD w/ pseudo-videos", with_pseudo)):
        videos = generate_clips(pipeline_with(args.run, folder), captions)
        rows.append({"strategy": name, **score(classifier, videos, captions, reference, args.world)})
    print(f"{'strategy':<26}" + "".join(f"{c:>18}" for c in shown))
    for row in rows:
        print(f"{row['strategy']:<26}" + "".join(f"{row[c]:>18.3f}" for c in shown))
    with atomic_path(args.run / "table3.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["strategy", *shown], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return rows


if __name__ == "__main__":
    main()
