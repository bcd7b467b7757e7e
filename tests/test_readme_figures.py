"""The README's figures for the analytic backbone cannot go stale silently: the README quotes the default
comparison at a small setting next to its main table, and this test recomputes that small table with the
landed code. A change of meaning (a weight's scale, a strategy's draws, a metric) changes it, so the
change must regenerate the README's figures (and the report) to pass."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.compare import DEFAULT_COMBINATIONS, PEER_COMBINATIONS, CompareConfig, markdown_table, run

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(
    r"<!-- canary: python -m benchmarks\.compare --samples (\d+) --markdown -->\n(.*?)\n<!-- /canary -->",
    re.DOTALL,
)


def test_the_readme_canary_table_is_what_the_code_computes():
    found = BLOCK.search(README.read_text(encoding="utf-8"))
    assert found, "README.md must quote the canary table between its markers"
    samples, quoted = int(found.group(1)), found.group(2).strip()
    rows = run(CompareConfig(samples=samples), [*DEFAULT_COMBINATIONS, *PEER_COMBINATIONS])
    assert quoted == markdown_table(rows), (
        "README.md's figures are stale: regenerate them (python -m benchmarks.compare --markdown, and the "
        "canary with --samples 8) and the report (python -m benchmarks.report)"
    )
