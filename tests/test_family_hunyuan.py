"""HunyuanVideoFamily against diffusers' own HunyuanVideoPipeline (tiny random weights, offline).

One clip with no strategy must be the pipeline's loop from the same initial noise; the family's batching
is the pipeline's (one conditional call under embedded guidance, a separate negative call for true CFG,
combined as the pipeline writes it), so the comparisons are exact (torch.equal), not approximate.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.families.hunyuan import HunyuanVideoFamily
from models.long_pipeline import LongVideoPipeline
from models.tiny_diffusers import hunyuan as tiny
from models.tiny_diffusers.hunyuan import negative_embeds, prompt_embeds, tiny_hunyuan
from samplers import DSG, FNR, PNS, LongVideoSampler

SIZE = {"num_frames": 9, "height": 16, "width": 16, "num_inference_steps": 3, "guidance_scale": 4.5}
LATENT_FRAMES = 3  # (9 - 1) / 4 + 1
TEMPORAL = 4  # the tiny VAE's temporal compression, as the released VAE's


def _long(pipe):
    return LongVideoPipeline(HunyuanVideoFamily(pipe))


def _run(pipe, num_clips=1, sampler=None, output_type="latent", **kwargs):
    """The long pipeline's result and the initial noise of each clip."""
    noises = []
    result = _long(pipe)(sampler=sampler, num_clips=num_clips, generator=torch.Generator().manual_seed(0),
                         output_type=output_type, on_clip=lambda clip: noises.append(clip.initial_noise),
                         **kwargs)  # fmt: skip
    return result, noises


def _record_calls(pipe, monkeypatch):
    """Wrap the transformer's forward: the list receives each call's keyword arguments."""
    calls, forward = [], pipe.transformer.forward

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.transformer, "forward", recording)
    return calls


CONDITIONS = {
    "embedded-guidance-only": {},  # true_cfg_scale 1: one transformer call per step
    "true-cfg": {**negative_embeds(2, valid=5), "true_cfg_scale": 3.0},  # two calls per step
}


@pytest.mark.parametrize(
    "scheduler", [tiny.tests_scheduler, tiny.released_scheduler], ids=["tests", "released"]
)
@pytest.mark.parametrize("condition", list(CONDITIONS), ids=list(CONDITIONS))
def test_one_clip_is_the_pipeline_loop(scheduler, condition, monkeypatch):
    pipe = tiny_hunyuan(0, scheduler=scheduler())
    kwargs = {**prompt_embeds(1, valid=6), **CONDITIONS[condition], **SIZE}
    calls = _record_calls(pipe, monkeypatch)
    result, noises = _run(pipe, **kwargs)
    per_step = 2 if condition == "true-cfg" else 1
    assert len(calls) == SIZE["num_inference_steps"] * per_step
    noise = HunyuanVideoFamily(pipe).to_pipeline_layout(noises[0]).clone()  # the same layout here
    reference = pipe(**kwargs, latents=noise, output_type="latent").frames
    assert len(calls) == 2 * SIZE["num_inference_steps"] * per_step  # the pipeline called it as often
    assert torch.equal(result.latents, reference)  # same calls, batching and casts: bit for bit


def test_true_cfg_needs_a_negative_and_changes_the_result():
    pipe = tiny_hunyuan(0)
    plain, _ = _run(pipe, **prompt_embeds(1), **SIZE, true_cfg_scale=3.0)  # no negative: no true CFG
    alone, _ = _run(pipe, **prompt_embeds(1), **SIZE)
    guided, _ = _run(pipe, **prompt_embeds(1), **SIZE, **negative_embeds(2), true_cfg_scale=3.0)
    assert torch.equal(plain.latents, alone.latents)
    assert not torch.allclose(guided.latents, alone.latents, atol=1e-3)


def test_custom_sigmas_are_the_pipelines():
    pipe = tiny_hunyuan(0)
    kwargs = {**prompt_embeds(1), **SIZE, "sigmas": [1.0, 0.7, 0.45, 0.2]}  # 4 steps: len(sigmas) wins
    result, noises = _run(pipe, **kwargs)
    assert len(pipe.scheduler.timesteps) == 4
    reference = pipe(**kwargs, latents=noises[0].clone(), output_type="latent").frames
    assert torch.equal(result.latents, reference)


def test_decoding_is_the_pipelines():
    pipe = tiny_hunyuan(0)
    kwargs = {**prompt_embeds(1), **SIZE}
    result, noises = _run(pipe, output_type="np", **kwargs)
    reference = pipe(**kwargs, latents=noises[0].clone(), output_type="np").frames[0]
    assert result.frames.shape == reference.shape == (SIZE["num_frames"], 16, 16, 3)
    # same VAE call; the kit maps [-1, 1] to [0, 1] as (x + 1) / 2, the pipeline as x / 2 + 0.5, which
    # can round differently in the last bit
    np.testing.assert_allclose(result.frames, reference, rtol=0, atol=1e-6)


def test_paper_composition_makes_three_clips_and_decodes():
    pipe = tiny_hunyuan(0)
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=1, progress=False)
    result, _ = _run(pipe, num_clips=3, sampler=sampler, output_type="np", **prompt_embeds(1), **SIZE)
    frames = 1 + (3 * LATENT_FRAMES - 1) * TEMPORAL  # 33: the first latent frame decodes to one frame
    assert result.frames.shape == (frames, 16, 16, 3)
    assert np.isfinite(result.frames).all()
    assert result.latents.shape == (1, 4, 3 * LATENT_FRAMES, 2, 2)
    assert result.latent_clip_starts == [0, LATENT_FRAMES, 2 * LATENT_FRAMES]
    first = 1 + (LATENT_FRAMES - 1) * TEMPORAL
    assert result.clip_starts == [0, first, first + LATENT_FRAMES * TEMPORAL]


def test_per_clip_prompts_reach_their_clips(monkeypatch):
    pipe = tiny_hunyuan(0)
    first, second = prompt_embeds(1, valid=6), prompt_embeds(3, valid=4)
    story = {name: [first[name], second[name]] for name in first}
    calls = _record_calls(pipe, monkeypatch)
    result, noises = _run(pipe, num_clips=2, **story, **SIZE)
    steps = SIZE["num_inference_steps"]
    assert len(calls) == 2 * steps
    for clip, expected in ((0, first), (1, second)):
        for call in calls[clip * steps : (clip + 1) * steps]:
            assert torch.equal(call["encoder_hidden_states"], expected["prompt_embeds"])
            assert torch.equal(call["pooled_projections"], expected["pooled_prompt_embeds"])
            assert torch.equal(call["encoder_attention_mask"], expected["prompt_attention_mask"].float())
    reference = pipe(**second, **SIZE, latents=noises[1].clone(), output_type="latent").frames
    assert torch.equal(result.latents[:, :, LATENT_FRAMES:], reference)


@pytest.fixture
def untouched(monkeypatch):
    """A tiny pipeline whose models fail the test if any is called."""
    pipe = tiny_hunyuan(0)

    def refuse(*args, **kwargs):
        raise AssertionError("a model was called before the arguments were checked")

    for model in (pipe.transformer, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
        monkeypatch.setattr(model, "forward", refuse)
    monkeypatch.setattr(pipe.vae, "decode", refuse)
    return pipe


BAD = [
    ({"num_frames": 10}, ValueError, r"num_frames.*4k\+1.*got 10.*9 or 13"),
    ({"height": 24}, ValueError, r"height must be a multiple of 16.*got 24.*16 or 32"),
    ({"width": 8}, ValueError, r"width must be a multiple of 16.*got 8.*nearest valid: 16"),  # 8 x patch 1
    ({"num_videos": 2}, TypeError, r"does not take num_videos"),
    ({"true_cfg_scale": -1.0}, ValueError, r"true_cfg_scale"),
    ({"sigmas": [1.0, 2.0]}, ValueError, r"sigmas must be.*\[0, 1\]"),
    ({"prompt_attention_mask": None}, ValueError, r"prompt_attention_mask is required with prompt_embeds"),
    ({"pooled_prompt_embeds": None}, ValueError, r"pooled_prompt_embeds is required with prompt_embeds"),
    ({"prompt": "a cat"}, ValueError, r"prompt .*or prompt_embeds, not both"),
    ({"prompt_embeds": torch.zeros(1, 8, 5)}, ValueError, r"prompt_embeds must have shape \(1, 8, 16\)"),
    ({"prompt_embeds": [torch.zeros(1, 8, 16)] * 3}, ValueError, r"list of num_clips=2"),
    ({"prompt_template": {"crop_start": 0}}, ValueError, r"prompt_template.*'template'"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD, ids=[str(sorted(c)) for c, _, _ in BAD])
def test_bad_input_is_refused_before_any_model_call(untouched, change, error, message):
    kwargs = {**prompt_embeds(1), **SIZE, **change}
    with pytest.raises(error, match=message):
        _long(untouched)(num_clips=2, generator=torch.Generator().manual_seed(0), **kwargs)


def test_prompt_strings_need_the_tokenizers(untouched):
    with pytest.raises(ValueError, match=r"needs the pipeline's tokenizer and text_encoder.*no tokenizer"):
        _long(untouched)("a cat", num_clips=1, generator=torch.Generator().manual_seed(0), **SIZE)
