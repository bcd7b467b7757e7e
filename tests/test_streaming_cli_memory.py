"""The --clips memory benchmark of `vidrd generate` (benchmarks/cli_memory.py): its checks, its plumbing
and one tiny real run. Memory and timings are printed, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import cli_memory


def test_help_describes_the_benchmark(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_memory.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--clips" in out and "peak RSS" in out


@pytest.mark.parametrize(
    ("flags", "match"),
    [
        (["--clips", "2"], "--clips must list >= 2"),
        (["--clips", "2,x"], "comma-separated integers"),
        (["--clips", "0,2"], "each >= 1"),
        (["--clips", "2,2"], "different"),
        (["--frames", "1"], "--frames must be >= 2"),
        (["--steps", "0"], "--steps must be >= 1"),
        (["--repeats", "0"], "--repeats must be >= 1"),
        (["--target", "0"], "--target must be a finite number > 0"),
        (["--target", "nan"], "--target"),
        (["--timeout", "inf"], "--timeout"),
        (["--prompt", "  "], "--prompt"),
        (["--steps", "two"], "invalid int"),
    ],
)
def test_bad_arguments_exit_through_argparse(flags, match, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_memory.parse_args(flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and match in err


def test_out_must_not_be_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit):
        cli_memory.parse_args(["--out", str(tmp_path / "file")])
    assert "--out must be a folder" in capsys.readouterr().err


def test_medians_and_ratio_and_nothing_written_without_out(tmp_path, monkeypatch, capsys):
    peaks = {2: [100.0, 130.0, 110.0], 64: [120.0, 143.0, 200.0]}  # medians 110 and 143
    folders = []

    def fake_child(clips, out, args):
        folders.append(out)
        out.mkdir(parents=True)
        run = len([f for f in folders if f.name.startswith(f"clips-{clips}-")]) - 1
        return {"clips": clips, "peak_mib": peaks[clips][run], "seconds": 1.0, "frames": 8 * clips}

    monkeypatch.setattr(cli_memory, "run_child", fake_child)
    monkeypatch.chdir(tmp_path)
    results = cli_memory.main(["--repeats", "3"])
    assert [f.name for f in folders[:2]] == ["clips-2-run-0", "clips-64-run-0"]  # interleaved
    assert results["table"][2]["peak_mib"] == 110.0 and results["table"][64]["peak_mib"] == 143.0
    assert results["ratio"] == 143.0 / 110.0 and results["target_met"] is False
    assert "peak RSS ratio 64 clips / 2 clips: 1.300 (target <= 1.1: NOT met)" in capsys.readouterr().out
    assert not any(f.exists() for f in folders) and not any(tmp_path.iterdir())


def test_wait_reports_the_exit_status_and_kills_a_child_past_its_timeout():
    done = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    status, usage = cli_memory._wait(done, timeout=60)
    assert status == 3 == done.returncode and usage.ru_maxrss > 0
    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(TimeoutError):
        cli_memory._wait(stuck, timeout=0.2)
    assert stuck.returncode is not None  # killed and reaped


def test_tiny_real_run_writes_only_into_out(tmp_path, capsys):
    out = tmp_path / "results"
    results = cli_memory.main(
        ["--clips", "1,2", "--frames", "4", "--steps", "1", "--repeats", "1", "--out", str(out)]
    )
    table = results["table"]
    assert [table[k]["frames"] for k in (1, 2)] == [4, 8]  # K * N: no prompt frames dropped by default
    assert results["ratio"] == table[2]["peak_mib"] / table[1]["peak_mib"]
    saved = json.loads((out / "cli_memory.json").read_text())
    assert saved["ratio"] == results["ratio"] and saved["settings"]["clips"] == [1, 2]
    assert sorted(p.name for p in out.iterdir()) == ["cli_memory.json", "clips-1-run-0", "clips-2-run-0"]
    assert (out / "clips-2-run-0" / "metrics.json").exists()
    assert "peak RSS ratio 2 clips / 1 clips" in capsys.readouterr().out
