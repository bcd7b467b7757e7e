"""A training world: captioned clips and stills, and the words its captions use (docs/DESIGN.md §7.1).

    world = make_world("long", num_frames=8)
    videos, captions = world.clips(4, torch.Generator().manual_seed(0))    # (4, 3, 8, 32, 32) in [-1, 1]
    images, captions = world.stills(4, generator, full_captions=0.5)       # (4, 3, 32, 32)
    world.words                                                            # a text encoder's vocabulary

`"shapes"` is the clip world (`models.data.shapes`: one crossing per clip, no walls); `"long"` the
long-horizon world (`models.data.long_world`: bouncing shapes, panning backgrounds, clips cut anywhere
from videos that go on for ever). The training recipe reads its data only through this seam.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from samplers.validation import check_generator, check_int, check_real

from .long_world import (
    WorldConfig,
    render_world,
    sample_world,
    world_caption,
    world_still_caption,
    world_words,
)
from .shapes import ShapesConfig, caption, frames_to_tensor, render, sample_spec, still_caption

__all__ = ["WORLDS", "LongWorld", "ShapesWorld", "World", "make_world"]

# The clip world's caption words (its bundled text encoder was built with exactly these, in this order).
SHAPES_WORDS = ("a", "and", "moving", "red", "green", "blue", "yellow", "circle", "square", "triangle",
                "left", "right", "up", "down")  # fmt: skip


class World(Protocol):
    words: list[str]

    def clips(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        """n clips (n, 3, F, H, W) in [-1, 1] and their captions."""
        ...

    def stills(
        self, n: int, generator: torch.Generator, full_captions: float = 0.0
    ) -> tuple[torch.Tensor, list[str]]:
        """n stills (n, 3, H, W): first frames of clips, captioned as stills or, with probability
        `full_captions`, with the clip's caption."""
        ...


def _check(n: int, generator: torch.Generator, full_captions: float = 0.0) -> None:
    check_int("n", n, 1)
    check_generator(generator)
    check_real("full_captions", full_captions, 0.0, 1.0)


def _pick(full: str, still: str, use_full: bool) -> str:
    return full if use_full else still


@dataclass(frozen=True)
class ShapesWorld:
    config: ShapesConfig = field(default_factory=ShapesConfig)

    @property
    def words(self) -> list[str]:
        return list(SHAPES_WORDS)

    def clips(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        _check(n, generator)
        specs = [sample_spec(self.config, generator) for _ in range(n)]
        videos = [frames_to_tensor(render(s, self.config)) for s in specs]
        return torch.stack(videos), [caption(s) for s in specs]

    def stills(self, n, generator, full_captions=0.0):
        _check(n, generator, full_captions)
        specs = [sample_spec(self.config, generator) for _ in range(n)]
        frames = [frames_to_tensor(render(s, self.config)[:1])[:, 0] for s in specs]
        full = (torch.rand(n, generator=generator) < full_captions).tolist()
        texts = [_pick(caption(s), still_caption(s), f) for s, f in zip(specs, full, strict=True)]
        return torch.stack(frames), texts


@dataclass(frozen=True)
class LongWorld:
    config: WorldConfig = field(default_factory=WorldConfig)

    @property
    def words(self) -> list[str]:
        return world_words()

    def _specs_and_starts(self, n: int, generator: torch.Generator):
        specs = [sample_world(self.config, generator) for _ in range(n)]
        starts = torch.randint(self.config.horizon, (n,), generator=generator).tolist()
        return specs, starts

    def clips(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        _check(n, generator)
        specs, starts = self._specs_and_starts(n, generator)
        pairs = zip(specs, starts, strict=True)
        videos = [frames_to_tensor(render_world(s, self.config, t)) for s, t in pairs]
        return torch.stack(videos), [world_caption(s) for s in specs]

    def stills(self, n, generator, full_captions=0.0):
        _check(n, generator, full_captions)
        specs, starts = self._specs_and_starts(n, generator)
        pairs = zip(specs, starts, strict=True)
        frames = [frames_to_tensor(render_world(s, self.config, t, 1))[:, 0] for s, t in pairs]
        full = (torch.rand(n, generator=generator) < full_captions).tolist()
        texts = [_pick(world_caption(s), world_still_caption(s), f) for s, f in zip(specs, full, strict=True)]
        return torch.stack(frames), texts


WORLDS = {"shapes": ShapesWorld, "long": LongWorld}


def make_world(name: str, num_frames: int = 8) -> World:
    """The world `name` (a key of WORLDS) with clips of `num_frames` frames."""
    if name not in WORLDS:
        raise ValueError(f"world must be one of {tuple(WORLDS)}; got {name!r}")
    check_int("num_frames", num_frames, 1)
    if name == "shapes":
        return ShapesWorld(ShapesConfig(num_frames=num_frames))
    return LongWorld(WorldConfig(num_frames=num_frames))
