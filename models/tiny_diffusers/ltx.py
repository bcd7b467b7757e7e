"""A tiny random LTXPipeline (the component sizes of diffusers' own LTX tests), built offline from configs.

The VAE compresses by (4, 4, 4) (time, height, width) instead of the released (8, 32, 32): num_frames is
4k+1; the pipeline itself still asks height and width to be multiples of 32. No tokenizer: pass
`prompt_embeds` (B, S, 32) with their `prompt_attention_mask` (B, S), as `prompt_embeds` below makes them.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AutoencoderKLLTXVideo,
    FlowMatchEulerDiscreteScheduler,
    LTXPipeline,
    LTXVideoTransformer3DModel,
)
from torch import Tensor
from transformers import T5Config, T5EncoderModel

TEXT_DIM = 32  # the width of the prompt embeddings the tiny transformer takes (its caption_channels)


def tests_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The scheduler of diffusers' LTX tests (the defaults: shift 1, no dynamic shifting)."""
    return FlowMatchEulerDiscreteScheduler()


def released_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The scheduler LTX-Video 0.9.x ships with (its scheduler_config.json): resolution-dependent
    exponential shifting (mu from the token count) stretched to end at sigma 0.1."""
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
        base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1, time_shift_type="exponential",
    )  # fmt: skip


def _vae(timestep_conditioning: bool) -> AutoencoderKLLTXVideo:
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=timestep_conditioning, patch_size=1, patch_size_t=1, encoder_causal=True,
        decoder_causal=False,
    )  # fmt: skip
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return vae


def tiny_ltx(
    seed: int = 0,
    scheduler: Any = None,
    dtype: torch.dtype = torch.float32,
    *,
    timestep_conditioning: bool = False,
) -> LTXPipeline:
    """Random weights from `seed`; no tokenizer (pass prompt_embeds and prompt_attention_mask).
    `timestep_conditioning=True` gives the VAE decoder the timestep input of LTX-Video 0.9.1 and later
    (diffusers' tests leave it off)."""
    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4,
        attention_head_dim=8, cross_attention_dim=32, num_layers=1, caption_channels=TEXT_DIM,
    )  # fmt: skip
    torch.manual_seed(seed)
    vae = _vae(timestep_conditioning)
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(vocab_size=32, d_model=TEXT_DIM, d_kv=8, d_ff=37, num_layers=1,
                                           num_heads=4))  # fmt: skip
    pipe = LTXPipeline(scheduler=scheduler if scheduler is not None else tests_scheduler(), vae=vae,
                       text_encoder=text_encoder, tokenizer=None, transformer=transformer)  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)


def prompt_embeds(seed: int, batch: int = 1, length: int = 16, valid: int = 5) -> tuple[Tensor, Tensor]:
    """Random prompt embeddings (B, S, 32) and their attention mask (B, S), the T5 way: the first `valid`
    tokens real (True), the rest padding (False). The diffusers tests use S = max_sequence_length = 16."""
    embeds = torch.randn((batch, length, TEXT_DIM), generator=torch.Generator().manual_seed(seed))
    mask = (torch.arange(length) < valid).unsqueeze(0).expand(batch, -1).clone()
    return embeds, mask
