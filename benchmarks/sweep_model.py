"""The sweep's second backbone: a saved VidRD (the bundled tiny model by default) on the shapes world.

    python -m benchmarks.sweep --backbone model --out out/sweep-model

A point's video is `samples` long videos in one batch, one caption each: the captions of `samples` true
long videos of the world (bouncing moving shapes, `ShapesConfig(bounce=True)`, drawn from the point's
seed, so every point of a seed has the same captions), sampled with the point's strategies and M, DDIM
and classifier-free guidance as `benchmarks.model_quality` does, and decoded clip by clip as
`VidRDPipeline` does. The continuity and looping metrics are `compare.scores` in latent space, with the
true videos encoded by the pipeline's VAE as the reference: their empirical autocorrelation stands in
for the analytic prior's kernel, their seam windows are the Fréchet reference. The pixel metrics of
`benchmarks.pixel_metrics` (velocity jump and direction reversals at the seams, speed inside clips) are
pooled over the videos. The "reference process" scores the encoded true videos themselves, cut every N
frames, against a second draw (and their rendered frames in pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from benchmarks import compare, metrics, pixel_metrics
from benchmarks.cost import COST, CountingDenoiser
from benchmarks.joint import Joint
from benchmarks.model_quality import decode_clips
from models.bundled import BUNDLED, load_pipeline
from models.data.shapes import ShapesConfig, caption, frames_to_tensor, render, sample_spec, tensor_to_frames
from samplers import LongVideoSampler
from samplers.validation import check_int, check_real

PIXEL_METRICS = ("velocity_jump", "reversals_per_seam", "speed_inside")


@dataclass(frozen=True)
class ModelBackbone:
    model: str = str(BUNDLED)  # folder of a saved VidRD pipeline (models.bundled.save_pipeline)
    samples: int = 16  # B: long videos per point, one caption each (a batch); with 3 seeds, 48 per point
    num_frames: int = 8  # N: frames per clip, as the bundled model was trained
    num_clips: int = 4  # K
    steps: int = 25  # T: DDIM steps per clip
    guidance: float = 7.5  # classifier-free guidance scale (model_quality's)
    window: int = 8  # frames per seam window for the Fréchet distance

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be the path of a saved pipeline as a string; got {self.model!r}")
        check_int("samples", self.samples, 1)
        check_int("num_frames", self.num_frames, 2)
        check_int("num_clips", self.num_clips, 2)  # the metrics need a seam
        check_int("steps", self.steps, 1)
        check_real("guidance", self.guidance, 0.0, 1e6)
        check_int("window", self.window, 1, self.num_frames)

    @property
    def length(self) -> int:
        """L = N * K: the frames of a true video (and of a sampled one that keeps its prompt frames)."""
        return self.num_frames * self.num_clips


@lru_cache(maxsize=2)
def pipeline(model: str, device: str):
    """The saved pipeline on `device`, loaded once per process (sampling leaves it unchanged)."""
    pipe = load_pipeline(model)
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        part.to(device)
    return pipe


def true_videos(
    backbone: ModelBackbone, generator: torch.Generator, size: int = 32
) -> tuple[list[str], np.ndarray]:
    """`samples` long videos of the world (size x size frames) and their captions: uint8 (B, L, H, W, 3)."""
    config = ShapesConfig(size=size, num_frames=backbone.length, bounce=True)
    specs = [sample_spec(config, generator) for _ in range(backbone.samples)]
    return [caption(spec) for spec in specs], np.stack([render(spec, config) for spec in specs])


def encode(pipe, frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (B, L, H, W, 3) -> the VAE's scaled latents (B, C, L, h, w) on the CPU."""
    return pipe.vae.encode(frames_to_tensor(frames).to(pipe.vae.device)).cpu()


def pixel_scores(frames: np.ndarray, clip_starts: list[int]) -> dict[str, float]:
    """PIXEL_METRICS of uint8 videos (B, L, H, W, 3): the velocity jump (px/frame) pooled over videos and
    seams, the share of all seams whose motion reverses, the mean speed inside clips (px/frame)."""
    found = [pixel_metrics.summary(video, clip_starts) for video in frames]
    jumps = np.concatenate([s["velocity_jump_per_seam"] for s in found])
    seams = sum(len(s["direction_reversal_per_seam"]) for s in found)
    return {
        "velocity_jump": pixel_metrics.finite_mean(jumps),
        "reversals_per_seam": sum(s["direction_reversals"] for s in found) / seams,
        "speed_inside": pixel_metrics.finite_mean(np.array([s["mean_speed_inside"] for s in found])),
    }


def _scores(latents, starts, frames, reference: torch.Tensor, backbone, prompt_frames) -> dict[str, float]:
    """compare.METRICS against the true latents `reference` (their autocorrelation, their windows), then
    PIXEL_METRICS of `frames`."""
    reference_acf = metrics.autocorrelation(reference, reference.shape[2] - 1)
    values = compare.scores(latents, starts, reference, reference_acf, prompt_frames, backbone.num_frames,
                            backbone.window)  # fmt: skip
    return {**values, **pixel_scores(frames, starts)}


@torch.no_grad()
def score_sampler(sampler: LongVideoSampler, backbone: ModelBackbone, truth: torch.Generator,
                  noise: torch.Generator, device: str = "cpu") -> tuple[int, dict[str, float]]:  # fmt: skip
    """(frames, metrics) of the videos `sampler` makes for the captions of the true videos drawn from
    `truth` (a CPU generator), its noise from `noise` (on `device`)."""
    pipe = pipeline(backbone.model, str(device))
    captions, true_frames = true_videos(backbone, truth, pipe.vae.vae.config.sample_size)
    denoiser, cond = pipe.batch_conditioning(captions, backbone.guidance)  # as VidRDPipeline.sample_batch
    counted = CountingDenoiser(denoiser)
    shape = pipe.clip_shape(len(captions), backbone.num_frames)
    video = sampler.sample(counted, pipe.scheduler, shape, backbone.num_clips, backbone.steps,
                           generator=noise, **cond)  # fmt: skip
    return _scored(pipe, video, true_frames, backbone, sampler.prompt_frames, counted)


@torch.no_grad()
def score_joint(joint: Joint, backbone: ModelBackbone, prompt_frames: int, truth: torch.Generator,
                noise: torch.Generator, device: str = "cpu") -> tuple[int, dict[str, float]]:  # fmt: skip
    """`score_sampler` for a method that makes the whole long video at once (benchmarks.joint); the
    guided model takes one timestep per frame where the method needs it (FIFO)."""
    pipe = pipeline(backbone.model, str(device))
    captions, true_frames = true_videos(backbone, truth, pipe.vae.vae.config.sample_size)
    denoiser, cond = pipe.batch_conditioning(captions, backbone.guidance)
    counted = CountingDenoiser(denoiser)
    clip_shape = pipe.clip_shape(len(captions), backbone.num_frames)
    video = joint.sample(counted, pipe.scheduler, clip_shape, backbone.num_clips, backbone.steps, noise,
                         prompt_frames, **cond)  # fmt: skip
    return _scored(pipe, video, true_frames, backbone, prompt_frames, counted)


def _scored(pipe, video, true_frames, backbone: ModelBackbone, prompt_frames: int,
            counted: CountingDenoiser) -> tuple[int, dict[str, float]]:  # fmt: skip
    """(frames, metrics and cost) of a sampled `video`, decoded clip by clip at its clip starts."""
    frames = tensor_to_frames(decode_clips(pipe, video.latents, video.clip_starts))
    latents, reference = video.latents.cpu(), encode(pipe, true_frames)
    values = _scores(latents, video.clip_starts, frames, reference, backbone, prompt_frames)
    return latents.shape[2], {**values, **counted.per_output_frame(latents.shape[2])}


@torch.no_grad()
def score_reference(backbone: ModelBackbone, prompt_frames: int, truth: torch.Generator,
                    second: torch.Generator, device: str = "cpu") -> tuple[int, dict]:  # fmt: skip
    """(frames, metrics) of the true videos drawn from `truth`, encoded and cut every N frames, against
    those drawn from `second` (both CPU generators); pixel metrics of their rendered frames."""
    pipe = pipeline(backbone.model, str(device))
    size = pipe.vae.vae.config.sample_size
    frames, second_frames = true_videos(backbone, truth, size)[1], true_videos(backbone, second, size)[1]
    starts = list(range(0, backbone.length, backbone.num_frames))
    latents, reference = encode(pipe, frames), encode(pipe, second_frames)
    free = dict.fromkeys(COST, 0.0)  # no backbone: true videos
    return backbone.length, {**_scores(latents, starts, frames, reference, backbone, prompt_frames), **free}
