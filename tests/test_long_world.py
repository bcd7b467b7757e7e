"""The long-horizon world (models.data.long_world) and the worlds seam, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.data import long_world as lw
from models.data.long_world import (
    LongShapes,
    Mover,
    WorldConfig,
    WorldSpec,
    centres,
    render_world,
    sample_world,
    world_caption,
    world_labels,
    world_still_caption,
    world_words,
)
from models.data.pseudo_video import ZoomPan
from models.data.segmentation import shot_boundaries
from models.data.shapes import COLOURS, frames_to_tensor
from models.data.worlds import LongWorld, ShapesWorld, make_world
from models.text import WordEncoder

CONFIG = WorldConfig()


def _spec(seed: int, **config) -> WorldSpec:
    return sample_world(WorldConfig(**config), torch.Generator().manual_seed(seed))


def test_a_clip_is_a_window_of_its_long_video():
    for seed in range(6):
        spec = _spec(seed, two_shapes_probability=0.5)
        long = render_world(spec, CONFIG, 0, 80)
        assert np.array_equal(render_world(spec, CONFIG, 37), long[37:45])
        assert np.array_equal(render_world(spec, CONFIG, 79, 1), long[79:])


def test_reflection_by_hand():
    mover = Mover("square", "red", "sideways", speed=1.0, size=5.0, x=10.0, y=12.0)
    path = centres(mover, CONFIG, 0, 40)  # x in [5, 26]: 10 -> 26 at t = 16, back to 5 at t = 37
    assert path[16, 0] == 26 and path[17, 0] == 25 and path[37, 0] == 5 and path[39, 0] == 7
    assert np.all(path[:, 1] == 12)  # sideways: y never moves
    diagonal = Mover("circle", "blue", "around", 0.5, 4.0, 20.0, 6.0, sx=-1, sy=-1)
    path = centres(diagonal, CONFIG, 0, 8)
    assert np.allclose(path[:, 0], 20 - 0.5 * np.arange(8))
    assert np.allclose(path[:, 1], [6, 5.5, 5, 4.5, 4, 4.5, 5, 5.5])  # bounces off the top wall at t = 4


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), start=st.integers(0, 2_000))
def test_shapes_stay_whole_and_turn_only_at_walls(seed, start):
    spec = _spec(seed, two_shapes_probability=0.0, backdrops=("black",))
    mover = spec.movers[0]
    frames = render_world(spec, CONFIG, start, 60)
    area = (frames == COLOURS[mover.colour]).all(axis=-1).sum(axis=(1, 2))
    assert np.all(area == area[0])  # never clipped by a wall
    path = centres(mover, CONFIG, start, 60)
    velocity = np.diff(path, axis=0)
    moving = np.array(lw.MOTIONS[mover.motion], bool)
    low, high = mover.size, CONFIG.size - 1 - mover.size
    room = np.minimum(path - low, high - path)[:, moving].min(axis=1)  # distance to the nearest wall
    assert np.all(velocity[:, ~moving] == 0) and np.all(room >= -1e-9)
    assert np.all(np.abs(velocity[:, moving]) <= mover.speed + 1e-9)
    free = (room[:-1] > mover.speed) & (room[1:] > mover.speed)  # no wall within reach of the step
    assert free.sum() > 20 and np.allclose(np.abs(velocity[free][:, moving]), mover.speed)
    turns = np.nonzero(np.any(np.sign(velocity[1:]) != np.sign(velocity[:-1]), axis=1))[0] + 1
    assert np.all(room[turns] <= mover.speed + 1e-9)  # the direction changes only at a wall


def test_stripes_drift_by_whole_pixels_by_hand():
    mover = Mover("circle", "red", "vertically", 0.5, 4.0, 5.0, 16.0)
    spec = WorldSpec((mover,), "stripes", "left", drift_speed=1.0, phase=0.0)
    frames = render_world(spec, CONFIG, 0, 13)
    row = frames[:, 31]  # the bottom row: the shape never reaches it (y <= 27)
    band = (np.arange(32) // 6) % 2
    assert np.array_equal(row[0], np.asarray(lw._STRIPES, np.uint8)[band])
    for t in range(1, 13):  # drifting left: what column c + t showed at frame 0 is at column c
        assert np.array_equal(row[t, :-t], row[0, t:])
    right = render_world(WorldSpec((mover,), "stripes", "right", 1.0, 0.0), CONFIG, 0, 4)[:, 31]
    assert np.array_equal(right[3, 3:], right[0, :-3])


def test_gradient_is_smooth_and_plain_is_constant():
    mover = Mover("circle", "red", "vertically", 0.5, 4.0, 5.0, 16.0)
    gradient = render_world(WorldSpec((mover,), "gradient", "right", 0.5, 3.0), CONFIG, 0, 3)[:, 31]
    steps = np.abs(np.diff(gradient.astype(int), axis=1))
    assert 4 <= steps.max() <= 7  # a 60-level cosine swing of period 32 px: at most 60 * pi / 32 = 5.9 per px
    plain = render_world(WorldSpec((mover,), "gray"), CONFIG, 0, 3)
    assert np.all(plain[:, 31] == 60)


def test_backgrounds_are_dull_and_shapes_pure():
    spreads = [np.ptp(np.asarray(c), axis=-1).max() for c in (*lw._STRIPES, *lw._GRADIENT)]
    assert max(spreads) == 20 and all(np.ptp(c) == 255 for c in COLOURS.values())  # SHAPE_SATURATION: 80


def test_captions_by_hand_and_within_the_encoder():
    one = Mover("triangle", "green", "around", 0.5, 4.0, 9.0, 9.0)
    two = Mover("square", "blue", "vertically", 0.5, 4.0, 20.0, 20.0)
    assert world_caption(WorldSpec((one,), "black")) == "a green triangle bouncing around over black"
    spec = WorldSpec((one, two), "gradient", "left", 0.5, 0.0)
    assert world_caption(spec) == (
        "a green triangle bouncing around and a blue square bouncing vertically over a gradient drifting left"
    )
    assert world_still_caption(spec) == "a green triangle and a blue square over a gradient"
    assert world_still_caption(WorldSpec((one,), "stripes", "right", 1.0)) == "a green triangle over stripes"
    encoder = WordEncoder(vocabulary=world_words())
    for seed in range(200):
        text = world_caption(_spec(seed, two_shapes_probability=0.5))
        assert len(text.split()) <= encoder.max_length and not encoder.tokenizer.ignored_words(text)
    assert world_labels(spec) == {"shape": 2, "colour": 1, "motion": 0, "backdrop": 3}


def test_sampling_is_seeded_and_covers_the_world():
    assert _spec(3) == _spec(3) and _spec(3) != _spec(4)
    specs = [_spec(seed) for seed in range(300)]
    assert {s.backdrop for s in specs} == set(lw.BACKDROPS)
    assert {m.motion for s in specs for m in s.movers} == set(lw.MOTIONS)
    share = np.mean([len(s.movers) == 2 for s in specs])
    assert 0.22 < share < 0.38  # 0.3; 3 sigma of 300 draws is 0.08
    for s in specs:
        for m in s.movers:
            assert CONFIG.speed[0] <= m.speed <= CONFIG.speed[1] and m.size <= m.x <= 31 - m.size


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: WorldSpec((), "black"), "movers"),
        (lambda: WorldSpec((Mover("circle", "red", "around", 1, 4, 9, 9),) * 2, "black"), "distinct"),
        (lambda: WorldSpec((Mover("circle", "red", "around", 1, 4, 9, 9),), "stripes"), "drift"),
        (lambda: WorldSpec((Mover("circle", "red", "around", 1, 4, 9, 9),), "black", "left"), "drift"),
        (lambda: Mover("circle", "red", "spinning", 1, 4, 9, 9), "motion"),
        (lambda: Mover("circle", "red", "around", 1, 4, 9, 9, sx=0), "sx"),
        (lambda: WorldConfig(backdrops=("plaid",)), "backdrops"),
        (lambda: WorldConfig(horizon=0), "horizon"),
        (lambda: render_world(_spec(0), CONFIG, -1), "start"),
        (lambda: render_world(_spec(0), CONFIG, 0, 0), "num_frames"),
        (lambda: make_world("moon"), "world"),
    ],
)
def test_bad_input_is_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_dataset_items_are_windows_of_their_long_videos():
    data = LongShapes(5, CONFIG, seed=2)
    item = data[3]
    spec, start = data.spec_and_start(3)
    assert item["spec"] == spec and item["start"] == start and 0 <= start < CONFIG.horizon
    expected = frames_to_tensor(render_world(spec, CONFIG, 0, start + 8)[start:])
    assert torch.equal(item["video"], expected) and item["caption"] == world_caption(spec)
    with pytest.raises(IndexError):
        data[5]


def test_the_paper_data_strategies_work_on_it():
    a, b = _spec(1), _spec(2, backdrops=("stripes",))
    video = np.concatenate([render_world(a, CONFIG, 0, 60), render_world(b, CONFIG, 0, 60)])
    assert shot_boundaries(video, min_length=8) == [60]  # a long video has no cut; the change of world has
    images, _ = LongWorld().stills(2, torch.Generator().manual_seed(0))
    pseudo = ZoomPan(num_frames=8)(images[0], torch.Generator().manual_seed(0))
    assert pseudo.shape == (3, 8, 32, 32) and torch.equal(pseudo[:, 0], images[0])


def test_worlds_draw_seeded_batches():
    for world in (make_world("long", 6), make_world("shapes", 6)):
        videos, captions = world.clips(3, torch.Generator().manual_seed(1))
        again, _ = world.clips(3, torch.Generator().manual_seed(1))
        assert videos.shape == (3, 3, 6, 32, 32) and torch.equal(videos, again) and len(captions) == 3
        stills, texts = world.stills(4, torch.Generator().manual_seed(1), full_captions=1.0)
        assert stills.shape == (4, 3, 32, 32) and texts[0].split()[3] in ("bouncing", "moving")
        encoder = WordEncoder(vocabulary=world.words)
        assert not any(encoder.tokenizer.ignored_words(t) for t in captions + texts)
    assert isinstance(make_world("shapes"), ShapesWorld)


def test_a_caption_gives_back_a_world_it_describes():
    for seed in range(60):
        text = world_caption(_spec(seed, two_shapes_probability=0.5))
        spec = lw.spec_for_caption(text, CONFIG, torch.Generator().manual_seed(seed))
        assert world_caption(spec) == text
    bad = ["a red circle bouncing around", "a red blob bouncing around over gray", "a red circle moving up",
           "a red circle bouncing around over stripes", "a red circle bouncing around over gray drifting up",
           "a red circle bouncing around over black over black",
           "a red circle bouncing around over black a b",
           "a red circle bouncing around over a stripes drifting left",
           "a red circle bouncing around over a black"]
    for text in bad:
        with pytest.raises(ValueError, match="caption"):
            lw.parse_caption(text)
