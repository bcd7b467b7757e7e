"""Long videos from short-clip video diffusion models: the VidRD strategies as composable objects.

    from samplers import LongVideoSampler, FNR, PNS, DSG
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=4)
    video = sampler.sample(denoiser, scheduler, clip_shape=(1, 4, 16, 32, 32), num_clips=8, generator=g)

Peer strategies plug in the same way: FreeNoiseRescheduling, PYoCoMixed / PYoCoProgressive (first-clip
noise priors), ForwardOverlap and ReconstructionGuidance (see samplers.registry for their names). Methods
that make the whole long video at once have their own samplers: WindowedSampler (context windows),
FreeNoise (its noise and window fusion) and FIFO (FIFO-Diffusion's diagonal queue).

This package depends on no model: a backbone is anything that satisfies `VideoDenoiser`, and any
diffusers scheduler (VP, Euler or flow matching) is seen through `Schedule` (samplers.schedulers).
"""

from .cfg import ClassifierFreeGuidance
from .fifo import FIFO
from .freenoise import FreeNoise, FreeNoiseRescheduling
from .guidance import DSG
from .noise import FNR, PNS, IndependentNoise
from .noise_level import NoiseLevel
from .overlap import ForwardOverlap
from .protocols import (
    LatentGuidance,
    NoiseContext,
    NoiseInitializer,
    Recording,
    RecordSpec,
    StepContext,
    StrategyHooks,
    VideoDenoiser,
)
from .pyoco import PYoCoMixed, PYoCoProgressive
from .reconstruction import ReconstructionGuidance
from .registry import CompositionWarning
from .sampler import Clip, LongVideo, LongVideoSampler
from .schedulers import GuidanceExactnessWarning, Schedule
from .windows import ContextWindows, WindowedSampler

__all__ = [
    "DSG",
    "FIFO",
    "FNR",
    "PNS",
    "ClassifierFreeGuidance",
    "Clip",
    "CompositionWarning",
    "ContextWindows",
    "ForwardOverlap",
    "FreeNoise",
    "FreeNoiseRescheduling",
    "GuidanceExactnessWarning",
    "IndependentNoise",
    "LatentGuidance",
    "LongVideo",
    "LongVideoSampler",
    "NoiseContext",
    "NoiseInitializer",
    "NoiseLevel",
    "PYoCoMixed",
    "PYoCoProgressive",
    "ReconstructionGuidance",
    "RecordSpec",
    "Recording",
    "Schedule",
    "StepContext",
    "StrategyHooks",
    "VideoDenoiser",
    "WindowedSampler",
]
