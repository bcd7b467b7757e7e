"""WanFamily: one clip reproduces WanPipeline's own loop (Wan 2.1, and Wan 2.2's two experts); the paper's
strategies run long videos whose streamed decode equals a whole-video decode; DSG under flow matching
replaces frames with the previous clip's mirrored latents of the same step; per-clip prompts reach their
clips; bad input is refused before any model call."""

import pytest
import torch
from diffusers import WanTransformer3DModel

from models import MemorySink, VidRDPipeline
from models.families.wan import WanFamily
from models.long_pipeline import LongVideoPipeline
from models.tiny import tiny_pipeline
from models.tiny_diffusers import wan as tiny
from samplers import DSG, FNR, PNS, LongVideoSampler
from samplers.guidance import held_frames

SCHEDULERS = {"tests": tiny.tests_scheduler, "released": tiny.released_scheduler}
SIZE = {"num_frames": 9, "height": 16, "width": 16, "num_inference_steps": 3}  # F = 3 latent frames
COND = {"prompt_embeds": tiny.prompt_embeds(1), "negative_prompt_embeds": tiny.prompt_embeds(2)}


def one_clip(pipe, **kwargs):
    """One clip with no strategy through LongVideoPipeline, and its initial noise."""
    noises = []
    out = LongVideoPipeline.from_pipe(pipe)(
        num_clips=1, generator=torch.Generator().manual_seed(0), output_type="latent",
        on_clip=lambda clip: noises.append(clip.initial_noise), **kwargs,
    )  # fmt: skip
    return out, noises[0]


@pytest.mark.parametrize("guidance_scale", [6.0, 1.0])
@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_one_clip_is_the_pipeline_bit_for_bit(scheduler, guidance_scale):
    # torch.equal: two transformer calls, cond first, u + g (c - u), set_timesteps(N) then
    # set_begin_index(0), the timestep tensor passed unchanged: every operation is the pipeline's.
    pipe = tiny.tiny_wan(0, scheduler=SCHEDULERS[scheduler]())
    kwargs = {**COND, **SIZE, "guidance_scale": guidance_scale}
    out, noise = one_clip(pipe, **kwargs)
    reference = pipe(**kwargs, latents=noise.clone(), output_type="latent").frames
    assert out.latents.shape == (1, 16, 3, 2, 2)
    assert torch.equal(out.latents, reference)


def wan22(boundary_ratio: float = 0.9):
    """The tiny Wan with a second expert (seed 1) for timesteps below boundary_ratio * 1000."""
    pipe = tiny.tiny_wan(0)
    torch.manual_seed(1)
    pipe.register_modules(transformer_2=WanTransformer3DModel(**pipe.transformer.config))
    pipe.register_to_config(boundary_ratio=boundary_ratio)
    return pipe


@pytest.mark.parametrize(("scale", "scale_2"), [(1.0, 3.0), (3.0, 1.0)])
def test_wan22_guidance_is_decided_once_as_the_pipeline_does(scale, scale_2):
    # the pipeline guides both experts when guidance_scale > 1 (the second with guidance_scale_2, even
    # if that is 1) and neither otherwise: the same bits, and no crash with only guidance_scale_2 > 1
    pipe = wan22()
    kwargs = {**COND, **SIZE, "guidance_scale": scale, "guidance_scale_2": scale_2}
    out, noise = one_clip(pipe, **kwargs)
    assert torch.equal(out.latents, pipe(**kwargs, latents=noise.clone(), output_type="latent").frames)


def test_wan22_two_experts_switch_at_the_boundary_bit_for_bit():
    pipe = wan22(0.9)  # 3 steps of shift 7: the last one is below 900
    seen = []
    for name in ("transformer", "transformer_2"):
        getattr(pipe, name).register_forward_hook(lambda m, args, kw, out, name=name: seen.append(name),
                                                  with_kwargs=True)  # fmt: skip
    kwargs = {**COND, **SIZE, "guidance_scale": 6.0, "guidance_scale_2": 3.0}
    out, noise = one_clip(pipe, **kwargs)
    kit_calls, seen[:] = list(seen), []
    reference = pipe(**kwargs, latents=noise.clone(), output_type="latent").frames
    assert torch.equal(out.latents, reference)
    assert kit_calls == seen and "transformer_2" in seen and "transformer" in seen


def paper(prompt_frames=1, beta=0.4):
    strategies = [FNR(), PNS(alpha=4), DSG(beta=beta)]
    return LongVideoSampler(strategies, prompt_frames=prompt_frames, progress=False)


def test_the_paper_composition_runs_three_clips_and_streams_the_exact_decode():
    pipe = tiny.tiny_wan(0, scheduler=tiny.released_scheduler())
    out = LongVideoPipeline.from_pipe(pipe)(**COND, **SIZE, sampler=paper(), num_clips=3, guidance_scale=6.0,
                                            generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert out.latents.shape == (1, 16, 9, 2, 2) and out.latent_clip_starts == [0, 3, 6]
    assert out.frames.shape == (1 + (9 - 1) * 4, 16, 16, 3)  # 33: 1 + (3F - 1) t
    assert out.clip_starts == [0, 1 + 2 * 4, 1 + 5 * 4]  # clip 0 gives 1 + (F-1) t frames, then F t each
    whole = WanFamily(pipe).decode_latents(out.latents)  # the whole long latent video at once
    expected = ((whole.clamp(-1, 1) + 1) / 2)[0].permute(1, 2, 3, 0).numpy()
    assert (abs(out.frames - expected)).max() == 0.0  # the cached causal decode is the whole decode


def test_dsg_under_flow_matching_replaces_frames_with_the_mirrored_previous_latents():
    pipe = tiny.tiny_wan(0)  # FlowMatchEuler: the model input is the latent itself
    inputs = []
    pipe.transformer.register_forward_pre_hook(lambda m, args, kw: inputs.append(kw["hidden_states"].clone()),
                                               with_kwargs=True)  # fmt: skip
    steps, m, beta = 6, 2, 0.5
    LongVideoPipeline.from_pipe(pipe)(**COND, **{**SIZE, "num_inference_steps": steps}, num_clips=2,
                                      sampler=paper(m, beta), guidance_scale=1.0, output_type="latent",
                                      generator=torch.Generator().manual_seed(0))  # fmt: skip
    clip0, clip1 = inputs[:steps], inputs[steps:]
    n, held = 3, 0
    for s in range(steps):
        h = held_frames(s, m, steps, beta)  # frames 0..h-1 held at step s: 2, 2, 1, 0, 0, 0
        for j in range(h):
            assert torch.equal(clip1[s][:, :, j], clip0[s][:, :, n - 1 - j]), f"step {s}, frame {j}"
        assert not torch.equal(clip1[s][:, :, h], clip0[s][:, :, n - 1 - h])
        held += h
    assert held == 5


def test_per_clip_prompts_reach_their_clips():
    pipe = tiny.tiny_wan(0)
    first, second = tiny.prompt_embeds(1), tiny.prompt_embeds(3)
    seen = []
    pipe.transformer.register_forward_pre_hook(
        lambda m, args, kw: seen.append(kw["encoder_hidden_states"].clone()), with_kwargs=True
    )
    LongVideoPipeline.from_pipe(pipe)(prompt_embeds=[first, second], **SIZE, num_clips=2,
                                      guidance_scale=1.0, output_type="latent",
                                      generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert len(seen) == 6
    assert all(torch.equal(e, first) for e in seen[:3]) and all(torch.equal(e, second) for e in seen[3:])


class _Refuse:
    def __call__(self, *args, **kwargs):
        raise AssertionError("a model was called before the input was checked")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_frames": 10}, ValueError, r"num_frames \(pixel frames per clip\) must be of the form 4k\+1.*"
                                         r"got 10, nearest valid: 9 or 13"),
        ({"height": 20}, ValueError, r"height must be a multiple of 16.*got 20, nearest valid: 16 or 32"),
        ({"fps": 16}, TypeError, r"WanPipeline does not take fps; allowed: .*guidance_scale"),
        ({"num_inference_steps": 0}, ValueError, "num_inference_steps"),
        ({"guidance_scale": -1.0}, ValueError, "guidance_scale"),
        ({"prompt_embeds": [tiny.prompt_embeds(1)] * 3}, ValueError, r"prompt_embeds must be one Tensor.*"
                                                                      r"num_clips=2"),
        ({"guidance_scale_2": 3.0}, ValueError, r"guidance_scale_2 is for Wan 2.2's second expert.*got 3.0"),
        ({"prompt": "a red circle"}, ValueError, "prompt and prompt_embeds are exclusive"),
        ({"negative_prompt_embeds": None}, ValueError, r"no tokenizer or text encoder: pass prompt_embeds"),
        ({"negative_prompt_embeds": tiny.prompt_embeds(2, length=5)}, ValueError,
         r"negative_prompt_embeds must have prompt_embeds' shape \(1, 8, 32\) \(clip 0\); got \(1, 5, 32\)"),
        ({"prompt_embeds": [tiny.prompt_embeds(1), tiny.prompt_embeds(1, batch=2)],
          "negative_prompt_embeds": None, "guidance_scale": 1.0}, ValueError,
         "every clip's prompt must make the same batch; clip 0 has 1, clip 1 has 2"),
        ({"sampler": paper(prompt_frames=3)}, ValueError,
         r"prompt_frames.*counts latent frames: num_frames=9 pixel frames are 3 latent frames per clip"),
    ],
)
def test_bad_input_is_refused_before_any_model_call(kwargs, error, match):
    pipe = tiny.tiny_wan(0)
    pipe.transformer.forward = _Refuse()
    pipe.vae.decode = _Refuse()
    call = {**COND, **SIZE, "num_clips": 2, "generator": torch.Generator().manual_seed(0), **kwargs}
    with pytest.raises(error, match=match):
        LongVideoPipeline.from_pipe(pipe)(**call)


def test_from_pipe_names_the_supported_pipelines():
    with pytest.raises(TypeError, match=r"no video family for object; supported pipelines: WanPipeline, .*"
                                        r"MochiPipeline, VidRDPipeline"):  # fmt: skip
        LongVideoPipeline.from_pipe(object())


def test_vidrd_through_from_pipe_is_its_own_pipeline_for_one_clip():
    # the kit's VidRDPipeline as a family: one clip (no seam, so no decode context) equals its own call
    vidrd = tiny_pipeline(seed=0)
    assert isinstance(vidrd, VidRDPipeline)
    long = LongVideoPipeline.from_pipe(vidrd)
    call = {"num_clips": 1, "num_frames": 8, "num_inference_steps": 3, "guidance_scale": 7.5}
    out = long("a red circle moving right", generator=torch.Generator().manual_seed(0), **call)
    own = vidrd("a red circle moving right", generator=torch.Generator().manual_seed(0), return_latents=True,
                **call)  # fmt: skip
    assert torch.equal(out.latents, own.latents)
    assert (abs(out.frames * 255 - own.frames.astype("float32"))).max() <= 0.5 + 1e-3  # uint8 rounding


def test_wan22_expand_timesteps_bit_for_bit():
    # Wan 2.2 TI2V-5B's loop gives the transformer one timestep per token of the 2x2 patches (B, F h/2 w/2)
    pipe = tiny.tiny_wan(0)
    pipe.register_to_config(expand_timesteps=True)
    seen = []
    pipe.transformer.register_forward_pre_hook(lambda m, args, kw: seen.append(kw["timestep"].shape),
                                               with_kwargs=True)  # fmt: skip
    kwargs = {**COND, **SIZE, "guidance_scale": 6.0}
    out, noise = one_clip(pipe, **kwargs)
    assert seen[0] == (1, 3 * 1 * 1)  # F = 3 latent frames of 2 x 2: one 2x2 patch each
    assert torch.equal(out.latents, pipe(**kwargs, latents=noise.clone(), output_type="latent").frames)


def test_a_bare_video_transformer_is_pointed_at_its_pipeline():
    from models.adapters import denoiser_for

    match = r"no adapter for WanTransformer3DModel.*LongVideoPipeline\.from_pipe"
    with pytest.raises(TypeError, match=match):
        denoiser_for(tiny.tiny_wan(0).transformer)


def test_pil_output_and_a_sink_carry_the_same_frames_as_np():
    import numpy as np

    pipe, call = tiny.tiny_wan(0), {**COND, **SIZE, "num_clips": 3, "sampler": paper(), "guidance_scale": 6.0}
    frames = LongVideoPipeline.from_pipe(pipe)(**call, generator=torch.Generator().manual_seed(0)).frames
    pil = LongVideoPipeline.from_pipe(pipe)(**call, output_type="pil",
                                            generator=torch.Generator().manual_seed(0)).frames  # fmt: skip
    as_uint8 = (frames * 255).round().astype(np.uint8)
    assert len(pil) == 33 and pil[0].size == (16, 16)
    assert all(np.array_equal(np.asarray(image), f) for image, f in zip(pil, as_uint8, strict=True))
    sink = MemorySink()
    out = LongVideoPipeline.from_pipe(pipe)(**call, sink=sink, generator=torch.Generator().manual_seed(0))
    assert out.frames is None and [w.shape[0] for w in sink.clips] == [9, 12, 12]  # one clip per write
    assert abs(np.concatenate(sink.clips).astype(int) - as_uint8.astype(int)).max() <= 1  # rounding


def test_a_sink_is_refused_where_it_would_lose_frames():
    from models.long_pipeline import PipelineInputError

    pipe, sink = tiny.tiny_wan(0), MemorySink()
    with pytest.raises(ValueError, match="sink takes decoded frames; with output_type='latent'"):
        LongVideoPipeline.from_pipe(pipe)(**COND, **SIZE, sink=sink, output_type="latent",
                                          generator=torch.Generator())  # fmt: skip
    batch = {"prompt_embeds": tiny.prompt_embeds(1, batch=2),
             "negative_prompt_embeds": tiny.prompt_embeds(2, batch=2)}
    with pytest.raises(PipelineInputError, match="sink takes one video; this call makes 2"):
        LongVideoPipeline.from_pipe(pipe)(**batch, **SIZE, sink=sink, generator=torch.Generator())
    assert sink.clips == []


def test_wan22_takes_one_timestep_per_frame_through_its_tokens():
    # With expand_timesteps each token of frame j gets frame j's timestep, so FIFO can drive Wan 2.2; all
    # frames at one timestep is the shared timestep bit for bit; Wan 2.1 (one timestep per video) and
    # frames straddling 2.2's expert boundary are refused.
    from models.families.wan import WanDenoiser
    from samplers import FIFO

    pipe = tiny.tiny_wan(0)
    assert not WanDenoiser(pipe, 6.0, None).frame_timesteps
    pipe.register_to_config(expand_timesteps=True)
    denoiser = WanDenoiser(pipe, 6.0, None)
    assert denoiser.frame_timesteps
    seen = []
    pipe.transformer.register_forward_pre_hook(lambda m, args, kw: seen.append(kw["timestep"].clone()),
                                               with_kwargs=True)  # fmt: skip
    latents = torch.randn((1, 16, 3, 4, 4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        shared = denoiser(latents, torch.tensor(700.0), **COND)
        equal = denoiser(latents, torch.tensor([700.0, 700.0, 700.0]), **COND)
        denoiser(latents, torch.tensor([900.0, 500.0, 100.0]), **COND)
    assert torch.equal(shared, equal)
    # 4x4 latents: 2x2 patches, 4 tokens per frame, frame-major
    assert seen[-1].tolist() == [[900.0] * 4 + [500.0] * 4 + [100.0] * 4]
    with pytest.raises(ValueError, match=r"timestep must be one number, \(F,\) or \(B, F\) = \(1, 3\)"):
        denoiser(latents, torch.tensor([1.0, 2.0]), **COND)
    two = WanDenoiser(pipe, 6.0, 6.0)
    two.boundary = 600.0
    with pytest.raises(ValueError, match=r"straddle Wan 2\.2's expert boundary 600"):
        two(latents, torch.tensor([900.0, 500.0, 100.0]), **COND)
    # two videos, each frame of each at its own timestep: the (B, F) rows go to their videos' tokens
    pair = {"prompt_embeds": tiny.prompt_embeds(1, batch=2),
            "negative_prompt_embeds": tiny.prompt_embeds(2, batch=2)}  # fmt: skip
    rows = torch.tensor([[900.0, 500.0, 100.0], [1.0, 2.0, 3.0]])
    with torch.no_grad():
        denoiser(torch.cat([latents, latents]), rows, **pair)
    assert seen[-1].tolist() == [[900.0] * 4 + [500.0] * 4 + [100.0] * 4, [1.0] * 4 + [2.0] * 4 + [3.0] * 4]
    video = FIFO(3, 1).sample(denoiser, pipe.scheduler, (1, 16, 5, 2, 2), torch.Generator().manual_seed(0),
                              **COND)  # fmt: skip
    assert video.latents.shape == (1, 16, 5, 2, 2) and torch.isfinite(video.latents).all()
