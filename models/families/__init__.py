"""The diffusers video pipeline families the kit drives (`VideoFamily` subclasses), by pipeline class.

    from models.families import family_for
    family = family_for(pipe)   # TypeError listing the supported pipelines for any other
"""

from __future__ import annotations

from typing import Any

from .base import ClipPlan, VideoFamily
from .cogvideox import CogVideoXFamily
from .hunyuan import HunyuanVideoFamily
from .ltx import LTXFamily
from .mochi import MochiFamily
from .vidrd import VidRDFamily
from .wan import WanFamily

FAMILIES: tuple[type[VideoFamily], ...] = (
    WanFamily, CogVideoXFamily, LTXFamily, HunyuanVideoFamily, MochiFamily, VidRDFamily
)  # fmt: skip
DIFFUSERS_FAMILIES = FAMILIES[:-1]  # those of diffusers pipelines (saved with save_pretrained)


def supported_pipelines(families: tuple[type[VideoFamily], ...] = FAMILIES) -> list[str]:
    return [name for family in families for name in family.pipeline_names]


def family_for(pipe: Any) -> VideoFamily:
    """The family of a diffusers pipeline, by its class (or a base class's) name."""
    names = {cls.__name__ for cls in type(pipe).__mro__}
    for family in FAMILIES:
        if names & set(family.pipeline_names):
            return family(pipe)
    raise TypeError(
        f"no video family for {type(pipe).__name__}; supported pipelines: {', '.join(supported_pipelines())}"
    )


__all__ = ["DIFFUSERS_FAMILIES", "FAMILIES", "ClipPlan", "VideoFamily", "family_for", "supported_pipelines"]
