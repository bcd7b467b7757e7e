"""Streaming metrics (benchmarks/streaming.py) against the batch metrics on the concatenated video."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import pixel_metrics
from benchmarks.metrics import mirror_correlation, seam_jump_ratio
from benchmarks.streaming import (
    ContactSheetClips,
    FanOutSink,
    LatentMetrics,
    MirrorCorrelation,
    PixelMetrics,
    SeamJumpRatio,
    latent_metrics,
    sheet_rows,
)
from models.contact_sheet import contact_sheet_array
from models.video_io import MemorySink

RTOL, ATOL = 1e-12, 1e-14  # float64 running sums against one-pass float64 means
DROPPED = [8, 6, 6, 6]  # N = 8, then N - M with M = 2 prompt frames dropped


def latent_clips(lengths, batch=1, seed=0, dtype=torch.float64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 2, n, 2, 3, generator=g, dtype=dtype) for n in lengths]


def starts_of(clips, axis: int) -> list[int]:
    return np.cumsum([0, *(c.shape[axis] for c in clips[:-1])]).tolist()


def feed(stream, clips, axis: int = 2):
    for clip, start in zip(clips, starts_of(clips, axis), strict=True):
        stream.update(clip, start)
    return stream


def outcome(fn):
    """("value", x) or ("error", message): a stream must fail where, and as, the batch function does."""
    try:
        return "value", fn()
    except ValueError as error:
        return "error", str(error)


def assert_same(got, want):
    """Equal structure; floats equal to float rounding (nan == nan)."""
    assert type(got) is type(want) or {type(got), type(want)} <= {int, float}, (got, want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            assert_same(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
    elif isinstance(want, float):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)
    else:
        assert got == want


def array_bytes(obj, seen=None) -> int:
    """Bytes of every numpy array an object holds (through attributes, lists, tuples, dicts)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(array_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return sum(array_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return array_bytes(vars(obj), seen)
    return 0


# ---------------------------------------------------------------- latent metrics


@pytest.mark.parametrize("lengths", [[8, 8], DROPPED, [5, 2, 7, 3], [3, 8, 3], [1, 4, 1, 1, 2]])
@pytest.mark.parametrize("batch", [1, 2])
def test_seam_jump_ratio_equals_the_batch_ratio(lengths, batch):
    clips = latent_clips(lengths, batch)
    got = feed(SeamJumpRatio(), clips).result()
    assert_same(got, seam_jump_ratio(torch.cat(clips, dim=2), starts_of(clips, 2)))


@pytest.mark.parametrize("lengths", [[8, 8], DROPPED, [5, 2, 7, 3], [3, 8, 3], [8, 3, 8], [2, 6, 6]])
@pytest.mark.parametrize(("skip", "max_offset"), [(0, None), (1, None), (2, None), (0, 1), (1, 3), (2, 2)])
def test_mirror_correlation_equals_the_batch_correlation(lengths, skip, max_offset):
    # [8, 3, 8]: seam 8 is limited by the clip after it, seam 11 by the clip before it.
    clips = latent_clips(lengths, batch=2, seed=len(lengths))
    video, starts = torch.cat(clips, dim=2), starts_of(clips, 2)
    got = outcome(lambda: feed(MirrorCorrelation(skip, max_offset), clips).result())
    want = outcome(lambda: mirror_correlation(video, starts, skip=skip, max_offset=max_offset))
    assert got[0] == want[0]
    assert_same(got[1], want[1])


@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    batch=st.integers(1, 2),
    skip=st.integers(0, 4),
    max_offset=st.none() | st.integers(0, 6),
    seed=st.integers(0, 2**16),
)
def test_latent_streams_match_the_batch_functions_or_fail_alike(lengths, batch, skip, max_offset, seed):
    clips = latent_clips(lengths, batch, seed)
    video, starts = torch.cat(clips, dim=2), starts_of(clips, 2)
    if max_offset is not None and max_offset < skip:
        with pytest.raises(ValueError, match="max_offset"):
            MirrorCorrelation(skip, max_offset)
        max_offset = None
    pairs = [
        (lambda: feed(SeamJumpRatio(), clips).result(), lambda: seam_jump_ratio(video, starts)),
        (
            lambda: feed(MirrorCorrelation(skip, max_offset), clips).result(),
            lambda: mirror_correlation(video, starts, skip, max_offset),
        ),
    ]
    for stream, batch_fn in pairs:
        (got_kind, got), (want_kind, want) = outcome(stream), outcome(batch_fn)
        assert got_kind == want_kind
        assert_same(got, want)


def test_one_clip_raises_the_batch_error():
    clips = latent_clips([8])
    for stream, batch_fn in [
        (SeamJumpRatio(), lambda: seam_jump_ratio(clips[0], [0])),
        (MirrorCorrelation(0), lambda: mirror_correlation(clips[0], [0], skip=0)),
    ]:
        assert outcome(feed(stream, clips).result) == outcome(batch_fn)


def test_skip_beyond_the_video_raises_the_batch_error():
    clips = latent_clips([3, 3])
    got = outcome(feed(MirrorCorrelation(7), clips).result)
    assert got == outcome(lambda: mirror_correlation(torch.cat(clips, 2), [0, 3], skip=7))
    assert got[0] == "error" and "skip" in got[1]


def test_frozen_clips_give_nan_and_inf_as_the_batch_ratio():
    frozen = [torch.full((1, 2, 4, 2, 2), v, dtype=torch.float64) for v in (1.0, 1.0, 3.0)]
    starts = starts_of(frozen, 2)
    ratio = feed(SeamJumpRatio(), frozen).result()
    assert math.isinf(ratio) and math.isinf(seam_jump_ratio(torch.cat(frozen, 2), starts))
    still = frozen[:2]
    assert math.isnan(feed(SeamJumpRatio(), still).result())
    assert math.isnan(seam_jump_ratio(torch.cat(still, 2), [0, 4]))
    assert math.isnan(feed(MirrorCorrelation(0), still).result())
    assert math.isnan(mirror_correlation(torch.cat(still, 2), [0, 4], skip=0))


@pytest.mark.parametrize(("lengths", "skip"), [([8, 6, 6], 2), ([4, 4], 0), ([8, 6], 5)])
def test_latent_metrics_are_the_batch_metrics(lengths, skip):
    clips = latent_clips(lengths, seed=3)
    stream = feed(LatentMetrics(skip), clips)
    video, starts = torch.cat(clips, dim=2), starts_of(clips, 2)
    assert stream.shape == tuple(video.shape)
    got = stream.result()
    assert got["seam_jump_ratio"] == pytest.approx(seam_jump_ratio(video, starts), rel=1e-12)
    assert got["mirror_correlation"] == pytest.approx(mirror_correlation(video, starts, skip=skip), rel=1e-12)
    assert got["mirror_correlation_skip"] == skip and got["reasons"] == {}
    assert latent_metrics(video, starts, skip) == got  # the CLI's batch form is the same computation


@pytest.mark.parametrize(
    ("lengths", "undefined", "reason"),
    [([8], ["seam_jump_ratio", "mirror_correlation"], "needs at least 2 clips"),
     ([8, 2, 2], ["mirror_correlation"], "more than skip=2 frames")],
)  # fmt: skip
def test_latent_metrics_say_why_a_metric_is_undefined(lengths, undefined, reason):
    got = feed(LatentMetrics(2), latent_clips(lengths, seed=3)).result()
    assert sorted(got["reasons"]) == sorted(undefined)
    assert all(got[name] is None and reason in got["reasons"][name] for name in undefined)


def test_latent_metrics_report_frozen_videos_as_undefined():
    got = feed(LatentMetrics(2), [torch.zeros(1, 2, 4, 2, 2) for _ in range(3)]).result()
    assert got["seam_jump_ratio"] is None and "undefined" in got["reasons"]["seam_jump_ratio"]


def test_float32_clips_give_the_float32_batch_result():
    clips = latent_clips(DROPPED, dtype=torch.float32)
    video, starts = torch.cat(clips, dim=2), starts_of(clips, 2)
    got = feed(LatentMetrics(2), clips).result()
    assert got["seam_jump_ratio"] == pytest.approx(seam_jump_ratio(video, starts), rel=1e-5)
    assert got["mirror_correlation"] == pytest.approx(mirror_correlation(video, starts, skip=2), rel=1e-5)


def test_latent_streams_copy_what_they_keep():
    # A caller may reuse or change its clip buffer after update (float64 CPU tensors share memory).
    clips = latent_clips(DROPPED, batch=2, seed=5)
    video, starts = torch.cat(clips, dim=2), starts_of(clips, 2)
    seam, mirror = SeamJumpRatio(), MirrorCorrelation(1)
    for clip, start in zip(clips, starts, strict=True):
        seam.update(clip, start)
        mirror.update(clip, start)
        clip.fill_(0.0)
    assert_same(seam.result(), seam_jump_ratio(video, starts))
    assert_same(mirror.result(), mirror_correlation(video, starts, skip=1))


@pytest.mark.parametrize("max_offset", [None, 1])
def test_latent_state_does_not_grow_with_the_clips(max_offset):
    def held(num_clips):
        streams = [SeamJumpRatio(), MirrorCorrelation(0, max_offset)]
        for stream in streams:
            feed(stream, latent_clips([8] + [6] * (num_clips - 1)))
        return [array_bytes(s) for s in streams]

    assert held(40) == held(3)
    frame = 2 * 2 * 3 * 8  # C * H * W float64 bytes, B = 1
    assert held(40)[0] <= frame
    assert held(40)[1] <= (8 if max_offset is None else max_offset + 1) * frame


def test_update_checks_each_clip():
    stream = SeamJumpRatio()
    stream.update(torch.zeros(1, 2, 4, 2, 2), 0)
    with pytest.raises(ValueError, match="start must be 4"):
        stream.update(torch.zeros(1, 2, 4, 2, 2), 3)
    with pytest.raises(ValueError, match="latents must be"):
        stream.update(torch.zeros(2, 2, 4, 2, 2), 4)  # another batch size
    with pytest.raises(ValueError, match="5-D"):
        stream.update(torch.zeros(2, 4, 2, 2), 4)
    with pytest.raises(ValueError, match="finite"):
        stream.update(torch.full((1, 2, 4, 2, 2), float("nan")), 4)
    with pytest.raises(ValueError, match="skip"):
        MirrorCorrelation(-1)
    assert stream.clip_starts == [0] and stream.shape == (1, 2, 4, 2, 2)  # rejected clips left no trace


# ---------------------------------------------------------------- pixel metrics


def square_clips(lengths, seed=0, size=16, side=3, colour=(230, 10, 10)) -> list[np.ndarray]:
    """Clips of a square at random positions (about one frame in six without it) on a grey background."""
    rng = np.random.default_rng(seed)
    clips = []
    for n in lengths:
        clip = np.full((n, size, size, 3), 90, dtype=np.uint8)
        for frame in clip:
            if rng.random() > 1 / 6:
                x, y = rng.integers(0, size - side, 2)
                frame[y : y + side, x : x + side] = colour
        clips.append(clip)
    return clips


@pytest.mark.parametrize("lengths", [[8], [8, 8], DROPPED, [5, 1, 7, 2], [1, 1, 1]])
def test_pixel_metrics_equal_the_batch_summary(lengths):
    clips = square_clips(lengths, seed=len(lengths))
    stream = feed(PixelMetrics(), clips, axis=0)
    frames = np.concatenate(clips)
    assert stream.num_frames == len(frames) and stream.frame_shape == frames.shape[1:]
    assert_same(stream.result(), pixel_metrics.summary(frames, starts_of(clips, 0)))


@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
    min_speed=st.sampled_from([0.0, 0.25, 3.0]),
)
def test_pixel_metrics_match_the_batch_summary_for_any_clips(lengths, seed, min_speed):
    clips = square_clips(lengths, seed)
    got = feed(PixelMetrics(min_speed=min_speed), clips, axis=0).result()
    want = pixel_metrics.summary(np.concatenate(clips), starts_of(clips, 0), min_speed=min_speed)
    assert_same(got, want)


def test_pixel_metrics_use_their_threshold():
    clips = square_clips(DROPPED, seed=1, colour=(120, 90, 90))  # 30 levels from the background
    frames, starts = np.concatenate(clips), starts_of(clips, 0)
    low = feed(PixelMetrics(threshold=20), clips, axis=0).result()
    default = pixel_metrics.summary(frames, starts)  # threshold 40: the square is not found
    assert low["frames_without_object"] < len(frames) == default["frames_without_object"]
    assert_same(low, pixel_metrics.summary(frames, starts, threshold=20))


def test_pixel_metrics_check_their_arguments():
    with pytest.raises(ValueError, match="threshold"):
        PixelMetrics(threshold=-1)
    with pytest.raises(ValueError, match="min_speed"):
        PixelMetrics(min_speed=float("nan"))
    stream = PixelMetrics()
    with pytest.raises(ValueError, match="L >= 1"):
        stream.result()
    stream.update(np.zeros((2, 8, 8, 3), np.uint8), 0)
    with pytest.raises(ValueError, match="start must be 2"):
        stream.update(np.zeros((2, 8, 8, 3), np.uint8), 0)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) = \(8, 8, 3\)"):
        stream.update(np.zeros((2, 8, 9, 3), np.uint8), 2)
    with pytest.raises(ValueError, match="finite"):
        stream.update(np.full((2, 8, 8, 3), np.inf), 2)
    assert stream.clip_starts == [0] and stream.num_frames == 2


def test_pixel_state_is_a_few_numbers_per_frame():
    def held(num_clips):
        return array_bytes(feed(PixelMetrics(), square_clips([8] * num_clips), axis=0))

    assert held(40) <= 40 * 8 * 2 * 8  # the centroid track: two float64 per frame, no frame kept


# ---------------------------------------------------------------- contact sheet and sink


def test_contact_sheet_clips_by_default_give_todays_sheet():
    clips = square_clips(DROPPED, seed=2)
    sheet = feed(ContactSheetClips(), clips, axis=0)
    frames, starts = np.concatenate(clips), starts_of(clips, 0)
    np.testing.assert_array_equal(sheet.frames, frames)
    assert sheet.sheet_clip_starts == starts
    assert sheet.rows == [(k, s) for k, s in enumerate(starts)]
    np.testing.assert_array_equal(
        contact_sheet_array(sheet.frames, sheet.sheet_clip_starts), contact_sheet_array(frames, starts)
    )


def test_contact_sheet_clips_keep_at_most_max_rows_clips():
    lengths = [8] + [6] * 9
    clips = square_clips(lengths, seed=4)
    starts = starts_of(clips, 0)
    sheet = feed(ContactSheetClips(num_clips=10, max_rows=4), clips, axis=0)
    assert sheet.rows == [(k, starts[k]) for k in (0, 3, 6, 9)]
    np.testing.assert_array_equal(sheet.frames, np.concatenate([clips[k] for k in (0, 3, 6, 9)]))
    assert sheet.sheet_clip_starts == [0, 8, 14, 20]
    assert array_bytes(sheet) == sum(clips[k].nbytes for k in (0, 3, 6, 9))


def test_sheet_rows_are_evenly_spaced_and_include_the_ends():
    assert sheet_rows(3, None) == sheet_rows(3, 5) == [0, 1, 2]
    assert sheet_rows(9, 3) == [0, 4, 8]
    assert sheet_rows(800, 8)[0] == 0 and sheet_rows(800, 8)[-1] == 799 and len(sheet_rows(800, 8)) == 8
    with pytest.raises(ValueError, match="max_rows"):
        sheet_rows(9, 1)
    with pytest.raises(ValueError, match="num_clips"):
        ContactSheetClips(max_rows=4)


def test_fan_out_sink_forwards_every_clip_and_feeds_the_streams_their_starts():
    clips = square_clips(DROPPED, seed=6)
    file_sink, pixels, sheet = MemorySink(), PixelMetrics(), ContactSheetClips()
    sink = FanOutSink(file_sink, pixels, sheet)
    for clip in clips:
        sink.write(clip)
    sink.close()
    file_sink.close()
    frames = np.concatenate(clips)
    np.testing.assert_array_equal(file_sink.frames, frames)
    assert pixels.clip_starts == sheet.clip_starts == starts_of(clips, 0)
    assert sink.frames_written == len(frames)
    assert_same(pixels.result(), pixel_metrics.summary(frames, starts_of(clips, 0)))
