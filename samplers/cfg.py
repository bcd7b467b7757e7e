"""Classifier-free guidance as a denoiser wrapper: one batched call for uncond + cond.

`ClassifierFreeGuidance(denoiser, scale)` is itself a `VideoDenoiser`; pass the conditioning to the
sampler as `cond={...}` and `uncond={...}` (keyword arguments of the wrapped denoiser, e.g.
`encoder_hidden_states`). Every tensor in them is stacked uncond-first along the batch axis and the two
halves of the output are combined as `uncond + scale * (cond - uncond)`, which is linear and so valid
for every prediction type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange

from .protocols import takes_frame_timesteps
from .validation import check_real


@dataclass(frozen=True)
class ClassifierFreeGuidance:
    denoiser: Callable[..., torch.Tensor]  # the conditional VideoDenoiser
    scale: float = 10.0  # 1 = conditional only; the official VidRD config uses 10

    def __post_init__(self) -> None:
        check_real("scale", self.scale, 0.0)

    @property
    def frame_timesteps(self) -> bool:
        """One timestep per frame where the wrapped denoiser takes them (samplers.protocols)."""
        return takes_frame_timesteps(self.denoiser)

    def __call__(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        *,
        cond: dict[str, Any],
        uncond: dict[str, Any],
        **shared: Any,
    ) -> torch.Tensor:
        if set(cond) != set(uncond):
            raise ValueError(
                f"cond and uncond must have the same keys; got {sorted(cond)} and {sorted(uncond)}"
            )
        batch = {k: _stack(uncond[k], cond[k]) for k in cond}
        both = torch.cat([latents, latents], dim=0)  # (2B, C, F, H, W): uncond half first
        timestep = _doubled(timestep, latents.shape[0], latents.shape[2])
        out_uncond, out_cond = rearrange(
            self.denoiser(both, timestep, **batch, **shared), "(two b) c f h w -> two b c f h w", two=2
        )
        return out_uncond + self.scale * (out_cond - out_uncond)


def _doubled(timestep: Any, batch: int, frames: int) -> Any:
    """The timestep for the doubled batch [uncond, cond]: one number as is; (B,) one per video, repeated;
    (F,), (1, F) or (B, F) one per frame, as (2B, F), so that no backbone reads it as one per video."""
    if not isinstance(timestep, torch.Tensor) or timestep.numel() == 1:
        return timestep
    if timestep.shape == (batch,):
        return torch.cat([timestep, timestep])
    per_video = timestep.reshape(-1, frames).expand(batch, frames)
    return torch.cat([per_video, per_video], dim=0)


def _stack(negative: Any, positive: Any) -> Any:
    """Tensors are concatenated along the batch axis; anything else must be equal and passes through."""
    if isinstance(positive, torch.Tensor):
        return torch.cat([negative, positive], dim=0)
    if negative != positive:
        raise ValueError(
            f"non-tensor conditioning must match between cond and uncond; got {negative!r} and {positive!r}"
        )
    return positive
