"""Long videos from short-clip video diffusion models: the VidRD strategies as composable objects.

    from samplers import LongVideoSampler, FNR, PNS, DSG
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=4)
    video = sampler.sample(denoiser, scheduler, clip_shape=(1, 4, 16, 32, 32), num_clips=8, generator=g)

This package depends on no model: a backbone is anything that satisfies `VideoDenoiser`.
"""

from .cfg import ClassifierFreeGuidance
from .guidance import DSG
from .noise import FNR, PNS, IndependentNoise
from .protocols import (
    LatentGuidance,
    NoiseContext,
    NoiseInitializer,
    Recording,
    RecordSpec,
    StepContext,
    VideoDenoiser,
)
from .sampler import Clip, LongVideo, LongVideoSampler
from .schedulers import GuidanceExactnessWarning

__all__ = [
    "DSG",
    "FNR",
    "PNS",
    "ClassifierFreeGuidance",
    "Clip",
    "GuidanceExactnessWarning",
    "IndependentNoise",
    "LatentGuidance",
    "LongVideo",
    "LongVideoSampler",
    "NoiseContext",
    "NoiseInitializer",
    "RecordSpec",
    "Recording",
    "StepContext",
    "VideoDenoiser",
]
