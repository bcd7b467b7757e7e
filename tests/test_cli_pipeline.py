"""`vidrd generate --pipeline PATH` on a tiny WanPipeline the tests save themselves (with a word-level
tokenizer built offline): the same outputs as with a VidRD model, the same run as LongVideoPipeline's,
and bad folders or frame counts refused with a message and no file written."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import cli
from benchmarks.metrics import seam_jump_ratio
from models.long_pipeline import LongVideoPipeline
from models.tiny_diffusers.tokenizer import word_tokenizer
from models.tiny_diffusers.wan import tiny_wan
from samplers import LongVideoSampler
from samplers.registry import parse_strategies

PROMPT = "a red circle moving right"
ARGS = ["--clips", "2", "--frames", "9", "--height", "16", "--width", "16", "--steps", "2",
        "--prompt-frames", "1", "--strategies", "fnr,pns:4,dsg:0.4", "--guidance", "5"]  # fmt: skip


@pytest.fixture(scope="module")
def wan_folder(tmp_path_factory):
    pipe = tiny_wan(0)
    pipe.register_modules(tokenizer=word_tokenizer())
    folder = tmp_path_factory.mktemp("pipelines") / "tiny-wan"
    pipe.save_pretrained(folder)
    return folder


def test_generate_with_a_saved_diffusers_pipeline(wan_folder, tmp_path, capsys):
    out = tmp_path / "out"
    cli.main(["generate", PROMPT, "--pipeline", str(wan_folder), *ARGS, "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.png", "metrics.json", "video.mp4"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clip_starts"] == [0, 9]  # pixel frames: clip 0 is 1 + 2*4, then 3*4
    assert metrics["num_frames"] == 21 and metrics["latent_shape"] == [1, 16, 6, 2, 2]
    assert metrics["parameters"]["pipeline"] == str(wan_folder)
    # the same run as LongVideoPipeline's with the same seed: the same latents, so the same latent metric
    from diffusers import DiffusionPipeline

    long = LongVideoPipeline.from_pipe(DiffusionPipeline.from_pretrained(wan_folder, local_files_only=True))
    sampler = LongVideoSampler(parse_strategies("fnr,pns:4,dsg:0.4"), prompt_frames=1, progress=False)
    direct = long(PROMPT, sampler=sampler, num_clips=2, num_frames=9, height=16, width=16,
                  num_inference_steps=2, guidance_scale=5.0, output_type="latent",
                  generator=torch.Generator().manual_seed(0))  # fmt: skip
    expected = seam_jump_ratio(direct.latents, direct.latent_clip_starts)
    assert metrics["latent_metrics"]["seam_jump_ratio"] == pytest.approx(expected, rel=1e-9)
    assert "generated 21 frames in 2 clips" in capsys.readouterr().out


def test_a_frame_count_the_vae_cannot_take_is_an_error_without_outputs(wan_folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = [a if a != "9" else "10" for a in ARGS]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", PROMPT, "--pipeline", str(wan_folder), *args, "--out", str(out)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "num_frames (pixel frames per clip) must be of the form 4k+1" in err and "9 or 13" in err
    assert "Traceback" not in err and not out.exists()


def test_unsupported_or_missing_pipeline_folders_are_usage_errors(tmp_path, capsys):
    other = tmp_path / "sd"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    supported = "holds a StableDiffusionPipeline; supported: WanPipeline, CogVideoXPipeline"
    for folder, match in ((other, supported), (tmp_path / "none", "with model_index.json")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["generate", PROMPT, "--pipeline", str(folder), "--out", str(tmp_path / "out")])
        assert exit_info.value.code == 2 and match in capsys.readouterr().err


def test_resume_is_refused_with_a_pipeline(wan_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", PROMPT, "--pipeline", str(wan_folder), *ARGS, "--resume",
                  "--out", str(tmp_path)])  # fmt: skip
    assert exit_info.value.code == 2 and "resume is for VidRD models" in capsys.readouterr().err
