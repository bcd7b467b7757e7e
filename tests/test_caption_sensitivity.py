"""Caption sensitivity: the changed captions by hand, the loss against a hand-computed target, the bundle."""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch

from benchmarks.caption_sensitivity import losses, main, sensitivity, swapped, true_clips
from models.bundled import load_pipeline
from models.data.long_world import Mover, WorldSpec, world_caption
from models.data.shapes import ShapeSpec, caption


@pytest.fixture(scope="module")
def bundled():
    return load_pipeline()


def test_swapped_changes_the_first_shape_to_the_next_name():
    one = ShapeSpec("circle", "red", "right", 2.0, 4.0, 10.0, 10.0, "black")
    assert caption(swapped(one, "direction")) == "a red circle moving up"  # left, right, up, down
    assert caption(swapped(one, "shape")) == "a red square moving right"
    assert caption(swapped(one, "colour")) == "a green circle moving right"
    two = dataclasses.replace(one, second=dataclasses.replace(one, colour="green", shape="square"))
    assert caption(swapped(two, "colour")) == "a blue circle moving right and a green square moving right"
    last = dataclasses.replace(one, shape="triangle", direction="down")
    assert caption(swapped(last, "shape")) == "a red circle moving down"  # cyclic
    assert caption(swapped(last, "direction")) == "a red triangle moving left"
    with pytest.raises(ValueError, match=r"attribute must be one of .*'direction'.*got 'motion'"):
        swapped(one, "motion")


def test_swapped_on_the_long_world_keeps_the_rest_of_the_caption():
    red = Mover("circle", "red", "vertically", 1.0, 4.0, 10.0, 10.0)
    blue = Mover("square", "green", "around", 1.0, 4.0, 20.0, 20.0)
    spec = WorldSpec((red, blue), "stripes", "left", 1.0, 0.0)
    assert world_caption(swapped(spec, "motion")) == (
        "a red circle bouncing around and a green square bouncing around over stripes drifting left"
    )
    assert world_caption(swapped(spec, "colour")).startswith("a blue circle bouncing vertically and a green")
    with pytest.raises(ValueError, match="got 'direction'"):
        swapped(spec, "direction")


def test_true_clips_are_seeded_and_checked():
    first, specs = true_clips("long", 3, torch.Generator().manual_seed(5))
    again, _ = true_clips("long", 3, torch.Generator().manual_seed(5))
    assert first.shape == (3, 8, 32, 32, 3) and (first == again).all() and len(specs) == 3
    with pytest.raises(ValueError, match="world must be one of"):
        true_clips("moon", 3, torch.Generator())
    with pytest.raises(ValueError, match="n must be"):
        true_clips("shapes", 0, torch.Generator())


def test_the_loss_is_against_the_schedulers_target_with_one_noise_for_all_variants(bundled):
    latents = torch.randn((2, 4, 3, 4, 4), generator=torch.Generator().manual_seed(1))
    zero_unet = types.SimpleNamespace(
        unet=lambda x, t, context: torch.zeros_like(x), text_encoder=bundled.text_encoder,
        scheduler=bundled.scheduler,
    )  # fmt: skip
    found = losses(zero_unet, latents, {"a": ["a red circle"] * 2, "b": [""] * 2}, 700,
                   torch.Generator().manual_seed(3))  # fmt: skip
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(3))
    alpha_bar = bundled.scheduler.alphas_cumprod[700]
    v = alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * latents  # v-prediction's target, by hand
    assert bundled.scheduler.config.prediction_type == "v_prediction"
    assert found["a"] == found["b"] == pytest.approx(float((v**2).mean()), rel=1e-6)


def test_a_model_deaf_to_its_captions_has_ratios_of_exactly_one(bundled):
    def same_for_all(captions):
        return bundled.text_encoder.encode([""] * len(captions))

    deaf = types.SimpleNamespace(unet=bundled.unet, vae=bundled.vae, scheduler=bundled.scheduler,
                                 text_encoder=types.SimpleNamespace(encode=same_for_all))  # fmt: skip
    rows = sensitivity(deaf, "shapes", clips=2, timesteps=(900,))
    assert [set(row) for row in rows] == [{"timestep", "right", "empty", "colour", "shape", "direction"}]
    assert all(rows[0][k] == 1.0 for k in ("empty", "colour", "shape", "direction"))


def test_the_bundled_model_reads_colour_shape_and_direction(bundled):
    # The README's finding: the clip world's bundle uses each word (a changed word raises its loss).
    mid, high = sensitivity(bundled, "shapes", clips=16, timesteps=(500, 900))
    assert mid["colour"] > 1 and mid["shape"] > 1 and high["direction"] > 1 and high["empty"] > 1


def test_the_command_refuses_bad_arguments_before_any_work(tmp_path, capsys):
    for argv, message in ((["--clips", "0"], "clips must be"), (["--model", str(tmp_path)], "--model: "),
                          (["--world", "moon"], "invalid choice"), (["--out", str(tmp_path)], "is a folder"),
                          (["--world", "long"], "does not know ['around', ")):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err
