"""Lists of numbers on the command line and on the page: '0,0.05,0.1' <-> (0.0, 0.05, 0.1)."""

from __future__ import annotations

from collections.abc import Iterable


def parse_numbers(text: str, kind: type = float) -> tuple:
    """'1, 2,4' -> (1, 2, 4) with `kind` int or float; empty items skipped; ValueError names the bad one."""
    return tuple(kind(item) for item in text.split(",") if item.strip())


def format_numbers(values: Iterable[float], sep: str = ",") -> str:
    """(0.0, 0.05, 1.0) -> '0,0.05,1': each in the shortest %g form, as `parse_numbers` reads it back."""
    return sep.join(f"{value:g}" for value in values)
