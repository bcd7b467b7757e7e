"""LTXFamily against LTXPipeline itself: one clip reproduces the pipeline's loop and decode bit for bit,
the paper's composition runs and decodes, per-clip prompts reach their clips, bad input fails first."""

from __future__ import annotations

import pytest
import torch
from diffusers import LTXPipeline
from einops import rearrange

from models.families.ltx import LTXFamily
from models.long_pipeline import LongVideoPipeline
from models.tiny_diffusers import ltx as tiny
from models.tiny_diffusers.ltx import prompt_embeds, released_scheduler, tiny_ltx
from samplers import DSG, FNR, PNS, LongVideoSampler

FRAMES, SIZE, STEPS = 9, 32, 3  # the tiny VAE compresses (4, 4, 4): 3 latent frames of 8 x 8
SCHEDULERS = {"tests": tiny.tests_scheduler, "released": released_scheduler}


def conditioning(seed: int = 1) -> dict:
    """Prompt and negative embeddings with masks that differ (5 and 3 real tokens of 16)."""
    positive, mask = prompt_embeds(seed)
    negative, negative_mask = prompt_embeds(seed + 100, valid=3)
    return {"prompt_embeds": positive, "prompt_attention_mask": mask, "negative_prompt_embeds": negative,
            "negative_prompt_attention_mask": negative_mask}  # fmt: skip


def call_kwargs(**extra) -> dict:
    return {"num_frames": FRAMES, "height": SIZE, "width": SIZE, "num_inference_steps": STEPS,
            "guidance_scale": 3.0, **conditioning(), **extra}  # fmt: skip


def run_one_clip(pipe, kwargs: dict) -> tuple[LTXFamily, torch.Tensor, torch.Tensor]:
    """(family, the kit's latents, the clip's initial noise), both (B, C, F, h, w)."""
    family, noises = LTXFamily(pipe), []
    result = LongVideoPipeline(family)(num_clips=1, generator=torch.Generator().manual_seed(0),
                                       output_type="latent", on_clip=lambda c: noises.append(c.initial_noise),
                                       **kwargs)  # fmt: skip
    return family, result.latents, noises[0]


def record_calls(module: torch.nn.Module) -> list[dict]:
    """The keyword arguments of every call of `module` from now on."""
    calls: list[dict] = []
    module.register_forward_pre_hook(lambda _, args, kwargs: calls.append(kwargs), with_kwargs=True)
    return calls


# Identical batching: the denoiser makes the pipeline's one [uncond, cond] call, on the same packed tokens,
# with the same casts, timestep tensors and formula (rescale included, on the tokens), so torch.equal.
@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize(("guidance_scale", "guidance_rescale"), [(3.0, 0.0), (3.0, 0.7), (1.0, 0.0)])
def test_one_clip_equals_the_pipeline(scheduler, guidance_scale, guidance_rescale):
    pipe = tiny_ltx(0, SCHEDULERS[scheduler]())
    kwargs = call_kwargs(guidance_scale=guidance_scale, guidance_rescale=guidance_rescale, frame_rate=24)
    family, latents, noise = run_one_clip(pipe, kwargs)
    reference = pipe(latents=family.to_pipeline_layout(noise).clone(), output_type="latent", **kwargs).frames
    assert reference.shape == (1, 3 * 8 * 8, 8)  # packed tokens, as the pipeline returns them
    assert torch.equal(family.to_pipeline_layout(latents), reference)
    assert torch.equal(family.from_pipeline_layout(reference, latents.shape), latents)


def test_released_schedule_is_the_pipelines():
    """sigmas linspace(1, 1/N, N) and mu from the 3 * 8 * 8 tokens: timesteps read after both set them."""
    pipe = tiny_ltx(0, released_scheduler())
    pipe(output_type="latent", **call_kwargs())
    expected = pipe.scheduler.timesteps.clone()
    plan = LTXFamily(pipe).plan(1, None, call_kwargs())
    assert torch.equal(plan.schedule.set_timesteps(STEPS, plan.device), expected)
    assert float(expected[-1]) == pytest.approx(100.0)  # shift_terminal 0.1 really applies


def test_decode_equals_the_pipeline_with_timestep_conditioning():
    """A timestep-conditioned VAE (LTX-Video 0.9.1+) decoded at decode_timestep 0.05 with noise scale 0:
    the same frames as the pipeline's output_type="pt" from the same initial noise."""
    pipe = tiny_ltx(0, released_scheduler(), timestep_conditioning=True)
    kwargs = call_kwargs(decode_timestep=0.05, decode_noise_scale=0.0)
    family, latents, noise = run_one_clip(pipe, kwargs)
    reference = pipe(latents=family.to_pipeline_layout(noise).clone(), output_type="pt", **kwargs).frames
    frames = family.decode_latents(latents, decode_timestep=0.05)
    assert frames.shape == (1, 3, FRAMES, SIZE, SIZE)
    assert torch.equal(rearrange((frames / 2 + 0.5).clamp(0, 1), "b c f h w -> b f c h w"), reference)
    assert not torch.equal(family.decode_latents(latents, decode_timestep=0.5), frames)  # it reaches the VAE
    # and LongVideoPipeline decodes with the call's own decode_timestep (the plan's decode_options)
    out = LongVideoPipeline(family)(num_clips=1, output_type="np",
                                    generator=torch.Generator().manual_seed(0), **kwargs)  # fmt: skip
    expected = rearrange(((frames / 2 + 0.5).clamp(0, 1))[0], "c f h w -> f h w c").numpy()
    assert abs(out.frames - expected).max() <= 1e-6


def test_paper_composition_runs_three_clips_and_decodes():
    pipe = tiny_ltx(0, released_scheduler())
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=1, progress=False)
    clips = []
    result = LongVideoPipeline(LTXFamily(pipe))(sampler=sampler, num_clips=3, output_type="np",
                                                generator=torch.Generator().manual_seed(0),
                                                on_clip=clips.append, **call_kwargs())  # fmt: skip
    latent_frames, t = (FRAMES - 1) // 4 + 1, 4
    assert result.frames.shape == (1 + (3 * latent_frames - 1) * t, SIZE, SIZE, 3)
    assert result.latent_clip_starts == [0, latent_frames, 2 * latent_frames]
    assert result.clip_starts == [0, 1 + (latent_frames - 1) * t, 1 + (2 * latent_frames - 1) * t]
    assert result.latents.shape == (1, 8, 3 * latent_frames, 8, 8)
    assert result.frames.min() >= 0.0 and result.frames.max() <= 1.0
    # clip 0 has no previous clip to follow: it is the pipeline's own result from its noise
    family = LTXFamily(pipe)
    reference = pipe(latents=family.to_pipeline_layout(clips[0].initial_noise).clone(), output_type="latent",
                     **call_kwargs()).frames  # fmt: skip
    assert torch.equal(family.to_pipeline_layout(result.latents[:, :, :latent_frames]), reference)


def test_per_clip_prompts_reach_their_clips():
    pipe = tiny_ltx(0)
    (first, first_mask), (second, second_mask) = prompt_embeds(1), prompt_embeds(2, valid=9)
    kwargs = call_kwargs(prompt_embeds=[first, second], prompt_attention_mask=[first_mask, second_mask])
    calls, clips = record_calls(pipe.transformer), []
    LongVideoPipeline(LTXFamily(pipe))(num_clips=2, generator=torch.Generator().manual_seed(0),
                                       output_type="latent", on_clip=clips.append, **kwargs)  # fmt: skip
    assert len(calls) == 2 * STEPS
    negative = kwargs["negative_prompt_embeds"]
    for i, call in enumerate(calls):  # one batched call per step: [negative, clip's prompt]
        embeds, mask = (first, first_mask) if i < STEPS else (second, second_mask)
        assert torch.equal(call["encoder_hidden_states"], torch.cat([negative, embeds]))
        assert torch.equal(call["encoder_attention_mask"][1], mask[0])
    # clip 1 is the pipeline's own result with the second prompt from clip 1's initial noise
    family = LTXFamily(pipe)
    single = call_kwargs(prompt_embeds=second, prompt_attention_mask=second_mask)
    reference = pipe(latents=family.to_pipeline_layout(clips[1].initial_noise).clone(), output_type="latent",
                     **single).frames  # fmt: skip
    assert torch.equal(family.to_pipeline_layout(clips[1].latents), reference)


def test_layouts_are_the_pipelines_packing():
    """With 2 x 2 x 2 patches the einops patterns match LTXPipeline._pack_latents / _unpack_latents."""
    pipe = tiny_ltx(0)
    pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size = 2, 2
    family = LTXFamily(pipe)
    latents = torch.randn(2, 8, 4, 6, 10)
    packed = LTXPipeline._pack_latents(latents, 2, 2)
    assert torch.equal(family.to_pipeline_layout(latents), packed)
    assert torch.equal(family.from_pipeline_layout(packed, latents.shape), latents)
    assert torch.equal(LTXPipeline._unpack_latents(packed, 2, 3, 5, 2, 2), latents)


BAD = [
    ({"num_frames": 7}, ValueError, r"4k\+1.*got 7, nearest valid: 5 or 9"),
    ({"height": 48}, ValueError, r"height must be a multiple of 32.*got 48, nearest valid: 32 or 64"),
    ({"width": 20}, ValueError, r"width must be a multiple of 32.*got 20"),
    ({"sigmas": [1.0, 0.5]}, TypeError, r"LTXPipeline does not take sigmas"),
    ({"timesteps": [900, 500]}, ValueError, r"timesteps must be None"),
    ({"prompt_attention_mask": None}, ValueError, r"prompt_attention_mask must come with prompt_embeds"),
    ({"prompt": "a corgi"}, ValueError, r"exactly one of prompt and prompt_embeds"),
    ({"prompt": "a corgi", "prompt_embeds": None, "prompt_attention_mask": None}, ValueError,
     r"prompt needs the pipeline's tokenizer"),
    ({"negative_prompt_embeds": None, "negative_prompt_attention_mask": None}, ValueError,
     r"negative_prompt \(default \"\"\) needs the pipeline's tokenizer"),
    ({"num_videos_per_prompt": 2}, ValueError, r"num_videos_per_prompt must be 1 with prompt_embeds"),
    ({"decode_timestep": 2.0}, ValueError, r"decode_timestep must be in \[0.0, 1.0\]; got 2.0"),
    ({"guidance_rescale": 1.5}, ValueError, r"guidance_rescale must be in \[0.0, 1.0\]; got 1.5"),
    ({"frame_rate": 0}, ValueError, r"frame_rate must be in"),
    ({"prompt_embeds": [prompt_embeds(1)[0]] * 3}, ValueError, r"prompt_embeds must be one Tensor .*=2"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "error", "match"), BAD)
def test_bad_input_fails_before_any_model_call(extra, error, match):
    pipe = tiny_ltx(0)
    calls = [record_calls(m) for m in (pipe.transformer, pipe.text_encoder, pipe.vae.decoder)]
    with pytest.raises(error, match=match):
        LongVideoPipeline(LTXFamily(pipe))(num_clips=2, generator=torch.Generator().manual_seed(0),
                                           output_type="latent", **call_kwargs(**extra))  # fmt: skip
    assert calls == [[], [], []]


def test_decode_noise_is_refused_with_a_timestep_conditioned_vae():
    pipe = tiny_ltx(0, timestep_conditioning=True)
    long = LongVideoPipeline(LTXFamily(pipe))
    for extra in ({"decode_timestep": 0.05}, {"decode_timestep": 0.05, "decode_noise_scale": 0.025}):
        with pytest.raises(ValueError, match=r"decode_noise_scale must be 0 .* deterministically"):
            long(num_clips=1, generator=torch.Generator().manual_seed(0), **call_kwargs(**extra))
