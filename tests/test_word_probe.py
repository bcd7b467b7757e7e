"""The word probe: labels by hand, scores against a hand-computed probe, a readable word read, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler
from torch import nn

from benchmarks.caption_sensitivity import clip_caption, losses, true_clips
from benchmarks.word_probe import PROBE_TIMESTEPS, Probe, evaluate, labels, main, snr, train_probe, word_gains
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
    with pytest.raises(ValueError, match=r"attribute must be one of .*got 'motion'"):
        labels(clip, "shapes", "motion")
    with pytest.raises(ValueError, match="world must be one of"):
        labels(clip, "moon", "shape")


class _Mean(Probe):
    """Logits (mean, -mean, 0) of the noisy latents: a probe whose scores can be computed by hand."""

    def forward(self, noisy, t):
        mean = noisy.mean(dim=(1, 2, 3, 4))
        return torch.stack([mean, -mean, torch.zeros_like(mean)], dim=1)


def test_scores_are_of_the_schedulers_noising_with_fresh_noise_per_timestep():
    scheduler = DDIMScheduler()
    latents = torch.randn((6, 4, 2, 3, 3), generator=torch.Generator().manual_seed(1)) + 0.5
    targets = torch.tensor([0, 1, 2, 0, 0, 1])
    rows = evaluate(
        _Mean(4, 3, 1000), latents, targets, scheduler, (0, 900), torch.Generator().manual_seed(2)
    )
    draws = torch.Generator().manual_seed(2)
    for row, step in zip(rows, (0, 900), strict=True):
        alpha_bar = scheduler.alphas_cumprod[step]
        noisy = alpha_bar.sqrt() * latents + (1 - alpha_bar).sqrt() * torch.randn(
            latents.shape, generator=draws
        )
        mean = noisy.mean(dim=(1, 2, 3, 4))
        logits = torch.stack([mean, -mean, torch.zeros_like(mean)], dim=1)
        entropy = F.cross_entropy(logits, targets).item()
        assert row["timestep"] == step
        assert row["cross_entropy"] == pytest.approx(entropy, rel=1e-6)
        assert row["information"] == pytest.approx(math.log(3) - entropy, rel=1e-6)
        assert row["accuracy"] == (logits.argmax(1) == targets).float().mean().item()
    assert rows[0]["cross_entropy"] != rows[1]["cross_entropy"]


def test_the_words_gain_is_twice_the_slope_of_the_information_in_snr_in_the_targets_units():
    # I-MMSE: summed x0 error falls by 2 dI/dsnr; per element, times 1/(1 - a) for v and a/(1 - a) for eps.
    for kind in ("v_prediction", "epsilon"):
        scheduler = DDIMScheduler(prediction_type=kind)
        a = scheduler.alphas_cumprod
        assert snr(scheduler, 700) == pytest.approx((a[700] / (1 - a[700])).item(), rel=1e-6)
        rows = [{"timestep": t, "information": i, "snr": snr(scheduler, t)}
                for t, i in ((900, 0.0), (700, 0.2), (500, 0.6), (300, 0.7))]  # fmt: skip
        found = word_gains(rows, scheduler, elements=10)
        assert [row["gain"] is None for row in found] == [True, False, False, True]
        slope = 0.6 / (rows[2]["snr"] - rows[0]["snr"])  # centred: the rows either side of t = 700
        unit = 1 / (1 - a[700]).item() if kind == "v_prediction" else rows[1]["snr"]
        assert found[1]["gain"] == pytest.approx(2 * slope / 10 * unit, rel=1e-6)
        assert found[1]["information"] == 0.2 and "gain" not in rows[1]  # rows are copied, not changed
    with pytest.raises(ValueError, match="prediction_type must be epsilon or v_prediction; got 'sample'"):
        word_gains(rows, DDIMScheduler(prediction_type="sample"), elements=10)


def test_a_probe_reads_a_word_written_in_the_latents_and_loses_it_to_the_noise():
    # Class k shifts channel 0 by 2k - 2: plain to read from clean latents, drowned at t = 999.
    g = torch.Generator().manual_seed(0)
    targets = torch.randint(3, (512,), generator=g)
    latents = torch.randn((512, 2, 2, 2, 2), generator=g)
    latents[:, 0] += (2.0 * targets - 2.0)[:, None, None, None]
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
    wrong_word = "--attribute must be one of ('colour', 'shape', 'direction') in the shapes world"
    for argv, message in ((["--clips", "0"], "clips must be"), (["--steps", "0"], "steps must be"),
                          (["--test-clips", "0"], "test_clips must be"),
                          (["--attribute", "motion"], wrong_word), (["--model", str(tmp_path)], "--model: "),
                          (["--out", str(tmp_path)], "is a folder")):  # fmt: skip
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
    assert rows[0]["gain"] is None and rows[-1]["share"] is None
    assert all(row["share"] == row["gain"] / row["model_loss"] for row in rows[1:-1])
    # the model's loss is caption_sensitivity's on the same held-out clips, with their own captions
    g = torch.Generator().manual_seed(0)
    true_clips("shapes", 4, g)
    frames, specs = true_clips("shapes", 3, g)
    pipe = load_pipeline(model)
    latents = pipe.vae.encode(frames_to_tensor(frames))
    right = {"right": [clip_caption(spec) for spec in specs]}
    noise = torch.Generator().manual_seed(1)  # seed + 1, one draw per timestep in order
    expected = [losses(pipe, latents, right, t, noise)["right"] for t in PROBE_TIMESTEPS[:2]]
    assert [row["model_loss"] for row in rows[:2]] == pytest.approx(expected, rel=1e-5)
    assert "(chance)" in capsys.readouterr().out


def test_the_command_refuses_a_model_of_another_world(model, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--model", str(model), "--world", "long", "--clips", "4", "--steps", "2"])
    assert stop.value.code == 2 and "does not know ['around', " in capsys.readouterr().err
