"""The README's figures for the analytic backbone cannot go stale silently: the README quotes the default
comparison at a small setting next to its main table, and this test recomputes that small table with the
landed code. A change of meaning (a weight's scale, a strategy's draws, a metric) changes it, so the
change must regenerate the README's figures (and the report) to pass."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.compare import (
    DEFAULT_COMBINATIONS,
    JOINT_COMBINATIONS,
    PEER_COMBINATIONS,
    CompareConfig,
    markdown_table,
    run,
)

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(
    r"<!-- canary: python -m benchmarks\.compare --samples (\d+)(?: --scheduler ([\w-]+))? --markdown -->\n"
    r"(.*?)\n<!-- /canary -->",
    re.DOTALL,
)


def test_the_readme_canary_tables_are_what_the_code_computes():
    found = BLOCK.findall(README.read_text(encoding="utf-8"))
    schedulers = [scheduler or "ddim" for _, scheduler, _ in found]
    assert schedulers == ["ddim", "flow-euler"], "README.md must quote the DDIM and the flow canary tables"
    for (samples, _, quoted), scheduler in zip(found, schedulers, strict=True):
        config = CompareConfig(samples=int(samples), scheduler=scheduler)
        rows = run(config, [*DEFAULT_COMBINATIONS, *PEER_COMBINATIONS, *JOINT_COMBINATIONS])
        assert quoted.strip() == markdown_table(rows), (
            f"README.md's {scheduler} figures are stale: regenerate them (python -m benchmarks.compare "
            f"--scheduler {scheduler} --markdown, and the canary with --samples 8) and the report "
            "(python -m benchmarks.report)"
        )
