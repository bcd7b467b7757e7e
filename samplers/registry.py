"""Strategies by name, for command lines and configs: "fnr,pns:4,dsg:0.4" -> [FNR(), PNS(4.0), DSG(0.4)].

Items are comma-separated; each is `name`, then optional `:`-separated values: a bare value sets the
strategy's first parameter, `key=value` sets a parameter by name, e.g. "freenoise-noise:window=16:stride=4",
"freenoise-noise:16:stride=4", "recon:weight=2" or "recon:2". Values are converted to the parameter's type.

A list in which an item certainly does nothing is refused (ValueError, with the reason and a remedy):
- a strategy given twice ("fnr,fnr", "dsg:0.4,dsg:0.2");
- a noise initializer that changes the noise of clips i >= 1 (fnr, pns, freenoise-noise) listed before one
  that replaces that noise whole by the previous clip's (fnr: reversed; freenoise-noise: shuffled in
  chunks), which discards it: "pns:4,fnr" samples what "fnr" samples, "fnr,pns:4" is the paper;
- DSG listed before a ForwardOverlap that holds the prompt frames at every step DSG held them (its beta is
  1 or above DSG's), which overwrites them: "dsg:0.4,overlap" samples what "overlap" samples.
The PYoCo priors change clip 0 only, which the others leave alone, so they go anywhere; guidances act at
other times than initializers, so "dsg:0.4,fnr" is "fnr,dsg:0.4". A legal but suspicious list warns
(`CompositionWarning`): DSG (mirrored) with ForwardOverlap or ReconstructionGuidance (forward order) on the
same prompt frames, and recon listed before overlap (its x0 estimate sees prompt frames that overlap then
replaces). Parameter values that make an item do nothing on their own ("dsg:0", "recon:0") are legal: they
are the end points of sweeps.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, NamedTuple, get_type_hints

from .freenoise import FreeNoiseRescheduling
from .guidance import DSG
from .noise import FNR, PNS, IndependentNoise
from .overlap import ForwardOverlap
from .pyoco import PYoCoMixed, PYoCoProgressive
from .reconstruction import ReconstructionGuidance

PAPER = "fnr,pns:4,dsg:0.4"  # the paper's composition (VidRD: FNR, PNS alpha 4, DSG beta 0.4)
KIT_DEFAULT = PAPER  # the kit's default composition (vidrd generate)
PAPER_STRATEGIES = frozenset({"fnr", "pns", "dsg"})  # VidRD's own strategies, alone or composed

STRATEGIES: dict[str, type] = {
    "independent": IndependentNoise,
    "fnr": FNR,
    "pns": PNS,
    "dsg": DSG,
    "freenoise-noise": FreeNoiseRescheduling,
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


class CompositionWarning(UserWarning):
    """A legal but suspicious list of strategies (parse_strategies): the reason is in the message."""


class _Item(NamedTuple):
    text: str  # as written, e.g. "pns:4"
    name: str  # e.g. "pns"
    strategy: Any


# Initializers that change the noise of clips i >= 1 (the PYoCo priors change clip 0's only, independent none)
_CHANGES_LATER_NOISE = frozenset({"fnr", "pns", "freenoise-noise"})
# ... of which these replace it whole by one made from the previous clip's noise alone, discarding it.
_REPLACES_LATER_NOISE = {
    "fnr": "FNR replaces the whole noise of clips i >= 1 by the previous clip's noise in reversed order",
    "freenoise-noise": "FreeNoiseRescheduling replaces the whole noise of clips i >= 1 by the previous "
    "clip's noise, shuffled in chunks",
}


def parse_strategies(text: str) -> list[Any]:
    """Comma-separated `name[:value][:key=value...]` items (see the module docstring)."""
    items = [_parse_item(item) for item in _items(text)]
    _check_duplicates(items)
    _check_lost_noise(items)
    for message in _prompt_frame_warnings(items):
        warnings.warn(message, CompositionWarning, stacklevel=2)
    return [item.strategy for item in items]


def _items(text: str) -> list[str]:
    """A composition's comma-separated items, stripped, empty ones dropped."""
    return [item for item in (part.strip() for part in text.split(",")) if item]


def strategy_names(text: str) -> list[str]:
    """The names a composition's items begin with, in order ("fnr,pns:4" -> ["fnr", "pns"]), as written:
    nothing is checked, so that a table holding peers outside this registry can still be read."""
    return [item.split(":")[0].strip() for item in _items(text)]


def is_paper_strategy(text: str) -> bool:
    """True for a composition of the paper's strategies alone (`PAPER_STRATEGIES`: "fnr", "pns:4,dsg:0.4"),
    False for one with any other ("independent", "fnr,recon:10") or none."""
    names = strategy_names(text)
    return bool(names) and set(names) <= PAPER_STRATEGIES


def _parse_item(item: str) -> _Item:
    name, *values = (part.strip() for part in item.split(":"))
    if name not in STRATEGIES:
        allowed = sorted(STRATEGIES)
        raise ValueError(
            f"strategy must be one of {allowed} (optionally name:value or name:key=value); got {item!r}"
        )
    try:
        return _Item(item, name, STRATEGIES[name](**_keywords(name, values)))
    except (TypeError, ValueError) as error:  # unknown/duplicate parameter, bad number, out of range
        raise ValueError(f"strategy {item!r} is invalid: {error}") from error


def _check_duplicates(items: list[_Item]) -> None:
    seen: dict[str, str] = {}
    for item in items:
        if item.name in seen:
            raise ValueError(
                f"strategy {item.name!r} is given twice ({seen[item.name]!r} and {item.text!r}); each "
                "strategy may appear once"
            )
        seen[item.name] = item.text


def _check_lost_noise(items: list[_Item]) -> None:
    """Refuse an initializer of the later clips' noise listed before one that replaces that noise."""
    for k, later in enumerate(items):
        if later.name not in _REPLACES_LATER_NOISE:
            continue
        for earlier in items[:k]:
            if earlier.name not in _CHANGES_LATER_NOISE:
                continue
            if earlier.name in _REPLACES_LATER_NOISE:
                remedy = f"use one of {earlier.text!r} and {later.text!r}"
            else:
                order = [item.text for item in items if item is not earlier]
                order.insert(order.index(later.text) + 1, earlier.text)
                remedy = f"apply it after: {','.join(order)!r}"
            raise ValueError(
                f"strategy {earlier.text!r} has no effect before {later.text!r}: "
                f"{_REPLACES_LATER_NOISE[later.name]}, so what {earlier.text!r} did to it is lost; {remedy}"
            )


def _acts(item: _Item) -> bool:
    """False where the item's parameters make it do nothing (DSG or overlap with beta 0, recon weight 0)."""
    if item.name in ("dsg", "overlap"):
        return item.strategy.beta > 0
    return item.name != "recon" or item.strategy.weight > 0


def _prompt_frame_warnings(items: list[_Item]) -> list[str]:
    """What is suspicious about the guidances of the prompt frames: DSG imposes the previous clip mirrored,
    ForwardOverlap and ReconstructionGuidance in forward order. Refuses a DSG that overlap overwrites."""
    found = {item.name: (k, item) for k, item in enumerate(items) if _acts(item)}
    dsg, overlap, recon = found.get("dsg"), found.get("overlap"), found.get("recon")
    messages = []
    if dsg and overlap:
        _refuse_overwritten_dsg(dsg, overlap)
        (_, first), (_, second) = sorted([dsg, overlap])
        messages.append(
            f"{first.text!r} and {second.text!r} both replace the prompt frames by the previous clip's "
            f"latents, DSG mirrored and overlap in forward order; where both hold a frame, the later one "
            f"({second.text!r}) wins: use one of them"
        )
    if dsg and recon:
        (_, first), (_, second) = sorted([dsg, recon])
        messages.append(
            f"{first.text!r} and {second.text!r} pull the prompt frames toward the previous clip in opposite "
            "frame orders (DSG mirrored, recon forward): use one of them"
        )
    if recon and overlap and recon[0] < overlap[0]:
        order = [item.text for item in items if item is not recon[1]]
        order.insert(order.index(overlap[1].text) + 1, recon[1].text)
        messages.append(
            f"{recon[1].text!r} is listed before {overlap[1].text!r}: its x0 estimate sees the prompt frames "
            f"that overlap then replaces (Ho et al. replace them first); list overlap first: "
            f"{','.join(order)!r}"
        )
    return messages


def _refuse_overwritten_dsg(dsg: tuple[int, _Item], overlap: tuple[int, _Item]) -> None:
    """ValueError where DSG runs first and overlap holds the prompt frames at every step DSG held them:
    DSG holds frame j while s < (M - j) / M * beta_dsg * T, overlap every frame j < M while
    s < beta_overlap * T. Equal betas are left to the warning: DSG's float threshold can exceed
    beta * T by a rounding error and hold one step more (e.g. beta 0.01, T = 100, M = 11)."""
    (k, d), (ko, o) = dsg, overlap
    if k > ko or not (o.strategy.beta == 1.0 or o.strategy.beta > d.strategy.beta + 1e-9):
        return
    raise ValueError(
        f"strategy {d.text!r} has no effect before {o.text!r}: {o.strategy!r} replaces the first M frames "
        f"at every step s < {o.strategy.beta} * T, which covers every frame and step at which "
        f"{d.strategy!r} replaced them (s < {d.strategy.beta} * T at most), so what it did is lost; use "
        "one of them"
    )
