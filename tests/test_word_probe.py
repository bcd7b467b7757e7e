"""The word probe: labels by hand, scores against a hand-computed probe, a readable word read, the CLI."""

from __future__ import annotations

import json
import math
import types

import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler
from einops import rearrange
from torch import nn

from benchmarks.caption_sensitivity import clip_caption, losses, true_clips
from benchmarks.word_probe import (
    PROBE_TIMESTEPS,
    Probe,
    evaluate,
    labels,
    main,
    probe_rows,
    snr,
    target_units,
    train_probe,
    word_gains,
)
from models.bundled import load_pipeline
from models.data.long_world import Mover, WorldSpec
from models.data.shapes import ShapeSpec, frames_to_tensor


def _mover(colour: str, motion: str) -> Mover:
    return Mover("circle", colour, motion, 1.0, 4.0, 10.0, 10.0)


def test_labels_index_the_first_shapes_word_among_the_worlds_names():
    specs = [WorldSpec((_mover("red", m), _mover("blue", "around")), "black")
             for m in ("vertically", "around", "sideways")]  # fmt: skip
    assert labels(specs, "long", "motion").tolist() == [2, 0, 1]  # MOTIONS: around, sideways, vertically
    assert labels(specs, "long", "colour").tolist() == [0, 0, 0]  # the first shape's, not the second's
    clip = [ShapeSpec("square", "green", d, 2.0, 4.0, 10.0, 10.0, "black") for d in ("up", "left")]
    assert labels(clip, "shapes", "direction").tolist() == [2, 0]  # left, right, up, down
    assert labels(clip, "shapes", "shape").tolist() == [1, 1]
    with pytest.raises(ValueError, match=r"attribute must be one of .* in the shapes world; got 'motion'"):
        labels(clip, "shapes", "motion")
    with pytest.raises(ValueError, match="world must be one of"):
        labels(clip, "moon", "shape")


class _Mean(Probe):
    """Logits (mean, -mean, 0, ...) of the noisy latents: a probe whose scores can be computed by hand."""

    def forward(self, noisy, t):
        mean = noisy.mean(dim=(1, 2, 3, 4))
        zeros = [torch.zeros_like(mean)] * (self.head.out_features - 2)
        return torch.stack([mean, -mean, *zeros], dim=1)


def test_scores_are_of_the_schedulers_noising_with_one_noise_draw_for_every_timestep():
    scheduler = DDIMScheduler()
    latents = torch.randn((6, 4, 2, 3, 3), generator=torch.Generator().manual_seed(1)) + 0.5
    targets = torch.tensor([0, 1, 2, 0, 0, 1])
    draws = torch.Generator().manual_seed(2)
    rows = evaluate(_Mean(4, 3, 1000), latents, targets, scheduler, (0, 900), draws)
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(2))
    for row, step in zip(rows, (0, 900), strict=True):
        alpha_bar = scheduler.alphas_cumprod[step]
        mean = (alpha_bar.sqrt() * latents + (1 - alpha_bar).sqrt() * noise).mean(dim=(1, 2, 3, 4))
        logits = torch.stack([mean, -mean, torch.zeros_like(mean)], dim=1)
        entropy = F.cross_entropy(logits, targets).item()
        assert row["timestep"] == step
        assert row["cross_entropy"] == pytest.approx(entropy, rel=1e-6)
        assert row["information"] == pytest.approx(math.log(3) - entropy, rel=1e-6)
        assert row["accuracy"] == (logits.argmax(1) == targets).float().mean().item()
        assert row["snr"] == pytest.approx((alpha_bar / (1 - alpha_bar)).item(), rel=1e-6)


def test_a_diverged_probe_is_named_at_its_timestep():
    class Diverged(_Mean):
        def forward(self, noisy, t):
            return super().forward(noisy, t) * float("nan")

    with pytest.raises(FloatingPointError, match="at t = 0 is nan"):
        evaluate(Diverged(4, 3, 1000), torch.zeros((2, 4, 1, 1, 1)), torch.tensor([0, 1]), DDIMScheduler(),
                 (0,), torch.Generator())  # fmt: skip


@pytest.mark.parametrize("kind", ["v_prediction", "epsilon"])
def test_target_units_are_the_targets_squared_error_per_squared_x0_error(kind):
    # Independently of the kit's formulas: move x0 with x_t held, and see diffusers' own target move.
    scheduler = DDIMScheduler(prediction_type=kind)
    t = torch.tensor([700])
    g = torch.Generator().manual_seed(0)
    x0, eps, delta = (torch.randn((1, 4, 2, 3, 3), generator=g) for _ in range(3))
    noisy = scheduler.add_noise(x0, eps, t)
    alpha_bar = scheduler.alphas_cumprod[700]
    moved_eps = (noisy - alpha_bar.sqrt() * (x0 + delta)) / (1 - alpha_bar).sqrt()
    if kind == "epsilon":
        before, after = eps, moved_eps
    else:
        before, after = scheduler.get_velocity(x0, eps, t), scheduler.get_velocity(x0 + delta, moved_eps, t)
    ratio = ((after - before) ** 2).sum() / (delta**2).sum()
    assert target_units(scheduler, 700) == pytest.approx(ratio.item(), rel=1e-4)


def test_the_words_gain_is_twice_the_slope_of_the_information_in_snr_in_the_targets_units():
    # I-MMSE: the summed x0 error falls by 2 dI/dsnr. With I quadratic in ln snr the three-point formula
    # is exact, so every interior row can be checked against the derivative by hand.
    scheduler = DDIMScheduler(prediction_type="v_prediction")
    steps = (900, 800, 650, 600, 300, 100)  # unequal spacing in ln snr
    info = lambda x: 0.3 * x + 0.05 * x * x  # noqa: E731  x = ln snr
    rows = [{"timestep": t, "information": info(math.log(snr(scheduler, t))), "snr": snr(scheduler, t)}
            for t in steps]  # fmt: skip
    found = word_gains(rows, scheduler, elements=10)
    assert found[0]["gain"] is None and found[-1]["gain"] is None
    for row, step in zip(found[1:-1], steps[1:-1], strict=True):
        x = math.log(row["snr"])
        expected = 2 * (0.3 + 0.1 * x) / row["snr"] / 10 * target_units(scheduler, step)
        assert row["gain"] == pytest.approx(expected, rel=1e-6)
    assert "gain" not in rows[1]  # rows are copied, not changed


def test_no_gain_is_taken_across_zero_snr():
    scheduler = DDIMScheduler(rescale_betas_zero_snr=True)  # snr is exactly 0 at t = 999
    rows = [{"timestep": t, "information": 0.1, "snr": snr(scheduler, t)} for t in (500, 900, 950, 999)]
    assert rows[-1]["snr"] == 0.0
    gains = [row["gain"] for row in word_gains(rows, scheduler, elements=4)]
    assert [gain is None for gain in gains] == [True, False, True, True]
    assert gains[1] == pytest.approx(0.0, abs=1e-9)  # a flat information curve is worth nothing


def test_a_probe_reads_a_word_written_in_the_latents_and_loses_it_to_the_noise():
    # Class k shifts channel 0 by 2k - 2: plain to read from clean latents, drowned at t = 999.
    g = torch.Generator().manual_seed(0)
    targets = torch.randint(3, (512,), generator=g)
    latents = torch.randn((512, 2, 2, 2, 2), generator=g)
    latents[:, 0] += rearrange(2.0 * targets - 2.0, "b -> b 1 1 1")
    scheduler = DDIMScheduler()
    probe = train_probe(latents, targets, 3, scheduler, 300, torch.Generator().manual_seed(1))
    clean, noisy = evaluate(probe, latents, targets, scheduler, (0, 999), torch.Generator().manual_seed(2))
    assert clean["accuracy"] > 0.9 and clean["information"] > 0.8  # log 3 = 1.10 at most
    assert noisy["accuracy"] < 0.6 and noisy["information"] < 0.25


def test_the_probe_sees_the_timestep():
    probe = Probe(channels=2, classes=3, train_steps=1000)
    nn.init.ones_(probe.head.weight)
    x = torch.zeros((1, 2, 2, 2, 2))
    assert not torch.equal(probe(x, torch.tensor([0])), probe(x, torch.tensor([999])))


def test_the_command_refuses_bad_arguments_before_any_work(tmp_path, capsys):
    wrong_word = "attribute must be one of ('colour', 'shape', 'direction') in the shapes world; got 'motion'"
    for argv, message in ((["--clips", "0"], "clips must be"), (["--steps", "0"], "steps must be"),
                          (["--test-clips", "0"], "test_clips must be"),
                          (["--attribute", "motion"], wrong_word), (["--model", str(tmp_path)], "--model: "),
                          (["--out", str(tmp_path)], "--out must be a file path in an existing, writable"),
                          (["--out", str(tmp_path / "no" / "p.json")], "writable folder")):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_the_command_writes_a_row_per_timestep_with_the_models_loss(model, tmp_path, capsys):
    out = tmp_path / "probe.json"
    main(["--model", str(model), "--clips", "4", "--test-clips", "3", "--steps", "2", "--out", str(out)])
    found = json.loads(out.read_text())
    assert found["attribute"] == "direction" and found["test_clips"] == 3
    rows = found["rows"]
    assert [row["timestep"] for row in rows] == list(PROBE_TIMESTEPS)
    assert all(math.isfinite(row[k]) for row in rows for k in ("accuracy", "information", "model_loss"))
    # the model's loss is caption_sensitivity's on the same held-out clips, with their own captions and
    # one noise draw (seed + 1) for every timestep
    g = torch.Generator().manual_seed(0)
    true_clips("shapes", 4, g)
    frames, specs = true_clips("shapes", 3, g)
    pipe = load_pipeline(model)
    latents = pipe.vae.encode(frames_to_tensor(frames))
    right = {"right": [clip_caption(spec) for spec in specs]}
    for row in rows[:3]:
        expected = losses(pipe, latents, right, row["timestep"], torch.Generator().manual_seed(1))["right"]
        assert row["model_loss"] == pytest.approx(expected, rel=1e-5)
    # gains per element of one clip's latent (4 x 8 x 4 x 4 here), as a share of the model's loss
    plain = [{k: row[k] for k in ("timestep", "information", "snr")} for row in rows]
    gains = [row["gain"] for row in word_gains(plain, pipe.scheduler, latents[0].numel())]
    assert [row["gain"] for row in rows] == gains and latents[0].numel() != latents.numel()
    assert rows[1]["share"] == pytest.approx(gains[1] / rows[1]["model_loss"])
    assert "(chance)" in capsys.readouterr().out


def test_the_command_refuses_a_model_of_another_world(model, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--model", str(model), "--world", "long", "--clips", "4", "--steps", "2"])
    assert stop.value.code == 2 and "does not know ['around', " in capsys.readouterr().err


def test_probe_rows_score_the_held_out_clips_on_the_asked_word(model, monkeypatch):
    # A fixed probe in place of the trained one: the rows must be its scores on the held-out clips (drawn
    # after the training clips) against their direction labels, with the noise drawn next.
    monkeypatch.setattr("benchmarks.word_probe.train_probe", lambda *args: _Mean(4, 4, 1000))
    pipe = load_pipeline(model)
    rows = probe_rows(pipe, "shapes", "direction", clips=4, steps=1, test_clips=5)
    g = torch.Generator().manual_seed(0)
    true_clips("shapes", 4, g)
    frames, specs = true_clips("shapes", 5, g)
    latents = pipe.vae.encode(frames_to_tensor(frames))
    expected = evaluate(_Mean(4, 4, 1000), latents, labels(specs, "shapes", "direction"), pipe.scheduler,
                        PROBE_TIMESTEPS, g)  # fmt: skip
    assert [row["cross_entropy"] for row in rows] == pytest.approx([r["cross_entropy"] for r in expected])
    assert [row["accuracy"] for row in rows] == [r["accuracy"] for r in expected]
    with pytest.raises(ValueError, match=r"attribute must be one of .* in the shapes world; got 'motion'"):
        probe_rows(pipe, "shapes", "motion", clips=4, steps=1)


def test_a_training_target_the_kit_cannot_convert_is_refused():
    scheduler = types.SimpleNamespace(alphas_cumprod=DDIMScheduler().alphas_cumprod,
                                      config=types.SimpleNamespace(prediction_type="noise"))  # fmt: skip
    with pytest.raises(ValueError, match=r"prediction_type must be one of .*got 'noise'"):
        target_units(scheduler, 500)
    assert target_units(DDIMScheduler(prediction_type="sample"), 500) == 1.0  # x0 itself
