"""`vidrd generate` (benchmarks/cli.py) with an untrained tiny VidRD saved to a temporary folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from benchmarks import cli, pixel_metrics
from benchmarks.classifier import CLASSIFIERS, load_classifier
from benchmarks.cli_compare import SeamFrames
from benchmarks.metrics import mirror_correlation, seam_jump_ratio
from benchmarks.streaming import latent_metrics
from benchmarks.subject_consistency import SubjectConsistency
from benchmarks.temporal_quality import temporal_quality
from benchmarks.true_reference import true_reference
from models.bundled import load_pipeline, save_pipeline
from models.contact_sheet import CELL_RGB, SEAM_RGB, contact_sheet_array
from models.text import WordEncoder
from models.tiny import tiny_pipeline
from models.video_io import to_uint8_frames
from samplers import LongVideoSampler
from samplers.registry import parse_strategies

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OUTPUTS = ("video.mp4", "contact_sheet.png", "metrics.json")


def generate(model: Path, out: Path, *extra: str, prompt: str = "a red circle moving right") -> None:
    cli.main(["generate", prompt, "--model", str(model), "--out", str(out), "--clips", "3", "--frames", "4",
              "--prompt-frames", "2", "--steps", "2", *extra])  # fmt: skip


def usage_error(capsys, match: str, model: Path, out: Path, *extra: str, **kwargs: str) -> None:
    """`generate` exits as argparse does on a usage error (status 2, no traceback), `match` in stderr."""
    with pytest.raises(SystemExit) as exit_info:
        generate(model, out, *extra, **kwargs)
    assert exit_info.value.code == 2
    assert re.search(match, capsys.readouterr().err)


def independent_run(
    model: Path,
    clips: int,
    frames: int,
    prompt_frames: int,
    steps: int,
    strategies: str = "fnr,pns:4,dsg:0.4",
    prompt: str = "a red circle moving right",
):
    """(latents, frames) of the pipeline run by hand as `vidrd generate` runs it (guidance 7.5, seed 0)."""
    pipe = load_pipeline(model)
    sampler = LongVideoSampler(parse_strategies(strategies), prompt_frames, progress=False)
    out = pipe(prompt, sampler=sampler, num_clips=clips, num_frames=frames, num_inference_steps=steps,
               guidance_scale=7.5, generator=torch.Generator().manual_seed(0),
               return_latents=True)  # fmt: skip
    return out.latents, out.frames


def test_generate_writes_video_contact_sheet_and_metrics(model, tmp_path, capsys):
    out = tmp_path / "out"
    generate(model, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # no temporary file left behind
    assert iio.imread(out / "video.mp4").shape == (12, 32, 32, 3)
    assert (out / "contact_sheet.png").read_bytes()[:8] == PNG_SIGNATURE
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"parameters", "strategies", "clip_starts", "latent_metrics", "pixel_metrics", "timing"} <= set(
        metrics
    )
    assert metrics["clip_starts"] == [0, 4, 8] and metrics["num_frames"] == 12
    assert metrics["parameters"]["clips"] == 3 and metrics["parameters"]["steps"] == 2
    assert [s["name"] for s in metrics["strategies"]] == ["FNR", "PNS", "DSG"]
    # Every metric recomputed from an independent run of the same pipeline, sampler and seed: the latents
    # it decoded (seam-jump; mirror correlation with skip = M = 2) and its frames (the centroid metrics).
    latents, frames = independent_run(model, clips=3, frames=4, prompt_frames=2, steps=2)
    assert metrics["latent_shape"] == list(latents.shape) and metrics["frame_shape"] == [32, 32, 3]
    latent = metrics["latent_metrics"]
    # streamed (running sums per seam and lag) against the batch functions: equal to float rounding
    assert latent["seam_jump_ratio"] == pytest.approx(seam_jump_ratio(latents, [0, 4, 8]), rel=1e-12)
    assert latent["mirror_correlation"] == pytest.approx(mirror_correlation(latents, [0, 4, 8], skip=2),
                                                         rel=1e-12)  # fmt: skip
    skipped = mirror_correlation(latents, [0, 4, 8], skip=2) - mirror_correlation(latents, [0, 4, 8], skip=0)
    assert abs(skipped) > 1e-3  # skip matters on these latents: metrics.json's value tells which was used
    assert latent["mirror_correlation_skip"] == 2 and latent["reasons"] == {}
    pixel = metrics["pixel_metrics"]
    expected = pixel_metrics.summary(frames, [0, 4, 8], saturation=pixel_metrics.SHAPE_SATURATION)
    assert pixel == json.loads(json.dumps(cli.json_safe(expected)))
    assert len(pixel["centroid_track"]) == 12 and len(pixel["velocity_jump_per_seam"]) == 2
    # streamed clip by clip, the temporal quality is that of the whole video at once
    quality = json.loads(json.dumps(cli.json_safe(temporal_quality(frames))))
    assert metrics["temporal_quality"] == pytest.approx(quality, rel=1e-12)
    subject = SubjectConsistency(load_classifier(CLASSIFIERS["shapes"]))  # the clip world's caption
    for start in (0, 4, 8):
        subject.update(frames[start : start + 4], start)
    assert metrics["subject_consistency"] == {"value": pytest.approx(subject.result(), rel=1e-9),
                                              "classifier": "shapes"}  # fmt: skip
    timing = metrics["timing"]
    assert timing["seconds_total"] >= timing["seconds_generation"] > 0
    assert timing["frames_per_second"] == 12 / timing["seconds_generation"]
    printed = capsys.readouterr().out
    assert all(str(out / name) in printed for name in OUTPUTS) and "seam-jump ratio" in printed


def test_a_long_world_caption_gets_its_true_videos_as_reference(model, tmp_path):
    caption = "a red circle bouncing sideways over stripes drifting left"
    generate(model, tmp_path / "world", prompt=caption)
    metrics = json.loads((tmp_path / "world" / "metrics.json").read_text())
    expected = true_reference(caption, 12, [0, 4, 8], seed=0)
    assert metrics["true_videos"] == json.loads(json.dumps(cli.json_safe(expected)))
    generate(model, tmp_path / "clip", prompt="a red circle moving right")  # not a long-world caption
    assert json.loads((tmp_path / "clip" / "metrics.json").read_text())["true_videos"] is None


def test_same_seed_same_video_and_gif_with_dropped_prompt_frames(model, tmp_path):
    generate(model, tmp_path / "a", "--clips", "2", "--format", "gif", "--drop-prompt-frames")
    generate(model, tmp_path / "b", "--clips", "2", "--format", "gif", "--drop-prompt-frames")
    video = iio.imread(tmp_path / "a" / "video.gif")
    assert video.shape[0] == 4 + 2  # clip 1 keeps N - M frames
    assert np.array_equal(video, iio.imread(tmp_path / "b" / "video.gif"))
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["clip_starts"] == [0, 4]
    latent = metrics["latent_metrics"]  # clip 1 has 2 frames: no offset j >= skip=2 fits beside the seam
    assert latent["mirror_correlation"] is None and "skip=2" in latent["reasons"]["mirror_correlation"]


@pytest.mark.parametrize(
    ("flags", "match"),
    [
        (["--clips", "0"], "clips"),
        (["--steps", "0"], "steps"),
        (["--guidance", "-1"], "guidance"),
        (["--guidance", "nan"], "guidance"),
        (["--frames", "1"], "frames"),
        (["--prompt-frames", "4"], "prompt_frames"),  # N = 4
        (["--fps", "0"], "fps"),
        (["--seed", "-1"], "seed"),
        (["--threads", "0"], "threads"),
        (["--strategies", "fnr,warp"], "strategy"),
        (["--strategies", "pns:-1"], "alpha"),
        (["--strategies", " , "], "strategies"),
    ],
)
def test_bad_inputs_raise_before_any_file_is_written(model, tmp_path, flags, match, capsys):
    usage_error(capsys, match, model, tmp_path / "out", *flags)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("prompt", "match"),
    [("", "prompt"), ("   ", "prompt"), ("a | | b", "prompt"), ("a red circle | a blue square", "clips=3")],
)
def test_bad_prompts_raise(model, tmp_path, prompt, match, capsys):
    usage_error(capsys, match, model, tmp_path / "out", prompt=prompt)
    assert not (tmp_path / "out").exists()


def test_out_and_model_must_be_usable_folders(model, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    usage_error(capsys, "out must be a folder", model, blocker / "out")
    usage_error(capsys, "model", tmp_path / "no-model", tmp_path / "out")
    broken = save_pipeline(tiny_pipeline(seed=0), tmp_path / "broken")
    (broken / "vae" / "config.json").unlink()
    usage_error(capsys, r"vae/config\.json is missing", broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags", [["--clips", "two"], ["--format", "avi"], ["--no-such-flag"], []])
def test_malformed_flags_exit_through_argparse(model, tmp_path, flags, capsys):
    argv = ["generate", "a red circle", "--out", str(tmp_path / "out"), *flags] if flags else []
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert not (tmp_path / "out").exists()


def test_failure_midway_leaves_previous_outputs_intact(model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    generate(model, out)
    before = {name: (out / name).read_bytes() for name in OUTPUTS}

    def failing_pipeline(path):
        pipe = load_pipeline(path)
        inner, calls = pipe.denoiser, []

        def denoiser(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:  # clip 1, step 0: clip 0 is already in the video file's temporary twin
                raise RuntimeError("denoiser failed")
            return inner(*args, **kwargs)

        pipe.denoiser = denoiser
        return pipe

    monkeypatch.setattr(cli, "load_pipeline", failing_pipeline)
    with pytest.raises(RuntimeError, match="denoiser failed"):
        generate(model, out, "--seed", "7")
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == before
    # the temporary files are gone; what the next clip needs stays, for --resume
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUTS, cli.RESUME_FOLDER])


def test_story_mode_encodes_one_prompt_per_clip(model, tmp_path, monkeypatch):
    encoded: list[list[str]] = []
    original = WordEncoder.encode

    def spy(self, prompts):
        encoded.append(list(prompts))
        return original(self, prompts)

    monkeypatch.setattr(WordEncoder, "encode", spy)
    generate(model, tmp_path / "out", prompt="a red circle | a blue square  |a green triangle")
    assert ["a red circle", "a blue square", "a green triangle"] in encoded
    assert [""] in encoded  # the negative prompt
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["parameters"]["prompts"] == ["a red circle", "a blue square", "a green triangle"]


def test_the_pipeline_returns_and_streams_the_latents_it_decoded(model):
    pipe, clips = load_pipeline(model), []
    out = pipe("a red circle", sampler=LongVideoSampler(parse_strategies("fnr,dsg:0.4"), 2, progress=False),
               num_clips=2, num_frames=4, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
               on_clip=clips.append, return_latents=True)  # fmt: skip
    assert out.latents.shape == (1, 4, 8, 8, 8) and out.clip_starts == [0, 4]
    with torch.no_grad():
        decoded = to_uint8_frames(pipe.vae.decode(out.latents))[0]
    np.testing.assert_array_equal(decoded, out.frames)
    assert [c.index for c in clips] == [0, 1] and [c.start for c in clips] == [0, 4]
    torch.testing.assert_close(out.latents, torch.cat([c.latents for c in clips], 2), rtol=0, atol=0)


def test_latent_metrics_use_skip_equal_to_the_prompt_frames():
    # Two clips of 4 frames; clip 1 mirrors clip 0 in its first 2 frames (offsets j < 2) and is independent
    # beyond. With skip = 2 the mirror correlation is that of independent noise (768 pairs: standard error
    # 0.036); skip = 0 would pool the mirrored half too (~0.5).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, 8, generator=g, dtype=torch.float64)
    x[:, :, 4:6] = x[:, :, 2:4].flip(2)
    got = latent_metrics(x, [0, 4], skip=2)
    left, right = x[:, :, [1, 0]].flatten().numpy(), x[:, :, [6, 7]].flatten().numpy()  # j = 2, 3
    assert got["mirror_correlation"] == pytest.approx(np.corrcoef(left, right)[0, 1], rel=1e-12)
    assert got["mirror_correlation"] == pytest.approx(mirror_correlation(x, [0, 4], skip=2), rel=1e-12)
    assert abs(got["mirror_correlation"]) < 0.2 and mirror_correlation(x, [0, 4], skip=0) > 0.3
    sq = (x[:, :, 1:] - x[:, :, :-1]).pow(2).mean(dim=(0, 1, 3, 4))  # pair (f, f + 1); the seam is f = 3
    assert got["seam_jump_ratio"] == pytest.approx(float(sq[3] / sq[[0, 1, 2, 4, 5, 6]].mean()), rel=1e-12)
    assert got["mirror_correlation_skip"] == 2 and got["reasons"] == {}
    short = latent_metrics(x, [0, 6], skip=2)  # clip 1 has 2 frames: no offset j >= 2 beside the seam
    assert short["mirror_correlation"] is None and "skip=2" in short["reasons"]["mirror_correlation"]
    assert short["seam_jump_ratio"] == pytest.approx(seam_jump_ratio(x, [0, 6]), rel=1e-12)


def test_contact_sheet_marks_the_first_frame_after_each_seam():
    frames = np.zeros((7, 4, 4, 3), dtype=np.uint8)  # clips of 4 and 3 frames
    sheet = contact_sheet_array(frames, [0, 4], pad=1)
    assert sheet.shape == (2 * 6, 4 * 6, 3)
    np.testing.assert_array_equal(sheet[0, 0], CELL_RGB)  # clip 0: no seam before it
    np.testing.assert_array_equal(sheet[6, 0], SEAM_RGB)  # clip 1, frame 0: framed in red
    np.testing.assert_array_equal(sheet[6:12, 0], np.tile(SEAM_RGB, (6, 1)))  # the red bar on its left
    np.testing.assert_array_equal(sheet[6, 6], CELL_RGB)  # clip 1, frame 1
    np.testing.assert_array_equal(sheet[7, 19], [255, 255, 255])  # past clip 1's end
    np.testing.assert_array_equal(sheet[7:11, 7:11], 0)  # a frame itself


def test_python_dash_m_runs_the_program():
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", "generate", "--help"], cwd=root, capture_output=True,
        text=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage: vidrd generate" in done.stdout and "--drop-prompt-frames" in done.stdout


def test_prompt_frames_are_dropped_where_a_strategy_duplicates_them():
    from benchmarks.cli import build_parser, job_from_args

    def job(*flags):
        args = build_parser().parse_args(["generate", "a red circle moving right", *flags])
        return job_from_args(args)

    assert job("--strategies", "fnr,pns:4,dsg:0.4").drop_prompt_frames is False  # the paper keeps them
    assert job("--strategies", "overlap,recon:0.4").drop_prompt_frames is True  # forward copies: dropped
    assert job("--strategies", "overlap", "--no-drop-prompt-frames").drop_prompt_frames is False
    assert job("--strategies", "fnr", "--drop-prompt-frames").drop_prompt_frames is True


def test_a_strategy_that_does_not_fit_the_clip_is_refused_before_loading_the_model():
    from benchmarks.cli import build_parser, job_from_args

    flags = ["--strategies", "freenoise-noise", "--model", "/nonexistent"]
    args = build_parser().parse_args(["generate", "x", *flags])
    with pytest.raises(ValueError, match=r"window must be an integer in \[4, 8\]; got 16"):
        job_from_args(args)  # FreeNoise's default window 16 > N = 8: refused before the model is looked at


def test_seam_frames_keep_both_sides_of_every_seam():
    video = np.arange(11)[:, None, None, None] * np.ones((11, 2, 2, 3), np.uint8)  # frame f is all f
    seams = SeamFrames(window=2)
    for a, b in ((0, 4), (4, 8), (8, 11)):
        seams.update(video[a:b], a)
    frames, firsts = seams.strip()
    assert frames[:, 0, 0, 0].tolist() == [2, 3, 4, 5, 6, 7, 8, 9] and firsts == [2, 6]


def test_compare_runs_each_composition_and_tabulates_their_metrics(model, tmp_path, capsys):
    caption = "a red circle bouncing sideways over black"
    generate(model, tmp_path / "cmp", "--compare", "--strategies", "overlap", prompt=caption)
    table = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    # overlap drops its duplicated prompt frames: its clips start elsewhere, so no common true row
    assert [r["run"] for r in table] == ["independent", "paper", "overlap"]
    for row, folder in zip(table, ("independent", "paper", "overlap"), strict=True):
        metrics = json.loads((tmp_path / "cmp" / folder / "metrics.json").read_text())
        assert metrics["parameters"]["seed"] == 0 and metrics["parameters"]["clips"] == 3
        assert row["velocity_jump"] == metrics["pixel_metrics"]["mean_velocity_jump"]
        assert row["mirror_correlation"] == metrics["latent_metrics"]["mirror_correlation"]
        true = true_reference(caption, metrics["num_frames"], metrics["clip_starts"])["pixel_metrics"]
        assert row["true_velocity_jump"] == pytest.approx(true["mean_velocity_jump"], rel=1e-12)
    assert table[2]["true_velocity_jump"] != table[0]["true_velocity_jump"]  # 8 frames, starts [0, 4, 6]
    generate(model, tmp_path / "same", "--compare", "--strategies", "fnr", prompt=caption)
    table = json.loads((tmp_path / "same" / "compare.json").read_text())
    assert [r["run"] for r in table] == ["independent", "paper", "fnr", "true videos (16)"]
    assert table[-1]["velocity_jump"] == table[0]["true_velocity_jump"]
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "true videos" in capsys.readouterr().out
    usage_error(capsys, "resume", model, tmp_path / "bad", "--compare", "--resume")
    with pytest.raises(SystemExit) as exit_info:  # one clip has no seam to compare
        cli.main(["generate", caption, "--model", str(model), "--out", str(tmp_path / "one"), "--clips", "1",
                  "--compare"])  # fmt: skip
    assert exit_info.value.code == 2 and "clips must be >= 2 with --compare" in capsys.readouterr().err
    assert not (tmp_path / "one").exists()
