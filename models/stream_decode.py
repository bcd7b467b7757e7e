"""Decoding a long latent video clip by clip without adding seams: `StreamingDecoder`.

Today's video VAEs compress time by t: the first latent frame of a video decodes to one pixel frame,
every later one to t frames. Their decoders look at neighbouring latent frames: a causal decoder at
earlier ones only, a non-causal one (LTX-Video's) at later ones too. Decoding each clip on its own
therefore restarts that context at every seam (a visible cut no sampling strategy made), while decoding
the whole long latent video at once grows memory with its length.

`StreamingDecoder` decodes each stretch of latent frames together with the `context` latent frames
before it and, for a non-causal decoder, the `lookahead` frames after it (held back until the next clip
brings them; `flush` decodes what is left at the end), and keeps only the pixel frames of the stretch.
Memory stays flat in the number of clips, and the result converges to the whole-video decode as the
context grows (equal once it covers the decoder's receptive field). `benchmarks/stream_decode.py`
measures the difference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from samplers.validation import check_int


def pixel_range(before: int, count: int, temporal: int) -> tuple[int, int]:
    """The pixel frames of latent frames before..before+count-1 of a decoded stretch: latent frame 0
    decodes to pixel frame 0, latent frame k >= 1 to frames 1 + (k-1) t .. k t."""
    start = 0 if before == 0 else 1 + (before - 1) * temporal
    return start, 1 + (before + count - 1) * temporal


class StreamingDecoder:
    """`decoder(latents)` -> the pixel frames those latent frames add to the video decoded so far (fewer
    while `lookahead` frames are held back); `decoder.flush()` -> the held-back frames' pixels at the end.

    `decode(latents)` maps (B, C, F, h, w) latents to (B, 3, 1 + (F-1) t, H, W) frames.
    """

    def __init__(self, decode: Callable[[torch.Tensor], torch.Tensor], temporal: int, context: int,
                 lookahead: int = 0) -> None:  # fmt: skip
        self.decode = decode
        self.temporal = check_int("temporal", temporal, 1)
        # at least 1: a stretch decoded alone starts with the single pixel frame of a video's first frame
        self.context = check_int("decode_context", context, 1)
        self.lookahead = check_int("lookahead", lookahead, 0)
        self.history: torch.Tensor | None = None  # up to `context` latent frames already emitted
        self.pending: torch.Tensor | None = None  # latent frames received, not yet emitted

    def __call__(self, latents: torch.Tensor) -> torch.Tensor | None:
        self.pending = latents if self.pending is None else torch.cat([self.pending, latents], dim=2)
        ready = self.pending.shape[2] - self.lookahead
        return self._emit(ready) if ready > 0 else None

    def flush(self) -> torch.Tensor | None:
        """The pixel frames of the held-back latent frames (None if there are none)."""
        if self.pending is None or self.pending.shape[2] == 0:
            return None
        return self._emit(self.pending.shape[2])

    def _emit(self, count: int) -> torch.Tensor:
        pending = self.pending
        history = self.history if self.history is not None else pending[:, :, :0]
        before = history.shape[2]
        start, stop = pixel_range(before, count, self.temporal)
        frames = self.decode(torch.cat([history, pending], dim=2))[:, :, start:stop]
        emitted = torch.cat([history, pending[:, :, :count]], dim=2)
        self.history = emitted[:, :, -self.context :]
        self.pending = pending[:, :, count:]
        return frames
