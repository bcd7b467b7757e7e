"""The data package: the moving-shapes world and the paper's three data strategies (docs/DESIGN.md §7)."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from models.data import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    SHAPES,
    LabelCaptioner,
    MovingShapes,
    ShapesConfig,
    ShapeSpec,
    ZoomPan,
    caption,
    collate,
    frames_to_tensor,
    labels,
    render,
    render_still,
    sample_spec,
    segment_and_caption,
    shot_boundaries,
    still_caption,
    tensor_to_frames,
    trajectory,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _coloured(frames: np.ndarray, colour: str) -> np.ndarray:
    """Boolean (..., H, W): pixels of exactly the colour."""
    return np.all(frames == np.array(COLOURS[colour], dtype=np.uint8), axis=-1)


def _centroid(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()])


# ------------------------------------------------------------------------------------------ moving shapes


def test_constants():
    assert SHAPES == ("circle", "square", "triangle")
    assert set(COLOURS) == {"red", "green", "blue", "yellow"}
    assert len(set(COLOURS.values())) == 4
    assert DIRECTIONS == {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
    assert {"black", "gray"} <= set(BACKGROUNDS)
    assert not set(COLOURS.values()) & set(BACKGROUNDS.values())


def test_dataset_is_deterministic_per_seed_and_index():
    data = MovingShapes(20, seed=3)
    first, again = data[5], MovingShapes(20, seed=3)[5]
    assert torch.equal(first["video"], again["video"]) and first["spec"] == again["spec"]
    assert first["spec"] == sample_spec(ShapesConfig(), _gen(3 * 1_000_003 + 5))
    assert first["spec"] != data[6]["spec"]
    assert first["spec"] != MovingShapes(20, seed=4)[5]["spec"]
    assert data[-1]["spec"] == data[19]["spec"]
    with pytest.raises(IndexError):
        data[20]


def test_item_layout_captions_and_labels_match_the_spec():
    item = MovingShapes(4, seed=1)[2]
    spec = item["spec"]
    video = item["video"]
    assert video.shape == (3, 8, 32, 32) and video.dtype == torch.float32
    assert video.min() >= -1 and video.max() <= 1
    assert item["caption"] == f"a {spec.colour} {spec.shape} moving {spec.direction}" == caption(spec)
    assert item["labels"] == labels(spec)
    assert SHAPES[item["labels"]["shape"]] == spec.shape
    assert list(COLOURS)[item["labels"]["colour"]] == spec.colour
    assert list(DIRECTIONS)[item["labels"]["direction"]] == spec.direction
    assert np.array_equal(tensor_to_frames(video), render(spec, ShapesConfig()))


def test_sampling_covers_every_name():
    specs = [sample_spec(ShapesConfig(), _gen(i)) for i in range(200)]
    assert {s.shape for s in specs} == set(SHAPES)
    assert {s.colour for s in specs} == set(COLOURS)
    assert {s.direction for s in specs} == set(DIRECTIONS)
    assert {s.background for s in specs} == {"black", "gray"}


@given(seed=st.integers(0, 2**31 - 1), frames=st.integers(1, 10))
def test_render_follows_the_spec_and_never_touches_a_wall(seed, frames):
    config = ShapesConfig(num_frames=frames, speed=(1.0, 2.0))
    spec = sample_spec(config, _gen(seed))
    assert config.speed[0] <= spec.speed <= config.speed[1]
    assert config.radius[0] <= spec.size <= config.radius[1]
    video = render(spec, config)
    assert video.shape == (frames, 32, 32, 3) and video.dtype == np.uint8
    mask = _coloured(video, spec.colour)
    background = np.all(video == np.array(BACKGROUNDS[spec.background], dtype=np.uint8), axis=-1)
    assert np.all(mask | background)
    border = np.ones((32, 32), dtype=bool)
    border[1:-1, 1:-1] = False
    assert not mask[:, border].any()
    step = spec.speed * np.array(DIRECTIONS[spec.direction])
    start = _centroid(mask[0])
    for f in range(frames):
        x, y = spec.x + f * step[0], spec.y + f * step[1]
        assert mask[f, round(y), round(x)]
        assert np.abs(_centroid(mask[f]) - start - f * step).max() < 0.5


def test_bounce_reflects_off_the_wall():
    config = ShapesConfig(num_frames=6, bounce=True)
    spec = ShapeSpec("square", "red", "right", speed=3.0, size=5.0, x=20.0, y=15.0, background="black")
    centres = trajectory(spec, config)
    np.testing.assert_allclose(centres[:, 0], [20, 23, 26, 23, 20, 17])  # the wall for the centre: 31 - 5
    np.testing.assert_allclose(centres[:, 1], 15)
    mask = _coloured(render(spec, config), "red")
    xs = [_centroid(m)[0] for m in mask]
    np.testing.assert_allclose(xs, centres[:, 0], atol=0.5)
    assert mask[2, :, -1].any()  # touches the right wall at the turn, never leaves the frame
    assert mask.sum(axis=(1, 2)).min() == mask.sum(axis=(1, 2)).max()


@given(seed=st.integers(0, 2**31 - 1))
def test_bounce_keeps_the_whole_shape_inside(seed):
    config = ShapesConfig(num_frames=16, bounce=True, speed=(3.0, 4.0))
    spec = sample_spec(config, _gen(seed))
    area = _coloured(render(spec, config), spec.colour).sum(axis=(1, 2))
    assert area.min() == area.max() > 0


def test_still_variant():
    data = MovingShapes(3, seed=2, still=True)
    item = data[1]
    spec = item["spec"]
    assert set(item) == {"image", "caption", "labels", "spec"}
    assert item["image"].shape == (3, 32, 32)
    assert item["caption"] == f"a {spec.colour} {spec.shape}" == still_caption(spec)
    assert item["labels"] == {"shape": SHAPES.index(spec.shape), "colour": list(COLOURS).index(spec.colour)}
    np.testing.assert_array_equal(render_still(spec, ShapesConfig()), render(spec, ShapesConfig())[0])
    assert torch.equal(item["image"], MovingShapes(3, seed=2)[1]["video"][:, 0])


def test_two_shapes():
    config = ShapesConfig(two_shapes_probability=1.0)
    spec = sample_spec(config, _gen(7))
    other = spec.second
    assert other is not None and other.colour != spec.colour and other.background == spec.background
    assert caption(spec) == f"{caption(ShapeSpec(**{**spec.__dict__, 'second': None}))} and {caption(other)}"
    assert still_caption(spec) == f"a {spec.colour} {spec.shape} and a {other.colour} {other.shape}"
    frames = render(spec, config)
    assert _coloured(frames, other.colour).any(axis=(1, 2)).all()
    assert sample_spec(ShapesConfig(), _gen(7)).second is None


def test_frames_tensor_round_trip_and_collate():
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 4, 5, 6, 3), dtype=np.uint8)
    video = frames_to_tensor(frames)
    assert video.shape == (2, 3, 4, 5, 6) and video.min() >= -1 and video.max() <= 1
    np.testing.assert_array_equal(tensor_to_frames(video), frames)
    np.testing.assert_array_equal(tensor_to_frames(video + 1e-3), frames)
    loader = torch.utils.data.DataLoader(MovingShapes(5), batch_size=2, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["video"].shape == (2, 3, 8, 32, 32) and len(batch["caption"]) == 2
    assert batch["labels"]["direction"].dtype == torch.int64 and len(batch["spec"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"size": 4}, "size"),
        ({"num_frames": 0}, "num_frames"),
        ({"speed": (2.0, 1.0)}, "speed"),
        ({"radius": (0.0, 3.0)}, "radius"),
        ({"backgrounds": ("purple",)}, "backgrounds"),
        ({"two_shapes_probability": 1.5}, "two_shapes_probability"),
        ({"num_frames": 20}, "bounce=False"),
    ],
)
def test_bad_config_is_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ShapesConfig(**kwargs)
    with pytest.raises(ValueError, match="colour"):
        ShapeSpec("circle", "pink", "left", 1.0, 5.0, 10.0, 10.0, "black")


# -------------------------------------------------------------------------------------------- pseudo-videos


def test_zoom_pan_identity_keeps_every_frame():
    image = torch.rand(3, 17, 23, generator=_gen(0))
    video = ZoomPan(num_frames=5, zoom=(1.0, 1.0), pan=(0.0, 0.0))(image, _gen(1))
    assert video.shape == (3, 5, 17, 23)
    assert (video - image[:, None]).abs().max() < 1e-6
    batch = torch.rand(2, 4, 9, 9, generator=_gen(2))
    assert ZoomPan(num_frames=3)(batch, _gen(3)).shape == (2, 4, 3, 9, 9)


def test_zoom_pan_shifts_content_against_the_pan():
    image = torch.zeros(1, 32, 32)
    image[:, 12:20, 12:20] = 1.0  # a bright block in the middle
    video = ZoomPan(num_frames=4, zoom=(1.0, 1.0), pan=(0.25, 0.25))(image, _gen(0))  # camera right, down
    masses = video[0]
    cols = (masses.sum(dim=1) * torch.arange(32)).sum(dim=1) / masses.sum(dim=(1, 2))
    rows = (masses.sum(dim=2) * torch.arange(32)).sum(dim=1) / masses.sum(dim=(1, 2))
    assert torch.allclose(cols[0], torch.tensor(15.5)) and torch.allclose(rows[0], torch.tensor(15.5))
    assert torch.all(cols.diff() < -1) and torch.all(rows.diff() < -1)  # content moves left and up
    assert torch.allclose(cols[-1], torch.tensor(15.5 - 0.25 * 32), atol=1e-4)


def test_zoom_pan_zooms_in_and_is_seeded():
    image = torch.zeros(1, 32, 32)
    image[:, 12:20, 12:20] = 1.0
    zoom_pan = ZoomPan(num_frames=3, zoom=(2.0, 2.0), pan=(0.0, 0.0))
    video = zoom_pan(image, _gen(0))
    areas = (video[0] > 0.5).sum(dim=(1, 2))
    assert areas[0] == 64 and areas[-1] == 256
    random = ZoomPan()
    image = torch.rand(3, 16, 16, generator=_gen(4))
    assert torch.equal(random(image, _gen(5)), random(image, _gen(5)))
    assert not torch.equal(random(image, _gen(5)), random(image, _gen(6)))
    inside = ZoomPan(num_frames=2, zoom=(2.0, 2.0), pan=(1.0, 1.0), keep_inside=True)
    assert inside.thetas(torch.tensor([2.0]), torch.tensor([[1.0, 1.0]]))[-1, :, 2].tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="zoom"):
        ZoomPan(zoom=(1.3, 1.0))


# ------------------------------------------------------------------------------------------------- captions


def test_label_captioner():
    captioner = LabelCaptioner(templates=("a video of {label}", "{label}"))
    generator = _gen(0)
    outputs = {captioner("Playing_Guitar", generator) for _ in range(30)}
    assert outputs == {"a video of playing guitar", "playing guitar"}
    assert LabelCaptioner().all("ApplyEyeMakeup")[0] == "a video of apply eye makeup"
    assert captioner("x", _gen(9)) == captioner("x", _gen(9))
    for bad in (("no slot",), ("{label} {other}",), ()):
        with pytest.raises(ValueError, match="templates"):
            LabelCaptioner(templates=bad)


# --------------------------------------------------------------------------------------------- segmentation


def _three_scenes(lengths=(7, 12, 9)) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    names = ["red", "green", "blue"]
    scenes = [
        np.broadcast_to(np.array(COLOURS[n], dtype=np.float64), (k, 16, 16, 3))
        for n, k in zip(names, lengths, strict=True)
    ]
    video = np.concatenate(scenes) + rng.normal(0.0, 3.0, size=(sum(lengths), 16, 16, 3))
    return np.clip(video, 0, 255).astype(np.uint8), names


def _mean_colour_name(frames) -> str:
    mean = frames.reshape(-1, 3).mean(axis=0)
    return min(COLOURS, key=lambda name: np.abs(mean - np.array(COLOURS[name])).sum())


def test_shot_boundaries_finds_exactly_the_cuts():
    video, _ = _three_scenes()
    assert shot_boundaries(video) == [7, 19]
    tensor = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert shot_boundaries(tensor) == [7, 19]
    assert shot_boundaries(video, min_length=8) == [19]  # the 7-frame first shot is too short
    assert shot_boundaries(video, threshold=1e9) == []
    steady = render(sample_spec(ShapesConfig(num_frames=10), _gen(0)), ShapesConfig(num_frames=10))
    assert shot_boundaries(steady) == []


def test_segment_and_caption():
    video, names = _three_scenes()
    segments = segment_and_caption(video, _mean_colour_name)
    assert segments == [(0, 7, names[0]), (7, 19, names[1]), (19, 28, names[2])]
    assert segment_and_caption(video[:5], _mean_colour_name) == [(0, 5, "red")]
