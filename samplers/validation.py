"""Up-front argument checks: every message names the parameter, its value and the allowed range."""

from __future__ import annotations

import math
from numbers import Integral, Real


def check_real(name: str, value: float, low: float, high: float = math.inf) -> float:
    """Return `value` as a float if it is a real number in [low, high]; TypeError/ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number in [{low}, {high}]; got {value!r}")
    if math.isnan(value) or not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}]; got {value!r}")
    return float(value)


def check_int(name: str, value: int, low: int, high: float = math.inf) -> int:
    """Return `value` if it is an integer in [low, high]; TypeError/ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    return int(value)
