"""Resumable generation: the sampler's state between clips, the resume folder, and `vidrd generate
--resume` after a kill, against the uninterrupted run's bits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from diffusers import DDIMScheduler

from benchmarks import cli
from models import GaussianVideoPrior
from models.resume import ClipStore, ResumeError
from samplers import LongVideoSampler
from samplers.registry import parse_strategies
from samplers.state import Resume

ROOT = Path(__file__).resolve().parent.parent
CLIP_SHAPE = (2, 2, 8, 3, 3)


def sample(strategies: str, **kwargs):
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=3.0)
    scheduler = DDIMScheduler(clip_sample=False)
    sampler = LongVideoSampler(parse_strategies(strategies), prompt_frames=2, progress=False)
    return sampler.sample(prior.denoiser(scheduler), scheduler, CLIP_SHAPE, 5, 6, **kwargs)


@pytest.mark.parametrize(
    "strategies", ["fnr,pns:4,dsg:0.4", "overlap,recon:10", "freenoise-noise:8:stride=2"]
)
def test_resuming_from_any_clip_gives_the_uninterrupted_bits(strategies):
    clips, states = [], []
    whole = sample(strategies, generator=torch.Generator().manual_seed(3), on_clip=clips.append,
                   on_state=states.append)  # fmt: skip
    assert [s.next_clip for s in states] == [1, 2, 3, 4]  # none after the last clip: nothing follows
    for state in states:
        replayed = []
        resumed = sample(strategies, generator=torch.Generator().manual_seed(99), on_clip=replayed.append,
                         resume=Resume(state, clips[: state.next_clip]))  # fmt: skip
        assert torch.equal(resumed.latents, whole.latents)
        assert resumed.clip_starts == whole.clip_starts
        assert [c.index for c in replayed] == list(range(5))  # the finished clips are streamed out again


def test_a_resume_that_does_not_fit_the_run_is_refused_before_any_work():
    states, clips = [], []
    sample("fnr,pns:4,dsg:0.4", generator=torch.Generator().manual_seed(0), on_state=states.append,
           on_clip=clips.append)  # fmt: skip
    with pytest.raises(ValueError, match=r"resume\.clips must hold the 2 finished clips"):
        sample("fnr,pns:4,dsg:0.4", generator=torch.Generator(), resume=Resume(states[1], clips[:1]))
    with pytest.raises(TypeError, match=r"resume must be a samplers\.state\.Resume"):
        sample("fnr", generator=torch.Generator(), resume=states[1])


def test_the_state_round_trips_through_weights_only_files(tmp_path):
    states, clips = [], []
    sample("fnr,pns:4,dsg:0.4", generator=torch.Generator().manual_seed(0), on_state=states.append,
           on_clip=clips.append)  # fmt: skip
    store = ClipStore(tmp_path / "resume", {"seed": 0})
    for clip in clips[:3]:
        store.save_clip(clip)
    store.save_state(states[2])
    point = store.load()
    assert point.state.next_clip == 3 and point.state.clip_starts == states[2].clip_starts
    assert torch.equal(point.state.recording.latents, states[2].recording.latents)
    assert all(torch.equal(a.latents, b.latents) for a, b in zip(point.clips, clips[:3], strict=True))
    with pytest.raises(ResumeError, match=r"seed: 0 then, 1 now"):
        ClipStore(tmp_path / "resume", {"seed": 1}).load()
    (tmp_path / "resume" / "state.pt").write_bytes(b"\0" * 100)
    with pytest.raises(ResumeError, match=r"state\.pt is not a readable resume file .* damaged"):
        store.load()
    assert ClipStore(tmp_path / "empty", {}).load() is None


def argv(model: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", "a red circle moving right", "--model", str(model), "--out", str(out),
            "--clips", "8", "--frames", "4", "--prompt-frames", "2", "--steps", "3", *extra]  # fmt: skip


def results(out: Path) -> tuple[bytes, dict]:
    metrics = json.loads((out / "metrics.json").read_text())
    del metrics["timing"], metrics["parameters"]["out"]  # how long it took, and where
    return (out / "video.mp4").read_bytes(), metrics


def test_generate_killed_after_its_third_clip_resumes_to_the_same_video_and_metrics(model, tmp_path, capsys):
    cli.main(argv(model, tmp_path / "whole"))
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *argv(model, out)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    third = out / cli.RESUME_FOLDER / "clip_00002.pt"
    deadline = time.monotonic() + 120
    while not third.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # no chance to clean up: the state must already be whole
    process.wait(timeout=60)
    assert not (out / "video.mp4").exists()
    with pytest.raises(SystemExit):  # another seed: refused, naming it
        cli.main(argv(model, out, "--resume", "--seed", "1"))
    assert "generator_seed: 0 then, 1 now" in capsys.readouterr().err
    cli.main(argv(model, out, "--resume"))
    resumed = json.loads((out / "metrics.json").read_text())["timing"]["resumed_clips"]
    assert resumed in (2, 3)  # clip 2's file was on disk; its state may or may not have followed
    assert results(out) == results(tmp_path / "whole")
    assert not (out / cli.RESUME_FOLDER).exists()  # done: nothing left to resume


def test_clearing_a_store_removes_the_temporaries_a_killed_write_left_and_nothing_else(tmp_path):
    from models.files import temporary_sibling

    folder = tmp_path / "resume"
    folder.mkdir()
    for name in ("state.pt", "clip_00000.pt", "clip_00001.pt"):
        (folder / name).write_bytes(b"x")
    left = [temporary_sibling(folder / "clip_00002.pt"), temporary_sibling(folder / "state.pt")]
    assert all(p.name.startswith(".") and p.exists() for p in left)  # as a SIGKILL mid-write leaves them
    ClipStore(folder, {}).clear()
    assert not folder.exists()
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")  # not the store's: kept, and so is the folder
    temporary_sibling(folder / "clip_00000.pt")
    ClipStore(folder, {}).clear()
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
