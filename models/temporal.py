"""Temporal layers that inflate a 2-D (image) network into a video network (docs/DESIGN.md §6).

The 2-D network runs on frames folded into the batch, `(b f) c h w`. A temporal layer is attached to a
2-D block with a forward hook: it unfolds the block's output to `b c f h w`, mixes along f, and adds the
result as a residual. Its output projection starts at zero, so an inflated network equals the image
network applied frame by frame until the temporal layers are trained.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

RESNET_BLOCKS = ("ResnetBlock2D",)  # the diffusers blocks a Temp-Conv follows (UNet and VAE decoder alike)


def group_count(channels: int, preferred: int = 32) -> int:
    """The largest number of GroupNorm groups <= preferred that divides `channels`."""
    return max(g for g in range(1, min(preferred, channels) + 1) if channels % g == 0)


class TemporalConv(nn.Module):
    """Temp-Conv: GroupNorm, SiLU, then a (3, 1, 1) convolution over frames, zero-initialised."""

    def __init__(self, channels: int, kernel_frames: int = 3) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(group_count(channels), channels)
        self.conv = nn.Conv3d(channels, channels, (kernel_frames, 1, 1), padding=(kernel_frames // 2, 0, 0))
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        # Normalise each frame on its own (folded layout), so that only the convolution mixes frames.
        video = rearrange(nn.functional.silu(self.norm(x)), "(b f) c h w -> b c f h w", f=num_frames)
        # contiguous: torch 2.13's CPU Conv3d backward crashed (segfault) on this strided view.
        return x + rearrange(self.conv(video.contiguous()), "b c f h w -> (b f) c h w")


def frame_position_embedding(num_frames: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """Sinusoidal embedding of frame indices 0..F-1: (F, dim), sin on the first half, cos on the second."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / max(half, 1))
    angles = torch.arange(num_frames, dtype=torch.float64)[:, None] * freqs[None, :]
    emb = torch.cat(
        [angles.sin(), angles.cos(), torch.zeros(num_frames, dim - 2 * half, dtype=torch.float64)], 1
    )
    return emb.to(device=device, dtype=dtype)


def head_count(channels: int, heads: int) -> int:
    """The largest number of heads <= `heads` that divides `channels`."""
    return max(h for h in range(1, min(heads, channels) + 1) if channels % h == 0)


def zero_linear(channels: int) -> nn.Linear:
    """An output projection that starts at zero, so the layer it ends starts as the identity."""
    layer = nn.Linear(channels, channels)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class TemporalAttention(nn.Module):
    """Temp-Attn: self-attention along frames at each spatial position; output projection zero-initialised."""

    def __init__(self, channels: int, heads: int = 8) -> None:
        super().__init__()
        self.heads = head_count(channels, heads)
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels, bias=False)
        self.out = zero_linear(channels)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        _, c, h, w = x.shape
        tokens = rearrange(x, "(b f) c h w -> (b h w) f c", f=num_frames)
        tokens = tokens + frame_position_embedding(num_frames, c, tokens.device, tokens.dtype)
        q, k, v = rearrange(
            self.qkv(self.norm(tokens)), "n f (three m d) -> three n m f d", three=3, m=self.heads
        )
        attended = nn.functional.scaled_dot_product_attention(q, k, v)
        out = self.out(rearrange(attended, "n m f d -> n f (m d)"))
        return x + rearrange(out, "(b h w) f c -> (b f) c h w", h=h, w=w)


class TemporalTextAttention(nn.Module):
    """Optional, beyond the paper: a trainable cross-attention from every frame's features to the caption,
    zero-initialised on its output, so that temporal training can read what the caption says about motion
    when the image model's own (frozen) cross-attention does not carry it. `context` is the caption
    embedding folded like the frames, `(b f) s d`."""

    def __init__(self, channels: int, context_dim: int, heads: int = 8):
        super().__init__()
        self.heads = head_count(channels, heads)
        self.norm = nn.LayerNorm(channels)
        self.q = nn.Linear(channels, channels, bias=False)
        self.kv = nn.Linear(context_dim, 2 * channels, bias=False)
        self.out = zero_linear(channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        tokens = rearrange(x, "n c h w -> n (h w) c")
        q = rearrange(self.q(self.norm(tokens)), "n t (m d) -> n m t d", m=self.heads)
        k, v = rearrange(self.kv(context), "n s (two m d) -> two n m s d", two=2, m=self.heads)
        attended = rearrange(nn.functional.scaled_dot_product_attention(q, k, v), "n m t d -> n t (m d)")
        return x + rearrange(self.out(attended), "n (h w) c -> n c h w", h=h, w=w)


def _replace_first(output, new: torch.Tensor):
    """Put `new` where a block's main output was: a tensor, a tuple's first item, or `.sample`."""
    if isinstance(output, torch.Tensor):
        return new
    if isinstance(output, tuple):
        return (new, *output[1:])
    output.sample = new
    return output


def _first(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    return output[0] if isinstance(output, tuple) else output.sample


@dataclass(eq=False)
class TemporalHook:
    """The forward hook that runs `layer` on its host block's output, with the owning video model's
    current inputs. An object rather than a closure: `copy.deepcopy` of the owner copies the hook with it
    and rebinds `layer` and `owner` to the copies (a closure would keep calling the original's layers)."""

    layer: nn.Module
    owner: nn.Module = field(repr=False)  # the video model; its attributes named below are read per call
    switch: str  # the owner's bool attribute that enables the layer (e.g. "use_temporal_conv")
    inputs: tuple[str, ...]  # the owner's attributes passed after the block output (e.g. "_num_frames")

    def __call__(self, module: nn.Module, args, output):
        if not getattr(self.owner, self.switch):
            return output
        extra = (getattr(self.owner, name) for name in self.inputs)
        return _replace_first(output, self.layer(_first(output), *extra))


def output_channels(block: nn.Module) -> int:
    """Channels of a diffusers ResnetBlock2D / Transformer2DModel's output."""
    for name in ("out_channels", "in_channels"):
        value = getattr(block, name, None)
        if isinstance(value, int):
            return value
    config = getattr(block, "config", None)
    if config is not None and getattr(config, "in_channels", None):
        return config.in_channels
    raise ValueError(f"cannot tell the output channels of {type(block).__name__}")


def find_blocks(root: nn.Module, type_names: Iterable[str]) -> list[tuple[str, nn.Module]]:
    """(dotted name, module) of every submodule whose class name is in `type_names`, in module order."""
    wanted = set(type_names)
    return [(name, m) for name, m in root.named_modules() if type(m).__name__ in wanted]


def inflate(
    root: nn.Module,
    type_names: Iterable[str],
    make_layer: Callable[[int], nn.Module],
    layers: nn.ModuleDict,
    owner: nn.Module,
    switch: str,
    inputs: tuple[str, ...] = ("_num_frames",),
) -> None:
    """Attach `make_layer(channels)` after every block of `root` of the given types (a `TemporalHook`
    reading `owner`'s `switch` and `inputs`); the new layers are registered in `layers` under the block's
    dotted path with '.' -> '__'."""
    for name, block in find_blocks(root, type_names):
        layer = layers[name.replace(".", "__")] = make_layer(output_channels(block))
        block.register_forward_hook(TemporalHook(layer, owner, switch, inputs))
