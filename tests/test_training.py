"""The resumable loop, the recipe's stages on a tiny budget, and the bundled model's loading."""

import shutil

import pytest
import torch
from torch import nn

from models.bundled import BUNDLED, REQUIRED, load_pipeline, save_pipeline
from models.tiny import tiny_pipeline
from models.training import stages
from models.training.loop import CHECKPOINT, LoopConfig, train


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 1)
        with torch.no_grad():
            self.layer.weight.zero_()
            self.layer.bias.zero_()


def toy_loss(model, fail_at=None):
    calls = []

    def loss(g):
        calls.append(1)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt("killed")
        x = torch.randn(16, 4, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(16, generator=g)
        return (model.layer(x).squeeze(1) - y).pow(2).mean()

    return loss


def test_a_killed_run_resumes_to_the_uninterrupted_state(tmp_path):
    config = LoopConfig(steps=10, lr=0.05, checkpoint_every=4, seed=3)
    straight = Toy()
    straight_losses = train("toy", straight, toy_loss(straight), config, tmp_path / "a", progress=False)
    killed = Toy()
    with pytest.raises(KeyboardInterrupt):  # dies during step 7, after the checkpoint of step 4
        train("toy", killed, toy_loss(killed, fail_at=7), config, tmp_path / "b", progress=False)
    assert torch.load(tmp_path / "b" / CHECKPOINT, weights_only=False)["step"] == 4
    resumed = Toy()  # a fresh process would start from scratch weights too
    losses = train("toy", resumed, toy_loss(resumed), config, tmp_path / "b", progress=False)
    assert losses == straight_losses
    pairs = zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_loop_config_validation():
    with pytest.raises(ValueError, match=r"steps must be an integer in \[1, inf\]"):
        LoopConfig(steps=0, lr=1e-3)
    with pytest.raises(ValueError, match=r"lr must be in \[0.0, inf\]"):
        LoopConfig(steps=1, lr=-1.0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "tiny-vidrd"
    return save_pipeline(tiny_pipeline(seed=0), path)


def test_saved_pipeline_round_trip(saved):
    pipe = load_pipeline(saved)
    reference = tiny_pipeline(seed=0)
    for a, b in (
        (pipe.unet, reference.unet),
        (pipe.vae, reference.vae),
        (pipe.text_encoder, reference.text_encoder),
    ):
        assert all(
            torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
        )


@pytest.mark.parametrize("name", REQUIRED)
def test_a_deleted_file_is_named(saved, tmp_path, name):
    copy = shutil.copytree(saved, tmp_path / "copy")
    (copy / name).unlink()
    with pytest.raises(FileNotFoundError, match=str(copy / name)):
        load_pipeline(copy)


@pytest.mark.skipif(not BUNDLED.is_dir(), reason="the bundled weights are not in this checkout")
def test_the_bundled_model_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any attempt to reach a hub would fail loudly
    pipe = load_pipeline()
    assert pipe.unet.config.unet_config["in_channels"] == 4


def test_a_recipe_stage_resumes_exactly(tmp_path, monkeypatch):
    # The real VAE stage on a 2-step budget (batch shrunk for speed): one run straight to step 2, one
    # stopped after step 1 and resumed; the saved VAEs are bit-identical.
    from diffusers import AutoencoderKL

    from models.training import stages

    monkeypatch.setitem(stages.BATCH, "vae", 4)
    straight = stages.RecipeConfig(out=tmp_path / "a", progress=False)
    stages.train_vae(straight, LoopConfig(steps=2, lr=1e-3, checkpoint_every=1))
    stopped = stages.RecipeConfig(out=tmp_path / "b", progress=False)
    stages.train_vae(stopped, LoopConfig(steps=1, lr=1e-3, checkpoint_every=1))
    stages.train_vae(stopped, LoopConfig(steps=2, lr=1e-3, checkpoint_every=1))
    load = {"local_files_only": True, "low_cpu_mem_usage": False}
    a = AutoencoderKL.from_pretrained(tmp_path / "a" / "vae" / "vae", **load).state_dict()
    b = AutoencoderKL.from_pretrained(tmp_path / "b" / "vae" / "vae", **load).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_recipe_schedule_ends_in_pure_noise_and_sampling_starts_there():
    # Zero terminal SNR: training's last step carries no signal, and DDIM's first step is that step.
    from diffusers import DDIMScheduler, DDPMScheduler

    from models.tiny import TINY_SCHEDULER
    from models.training.stages import _ddpm_config

    train = DDPMScheduler(**_ddpm_config())
    assert train.alphas_cumprod[-1] == 0 and train.config.prediction_type == "v_prediction"
    assert 0.99 < train.alphas_cumprod[0] < 1
    ddim = DDIMScheduler(**TINY_SCHEDULER)
    ddim.set_timesteps(25)
    assert ddim.timesteps[0] == train.config.num_train_timesteps - 1
    assert ddim.timesteps[-1] > 0  # trailing spacing: 999, 959, ..., 39


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_the_training_target_is_the_scheduler_prediction(prediction_type):
    from types import SimpleNamespace

    from models.training.stages import noise_and_target

    # A hand-made schedule: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, v = sqrt(abar) eps - sqrt(1 - abar) x0.
    abar = torch.tensor([0.64, 0.0], dtype=torch.float64)  # the second step is pure noise
    a, b = abar.sqrt().view(-1, 1), (1 - abar).sqrt().view(-1, 1)
    scheduler = SimpleNamespace(
        config=SimpleNamespace(num_train_timesteps=2, prediction_type=prediction_type),
        add_noise=lambda x0, eps, t: a[t] * x0 + b[t] * eps,
        get_velocity=lambda x0, eps, t: a[t] * eps - b[t] * x0,
    )
    x0 = torch.full((64, 3), 2.0, dtype=torch.float64)
    noisy, t, target = noise_and_target(x0, scheduler, torch.Generator().manual_seed(0))
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)).double()
    assert torch.equal(noisy[t == 1], eps[t == 1])  # pure noise: nothing of x0 is left
    torch.testing.assert_close(noisy[t == 0], 0.8 * 2.0 + 0.6 * eps[t == 0])
    if prediction_type == "epsilon":
        assert torch.equal(target, eps)
    else:  # v = 0.8 eps - 0.6 * 2 at abar = 0.64, and -x0 = -2 in pure noise
        torch.testing.assert_close(target[t == 0], 0.8 * eps[t == 0] - 1.2)
        torch.testing.assert_close(target[t == 1], torch.full_like(target[t == 1], -2.0))


# --- python -m models.train: argument checks before any work (issue 9 §4) --------------------------------


@pytest.fixture
def no_training(monkeypatch):
    """The stage runners replaced by recorders: a test that gets past the checks trains nothing."""
    from models import train as train_cli

    calls = []
    for name in list(train_cli.RUNNERS):
        monkeypatch.setitem(train_cli.RUNNERS, name, lambda recipe, loop, name=name: calls.append(name))
    return calls


BAD_FLAGS = [
    (["--stages", ""], "--stages"),
    (["--stages", " , "], "--stages"),
    (["--stages", "vae,sharpen"], "sharpen"),
    (["--steps-scale", "inf"], "--steps-scale"),
    (["--steps-scale", "nan"], "--steps-scale"),
    (["--steps-scale", "0"], "--steps-scale"),
    (["--steps-scale", "-1"], "--steps-scale"),
    (["--device", "foo"], "--device"),
    (["--threads", "0"], "--threads"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_train_flags_exit_through_argparse(tmp_path, capsys, no_training, flags, message):
    from models import train as train_cli

    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(["--out", str(tmp_path / "run"), *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() and no_training == []


def test_cuda_without_a_gpu_exits_through_argparse(tmp_path, capsys, monkeypatch, no_training):
    from models import train as train_cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(["--out", str(tmp_path / "run"), "--device", "cuda"])
    assert exit_info.value.code == 2 and "--device" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stages", "folder", "first"),
    [("temporal", "vae/vae", "vae"), ("t2i", "vae/vae", "vae"), ("vae,temporal", "t2i/unet", "t2i"),
     ("temporal_vae", "vae/vae", "vae")],
)  # fmt: skip
def test_a_stage_whose_inputs_are_missing_names_the_stage_to_run_first(
    tmp_path, capsys, no_training, stages, folder, first
):
    from models import train as train_cli

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(["--out", str(out), "--stages", stages])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and str(out / folder) in err and f"the {first} stage" in err
    assert "hub" not in err and no_training == []


def test_bundle_needs_the_last_stages(tmp_path, capsys, no_training):
    from models import train as train_cli

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(["--out", str(out), "--stages", "vae", "--bundle", str(tmp_path / "b")])
    assert exit_info.value.code == 2 and str(out / "temporal" / "unet") in capsys.readouterr().err
    assert no_training == [] and not (tmp_path / "b").exists()


def test_stages_run_in_order_when_their_inputs_come_first(tmp_path, no_training):
    from models import train as train_cli

    train_cli.main(["--out", str(tmp_path / "run"), "--stages", "vae, t2i,temporal,temporal_vae"])
    assert no_training == ["vae", "t2i", "temporal", "temporal_vae"]
    for folder in ("vae/vae", "t2i/unet", "t2i/text_encoder"):  # a later run needs only their folders
        (tmp_path / "run2" / folder).mkdir(parents=True)
    train_cli.main(["--out", str(tmp_path / "run2"), "--stages", "temporal"])
    assert no_training[-1] == "temporal"


def test_a_mismatched_checkpoint_stops_the_command_with_its_message(tmp_path, capsys, monkeypatch):
    from models import train as train_cli
    from models.training import stages

    monkeypatch.setitem(stages.BATCH, "vae", 2)
    argv = ["--out", str(tmp_path / "run"), "--stages", "vae", "--steps-scale", "0.001", "--no-progress"]
    train_cli.main([*argv, "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main([*argv, "--device", "cpu", "--seed", "1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and str(tmp_path / "run" / "vae" / CHECKPOINT) in err
    assert "seed = 0" in err and "seed = 1" in err and "Traceback" not in err


def test_a_t2i_encoder_of_another_world_is_refused(tmp_path):
    from models.data.worlds import SHAPES_WORDS, make_world
    from models.text import WordEncoder

    recipe = stages.RecipeConfig(out=tmp_path, world="long", progress=False)
    with pytest.raises(ValueError, match=r"world='long'.*'bouncing'.*--world long"):
        stages.check_vocabulary(WordEncoder(vocabulary=list(SHAPES_WORDS)), make_world("long"), recipe)
    stages.check_vocabulary(WordEncoder(vocabulary=make_world("long").words), make_world("long"), recipe)
    with pytest.raises(ValueError, match="world must be one of"):
        stages.RecipeConfig(out=tmp_path, world="moon")
