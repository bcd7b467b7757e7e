"""TemporalVAE: a diffusers `AutoencoderKL` whose decoder mixes frames with Temp-Conv layers
(docs/DESIGN.md §6).

Frames are encoded one by one (folded into the batch). The decoder also runs frame by frame, but a
zero-initialised `TemporalConv` follows every ResNet block of `vae.decoder` (attached with forward hooks,
so the AutoencoderKL's code and parameter names stay exactly diffusers'). At initialisation the model
therefore equals the image VAE applied per frame; only the temporal layers are trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from diffusers import AutoencoderKL
from diffusers.configuration_utils import ConfigMixin, register_to_config
from einops import rearrange
from torch import nn

from .loading import LocalModelMixin, json_native, public_config
from .seeding import seeded
from .temporal import RESNET_BLOCKS, TemporalConv, inflate


class TemporalVAE(LocalModelMixin, ConfigMixin):
    nested_configs: ClassVar[dict[str, type]] = {"vae_config": AutoencoderKL}  # checked when loading

    @register_to_config
    def __init__(
        self,
        vae_config: dict[str, Any] | None = None,  # the AutoencoderKL config
        temporal_conv: bool = True,  # build a Temp-Conv after every ResNet block of the decoder
        seed: int = 0,  # initialises the temporal layers (and the VAE before weights are loaded)
    ) -> None:
        super().__init__()
        vae_config = json_native(vae_config or {})
        self.register_to_config(vae_config=vae_config)
        with seeded(seed):  # deterministic, and the caller's global RNG is left alone
            self._build(vae_config, temporal_conv)

    def _build(self, vae_config: dict[str, Any], temporal_conv: bool) -> None:
        self.vae = AutoencoderKL.from_config(vae_config)
        self.temporal_convs = nn.ModuleDict()
        self.use_temporal_conv = temporal_conv  # runtime switch; False decodes frame by frame
        self._num_frames = 1
        if temporal_conv:
            convs, switch = self.temporal_convs, "use_temporal_conv"
            inflate(self.vae.decoder, RESNET_BLOCKS, TemporalConv, convs, self, switch)

    @classmethod
    def from_vae(cls, vae: AutoencoderKL, **temporal: Any) -> TemporalVAE:
        """Inflate `vae` (weights, dtype, device and train mode copied); `temporal`: `__init__` switches."""
        model = cls(vae_config=public_config(vae), **temporal)
        model.vae.load_state_dict(vae.state_dict())
        model.train(vae.training)
        if model.dtype != vae.dtype or model.device != vae.device:
            model = model.to(device=vae.device, dtype=vae.dtype)
        return model

    def _scale(self) -> tuple[float, float]:
        shift = self.vae.config.shift_factor
        return self.vae.config.scaling_factor, 0.0 if shift is None else shift

    def encode(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """frames (B, 3, F, H, W) in [-1, 1] -> scaled latents (B, C, F, h, w), frame by frame.

        The posterior mean by default; a sample from the posterior when `generator` is given.
        """
        num_frames = frames.shape[2]
        posterior = self.vae.encode(rearrange(frames, "b c f h w -> (b f) c h w").contiguous()).latent_dist
        latents = posterior.mode() if generator is None else posterior.sample(generator=generator)
        scale, shift = self._scale()
        return rearrange((latents - shift) * scale, "(b f) c h w -> b c f h w", f=num_frames)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, C, F, h, w) -> frames (B, 3, F, H, W), the Temp-Convs mixing frames."""
        num_frames = latents.shape[2]
        scale, shift = self._scale()
        folded = rearrange(latents / scale + shift, "b c f h w -> (b f) c h w").contiguous()  # see VidRDUNet
        self._num_frames = num_frames
        if self.vae.use_slicing:
            # diffusers' slicing would split the batch into single frames; slice by whole videos instead.
            self.vae.use_slicing = False
            try:
                out = torch.cat([self.vae.decode(video).sample for video in folded.split(num_frames)])
            finally:
                self.vae.use_slicing = True
        else:
            out = self.vae.decode(folded).sample
        return rearrange(out, "(b f) c h w -> b c f h w", f=num_frames)

    def forward(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reconstruction: decode(encode(frames)), (B, 3, F, H, W) -> (B, 3, F, H, W)."""
        return self.decode(self.encode(frames, generator=generator))

    def spatial_parameters(self) -> Iterator[nn.Parameter]:
        """The image VAE's parameters (frozen in VidRD training)."""
        return self.vae.parameters()

    def temporal_parameters(self) -> Iterator[nn.Parameter]:
        """The decoder's Temp-Conv parameters (the only ones VidRD trains)."""
        return self.temporal_convs.parameters()

    def freeze_spatial(self) -> TemporalVAE:
        self.vae.requires_grad_(False)
        return self
