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

from benchmarks import cli
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
from models.training.flow import flow_pair, shifted_sigmas

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


def test_an_euler_step_with_the_training_target_stays_on_the_noising_path():
    # x_s = (1 - s) x0 + s e and target e - x0: the scheduler's step x + (s' - s) v lands on x_s'
    x0 = torch.randn(2, 4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    noisy, t, target = flow_pair(x0, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(x0.shape, generator=g)
    sigma = shifted_sigmas(torch.rand(2, generator=g))
    assert torch.allclose(t, sigma * 1000)
    assert torch.allclose(target, noise - x0)
    s = sigma.view(-1, 1, 1, 1, 1)
    assert torch.allclose(noisy, (1 - s) * x0 + s * noise, atol=1e-6)
    step = noisy + (0.25 * s - s) * target
    assert torch.allclose(step, (1 - 0.25 * s) * x0 + 0.25 * s * noise, atol=1e-5)


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
    assert metrics["parameters"]["frames"] == FLOW_DEFAULTS.num_frames == 17
    assert metrics["frame_shape"] == [FLOW_DEFAULTS.height, FLOW_DEFAULTS.width, 3]
    # 17 pixel frames are 9 latent frames (1 + 8, time halved); two clips keep all 18 latent frames
    # (the paper's strategies drop none), which decode to 1 + 17 * 2 = 35 pixel frames
    assert metrics["latent_shape"] == [1, 4, 18, 8, 8]
    assert metrics["num_frames"] == 35 and metrics["clip_starts"] == [0, 17]
    # a model of the long world: its true videos and its classifier apply
    assert metrics["true_videos"] is not None and metrics["subject_consistency"] is not None


def test_the_training_command_trains_both_stages_and_bundles_them(tmp_path):
    from models.train_flow import main

    main(["--out", str(tmp_path / "run"), "--bundle", str(tmp_path / "bundle"), "--steps-scale", "0.002",
          "--clips", "16", "--no-progress"])  # fmt: skip
    pipe = load_flow(tmp_path / "bundle")
    vae = pipe.vae.config
    # the latents the transformer trained on are normalised by the statistics the decode undoes
    assert len(vae.latents_mean) == len(vae.latents_std) == 4 and min(vae.latents_std) > 0
    assert vae.latents_mean != [0.0] * 4 and vae.latents_std != [1.0] * 4
    assert read_defaults(tmp_path / "bundle") == FLOW_DEFAULTS


@pytest.mark.parametrize(("args", "message"), [
    (["--stages", "vae,decoder"], "--stages must be some of"),
    (["--stages", "transformer"], "the transformer stage needs"),
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
    from benchmarks.model_continuity import load_model, long_videos
    from samplers import LongVideoSampler
    from samplers.registry import parse_strategies

    folder = save_flow(untrained, tmp_path / "bundle")
    pipe, defaults = load_model(folder)
    assert defaults == FLOW_DEFAULTS
    sampler = LongVideoSampler(parse_strategies("fnr,pns:4"), prompt_frames=2, progress=False)
    captions = [CAPTION, "a blue square bouncing vertically over black"]
    frames, latents, starts, latent_starts = long_videos(pipe, captions, sampler, 2, 0, 2, defaults)
    # two clips of 9 latent frames each, kept whole: 18 latent frames, 1 + 17 * 2 = 35 pixel frames
    assert frames.shape == (2, 35, 32, 32, 3) and frames.dtype == np.uint8
    assert latents.shape == (2, 4, 18, 8, 8) and starts == [0, 17] and latent_starts == [0, 9]
