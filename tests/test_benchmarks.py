"""The main job and its plumbing: strategy strings, atomic files, the comparison table."""

import csv
import os
import stat
import subprocess

import matplotlib.pyplot as plt
import pytest
import torch
from threadpoolctl import threadpool_info

from benchmarks.compare import METRICS, CompareConfig, main, run
from benchmarks.figures import save_figure
from benchmarks.number_lists import format_numbers, parse_numbers
from models.files import atomic_path
from models.threads import limit_threads
from samplers import DSG, FNR, PNS, IndependentNoise, LongVideoSampler
from samplers.registry import parse_strategies


def test_parse_and_describe_strategies():
    assert parse_strategies("fnr,pns:4,dsg:0.4") == [FNR(), PNS(alpha=4.0), DSG(beta=0.4)]
    assert parse_strategies(" independent ") == [IndependentNoise()]
    assert parse_strategies("") == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("fnr,xyz", r"strategy must be one of .*got 'xyz'"),
        ("pns:-1", "alpha must be in"),
        ("fnr:2", "'fnr:2'"),
    ],
)
def test_bad_strategy_strings(text, match):
    with pytest.raises(ValueError, match=match):
        parse_strategies(text)


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "result.csv"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("midway")
    assert target.read_text() == "good" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_atomic_path_gives_the_mode_of_a_plain_open(tmp_path, umask):
    previous = os.umask(umask)
    try:
        with atomic_path(tmp_path / "atomic.csv") as tmp:
            tmp.write_text("new")
        (tmp_path / "plain.csv").write_text("new")
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()}
    assert modes == {"atomic.csv": 0o666 & ~umask, "plain.csv": 0o666 & ~umask}  # not mkstemp's 0o600


def test_number_lists_read_back_what_they_write():
    assert parse_numbers("1, 2,,4 ", int) == (1, 2, 4) and parse_numbers("") == ()
    assert format_numbers((0.0, 0.05, 1.0, 1e-9)) == "0,0.05,1,1e-09"
    assert parse_numbers(format_numbers((0.0, 0.05, 1.0, 1e-9))) == (0.0, 0.05, 1.0, 1e-9)
    assert format_numbers((1, 2.5), ", ") == "1, 2.5"
    with pytest.raises(ValueError, match="'x'"):
        parse_numbers("1,x")


def test_limit_threads_sets_torch_and_blas_and_restores_them():
    threads = torch.get_num_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        assert {pool["num_threads"] for pool in threadpool_info()} <= {1}
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="threads must be an integer"):
        limit_threads(0).__enter__()


def test_save_figure_writes_a_png_and_closes_the_figure(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "plot.png", dpi=50)
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number) and list(tmp_path.iterdir()) == [tmp_path / "plot.png"]


TINY = CompareConfig(samples=8, frame_shape=(2, 4, 4), num_frames=8, prompt_frames=2, num_clips=3, steps=8)


def test_comparison_rows_show_the_cut_and_the_duplicate():
    rows = run(TINY, ["independent", "fnr"])
    names = ["reference process", "oracle continuation", "independent", "fnr"]
    assert [r["strategies"] for r in rows] == names
    by_name = {r["strategies"]: r for r in rows}
    # FNR alone on the exact backbone is an exact palindrome (docs/DESIGN.md §4): the seam frame is duplicated
    # (ratio 0) and the mirror correlation is 1; independent clips meet at a cut (ratio well above 1).
    assert by_name["fnr"]["seam_jump_ratio"] < 1e-12
    assert by_name["fnr"]["mirror_correlation"] == pytest.approx(1.0, abs=1e-12)
    assert by_name["independent"]["seam_jump_ratio"] > 3


def test_main_writes_csv_and_png(tmp_path, capsys):
    main(
        [
            "--out",
            str(tmp_path),
            "--samples",
            "4",
            "--num-clips",
            "2",
            "--steps",
            "5",
            "--combinations",
            "fnr",
        ]
    )
    with open(tmp_path / "compare.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["strategies"] for r in rows] == ["reference process", "oracle continuation", "fnr"]
    assert set(METRICS) <= set(rows[0])
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "seam_jump_ratio" in capsys.readouterr().out


def test_bad_combination_fails_before_sampling(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # a usage error, as argparse gives
        main(["--out", str(tmp_path), "--combinations", "fnr;bogus"])
    assert exit_info.value.code == 2 and "strategy must be one of" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_perf_benchmark_runs_on_a_tiny_setting(capsys):
    # Not a timing assertion (timings live in the benchmark's output): the harness runs and reports.
    from benchmarks.perf import main as perf_main

    perf_main(["--backbones", "conv", "--clips", "2", "--steps", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "ratio" in out and out.strip().splitlines()[-1].startswith("conv")
    assert "allocator: kept" in out
    with pytest.raises(SystemExit):
        perf_main(["--backbones", "bogus"])


@pytest.mark.parametrize("allocator", ["kept", "system"])
def test_perf_children_run_under_the_allocator_named(allocator, monkeypatch):
    """The child's environment carries glibc's keep-memory settings for `kept` and none for `system`
    (even where the parent has them): the printed allocator is the one measured."""
    from benchmarks import perf

    seen = {}

    def run(command, env, **kwargs):
        seen.update(env)
        return subprocess.CompletedProcess(command, 0, stdout='{"ratio": 1.0}\n')

    monkeypatch.setattr(perf.subprocess, "run", run)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
    assert perf.measure_in_child("conv", 1, 1, 1, allocator) == {"ratio": 1.0}
    kept = {k: seen.get(k) for k in perf.ALLOCATOR_ENV}
    assert kept == (perf.ALLOCATOR_ENV if allocator == "kept" else dict.fromkeys(perf.ALLOCATOR_ENV))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("samples", 0, r"samples must be an integer in \[1, inf\]"),
        ("prompt_frames", 16, r"prompt_frames .*\[1, 15\]"),
    ],
)
def test_compare_config_names_the_bad_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        CompareConfig(**{field: value})


def test_windowed_rows_and_their_names():
    from benchmarks.compare import check_combination

    rows = {r["strategies"]: r for r in run(TINY, ["windows:flat", "windows:pyramid"])}
    # co-denoising the whole video: the seams within the band around the process's own (1.06 here), where a
    # cut is ~18, a duplicated frame 0, and the windows over FNR's reversed noise 1.5
    assert all(0.9 < rows[name]["seam_jump_ratio"] < 1.25 for name in ("windows:flat", "windows:pyramid"))
    allowed = r"a method that is not clip by clip must be one of \('windows:flat', 'windows:pyramid', 'freen"
    for name in ("windows:gaussian", "fifo:3"):
        with pytest.raises(ValueError, match=allowed):
            check_combination(name)
    for name in ("fnr,windows:flat", "fifo:4,recon:10"):  # a joint method takes no clip-by-clip strategy
        with pytest.raises(ValueError, match=r"makes the whole long video at once and does not compose"):
            check_combination(name)


def test_cost_columns_are_the_hand_counted_frame_evaluations():
    # TINY: N = 8, M = 2, K = 3 clips, T = 8 steps. Clip by clip: T N K evaluations for N K frames = T.
    # overlap drops M frames of clips 1..K-1: T N K / (N + (K-1)(N-M)). recon adds one forward with a
    # backward per step of clips 1..K-1 (its x0 estimate). Windows of 8 over 24 frames overlapping by 2:
    # starts 0, 6, 12, 16 at even steps and 0, 3, 9, 13, 16 at odd ones (shifted by 3, clamped).
    names = ["fnr", "overlap", "overlap,recon:1", "windows:flat"]
    rows = {r["strategies"]: r for r in run(TINY, names)}
    t, n, m, k = 8, 8, 2, 3
    kept = n + (k - 1) * (n - m)
    assert rows["reference process"]["frame_evals"] == rows["oracle continuation"]["frame_evals"] == 0
    assert rows["fnr"]["frame_evals"] == t and rows["fnr"]["backward_evals"] == 0
    assert rows["overlap"]["frame_evals"] == pytest.approx(t * n * k / kept, rel=1e-12)
    assert rows["overlap,recon:1"]["frame_evals"] == pytest.approx(t * n * (2 * k - 1) / kept, rel=1e-12)
    assert rows["overlap,recon:1"]["backward_evals"] == pytest.approx(t * n * (k - 1) / kept, rel=1e-12)
    assert rows["windows:flat"]["frame_evals"] == pytest.approx((4 + 5) * (t // 2) * n / (n * k), rel=1e-12)
    # FIFO with f = N: S = n N steps, L + S - N iterations of n N evaluations (2 n N with lookahead), plus
    # the base clip's N S. FreeNoise: static windows of 8 every 2 frames over 24: starts 0, 2, ..., 16.
    more = {r["strategies"]: r for r in run(TINY, ["fifo:1", "fifo:4:lookahead", "freenoise"])}
    length = n * k
    assert more["fifo:1"]["frame_evals"] == pytest.approx((length * n + n * n) / length, rel=1e-12)
    s = 4 * n
    lookahead = (length + s - n) * 2 * 4 * n + n * s
    assert more["fifo:4:lookahead"]["frame_evals"] == pytest.approx(lookahead / length, rel=1e-12)
    assert more["freenoise"]["frame_evals"] == pytest.approx(9 * n * t / length, rel=1e-12)


def test_windows_take_the_noise_of_noise_initializers():
    # 'windows:flat+fnr': the windows denoise the noise FNR makes clip by clip (each clip the previous one
    # reversed), so the video repeats where plain windows do not; guidances and methods with their own
    # noise are refused
    from benchmarks.compare import check_combination

    rows = {r["strategies"]: r for r in run(TINY, ["windows:flat", "windows:flat+fnr"], oracle=False)}
    assert rows["windows:flat+fnr"]["repetition"] > 0.5 and rows["windows:flat"]["repetition"] < 0.1
    with pytest.raises(ValueError, match=r"takes noise initializers after '\+', not guidances"):
        check_combination("windows:pyramid+dsg:0.4")
    with pytest.raises(ValueError, match=r"'fifo:4' makes its own noise"):
        check_combination("fifo:4+pns:4")
    with pytest.raises(ValueError, match=r"'windows:flat\+' must name noise initializers after '\+'"):
        check_combination("windows:flat+")
    # the initializers must suit the clip before any work: FreeNoise's window of 16 > N = 8
    with pytest.raises(ValueError, match=r"window must be an integer in \[4, 8\]; got 16"):
        run(TINY, ["fnr", "windows:flat+freenoise-noise"])


def test_initial_noise_is_the_noise_sample_draws():
    from diffusers import DDIMScheduler

    from models import GaussianVideoPrior

    prior = GaussianVideoPrior(num_frames=6, frame_shape=(1, 2, 2), lengthscale=3.0)
    scheduler, shape = DDIMScheduler(clip_sample=False), (2, 1, 6, 2, 2)
    sampler = LongVideoSampler([FNR(), PNS(alpha=4)], prompt_frames=2, progress=False)
    noises = []
    sampler.sample(prior.denoiser(scheduler), scheduler, shape, 3, 2,
                   generator=torch.Generator().manual_seed(4),
                   on_clip=lambda clip: noises.append(clip.initial_noise))  # fmt: skip
    whole = sampler.initial_noise(shape, 3, torch.Generator().manual_seed(4))
    assert torch.equal(whole, torch.cat(noises, dim=2))
