"""Every console script answers a usage error as argparse does: a message naming the flag, exit status 2,
no traceback, and no work done (nothing written)."""

from __future__ import annotations

import pytest

from benchmarks import cli, compare, perf, sweep

ROOT_FILE = __file__  # a regular file: an --out under it cannot be a folder


@pytest.mark.parametrize(
    ("main", "argv", "match"),
    [
        (compare.main, ["--out", ROOT_FILE], "--out must be a folder"),
        (compare.main, ["--out", f"{ROOT_FILE}/sub"], "--out must be a folder"),
        (compare.main, ["--num-clips", "1"], r"num_clips must be an integer in [2, inf]"),
        (compare.main, ["--combinations", "fnr;warp"], "warp"),
        (sweep.main, ["--out", ROOT_FILE], "--out must be a folder"),
        (sweep.main, ["--num-clips", "1"], r"num_clips must be an integer in [2, inf]"),
        (perf.main, ["--repeats", "0"], "--repeats must be an integer in [1, inf]"),
        (perf.main, ["--steps", "0"], "--steps must be an integer in [1, inf]"),
        (cli.main, ["generate", "a red circle", "--clips", "0"], "clips must be an integer"),
    ],
)
def test_usage_errors_exit_2_with_the_flag_named(main, argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default --out folders would land here
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
