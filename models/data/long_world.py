"""The long-horizon world: captioned videos that go on for ever and stay in frame (docs/DESIGN.md §7.1).

    config = WorldConfig()                                   # 32 x 32, clips of 8 frames
    spec = sample_world(config, torch.Generator().manual_seed(0))
    world_caption(spec)          # e.g. "a red circle bouncing around over stripes drifting left"
    video = render_world(spec, config, start=0, num_frames=200)   # uint8 (200, H, W, 3), any length
    clip = render_world(spec, config, start=37)              # frames 37..44 of the same video
    LongShapes(1000, config, seed=0)[3]   # {"video", "caption", "labels", "spec", "start"}

One or two shapes (the `models.data.shapes` sprites, colours and pixel rules) move at constant speed and
reflect off the walls, so a long video never leaves the frame and its direction changes only at a wall.
A shape's motion is one of `MOTIONS`: "around" (diagonal, both axes at `speed`), "sideways" (x only) or
"vertically" (y only). Coordinates are pixel indices (x = column, y = row, y down); the centre of a shape
of size R is confined to [R, size - 1 - R] on each moving axis. At frame t (any integer >= 0) the centre
is the straight path x0 + vx t folded into that interval (`centres`), and the sprite is drawn at
x0 + round(centre - x0): whole pixels, within 0.5 px of the true path, the same rule as the clip world.

The background is plain ("black", "gray") or textured ("stripes": vertical bands `STRIPE_PERIOD` px per
period; "gradient": a smooth periodic ramp of period 32 px); a textured background drifts left or right
at `drift_speed` px/frame (a camera pan), drawn shifted by round(phase + drift_speed * t) whole pixels.
Background colours are dull (channel spread <= 60) and the shapes' are pure primaries, so a pixel-level
judge can tell them apart. Frames t..t+F-1 rendered alone equal those frames of any longer rendering:
a clip is exactly a window of its long video, which is the reference of every pixel metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from samplers.validation import check_generator, check_int, check_range, check_real

from .shapes import COLOURS, SHAPES, frames_to_tensor, reflect, shape_mask

__all__ = [
    "BACKDROPS",
    "DRIFTS",
    "MOTIONS",
    "STRIPE_PERIOD",
    "LongShapes",
    "Mover",
    "WorldConfig",
    "WorldSpec",
    "backdrop_phrase",
    "centres",
    "drawn_positions",
    "parse_caption",
    "render_world",
    "sample_world",
    "spec_for_caption",
    "world_caption",
    "world_labels",
    "world_still_caption",
    "world_words",
]

MOTIONS: dict[str, tuple[int, int]] = {"around": (1, 1), "sideways": (1, 0), "vertically": (0, 1)}
BACKDROPS: tuple[str, ...] = ("black", "gray", "stripes", "gradient")
TEXTURED: tuple[str, ...] = ("stripes", "gradient")
DRIFTS: dict[str, int] = {"left": 1, "right": -1}  # texture coordinate u = column + sign * shift
STRIPE_PERIOD = 12  # px: two 6-px bands, wider than the VAE's 4-px latent cells
_PLAIN = {"black": (0, 0, 0), "gray": (60, 60, 60)}
_STRIPES = ((30, 30, 40), (90, 90, 100))
_GRADIENT = ((20, 30, 40), (80, 90, 100))  # ends of the ramp


@dataclass(frozen=True)
class Mover:
    """One shape: its look, its motion, where it is at frame 0 and which way it goes first."""

    shape: str  # one of SHAPES
    colour: str  # a key of COLOURS
    motion: str  # a key of MOTIONS
    speed: float  # px/frame along each moving axis
    size: float  # radius (circle) or half-side (square, triangle)
    x: float  # centre at frame 0 (column)
    y: float  # centre at frame 0 (row, y down)
    sx: int = 1  # sign of the x velocity at frame 0 (+1 right)
    sy: int = 1  # sign of the y velocity at frame 0 (+1 down)

    def __post_init__(self) -> None:
        for field, value, allowed in (("shape", self.shape, SHAPES), ("colour", self.colour, COLOURS),
                                      ("motion", self.motion, MOTIONS)):  # fmt: skip
            if value not in allowed:
                raise ValueError(f"{field} must be one of {tuple(allowed)}; got {value!r}")
        check_real("speed", self.speed, 0.0, 1e3)
        check_real("size", self.size, 0.5, 1e3)
        check_real("x", self.x, -1e6, 1e6)
        check_real("y", self.y, -1e6, 1e6)
        for field in ("sx", "sy"):
            if type(getattr(self, field)) is not int or getattr(self, field) not in (-1, 1):
                raise ValueError(f"{field} must be -1 or 1; got {getattr(self, field)!r}")

    @property
    def velocity(self) -> tuple[float, float]:
        """(vx, vy) at frame 0 in px/frame."""
        ax, ay = MOTIONS[self.motion]
        return self.sx * ax * self.speed, self.sy * ay * self.speed


@dataclass(frozen=True)
class WorldSpec:
    movers: tuple[Mover, ...]  # one or two; later ones are drawn on top
    backdrop: str  # one of BACKDROPS
    drift: str | None = None  # a key of DRIFTS for a textured backdrop, None for a plain one
    drift_speed: float = 0.0  # px/frame of the background
    phase: float = 0.0  # background shift at frame 0 in px

    def __post_init__(self) -> None:
        if not isinstance(self.movers, tuple) or not 1 <= len(self.movers) <= 2:
            raise ValueError(f"movers must be a tuple of 1 or 2 Mover; got {self.movers!r}")
        if len({m.colour for m in self.movers}) != len(self.movers):
            raise ValueError(f"movers must have distinct colours; got {[m.colour for m in self.movers]}")
        if self.backdrop not in BACKDROPS:
            raise ValueError(f"backdrop must be one of {BACKDROPS}; got {self.backdrop!r}")
        if (self.drift is None) == (self.backdrop in TEXTURED) or (self.drift and self.drift not in DRIFTS):
            raise ValueError(
                f"drift must be one of {tuple(DRIFTS)} for a textured backdrop {TEXTURED} and None for a "
                f"plain one; got backdrop={self.backdrop!r}, drift={self.drift!r}"
            )
        check_real("drift_speed", self.drift_speed, 0.0, 1e3)
        check_real("phase", self.phase, -1e6, 1e6)


@dataclass(frozen=True)
class WorldConfig:
    size: int = 32  # frame side in pixels
    num_frames: int = 8  # F, frames per clip of `LongShapes` and the default of `render_world`
    speed: tuple[float, float] = (0.5, 1.0)  # px/frame per moving axis: a clip is a fraction of a crossing
    radius: tuple[float, float] = (4.0, 6.0)  # shape size (radius or half-side)
    drift_speed: tuple[float, float] = (0.5, 1.0)  # px/frame of a textured background
    two_shapes_probability: float = 0.3  # chance of a second shape of another colour
    backdrops: tuple[str, ...] = BACKDROPS
    motions: tuple[str, ...] = tuple(MOTIONS)
    horizon: int = 512  # `LongShapes` clips start at a frame uniform in [0, horizon)

    def __post_init__(self) -> None:
        check_int("size", self.size, 8)
        check_int("num_frames", self.num_frames, 1)
        check_int("horizon", self.horizon, 1)
        check_range("speed", self.speed, 0.0, float(self.size))
        check_range("radius", self.radius, 1.0, (self.size - 1) / 2 - 1)
        check_range("drift_speed", self.drift_speed, 0.0, float(self.size))
        check_real("two_shapes_probability", self.two_shapes_probability, 0.0, 1.0)
        for field, names, allowed in (("backdrops", self.backdrops, BACKDROPS),
                                      ("motions", self.motions, tuple(MOTIONS))):  # fmt: skip
            if not isinstance(names, tuple) or not names or any(n not in allowed for n in names):
                raise ValueError(f"{field} must be a non-empty tuple of names from {allowed}; got {names!r}")


# ----------------------------------------------------------------------------------------------- sampling


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _index(generator: torch.Generator, n: int) -> int:
    return int(torch.randint(n, (), generator=generator))


def _mover(config: WorldConfig, generator: torch.Generator, colours: tuple[str, ...]) -> Mover:
    shape = SHAPES[_index(generator, len(SHAPES))]
    colour = colours[_index(generator, len(colours))]
    motion = config.motions[_index(generator, len(config.motions))]
    return _placed(config, generator, shape, colour, motion)


def _placed(config: WorldConfig, generator: torch.Generator, shape: str, colour: str, motion: str) -> Mover:
    """A mover of this look and motion with its size, speed, start and first direction drawn."""
    size = _uniform(generator, *config.radius)
    speed = _uniform(generator, *config.speed)
    x, y = (_uniform(generator, size, config.size - 1 - size) for _ in range(2))
    sx, sy = (1 if _index(generator, 2) else -1 for _ in range(2))
    return Mover(shape, colour, motion, speed, size, x, y, sx, sy)


def sample_world(config: WorldConfig, generator: torch.Generator) -> WorldSpec:
    """Shapes, colours, motions and backdrop uniform over the allowed names, sizes, speeds and starts
    uniform in their ranges, a second shape of another colour with `two_shapes_probability`. Draws only
    from `generator`, always the same number of draws for the same branch."""
    check_generator(generator)
    first = _mover(config, generator, tuple(COLOURS))
    movers: tuple[Mover, ...] = (first,)
    if _uniform(generator, 0, 1) < config.two_shapes_probability:
        movers += (_mover(config, generator, tuple(c for c in COLOURS if c != first.colour)),)
    backdrop = config.backdrops[_index(generator, len(config.backdrops))]
    if backdrop not in TEXTURED:
        return WorldSpec(movers, backdrop)
    return _drifting(config, generator, movers, backdrop, tuple(DRIFTS)[_index(generator, len(DRIFTS))])


def _drifting(config: WorldConfig, generator, movers: tuple[Mover, ...], backdrop: str, drift: str):
    """A textured backdrop drifting `drift`, its speed and phase (in [0, STRIPE_PERIOD) px) drawn."""
    speed, phase = _uniform(generator, *config.drift_speed), _uniform(generator, 0, STRIPE_PERIOD)
    return WorldSpec(movers, backdrop, drift, speed, phase)


# ---------------------------------------------------------------------------------------------- rendering


def _frames(start: int, num_frames: int) -> np.ndarray:
    check_int("start", start, 0)
    check_int("num_frames", num_frames, 1)
    return np.arange(start, start + num_frames, dtype=np.float64)


def centres(mover: Mover, config: WorldConfig, start: int = 0, num_frames: int | None = None) -> np.ndarray:
    """The true centre (x, y) at frames start..start+F-1: float64 (F, 2), reflected off the walls."""
    t = _frames(start, config.num_frames if num_frames is None else num_frames)
    (vx, vy), low, high = mover.velocity, mover.size, config.size - 1 - mover.size
    return np.stack([reflect(mover.x + vx * t, low, high), reflect(mover.y + vy * t, low, high)], axis=1)


def drawn_positions(
    mover: Mover, config: WorldConfig, start: int = 0, num_frames: int | None = None
) -> np.ndarray:
    """Where the sprite is drawn: x0 + round(centre - x0), float64 (F, 2)."""
    origin = np.array([mover.x, mover.y])
    return origin + np.round(centres(mover, config, start, num_frames) - origin)


def _texture(spec: WorldSpec, u: np.ndarray) -> np.ndarray:
    """Colours (..., 3) of the textured backdrop at texture columns u (integers)."""
    if spec.backdrop == "stripes":
        band = (np.floor_divide(u, STRIPE_PERIOD // 2) % 2).astype(np.int64)
        return np.asarray(_STRIPES, dtype=np.float64)[band]
    ramp = 0.5 - 0.5 * np.cos(2 * np.pi * u / 32.0)  # period 32 px, smooth and continuous
    low, high = (np.asarray(c, dtype=np.float64) for c in _GRADIENT)
    return low + ramp[..., None] * (high - low)


def _background(spec: WorldSpec, config: WorldConfig, t: np.ndarray) -> np.ndarray:
    """uint8 (F, H, W, 3) backgrounds at frames t."""
    side = config.size
    if spec.backdrop not in TEXTURED:
        return np.broadcast_to(np.array(_PLAIN[spec.backdrop], np.uint8), (len(t), side, side, 3)).copy()
    shift = np.round(spec.phase + spec.drift_speed * t)  # (F,) whole pixels
    u = np.arange(side, dtype=np.float64)[None, :] + DRIFTS[spec.drift] * shift[:, None]  # (F, W)
    rows = np.round(_texture(spec, u)).astype(np.uint8)  # (F, W, 3)
    return np.ascontiguousarray(np.broadcast_to(rows[:, None], (len(t), side, side, 3)))


def render_world(
    spec: WorldSpec, config: WorldConfig = WorldConfig(), start: int = 0, num_frames: int | None = None
) -> np.ndarray:
    """Frames start..start+F-1 of the long video: uint8 (F, H, W, 3); F defaults to config.num_frames."""
    count = config.num_frames if num_frames is None else num_frames
    frames = _background(spec, config, _frames(start, count))
    for mover in spec.movers:
        mask = shape_mask(mover.shape, mover.size, drawn_positions(mover, config, start, count), config.size)
        frames[mask] = COLOURS[mover.colour]
    return frames


# ------------------------------------------------------------------------------------- captions and labels


def world_caption(spec: WorldSpec) -> str:
    """The long video's caption: "a red circle bouncing around over black", "a red circle bouncing
    sideways and a blue square bouncing vertically over stripes drifting left" (at most 16 words)."""
    movers = " and ".join(f"a {m.colour} {m.shape} bouncing {m.motion}" for m in spec.movers)
    return f"{movers} {backdrop_phrase(spec.backdrop, spec.drift)}"


def world_still_caption(spec: WorldSpec) -> str:
    """A still's caption: the shapes and the backdrop, no motion ("a red circle over stripes")."""
    movers = " and ".join(f"a {m.colour} {m.shape}" for m in spec.movers)
    article = "a " if spec.backdrop == "gradient" else ""
    return f"{movers} over {article}{spec.backdrop}"


def backdrop_phrase(backdrop: str, drift: str | None) -> str:
    """How a caption names the backdrop: "over black", "over stripes drifting left", "over a gradient
    drifting right"."""
    if backdrop not in TEXTURED:
        return f"over {backdrop}"
    article = "" if backdrop == "stripes" else "a "
    return f"over {article}{backdrop} drifting {drift}"


def parse_caption(caption: str) -> tuple[tuple[tuple[str, str, str], ...], str, str | None]:
    """The inverse of `world_caption` up to numbers: ((colour, shape, motion) per shape, backdrop, drift).
    ValueError naming the caption where it is not exactly one of this world's captions."""
    head, _, tail = caption.partition(" over ")
    words = tail.split()
    drift = words[-1] if len(words) >= 3 and words[-2] == "drifting" else None
    backdrop = words[1] if words[:1] == ["a"] and len(words) > 1 else (words[0] if words else "")
    parts = [part.split() for part in head.split(" and ")]
    movers = tuple((w[1], w[2], w[4]) for w in parts if len(w) == 5)
    try:
        spec = WorldSpec(tuple(Mover(s, c, m, 0.0, 1.0, 0.0, 0.0) for c, s, m in movers), backdrop, drift)
    except ValueError as err:
        raise ValueError(f"caption is not a caption of the long world ({err}); got {caption!r}") from None
    if world_caption(spec) != caption:
        raise ValueError(
            f"caption must read exactly 'a <colour> <shape> bouncing <motion> [and a ...] over <backdrop>' "
            f"as the world writes it (e.g. {world_caption(spec)!r}); got {caption!r}"
        )
    return movers, backdrop, drift


def spec_for_caption(caption: str, config: WorldConfig, generator: torch.Generator) -> WorldSpec:
    """A world the caption describes: its shapes, colours, motions, backdrop and drift, with sizes,
    speeds, starts and phase drawn as `sample_world` draws them."""
    movers, backdrop, drift = parse_caption(caption)
    check_generator(generator)
    drawn = tuple(_placed(config, generator, shape, colour, motion) for colour, shape, motion in movers)
    if drift is None:
        return WorldSpec(drawn, backdrop)
    return _drifting(config, generator, drawn, backdrop, drift)


def world_words() -> list[str]:
    """Every word a caption of this world can use, in a fixed order (a text encoder's vocabulary)."""
    words = ["a", "and", "bouncing", "over", "drifting", *SHAPES, *COLOURS, *MOTIONS, *BACKDROPS, *DRIFTS]
    return list(dict.fromkeys(words))


def world_labels(spec: WorldSpec) -> dict[str, int]:
    """Class indices of the first shape (shape, colour, motion) and of the backdrop."""
    first = spec.movers[0]
    return {
        "shape": SHAPES.index(first.shape),
        "colour": list(COLOURS).index(first.colour),
        "motion": list(MOTIONS).index(first.motion),
        "backdrop": BACKDROPS.index(spec.backdrop),
    }


# ------------------------------------------------------------------------------------------------ dataset


class LongShapes(torch.utils.data.Dataset):
    """`length` clips cut from long videos; item i depends only on (seed, i).

    Item: {"video": float (3, F, H, W) in [-1, 1], "caption": the long video's caption, "labels":
    `world_labels`, "spec": WorldSpec, "start": the clip's first frame in its long video}.
    """

    def __init__(self, length: int, config: WorldConfig = WorldConfig(), seed: int = 0):
        self.length = check_int("length", length, 0)
        self.seed = check_int("seed", seed, 0)
        self.config = config

    def __len__(self) -> int:
        return self.length

    def spec_and_start(self, index: int) -> tuple[WorldSpec, int]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index must be in [{-self.length}, {self.length - 1}]; got {index!r}")
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index % self.length)
        spec = sample_world(self.config, generator)
        return spec, _index(generator, self.config.horizon)

    def __getitem__(self, index: int) -> dict:
        spec, start = self.spec_and_start(index)
        video = frames_to_tensor(render_world(spec, self.config, start))
        return {"video": video, "caption": world_caption(spec), "labels": world_labels(spec),
                "spec": spec, "start": start}  # fmt: skip

