"""FreeNoise's rescheduling: hand-written chunk arithmetic, exact reuse of earlier frames, determinism."""

import pytest
import torch
from diffusers import DDIMScheduler
from hypothesis import given
from hypothesis import strategies as st

from models import GaussianVideoPrior
from samplers import FreeNoiseRescheduling, LongVideoSampler, NoiseContext
from samplers.freenoise import FreeNoise, long_noise
from samplers.windows import ContextWindows, WindowedSampler


def context(previous, seed=1):
    return NoiseContext(1, 2, previous, torch.Generator().manual_seed(seed))


def randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def matches(frame, frames):
    """Indices k with frames[k] bit for bit equal to `frame`."""
    return [k for k, other in enumerate(frames) if torch.equal(frame, other)]


@st.composite
def settings(draw):
    n = draw(st.integers(1, 12))
    window = draw(st.integers(1, n))
    return n, window, draw(st.integers(1, window)), draw(st.integers(0, 2**16))


@given(settings())
def test_chunks_are_shuffled_copies_of_the_frames_window_earlier(setting):
    n, window, stride, seed = setting
    previous = randn((2, 2, n, 2, 2), seed)  # continuous noise: distinct frames, no accidental ties
    out = FreeNoiseRescheduling(window, stride)(randn(previous.shape, seed + 1), context(previous, seed + 2))
    # The concatenation [zT[i-1], zT[i]]: frame j of the clip is entry n + j.
    concat = [*previous.unbind(2), *out.unbind(2)]
    for j0 in range(0, n, stride):  # chunks by hand: frames j0 .. j0+len-1, sources j0-window+r
        length = min(stride, n - j0)
        sources = [concat[n + j0 - window + r] for r in range(length)]
        chunk = [concat[n + j0 + r] for r in range(length)]
        # A permutation: every chunk frame is exactly one source frame, each source used once.
        found = [matches(frame, sources) for frame in chunk]
        assert all(len(k) == 1 for k in found), (j0, found)
        assert sorted(k[0] for k in found) == list(range(length))
    for j in range(n):  # ... so every frame is exactly one frame of the previous clip's noise
        assert len(matches(out[:, :, j], list(previous.unbind(2)))) == 1


@given(n=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_full_window_stride_one_copies_the_previous_clip_forward(n, seed):
    previous = randn((1, 2, n, 3, 3), seed)
    out = FreeNoiseRescheduling(window=n, stride=1)(randn(previous.shape, seed + 1), context(previous))
    assert torch.equal(out, previous)


def test_marginals_are_exactly_those_of_the_previous_noise():
    # Every frame is a bit-exact copy of a frame of zT[i-1] (no arithmetic), so unit variance is kept
    # exactly, not up to sampling error: the sorted values of each frame are the previous frame's.
    previous = randn((2, 3, 16, 4, 4), 5)
    out = FreeNoiseRescheduling(window=16, stride=4)(randn(previous.shape, 6), context(previous, 7))
    assert sorted(matches(out[:, :, j], list(previous.unbind(2)))[0] for j in range(16)) == list(range(16))


def test_paper_setting_by_hand():
    # N=16, window=16, stride=4: chunk j0 takes frames j0-16..j0-13 = frames j0..j0+3 of the previous clip.
    previous = torch.arange(16, dtype=torch.float64).reshape(1, 1, 16, 1, 1)
    out = FreeNoiseRescheduling(16, 4)(torch.zeros_like(previous), context(previous, 3)).flatten().tolist()
    for j0 in (0, 4, 8, 12):
        assert sorted(out[j0 : j0 + 4]) == [j0, j0 + 1, j0 + 2, j0 + 3]
    # window=4, stride=2 on N=6: the chunks read [-4,-3], [-2,-1], then [0, 1] of the clip itself.
    previous = torch.arange(6, dtype=torch.float64).reshape(1, 1, 6, 1, 1)
    out = FreeNoiseRescheduling(4, 2)(torch.zeros_like(previous), context(previous, 3)).flatten().tolist()
    assert sorted(out[0:2]) == [2, 3] and sorted(out[2:4]) == [4, 5] and out[4:6] in (out[0:2], out[1::-1])


def test_same_seed_same_bits_and_both_orders_occur():
    previous, candidate = randn((1, 1, 2, 1, 1), 0), randn((1, 1, 2, 1, 1), 1)
    runs = [FreeNoiseRescheduling(2, 2)(candidate, context(previous, seed)) for seed in range(40)]
    assert torch.equal(runs[0], FreeNoiseRescheduling(2, 2)(candidate, context(previous, 0)))
    # Two orders of a 2-frame chunk; 40 fair draws all alike has probability 2 * 2^-40.
    assert len({tuple(r.flatten().tolist()) for r in runs}) == 2


def test_first_clip_keeps_its_candidate():
    candidate = randn((1, 2, 6, 2, 2), 0)
    ctx = NoiseContext(0, 2, None, torch.Generator().manual_seed(0))
    assert FreeNoiseRescheduling(4, 2)(candidate, ctx) is candidate


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 0}, r"window must be an integer in \[1, inf\]"),
        ({"window": 4, "stride": 5}, r"stride must be an integer in \[1, 4\]; got 5"),
        ({"window": 4, "stride": 0}, r"stride must be an integer in \[1, 4\]; got 0"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FreeNoiseRescheduling(**kwargs)


def test_window_longer_than_the_clip_is_refused_before_any_work():
    message = r"window must be an integer in \[4, 6\]; got 8"
    calls = []

    def denoiser(latents, t):
        calls.append(t)
        return latents

    sampler = LongVideoSampler([FreeNoiseRescheduling(8, 4)], prompt_frames=2, progress=False)
    with pytest.raises(ValueError, match=message):
        sampler.sample(denoiser, DDIMScheduler(clip_sample=False), (1, 1, 6, 1, 1), 2, 3,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert calls == []  # refused before clip 0 was denoised
    previous = randn((1, 1, 6, 1, 1), 0)
    with pytest.raises(ValueError, match=message):  # and when called on its own
        FreeNoiseRescheduling(8, 4)(previous, context(previous))


def test_in_the_sampler_clip_noise_is_the_previous_clips_reshuffled():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 2, 2))
    scheduler, clips = DDIMScheduler(clip_sample=False), []
    sampler = LongVideoSampler([FreeNoiseRescheduling(window=8, stride=1)], prompt_frames=2, progress=False)
    sampler.sample(prior.denoiser(scheduler), scheduler, (1, 2, 8, 2, 2), 3, 2,
                   generator=torch.Generator().manual_seed(0), on_clip=clips.append)  # fmt: skip
    assert torch.equal(clips[1].initial_noise, clips[0].initial_noise)
    assert torch.equal(clips[2].initial_noise, clips[0].initial_noise)


# -- FreeNoise whole: the long video's noise, then windows fused ------------------------------------------


@given(window=st.integers(1, 8), stride_less=st.integers(0, 7), length=st.integers(1, 30),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_long_noise_is_fresh_frames_then_shuffled_chunks_window_earlier(window, stride_less, length, seed):
    # Every frame is bit for bit one of the first `window` fresh frames (so its marginal is exactly
    # N(0, I)), and each chunk of `stride` frames is a permutation of the chunk `window` frames earlier.
    stride = max(1, window - stride_less)
    g = torch.Generator().manual_seed(seed)
    noise = long_noise((1, 2, length, 1, 1), window, stride, g, torch.float64)
    frames = list(noise.unbind(dim=2))
    fresh = frames[:window]
    assert noise.shape == (1, 2, length, 1, 1)
    assert all(len(matches(frame, fresh)) == 1 for frame in frames)
    for j0 in range(window, length, stride):
        chunk = frames[j0 : j0 + stride]
        sources = [matches(frame, frames[j0 - window : j0 - window + len(chunk)]) for frame in chunk]
        assert sorted(k for found in sources for k in found) == list(range(len(chunk)))


def test_long_noise_is_the_clip_by_clip_rescheduling_end_to_end():
    # with window = N and N a multiple of the stride, the long noise is the clips' initial noises one after
    # another, drawn in the same order: the rescheduling is one rule, clip by clip or whole
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 2, 2), lengthscale=3.0)
    scheduler = DDIMScheduler(clip_sample=False)
    noises = []
    sampler = LongVideoSampler([FreeNoiseRescheduling(8, 4)], prompt_frames=2, progress=False)
    sampler.sample(prior.denoiser(scheduler), scheduler, (2, 1, 8, 2, 2), 3, 1,
                   generator=torch.Generator().manual_seed(5),
                   on_clip=lambda clip: noises.append(clip.initial_noise))  # fmt: skip
    whole = long_noise((2, 1, 24, 2, 2), 8, 4, torch.Generator().manual_seed(5))
    assert torch.equal(whole, torch.cat(noises, dim=2))


def test_freenoise_is_its_noise_denoised_over_its_windows():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 2, 2), lengthscale=3.0)
    scheduler = DDIMScheduler(clip_sample=False)
    windows = ContextWindows(8, 2, "static", "pyramid")
    out = FreeNoise(windows).sample(prior.denoiser(scheduler), scheduler, (2, 1, 20, 2, 2), 4,
                                    generator=torch.Generator().manual_seed(3))  # fmt: skip
    noise = long_noise((2, 1, 20, 2, 2), 8, 2, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    long_noise((2, 1, 20, 2, 2), 8, 2, g)  # the same draws, then the windowed sampler's
    expected = WindowedSampler(windows).sample(prior.denoiser(scheduler), scheduler, noise.shape, 4,
                                               generator=g, noise=noise)  # fmt: skip
    assert torch.equal(out.latents, expected.latents) and out.clip_starts == [0, 2, 4, 6, 8, 10, 12]
    assert FreeNoise().windows == ContextWindows(16, 4, "static", "pyramid")  # the authors' defaults
    with pytest.raises(TypeError, match="windows must be a ContextWindows"):
        FreeNoise(windows=16)


def test_freenoise_checks_everything_before_it_draws_its_noise():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 2, 2), lengthscale=3.0)
    scheduler, g = DDIMScheduler(clip_sample=False), torch.Generator().manual_seed(0)
    state = g.get_state()
    for shape, steps, match in (((2, 1, 20, 2, 2), 0, "num_inference_steps must be an integer"),
                                ((2, 1, 0, 2, 2), 4, r"shape must be 5 positive ints")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            FreeNoise(ContextWindows(8, 2)).sample(prior.denoiser(scheduler), scheduler, shape, steps,
                                                   generator=g)  # fmt: skip
        assert torch.equal(g.get_state(), state)  # nothing drawn
