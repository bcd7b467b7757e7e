"""Continuity and looping of clip-by-clip compositions on the bundled model, with error bars (issue 13).

    python -m benchmarks.model_continuity --model runs/long/bundle   # 3 seeds x 16 captions, all compositions
    python -m benchmarks.model_continuity --model runs/long/bundle --seeds 1 --captions 4   # a quick look

It needs a model of the long world: a VidRD bundle trained on it (the committed one's world is
`models.bundled.BUNDLED_WORLD`) or a flow bundle (`models.flow`, run through LongVideoPipeline at its
`generation.json` size, its captions embedded as one batch). For each
composition (`COMPOSITIONS`, or `--compositions "a;b"`), each seed and each caption of the long
world (`--captions` of `model_quality.all_captions`, evenly spaced over its 36, so spread over colours,
shapes, motions and backdrops) the
bundled model makes one long video (one batch per seed, the same seeds for every composition), and each
video is scored with the pixel metrics (shapes found by saturation) against the true long videos of its
caption cut at the same clip starts (`true_reference`):

- continuity: `jump_excess` = velocity jump at the seams minus the true videos' at the same seams
  (px/frame; 0 is as continuous as the truth), and reversals per seam minus the true ones;
- looping: the latent mirror correlation (skip = M), 0 for unrelated clips and 1 for a palindrome.

Each number is a mean over all videos with a 95% interval (1.96 standard errors over the videos), and
the per-seed means. `--out` writes the table as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from einops import rearrange

from benchmarks.metrics import mirror_correlation
from benchmarks.model_quality import all_captions, decode_clips
from benchmarks.pixel_metrics import SHAPE_SATURATION, summary
from benchmarks.true_reference import mean_and_error, true_reference
from models.bundled import BUNDLED, VIDRD_FRAMES, VIDRD_GUIDANCE, VIDRD_STEPS, load_pipeline
from models.data.shapes import tensor_to_frames
from models.data.worlds import make_world
from models.files import atomic_path
from models.flow import FlowDefaults, load_flow, read_defaults
from models.long_pipeline import LongVideoPipeline
from models.text import unknown_words
from models.threads import limit_threads
from samplers import LongVideoSampler
from samplers.registry import PAPER, parse_strategies
from samplers.validation import check_int, check_real

__all__ = ["COMPOSITIONS", "score_composition", "summarise"]

# The paper's strategies alone and together, and the kit's candidates.
COMPOSITIONS = ("independent", "fnr", "pns:4", "dsg:0.4", "fnr,pns:4", PAPER, "overlap", "overlap,recon:10")
PROMPT_FRAMES = 2  # M for the bundled model's 8-frame clips
STUDY_SIZE = MappingProxyType({"seeds": 3, "captions": 16, "clips": 8})  # the default study's size
# [low, high] of each count main runs (captions: the long world's 36; at least 2 clips to have a seam)
COUNT_RANGES = MappingProxyType({
    "seeds": (1, math.inf), "captions": (1, len(all_captions(1, "long"))), "clips": (2, math.inf),
    "steps": (1, 1000), "prompt_frames": (1, math.inf)})  # fmt: skip


def _video_scores(frames: np.ndarray, latents: torch.Tensor, starts: list[int], true: dict,
                  latent_starts: list[int], prompt_frames: int) -> dict:  # fmt: skip
    pixel = summary(frames, starts, saturation=SHAPE_SATURATION)
    reference = true["pixel_metrics"]
    return {
        "jump_excess": pixel["mean_velocity_jump"] - reference["mean_velocity_jump"],
        "velocity_jump": pixel["mean_velocity_jump"],
        "reversal_excess": pixel["reversals_per_seam"] - reference["reversals_per_seam"],
        "speed_inside": pixel["mean_speed_inside"],
        "mirror_correlation": mirror_correlation(latents[None], latent_starts, skip=prompt_frames),
    }


def long_videos(pipe, captions: list[str], sampler: LongVideoSampler, clips: int, seed: int, steps: int,
                defaults: FlowDefaults | None, guidance: float
                ) -> tuple[np.ndarray, torch.Tensor, list, list]:  # fmt: skip
    """One long video per caption, in one batch: frames (B, L, H, W, 3) uint8, latents (B, C, L', h, w),
    the clips' pixel and latent starts. `pipe` is a VidRDPipeline (8-frame clips) or a LongVideoPipeline
    of a flow bundle with its `defaults` (captions embedded by the pipeline's own `encode_prompt` and
    passed as one batch of prompt embeddings); `guidance` is the classifier-free guidance scale."""
    generator = torch.Generator().manual_seed(seed)
    if defaults is None:
        video = pipe.sample_batch(captions, generator, sampler, VIDRD_FRAMES, clips, steps, guidance)
        frames = tensor_to_frames(decode_clips(pipe, video.latents, video.clip_starts))
        return frames, video.latents, list(video.clip_starts), list(video.clip_starts)
    positive, negative = pipe.pipe.encode_prompt(
        captions, do_classifier_free_guidance=True, device=pipe.family.device, max_sequence_length=512)
    size = {"num_frames": defaults.num_frames, "height": defaults.height, "width": defaults.width}
    out = pipe(prompt_embeds=positive, negative_prompt_embeds=negative, sampler=sampler, num_clips=clips,
               generator=generator, num_inference_steps=steps, guidance_scale=guidance,
               **size)  # fmt: skip
    frames = np.round(out.frames * 255).astype(np.uint8)
    if len(captions) == 1:  # the pipeline returns one video without its batch axis
        frames = rearrange(frames, "l h w c -> 1 l h w c")
    return frames, out.latents, out.clip_starts, out.latent_clip_starts


@torch.no_grad()
def score_composition(pipe, strategies: str, captions: list[str], seeds: list[int], clips: int,
                      steps: int = 25, references: dict | None = None,
                      defaults: FlowDefaults | None = None,
                      guidance: float | None = None,
                      prompt_frames: int = PROMPT_FRAMES) -> list[list[dict]]:  # fmt: skip
    """Per seed, per caption: the scores of one long video (see the module docstring). `guidance`:
    default the bundle's (VidRD: `VIDRD_GUIDANCE`, a flow bundle: its `defaults`); `prompt_frames`: M,
    in latent frames (the mirror correlation skips them)."""
    guidance = default_guidance(defaults) if guidance is None else guidance
    sampler = LongVideoSampler(parse_strategies(strategies), prompt_frames, progress=False)
    references = {} if references is None else references  # (caption, length, starts) -> true_reference
    per_seed = []
    for seed in seeds:
        frames, latents, starts, latent_starts = long_videos(pipe, captions, sampler, clips, seed, steps,
                                                             defaults, guidance)  # fmt: skip
        length, rows = frames.shape[1], []
        for i, caption in enumerate(captions):
            key = (caption, length, tuple(starts))
            if key not in references:
                references[key] = true_reference(caption, length, starts)
            true = references[key]
            rows.append(_video_scores(frames[i], latents[i].float(), starts, true, latent_starts,
                                      prompt_frames))  # fmt: skip
        per_seed.append(rows)
    return per_seed


def default_guidance(defaults: FlowDefaults | None) -> float:
    """The guidance scale a bundle generates with: `VIDRD_GUIDANCE` for a VidRD, a flow bundle's own."""
    return VIDRD_GUIDANCE if defaults is None else defaults.guidance_scale


def latent_clip_frames(pipe, defaults: FlowDefaults | None) -> int:
    """Latent frames of one clip of a loaded model (what M is counted in): `VIDRD_FRAMES` for a VidRD; a
    flow bundle's num_frames through its family's own count (`VideoFamily.latent_frames`)."""
    return VIDRD_FRAMES if defaults is None else pipe.family.latent_frames(defaults.num_frames)


def check_prompt_frames(compositions: list[str], prompt_frames: int, latent_frames: int, model) -> None:
    """ValueError, before any sampling, unless every composition takes M = `prompt_frames` on clips of
    `latent_frames` (the sampler's own check), naming the model and that M counts latent frames."""
    for text in compositions:
        try:
            LongVideoSampler(parse_strategies(text), prompt_frames).check_clip(latent_frames)
        except ValueError as error:
            raise ValueError(f"--prompt-frames counts latent frames; --model {model}: {error}") from error


def load_model(folder: Path) -> tuple[Any, FlowDefaults | None]:
    """(VidRDPipeline, None) for a VidRD bundle, (LongVideoPipeline, its defaults) for a flow bundle."""
    defaults = read_defaults(folder)
    if defaults is None:
        return load_pipeline(folder), None
    return LongVideoPipeline.from_pipe(load_flow(folder)), defaults


def summarise(per_seed: list[list[dict]]) -> dict:
    """{metric: {"mean", "ci95", "per_seed", "videos"}} over every video (finite values only)."""
    out = {}
    for key in per_seed[0][0]:
        values = [r[key] for rows in per_seed for r in rows]
        mean, error = mean_and_error(values)
        seeds = [mean_and_error([r[key] for r in rows])[0] for rows in per_seed]
        videos = int(np.isfinite(np.array(values, dtype=np.float64)).sum())
        out[key] = {"mean": mean, "ci95": 1.96 * error, "per_seed": seeds, "videos": videos}
    return out


def check_counts(counts: dict[str, int]) -> None:
    """TypeError/ValueError naming the count, its value and the range `main` runs (`COUNT_RANGES`), for
    each of `counts` ({"seeds": 3, "captions": 16, ...}); `read_continuity` checks a JSON with it."""
    for name, value in counts.items():
        check_int(name, value, *COUNT_RANGES[name])


def regenerate_flags(study: dict) -> str:
    """The flags that rerun the study a `--out` JSON records (`--model` and `--out` aside): always its
    steps and, where recorded, its guidance (both defaults depend on the bundle); M, size and
    compositions where they are not the defaults. Values exact (repr), compositions shell-quoted."""
    flags = [f"--steps {study['steps']}"]
    if study.get("guidance") is not None:  # files written before --guidance: the bundle's own
        flags.append(f"--guidance {float(study['guidance'])!r}")
    if study["prompt_frames"] != PROMPT_FRAMES:
        flags.append(f"--prompt-frames {study['prompt_frames']}")
    found = {"seeds": study["seeds"], "captions": len(study["captions"]), "clips": study["clips"]}
    flags += [f"--{name} {value}" for name, value in found.items() if value != STUDY_SIZE[name]]
    if tuple(study["table"]) != COMPOSITIONS:
        flags.append(f"--compositions {shlex.quote(';'.join(study['table']))}")
    return " ".join(flags)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=BUNDLED)
    parser.add_argument("--compositions", help=f"';'-separated (default: {'; '.join(COMPOSITIONS)})")
    for name, value in STUDY_SIZE.items():
        parser.add_argument(f"--{name}", type=int, default=value)
    parser.add_argument("--steps", type=int, default=None, help="default 25, or the flow bundle's")
    parser.add_argument("--guidance", type=float, default=None,
                        help=f"guidance scale (default {VIDRD_GUIDANCE}, or the flow bundle's)")  # fmt: skip
    parser.add_argument("--prompt-frames", type=int, default=PROMPT_FRAMES,
                        help=f"M, in latent frames (default {PROMPT_FRAMES})")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the table here as JSON")
    return parser


def _checked(parser: argparse.ArgumentParser, argv) -> tuple[argparse.Namespace, list[str]]:
    """The arguments and compositions, every value checked before the model loads (M against its clip:
    `check_prompt_frames`, once it has)."""
    args = parser.parse_args(argv)
    check_int("threads", args.threads, 1)
    names = ("seeds", "captions", "clips", "prompt_frames") + (("steps",) if args.steps is not None else ())
    check_counts({name: getattr(args, name) for name in names})
    if args.guidance is not None:
        check_real("guidance", args.guidance, 0.0, 1e3)
    compositions = args.compositions.split(";") if args.compositions else list(COMPOSITIONS)
    for text in compositions:
        parse_strategies(text)  # every name checked before the model loads
    return args, compositions


def main(argv=None) -> dict:
    parser = build_parser()
    args, compositions = _checked(parser, argv)
    captions = all_captions(1, "long")
    captions = [captions[round(i * len(captions) / args.captions)] for i in range(args.captions)]
    table, references = {}, {}
    with limit_threads(args.threads):
        pipe, defaults = load_model(args.model)
        if defaults is None and (unknown := unknown_words(pipe.text_encoder, make_world("long").words)):
            parser.error(f"--model {args.model}: a VidRD of another world (its text encoder does not know "
                         f"{unknown}); this study needs a model of the long world")  # fmt: skip
        check_prompt_frames(compositions, args.prompt_frames, latent_clip_frames(pipe, defaults), args.model)
        steps = args.steps or (VIDRD_STEPS if defaults is None else defaults.num_inference_steps)
        guidance = default_guidance(defaults) if args.guidance is None else args.guidance
        for text in compositions:
            seeds = list(range(args.seeds))
            per_seed = score_composition(pipe, text, captions, seeds, args.clips, steps, references,
                                         defaults, guidance, args.prompt_frames)  # fmt: skip
            table[text] = summarise(per_seed)
            row = table[text]
            print(f"{text:<22} " + "  ".join(
                f"{k} {row[k]['mean']:+.3f} ± {row[k]['ci95']:.3f}"
                for k in ("jump_excess", "reversal_excess", "mirror_correlation")), flush=True)  # fmt: skip
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            found = {"model": str(args.model), "steps": steps, "guidance": guidance,
                     "prompt_frames": args.prompt_frames,
                     "captions": captions, "seeds": args.seeds, "clips": args.clips,
                     "table": table}  # fmt: skip
            tmp.write_text(json.dumps(found, indent=2) + "\n")
    return table


if __name__ == "__main__":
    main()
