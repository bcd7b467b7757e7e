"""In bf16, one clip through LongVideoPipeline equals each pipeline's own loop bit for bit too: the
family denoisers return the guided output in the dtype the pipeline steps with, and the Schedule casts
around the step where the pipeline does (samplers.Schedule's step_dtype / state_dtype)."""

from __future__ import annotations

import pytest
import torch

from models.long_pipeline import LongVideoPipeline
from models.tiny_diffusers import cogvideox, hunyuan, ltx, mochi, wan

BF16 = torch.bfloat16


def conditioning(name: str) -> dict:
    if name == "wan":
        return {"prompt_embeds": wan.prompt_embeds(1), "negative_prompt_embeds": wan.prompt_embeds(2),
                "num_frames": 9, "height": 16, "width": 16, "guidance_scale": 5.0}  # fmt: skip
    if name == "cogvideox":
        return {"prompt_embeds": cogvideox.prompt_embeds(1),
                "negative_prompt_embeds": cogvideox.prompt_embeds(2), "num_frames": 9, "height": 16,
                "width": 16, "guidance_scale": 6.0}  # fmt: skip
    if name == "hunyuan":
        return {**hunyuan.prompt_embeds(1), **hunyuan.negative_embeds(2), "true_cfg_scale": 3.0,
                "num_frames": 9, "height": 16, "width": 16, "guidance_scale": 6.0}  # fmt: skip
    module, frames, size, scale = {"mochi": (mochi, 13, 16, 4.5), "ltx": (ltx, 9, 32, 3.0)}[name]
    (pe, pm), (ne, nm) = module.prompt_embeds(1), module.prompt_embeds(2)
    return {"prompt_embeds": pe, "prompt_attention_mask": pm, "negative_prompt_embeds": ne,
            "negative_prompt_attention_mask": nm, "num_frames": frames, "height": size, "width": size,
            "guidance_scale": scale}  # fmt: skip


BUILDERS = {"wan": (wan.tiny_wan, wan), "cogvideox": (cogvideox.tiny_cogvideox, cogvideox),
            "hunyuan": (hunyuan.tiny_hunyuan, hunyuan), "mochi": (mochi.tiny_mochi, mochi),
            "ltx": (ltx.tiny_ltx, ltx)}  # fmt: skip


@pytest.mark.parametrize("released", [False, True], ids=["tests-scheduler", "released-scheduler"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_one_bf16_clip_is_the_pipeline_bit_for_bit(name, released):
    build, module = BUILDERS[name]
    pipe = build(0, scheduler=module.released_scheduler() if released else None, dtype=BF16)
    kwargs = {k: v.to(BF16) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
              for k, v in conditioning(name).items()}  # fmt: skip
    long, noises = LongVideoPipeline.from_pipe(pipe), []
    out = long(**kwargs, num_inference_steps=3, num_clips=1, output_type="latent",
               generator=torch.Generator().manual_seed(0), on_clip=lambda c: noises.append(c.initial_noise))
    generator = torch.Generator().manual_seed(0)  # where the kit's stands when its loop starts
    torch.randn(noises[0].shape, generator=generator)  # (CogVideoXDPM draws step noise from it)
    reference = pipe(**kwargs, num_inference_steps=3, output_type="latent", generator=generator,
                     latents=long.family.to_pipeline_layout(noises[0]).clone()).frames  # fmt: skip
    assert torch.equal(out.latents, long.family.from_pipeline_layout(reference, out.latents.shape))


def test_strategies_run_on_a_bf16_wan_whose_latents_turn_bf16_after_the_first_step():
    # FNR/PNS/DSG and overlap + reconstruction guidance (a gradient through the bf16 model) on latents
    # that start float32 and are bf16 from the first step on, as in WanPipeline's loop
    from samplers import DSG, FNR, PNS, ForwardOverlap, LongVideoSampler, ReconstructionGuidance

    pipe = wan.tiny_wan(0, dtype=BF16)
    call = {k: v.to(BF16) if isinstance(v, torch.Tensor) else v for k, v in conditioning("wan").items()}
    runs = (([FNR(), PNS(alpha=4), DSG(beta=0.4)], 9), ([ForwardOverlap(), ReconstructionGuidance()], 7))
    for strategies, frames in runs:
        sampler = LongVideoSampler(strategies, prompt_frames=1, progress=False)
        out = LongVideoPipeline.from_pipe(pipe)(**call, num_inference_steps=3, sampler=sampler, num_clips=3,
                                                generator=torch.Generator().manual_seed(0))  # fmt: skip
        assert out.latents.dtype == BF16 and out.latents.shape[2] == frames  # overlap drops 2 x M = 1
        assert out.frames.shape == (1 + (frames - 1) * 4, 16, 16, 3)
