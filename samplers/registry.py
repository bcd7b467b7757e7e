"""Strategies by name, for command lines and configs: "fnr,pns:4,dsg:0.4" -> [FNR(), PNS(4.0), DSG(0.4)]."""

from __future__ import annotations

from typing import Any

from .guidance import DSG
from .noise import FNR, PNS, IndependentNoise

STRATEGIES: dict[str, type] = {"independent": IndependentNoise, "fnr": FNR, "pns": PNS, "dsg": DSG}


def parse_strategies(text: str) -> list[Any]:
    """Comma-separated `name` or `name:value` items; the value is the strategy's single parameter."""
    strategies = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition(":")
        if name not in STRATEGIES:
            allowed = sorted(STRATEGIES)
            raise ValueError(f"strategy must be one of {allowed} (optionally name:value); got {item!r}")
        try:
            strategies.append(STRATEGIES[name](float(value)) if value else STRATEGIES[name]())
        except (TypeError, ValueError) as error:  # a parameterless strategy given a value, or a bad float
            raise ValueError(f"strategy {item!r} is invalid: {error}") from error
    return strategies
