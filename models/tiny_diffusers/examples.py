"""One tiny random pipeline per family with the call keywords that run it (conditioning passed as
embeddings, a size its VAE and patch take, 9 pixel frames per clip (13 for Mochi's 6k+1), guidance on):
what the tests and benchmarks drive every family with.

    pipe, kwargs = EXAMPLES["wan"](seed, scheduler=None, dtype=torch.float32)

`scheduler` None keeps the one of diffusers' tests; the conditioning tensors come in `dtype`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch

from . import cogvideox, hunyuan, ltx, mochi, wan

Example = Callable[..., tuple[Any, dict[str, Any]]]


def _in(dtype: torch.dtype, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The floating conditioning tensors in `dtype` (masks keep theirs)."""
    return {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in kwargs.items()}  # fmt: skip


def _plain(module: ModuleType, build: Callable[..., Any], frames: int, size: int, scale: float) -> Example:
    """Families whose conditioning is prompt and negative embeddings (Wan, CogVideoX)."""

    def example(seed: int, scheduler: Any = None, dtype: torch.dtype = torch.float32):
        cond = {"prompt_embeds": module.prompt_embeds(1), "negative_prompt_embeds": module.prompt_embeds(2)}
        call = {**cond, "num_frames": frames, "height": size, "width": size, "guidance_scale": scale}
        return build(seed, scheduler=scheduler, dtype=dtype), _in(dtype, call)

    return example


def _masked(module: ModuleType, build: Callable[..., Any], frames: int, size: int, scale: float) -> Example:
    """Families whose embeddings come with attention masks (LTX-Video, Mochi)."""

    def example(seed: int, scheduler: Any = None, dtype: torch.dtype = torch.float32):
        (pe, pm), (ne, nm) = module.prompt_embeds(1), module.prompt_embeds(2)
        call = {"prompt_embeds": pe, "prompt_attention_mask": pm, "negative_prompt_embeds": ne,
                "negative_prompt_attention_mask": nm, "num_frames": frames, "height": size, "width": size,
                "guidance_scale": scale}  # fmt: skip
        return build(seed, scheduler=scheduler, dtype=dtype), _in(dtype, call)

    return example


def _hunyuan(seed: int, scheduler: Any = None, dtype: torch.dtype = torch.float32):
    call = {**hunyuan.prompt_embeds(1), **hunyuan.negative_embeds(2), "true_cfg_scale": 3.0, "num_frames": 9,
            "height": 16, "width": 16, "guidance_scale": 6.0}  # fmt: skip
    return hunyuan.tiny_hunyuan(seed, scheduler=scheduler, dtype=dtype), _in(dtype, call)


EXAMPLES: dict[str, Example] = {
    "wan": _plain(wan, wan.tiny_wan, 9, 16, 5.0),
    "cogvideox": _plain(cogvideox, cogvideox.tiny_cogvideox, 9, 16, 6.0),
    "ltx": _masked(ltx, ltx.tiny_ltx, 9, 32, 3.0),
    "hunyuan": _hunyuan,
    "mochi": _masked(mochi, mochi.tiny_mochi, 13, 16, 4.5),
}
MODULES: dict[str, ModuleType] = {"wan": wan, "cogvideox": cogvideox, "ltx": ltx, "hunyuan": hunyuan,
                                  "mochi": mochi}  # fmt: skip
