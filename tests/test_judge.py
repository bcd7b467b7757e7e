"""The hand-written judge (benchmarks.judge) on constructed clips with known answers and on true clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.judge import Sighting, agrees, caption_movers, judge_clip, judge_videos
from models.data.long_world import Mover, WorldConfig, WorldSpec, render_world, sample_world, world_caption

CONFIG = WorldConfig()


def _clip(*movers: Mover, backdrop="black", drift=None, start=0) -> np.ndarray:
    return render_world(WorldSpec(tuple(movers), backdrop, drift, 1.0 if drift else 0.0), CONFIG, start)


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
@pytest.mark.parametrize(("motion", "size"), [("around", 4.0), ("sideways", 6.0), ("vertically", 5.0)])
def test_reads_every_shape_and_motion(shape, motion, size):
    for backdrop, drift in (("black", None), ("stripes", "left"), ("gradient", "right")):
        clip = _clip(Mover(shape, "blue", motion, 0.5, size, 15.0, 15.0), backdrop=backdrop, drift=drift)
        assert judge_clip(clip) == {"blue": Sighting(shape, motion)}


def test_a_still_shape_and_a_missing_colour():
    still = _clip(Mover("square", "red", "sideways", 0.0, 5.0, 15.0, 15.0))
    assert judge_clip(still) == {"red": Sighting("square", "still")}
    assert agrees(judge_clip(still), "a red square bouncing sideways over black") == {
        "colour": True, "shape": True, "motion": False, "all": False}  # fmt: skip
    assert not agrees(judge_clip(still), "a green square bouncing sideways over black")["colour"]
    speck = Mover("square", "red", "sideways", 0.0, 0.6, 15.0, 15.0)  # 1 px < MIN_AREA
    assert judge_clip(_clip(speck)) == {}


def test_slowest_shape_turning_mid_clip_still_moves():
    # speed 0.5, x from 25.5 to the wall at 27 (size 4) in 3 frames and back: extent 1.5 px >= 1
    mover = Mover("circle", "green", "sideways", 0.5, 4.0, 25.5, 15.0)
    assert judge_clip(_clip(mover)) == {"green": Sighting("circle", "sideways")}


def test_a_shape_passing_in_front_does_not_move_the_other():
    behind = Mover("square", "red", "vertically", 0.5, 5.0, 24.0, 15.0)  # columns 19..29
    front = Mover("circle", "yellow", "sideways", 1.0, 5.0, 12.0, 15.0)  # reaches column 19 at frame 2
    clip = _clip(behind, front)
    red = (clip == (255, 0, 0)).all(-1).sum(axis=(1, 2))
    assert red[0] == 121 and red[-1] == 90  # partly hidden from frame 2: its centroid moves 1 px right
    verdict = judge_clip(clip)
    assert verdict["red"] == Sighting("square", "vertically") and verdict["yellow"].motion == "sideways"


def test_caption_parsing_and_refusals():
    text = "a red circle bouncing around and a blue square bouncing vertically over black"
    wanted = {"red": Sighting("circle", "around"), "blue": Sighting("square", "vertically")}
    assert caption_movers(text) == wanted
    for bad in ("a red circle moving right", "a pink circle bouncing around over black"):
        with pytest.raises(ValueError, match="caption"):
            caption_movers(bad)
    with pytest.raises(ValueError, match="uint8"):
        judge_clip(np.zeros((8, 32, 32, 3)))


def test_true_clips_agree_with_their_captions():
    ones, twos = [], []
    for seed in range(240):
        g = torch.Generator().manual_seed(seed)
        spec = sample_world(CONFIG, g)
        start = int(torch.randint(CONFIG.horizon, (), generator=g))
        result = agrees(judge_clip(render_world(spec, CONFIG, start)), world_caption(spec))["all"]
        (ones if len(spec.movers) == 1 else twos).append(result)
    assert all(ones) and len(ones) > 150
    assert 0.6 < np.mean(twos) < 0.9  # hidden shapes: measured 0.76 over 600 clips


def test_judge_videos_counts_clips():
    spec = WorldSpec((Mover("circle", "red", "around", 0.7, 5.0, 10.0, 20.0),), "gray")
    video = render_world(spec, CONFIG, 0, 24)
    frozen = np.repeat(video[:1], 24, axis=0)
    captions = [world_caption(spec)] * 2
    scores = judge_videos(np.stack([video, frozen]), captions, clip_frames=8)
    assert scores == {"colour": 1.0, "shape": 1.0, "motion": 0.5, "all": 0.5}
    with pytest.raises(ValueError, match="clip_frames"):
        judge_videos(np.stack([video]), captions[:1], clip_frames=7)
