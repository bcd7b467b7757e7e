"""A tiny random HunyuanVideoPipeline (the sizes of diffusers' own HunyuanVideo tests), built offline.

The Llama and CLIP text encoders are built from configs in code with random weights; there are no
tokenizers, so pass `prompt_embeds` (B, S, 16), `pooled_prompt_embeds` (B, 8) and
`prompt_attention_mask` (B, S), as `prompt_embeds()` makes them.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AutoencoderKLHunyuanVideo,
    FlowMatchEulerDiscreteScheduler,
    HunyuanVideoPipeline,
    HunyuanVideoTransformer3DModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

TEXT_DIM = 16  # the width of the (Llama) prompt embeddings the tiny transformer takes
POOLED_DIM = 8  # the width of the (CLIP) pooled prompt embeddings


def tests_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The scheduler of diffusers' HunyuanVideo tests."""
    return FlowMatchEulerDiscreteScheduler(shift=7.0)


def released_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The scheduler the released HunyuanVideo checkpoint ships with (flow matching, shift 7, 1000 train
    timesteps, no dynamic shifting): the same configuration as the tests' scheduler."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=7.0, use_dynamic_shifting=False)


def _transformer() -> HunyuanVideoTransformer3DModel:
    return HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=TEXT_DIM, pooled_projection_dim=POOLED_DIM, rope_axes_dim=(2, 4, 4),
    )  # fmt: skip


def _vae() -> AutoencoderKLHunyuanVideo:
    return AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
        temporal_compression_ratio=4, mid_block_add_attention=True,
    )  # fmt: skip


def _text_encoders() -> tuple[LlamaModel, CLIPTextModel]:
    shared = {"bos_token_id": 0, "eos_token_id": 2, "intermediate_size": 37, "layer_norm_eps": 1e-5,
              "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 1, "vocab_size": 1000,
              "hidden_act": "gelu", "projection_dim": 32}  # fmt: skip
    torch.manual_seed(0)
    llama = LlamaModel(LlamaConfig(hidden_size=TEXT_DIM, **shared))
    torch.manual_seed(0)
    clip = CLIPTextModel(CLIPTextConfig(hidden_size=POOLED_DIM, **shared))
    return llama, clip


def tiny_hunyuan(
    seed: int = 0, scheduler: Any = None, dtype: torch.dtype = torch.float32
) -> HunyuanVideoPipeline:
    """Random weights from `seed`; no tokenizers (pass prompt embeddings, pooled embeddings and mask)."""
    torch.manual_seed(seed)
    transformer = _transformer()
    torch.manual_seed(seed)
    vae = _vae()
    text_encoder, text_encoder_2 = _text_encoders()
    pipe = HunyuanVideoPipeline(
        text_encoder=text_encoder, tokenizer=None, transformer=transformer, vae=vae,
        scheduler=scheduler if scheduler is not None else tests_scheduler(), text_encoder_2=text_encoder_2,
        tokenizer_2=None,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)


def prompt_embeds(
    seed: int, batch: int = 1, length: int = 8, valid: int | None = None
) -> dict[str, torch.Tensor]:
    """Random conditioning for the tiny transformer: prompt_embeds (B, S, 16), pooled_prompt_embeds (B, 8)
    and prompt_attention_mask (B, S) with the first `valid` tokens (default all) attended."""
    generator = torch.Generator().manual_seed(seed)
    embeds = torch.randn((batch, length, TEXT_DIM), generator=generator)
    pooled = torch.randn((batch, POOLED_DIM), generator=generator)
    mask = torch.zeros((batch, length), dtype=torch.long)
    mask[:, : length if valid is None else valid] = 1
    return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled, "prompt_attention_mask": mask}


def negative_embeds(
    seed: int, batch: int = 1, length: int = 8, valid: int | None = None
) -> dict[str, torch.Tensor]:
    """`prompt_embeds(...)` under the pipeline's negative_* keyword names."""
    return {f"negative_{k}": v for k, v in prompt_embeds(seed, batch, length, valid).items()}
