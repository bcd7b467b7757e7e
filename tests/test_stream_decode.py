"""StreamingDecoder and LongVideoPipeline's clip hand-off against a synthetic VAE with a known receptive
field: streamed decoding equals the whole-video decode exactly once the context covers what a frame
looks back at and the lookahead what it looks ahead at, and not before; sinks get whole clips."""

from __future__ import annotations

import pytest
import torch
from einops import repeat

from models import MemorySink
from models.long_pipeline import _ClipFrames
from models.stream_decode import StreamingDecoder, pixel_range


def synthetic_decoder(temporal: int, back: int, ahead: int):
    """Latents (B, C, F, h, w) -> (B, 3, 1 + (F-1) t, h, w): latent frame k decodes to 1 frame (k = 0) or
    t frames, each the sum of latent frames k-back..k+ahead that exist, plus the frame's offset j / 10."""

    def decode(latents: torch.Tensor) -> torch.Tensor:
        frames = []
        for k in range(latents.shape[2]):
            window = latents[:, :1, max(0, k - back) : k + ahead + 1].sum(dim=2)  # (B, 1, h, w)
            for j in range(1 if k == 0 else temporal):
                frames.append(window + j / 10)
        return repeat(torch.stack(frames, dim=2), "b 1 f h w -> b three f h w", three=3)

    return decode


def clips(sizes: list[int]) -> list[torch.Tensor]:
    latents = torch.randn((1, 2, sum(sizes), 1, 1), generator=torch.Generator().manual_seed(0))
    return list(torch.split(latents, sizes, dim=2))


def streamed(decoder: StreamingDecoder, parts: list[torch.Tensor]) -> torch.Tensor:
    out = [decoder(p) for p in parts] + [decoder.flush()]
    return torch.cat([o for o in out if o is not None], dim=2)


@pytest.mark.parametrize("sizes", [[3, 4, 4], [2, 2, 2, 2, 3], [5, 6], [1, 1, 1]])
@pytest.mark.parametrize(("back", "ahead"), [(1, 0), (2, 0), (2, 1), (1, 3)])
def test_streamed_equals_whole_once_context_and_lookahead_cover_the_receptive_field(sizes, back, ahead):
    decode, parts = synthetic_decoder(4, back, ahead), clips(sizes)
    whole = decode(torch.cat(parts, dim=2))
    assert torch.equal(streamed(StreamingDecoder(decode, 4, back, ahead), parts), whole)
    if ahead and sum(sizes) > ahead + 2:  # a shorter lookahead misses what the next clip brings (when the
        # video is long enough for a frame to look past the next clip's first ones)
        assert not torch.equal(streamed(StreamingDecoder(decode, 4, back, ahead - 1), parts), whole)
    if back > 1:  # a context short of it misses what came before
        assert not torch.equal(streamed(StreamingDecoder(decode, 4, back - 1, ahead), parts), whole)


def test_pixel_range():
    assert pixel_range(0, 3, 4) == (0, 9)  # the first latent frame decodes to one pixel frame
    assert pixel_range(3, 3, 4) == (9, 21)
    assert pixel_range(2, 1, 6) == (7, 13)
    assert pixel_range(5, 2, 1) == (5, 7)  # no temporal compression: a latent frame is a frame


def test_sinks_get_whole_clips_even_when_the_decoder_holds_frames_back():
    decode, parts = synthetic_decoder(4, 1, 2), clips([3, 3, 3])
    decoder, sink = StreamingDecoder(decode, 4, 1, lookahead=2), MemorySink()
    hand_off, start = _ClipFrames(4, sink), 0
    for part in parts:
        hand_off.expect(start, part.shape[2])
        hand_off.add(decoder(part))
        start += part.shape[2]
    assert [w.shape[0] for w in sink.clips] == [9, 12]  # clip 2 waits for the flush
    hand_off.add(decoder.flush())
    assert [w.shape[0] for w in sink.clips] == [9, 12, 12]  # 1 + 2*4, then 3*4 frames per clip
