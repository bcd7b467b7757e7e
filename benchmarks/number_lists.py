"""Lists of numbers on the command line and on the page: '0,0.05,0.1' <-> (0.0, 0.05, 0.1); numbers made
plain JSON values (`json_safe`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def parse_numbers(text: str, kind: type = float) -> tuple:
    """'1, 2,4' -> (1, 2, 4) with `kind` int or float; empty items skipped; ValueError names the bad one."""
    return tuple(kind(item) for item in text.split(",") if item.strip())


def format_numbers(values: Iterable[float], sep: str = ",") -> str:
    """(0.0, 0.05, 1.0) -> '0,0.05,1': each in the shortest %g form, as `parse_numbers` reads it back."""
    return sep.join(f"{value:g}" for value in values)


def json_safe(value: Any) -> Any:
    """Plain JSON values: non-finite floats -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
