"""Strategies by name, for command lines and configs: "fnr,pns:4,dsg:0.4" -> [FNR(), PNS(4.0), DSG(0.4)].

Items are comma-separated; each is `name`, then optional `:`-separated values: a bare value sets the
strategy's first parameter, `key=value` sets a parameter by name, e.g. "freenoise:window=16:stride=4",
"freenoise:16:stride=4", "recon:weight=2" or "recon:2". Values are converted to the parameter's type.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from .freenoise import FreeNoise
from .guidance import DSG
from .noise import FNR, PNS, IndependentNoise
from .overlap import ForwardOverlap
from .pyoco import PYoCoMixed, PYoCoProgressive
from .reconstruction import ReconstructionGuidance

STRATEGIES: dict[str, type] = {
    "independent": IndependentNoise,
    "fnr": FNR,
    "pns": PNS,
    "dsg": DSG,
    "freenoise": FreeNoise,
    "pyoco-mixed": PYoCoMixed,
    "pyoco-progressive": PYoCoProgressive,
    "overlap": ForwardOverlap,
    "recon": ReconstructionGuidance,
}


def _parameters(cls: type) -> dict[str, type]:
    """The strategy's parameters in order, with their types (int or float)."""
    hints = get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls)}


def _keywords(name: str, values: list[str]) -> dict[str, Any]:
    """The keyword arguments of `name:values...`; a bare value is the first parameter."""
    parameters = _parameters(STRATEGIES[name])
    keywords: dict[str, Any] = {}
    for k, value in enumerate(values):
        key, named, text = value.partition("=")
        if not named:
            if not parameters:
                raise ValueError(f"{name} takes no parameters; got {value!r}")
            if k > 0:
                raise ValueError(f"only the first value may be unnamed (key=value after it); got {value!r}")
            key, text = next(iter(parameters)), value
        if key not in parameters:
            raise ValueError(f"parameter must be one of {list(parameters)}; got {key!r}")
        if key in keywords:
            raise ValueError(f"parameter {key!r} is given twice")
        keywords[key] = parameters[key](text)  # int("16"), float("0.4"); ValueError if malformed
    return keywords


def parse_strategies(text: str) -> list[Any]:
    """Comma-separated `name[:value][:key=value...]` items (see the module docstring)."""
    strategies = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, *values = (part.strip() for part in item.split(":"))
        if name not in STRATEGIES:
            allowed = sorted(STRATEGIES)
            raise ValueError(
                f"strategy must be one of {allowed} (optionally name:value or name:key=value); got {item!r}"
            )
        try:
            strategies.append(STRATEGIES[name](**_keywords(name, values)))
        except (TypeError, ValueError) as error:  # unknown/duplicate parameter, bad number, out of range
            raise ValueError(f"strategy {item!r} is invalid: {error}") from error
    return strategies
