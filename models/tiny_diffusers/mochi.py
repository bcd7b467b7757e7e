"""A tiny random MochiPipeline (the component sizes of diffusers' own Mochi tests), built offline.

The text encoder is a one-layer T5 made from a `T5Config` in code (diffusers' tests load a tiny checkpoint
instead); there is no tokenizer, so prompts go in as embeddings with their attention masks.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AutoencoderKLMochi,
    FlowMatchEulerDiscreteScheduler,
    MochiPipeline,
    MochiTransformer3DModel,
)
from transformers import T5Config, T5EncoderModel

TEXT_DIM = 32  # the width of the prompt embeddings the tiny transformer takes
TEXT_LENGTH = 16  # the tests' max_sequence_length


def tests_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The scheduler of diffusers' Mochi tests (the default FlowMatchEuler: sigmas not inverted)."""
    return FlowMatchEulerDiscreteScheduler()


def released_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The scheduler Mochi-1 preview ships with: stored sigmas inverted (0 is pure noise)."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, invert_sigmas=True)


def tiny_mochi(seed: int = 0, scheduler: Any = None, dtype: torch.dtype = torch.float32) -> MochiPipeline:
    """Random weights from `seed`; no tokenizer (pass prompt_embeds (B, S, 32) and their masks)."""
    torch.manual_seed(seed)
    transformer = MochiTransformer3DModel(
        patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2, pooled_projection_dim=16,
        in_channels=12, out_channels=None, qk_norm="rms_norm", text_embed_dim=TEXT_DIM, time_embed_dim=4,
        activation_fn="swiglu", max_sequence_length=TEXT_LENGTH,
    )  # fmt: skip
    with torch.no_grad():  # as the tests set them (their initial value too)
        transformer.pos_frequencies.zero_()
    torch.manual_seed(seed)
    vae = AutoencoderKLMochi(latent_channels=12, out_channels=3, encoder_block_out_channels=(32, 32, 32, 32),
                             decoder_block_out_channels=(32, 32, 32, 32),
                             layers_per_block=(1, 1, 1, 1, 1))  # fmt: skip
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(vocab_size=32, d_model=TEXT_DIM, d_kv=8, d_ff=37, num_layers=1,
                                           num_heads=4))  # fmt: skip
    pipe = MochiPipeline(scheduler=scheduler if scheduler is not None else tests_scheduler(), vae=vae,
                         text_encoder=text_encoder, tokenizer=None, transformer=transformer)  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)


def prompt_embeds(seed: int, batch: int = 1, length: int = TEXT_LENGTH,
                  padding: int = 3) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Random prompt embeddings (B, S, 32) and their boolean attention mask (B, S), the last `padding`
    tokens masked out as a tokenizer pads them."""
    embeds = torch.randn((batch, length, TEXT_DIM), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones((batch, length), dtype=torch.bool)
    mask[:, length - padding :] = False
    return embeds, mask
