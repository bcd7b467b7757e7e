"""VidRDPipeline: text -> sampler -> temporal VAE, clip by clip, into memory or a streamed file."""

import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from models.pipeline import IgnoredWordsWarning
from models.tiny import tiny_pipeline
from models.video_io import VideoFileSink, to_uint8_frames
from samplers import DSG, FNR, PNS, LongVideoSampler


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(seed=0)


def paper_sampler():
    return LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=2, progress=False)


def run(pipe, prompt="a red circle moving right", **kwargs):
    options = {"sampler": paper_sampler(), "num_clips": 3, "num_frames": 4, "num_inference_steps": 2,
               "generator": torch.Generator().manual_seed(0)}  # fmt: skip
    options.update(kwargs)
    return pipe(prompt, **options)


class Spy:
    """Wraps the pipeline's denoiser and records the conditioning of every call."""

    def __init__(self, pipe):
        self.inner, self.calls = pipe.denoiser, []

    def __call__(self, latents, t, encoder_hidden_states):
        self.calls.append(encoder_hidden_states.clone())
        return self.inner(latents, t, encoder_hidden_states=encoder_hidden_states)


def test_frames_and_clip_starts(pipe):
    out = run(pipe)
    assert out.frames.shape == (12, 32, 32, 3) and out.frames.dtype == np.uint8
    assert out.clip_starts == [0, 4, 8]
    again = run(pipe)
    assert np.array_equal(out.frames, again.frames)  # same seed, same bits
    pil = run(pipe, output_type="pil").frames
    assert len(pil) == 12 and np.array_equal(np.asarray(pil[5]), out.frames[5])


def test_per_clip_prompts_and_negative_prompt(pipe, monkeypatch):
    spy = Spy(pipe)
    monkeypatch.setattr(pipe, "denoiser", spy)
    prompts = ["a red circle", "a blue square", "a green triangle"]
    run(pipe, prompts, negative_prompt="left", guidance_scale=7.0)
    with torch.no_grad():
        expected = [pipe.text_encoder.encode([p]) for p in prompts]
        negative = pipe.text_encoder.encode(["left"])
    assert len(spy.calls) == 3 * 2  # one batched (uncond, cond) call per step
    for k, context in enumerate(spy.calls):
        assert context.shape[0] == 2  # CFG: uncond first, then cond
        torch.testing.assert_close(context[:1], negative)
        torch.testing.assert_close(context[1:], expected[k // 2])


def test_guidance_scale_one_is_a_single_conditional_call(pipe, monkeypatch):
    spy = Spy(pipe)
    monkeypatch.setattr(pipe, "denoiser", spy)
    run(pipe, guidance_scale=1.0)
    assert len(spy.calls) == 6 and all(c.shape[0] == 1 for c in spy.calls)


def test_streaming_sink_gets_each_clip_as_it_finishes(pipe, tmp_path):
    writes = []

    class Recorder:
        def write(self, frames):
            writes.append(frames.copy())

        def close(self):
            raise AssertionError("the pipeline must not close a sink it did not create")

    out = run(pipe, sink=Recorder())
    assert out.frames is None and [w.shape for w in writes] == [(4, 32, 32, 3)] * 3
    assert np.array_equal(np.concatenate(writes), run(pipe).frames)
    with VideoFileSink(tmp_path / "video.mp4") as sink:
        run(pipe, sink=sink)
    assert iio.imread(tmp_path / "video.mp4").shape == (12, 32, 32, 3)


def test_failure_midway_leaves_the_old_video(pipe, tmp_path, monkeypatch):
    target = tmp_path / "video.mp4"
    target.write_bytes(b"the good video")
    calls = []

    def failing(latents, t, **cond):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("backbone failed")
        return torch.zeros_like(latents)

    monkeypatch.setattr(pipe, "denoiser", failing)
    with pytest.raises(RuntimeError, match="backbone failed"), VideoFileSink(target) as sink:
        run(pipe, sink=sink, guidance_scale=1.0)
    assert target.read_bytes() == b"the good video" and [p.name for p in tmp_path.iterdir()] == ["video.mp4"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompt": ["a", "b"]}, "prompt must be a string or a list of num_clips=3 strings"),
        ({"height": 30}, "height must be a positive multiple of 4"),
        ({"height": 0}, r"height must be an integer in \[4, inf\]; got 0"),  # not the default size
        ({"width": -8}, r"width must be an integer in \[4, inf\]; got -8"),
        ({"guidance_scale": -1.0}, r"guidance_scale must be in \[0.0, "),
        ({"guidance_scale": float("inf")}, "guidance_scale must be in"),
        ({"prompt": " "}, "prompt must not be empty"),
        ({"prompt": ["a", "", "b"]}, "prompt must not be empty"),
        ({"negative_prompt": 3}, "negative_prompt must be a string or None"),
        ({"sink": [1, 2]}, "sink must be a FrameSink"),
        ({"num_clips": 0}, "num_clips must be an integer"),
        ({"output_type": "latent"}, "output_type must be 'np' or 'pil'"),
    ],
)
def test_bad_arguments_fail_before_any_work(pipe, monkeypatch, kwargs, match):
    def never(*args, **kw):
        raise AssertionError("no denoiser call expected")

    monkeypatch.setattr(pipe, "denoiser", never)
    prompt = kwargs.pop("prompt", "a red circle")
    with pytest.raises((TypeError, ValueError), match=match):
        run(pipe, prompt, **kwargs)


def test_negative_prompt_none_is_the_empty_negative_prompt(pipe):
    frames = [run(pipe, negative_prompt=value, num_clips=2).frames for value in (None, "")]
    assert np.array_equal(*frames)


def test_decode_clip_is_what_the_pipeline_streams(pipe):
    # The frames of a call are its clips' latents through `decode_clip`, one clip at a time; latents of
    # another dtype are cast to the VAE's first.
    clips = []
    out = run(pipe, on_clip=lambda clip: clips.append(clip.latents))
    decoded = np.concatenate([to_uint8_frames(pipe.decode_clip(latents))[0] for latents in clips])
    assert len(clips) == 3 and np.array_equal(out.frames, decoded)
    wide = pipe.decode_clip(clips[0].double())
    assert wide.dtype == pipe.vae.dtype and torch.equal(wide, pipe.decode_clip(clips[0]))


def test_to_uint8_frames_maps_the_range_exactly():
    decoded = torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 5, 1, 1).expand(1, 3, 5, 1, 1)
    frames = to_uint8_frames(decoded)
    assert frames.shape == (1, 5, 1, 1, 3)
    assert frames[0, :, 0, 0, 0].tolist() == [0, 0, 128, 255, 255]  # (x + 1) * 127.5, rounded, clipped


def test_save_video_with_diffusers_exporters(tmp_path):
    from models.video_io import save_video

    frames = np.zeros((4, 16, 16, 3), np.uint8)
    for k in range(4):  # a white square moving right on black: few colours, so the GIF palette is exact
        frames[k, 4:8, 2 + 2 * k : 6 + 2 * k] = 255
    assert np.array_equal(iio.imread(save_video(frames, tmp_path / "a.gif")), frames)
    assert iio.imread(save_video(frames, tmp_path / "a.mp4")).shape == frames.shape
    with pytest.raises(ValueError, match=r"path must end in one of \('.mp4', '.gif'\)"):
        save_video(frames, tmp_path / "a.avi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4"]


def test_words_the_text_encoder_cannot_read_are_named_in_a_warning(pipe):
    known = pipe.text_encoder.tokenizer.vocabulary[0]
    with pytest.warns(IgnoredWordsWarning, match=r"\['zooming', 'qqq'\]"):
        run(pipe, f"a {known} zooming qqq", num_clips=1)
    too_long = " ".join([known] * (pipe.text_encoder.max_length + 1)) + " tail"
    with pytest.warns(IgnoredWordsWarning, match=rf"\['{known}', 'tail'\]"):
        run(pipe, too_long, num_clips=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(pipe, known, num_clips=1)
