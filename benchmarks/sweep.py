"""Ablation sweeps: combinations x M x alpha x beta x seeds (the paper's Figure 6), on two backbones.

    python -m benchmarks.sweep --out out/sweep
    torchrun --standalone --nproc_per_node=2 -m benchmarks.sweep --out out/sweep   # the same files
    python -m benchmarks.sweep --backbone model --out out/sweep-model              # the bundled VidRD

A grid point is a strategy template such as "fnr,pns:{alpha},dsg:{beta}" filled at one (M, alpha, beta),
with one seed. On the analytic backbone (the default) it is sampled from `GaussianVideoPrior` with DDIM
and scored by `benchmarks.compare`'s own functions (`score_sampler`, `score_reference`), with generators
of the point's seed; the "reference process" points score true videos of the process at each M. On the
model backbone (`benchmarks.sweep_model`) it is a batch of long videos of a saved VidRD, scored in latent
space against encoded true videos of the shapes world, plus pixel metrics; its own grid (N=8 as the model
was trained) is MODEL_SWEEP.
Every point is a function of its own fields alone (its generators derive from its seed; torch and BLAS run
on one thread while it is computed), so the ranks of a torchrun sweep each take points r, r+K, ... and
rank 0 writes files byte-identical to a single-process run. Writes sweep.csv, sweep.json (config + rows)
and one sweep_<parameter>.png per ablation to --out, and prints a table of means over seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks import compare, distributed, sweep_model
from benchmarks.compare import REFERENCE, SCHEDULERS, CompareConfig
from benchmarks.cost import COST
from benchmarks.number_lists import format_numbers, parse_numbers
from benchmarks.sweep_grid import (
    FIELDS,
    PARAMETERS,
    PRESETS,
    Ablation,
    GridPoint,
    SweepConfig,
)
from benchmarks.sweep_model import ModelBackbone
from benchmarks.sweep_report import format_table, plot_ablations
from models.bundled import missing_files
from models.files import atomic_path, check_out_folder, exit_on_sigterm
from models.threads import limit_threads
from samplers import LongVideoSampler
from samplers.registry import parse_strategies


def point_generator(seed: int, stream: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Stream 0 drives the sampler, 1 and 2 the true videos: a function of (seed, stream) only."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device).manual_seed(int(state))


def compute(point: GridPoint, config: SweepConfig, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The row of one point: its fields, the sampled video's length and every metric of config.metrics."""
    score = _model if isinstance(config.backbone, ModelBackbone) else _analytic
    with limit_threads(1):
        frames, values = score(point, config.backbone, device)
    return {"combination": point.combination, **asdict(point), "frames": frames, **values}


def _analytic(point: GridPoint, backbone: CompareConfig, device) -> tuple[int, dict[str, float]]:
    """(frames, metrics) of the point on `GaussianVideoPrior`, sampled and scored by compare's functions;
    true videos from streams 1 (and 2, the reference's second draw), the sampler's noise from stream 0."""
    backbone = replace(backbone, prompt_frames=point.prompt_frames, seed=point.seed)
    prior = compare.make_prior(backbone)
    truth = compare.true_videos(backbone, prior, point_generator(point.seed, 1, device))
    if point.template == REFERENCE:  # true videos cut at the clip starts, against a second draw
        second = compare.true_videos(backbone, prior, point_generator(point.seed, 2, device))
        frames, values = compare.score_reference(backbone, prior, truth, second)
        return frames, {**values, **dict.fromkeys(COST, 0.0)}
    noise, cost = point_generator(point.seed, 0, device), {}
    joint = _joint(point)
    if joint is not None:
        frames, values = compare.score_joint(backbone, prior, joint, noise, truth, cost)
    else:
        strategies = parse_strategies(point.combination)
        frames, values = compare.score_sampler(backbone, prior, strategies, noise, truth, cost=cost)
    return frames, {**values, **cost}


def _model(point: GridPoint, backbone: ModelBackbone, device) -> tuple[int, dict[str, float]]:
    """(frames, metrics) of the point on a saved VidRD; captions and true videos from stream 1 (CPU)."""
    truth = point_generator(point.seed, 1)
    if point.template == REFERENCE:
        second = point_generator(point.seed, 2)
        return sweep_model.score_reference(backbone, point.prompt_frames, truth, second, device)
    noise, joint = point_generator(point.seed, 0, device), _joint(point)
    if joint is not None:
        return sweep_model.score_joint(joint, backbone, point.prompt_frames, truth, noise, device)
    return sweep_model.score_sampler(_sampler(point), backbone, truth, noise, device)


def _joint(point: GridPoint) -> compare.Joint | None:
    """The point's combination if it makes the whole long video at once (benchmarks.joint), else None."""
    parsed = compare.check_combination(point.combination)
    return parsed if isinstance(parsed, compare.Joint) else None


def _sampler(point: GridPoint) -> LongVideoSampler:
    return LongVideoSampler(parse_strategies(point.combination), prompt_frames=point.prompt_frames,
                            progress=False)  # fmt: skip


def run(config: SweepConfig, rank: int = 0, world_size: int = 1, device=None, progress=False) -> list[dict]:
    """Rows of this rank's share of the points (all of them for one process), each with its `point` index."""
    indexed = distributed.shard(list(enumerate(config.points())), rank, world_size)
    rows = []
    for index, point in tqdm(indexed, disable=not progress, desc=f"rank {rank}"):
        rows.append({"point": index, **compute(point, config, device or config.device)})
    return rows


def write_csv(rows: list[dict[str, Any]], config: SweepConfig, path) -> None:
    """Floats as Python writes them (shortest round-trip repr); None (a parameter not used) as ''."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*FIELDS, *config.metrics], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_json(rows: list[dict[str, Any]], config: SweepConfig, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"config": asdict(config), "rows": rows}, indent=1) + "\n")


def read_json(path) -> tuple[list[dict[str, Any]], SweepConfig]:
    """The rows and the (re-validated) config of a sweep.json written by `write_json`."""
    with open(path) as f:
        saved = json.load(f)
    config, backbone = saved["config"], saved["config"]["backbone"]
    ablations = tuple(
        Ablation(a["parameter"], tuple(a["values"]), tuple(a["templates"])) for a in config["ablations"]
    )
    if "model" in backbone:  # ModelBackbone's fields are JSON types already
        backbone = ModelBackbone(**backbone)
    else:
        backbone = CompareConfig(**{**backbone, "frame_shape": tuple(backbone["frame_shape"])})
    return saved["rows"], SweepConfig(
        **{**config, "ablations": ablations, "extra_combinations": tuple(config["extra_combinations"]),
           "seeds": tuple(config["seeds"]), "backbone": backbone}
    )  # fmt: skip


FLAGS = {"prompt_frames": "--prompt-frames", "alpha": "--alphas", "beta": "--betas"}  # the swept values


def parse_args(argv=None) -> tuple[argparse.Namespace, SweepConfig]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="out/sweep", help="folder for sweep.csv, sweep.json and the plots")
    parser.add_argument("--backbone", choices=tuple(PRESETS), default="analytic", help="what samples videos")
    parser.add_argument("--model", help=f"saved VidRD of --backbone model (default {ModelBackbone.model})")
    parser.add_argument("--ablations", default=",".join(PARAMETERS), help=f"some of {PARAMETERS}, or ''")
    for name, flag in FLAGS.items():
        parser.add_argument(flag, help=f"values of the {name} ablation (default {_preset_help(name)})")
    parser.add_argument("--extras", help="';'-separated extra templates at the default point ('' for none)")
    for flag, field, what in (
        ("--seeds", None, "seeds 0..n-1 per point"),
        ("--samples", "samples", "videos per point"),
        ("--num-clips", "num_clips", "clips"),
        ("--steps", "steps", "DDIM steps"),
    ):
        parser.add_argument(flag, type=int, help=f"{what} (default {_preset_help(field)})")
    parser.add_argument("--scheduler", choices=sorted(SCHEDULERS),
                        help="sampling schedule of --backbone analytic (default ddim)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (nccl under torchrun)")
    parser.add_argument("--no-plots", action="store_true", help="write the CSV and JSON only")
    parser.add_argument("--progress", action="store_true", help="a progress bar per rank")
    args = parser.parse_args(argv)
    try:
        check_out_folder("--out", args.out)
    except ValueError as error:
        parser.error(str(error))
    preset = PRESETS[args.backbone]
    names = [n.strip() for n in args.ablations.split(",") if n.strip()]
    if not set(names) <= set(PARAMETERS):
        parser.error(f"--ablations must name some of {PARAMETERS}; got {names}")
    swept = {a.parameter: a for a in preset.ablations}
    texts = {name: getattr(args, flag[2:].replace("-", "_")) for name, flag in FLAGS.items()}
    texts = {n: format_numbers(swept[n].values) if text is None else text for n, text in texts.items()}
    try:
        values = {n: parse_numbers(text, int if n == "prompt_frames" else float) for n, text in texts.items()}
    except ValueError as error:
        parser.error(f"--prompt-frames takes integers, --alphas and --betas numbers: {error}")
    try:  # the configs check every value and every point: a bad one is a usage error, before any work
        backbone = _backbone(parser, args, preset.backbone)
        config = replace(
            preset,
            ablations=tuple(replace(swept[n], values=values[n]) for n in names),
            extra_combinations=_extras(args.extras, preset),
            seeds=tuple(range(len(preset.seeds) if args.seeds is None else args.seeds)),
            backbone=backbone,
            device=args.device,
        )
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    return args, config


def _extras(text: str | None, preset: SweepConfig) -> tuple[str, ...]:
    """--extras, or the preset's."""
    if text is not None:
        return tuple(t.strip() for t in text.split(";") if t.strip())
    return preset.extra_combinations


def _preset_help(field: str | None) -> str:
    """'analytic 32, model 4': a backbone field of each preset (None: the seeds; a parameter: its values)."""
    shown = {}
    for key, preset in PRESETS.items():
        if field is None:
            shown[key] = len(preset.seeds)
        elif field in PARAMETERS:
            shown[key] = format_numbers(next(a for a in preset.ablations if a.parameter == field).values)
        else:
            shown[key] = getattr(preset.backbone, field)
    return ", ".join(f"{key} {value}" for key, value in shown.items())


def _backbone(parser, args: argparse.Namespace, preset: CompareConfig | ModelBackbone):
    """The preset's backbone with the flags given; --model must name a saved pipeline (checked here)."""
    given = {"samples": args.samples, "num_clips": args.num_clips, "steps": args.steps}
    if isinstance(preset, ModelBackbone):
        given["model"] = args.model
        if args.scheduler is not None:
            parser.error("--scheduler applies to --backbone analytic only (the model has its own)")
    elif args.model is not None:
        parser.error("--model applies to --backbone model only")
    else:
        given["scheduler"] = args.scheduler
    backbone = replace(preset, **{k: v for k, v in given.items() if v is not None})
    if isinstance(backbone, ModelBackbone) and missing_files(backbone.model):
        parser.error(f"--model must be a saved VidRD pipeline; {missing_files(backbone.model)[0]} is missing")
    return backbone


def main(argv=None) -> None:
    args, config = parse_args(argv)  # every point validated here, before any work, on every rank
    with exit_on_sigterm(), distributed.process_group(config.device) as (rank, world_size, device):
        rows = run(config, rank, world_size, device, args.progress)
        gathered = distributed.gather_to_first(rows, rank, world_size)
    if gathered is None:  # not rank 0: rank 0 writes
        return
    rows = sorted((row for part in gathered for row in part), key=lambda row: row["point"])
    write_csv(rows, config, f"{args.out}/sweep.csv")
    write_json(rows, config, f"{args.out}/sweep.json")
    print(format_table(rows, config))
    if not args.no_plots:
        plot_ablations(rows, config, args.out)
    print(f"wrote {len(rows)} rows ({world_size} process(es)) to {args.out}/sweep.csv, sweep.json")


if __name__ == "__main__":
    main()
