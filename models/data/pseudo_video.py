"""Pseudo-videos from still images by a random, smooth zoom and pan (the paper's Figure 4, docs/DESIGN.md §7).

    zoom_pan = ZoomPan(num_frames=8, zoom=(1.0, 1.3), pan=(-0.15, 0.15))
    video = zoom_pan(image, torch.Generator().manual_seed(0))  # (C, H, W) -> (C, F, H, W)

Frame 0 always shows the whole image (zoom 1, no pan); over the clip the zoom factor moves linearly to an
end zoom drawn uniformly from `zoom`, and the view centre moves linearly by a total pan drawn uniformly
from `pan` (a fraction of the side, independently for x and y). A pan is a camera move: a positive x pan
moves the view right, so the content moves left in the frame; a positive y pan moves the view down, so
the content moves up. Frames are resampled with `affine_grid` + bilinear `grid_sample` (in float64, so
that the identity is exact to rounding); where the view leaves the image the edge pixels are repeated
(padding_mode="border") unless `keep_inside` clamps the view centre so that the view stays inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from samplers.validation import check_generator, check_int, check_range

__all__ = ["ZoomPan"]


@dataclass(frozen=True)
class ZoomPan:
    num_frames: int = 8  # F, frames of the pseudo-video
    zoom: tuple[float, float] = (1.0, 1.3)  # uniform range of the end zoom factor (frame 0 has zoom 1)
    pan: tuple[float, float] = (-0.15, 0.15)  # uniform range of the total pan per axis, fraction of the side
    keep_inside: bool = False  # clamp the view centre so that the view never leaves the image

    def __post_init__(self) -> None:
        check_int("num_frames", self.num_frames, 1)
        check_range("zoom", self.zoom, 1e-3, 1e3)
        check_range("pan", self.pan, -10.0, 10.0)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(end zoom (B,), total pan (B, 2) as (x, y) fractions of the side), drawn only from `generator`."""
        check_generator(generator)
        u = torch.rand(batch, 3, generator=generator, dtype=torch.float64)
        zoom = self.zoom[0] + (self.zoom[1] - self.zoom[0]) * u[:, 0]
        pan = self.pan[0] + (self.pan[1] - self.pan[0]) * u[:, 1:]
        return zoom, pan

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(C, H, W) -> (C, F, H, W), or (B, C, H, W) -> (B, C, F, H, W) with independent draws per item."""
        if image.ndim not in (3, 4) or not image.is_floating_point():
            raise ValueError(
                f"image must be a float (C, H, W) or (B, C, H, W) tensor; got {image.dtype} "
                f"{tuple(image.shape)}"
            )
        batch = image if image.ndim == 4 else image[None]
        zoom, pan = self.sample(batch.shape[0], generator)
        video = self.apply(batch, zoom, pan)
        return video if image.ndim == 4 else video[0]

    def apply(self, images: torch.Tensor, zoom: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        """Deterministic: (B, C, H, W) with end zoom (B,) and total pan (B, 2) -> (B, C, F, H, W)."""
        frames = repeat(images.to(torch.float64), "b c h w -> (b f) c h w", f=self.num_frames)
        grid = F.affine_grid(
            self.thetas(zoom, pan).to(frames.device), list(frames.shape), align_corners=False
        )
        warped = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return rearrange(warped, "(b f) c h w -> b c f h w", f=self.num_frames).to(images.dtype)

    def thetas(self, zoom: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        """The (B * F, 2, 3) affine maps from output to input coordinates (normalised to [-1, 1])."""
        t = torch.linspace(0.0, 1.0, self.num_frames, dtype=torch.float64)  # [0.] when F = 1
        scale = 1.0 / (1.0 + (zoom.to(torch.float64)[:, None] - 1.0) * t)  # (B, F): the view's half-size
        centre = 2.0 * pan.to(torch.float64)[:, None, :] * t[None, :, None]  # (B, F, 2), normalised units
        if self.keep_inside:
            room = (1.0 - scale).clamp(min=0.0)[..., None]
            centre = torch.maximum(torch.minimum(centre, room), -room)
        theta = torch.zeros(*scale.shape, 2, 3, dtype=torch.float64)
        theta[..., 0, 0] = scale
        theta[..., 1, 1] = scale
        theta[..., :, 2] = centre
        return rearrange(theta, "b f i j -> (b f) i j")
