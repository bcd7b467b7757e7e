"""Measuring a text-to-video model the paper's way, on the synthetic shapes world.

    python -m benchmarks.model_quality                  # the bundled model, every caption twice

Generates one clip per caption for every (shape, colour, direction) caption of the shapes world, in one
batched sampler run, and scores them with the trained shapes classifier: the share of clips whose
shape, colour and direction are the caption's (caption consistency), an IS-style score over the joint
label, and a Fréchet video distance between classifier features of the generated clips and of real
clips of the world.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from benchmarks.classifier import load_classifier
from benchmarks.video_scores import (
    caption_consistency,
    caption_labels,
    frechet_video_distance,
    inception_style_score,
    joint_probs,
    video_features,
)
from models.bundled import BUNDLED, load_pipeline
from models.data.shapes import COLOURS, DIRECTIONS, SHAPES, MovingShapes, ShapesConfig, collate
from samplers import LongVideoSampler
from samplers.validation import check_int

CLASSIFIER = Path(__file__).resolve().parent / "weights" / "shapes-classifier"


def all_captions(repeats: int = 1) -> list[str]:
    """Every caption of the world ("a red circle moving right", ...), `repeats` times each."""
    combos = itertools.product(COLOURS, SHAPES, DIRECTIONS)
    return [f"a {c} {s} moving {d}" for c, s, d in combos for _ in range(repeats)]


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


def real_clips(count: int, num_frames: int, seed: int = 12345) -> torch.Tensor:
    """`count` true clips of the world (the FVD reference)."""
    data = MovingShapes(count, ShapesConfig(num_frames=num_frames), seed=seed)
    return collate([data[i] for i in range(count)])["video"]


def score(classifier, videos: torch.Tensor, captions: list[str], reference: torch.Tensor) -> dict[str, float]:
    """Caption consistency per head, IS-style score, FVD (classifier features) against `reference`."""
    result = caption_consistency(classifier, videos, caption_labels(captions))
    result["is_style"] = inception_style_score(joint_probs(classifier, videos))
    result["fvd_style"] = frechet_video_distance(video_features(classifier, videos),
                                                 video_features(classifier, reference))  # fmt: skip
    return result


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=BUNDLED)
    parser.add_argument("--classifier", type=Path, default=CLASSIFIER)
    parser.add_argument("--repeats", type=int, default=2, help="clips per caption (48 captions)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    check_int("repeats", args.repeats, 1)
    pipe, classifier = load_pipeline(args.model), load_classifier(args.classifier)
    captions = all_captions(args.repeats)
    videos = generate_clips(pipe, captions, args.frames, args.steps, args.guidance, args.seed)
    result = score(classifier, videos, captions, real_clips(len(captions), args.frames))
    setting = f"{args.steps} DDIM steps, guidance {args.guidance}"
    print(f"{len(captions)} clips ({args.repeats} per caption), {setting}:")
    print(json.dumps({k: round(v, 4) for k, v in result.items()}, indent=2))
    return result


if __name__ == "__main__":
    main()
