"""A tiny random WanPipeline (the sizes of diffusers' own Wan tests), built offline from configs."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from transformers import T5Config, T5EncoderModel

TEXT_DIM = 32  # the width of the prompt embeddings the tiny transformer takes


def tests_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The scheduler of diffusers' Wan tests."""
    return FlowMatchEulerDiscreteScheduler(shift=7.0)


def released_scheduler() -> UniPCMultistepScheduler:
    """The scheduler Wan 2.1 T2V ships with (its scheduler_config.json, 480p flow_shift 3)."""
    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, num_train_timesteps=1000,
        solver_order=2, solver_type="bh2", predict_x0=True, lower_order_final=True,
        timestep_spacing="linspace",
    )  # fmt: skip


def tiny_wan(seed: int = 0, scheduler: Any = None, dtype: torch.dtype = torch.float32) -> WanPipeline:
    """Random weights from `seed`; no tokenizer (pass prompt_embeds (B, S, 32))."""
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])  # fmt: skip
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(vocab_size=32, d_model=TEXT_DIM, d_kv=8, d_ff=37, num_layers=1,
                                           num_heads=4))  # fmt: skip
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )  # fmt: skip
    pipe = WanPipeline(tokenizer=None, text_encoder=text_encoder, transformer=transformer, vae=vae,
                       scheduler=scheduler if scheduler is not None else tests_scheduler())  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)


def prompt_embeds(seed: int, batch: int = 1, length: int = 8) -> torch.Tensor:
    """Random prompt embeddings (B, S, 32) for the tiny transformer."""
    return torch.randn((batch, length, TEXT_DIM), generator=torch.Generator().manual_seed(seed))
