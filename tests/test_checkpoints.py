"""Bundles carry a manifest and are written all or nothing; training checkpoints refuse a wrong resume
(issue 9 §1, §3). Damage is always done to copies, never to the committed weight files."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import diffusers
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from models import bundled
from models.bundled import BUNDLE_COMMAND, BUNDLED, load_pipeline, save_pipeline
from models.text import WordEncoder
from models.tiny import tiny_pipeline
from models.training.loop import CHECKPOINT, LoopConfig, train

UNET_WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


def named(*names) -> str:
    """A regex matching a message that names every one of `names` (in any order)."""
    return "".join(f"(?=[\\s\\S]*{re.escape(str(n))})" for n in names)


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def check_manifest(folder: Path, written_here: bool = True) -> None:
    """manifest.json lists exactly the folder's other files, with their sha256 and size (and, where this
    session wrote it, this session's torch build and CPU kernel level)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {k: v for k, v in files_of(folder).items() if k != "manifest.json"}
    assert manifest["files"] == {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in files.items()
    }
    if not written_here:
        return
    # what wrote it: a retrained bundle repeats bit for bit only with the same torch build and CPU kernels
    assert manifest["made_with"]["torch"] == torch.__version__
    assert manifest["made_with"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert manifest["made_with"]["cuda"] == str(torch.version.cuda)
    assert manifest["made_with"]["diffusers"] == diffusers.__version__


# --- manifests ------------------------------------------------------------------------------------------


def test_the_committed_bundle_has_a_manifest_of_its_files():
    check_manifest(BUNDLED, written_here=False)  # written before manifests said what wrote them


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    """A copy of the bundled model that load_pipeline takes for the bundled one (as for its remedy)."""
    copy = Path(shutil.copytree(BUNDLED, tmp_path / "tiny-vidrd"))
    monkeypatch.setattr(bundled, "BUNDLED", copy)
    return copy


def test_a_changed_byte_in_a_bundle_is_named_with_how_to_regenerate(bundle):
    file = bundle / UNET_WEIGHTS
    raw = bytearray(file.read_bytes())
    raw[len(raw) // 2] ^= 1  # a low mantissa bit: the values stay finite and plausible
    file.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=named(file, "sha256", BUNDLE_COMMAND)):
        load_pipeline(bundle)


def test_a_changed_config_value_is_named(bundle):
    file = bundle / "vae" / "config.json"
    file.write_text(file.read_text().replace('"seed": 0', '"seed": 1'))
    with pytest.raises(ValueError, match=named(file, BUNDLE_COMMAND)):
        load_pipeline(bundle)


def test_a_missing_manifest_is_named(bundle):
    (bundle / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=named(bundle / "manifest.json", BUNDLE_COMMAND)):
        load_pipeline(bundle)


@pytest.mark.parametrize("extra", ["unet/diffusion_pytorch_model.bin", "vae/extra.safetensors"])
def test_an_extra_weight_file_is_named(bundle, extra):
    shutil.copy(bundle / UNET_WEIGHTS, bundle / extra)
    with pytest.raises(ValueError, match=named(bundle / extra, BUNDLE_COMMAND)):
        load_pipeline(bundle)


def test_a_damaged_manifest_is_named(bundle):
    (bundle / "manifest.json").write_text('{"files": ')
    with pytest.raises(ValueError, match=named(bundle / "manifest.json")):
        load_pipeline(bundle)


def test_another_bundle_names_its_re_save(tmp_path):
    copy = Path(shutil.copytree(BUNDLED, tmp_path / "mine"))
    (copy / "vae" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=named(copy / "vae" / "config.json", "save_pipeline", "--bundle")):
        load_pipeline(copy)


# --- save_pipeline --------------------------------------------------------------------------------------


def test_save_pipeline_writes_a_manifest_of_every_file(tmp_path):
    folder = save_pipeline(tiny_pipeline(seed=0), tmp_path / "bundle")
    check_manifest(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temporary left beside it


def test_a_save_failing_midway_leaves_the_old_bundle_as_it_was(tmp_path, monkeypatch):
    folder = save_pipeline(tiny_pipeline(seed=0), tmp_path / "bundle")
    before = files_of(folder)

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(WordEncoder, "save_pretrained", fail)  # after the unet and the vae are written
    with pytest.raises(OSError, match="disk full"):
        save_pipeline(tiny_pipeline(seed=1), folder)
    assert files_of(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_an_unusable_bundle_is_never_put_in_place(tmp_path, monkeypatch):
    original = WordEncoder.save_pretrained

    def save_without_vocabulary(self, folder, *args, **kwargs):
        original(self, folder, *args, **kwargs)
        config = json.loads((Path(folder) / "config.json").read_text())
        del config["vocabulary"]
        (Path(folder) / "config.json").write_text(json.dumps(config))

    monkeypatch.setattr(WordEncoder, "save_pretrained", save_without_vocabulary)
    with pytest.raises(ValueError, match=named("text_encoder", "config.json", "vocabulary")):
        save_pipeline(tiny_pipeline(seed=0), tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_a_saved_bundle_loads_exactly_the_pipeline(tmp_path):
    pipe = tiny_pipeline(seed=3)
    loaded = load_pipeline(save_pipeline(pipe, tmp_path / "bundle"))
    for part in ("unet", "vae", "text_encoder"):
        a, b = getattr(pipe, part).state_dict(), getattr(loaded, part).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    reference = load_file(BUNDLED / UNET_WEIGHTS)  # and the bundled one exactly its file's tensors
    state = load_pipeline().unet.state_dict()
    assert state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)


# --- training checkpoints -------------------------------------------------------------------------------


class Wide(nn.Module):
    """Big enough (a 22 KB checkpoint) for 4 KB of random bytes to land in the tensors' data."""

    def __init__(self, width: int = 32):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.layer = nn.Linear(width, width)


def wide_loss(model):
    def loss(g):
        x = torch.randn(8, model.layer.in_features, generator=g)
        return (model.layer(x) - x.flip(1)).pow(2).mean()

    return loss


CONFIG = LoopConfig(steps=4, lr=0.01, checkpoint_every=2, seed=3)


def run(out, config=CONFIG, name="stage", identity=None, model=None):
    model = model or Wide()
    extra = {} if identity is None else {"identity": identity}
    return train(name, model, wide_loss(model), config, out, progress=False, **extra)


@pytest.fixture
def trained(tmp_path):
    """A run folder whose checkpoint is at step 2 of CONFIG (steps 4)."""
    run(tmp_path / "run", LoopConfig(steps=2, lr=0.01, checkpoint_every=2, seed=3))
    return tmp_path / "run"


def test_an_extended_run_resumes_and_equals_a_straight_one(tmp_path, trained):
    assert run(trained) == run(tmp_path / "straight")


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "flipped"])
def test_a_damaged_checkpoint_is_named(trained, damage):
    file = trained / CHECKPOINT
    raw = bytearray(file.read_bytes())
    if damage == "empty":
        raw = bytearray()
    elif damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "random":  # 4 KB of random bytes in the middle
        noise = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
        middle = len(raw) // 2 - 2048
        raw[middle : middle + 4096] = noise.numpy().tobytes()
    else:
        raw[len(raw) // 2] ^= 1
    file.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=named(file, "damaged", trained)):
        run(trained)


def test_a_checkpoint_of_another_stage_is_refused(trained):
    with pytest.raises(ValueError, match=named(trained / CHECKPOINT, "'stage'", "'other'", "another --out")):
        run(trained, name="other")


@pytest.mark.parametrize(("field", "changed"), [("seed", 4), ("lr", 0.02), ("grad_clip", 0.5)])
def test_a_checkpoint_with_other_loop_settings_is_refused(trained, field, changed):
    config = LoopConfig(**{**CONFIG.__dict__, field: changed})
    before = getattr(CONFIG, field)
    with pytest.raises(
        ValueError, match=named(trained / CHECKPOINT, f"loop.{field} = {before!r}", repr(changed))
    ):
        run(trained, config)


def test_a_checkpoint_with_another_identity_is_refused(tmp_path):
    out = tmp_path / "run"
    run(out, LoopConfig(steps=2, lr=0.01, checkpoint_every=2, seed=3), identity={"seed": 0, "pseudo": True})
    with pytest.raises(ValueError, match=named(out / CHECKPOINT, "seed = 0", "seed = 1", "delete")):
        run(out, identity={"seed": 1, "pseudo": True})
    with pytest.raises(ValueError, match=named(out / CHECKPOINT, "pseudo = True", "pseudo = False")):
        run(out, identity={"seed": 0, "pseudo": False})
    run(out, identity={"seed": 0, "pseudo": True})  # the same: resumes


def test_a_checkpoint_past_the_run_is_refused(tmp_path):
    run(tmp_path / "run")
    with pytest.raises(ValueError, match=named(tmp_path / "run" / CHECKPOINT, "step 4", "2 steps")):
        run(tmp_path / "run", LoopConfig(steps=2, lr=0.01, checkpoint_every=2, seed=3))


def test_a_checkpoint_of_another_model_names_the_tensor(trained):
    with pytest.raises(ValueError, match=named(trained / CHECKPOINT, "layer.weight", "(32, 32)", "(16, 16)")):
        run(trained, model=Wide(width=16))


def test_a_checkpoint_of_the_old_format_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    model = Wide()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": 0,
                "generator": torch.Generator().get_state(), "losses": []}, out / CHECKPOINT)  # fmt: skip
    with pytest.raises(ValueError, match=named(out / CHECKPOINT, "format")):
        run(out)


def test_a_recipe_stage_refuses_a_checkpoint_of_another_seed(tmp_path, monkeypatch):
    from models.training import stages

    monkeypatch.setitem(stages.BATCH, "vae", 2)
    loop = LoopConfig(steps=1, lr=1e-3, checkpoint_every=1)
    stages.train_vae(stages.RecipeConfig(out=tmp_path, seed=0, device="cpu", progress=False), loop)
    other = stages.RecipeConfig(out=tmp_path, seed=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match=named(tmp_path / "vae" / CHECKPOINT, "seed = 0", "seed = 1")):
        stages.train_vae(other, LoopConfig(steps=2, lr=1e-3, checkpoint_every=1))
    monkeypatch.setitem(stages.BATCH, "vae", 3)  # another batch size shapes another run too
    same_seed = stages.RecipeConfig(out=tmp_path, seed=0, device="cpu", progress=False)
    with pytest.raises(ValueError, match=named("batch = 2", "batch = 3")):
        stages.train_vae(same_seed, LoopConfig(steps=2, lr=1e-3, checkpoint_every=1))
