"""A saved VidRD (the bundled tiny model by default) at its seams: frames either side of every seam, per
composition, with the latent and pixel continuity metrics of `vidrd generate`.

One long video per composition, same caption, seed and settings: the paper's FNR + PNS(4) + DSG(0.4)
(M = 2 as `vidrd generate` uses), forward overlap alone, and `compare.GAP_CLOSING` (overlap with
reconstruction guidance at its default weight, a whole trajectory's). Overlap drops the prompt frames it
repeats.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange

from benchmarks import pixel_metrics
from benchmarks.compare import GAP_CLOSING, PAPER
from benchmarks.figures import save_figure
from benchmarks.streaming import latent_metrics
from models.bundled import BUNDLED, load_pipeline
from models.contact_sheet import SEAM_RGB
from samplers import LongVideoSampler
from samplers.registry import parse_strategies
from samplers.validation import check_int, check_real


@dataclass(frozen=True)
class SeamsConfig:
    model: Path = BUNDLED  # folder of a saved VidRD pipeline (models.bundled.save_pipeline)
    caption: str = "a red circle moving right"
    clips: int = 4  # K
    frames: int = 8  # N, as `vidrd generate`
    prompt_frames: int = 2  # M, as `vidrd generate`
    steps: int = 25  # DDIM steps per clip
    guidance: float = 7.5  # classifier-free guidance scale
    seed: int = 0  # of the torch.Generator, the same for every composition
    context: int = 2  # frames shown on each side of a seam

    def __post_init__(self) -> None:
        check_int("clips", self.clips, 2)
        check_int("frames", self.frames, 2)
        check_int("prompt_frames", self.prompt_frames, 1, self.frames - 1)
        check_int("steps", self.steps, 1)
        check_real("guidance", self.guidance, 0.0, 1e6)
        check_int("seed", self.seed, 0)
        check_int("context", self.context, 1, self.frames - self.prompt_frames)  # fits a trimmed clip

    @property
    def compositions(self) -> tuple[str, ...]:
        return PAPER, "overlap", GAP_CLOSING


@dataclass(frozen=True)
class SeamVideo:
    composition: str
    frames: np.ndarray  # (L, H, W, 3) uint8
    clip_starts: list[int]
    seconds: float  # generation wall time (sampling and decoding)
    metrics: dict[str, Any]  # {"latent": streaming.latent_metrics, "pixel": pixel_metrics.summary}


def generate(config: SeamsConfig) -> list[SeamVideo]:
    """One video per composition, on the current torch thread setting."""
    pipe = load_pipeline(config.model)
    videos = []
    for composition in config.compositions:
        sampler = LongVideoSampler(parse_strategies(composition), config.prompt_frames, progress=False)
        began = time.perf_counter()
        out = pipe(
            config.caption,
            sampler=sampler,
            num_clips=config.clips,
            num_frames=config.frames,
            num_inference_steps=config.steps,
            guidance_scale=config.guidance,
            generator=torch.Generator().manual_seed(config.seed),
            return_latents=True,
        )
        seconds = time.perf_counter() - began
        latents = out.latents.detach().to("cpu", torch.float32)
        metrics = {
            "latent": latent_metrics(latents, out.clip_starts, config.prompt_frames),
            "pixel": pixel_metrics.summary(out.frames, out.clip_starts),
        }
        videos.append(SeamVideo(composition, out.frames, out.clip_starts, seconds, metrics))
    return videos


def seam_row(video: SeamVideo, context: int, gap: int = 4) -> np.ndarray:
    """(H, W', 3) uint8: for every seam b, frames b-context..b+context-1 side by side, a 1-px red line
    between b-1 and b, `gap` white columns between seams."""
    h = video.frames.shape[1]
    red = np.broadcast_to(np.asarray(SEAM_RGB, np.uint8), (h, 1, 3))
    white = np.full((h, gap, 3), 255, np.uint8)
    parts = []
    for b in video.clip_starts[1:]:
        before = rearrange(video.frames[b - context : b], "f h w c -> h (f w) c")
        after = rearrange(video.frames[b : b + context], "f h w c -> h (f w) c")
        parts += [before, red, after, white]
    return np.concatenate(parts[:-1], axis=1)


def plot(videos: list[SeamVideo], config: SeamsConfig, path) -> None:
    """One row per composition; each seam: `context` frames before | after (red line: the seam)."""
    rows = [seam_row(video, config.context) for video in videos]
    fig, axes = plt.subplots(len(rows), 1, figsize=(rows[0].shape[1] / 22, 1.1 + 1.7 * len(rows)))
    for ax, row, video in zip(np.atleast_1d(axes), rows, videos, strict=True):
        ax.imshow(row, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        pixel = video.metrics["pixel"]
        ax.set_title(
            f"{video.composition}: seams at frames {video.clip_starts[1:]}; velocity jump "
            f"{pixel['mean_velocity_jump']:.2f} px/frame, direction reversals "
            f"{pixel['direction_reversals']}/{pixel['seams_with_clear_direction']}",
            fontsize=8,
        )
    fig.suptitle(
        f'"{config.caption}": {config.context} frames before | after each seam (red line), '
        f"{config.clips} clips, N={config.frames}, M={config.prompt_frames}, DDIM {config.steps}, "
        f"guidance {config.guidance:g}, seed {config.seed}",
        fontsize=9,
    )
    save_figure(fig, path, dpi=120)
