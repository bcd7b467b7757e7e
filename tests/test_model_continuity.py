"""The model-side continuity study (benchmarks.model_continuity) on the tiny untrained pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmarks.metrics import mirror_correlation
from benchmarks.model_continuity import score_composition, summarise
from benchmarks.model_quality import decode_clips
from benchmarks.pixel_metrics import SHAPE_SATURATION, summary
from benchmarks.true_reference import true_reference
from models.data.shapes import tensor_to_frames
from models.tiny import tiny_pipeline
from samplers import LongVideoSampler
from samplers.registry import parse_strategies


def test_scores_are_each_videos_metrics_against_its_true_videos():
    pipe, captions = tiny_pipeline(seed=0), ["a red circle bouncing around over black",
                                            "a blue square bouncing vertically over stripes drifting left"]
    per_seed = score_composition(pipe, "fnr,pns:4", captions, [5], clips=3, steps=2)
    sampler = LongVideoSampler(parse_strategies("fnr,pns:4"), 2, progress=False)
    video = pipe.sample_batch(captions, torch.Generator().manual_seed(5), sampler, 8, 3, 2)
    frames = tensor_to_frames(decode_clips(pipe, video.latents, video.clip_starts))
    starts = list(video.clip_starts)
    for i, caption in enumerate(captions):
        pixel = summary(frames[i], starts, saturation=SHAPE_SATURATION)
        true = true_reference(caption, 24, starts)["pixel_metrics"]
        row = per_seed[0][i]
        assert row["jump_excess"] == pytest.approx(pixel["mean_velocity_jump"] - true["mean_velocity_jump"])
        mirror = mirror_correlation(video.latents[i : i + 1].float(), starts, skip=2)
        assert row["mirror_correlation"] == pytest.approx(mirror, rel=1e-9)


def test_summarise_by_hand():
    per_seed = [[{"x": 1.0}, {"x": 3.0}], [{"x": 5.0}, {"x": float("nan")}]]
    result = summarise(per_seed)["x"]
    assert result["mean"] == 3.0 and result["videos"] == 3 and result["per_seed"] == [2.0, 5.0]
    assert result["ci95"] == pytest.approx(1.96 * 2.0 / math.sqrt(3))


def test_a_vidrd_of_another_world_is_refused_before_any_sampling(capsys):
    from benchmarks.model_continuity import main

    with pytest.raises(SystemExit) as stop:
        main(["--seeds", "1", "--captions", "1"])  # the bundled VidRD: the clip world's words
    assert stop.value.code == 2
    assert "does not know ['around', 'black', 'bouncing'" in capsys.readouterr().err


def test_the_guidance_scale_reaches_the_sampler():
    pipe, captions = tiny_pipeline(seed=0), ["a red circle bouncing around over black"]
    sampler = LongVideoSampler(parse_strategies("pns:4"), 2, progress=False)
    mirrors = {}
    for guidance in (2.0, 7.5):
        video = pipe.sample_batch(captions, torch.Generator().manual_seed(3), sampler, 8, 3, 2, guidance)
        mirrors[guidance] = mirror_correlation(video.latents.float(), list(video.clip_starts), skip=2)
    assert mirrors[2.0] != pytest.approx(mirrors[7.5], rel=1e-3)  # the scale changes the video
    given = score_composition(pipe, "pns:4", captions, [3], clips=3, steps=2, guidance=2.0)
    default = score_composition(pipe, "pns:4", captions, [3], clips=3, steps=2)  # VIDRD_GUIDANCE = 7.5
    assert given[0][0]["mirror_correlation"] == pytest.approx(mirrors[2.0], rel=1e-9)
    assert default[0][0]["mirror_correlation"] == pytest.approx(mirrors[7.5], rel=1e-9)


def test_a_negative_guidance_is_refused_before_any_work():
    from benchmarks.model_continuity import main

    with pytest.raises(ValueError, match=r"guidance must be .*-1"):
        main(["--guidance", "-1", "--model", "/nonexistent"])


def test_prompt_frames_reach_the_sampler_and_the_mirror_skip():
    pipe, captions = tiny_pipeline(seed=0), ["a red circle bouncing around over black"]
    sampler = LongVideoSampler(parse_strategies("overlap"), 3, progress=False)
    video = pipe.sample_batch(captions, torch.Generator().manual_seed(4), sampler, 8, 3, 2)
    starts = list(video.clip_starts)
    assert starts == [0, 8, 13]  # overlap drops the M = 3 prompt frames of each later clip: 8 + 5 + 5
    row = score_composition(pipe, "overlap", captions, [4], clips=3, steps=2, prompt_frames=3)[0][0]
    mirror = mirror_correlation(video.latents.float(), starts, skip=3)
    assert row["mirror_correlation"] == pytest.approx(mirror, rel=1e-9)
    assert mirror != pytest.approx(mirror_correlation(video.latents.float(), starts, skip=2), rel=1e-3)


def test_latent_clip_frames_by_hand():
    from benchmarks.model_continuity import latent_clip_frames, load_model
    from models.flow import FlowDefaults

    assert latent_clip_frames(None, None) == 8  # a VidRD's 8-frame clips
    pipe, defaults = load_model(Path("models/weights/tiny-wan"))  # its VAE: 2x in time
    assert latent_clip_frames(pipe, defaults) == 5  # its 9 pixel frames: 2k + 1 -> k + 1 latent
    assert latent_clip_frames(pipe, FlowDefaults(num_frames=17)) == 9


def test_prompt_frames_below_one_are_refused_before_any_work():
    from benchmarks.model_continuity import main

    with pytest.raises(ValueError, match=r"prompt_frames must be .*got 0"):
        main(["--prompt-frames", "0", "--model", "/nonexistent"])


def test_a_study_records_what_it_ran_and_its_report_command_reruns_it(tmp_path):
    import json
    import shlex

    from benchmarks.model_continuity import build_parser, main, regenerate_flags
    from benchmarks.report_config import read_continuity
    from models.flow import read_defaults

    tiny_wan = "models/weights/tiny-wan"
    argv = ["--model", tiny_wan, "--seeds", "1", "--captions", "1", "--clips", "2", "--steps", "1",
            "--compositions", "independent", "--prompt-frames", "1",
            "--out", str(tmp_path / "s.json")]  # fmt: skip
    main(argv)
    study = read_continuity(tmp_path / "s.json")
    assert (study["prompt_frames"], study["steps"], study["seeds"], study["clips"]) == (1, 1, 1, 2)
    assert study["guidance"] == read_defaults(tiny_wan).guidance_scale  # the flow bundle's own
    again = build_parser().parse_args(["--model", tiny_wan, *shlex.split(regenerate_flags(study))])
    first = build_parser().parse_args(argv)
    for name in ("prompt_frames", "steps", "seeds", "captions", "clips", "compositions"):
        assert getattr(again, name) == getattr(first, name), name
    assert json.loads((tmp_path / "s.json").read_text())["table"]["independent"]["mirror_correlation"]


def test_prompt_frames_past_the_models_clip_are_refused_before_any_sampling(monkeypatch):
    import benchmarks.model_continuity as study

    monkeypatch.setattr(study, "score_composition", lambda *a, **k: pytest.fail("sampled"))
    with pytest.raises(ValueError, match=r"--prompt-frames counts latent frames.*N=5 frames; got 5"):
        study.main(["--model", "models/weights/tiny-wan", "--prompt-frames", "5"])  # its clips: 5 latent
    with pytest.raises(ValueError, match=r"N=5 frames; got 5"):
        study.check_prompt_frames(["overlap"], 5, 5, "m")
    study.check_prompt_frames(["overlap", "fnr"], 4, 5, "m")  # M = N - 1 is the largest allowed
