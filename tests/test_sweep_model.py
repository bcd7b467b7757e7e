"""The sweep's model backbone on a tiny untrained VidRD: rows, determinism, reference, pixel metrics."""

import csv
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmarks import sweep, sweep_grid
from benchmarks.compare import GAP_CLOSING, METRICS
from benchmarks.cost import COST
from benchmarks.sweep import REFERENCE, compute, parse_args
from benchmarks.sweep_grid import FIELDS, MODEL_SWEEP, PAPER_TEMPLATE, GridPoint
from benchmarks.sweep_model import PIXEL_METRICS, ModelBackbone, pixel_scores, true_videos
from models.bundled import save_pipeline
from models.data.shapes import BACKGROUNDS, ShapesConfig, ShapeSpec, render, sample_spec
from models.tiny import tiny_pipeline


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(save_pipeline(tiny_pipeline(seed=0), tmp_path_factory.mktemp("model") / "tiny-vidrd"))


def tiny(model: str) -> sweep_grid.SweepConfig:
    backbone = ModelBackbone(model=model, samples=2, num_frames=4, num_clips=2, steps=2, window=4)
    ablations = (sweep_grid.Ablation("beta", (0.4,), (PAPER_TEMPLATE,)),)
    return sweep_grid.SweepConfig(ablations, ("overlap",), prompt_frames=1, seeds=(0,), backbone=backbone)


def test_rows_have_every_column_and_the_reference_rows_are_finite(model, tmp_path):
    out = tmp_path / "sweep"
    sweep.main(["--backbone", "model", "--model", model, "--out", str(out), "--samples", "2",
                "--num-clips", "2", "--steps", "2", "--seeds", "1", "--ablations", "prompt_frames",
                "--prompt-frames", "1,2", "--extras", "overlap;fifo:1;windows:pyramid"])  # fmt: skip
    rows, config = sweep.read_json(out / "sweep.json")
    assert config.backbone == replace(MODEL_SWEEP.backbone, model=model, samples=2, num_clips=2, steps=2)
    assert config.metrics == (*METRICS, *PIXEL_METRICS, *COST)
    with open(out / "sweep.csv") as f:
        assert next(csv.reader(f)) == [*FIELDS, *config.metrics]
    # reference at M=1 and 2, the paper at M=1 and 2, the extras at the default M=2
    assert [(r["template"], r["prompt_frames"]) for r in rows] == [
        (REFERENCE, 1), (REFERENCE, 2), (PAPER_TEMPLATE, 1), (PAPER_TEMPLATE, 2), ("overlap", 2),
        ("fifo:1", 2), ("windows:pyramid", 2)]  # fmt: skip
    for row in rows:
        assert set(row) == {*FIELDS, *config.metrics}
    # the overlap drops M=2 frames of clip 1; FIFO and the windows make all 16 frames at once
    assert [r["frames"] for r in rows] == [16, 16, 16, 16, 14, 16, 16]
    # cost, counted by hand (N=8, K=2, T=2): the reference none; clip by clip T; the overlap T N K / 14;
    # FIFO(8, 1): 8 steps, 16 + 8 - 8 iterations of 8 evaluations plus the base clip's 8 x 8, over 16
    # frames; windows of 8 overlapping by 2 over 16 frames: starts 0, 6, 8, then 0, 3, 5, 8 (shifted by 3)
    evals = [r["frame_evals"] for r in rows]
    assert evals == pytest.approx([0, 0, 2, 2, 2 * 8 * 2 / 14, (16 * 8 + 64) / 16, 7 * 8 / 16], rel=1e-12)
    for row in rows[:2]:
        assert all(math.isfinite(row[m]) for m in config.metrics), row
    assert (out / "sweep_prompt_frames.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # 5 panels


def test_a_model_point_depends_on_its_fields_only(model):
    config = tiny(model)
    point = GridPoint.at(PAPER_TEMPLATE, 1, 4.0, 0.4, seed=1)
    first = compute(point, config)
    torch.manual_seed(123)
    compute(GridPoint.at("overlap", 1, 4.0, 0.4, seed=0), config)
    again = compute(point, config)
    assert again == first  # every metric bit for bit
    other = compute(replace(point, seed=0), config)  # other captions, noise and true videos
    assert all(other[m] != first[m] for m in ("mirror_correlation", "frechet_distance", "speed_inside"))


def test_true_videos_are_bouncing_shapes_of_their_captions():
    backbone = ModelBackbone(samples=3, num_frames=4, num_clips=3, window=4)
    captions, frames = true_videos(backbone, sweep.point_generator(5, 1))
    assert frames.shape == (3, 12, 32, 32, 3) and frames.dtype == np.uint8
    # Rebuilt: the same stream draws the same specs, one per video, in a bouncing world of L = 12 frames.
    world = ShapesConfig(size=32, num_frames=12, bounce=True)
    generator = sweep.point_generator(5, 1)
    specs = [sample_spec(world, generator) for _ in range(3)]
    assert captions == [f"a {s.colour} {s.shape} moving {s.direction}" for s in specs]
    assert captions == ["a green circle moving left", "a blue triangle moving up",
                        "a yellow circle moving left"]  # fmt: skip
    for spec, video in zip(specs, frames, strict=True):
        assert np.array_equal(video, render(spec, world))
    # The first bounces off the left wall: its sprite (whole-pixel moves) goes 2 px left a frame, then right.
    shape = np.any(frames[0] != BACKGROUNDS[specs[0].background], axis=-1)  # (L, H, W)
    left_edge = [np.flatnonzero(mask.any(axis=0))[0] for mask in shape]
    assert np.diff(left_edge).tolist() == [-2] * 4 + [2] * 7


def square(x: float, num_frames: int) -> np.ndarray:
    """A red square of half-side 2 moving right at 1 px/frame from x: centroids x, x+1, ... exactly."""
    spec = ShapeSpec("square", "red", "right", 1.0, 2.0, x, 10.0, "black")
    return render(spec, ShapesConfig(num_frames=num_frames, bounce=True))


def test_pixel_scores_pool_the_seams_of_every_video():
    clip = square(5.0, 4)  # x = 5, 6, 7, 8
    videos = np.stack([
        square(5.0, 8),  # continuous: no jump, no reversal
        np.concatenate([clip, clip]),  # starts again: seam velocity -3 against +1 around, a jump of 4
        np.concatenate([clip, clip[::-1]]),  # ping-pong: seam velocity 0 against (3 - 3) / 6, a reversal
    ])  # fmt: skip
    found = pixel_scores(videos, [0, 4])
    assert found == {"velocity_jump": pytest.approx(4 / 3), "reversals_per_seam": pytest.approx(1 / 3),
                     "speed_inside": pytest.approx(1.0)}  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "somewhere"], "--model applies to --backbone model only"),
        (["--backbone", "model", "--model", "/nonexistent"], "--model must be a saved VidRD pipeline"),
    ],
)
def test_model_flags_are_checked_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_the_model_grid_is_figure_6_at_eight_frames():
    _, config = parse_args(["--backbone", "model"])
    assert config == MODEL_SWEEP and config.backbone.num_frames == 8 and config.backbone.steps == 25
    found = {(a.parameter, a.values, a.templates) for a in config.ablations}
    assert found == {("prompt_frames", (1, 2, 4, 6), (PAPER_TEMPLATE,)),
                     ("alpha", (0.0, 1.0, 4.0, 8.0), (PAPER_TEMPLATE,)),
                     ("beta", (0.0, 0.4, 1.0), (PAPER_TEMPLATE, "dsg:{beta}"))}  # fmt: skip
    extras = ("independent", "overlap", GAP_CLOSING, "windows:pyramid", "fifo:1", "fifo:4")
    assert config.extra_combinations == extras
    _, fifty = parse_args(["--backbone", "model", "--steps", "50"])  # recon's weight is a trajectory's
    assert fifty.extra_combinations == extras
    _, given = parse_args(["--backbone", "model", "--steps", "50", "--extras", "overlap,recon:0.4"])
    assert given.extra_combinations == ("overlap,recon:0.4",)
    with pytest.raises(ValueError, match="num_clips must be an integer"):
        ModelBackbone(num_clips=1)
