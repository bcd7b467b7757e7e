"""Measuring a text-to-video model the paper's way, on the kit's synthetic worlds.

    python -m benchmarks.model_quality                  # the bundled model, every caption twice
    python -m benchmarks.model_quality --world long --model runs/long/bundle   # a long-world model
    python -m benchmarks.model_quality --world long --model models/weights/tiny-wan  # the flow bundle

Generates one clip per caption, in one batched sampler run, for every caption of the world: (shape,
colour, motion) with the backdrops taken in turn for the long world, (shape, colour, direction) for the
clip world. Scores them with the world's trained classifier: the share of clips whose classes are the
caption's (caption consistency), an IS-style score over the joint label, and a Fréchet video distance
between classifier features of the generated clips and of real clips of the world. On the long world the
hand-written judge (`benchmarks.judge`, no weights) scores the same clips too ("judge_*").

A flow bundle (a saved WanPipeline, models.flow) makes its clips with the pipeline's own batched call at
its bundle's size; each clip is cut into windows of the classifier's length, each scored with the caption.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from dataclasses import replace
from pathlib import Path

import torch
from einops import rearrange

from benchmarks.classifier import CLASSIFIERS, HEADS_OF, ONE_SHAPE_WORLD, load_classifier
from benchmarks.judge import judge_videos
from benchmarks.video_scores import (
    caption_consistency,
    caption_labels,
    frechet_video_distance,
    inception_style_score,
    joint_probs,
    video_features,
)
from models.bundled import BUNDLED, BUNDLED_WORLD, VIDRD_GUIDANCE, VIDRD_STEPS, load_pipeline
from models.data.long_world import BACKDROPS, DRIFTS, MOTIONS, TEXTURED, LongShapes, backdrop_phrase
from models.data.shapes import (
    COLOURS,
    DIRECTIONS,
    SHAPES,
    MovingShapes,
    ShapesConfig,
    collate,
    tensor_to_frames,
)
from models.flow import FLOW_WORLD, FlowDefaults, load_flow, read_defaults
from samplers import LongVideoSampler
from samplers.validation import check_int, check_real

CLASSIFIER = CLASSIFIERS[BUNDLED_WORLD]


def all_captions(repeats: int = 1, world: str = BUNDLED_WORLD) -> list[str]:
    """Every caption of the world, `repeats` times each: the long world's (shape, colour, motion) over
    the backdrops in turn ("a red circle bouncing around over black", ..., "... over stripes drifting
    left"); the clip world's (shape, colour, direction) ("a red circle moving right")."""
    if world == "shapes":
        combos = itertools.product(COLOURS, SHAPES, DIRECTIONS)
        return [f"a {c} {s} moving {d}" for c, s, d in combos for _ in range(repeats)]
    backdrops = [backdrop_phrase(b, None) for b in BACKDROPS if b not in TEXTURED]
    backdrops += [backdrop_phrase(b, d) for b in TEXTURED for d in DRIFTS]
    combos = list(itertools.product(COLOURS, SHAPES, MOTIONS))
    return [f"a {c} {s} bouncing {m} {backdrops[(i + r) % len(backdrops)]}"
            for i, (c, s, m) in enumerate(combos) for r in range(repeats)]  # fmt: skip


def decode_clips(pipe, latents: torch.Tensor, clip_starts: list[int]) -> torch.Tensor:
    """Frames (B, 3, L, H, W) in [-1, 1], decoded clip by clip by `VidRDPipeline.decode_clip`, as the
    pipeline streams them."""
    bounds = [*clip_starts, latents.shape[2]]
    clips = [pipe.decode_clip(latents[:, :, start:end]) for start, end in itertools.pairwise(bounds)]
    return torch.cat(clips, dim=2).clamp(-1, 1)


@torch.no_grad()
def generate_clips(
    pipe,
    captions: list[str],
    num_frames: int = 8,
    steps: int = 25,
    guidance: float = 7.5,
    seed: int = 0,
    sampler: LongVideoSampler | None = None,
    num_clips: int = 1,
) -> torch.Tensor:
    """One video per caption, batched: (B, 3, L, H, W) in [-1, 1] (L = num_clips * num_frames)."""
    generator = torch.Generator().manual_seed(seed)
    video = pipe.sample_batch(captions, generator, sampler, num_frames, num_clips, steps, guidance)
    return decode_clips(pipe, video.latents, video.clip_starts)


@torch.no_grad()
def generate_flow_clips(pipe, captions: list[str], defaults: FlowDefaults, seed: int = 0,
                        batch: int = 24) -> torch.Tensor:  # fmt: skip
    """One clip per caption from WanPipeline's own call, in batches: (B, 3, F, H, W) in [-1, 1]."""
    generator, parts = torch.Generator().manual_seed(seed), []
    size = dataclasses.asdict(defaults)
    for start in range(0, len(captions), batch):
        frames = pipe(captions[start : start + batch], generator=generator, output_type="pt", **size).frames
        parts.append(rearrange(frames, "b f c h w -> b c f h w") * 2 - 1)
    return torch.cat(parts)


def windows(videos: torch.Tensor, captions: list[str], length: int) -> tuple[torch.Tensor, list[str]]:
    """Each video (B, 3, F, H, W) cut into its F // length windows of `length` frames, each with its
    video's caption (frames past the last whole window are not scored); ValueError if F < length."""
    count = videos.shape[2] // length
    if count == 0:
        raise ValueError(f"clips of {videos.shape[2]} frames are shorter than the classifier's {length}")
    cut = rearrange(videos[:, :, : count * length], "b c (k f) h w -> (b k) c f h w", f=length)
    return cut, [caption for caption in captions for _ in range(count)]


def real_clips(count: int, num_frames: int, seed: int = 12345, world: str = BUNDLED_WORLD) -> torch.Tensor:
    """`count` true clips of the world (the FVD reference; one shape each in the long world, as the
    captions of `all_captions`)."""
    if world == "shapes":
        data = MovingShapes(count, ShapesConfig(num_frames=num_frames), seed=seed)
    else:
        data = LongShapes(count, replace(ONE_SHAPE_WORLD, num_frames=num_frames), seed=seed)
    return collate([data[i] for i in range(count)])["video"]


def score(
    classifier, videos: torch.Tensor, captions: list[str], reference: torch.Tensor, world: str = BUNDLED_WORLD
) -> dict[str, float]:
    """Caption consistency per head, IS-style score, FVD (classifier features) against `reference`; on
    the long world the judge's agreement per attribute too ("judge_shape", ..., "judge_all")."""
    result = caption_consistency(classifier, videos, caption_labels(captions, HEADS_OF[world]))
    result["is_style"] = inception_style_score(joint_probs(classifier, videos))
    result["fvd_style"] = frechet_video_distance(video_features(classifier, videos),
                                                 video_features(classifier, reference))  # fmt: skip
    if world == "long":
        judged = judge_videos(tensor_to_frames(videos), captions, clip_frames=videos.shape[2])
        result.update({f"judge_{k}": v for k, v in judged.items()})
    return result


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=BUNDLED)
    parser.add_argument("--world", choices=tuple(HEADS_OF), default=None,
                        help=f"the model's world (default {BUNDLED_WORLD}; a flow bundle: long)")  # fmt: skip
    parser.add_argument("--classifier", type=Path, help="default: the world's bundled classifier")
    parser.add_argument("--repeats", type=int, default=2, help="clips per caption (36 or 48 captions)")
    parser.add_argument("--frames", type=int, default=8, help="VidRD only (a flow bundle: its own)")
    parser.add_argument("--steps", type=int, default=None, help="default 25, or the flow bundle's")
    parser.add_argument("--guidance", type=float, default=None, help="default 7.5, or the flow bundle's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    check_int("repeats", args.repeats, 1)
    check_int("frames", args.frames, 8)  # the classifiers read 8-frame clips
    if args.steps is not None:
        check_int("steps", args.steps, 1, 1000)
    if args.guidance is not None:
        check_real("guidance", args.guidance, 0.0, 1e6)
    flow = read_defaults(args.model) is not None
    if flow and args.world not in (None, FLOW_WORLD):
        raise ValueError(f"world must be {FLOW_WORLD!r} for a flow bundle (its world); got {args.world!r}")
    args.world = args.world or (FLOW_WORLD if flow else BUNDLED_WORLD)
    classifier = load_classifier(args.classifier or CLASSIFIERS[args.world])
    captions = all_captions(args.repeats, args.world)
    videos, setting = _generate(args, captions)
    videos, captions = windows(videos, captions, classifier.config.num_frames)
    reference = real_clips(len(captions), videos.shape[2], world=args.world)
    result = score(classifier, videos, captions, reference, args.world)
    windows_of = f"{len(captions)} windows of {videos.shape[2]} frames"
    print(f"{windows_of} ({args.repeats} clips per caption), {setting}:")
    print(json.dumps({k: round(v, 4) for k, v in result.items()}, indent=2))
    return result


def _generate(args: argparse.Namespace, captions: list[str]) -> tuple[torch.Tensor, str]:
    """The clips of `captions` from a VidRD bundle or a flow bundle, and the settings in words."""
    defaults = read_defaults(args.model)
    if defaults is None:
        steps = VIDRD_STEPS if args.steps is None else args.steps
        guidance = VIDRD_GUIDANCE if args.guidance is None else args.guidance
        videos = generate_clips(load_pipeline(args.model), captions, args.frames, steps, guidance, args.seed)
        return videos, f"{steps} DDIM steps, guidance {guidance}"
    given = {"num_inference_steps": args.steps, "guidance_scale": args.guidance}
    defaults = dataclasses.replace(defaults, **{k: v for k, v in given.items() if v is not None})
    videos = generate_flow_clips(load_flow(args.model), captions, defaults, args.seed)
    steps = defaults.num_inference_steps
    return videos, f"flow bundle, {defaults.num_frames} frames, {steps} Euler steps, " \
        f"guidance {defaults.guidance_scale}"  # fmt: skip


if __name__ == "__main__":
    main()
