"""One tiny random pipeline per family with the call keywords that run it (conditioning passed as
embeddings, a size its VAE and patch take, 9 pixel frames per clip, 3 steps, guidance on): what the
benchmarks drive every family with (`EXAMPLES[name](seed)` -> (pipeline, keywords)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import cogvideox, hunyuan, ltx, mochi, wan


def _wan(seed: int) -> tuple[Any, dict[str, Any]]:
    cond = {"prompt_embeds": wan.prompt_embeds(1), "negative_prompt_embeds": wan.prompt_embeds(2)}
    return wan.tiny_wan(seed), {**cond, "num_frames": 9, "height": 16, "width": 16, "guidance_scale": 5.0}


def _cogvideox(seed: int) -> tuple[Any, dict[str, Any]]:
    cond = {"prompt_embeds": cogvideox.prompt_embeds(1), "negative_prompt_embeds": cogvideox.prompt_embeds(2)}
    return cogvideox.tiny_cogvideox(seed), {**cond, "num_frames": 9, "height": 16, "width": 16,
                                            "guidance_scale": 6.0}  # fmt: skip


def _ltx(seed: int) -> tuple[Any, dict[str, Any]]:
    (pe, pm), (ne, nm) = ltx.prompt_embeds(1), ltx.prompt_embeds(2)
    cond = {"prompt_embeds": pe, "prompt_attention_mask": pm, "negative_prompt_embeds": ne,
            "negative_prompt_attention_mask": nm}  # fmt: skip
    return ltx.tiny_ltx(seed), {**cond, "num_frames": 9, "height": 32, "width": 32, "guidance_scale": 3.0}


def _hunyuan(seed: int) -> tuple[Any, dict[str, Any]]:
    cond = {**hunyuan.prompt_embeds(1), **hunyuan.negative_embeds(2), "true_cfg_scale": 3.0}
    return hunyuan.tiny_hunyuan(seed), {**cond, "num_frames": 9, "height": 16, "width": 16,
                                        "guidance_scale": 6.0}  # fmt: skip


def _mochi(seed: int) -> tuple[Any, dict[str, Any]]:
    (pe, pm), (ne, nm) = mochi.prompt_embeds(1), mochi.prompt_embeds(2)
    cond = {"prompt_embeds": pe, "prompt_attention_mask": pm, "negative_prompt_embeds": ne,
            "negative_prompt_attention_mask": nm}  # fmt: skip
    return mochi.tiny_mochi(seed), {**cond, "num_frames": 13, "height": 16, "width": 16,
                                    "guidance_scale": 4.5}  # fmt: skip


EXAMPLES: dict[str, Callable[[int], tuple[Any, dict[str, Any]]]] = {
    "wan": _wan, "cogvideox": _cogvideox, "ltx": _ltx, "hunyuan": _hunyuan, "mochi": _mochi,
}  # fmt: skip
