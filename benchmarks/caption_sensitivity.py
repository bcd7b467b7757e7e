"""Does a model read a caption's words? Its denoising loss on true clips, right and wrong captions.

    python -m benchmarks.caption_sensitivity                                  # the bundled VidRD, its world
    python -m benchmarks.caption_sensitivity --world long --model runs/long/bundle   # a long-world VidRD

Draws `--clips` true clips of the world (seeded), encodes them with the model's VAE and noises them at
each of `TIMESTEPS` (the same noise for every caption variant). Then it takes the model's loss (MSE
against its training target, epsilon or v as its scheduler predicts) with, per clip: the clip's own
caption; the caption with one attribute of its first shape changed to the next name of that attribute
(`swapped`: colour, shape, and direction or motion, skipping a colour the second shape has); and the empty
caption. A model that uses an attribute's word has a larger loss with it changed ("ratio" = changed /
right, above 1); a ratio of 1 to the printed digits means the word makes no difference to the model's
prediction at that noise level, so guidance has nothing to amplify.

The ratio of the empty caption says how much the caption as a whole is used. `--out` writes the table as
JSON. VidRD bundles only (`models.bundled`): the loss is the UNet's, on the latents of the bundle's VAE;
a model whose text encoder lacks some word of the world's captions is refused (those words would all read
as "unknown", and their ratios would be 1 for that reason alone).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.bundled import BUNDLED, BUNDLED_WORLD, VIDRD_FRAMES, load_pipeline
from models.data.long_world import MOTIONS, WorldConfig, WorldSpec, render_world, sample_world, world_caption
from models.data.shapes import COLOURS, DIRECTIONS, SHAPES, ShapesConfig, caption, frames_to_tensor, render
from models.data.shapes import sample_spec as sample_shapes
from models.data.worlds import make_world
from models.files import atomic_path
from models.loading import DamagedCheckpointError
from models.text import unknown_words
from models.threads import limit_threads
from models.training.stages import training_target
from samplers.validation import check_generator, check_int

__all__ = ["ATTRIBUTES", "TIMESTEPS", "clip_caption", "first_and_others", "losses", "sensitivity", "swapped",
           "true_clips"]  # fmt: skip

ATTRIBUTES = {
    "shapes": {"colour": tuple(COLOURS), "shape": SHAPES, "direction": tuple(DIRECTIONS)},
    "long": {"colour": tuple(COLOURS), "shape": SHAPES, "motion": tuple(MOTIONS)},
}
TIMESTEPS = (100, 300, 500, 700, 900)  # spread over the 1000 training steps


def first_and_others(spec) -> tuple[Any, tuple[str, ...]]:
    """The first shape's spec and the colours of the others."""
    if isinstance(spec, WorldSpec):
        return spec.movers[0], tuple(m.colour for m in spec.movers[1:])
    return spec, () if spec.second is None else (spec.second.colour,)


def swapped(spec, attribute: str):
    """`spec` with its first shape's `attribute` changed to the next name of that attribute (cyclically),
    skipping a colour another shape has; ValueError for an attribute the world's captions do not name."""
    world = "long" if isinstance(spec, WorldSpec) else "shapes"
    if attribute not in ATTRIBUTES[world]:
        raise ValueError(f"attribute must be one of {tuple(ATTRIBUTES[world])}; got {attribute!r}")
    first, taken = first_and_others(spec)
    names = ATTRIBUTES[world][attribute]
    start = names.index(getattr(first, attribute))
    value = next(n for k in range(1, len(names)) if (n := names[(start + k) % len(names)]) not in taken)
    changed = dataclasses.replace(first, **{attribute: value})
    if world == "long":
        return dataclasses.replace(spec, movers=(changed, *spec.movers[1:]))
    return changed


def clip_caption(spec) -> str:
    """The caption of a spec of either world."""
    return world_caption(spec) if isinstance(spec, WorldSpec) else caption(spec)


def true_clips(world: str, n: int, generator: torch.Generator, num_frames: int = VIDRD_FRAMES):
    """n true clips of `world` (uint8 (n, F, H, W, 3)) and their specs, drawn from `generator` (long world:
    a clip starts at a frame uniform in the world's horizon)."""
    if world not in ATTRIBUTES:
        raise ValueError(f"world must be one of {tuple(ATTRIBUTES)}; got {world!r}")
    check_int("n", n, 1)
    check_generator(generator)
    if world == "shapes":
        config = ShapesConfig(num_frames=num_frames)
        specs = [sample_shapes(config, generator) for _ in range(n)]
        return np.stack([render(s, config) for s in specs]), specs
    config = WorldConfig(num_frames=num_frames)
    specs = [sample_world(config, generator) for _ in range(n)]
    starts = torch.randint(config.horizon, (n,), generator=generator).tolist()
    return np.stack([render_world(s, config, t) for s, t in zip(specs, starts, strict=True)]), specs


@torch.no_grad()
def losses(pipe, latents: torch.Tensor, variants: dict[str, list[str]], timestep: int,
           generator: torch.Generator) -> dict[str, float]:  # fmt: skip
    """Mean loss of the UNet's prediction against the scheduler's target on `latents` noised at
    `timestep` (one noise draw shared by every variant), per caption variant (name -> a caption per clip)."""
    scheduler = pipe.scheduler
    noise = torch.randn(latents.shape, generator=generator)
    t = torch.full((latents.shape[0],), timestep, dtype=torch.long)
    noisy = scheduler.add_noise(latents, noise, t)
    target = training_target(scheduler, latents, noise, t)
    return {
        name: F.mse_loss(pipe.unet(noisy, t, pipe.text_encoder.encode(captions)), target).item()
        for name, captions in variants.items()
    }


def sensitivity(pipe, world: str, clips: int = 64, timesteps=TIMESTEPS, seed: int = 0) -> list[dict]:
    """One row per timestep: the loss with the right captions, each ratio changed / right, and empty /
    right (module docstring)."""
    generator = torch.Generator().manual_seed(seed)
    frames, specs = true_clips(world, clips, generator)
    latents = pipe.vae.encode(frames_to_tensor(frames))
    variants = {"right": [clip_caption(s) for s in specs], "empty": [""] * clips}
    for attribute in ATTRIBUTES[world]:
        variants[attribute] = [clip_caption(swapped(s, attribute)) for s in specs]
    rows = []
    for timestep in timesteps:
        found = losses(pipe, latents, variants, timestep, generator)
        right = found.pop("right")
        rows.append({"timestep": timestep, "right": right, **{k: v / right for k, v in found.items()}})
    return rows


def format_rows(rows: list[dict]) -> str:
    names = [k for k in rows[0] if k not in ("timestep", "right")]
    lines = [f"{'t':>5} {'loss':>9} " + " ".join(f"{n + ' x':>12}" for n in names)]
    for row in rows:
        ratios = " ".join(f"{row[n]:>12.4f}" for n in names)
        lines.append(f"{row['timestep']:>5} {row['right']:>9.5f} {ratios}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=BUNDLED, help="a saved VidRD (default: the bundle)")
    parser.add_argument("--world", choices=tuple(ATTRIBUTES), default=BUNDLED_WORLD, help="the model's world")
    parser.add_argument("--clips", type=int, default=64, help="true clips (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the rows here as JSON")
    args = parser.parse_args(argv)
    try:
        check_int("clips", args.clips, 1)
        check_int("seed", args.seed, 0)
    except ValueError as err:
        parser.error(str(err))
    if args.out is not None and args.out.is_dir():
        parser.error(f"--out must be a file path; {args.out} is a folder")
    try:
        pipe = load_pipeline(args.model)
    except (FileNotFoundError, DamagedCheckpointError) as err:
        parser.error(f"--model: {err}")
    if unknown := unknown_words(pipe.text_encoder, make_world(args.world).words):
        parser.error(f"--world {args.world}: the model's text encoder does not know {unknown}; it was "
                     "trained on another world")  # fmt: skip
    with limit_threads(1):
        rows = sensitivity(pipe, args.world, args.clips, seed=args.seed)
    print(f"{args.clips} true clips of the {args.world} world, model {args.model}; 'x' columns: loss with "
          "that word changed (or no caption) over the loss with the right caption")  # fmt: skip
    print(format_rows(rows))
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            tmp.write_text(
                json.dumps({"model": str(args.model), "world": args.world, "rows": rows}, indent=1)
            )


if __name__ == "__main__":
    main()
