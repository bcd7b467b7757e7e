"""Strict loading of the kit's model folders: a damaged file never loads silently (issue 9 §1).

Every test damages a copy (of the bundled tiny VidRD's parts, or of a tiny model saved here) and expects
a ValueError naming the file and the tensor or key; the references are the files' own contents.
"""

import hashlib
import json
import re
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from benchmarks.classifier import ClassifierConfig, build_classifier, load_classifier, save_classifier
from models.bundled import BUNDLED
from models.temporal_vae import TemporalVAE
from models.text import WordEncoder, WordTokenizer
from models.vidrd_unet import VidRDUNet

WEIGHTS = "diffusion_pytorch_model.safetensors"
CLASSES = {"unet": VidRDUNet, "vae": TemporalVAE, "text_encoder": WordEncoder}
CLASSIFIER = Path(__file__).resolve().parents[1] / "benchmarks" / "weights" / "shapes-classifier"


def named(*names) -> str:
    """A regex matching a message that names every one of `names` (in any order)."""
    return "".join(f"(?=[\\s\\S]*{re.escape(str(n))})" for n in names)


@pytest.fixture(params=list(CLASSES))
def part(request, tmp_path):
    """(class, copy of the bundled model's folder of that part)."""
    return CLASSES[request.param], Path(shutil.copytree(BUNDLED / request.param, tmp_path / request.param))


def header(file: Path) -> tuple[dict, int]:
    """The safetensors header and where its data section starts."""
    raw = file.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + size]), 8 + size


def largest_tensor(file: Path) -> tuple[str, int, int]:
    """(name, first byte, end byte) in the file of its largest tensor."""
    entries, start = header(file)
    entries.pop("__metadata__", None)
    name = max(entries, key=lambda k: entries[k]["data_offsets"][1] - entries[k]["data_offsets"][0])
    begin, end = entries[name]["data_offsets"]
    return name, start + begin, start + end


def overwrite(file: Path, offset: int, data: bytes) -> None:
    raw = bytearray(file.read_bytes())
    raw[offset : offset + len(data)] = data
    file.write_bytes(bytes(raw))


def edit_config(file: Path, edit) -> None:
    config = json.loads(file.read_text())
    edit(config)
    file.write_text(json.dumps(config, indent=2))


# --- intact folders load exactly ------------------------------------------------------------------------


def test_an_intact_part_loads_exactly_its_files(part):
    cls, folder = part
    model = cls.from_pretrained(folder)
    reference = load_file(folder / WEIGHTS)
    state = model.state_dict()
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) and state[k].dtype == reference[k].dtype for k in state)
    saved = json.loads((folder / "config.json").read_text())
    public = {k: v for k, v in saved.items() if not k.startswith("_")}
    assert json.loads(json.dumps({k: model.config[k] for k in public})) == public


# --- tensors ----------------------------------------------------------------------------------------------


def test_a_missing_tensor_is_named(part):
    cls, folder = part
    state = load_file(folder / WEIGHTS)
    dropped = sorted(state)[len(state) // 2]
    del state[dropped]
    save_file(state, folder / WEIGHTS, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=named(folder / WEIGHTS, dropped, "missing")):
        cls.from_pretrained(folder)


def test_an_unexpected_tensor_is_named(part):
    cls, folder = part
    state = load_file(folder / WEIGHTS)
    state["stray.weight"] = torch.zeros(3)
    save_file(state, folder / WEIGHTS, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=named(folder / WEIGHTS, "stray.weight", "unexpected")):
        cls.from_pretrained(folder)


def test_a_mis_shaped_tensor_is_named(part):
    cls, folder = part
    state = load_file(folder / WEIGHTS)
    key = sorted(state)[0]
    state[key] = torch.zeros(*state[key].shape, 2)
    save_file(state, folder / WEIGHTS, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=named(folder / WEIGHTS, key, "shape")):
        cls.from_pretrained(folder)


def test_a_non_finite_tensor_is_named(part):
    cls, folder = part
    name, begin, end = largest_tensor(folder / WEIGHTS)
    overwrite(folder / WEIGHTS, (begin + end) // 2 // 4 * 4, b"\xff" * 64)  # NaN bit patterns
    with pytest.raises(ValueError, match=named(folder / WEIGHTS, name)):
        cls.from_pretrained(folder)


def test_random_bytes_in_the_data_are_refused(part):
    cls, folder = part
    name, begin, end = largest_tensor(folder / WEIGHTS)
    noise = torch.randint(0, 256, (256,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    overwrite(folder / WEIGHTS, (begin + end) // 2, noise.numpy().tobytes())
    with pytest.raises(ValueError, match=named(folder / WEIGHTS, name)):
        cls.from_pretrained(folder)


@pytest.mark.parametrize("damage", ["truncated", "empty", "header"])
def test_a_damaged_weights_file_is_named(part, damage):
    cls, folder = part
    file = folder / WEIGHTS
    if damage == "truncated":
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    elif damage == "empty":
        file.write_bytes(b"")
    else:
        overwrite(file, 9, b"#")  # the header's JSON no longer parses
    with pytest.raises(ValueError, match=named(file)):
        cls.from_pretrained(folder)


# --- config -----------------------------------------------------------------------------------------------

MISSING_KEYS = [
    ("unet", ["attention_heads"]),
    ("unet", ["unet_config", "cross_attention_dim"]),
    ("vae", ["seed"]),
    ("vae", ["vae_config", "scaling_factor"]),
    ("text_encoder", ["vocabulary"]),
    ("text_encoder", ["max_length"]),
]


@pytest.mark.parametrize(("name", "keys"), MISSING_KEYS, ids=[".".join(k) for _, k in MISSING_KEYS])
def test_a_missing_config_key_is_named(tmp_path, name, keys):
    folder = Path(shutil.copytree(BUNDLED / name, tmp_path / name))

    def drop(config):
        for key in keys[:-1]:
            config = config[key]
        del config[keys[-1]]

    edit_config(folder / "config.json", drop)
    with pytest.raises(ValueError, match=named(folder / "config.json", keys[-1], "missing")):
        CLASSES[name].from_pretrained(folder)


@pytest.mark.parametrize("nested", [False, True])
def test_an_unknown_config_key_is_named(tmp_path, nested):
    folder = Path(shutil.copytree(BUNDLED / "vae", tmp_path / "vae"))
    edit_config(folder / "config.json", lambda c: (c["vae_config"] if nested else c).update(scalng=1.0))
    with pytest.raises(ValueError, match=named(folder / "config.json", "scalng", "unknown")):
        TemporalVAE.from_pretrained(folder)


def test_a_config_of_another_model_is_refused(tmp_path):
    folder = Path(shutil.copytree(BUNDLED / "vae", tmp_path / "vae"))
    shutil.copy(BUNDLED / "unet" / "config.json", folder / "config.json")
    with pytest.raises(ValueError, match=named(folder / "config.json", "VidRDUNet", "TemporalVAE")):
        TemporalVAE.from_pretrained(folder)


@pytest.mark.parametrize("text", ["{", "", "[1, 2]", '{"dim": 32'])
def test_an_unreadable_config_is_named(tmp_path, text):
    folder = Path(shutil.copytree(BUNDLED / "text_encoder", tmp_path / "text_encoder"))
    (folder / "config.json").write_text(text)
    with pytest.raises(ValueError, match=named(folder / "config.json")):
        WordEncoder.from_pretrained(folder)


def test_a_config_value_the_model_refuses_is_named(tmp_path):
    folder = Path(shutil.copytree(BUNDLED / "text_encoder", tmp_path / "text_encoder"))
    edit_config(folder / "config.json", lambda c: c.update(heads=5))  # must divide dim = 32
    with pytest.raises(ValueError, match=named(folder / "config.json", "heads")):
        WordEncoder.from_pretrained(folder)


def test_a_missing_folder_or_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="local folder"):
        VidRDUNet.from_pretrained(tmp_path / "nowhere")
    folder = Path(shutil.copytree(BUNDLED / "text_encoder", tmp_path / "text_encoder"))
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=named(folder / "config.json")):
        WordEncoder.from_pretrained(folder)


# --- the word tokenizer's file ----------------------------------------------------------------------------


def test_the_tokenizer_file_round_trips_and_is_strict(tmp_path):
    file = tmp_path / "tokenizer.json"
    WordTokenizer(["a", "red", "circle"], max_length=5).save(file)
    loaded = WordTokenizer.load(file)
    assert (loaded.vocabulary, loaded.max_length) == (["a", "red", "circle"], 5)
    edit_config(file, lambda c: c.pop("max_length"))
    with pytest.raises(ValueError, match=named(file, "max_length")):
        WordTokenizer.load(file)
    file.write_text('{"vocabulary": ["a"], "max_length": 4, "lower": true}')
    with pytest.raises(ValueError, match=named(file, "lower")):
        WordTokenizer.load(file)
    file.write_text("not json")
    with pytest.raises(ValueError, match=named(file)):
        WordTokenizer.load(file)


# --- the image stages' diffusers folders ------------------------------------------------------------------


def test_the_t2i_stage_refuses_a_vae_without_its_scaling_factor(tmp_path):
    from models.tiny import tiny_vae
    from models.training.stages import RecipeConfig, _frozen_vae

    folder = tmp_path / "vae" / "vae"
    tiny_vae(0).save_pretrained(folder)
    edit_config(folder / "config.json", lambda c: c.pop("scaling_factor"))
    with pytest.raises(ValueError, match=named(folder / "config.json", "scaling_factor")):
        _frozen_vae(RecipeConfig(out=tmp_path, device="cpu", progress=False))


# --- the shapes classifier --------------------------------------------------------------------------------

SMALL = ClassifierConfig(channels=(4, 8), feature_dim=8)


@pytest.fixture
def classifier(tmp_path):
    return save_classifier(build_classifier(SMALL, seed=0), tmp_path / "clf")


def test_the_classifier_loads_exactly_its_file(classifier):
    model = load_classifier(classifier)
    reference = load_file(classifier / "model.safetensors")
    assert model.config == SMALL and model.state_dict().keys() == reference.keys()
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())


def test_the_classifier_names_a_missing_or_mis_shaped_tensor(classifier):
    file = classifier / "model.safetensors"
    state = load_file(file)
    del state["project.0.bias"]
    state["heads.shape.weight"] = torch.zeros(2, 2)
    save_file(state, file)
    with pytest.raises(ValueError, match=named(file, "project.0.bias", "heads.shape.weight")):
        load_classifier(classifier)


def test_the_classifier_names_a_missing_config_key(classifier):
    edit_config(classifier / "config.json", lambda c: c.pop("feature_dim"))
    with pytest.raises(ValueError, match=named(classifier / "config.json", "feature_dim")):
        load_classifier(classifier)


def test_the_classifier_names_non_finite_bytes(classifier):
    file = classifier / "model.safetensors"
    name, begin, end = largest_tensor(file)
    overwrite(file, (begin + end) // 2 // 4 * 4, b"\xff" * 16)
    with pytest.raises(ValueError, match=named(file, name)):
        load_classifier(classifier)


@pytest.mark.skipif(not (CLASSIFIER / "model.safetensors").is_file(), reason="no trained classifier")
def test_the_committed_classifier_checks_its_manifest(tmp_path):
    folder = Path(shutil.copytree(CLASSIFIER, tmp_path / "clf"))
    load_classifier(folder)  # intact
    file = folder / "model.safetensors"
    _, begin, end = largest_tensor(file)
    raw = bytearray(file.read_bytes())
    raw[(begin + end) // 2] ^= 1  # one low mantissa bit: finite, plausible, wrong
    file.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=named(file, "sha256")):
        load_classifier(folder)


@pytest.mark.skipif(not (CLASSIFIER / "model.safetensors").is_file(), reason="no trained classifier")
def test_re_saving_the_committed_classifier_keeps_its_manifest_current(tmp_path):
    folder = Path(shutil.copytree(CLASSIFIER, tmp_path / "clf"))
    save_classifier(build_classifier(SMALL, seed=1), folder)  # as a retraining would
    manifest = json.loads((folder / "manifest.json").read_text())["files"]
    for name in ("config.json", "model.safetensors"):
        data = (folder / name).read_bytes()
        assert manifest[name] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert load_classifier(folder).config == SMALL
