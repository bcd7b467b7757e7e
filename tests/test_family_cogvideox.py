"""The CogVideoX family against diffusers' own CogVideoXPipeline (tiny random models, offline)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from models.families.cogvideox import CogVideoXFamily
from models.long_pipeline import LongVideoPipeline
from models.tiny_diffusers import cogvideox as tiny
from models.tiny_diffusers.cogvideox import prompt_embeds, released_scheduler, tiny_cogvideox
from samplers import DSG, FNR, PNS, GuidanceExactnessWarning, LongVideoSampler

SIZE = {"height": 16, "width": 16, "num_inference_steps": 3}


def run_kit(pipe, num_clips=1, sampler=None, output_type="latent", **kwargs):
    """The family's long pipeline with generator seed 0; returns the result and the finished clips."""
    clips = []
    result = LongVideoPipeline(CogVideoXFamily(pipe))(
        sampler=sampler, num_clips=num_clips, generator=torch.Generator().manual_seed(0),
        output_type=output_type, on_clip=clips.append, **{**SIZE, **kwargs},
    )  # fmt: skip
    return result, clips


def run_pipeline(pipe, noise, output_type="latent", **kwargs):
    """The pipeline's own loop from the kit's initial noise (B, C, F, h, w); its result in the kit's layout
    for latents. Its generator is seed 0 advanced past that noise, as the kit's is when the loop starts:
    CogVideoXDPMScheduler's steps draw their noise from it."""
    family = CogVideoXFamily(pipe)
    generator = torch.Generator().manual_seed(0)
    torch.randn(noise.shape, generator=generator)
    frames = pipe(latents=family.to_pipeline_layout(noise).clone(), generator=generator,
                  output_type=output_type, **{**SIZE, **kwargs}).frames  # fmt: skip
    return family.from_pipeline_layout(frames, noise.shape) if output_type == "latent" else frames


CASES = [  # (variant, scheduler, num_frames, extra keywords)
    ("2b", tiny.tests_scheduler, 9, {"guidance_scale": 6.0}),
    ("2b", tiny.tests_scheduler, 9, {"guidance_scale": 1.0}),
    ("2b", released_scheduler, 9, {"guidance_scale": 6.0}),
    ("2b", released_scheduler, 9, {"guidance_scale": 1.0}),
    ("2b", released_scheduler, 9, {"guidance_scale": 6.0, "use_dynamic_cfg": True}),
    ("5b", lambda: released_scheduler(dpm=True), 9, {"guidance_scale": 6.0, "use_dynamic_cfg": True}),
    ("5b", tiny.tests_scheduler, 9, {"guidance_scale": 6.0}),
    ("1.5", released_scheduler, 5, {"guidance_scale": 6.0}),
    ("1.5", lambda: released_scheduler(dpm=True), 5, {"guidance_scale": 1.0}),
]


@pytest.mark.parametrize(("variant", "scheduler", "num_frames", "extra"), CASES)
def test_one_clip_is_the_pipelines_loop(variant, scheduler, num_frames, extra):
    # torch.equal: the family batches exactly as the pipeline does (one call on [uncond, cond], the
    # output cast to float32, u + g (c - u)), so nothing may differ, not even rounding.
    pipe = tiny_cogvideox(0, scheduler=scheduler(), variant=variant)
    conds = {"prompt_embeds": prompt_embeds(1), "num_frames": num_frames, **extra}
    if extra["guidance_scale"] > 1:
        conds["negative_prompt_embeds"] = prompt_embeds(2)
    result, clips = run_kit(pipe, **conds)
    reference = run_pipeline(pipe, clips[0].initial_noise, **conds)
    assert result.latents.shape == (1, 4, (num_frames - 1) // 4 + 1, 2, 2)
    assert torch.equal(result.latents, reference)


def test_one_clip_decodes_as_the_pipeline():
    # The pipeline's postprocessing writes x / 2 + 0.5, the kit (x + 1) / 2: equal up to float32 rounding
    # (bit-equal on this case today; the tolerance allows the one-ulp difference the formulas may make).
    pipe = tiny_cogvideox(0, scheduler=released_scheduler())
    conds = {"prompt_embeds": prompt_embeds(1), "negative_prompt_embeds": prompt_embeds(2), "num_frames": 9}
    result, clips = run_kit(pipe, output_type="np", **conds)
    reference = run_pipeline(pipe, clips[0].initial_noise, output_type="np", **conds)[0]
    assert result.frames.shape == reference.shape == (9, 16, 16, 3)
    np.testing.assert_allclose(result.frames, reference, rtol=0, atol=1e-6)


def test_paper_composition_makes_three_clips_and_decodes():
    pipe = tiny_cogvideox(0, scheduler=released_scheduler())
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=1, progress=False)
    num_frames, latent_frames, t = 9, 3, 4
    result, _ = run_kit(pipe, num_clips=3, sampler=sampler, output_type="np", num_frames=num_frames,
                        prompt_embeds=prompt_embeds(1), negative_prompt_embeds=prompt_embeds(2))  # fmt: skip
    assert result.frames.shape == (1 + (3 * latent_frames - 1) * t, 16, 16, 3)  # 33 frames
    assert np.isfinite(result.frames).all()
    assert result.latents.shape == (1, 4, 3 * latent_frames, 2, 2)
    assert result.latent_clip_starts == [0, latent_frames, 2 * latent_frames]
    first = 1 + (latent_frames - 1) * t  # the first clip decodes to 9 frames, each later one to F t = 12
    assert result.clip_starts == [0, first, first + latent_frames * t]


def test_dpm_scheduler_warns_that_guidance_is_not_exact():
    # CogVideoXDPMScheduler extrapolates from the previous step's x0 estimate: DSG's replacement warns.
    pipe = tiny_cogvideox(0, scheduler=released_scheduler(dpm=True))
    sampler = LongVideoSampler([DSG(beta=0.4)], prompt_frames=1, progress=False)
    with pytest.warns(GuidanceExactnessWarning):
        run_kit(pipe, num_clips=2, sampler=sampler, num_frames=9, prompt_embeds=prompt_embeds(1),
                guidance_scale=1.0)  # fmt: skip


def test_per_clip_prompts_reach_their_clips():
    pipe = tiny_cogvideox(0, scheduler=released_scheduler())
    seen = []
    forward = pipe.transformer.forward
    pipe.transformer.forward = lambda *a, **k: (seen.append(k["encoder_hidden_states"]), forward(*a, **k))[1]
    first, second, negative = prompt_embeds(1), prompt_embeds(3), prompt_embeds(2)
    result, clips = run_kit(pipe, num_clips=2, num_frames=9, prompt_embeds=[first, second],
                            negative_prompt_embeds=negative)  # fmt: skip
    steps = SIZE["num_inference_steps"]
    assert len(seen) == 2 * steps
    assert all(torch.equal(e, torch.cat([negative, first])) for e in seen[:steps])
    assert all(torch.equal(e, torch.cat([negative, second])) for e in seen[steps:])
    pipe.transformer.forward = forward
    reference = run_pipeline(pipe, clips[1].initial_noise, num_frames=9, prompt_embeds=second,
                             negative_prompt_embeds=negative)  # fmt: skip
    assert torch.equal(result.latents[:, :, 3:], reference)


@pytest.fixture
def untouchable():
    """The tiny pipeline with every model call made an error: the checks must come first."""
    pipe = tiny_cogvideox(0)

    def called(*args, **kwargs):
        raise AssertionError("a model was called before the inputs were checked")

    for model in (pipe.transformer, pipe.vae, pipe.text_encoder):
        model.forward = called
    pipe.vae.decode = called
    return pipe


GOOD = {"prompt_embeds": prompt_embeds(1), "negative_prompt_embeds": prompt_embeds(2), "num_frames": 9}


@pytest.mark.parametrize(
    ("changes", "error", "pattern"),
    [
        ({"num_frames": 10}, ValueError, r"num_frames.*4k\+1.*got 10.*nearest valid: 9 or 13"),
        ({"height": 24}, ValueError, r"height must be a multiple of 16.*got 24.*16 or 32"),
        ({"width": 8}, ValueError, r"width must be a multiple of 16.*got 8"),
        ({"cfg_scale": 2.0}, TypeError, r"does not take cfg_scale; allowed: .*guidance_scale"),
        ({"num_inference_steps": 0}, ValueError, r"num_inference_steps"),
        ({"guidance_scale": -1.0}, ValueError, r"guidance_scale"),
        ({"timesteps": [999, 500]}, ValueError, r"timesteps must be None"),
        ({"eta": 0.5}, ValueError, r"eta must be 0.0"),
        ({"num_videos_per_prompt": 2}, ValueError, r"num_videos_per_prompt must be 1"),
        ({"use_dynamic_cfg": 1}, TypeError, r"use_dynamic_cfg must be a bool"),
        ({"prompt_embeds": prompt_embeds(1, length=8)}, ValueError, r"prompt_embeds must have the shape "
         r"\(B, 16, 32\).*exactly 16 text tokens.*got \(1, 8, 32\)"),
        ({"negative_prompt_embeds": None}, ValueError, r"no tokenizer.*negative_prompt_embeds"),
        ({"prompt": "a corgi"}, ValueError, r"pass prompt or prompt_embeds, not both"),
        ({"prompt_embeds": [prompt_embeds(1)] * 3}, ValueError, r"prompt_embeds must be one Tensor for every "
         r"clip or a list of num_clips=2"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_any_model_call(untouchable, changes, error, pattern):
    with pytest.raises(error, match=pattern):
        run_kit(untouchable, num_clips=2, **{**GOOD, **changes})


def test_cogvideox_15_frame_counts_must_fill_its_temporal_patches(untouchable):
    pipe = tiny_cogvideox(0, variant="1.5")
    family = CogVideoXFamily(pipe)
    assert family.latent_frames(13) == 4
    with pytest.raises(ValueError, match=r"patch_size_t=2.*8k\+5.*got 9 \(3 latent frames\).*5 or 13"):
        family.latent_frames(9)
    with pytest.raises(ValueError, match=r"at most 16 and 16.*got 16 and 32"):
        family.latent_size(16, 32)


def test_layouts_round_trip():
    family = CogVideoXFamily(tiny_cogvideox(0))
    latents = torch.randn(2, 4, 3, 2, 5)
    pipeline = family.to_pipeline_layout(latents)
    assert pipeline.shape == (2, 3, 4, 2, 5)
    assert torch.equal(pipeline[:, 1], latents[:, :, 1])
    assert torch.equal(family.from_pipeline_layout(pipeline, latents.shape), latents)


def test_decode_counts_frames_as_the_kit_does():
    # The VAE decodes an even number n of latent frames to 4n frames; the family returns 1 + (n - 1) 4,
    # the last frames of that decode.
    family = CogVideoXFamily(tiny_cogvideox(0))
    latents = torch.randn(1, 4, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        frames = family.decode_latents(latents)
        whole = family.pipe.vae.decode(latents / family.pipe.vae_scaling_factor_image).sample
    assert frames.shape == (1, 3, 13, 16, 16)
    assert torch.allclose(frames, whole[:, :, 3:], atol=1e-6)


def test_no_warnings_with_the_released_ddim_and_the_paper_composition():
    pipe = tiny_cogvideox(0, scheduler=released_scheduler())
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GuidanceExactnessWarning)
        run_kit(pipe, num_clips=2, sampler=sampler, num_frames=9, prompt_embeds=prompt_embeds(1),
                guidance_scale=1.0)  # fmt: skip
