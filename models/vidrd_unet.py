"""VidRDUNet: a Stable-Diffusion-layout UNet inflated to video with Temp-Conv and Temp-Attn
(docs/DESIGN.md §6).

Every 2-D layer of the wrapped `UNet2DConditionModel` runs frame by frame (frames folded into the batch);
a `TemporalConv` follows every ResNet block and a `TemporalAttention` every spatial transformer block,
attached with forward hooks, so the 2-D UNet's code and parameter names stay exactly diffusers'. The
temporal layers start as the identity; spatial weights are frozen by `freeze_spatial()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from diffusers import UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from einops import rearrange, repeat
from torch import nn

from .loading import LocalModelMixin, json_native, public_config
from .seeding import seeded
from .temporal import RESNET_BLOCKS, TemporalAttention, TemporalConv, TemporalTextAttention, inflate

TRANSFORMER_BLOCKS = ("Transformer2DModel",)


class VidRDUNet(LocalModelMixin, ConfigMixin):
    _supports_gradient_checkpointing = True
    nested_configs: ClassVar[dict[str, type]] = {"unet_config": UNet2DConditionModel}  # checked when loading

    @register_to_config
    def __init__(
        self,
        unet_config: dict[str, Any] | None = None,  # the UNet2DConditionModel config (SD layout)
        temporal_conv: bool = True,  # build a Temp-Conv after every ResNet block
        temporal_attention: bool = True,  # build a Temp-Attn after every spatial transformer block
        attention_heads: int = 8,  # heads of each Temp-Attn (reduced to a divisor of its channels)
        seed: int = 0,  # initialises the temporal layers (and the 2-D UNet before weights are loaded)
        temporal_text_attention: bool = False,  # beyond the paper: caption cross-attention before Temp-Attn
    ) -> None:
        super().__init__()
        unet_config = json_native(unet_config or {})
        self.register_to_config(unet_config=unet_config)
        with seeded(seed):  # deterministic, and the caller's global RNG is left alone
            self._build(
                unet_config, temporal_conv, temporal_attention, attention_heads, temporal_text_attention
            )

    def _build(self, unet_config, temporal_conv, temporal_attention, attention_heads, text_attention) -> None:
        self.unet = UNet2DConditionModel.from_config(unet_config)
        self.temporal_convs = nn.ModuleDict()
        self.temporal_attentions = nn.ModuleDict()
        self.temporal_text_attentions = nn.ModuleDict()  # empty unless temporal_text_attention
        self._context: torch.Tensor | None = None  # the folded caption embedding of the current call
        self.use_temporal_conv = temporal_conv  # runtime switches; False runs the image model per frame
        self.use_temporal_attention = temporal_attention
        self.use_temporal_text_attention = text_attention
        self._num_frames = 1
        if temporal_conv:
            inflate(self.unet, RESNET_BLOCKS, TemporalConv, self.temporal_convs, self, "use_temporal_conv")
        if text_attention:  # registered first, so it runs before the Temp-Attn of the same block
            dim = unet_config["cross_attention_dim"]
            make_text = lambda c: TemporalTextAttention(c, dim, attention_heads)  # noqa: E731
            inflate(self.unet, TRANSFORMER_BLOCKS, make_text, self.temporal_text_attentions, self,
                    "use_temporal_text_attention", inputs=("_context",))  # fmt: skip
        if temporal_attention:
            make = lambda channels: TemporalAttention(channels, attention_heads)  # noqa: E731
            inflate(self.unet, TRANSFORMER_BLOCKS, make, self.temporal_attentions, self,
                    "use_temporal_attention")  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the last call's caption embedding behind (it may carry a graph, which
        `copy.deepcopy` refuses)."""
        return {**super().__getstate__(), "_context": None}

    @classmethod
    def from_unet2d(cls, unet: UNet2DConditionModel, **temporal: Any) -> VidRDUNet:
        """Inflate `unet` (weights copied exactly); `temporal` are the switches of `__init__`."""
        model = cls(unet_config=public_config(unet), **temporal)
        model.unet.load_state_dict(unet.state_dict())
        if (unet.device, unet.dtype) != (model.device, model.dtype):
            model = model.to(device=unet.device, dtype=unet.dtype)
        return model

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor,
        **unet_kwargs: Any,
    ) -> torch.Tensor:
        """sample (B, C, F, H, W), encoder_hidden_states (B, S, D) -> model output (B, C, F, H, W). The
        timestep is one number, one per video (B,), or one per frame (B, F): frames fold into the batch of
        the 2-D layers, each with its own time embedding (the temporal layers take none)."""
        batch, _, num_frames = sample.shape[:3]
        timestep = torch.as_tensor(timestep, device=sample.device)
        if timestep.ndim == 2:
            timestep = rearrange(timestep.expand(batch, num_frames), "b f -> (b f)")
        else:
            timestep = repeat(timestep.reshape(-1).expand(batch), "b -> (b f)", f=num_frames)
        context = repeat(encoder_hidden_states, "b s d -> (b f) s d", f=num_frames)
        self._num_frames, self._context = num_frames, context
        # contiguous: torch 2.13's CPU convolution backward crashed (segfault) on the strided fold of
        # a non-contiguous video, e.g. latents straight from TemporalVAE.encode.
        out = self.unet(
            rearrange(sample, "b c f h w -> (b f) c h w").contiguous(),
            timestep,
            context,
            return_dict=False,
            **unet_kwargs,
        )[0]
        return rearrange(out, "(b f) c h w -> b c f h w", f=num_frames)

    def spatial_parameters(self) -> Iterator[nn.Parameter]:
        """The image UNet's parameters (frozen in VidRD training)."""
        return self.unet.parameters()

    def temporal_parameters(self) -> Iterator[nn.Parameter]:
        """The Temp-Conv and Temp-Attn parameters (the only ones VidRD trains)."""
        yield from self.temporal_convs.parameters()
        yield from self.temporal_attentions.parameters()
        yield from self.temporal_text_attentions.parameters()

    def freeze_spatial(self) -> VidRDUNet:
        self.unet.requires_grad_(False)
        return self
