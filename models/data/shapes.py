"""The kit's own captioned world: coloured shapes moving over a plain background (docs/DESIGN.md §7).

    config = ShapesConfig(size=32, num_frames=8)
    spec = sample_spec(config, torch.Generator().manual_seed(0))
    frames = render(spec, config)          # uint8 (F, H, W, 3)
    caption(spec)                          # "a red circle moving right"
    MovingShapes(1000, config, seed=0)[3]  # {"video": (3, F, H, W) in [-1, 1], "caption", "labels", "spec"}

Coordinates are pixel indices: column c has x = c, row r has y = r (y grows downwards). A pixel belongs
to a shape of centre (x, y) and size R when it lies in the shape: circle (c-x)^2 + (r-y)^2 <= R^2,
square max(|c-x|, |r-y|) <= R, triangle (apex up) y-R <= r <= y+R and |c-x| <= (r-y+R)/2. No
anti-aliasing: every pixel is either the colour or the background.

Motion: the centre moves by speed * DIRECTIONS[direction] per frame (`trajectory`). With bouncing, the
centre is confined to [R, size-1-R] on each axis and reflects off its ends (the velocity flips). The shape
is drawn as a fixed sprite moved by whole pixels: frame f shows it at start + round(centre_f - start), so
its pixel area never flickers and the drawn displacement is within 0.5 px of the true one. Without
bouncing, `sample_spec` places the start (and caps the sampled radius and speed, see `ShapesConfig`) so
that the true centre keeps 1.5 px from the walls beyond the shape: the drawn shape never touches a wall.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from einops import rearrange

from samplers.validation import check_generator, check_int, check_range, check_real

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "DIRECTIONS",
    "SHAPES",
    "MovingShapes",
    "ShapeSpec",
    "ShapesConfig",
    "caption",
    "collate",
    "drawn_centres",
    "frames_to_tensor",
    "labels",
    "reflect",
    "render",
    "render_still",
    "sample_spec",
    "shape_mask",
    "still_caption",
    "tensor_to_frames",
    "trajectory",
]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
}
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "gray": (60, 60, 60),
    "white": (255, 255, 255),
}
_MARGIN = 1.5  # without bouncing: 1 px clear of the walls + 0.5 px for the whole-pixel rounding of the motion


@dataclass(frozen=True)
class ShapeSpec:
    shape: str  # one of SHAPES
    colour: str  # a key of COLOURS
    direction: str  # a key of DIRECTIONS
    speed: float  # pixels per frame along the direction
    size: float  # radius (circle) or half-side (square, triangle) in pixels
    x: float  # start centre, column coordinate in pixels
    y: float  # start centre, row coordinate in pixels (y down)
    background: str  # a key of BACKGROUNDS
    second: ShapeSpec | None = None  # an optional second shape (its own background is ignored)

    def __post_init__(self) -> None:
        _check_name("shape", self.shape, SHAPES)
        _check_name("colour", self.colour, COLOURS)
        _check_name("direction", self.direction, DIRECTIONS)
        _check_name("background", self.background, BACKGROUNDS)
        check_real("speed", self.speed, 0.0)
        check_real("size", self.size, 0.5)
        check_real("x", self.x, -1e6, 1e6)
        check_real("y", self.y, -1e6, 1e6)


@dataclass(frozen=True)
class ShapesConfig:
    size: int = 32  # frame side H = W in pixels
    num_frames: int = 8  # F, frames per clip
    speed: tuple[float, float] = (1.5, 2.5)  # uniform range of the speed in pixels per frame
    radius: tuple[float, float] = (5.0, 7.0)  # uniform range of the shape size (radius or half-side)
    bounce: bool = False  # False: the path fits inside the frame (radius, speed capped); True: reflect
    two_shapes_probability: float = 0.0  # chance of a second shape of another colour
    backgrounds: tuple[str, ...] = ("black", "gray")  # allowed background names (keys of BACKGROUNDS)
    shapes: tuple[str, ...] = SHAPES  # allowed shapes (labels still index into SHAPES)
    colours: tuple[str, ...] = tuple(COLOURS)  # allowed colours (two shapes need at least two)
    directions: tuple[str, ...] = tuple(DIRECTIONS)  # allowed directions

    def __post_init__(self) -> None:
        check_int("size", self.size, 8)
        check_int("num_frames", self.num_frames, 1)
        check_range("speed", self.speed, 0.0, float(self.size))
        check_range("radius", self.radius, 1.0, (self.size - 1) / 2)
        check_real("two_shapes_probability", self.two_shapes_probability, 0.0, 1.0)
        for field, allowed in (
            ("backgrounds", BACKGROUNDS),
            ("shapes", SHAPES),
            ("colours", COLOURS),
            ("directions", DIRECTIONS),
        ):
            _check_names(field, getattr(self, field), allowed)
        if self.two_shapes_probability > 0 and len(self.colours) < 2:
            raise ValueError(f"two shapes need at least 2 colours; got colours={self.colours!r}")
        if not self.bounce:
            _check_fits(self)


def _check_name(field: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {tuple(allowed)}; got {value!r}")


def _check_names(field: str, values: tuple[str, ...], allowed) -> None:
    if not isinstance(values, tuple) or not values:
        raise ValueError(f"{field} must be a non-empty tuple of names from {tuple(allowed)}; got {values!r}")
    for value in values:
        _check_name(field, value, allowed)


def _check_fits(config: ShapesConfig) -> None:
    """Without bouncing, the smallest shape at the lowest speed must cross the frame without a wall."""
    travel = config.speed[0] * (config.num_frames - 1)
    room = config.size - 1 - 2 * _MARGIN
    if 2 * config.radius[0] + travel > room:
        raise ValueError(
            f"bounce=False needs 2 * radius[0] + speed[0] * (num_frames - 1) <= size - 4 = {room:g}; got "
            f"radius={config.radius!r}, speed={config.speed!r}, num_frames={config.num_frames} "
            f"(travel {travel:g} px): lower them, raise size or set bounce=True"
        )


# ----------------------------------------------------------------------------------------------- sampling


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _choice(generator: torch.Generator, options: tuple[str, ...]) -> str:
    return options[int(torch.randint(len(options), (), generator=generator))]


def _radius_and_speed(config: ShapesConfig, generator: torch.Generator) -> tuple[float, float]:
    """Uniform in the configured ranges; without bouncing both are capped so that the path fits."""
    (r_lo, r_hi), (s_lo, s_hi) = config.radius, config.speed
    if config.bounce or config.num_frames == 1:
        return _uniform(generator, r_lo, r_hi), _uniform(generator, s_lo, s_hi)
    room = config.size - 1 - 2 * _MARGIN
    steps = config.num_frames - 1
    radius = _uniform(generator, r_lo, min(r_hi, (room - s_lo * steps) / 2))
    speed = _uniform(generator, s_lo, min(s_hi, (room - 2 * radius) / steps))
    return radius, speed


def _start(config: ShapesConfig, radius: float, velocity: float, generator: torch.Generator) -> float:
    """A start coordinate: anywhere inside (bounce) or such that the whole path keeps the margin."""
    if config.bounce:
        return _uniform(generator, radius, config.size - 1 - radius)
    low, high = _MARGIN + radius, config.size - 1 - _MARGIN - radius
    travel = velocity * (config.num_frames - 1)
    low, high = max(low, low - travel), min(high, high - travel)
    return _uniform(generator, low, max(low, high))


def _sample_one(config: ShapesConfig, generator: torch.Generator, colours: tuple[str, ...]) -> ShapeSpec:
    shape = _choice(generator, config.shapes)
    colour = _choice(generator, colours)
    direction = _choice(generator, config.directions)
    background = _choice(generator, config.backgrounds)
    radius, speed = _radius_and_speed(config, generator)
    dx, dy = DIRECTIONS[direction]
    x = _start(config, radius, speed * dx, generator)
    y = _start(config, radius, speed * dy, generator)
    return ShapeSpec(shape, colour, direction, speed, radius, x, y, background)


def sample_spec(config: ShapesConfig, generator: torch.Generator) -> ShapeSpec:
    """Shape, colour, direction and background uniform over the allowed names; radius, speed and start
    uniform in their (capped) ranges; a second shape of another colour with `two_shapes_probability`.
    Deterministic given the generator's state; draws only from `generator`."""
    check_generator(generator)
    first = _sample_one(config, generator, config.colours)
    if config.two_shapes_probability == 0 or _uniform(generator, 0, 1) >= config.two_shapes_probability:
        return first
    others = tuple(c for c in config.colours if c != first.colour)
    second = _sample_one(config, generator, others)
    return replace(first, second=replace(second, background=first.background))


# ---------------------------------------------------------------------------------------------- rendering


def reflect(position: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold an unbounded straight path into [low, high] by reflecting off both ends."""
    span = high - low
    if span <= 0:
        return np.full_like(position, low)
    phase = np.mod(position - low, 2 * span)
    return low + span - np.abs(phase - span)


def trajectory(spec: ShapeSpec, config: ShapesConfig) -> np.ndarray:
    """The centre (x, y) in every frame: float64 (F, 2)."""
    dx, dy = DIRECTIONS[spec.direction]
    steps = np.arange(config.num_frames, dtype=np.float64) * spec.speed
    xs, ys = spec.x + dx * steps, spec.y + dy * steps
    if config.bounce:
        low, high = spec.size, config.size - 1 - spec.size
        xs, ys = reflect(xs, low, high), reflect(ys, low, high)
    return np.stack([xs, ys], axis=1)


def shape_mask(shape: str, radius: float, centres: np.ndarray, side: int) -> np.ndarray:
    """Boolean (F, H, W): the pixels covered by the shape centred at each row of `centres`."""
    cols = np.arange(side, dtype=np.float64)[None, None, :] - centres[:, 0, None, None]
    rows = np.arange(side, dtype=np.float64)[None, :, None] - centres[:, 1, None, None]
    if shape == "circle":
        return cols**2 + rows**2 <= radius**2
    if shape == "square":
        return (np.abs(cols) <= radius) & (np.abs(rows) <= radius)
    return (np.abs(rows) <= radius) & (np.abs(cols) <= (rows + radius) / 2)


def drawn_centres(spec: ShapeSpec, config: ShapesConfig) -> np.ndarray:
    """Where the sprite is drawn: start + round(trajectory - start), float64 (F, 2)."""
    start = np.array([spec.x, spec.y])
    return start + np.round(trajectory(spec, config) - start)


def render(spec: ShapeSpec, config: ShapesConfig = ShapesConfig()) -> np.ndarray:
    """The clip: uint8 (F, H, W, 3), a filled shape (or two; the second drawn on top) on the background."""
    side = config.size
    frames = np.empty((config.num_frames, side, side, 3), dtype=np.uint8)
    frames[...] = BACKGROUNDS[spec.background]
    for part in (spec, spec.second):
        if part is not None:
            mask = shape_mask(part.shape, part.size, drawn_centres(part, config), side)
            frames[mask] = COLOURS[part.colour]
    return frames


def render_still(spec: ShapeSpec, config: ShapesConfig = ShapesConfig()) -> np.ndarray:
    """Frame 0 of `render`: uint8 (H, W, 3)."""
    return render(spec, replace(config, num_frames=1))[0]


# ------------------------------------------------------------------------------------- captions and labels


def caption(spec: ShapeSpec) -> str:
    """The clip caption, e.g. "a red circle moving right"; with a second shape "a red circle moving right
    and a blue square moving up"."""
    text = f"a {spec.colour} {spec.shape} moving {spec.direction}"
    return text if spec.second is None else f"{text} and {caption(spec.second)}"


def still_caption(spec: ShapeSpec) -> str:
    """The still caption, e.g. "a red circle"; with a second shape "a red circle and a blue square"."""
    text = f"a {spec.colour} {spec.shape}"
    return text if spec.second is None else f"{text} and {still_caption(spec.second)}"


def labels(spec: ShapeSpec) -> dict[str, int]:
    """Class indices of the (first) shape: into SHAPES, list(COLOURS) and list(DIRECTIONS)."""
    return {
        "shape": SHAPES.index(spec.shape),
        "colour": list(COLOURS).index(spec.colour),
        "direction": list(DIRECTIONS).index(spec.direction),
    }


# ------------------------------------------------------------------------------------------------ tensors


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (..., F, H, W, 3) -> float32 (..., 3, F, H, W) in [-1, 1] (0 -> -1, 255 -> 1)."""
    if frames.dtype != np.uint8 or frames.ndim < 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (..., F, H, W, 3); got {frames.dtype} {frames.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(torch.float32) / 127.5 - 1.0
    return rearrange(tensor, "... f h w c -> ... c f h w").contiguous()


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """The inverse of `frames_to_tensor`: (..., 3, F, H, W) in [-1, 1] -> uint8 (..., F, H, W, 3),
    rounded and clipped."""
    if video.ndim < 4 or video.shape[-4] != 3:
        raise ValueError(f"video must be (..., 3, F, H, W); got shape {tuple(video.shape)}")
    values = ((video.detach().to(torch.float32).cpu() + 1.0) * 127.5).round().clamp(0, 255)
    return rearrange(values.to(torch.uint8), "... c f h w -> ... f h w c").numpy()


# ------------------------------------------------------------------------------------------------ dataset


class MovingShapes(torch.utils.data.Dataset):
    """`length` clips (or stills) generated on the fly; item i depends only on (seed, i).

    Item: {"video": float (3, F, H, W) in [-1, 1], "caption": str, "labels": {"shape", "colour",
    "direction"}, "spec": ShapeSpec}; with `still=True`, "image" (3, H, W) instead of "video", the still
    caption and labels without "direction". Batch with `collate` (specs are kept as a list).
    """

    def __init__(
        self, length: int, config: ShapesConfig = ShapesConfig(), seed: int = 0, still: bool = False
    ):
        self.length = check_int("length", length, 0)
        self.seed = check_int("seed", seed, 0)
        self.config = config
        self.still = bool(still)

    def __len__(self) -> int:
        return self.length

    def spec(self, index: int) -> ShapeSpec:
        """The spec of item `index` (negative indices count from the end)."""
        if not -self.length <= index < self.length:
            raise IndexError(f"index must be in [{-self.length}, {self.length - 1}]; got {index!r}")
        index %= self.length
        return sample_spec(self.config, torch.Generator().manual_seed(self.seed * 1_000_003 + index))

    def __getitem__(self, index: int) -> dict:
        spec = self.spec(index)
        if self.still:
            image = frames_to_tensor(render_still(spec, self.config)[None])[:, 0]
            tags = {k: v for k, v in labels(spec).items() if k != "direction"}
            return {"image": image, "caption": still_caption(spec), "labels": tags, "spec": spec}
        video = frames_to_tensor(render(spec, self.config))
        return {"video": video, "caption": caption(spec), "labels": labels(spec), "spec": spec}


def collate(items: list[dict]) -> dict:
    """Batch `MovingShapes` items: tensors stacked, labels as int64 tensors, captions and specs as lists."""
    key = "video" if "video" in items[0] else "image"
    return {
        key: torch.stack([item[key] for item in items]),
        "caption": [item["caption"] for item in items],
        "labels": {k: torch.tensor([item["labels"][k] for item in items]) for k in items[0]["labels"]},
        "spec": [item["spec"] for item in items],
    }
