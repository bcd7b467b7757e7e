"""Decoding a long latent video clip by clip without adding seams: `StreamingDecoder`.

Today's video VAEs are causal 3-D VAEs with temporal compression t: the first latent frame of a video
decodes to one pixel frame, every later one to t frames that depend on the latent frames before it.
Decoding each clip on its own therefore restarts the VAE's causal context at every seam (a visible cut
that no sampling strategy made), while decoding the whole long latent video at once grows memory with its
length. `StreamingDecoder` decodes each new stretch of latent frames together with the last `context`
latent frames before it and keeps only the pixel frames of the new stretch: memory stays flat in the
number of clips, and as `context` grows the result converges to the whole-video decode (equal once the
context covers the VAE's causal receptive field). `benchmarks/stream_decode.py` measures the difference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from samplers.validation import check_int


class StreamingDecoder:
    """`decoder(latents)` -> the pixel frames those latent frames add to the video decoded so far.

    `decode(latents)` maps (B, C, F, h, w) latents to (B, 3, 1 + (F-1) t, H, W) frames; `context` is the
    number of earlier latent frames decoded with each new stretch (at least 1: a stretch decoded on its
    own would start with the single frame of a video's first latent frame, not t frames).
    """

    def __init__(self, decode: Callable[[torch.Tensor], torch.Tensor], temporal: int, context: int) -> None:
        self.decode = decode
        self.temporal = check_int("temporal", temporal, 1)
        self.context = check_int("decode_context", context, 1)
        self.tail: torch.Tensor | None = None  # the last `context` latent frames seen

    def __call__(self, latents: torch.Tensor) -> torch.Tensor:
        if self.tail is None:
            seen, frames = latents, self.decode(latents)
        else:
            k = self.tail.shape[2]
            seen = torch.cat([self.tail, latents], dim=2)
            frames = self.decode(seen)[:, :, 1 + (k - 1) * self.temporal :]
        self.tail = seen[:, :, -self.context :]
        return frames
