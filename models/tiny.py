"""Tiny configurations of every VidRD component: for tests, benchmarks and the kit's own small model.

Diffusers initialises weights from the global RNG; `seeded` builds inside `torch.random.fork_rng()` with
an explicit seed, so construction is deterministic and leaves the caller's global RNG state untouched.
"""

from __future__ import annotations

from typing import Any

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

from .data.worlds import SHAPES_WORDS
from .pipeline import VidRDPipeline
from .seeding import seeded
from .temporal_vae import TemporalVAE
from .text import WordEncoder
from .vidrd_unet import VidRDUNet

TINY_UNET2D: dict[str, Any] = {
    "sample_size": 8,  # latent side
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": (32, 64),
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 32,  # = the text encoder's dim
    "attention_head_dim": 8,
    "norm_num_groups": 8,
}
TINY_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (16, 32, 32),  # three levels: 32x32 frames <-> 8x8 latents
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 32,
}
TINY_WORDS = list(SHAPES_WORDS)  # every word of the clip world's captions (models.data.shapes)
TINY_SCHEDULER: dict[str, Any] = {  # Stable Diffusion's noise schedule, for training and DDIM sampling
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    # Zero terminal SNR (Lin et al. 2024): the last training step is pure noise, as sampling's first is,
    # so nothing a clip should show (its direction of motion included) can be read off leftover signal
    # in the "noise"; it has to come from the caption. Needs v-prediction (epsilon is undefined there)
    # and DDIM's trailing timesteps (so that sampling starts at t = T - 1).
    "rescale_betas_zero_snr": True,
    "prediction_type": "v_prediction",
    "timestep_spacing": "trailing",
}


def tiny_unet2d(seed: int = 0) -> UNet2DConditionModel:
    with seeded(seed):
        return UNet2DConditionModel(**TINY_UNET2D)


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    with seeded(seed):
        return AutoencoderKL(**TINY_VAE)


def tiny_pipeline(seed: int = 0) -> VidRDPipeline:
    """An untrained tiny VidRD: inflated UNet, temporal VAE, word encoder, DDIM."""
    text_encoder = WordEncoder(vocabulary=TINY_WORDS, dim=TINY_UNET2D["cross_attention_dim"], seed=seed)
    return VidRDPipeline(
        unet=VidRDUNet.from_unet2d(tiny_unet2d(seed), seed=seed).eval(),
        vae=TemporalVAE.from_vae(tiny_vae(seed + 1), seed=seed + 1).eval(),
        text_encoder=text_encoder.eval(),
        scheduler=DDIMScheduler(**TINY_SCHEDULER),
    )
