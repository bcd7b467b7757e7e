"""In bf16, one clip through LongVideoPipeline equals each pipeline's own loop bit for bit too: the
family denoisers return the guided output in the dtype the pipeline steps with, and the Schedule casts
around the step where the pipeline does (samplers.Schedule's step_dtype / state_dtype)."""

from __future__ import annotations

import pytest
import torch

from models.long_pipeline import LongVideoPipeline
from models.tiny_diffusers.examples import EXAMPLES, MODULES

BF16 = torch.bfloat16


@pytest.mark.parametrize("released", [False, True], ids=["tests-scheduler", "released-scheduler"])
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_one_bf16_clip_is_the_pipeline_bit_for_bit(name, released):
    scheduler = MODULES[name].released_scheduler() if released else None
    pipe, kwargs = EXAMPLES[name](0, scheduler=scheduler, dtype=BF16)
    long, noises = LongVideoPipeline.from_pipe(pipe), []
    out = long(**kwargs, num_inference_steps=3, num_clips=1, output_type="latent",
               generator=torch.Generator().manual_seed(0), on_clip=lambda c: noises.append(c.initial_noise))
    generator = torch.Generator().manual_seed(0)  # where the kit's stands when its loop starts
    torch.randn(noises[0].shape, generator=generator)  # (CogVideoXDPM draws step noise from it)
    reference = pipe(**kwargs, num_inference_steps=3, output_type="latent", generator=generator,
                     latents=long.family.to_pipeline_layout(noises[0]).clone()).frames  # fmt: skip
    assert out.latents.dtype == reference.dtype
    assert torch.equal(out.latents, long.family.from_pipeline_layout(reference, out.latents.shape))


def test_strategies_run_on_a_bf16_wan_whose_latents_turn_bf16_after_the_first_step():
    # FNR/PNS/DSG and overlap + reconstruction guidance (a gradient through the bf16 model) on latents
    # that start float32 and are bf16 from the first step on, as in WanPipeline's loop
    from samplers import DSG, FNR, PNS, ForwardOverlap, LongVideoSampler, ReconstructionGuidance

    pipe, call = EXAMPLES["wan"](0, dtype=BF16)
    runs = (([FNR(), PNS(alpha=4), DSG(beta=0.4)], 9), ([ForwardOverlap(), ReconstructionGuidance()], 7))
    for strategies, frames in runs:
        sampler = LongVideoSampler(strategies, prompt_frames=1, progress=False)
        out = LongVideoPipeline.from_pipe(pipe)(**call, num_inference_steps=3, sampler=sampler, num_clips=3,
                                                generator=torch.Generator().manual_seed(0))  # fmt: skip
        assert out.latents.dtype == BF16 and out.latents.shape[2] == frames  # overlap drops 2 x M = 1
        assert out.frames.shape == (1 + (frames - 1) * 4, 16, 16, 3)
