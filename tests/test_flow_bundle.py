"""The kit's tiny Wan (models.flow, models.training.flow): training's text path and flow-matching pair are
the pipeline's own conventions; a bundle is saved all or nothing and checked on load; one clip through
LongVideoPipeline is WanPipeline's own; the committed bundle generates offline with `vidrd generate
--model`; the training command runs end to end and refuses bad arguments before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from einops import rearrange

from benchmarks import cli
from models.data.worlds import make_world
from models.flow import (
    BUNDLED_FLOW,
    FLOW_DEFAULTS,
    FLOW_SHIFT,
    caption_embeds,
    flow_pipeline,
    flow_text_encoder,
    flow_transformer,
    flow_vae,
    load_flow,
    read_defaults,
    save_flow,
)
from models.loading import DamagedCheckpointError
from models.long_pipeline import LongVideoPipeline
from models.training.flow import FlowRecipe, flow_pair, normalise, shifted_sigmas

CAPTION = "a red circle bouncing around over stripes drifting left"


@pytest.fixture(scope="module")
def untrained():
    return flow_pipeline(flow_vae(0), flow_transformer(1), flow_text_encoder(2))


def test_training_encodes_captions_as_the_pipeline_does(untrained):
    # training and sampling must see the same embeddings: zeros past each caption's last token, padded
    # to the 512 that WanPipeline.__call__ passes (encode_prompt's own default is 226); training encodes
    # a batch of captions of different lengths at once (both without gradients, as sampling runs:
    # torch's kernels differ by ~1e-6 with them)
    pipe, captions = untrained, [CAPTION, "a blue square bouncing vertically over black", ""]
    with torch.no_grad():
        ours = caption_embeds(pipe.tokenizer, pipe.text_encoder, captions)
        theirs = [pipe.encode_prompt(c, do_classifier_free_guidance=False, device="cpu",
                                     max_sequence_length=512)[0] for c in captions]  # fmt: skip
    assert ours.shape == (3, 512, 32)
    for row, caption, reference in zip(ours, captions, theirs, strict=True):
        assert torch.allclose(row, reference[0], rtol=0, atol=2e-6)
        tokens = len(caption.split()) + 1  # the words and </s>
        assert row[tokens:].abs().max() == 0 and row[tokens - 1].abs().max() > 0


def test_training_sigmas_are_shifted_as_the_scheduler_shifts_its_own():
    scheduler = FlowMatchEulerDiscreteScheduler(shift=FLOW_SHIFT)
    scheduler.set_timesteps(10)
    # its grid: linspace from its stored sigma_max to sigma_min (the training sigmas 1..1/1000, already
    # shifted once at construction), then shifted
    sigma_min = shifted_sigmas(torch.tensor(1.0 / 1000, dtype=torch.float64))
    unshifted = torch.linspace(1.0, float(sigma_min), 10, dtype=torch.float64)
    expected = shifted_sigmas(unshifted).float()
    assert torch.allclose(scheduler.sigmas[:-1], expected, atol=1e-6)
    assert torch.allclose(scheduler.timesteps, expected * 1000, atol=1e-3)


def test_the_scheduler_step_with_the_training_target_lands_on_the_noising_path():
    # x_s = (1 - s) x0 + s e with target e - x0: FlowMatchEulerDiscreteScheduler.step from s to s'
    # with that target as the model output gives x_s' of the same x0 and e (a sign or an x0/e swap fails)
    x0 = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    noisy, t, target = flow_pair(x0, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(x0.shape, generator=g)
    sigma = shifted_sigmas(torch.rand(1, generator=g))
    assert torch.allclose(t, sigma * 1000)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)  # sigmas taken as given
    s, s_next = float(sigma), 0.4 * float(sigma)
    scheduler.set_timesteps(sigmas=[s, s_next])
    stepped = scheduler.step(target, scheduler.timesteps[0], noisy).prev_sample
    assert torch.allclose(stepped, (1 - s_next) * x0 + s_next * noise, atol=1e-5)


def test_save_and_load_round_trip_with_defaults_and_manifest(untrained, tmp_path):
    folder = save_flow(untrained, tmp_path / "bundle")
    assert read_defaults(folder) == FLOW_DEFAULTS
    loaded = load_flow(folder)
    for part in ("transformer", "vae", "text_encoder"):
        ours, theirs = getattr(untrained, part).state_dict(), getattr(loaded, part).state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(DamagedCheckpointError, match=r"transformer/diffusion_pytorch_model\.safetensors"):
        load_flow(folder)


def test_one_clip_through_long_video_pipeline_is_the_pipeline_own(untrained):
    size = {"num_frames": 9, "height": 32, "width": 32, "num_inference_steps": 3, "guidance_scale": 5.0}
    noises = []
    out = LongVideoPipeline.from_pipe(untrained)(
        CAPTION, num_clips=1, generator=torch.Generator().manual_seed(0), output_type="latent",
        on_clip=lambda clip: noises.append(clip.initial_noise), **size,
    )  # fmt: skip
    reference = untrained(CAPTION, latents=noises[0].clone(), output_type="latent", **size).frames
    assert out.latents.shape == (1, 4, 5, 8, 8)  # 9 frames: 1 + 4 latent frames after the 2x in time
    assert torch.equal(out.latents, reference)


def test_the_committed_bundle_generates_offline_with_vidrd_generate_model(tmp_path):
    out = tmp_path / "out"
    cli.main(["generate", CAPTION, "--model", str(BUNDLED_FLOW), "--clips", "2", "--steps", "2",
              "--out", str(out)])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parameters"]["pipeline"] == str(BUNDLED_FLOW)
    assert metrics["parameters"]["frames"] == FLOW_DEFAULTS.num_frames == 9
    assert metrics["frame_shape"] == [FLOW_DEFAULTS.height, FLOW_DEFAULTS.width, 3]
    # 9 pixel frames are 5 latent frames (1 + 4, time halved); two clips keep all 10 latent frames
    # (the paper's strategies drop none), which decode to 1 + 9 * 2 = 19 pixel frames
    assert metrics["latent_shape"] == [1, 4, 10, 8, 8]
    assert metrics["num_frames"] == 19 and metrics["clip_starts"] == [0, 9]
    # a model of the long world: its true videos and its classifier apply
    assert metrics["true_videos"] is not None and metrics["subject_consistency"] is not None


def test_the_training_command_trains_both_stages_and_bundles_them(tmp_path, capsys):
    from models.train_flow import main

    main(["--out", str(tmp_path / "run"), "--bundle", str(tmp_path / "bundle"), "--steps-scale", "0.002",
          "--clips", "16", "--no-progress"])  # fmt: skip
    pipe = load_flow(tmp_path / "bundle")
    assert read_defaults(tmp_path / "bundle") == FLOW_DEFAULTS
    # the statistics make the bundle-length latents the transformer trains on zero-mean, unit-variance
    # per channel (the clips they were measured on), and the pipeline's decode undoes the normalisation
    recipe = FlowRecipe(out=tmp_path / "run")
    clips = make_world("long", FLOW_DEFAULTS.num_frames).clips(64, torch.Generator().manual_seed(99))[0]
    with torch.no_grad():
        latents = pipe.vae.encode(clips).latent_dist.mean
    normalised = rearrange(normalise(latents, pipe.vae), "b c f h w -> c (b f h w)")
    assert torch.allclose(normalised.mean(1), torch.zeros(4), atol=1e-4)
    assert torch.allclose(normalised.std(1), torch.ones(4), atol=1e-4)
    decoded = LongVideoPipeline.from_pipe(pipe).family._denormalize(normalise(latents, pipe.vae))
    assert torch.allclose(decoded, latents, atol=1e-5)
    # a changed setting is not resumed silently: the transformer's checkpoint names the field
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(recipe.out), "--stages", "transformer", "--steps-scale", "0.002", "--clips", "8",
              "--no-progress"])  # fmt: skip
    assert exit_info.value.code == 1 and "clips" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--stages", "vae,decoder"], "--stages must be some of"),
    (["--stages", "transformer"], "the transformer stage needs"),
    (["--stages", "transformer,vae"], "the transformer stage needs"),
    (["--stages", "vae", "--bundle", "B"], "--bundle needs"),
    (["--steps-scale", "0"], "must be a finite number > 0"),
])  # fmt: skip
def test_the_training_command_refuses_bad_arguments_before_any_work(tmp_path, capsys, args, message):
    from models.train_flow import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "run"), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_quality_windows_cut_each_clip_into_classifier_length_pieces_with_its_caption():
    from benchmarks.model_quality import windows

    videos = torch.arange(2 * 17, dtype=torch.float32).view(2, 1, 17, 1, 1).expand(2, 3, 17, 2, 2)
    cut, captions = windows(videos, ["a", "b"], 8)
    assert cut.shape == (4, 3, 8, 2, 2) and captions == ["a", "a", "b", "b"]
    # frames 0-7 and 8-15 of each video; frame 16 is left over
    assert cut[:, 0, :, 0, 0].tolist() == [list(range(0, 8)), list(range(8, 16)), list(range(17, 25)),
                                          list(range(25, 33))]  # fmt: skip


def test_continuity_runs_a_flow_bundle_in_one_batch_with_pixel_and_latent_starts(untrained, tmp_path):
    from benchmarks.model_continuity import default_guidance, load_model, long_videos
    from samplers import LongVideoSampler
    from samplers.registry import parse_strategies

    folder = save_flow(untrained, tmp_path / "bundle")
    pipe, defaults = load_model(folder)
    assert defaults == FLOW_DEFAULTS and default_guidance(defaults) == FLOW_DEFAULTS.guidance_scale
    sampler = LongVideoSampler(parse_strategies("fnr,pns:4"), prompt_frames=2, progress=False)
    captions = [CAPTION, "a blue square bouncing vertically over black"]
    frames, latents, starts, latent_starts = long_videos(pipe, captions, sampler, 2, 0, 2, defaults,
                                                         default_guidance(defaults))  # fmt: skip
    # two clips of 5 latent frames each, kept whole: 10 latent frames, 1 + 9 * 2 = 19 pixel frames
    assert frames.shape == (2, 19, 32, 32, 3) and frames.dtype == np.uint8
    assert latents.shape == (2, 4, 10, 8, 8) and starts == [0, 9] and latent_starts == [0, 5]


def test_damaged_defaults_and_a_bundle_without_manifest_are_refused_naming_the_file(untrained, tmp_path):
    folder = save_flow(untrained, tmp_path / "bundle")
    (folder / "generation.json").write_text('{"num_frames": 9, "height": 32, "width": 32, '
                                            '"num_inference_steps": -3, "guidance_scale": 5.0}')  # fmt: skip
    with pytest.raises(ValueError, match=r"generation\.json is damaged.*num_inference_steps"):
        read_defaults(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        load_flow(folder)


def test_generate_resolves_sizes_from_the_bundle_and_flags_its_world(untrained, tmp_path):
    folder = save_flow(untrained, tmp_path / "bundle")
    parser = cli.build_parser()

    def job(*args):
        argv = ["generate", CAPTION, *args, "--out", str(tmp_path / "o")]
        return cli.job_from_args(parser.parse_args(argv))

    flow = job("--model", str(folder))
    assert (flow.frames, flow.height, flow.width, flow.steps, flow.guidance) == (9, 32, 32, 25, 5.0)
    assert flow.pipeline == folder and flow.kit_world
    given = job("--model", str(folder), "--frames", "5", "--steps", "3", "--guidance", "2")
    assert (given.frames, given.steps, given.guidance, given.height) == (5, 3, 2.0, 32)
    vidrd = job()
    assert (vidrd.frames, vidrd.steps, vidrd.guidance, vidrd.pipeline) == (8, 25, 7.5, None)
    assert vidrd.kit_world
    untrained.save_pretrained(tmp_path / "plain")  # a diffusers pipeline that is not a kit bundle
    plain = job("--pipeline", str(tmp_path / "plain"))
    assert (plain.frames, plain.height, plain.steps, plain.guidance) == (None,) * 4 and not plain.kit_world
