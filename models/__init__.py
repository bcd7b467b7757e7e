"""Backbones for the sampler: the analytic Gaussian-process prior and the reference VidRD model.

from models import GaussianVideoPrior                   # exact reference, no weights
from models import VidRDUNet, TemporalVAE, VidRDPipeline # the reference VidRD backbone
from models.adapters import denoiser_for                # diffusers video UNets as VideoDenoisers
from models import LongVideoPipeline                    # Wan, CogVideoX, LTX, HunyuanVideo, Mochi made long
"""

from .adapters import CallableDenoiser, MotionDenoiser, UNet3DDenoiser, VidRDDenoiser, denoiser_for
from .gaussian_prior import ExactDenoiser, GaussianVideoPrior
from .long_pipeline import LongVideoOutput, LongVideoPipeline
from .pipeline import VidRDPipeline, VidRDPipelineOutput
from .temporal_vae import TemporalVAE
from .text import CLIPTextEncoder, TextEncoder, WordEncoder, WordTokenizer
from .video_io import MemorySink, VideoFileSink, save_video
from .vidrd_unet import VidRDUNet

__all__ = [
    "CLIPTextEncoder",
    "CallableDenoiser",
    "ExactDenoiser",
    "GaussianVideoPrior",
    "LongVideoOutput",
    "LongVideoPipeline",
    "MemorySink",
    "MotionDenoiser",
    "TemporalVAE",
    "TextEncoder",
    "UNet3DDenoiser",
    "VidRDDenoiser",
    "VidRDPipeline",
    "VidRDPipelineOutput",
    "VidRDUNet",
    "VideoFileSink",
    "WordEncoder",
    "WordTokenizer",
    "denoiser_for",
    "save_video",
]
