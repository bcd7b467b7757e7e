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


def check_range(name: str, value: tuple[float, float], low: float, high: float) -> tuple[float, float]:
    """Return `value` if it is a (low, high) pair with low <= value[0] <= value[1] <= high."""
    if not isinstance(value, tuple) or len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) tuple within [{low}, {high}]; got {value!r}")
    check_real(f"{name}[0]", value[0], low, high)
    check_real(f"{name}[1]", value[1], value[0], high)
    return value


def check_int(name: str, value: int, low: int, high: float = math.inf) -> int:
    """Return `value` if it is an integer in [low, high]; TypeError/ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    return int(value)
