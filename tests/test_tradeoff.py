"""The reconstruction-guidance trade-off: the acceptance band, the best composition, the command line."""

from __future__ import annotations

import csv

import pytest

from benchmarks import compare
from benchmarks.compare import METRICS, ORACLE, REFERENCE, CompareConfig
from benchmarks.tradeoff import TradeoffConfig, best, curve, describe_best, in_band, main, run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def row(name: str, jump: float, error: float) -> dict:
    return {"strategies": name, **dict.fromkeys(METRICS, 0.5), "seam_jump_ratio": jump,
            "autocorrelation_error": error}  # fmt: skip


def test_band_edges():
    assert in_band(row("a", 0.8, 0.0499)) and in_band(row("a", 1.25, 0.0))
    assert not in_band(row("a", 0.79, 0.01)) and not in_band(row("a", 1.26, 0.01))
    assert not in_band(row("a", 1.0, 0.05))  # strictly below the limit


def test_best_is_the_smallest_autocorrelation_error_in_the_band():
    rows = [row(REFERENCE, 1.0, 0.001), row(ORACLE, 1.0, 0.002), row("fnr", 1e-9, 1.0),
            row("overlap", 1.2, 0.02), row("overlap,recon:0.2", 0.9, 0.01),
            row("independent", 2.0, 0.001)]  # fmt: skip
    # not the reference nor the oracle (no compositions), not "independent" (its seam-jump is too high)
    assert best(rows)["strategies"] == "overlap,recon:0.2"
    config = TradeoffConfig(weights=(0.0,), combinations=("fnr", "overlap", "independent"))
    text = describe_best(rows, config)
    assert text.startswith("**Best composition meeting seam-jump ratio in [0.8, 1.25]")
    assert "`overlap,recon:0.2`** (seam-jump ratio 0.9, autocorrelation error 0.01" in text
    assert "`fnr`: seam-jump ratio 1e-09, autocorrelation error 1 (misses it)" in text
    assert "`overlap`: seam-jump ratio 1.2, autocorrelation error 0.02 (meets the band)" in text
    assert "`independent`: seam-jump ratio 2, autocorrelation error 0.001 (misses it)" in text
    assert best(rows[:2]) is None and describe_best(rows[:2], config).startswith("**No composition meets")


def test_run_puts_each_name_once_and_weight_zero_is_the_overlap_alone():
    tiny = CompareConfig(
        samples=3, frame_shape=(2, 4, 4), num_frames=8, prompt_frames=2, num_clips=3, steps=4
    )
    # recon:0 guides nothing: it samples the overlap's videos bit for bit, so the curve reads the overlap
    same = {r["strategies"]: r for r in compare.run(tiny, ["overlap", "overlap,recon:0"])}
    assert all(same["overlap"][m] == same["overlap,recon:0"][m] for m in METRICS)
    config = TradeoffConfig(backbone=tiny, weights=(0.0, 0.2), combinations=("fnr", "overlap,recon:0.2"))
    assert config.curve_names() == ["overlap", "overlap,recon:0.2"]
    rows = run(config)
    names = [r["strategies"] for r in rows]
    assert names == [REFERENCE, ORACLE, "fnr", "overlap,recon:0.2", "overlap"]  # each sampled once
    by_name = {r["strategies"]: r for r in rows}
    assert all(by_name["overlap"][m] == same["overlap"][m] for m in METRICS)
    assert by_name["overlap,recon:0.2"]["seam_jump_ratio"] != by_name["overlap"]["seam_jump_ratio"]
    along = curve(rows, config)["seam_jump_ratio"].tolist()
    assert along == [by_name["overlap"]["seam_jump_ratio"], by_name["overlap,recon:0.2"]["seam_jump_ratio"]]


@pytest.mark.parametrize(
    ("weights", "match"),
    [((), "non-empty increasing"), ((0.2, 0.1), "non-empty increasing"), ((-1.0,), r"weight must be in")],
)
def test_bad_weights_fail_up_front(weights, match):
    with pytest.raises(ValueError, match=match):
        TradeoffConfig(weights=weights)


def test_main_writes_the_table_and_both_plots(tmp_path, capsys):
    main(["--out", str(tmp_path), "--samples", "2", "--steps", "3", "--weights", "0,0.2"])
    with open(tmp_path / "tradeoff.csv") as f:
        names = [r["strategies"] for r in csv.DictReader(f)]
    assert names[0] == REFERENCE and "overlap" in names and "overlap,recon:0.2" in names
    assert "overlap,recon:0" not in names and len(names) == len(set(names))  # w = 0 is the overlap's row
    for name in ("tradeoff_curve.png", "tradeoff_scatter.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE
    assert "composition" in capsys.readouterr().out
