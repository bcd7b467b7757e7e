"""A tiny random CogVideoXPipeline (the sizes of diffusers' own CogVideoX tests), built offline from configs.

`variant` picks the transformer: "2b" (the tests' model: sinusoidal positional embeddings, as
CogVideoX-2b), "5b" (rotary positional embeddings, as CogVideoX-5b) or "1.5" (rotary embeddings and
`patch_size_t` 2, as CogVideoX 1.5). The VAE and the T5 text encoder are the tests' sizes for all three.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    CogVideoXDDIMScheduler,
    CogVideoXDPMScheduler,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
    DDIMScheduler,
)
from transformers import T5Config, T5EncoderModel

TEXT_DIM = 32  # the width of the prompt embeddings the tiny transformer takes
TEXT_LENGTH = 16  # its max_text_seq_length: sinusoidal positional embeddings need exactly this many tokens
VARIANTS = ("2b", "5b", "1.5")

# CogVideoX-2b's scheduler_config.json (CogVideoX-5b ships the same settings for CogVideoXDPMScheduler)
_RELEASED = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "clip_sample": False, "set_alpha_to_one": True, "steps_offset": 0, "prediction_type": "v_prediction",
    "timestep_spacing": "trailing", "rescale_betas_zero_snr": True, "snr_shift_scale": 3.0,
}  # fmt: skip


def tests_scheduler() -> DDIMScheduler:
    """The scheduler of diffusers' CogVideoX tests (DDIM with its defaults: epsilon, leading spacing)."""
    return DDIMScheduler()


def released_scheduler(dpm: bool = False) -> CogVideoXDDIMScheduler | CogVideoXDPMScheduler:
    """CogVideoX-2b's CogVideoXDDIMScheduler; with `dpm`, CogVideoX-5b's CogVideoXDPMScheduler."""
    return (CogVideoXDPMScheduler if dpm else CogVideoXDDIMScheduler)(**_RELEASED)


def _transformer(variant: str) -> CogVideoXTransformer3DModel:
    # the tests' transformer; rotary embeddings need a head width that splits into t/h/w parts (16)
    rotary = variant != "2b"
    return CogVideoXTransformer3DModel(
        num_attention_heads=2 if rotary else 4, attention_head_dim=16 if rotary else 8, in_channels=4,
        out_channels=4, time_embed_dim=2, text_embed_dim=TEXT_DIM, num_layers=1, sample_width=2,
        sample_height=2, sample_frames=5 if variant == "1.5" else 9, patch_size=2,
        patch_size_t=2 if variant == "1.5" else None, temporal_compression_ratio=4,
        max_text_seq_length=TEXT_LENGTH, use_rotary_positional_embeddings=rotary,
    )  # fmt: skip


def _vae() -> AutoencoderKLCogVideoX:
    return AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    )  # fmt: skip


def tiny_cogvideox(seed: int = 0, scheduler: Any = None, dtype: torch.dtype = torch.float32, *,
                   variant: str = "2b") -> CogVideoXPipeline:  # fmt: skip
    """Random weights from `seed`; no tokenizer (pass prompt_embeds (B, 16, 32))."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}")
    torch.manual_seed(seed)
    transformer = _transformer(variant)
    torch.manual_seed(seed)
    vae = _vae()
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(vocab_size=32, d_model=TEXT_DIM, d_kv=8, d_ff=37, num_layers=1,
                                           num_heads=4))  # fmt: skip
    pipe = CogVideoXPipeline(tokenizer=None, text_encoder=text_encoder, vae=vae, transformer=transformer,
                             scheduler=scheduler if scheduler is not None else tests_scheduler())  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)


def prompt_embeds(seed: int, batch: int = 1, length: int = TEXT_LENGTH) -> torch.Tensor:
    """Random prompt embeddings (B, S, 32) for the tiny transformer (S = 16 for the "2b" variant)."""
    return torch.randn((batch, length, TEXT_DIM), generator=torch.Generator().manual_seed(seed))
