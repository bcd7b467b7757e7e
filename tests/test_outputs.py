"""What `vidrd generate` leaves on disk: all three outputs or the old ones, the umask's modes, nothing
hidden after a failure or SIGTERM, and refusals before the model loads."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import cli
from models.video_io import MAX_FPS

OUTPUTS = ("contact_sheet.png", "metrics.json", "video.mp4")
ROOT = Path(__file__).resolve().parent.parent


def argv(model: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", "a red circle moving right", "--model", str(model), "--out", str(out),
            "--clips", "2", "--frames", "4", "--prompt-frames", "2", "--steps", "2", *extra]  # fmt: skip


def contents(folder: Path) -> dict[str, bytes]:
    """The files of `folder` (the resume folder, kept on purpose after a kill, is not one of them)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != cli.RESUME_FOLDER}


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_take_the_umask(model, tmp_path, mask, expected):
    previous = os.umask(mask)
    try:
        cli.main(argv(model, tmp_path / "out"))
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").iterdir()}
    assert modes == dict.fromkeys(OUTPUTS, expected)


def test_a_failure_on_the_last_file_leaves_all_old_outputs(model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    cli.main(argv(model, out))
    before = contents(out)

    def broken(value):
        raise RuntimeError("metrics could not be serialised")

    monkeypatch.setattr(cli, "json_safe", broken)  # after the video and the contact sheet are complete
    with pytest.raises(RuntimeError, match="serialised"):
        cli.main(argv(model, out, "--seed", "1"))
    assert contents(out) == before  # same names (no temporaries) and same bytes


def test_a_failure_leaves_no_folder_it_created(model, tmp_path, monkeypatch):
    def no_video(*args, **kwargs):  # before any clip: nothing to resume either
        raise ZeroDivisionError

    monkeypatch.setattr(cli, "VideoFileSink", no_video)
    with pytest.raises(ZeroDivisionError):
        cli.main(argv(model, tmp_path / "a" / "b"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flags", "match"), [(["--steps", "1001"], "steps must be an integer in [1, 1000]"),
                         (["--fps", str(MAX_FPS + 1)], "fps")],
)  # fmt: skip
def test_refused_before_the_model_loads(model, tmp_path, monkeypatch, capsys, flags, match):
    monkeypatch.setattr(cli, "load_pipeline", lambda path: pytest.fail("the model was loaded"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv(model, tmp_path / "out", *flags))
    assert exit_info.value.code == 2 and match in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_sigterm_mid_run_leaves_the_old_outputs_and_no_temporary(model, tmp_path):
    out = tmp_path / "out"
    cli.main(argv(model, out))
    before = contents(out)
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *argv(model, out, "--clips", "500")],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".") for p in out.iterdir()):  # the run is writing its temporaries
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert contents(out) == before


def damage(bundle: Path, how: str) -> None:
    if how == "tensor":
        from safetensors.torch import load_file, save_file

        path = bundle / "unet" / "diffusion_pytorch_model.safetensors"
        tensors = load_file(path)
        del tensors["conv_in.weight" if "conv_in.weight" in tensors else sorted(tensors)[0]]
        save_file(tensors, path)
    elif how == "key":
        path = bundle / "vae" / "config.json"
        config = json.loads(path.read_text())
        del config["vae_config"]["scaling_factor"]
        path.write_text(json.dumps(config))
    else:  # bytes flipped in the middle of the weights
        path = bundle / "text_encoder" / "diffusion_pytorch_model.safetensors"
        data = bytearray(path.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
        path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("how", "named"),
    [("tensor", "unet/diffusion_pytorch_model.safetensors: missing tensor"),
     ("key", "vae/config.json: missing key(s) vae_config.scaling_factor"),
     ("bytes", "text_encoder/diffusion_pytorch_model.safetensors")],
)  # fmt: skip
def test_a_damaged_model_exits_1_naming_the_file_and_what_is_wrong(model, tmp_path, capsys, how, named):
    bundle = tmp_path / "bundle"
    shutil.copytree(model, bundle)
    damage(bundle, how)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv(bundle, tmp_path / "out"))
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and named in err and "regenerate the bundle" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_video_file_that_cannot_be_finished_leaves_no_temporary(tmp_path):
    from models.video_io import VideoFileSink

    with pytest.raises(OSError, match="disk full"), VideoFileSink(tmp_path / "a.mp4") as sink:
        sink.write(np.zeros((2, 16, 16, 3), dtype=np.uint8))

        def full() -> None:
            raise OSError("disk full")

        sink._writer.close = full  # finishing the file fails
    assert list(tmp_path.iterdir()) == []


def test_the_resume_folder_of_a_pipeline_keeps_what_is_not_its_own(model, tmp_path):
    from models.bundled import load_pipeline
    from samplers import LongVideoSampler

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    sampler = LongVideoSampler(prompt_frames=2, progress=False)
    load_pipeline(model)("a red circle", sampler=sampler, num_clips=2, num_frames=4, num_inference_steps=1,
                         generator=torch.Generator().manual_seed(0), resume_folder=folder)  # fmt: skip
    assert [p.name for p in folder.iterdir()] == ["thesis.txt"]  # its own files gone, the user's kept
