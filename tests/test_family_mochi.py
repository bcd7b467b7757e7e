"""MochiFamily: one clip reproduces MochiPipeline's own loop and decode; the paper's strategies run long
videos; per-clip prompts reach their clips; bad input is refused before any model call."""

import numpy as np
import pytest
import torch

from models.families.mochi import MochiFamily
from models.long_pipeline import LongVideoPipeline
from models.tiny_diffusers import mochi as tiny  # (its tests_scheduler is no pytest test)
from models.tiny_diffusers.mochi import prompt_embeds, released_scheduler, tiny_mochi
from samplers import DSG, FNR, PNS, LongVideoSampler

SCHEDULERS = {"tests": tiny.tests_scheduler, "released": released_scheduler}
EMBEDS = torch.zeros(1, 16, 32)
SIZE = {"num_frames": 7, "height": 16, "width": 16, "num_inference_steps": 3}  # F = 2 latent frames


def conditioning(seed=1, negative_seed=2):
    """The tests' conditioning: positive and negative embeddings with their masks."""
    (pe, pm), (ne, nm) = prompt_embeds(seed), prompt_embeds(negative_seed)
    return {"prompt_embeds": pe, "prompt_attention_mask": pm, "negative_prompt_embeds": ne,
            "negative_prompt_attention_mask": nm}  # fmt: skip


def one_clip(pipe, output_type="latent", **kwargs):
    """One clip with no strategy through LongVideoPipeline, and its initial noise."""
    noises = []
    out = LongVideoPipeline(MochiFamily(pipe))(
        num_clips=1, generator=torch.Generator().manual_seed(0), output_type=output_type,
        on_clip=lambda clip: noises.append(clip.initial_noise), **kwargs,
    )  # fmt: skip
    return out, noises[0]


@pytest.mark.parametrize("guidance_scale", [4.5, 1.0])
@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_one_clip_is_the_pipeline_bit_for_bit(scheduler, guidance_scale):
    # torch.equal: the denoiser batches [uncond, cond] in one transformer call, casts to float32 and
    # combines u + g (c - u) exactly as the pipeline's loop, and the Schedule passes the pipeline's sigmas
    # to the same set_timesteps, so every operation is the same.
    pipe = tiny_mochi(0, scheduler=SCHEDULERS[scheduler]())
    cond = {**conditioning(), **SIZE, "guidance_scale": guidance_scale}
    out, noise = one_clip(pipe, **cond)
    family = MochiFamily(pipe)
    reference = pipe(**cond, latents=family.to_pipeline_layout(noise).clone(), output_type="latent").frames
    assert out.latents.shape == (1, 12, 2, 2, 2)
    assert torch.equal(out.latents, family.from_pipeline_layout(reference, out.latents.shape))


def test_one_clip_decodes_as_the_pipeline():
    # the kit maps [-1, 1] to [0, 1] as (x + 1) / 2, the pipeline's VideoProcessor as x / 2 + 0.5: ulps
    pipe = tiny_mochi(0, scheduler=released_scheduler())
    cond = {**conditioning(), **SIZE, "guidance_scale": 4.5}
    out, noise = one_clip(pipe, output_type="np", **cond)
    reference = pipe(**cond, latents=noise.clone(), output_type="np").frames[0]
    assert out.frames.shape == reference.shape == (7, 16, 16, 3)
    np.testing.assert_allclose(out.frames, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_paper_composition_three_clips(scheduler):
    pipe = tiny_mochi(0, scheduler=SCHEDULERS[scheduler]())
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=1, progress=False)
    out = LongVideoPipeline(MochiFamily(pipe))(
        sampler=sampler, num_clips=3, generator=torch.Generator().manual_seed(0), output_type="np",
        guidance_scale=4.5, **conditioning(), **SIZE,
    )  # fmt: skip
    latent_frames, temporal = 2, 6  # (7 - 1) / 6 + 1 per clip; the Mochi VAE's temporal factor
    assert out.frames.shape == (1 + (3 * latent_frames - 1) * temporal, 16, 16, 3)  # 31 frames
    assert out.latents.shape == (1, 12, 3 * latent_frames, 2, 2)
    assert out.latent_clip_starts == [0, 2, 4]
    assert out.clip_starts == [0, 1 + (2 - 1) * temporal, 1 + (4 - 1) * temporal]  # [0, 7, 19]
    assert np.isfinite(out.frames).all()


def test_per_clip_prompts_reach_their_clips():
    pipe = tiny_mochi(0, scheduler=released_scheduler())
    first, second = conditioning(1, 2), conditioning(3, 4)
    per_clip = {key: [first[key], second[key]] for key in first}
    seen, forward = [], pipe.transformer.forward

    def recording(*args, **kwargs):
        seen.append(kwargs["encoder_hidden_states"].clone())
        return forward(*args, **kwargs)

    pipe.transformer.forward = recording
    noises = []
    out = LongVideoPipeline(MochiFamily(pipe))(
        num_clips=2, generator=torch.Generator().manual_seed(0), output_type="latent", guidance_scale=4.5,
        on_clip=lambda clip: noises.append(clip.initial_noise), **per_clip, **SIZE,
    )  # fmt: skip
    steps = SIZE["num_inference_steps"]
    assert len(seen) == 2 * steps  # one batched [uncond, cond] call per step
    for calls, cond in ((seen[:steps], first), (seen[steps:], second)):
        expected = torch.cat([cond["negative_prompt_embeds"], cond["prompt_embeds"]])
        assert all(torch.equal(call, expected) for call in calls)
    del pipe.transformer.forward
    # clip 1 of the story is the pipeline's own run with the second prompt from clip 1's noise
    reference = pipe(**second, **SIZE, guidance_scale=4.5, latents=noises[1].clone(), output_type="latent")
    assert torch.equal(out.latents[:, :, 2:], reference.frames)
    assert not torch.equal(out.latents[:, :, :2], out.latents[:, :, 2:])


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"num_frames": 8}, ValueError, ["num_frames", "6k+1", "got 8", "7 or 13"]),
        ({"height": 24}, ValueError, ["height", "multiple of 16", "got 24", "16 or 32"]),
        ({"width": 20}, ValueError, ["width", "multiple of 16", "got 20", "16 or 32"]),
        ({"num_inference_steps": 1}, ValueError, ["num_inference_steps", "at least 2", "got 1"]),
        ({"timesteps": [999, 500]}, ValueError, ["timesteps must be None", "[999, 500]"]),
        ({"guidance_scale": -1.0}, ValueError, ["guidance_scale", "-1.0"]),
        ({"fps": 24}, TypeError, ["does not take fps", "allowed"]),
        ({"prompt_attention_mask": None}, ValueError, ["prompt_attention_mask must come with", "(1, 16)"]),
        ({"negative_prompt_embeds": None}, ValueError, ["negative_prompt", "tokenizer", "text_encoder"]),
        ({"prompt_embeds": [EMBEDS] * 3}, ValueError, ["prompt_embeds", "num_clips=2", "3 items"]),
        ({"prompt": "a cat"}, ValueError, ["exactly one of prompt and prompt_embeds", "both"]),
    ],
)
def test_bad_input_is_refused_before_any_model_call(change, error, words):
    pipe = tiny_mochi(0)

    def refuse(*args, **kwargs):
        raise AssertionError("a model was called before the input was checked")

    for model in (pipe.transformer, pipe.vae, pipe.text_encoder):
        model.forward = refuse
    pipe.vae.decode = refuse
    kwargs = {**conditioning(), **SIZE, "guidance_scale": 4.5, **change}
    with pytest.raises(error) as raised:
        LongVideoPipeline(MochiFamily(pipe))(
            num_clips=2, generator=torch.Generator().manual_seed(0), output_type="latent", **kwargs
        )
    message = str(raised.value)
    assert all(word in message for word in words), message
