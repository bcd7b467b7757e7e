"""Saving and loading the kit's models from local folders only (nothing downloaded), strictly.

A damaged model file never loads silently. `load_folder` (behind every `LocalModelMixin.from_pretrained`,
and used for the recipe's diffusers `AutoencoderKL` / `UNet2DConditionModel` folders) checks, naming the
file and the key or tensor at fault in a `DamagedCheckpointError`:

1. `config.json` is a JSON object; its `_class_name`, where present, is the class being loaded; its keys
   are exactly the parameters of the class's `__init__` (a config written by `save_pretrained` holds
   every one, defaults included), and so are those of its nested model configs (`unet_config`,
   `vae_config`: exactly the parameters of the diffusers class they build). Keys starting with `_` are
   diffusers' bookkeeping and are not checked. (A diffusers upgrade whose model classes take new
   parameters therefore needs the folders saved again.)
2. The safetensors file reads (a damaged header or a truncated file does not), and its tensors are
   exactly the model's state dict: no tensor missing, none unexpected, every shape the model's (and
   floating point where the model's is).
3. Every floating value is finite and at most `MAX_ABS` in magnitude: random bytes in the data section
   almost always make NaN, infinities or absurd values. (Changes that stay plausible are caught only by a
   manifest, below.)
4. Only then `load_state_dict(strict=True)`: the model holds the file's values bit for bit.

Manifests: `write_manifest(folder)` records the sha256 and size of every file of a folder (a model
bundle) in `folder/manifest.json`, `verify_manifest` checks them before anything is built:

    {"format": "reuse-diffuse-kit manifest 1",
     "files": {"unet/config.json": {"sha256": "<64 hex digits>", "size": 1946}, ...}}

Paths are relative to the folder, with `/`, sorted; hidden files (`.name`) and the manifest itself are
not listed. An unlisted file with a model-file suffix (`MODEL_SUFFIXES`) is an error too. A manifest also
says what wrote it (`"made_with"`: torch, diffusers, Python, machine, CPU kernels, CUDA; older ones do
not), because a training run repeats bit for bit only on the same; the check reads only the files.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import diffusers
import torch
from diffusers import ModelMixin
from safetensors.torch import load_file

from .files import atomic_path
from .seeding import seeded

CONFIG = "config.json"
WEIGHTS = "diffusion_pytorch_model.safetensors"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "reuse-diffuse-kit manifest 1"
MAX_ABS = 1e8  # no weight of a working model comes near; a random 32-bit pattern exceeds it 4 times in 10
MODEL_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx", ".json")


class DamagedCheckpointError(ValueError, RuntimeError):
    """A model or checkpoint file that is there but cannot be used as it is; the message names the file
    and the key or tensor at fault. A ValueError (and a RuntimeError, as torch's own
    `load_state_dict` errors are)."""


def load_weights_only(path: Path, error: type[Exception], what: str, afresh: str) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU. A missing, empty, truncated or corrupted file is
    `error` naming the file and how to start afresh; a permission or other system error passes through
    as it is (the file may be fine)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (PermissionError, IsADirectoryError):
        raise
    # torch raises OSError (errno 22) for a truncated file, RuntimeError/ValueError/pickle errors for others
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
        first_line = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise error(
            f"{path} is not a readable {what} ({type(err).__name__}: {first_line}): it is missing, truncated "
            f"or damaged; {afresh}"
        ) from err


def json_native(config: dict[str, Any]) -> dict[str, Any]:
    """`config` as config.json gives it back (tuples become lists), so save/load round trips are exact."""
    return json.loads(json.dumps(dict(config)))


def public_config(model: Any) -> dict[str, Any]:
    """A diffusers model's config without diffusers' bookkeeping keys (`_class_name`, ...)."""
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


def _few(names: Iterable[str], most: int = 8) -> str:
    names = list(names)
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


# --- config.json ----------------------------------------------------------------------------------------


def read_json(file: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in `file`; FileNotFoundError if absent, DamagedCheckpointError if unreadable."""
    file = Path(file)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as err:  # json's errors are ValueErrors
        raise DamagedCheckpointError(f"{file} is not readable JSON ({err}): the file is damaged") from err
    if not isinstance(data, dict):
        raise DamagedCheckpointError(f"{file} must hold a JSON object; it holds a {type(data).__name__}")
    return data


def init_parameters(cls: type) -> set[str]:
    """The named parameters of `cls.__init__` (what its diffusers config records)."""
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    params = inspect.signature(cls.__init__).parameters
    ignored = set(getattr(cls, "ignore_for_config", ()))
    return {n for n, p in params.items() if n != "self" and p.kind not in kinds and n not in ignored}


def check_keys(file: Path, found: Iterable[str], expected: set[str], owner: str, prefix: str = "") -> None:
    """Exactly the `expected` keys (`_` bookkeeping keys aside), else an error naming each odd one."""
    found = {k for k in found if not k.startswith("_")}
    problems = []
    if missing := sorted(expected - found):
        problems.append("missing key(s) " + _few(prefix + k for k in missing))
    if unknown := sorted(found - expected):
        problems.append("unknown key(s) " + _few(prefix + k for k in unknown))
    if problems:
        raise DamagedCheckpointError(
            f"{file}: {'; '.join(problems)} (a config of {owner} holds exactly the parameters of its "
            "__init__): the file is damaged or not this model's"
        )


def read_model_config(cls: type, file: Path, nested: Mapping[str, type]) -> dict[str, Any]:
    """`file`'s config for `cls`, checked as the module docstring says (item 1)."""
    config = read_json(file)
    saved_class = config.get("_class_name", cls.__name__)
    if saved_class != cls.__name__:
        raise DamagedCheckpointError(
            f"{file} is the config of a {saved_class}, not of a {cls.__name__} (_class_name)"
        )
    check_keys(file, config, init_parameters(cls), cls.__name__)
    for key, inner in nested.items():
        if not isinstance(config[key], dict):
            raise DamagedCheckpointError(f"{file}: {key} must be a JSON object (the {inner.__name__} config)")
        check_keys(file, config[key], init_parameters(inner), inner.__name__, prefix=f"{key}.")
    return config


# --- weights --------------------------------------------------------------------------------------------


def read_weights(file: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, on the CPU; DamagedCheckpointError naming it if unreadable."""
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing")
    try:
        return load_file(str(file))
    except Exception as err:  # safetensors' SafetensorError and friends: a damaged header, a short file
        raise DamagedCheckpointError(
            f"{file} is not a readable safetensors file ({type(err).__name__}: {err}): it is truncated or "
            "damaged"
        ) from err


def check_state(file: Path, expected: Mapping[str, torch.Tensor], found: Mapping[str, Any]) -> None:
    """`found` holds exactly `expected`'s tensors, each of its shape and kind (floating or not)."""
    problems = []
    if missing := [k for k in expected if k not in found]:
        problems.append("missing tensor(s) " + _few(missing))
    if unexpected := [k for k in found if k not in expected]:
        problems.append("unexpected tensor(s) " + _few(unexpected))
    for key, want in expected.items():
        have = found.get(key)
        if key in found and not isinstance(have, torch.Tensor):
            problems.append(f"{key} is a {type(have).__name__}, not a tensor")
        elif key in found and (have.shape != want.shape or _kind(have) != _kind(want)):
            problems.append(
                f"size mismatch for {key}: shape {tuple(have.shape)} {have.dtype} in the file, "
                f"{tuple(want.shape)} {want.dtype} in the model"
            )
    if problems:
        raise DamagedCheckpointError(f"{file}: " + "; ".join(problems))


def _kind(tensor: torch.Tensor) -> str:
    """Floating tensors load into floating ones of any precision; other dtypes must match exactly."""
    return "floating" if tensor.is_floating_point() else str(tensor.dtype)


def check_values(file: Path, state: Mapping[str, torch.Tensor]) -> None:
    """Every floating value finite and at most MAX_ABS in magnitude (item 3 of the docstring)."""
    bad = [
        key
        for key, t in state.items()
        if t.is_floating_point() and t.numel() and not bool(t.isfinite().all() and t.abs().max() <= MAX_ABS)
    ]
    if bad:
        raise DamagedCheckpointError(
            f"{file}: tensor(s) {_few(bad)} hold non-finite or absurd values (|x| > {MAX_ABS:g}): "
            "the file's data are damaged"
        )


# --- whole folders --------------------------------------------------------------------------------------


def load_folder(cls: type, path: str | os.PathLike, nested: Mapping[str, type] | None = None):
    """A `cls` (a diffusers ConfigMixin + nn.Module class) from `path/config.json` and
    `path/diffusion_pytorch_model.safetensors`, in eval mode, checked as the module docstring says."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"path must be a local folder written by {cls.__name__}.save_pretrained; got {str(path)!r} "
            "(the kit never downloads)"
        )
    config_file, weights_file = folder / CONFIG, folder / WEIGHTS
    for file in (config_file, weights_file):
        if not file.is_file():
            raise FileNotFoundError(f"the saved {cls.__name__} at {folder} lacks {file}")
    config = read_model_config(cls, config_file, nested or {})
    state = read_weights(weights_file)
    model = _build(cls, config, config_file)
    check_state(weights_file, model.state_dict(), state)
    check_values(weights_file, state)
    model.load_state_dict(state, strict=True)
    model.register_to_config(_name_or_path=str(folder))
    return model.eval()


def _build(cls: type, config: Mapping[str, Any], file: Path):
    """`cls` from its config, without drawing from the caller's global RNG (the weights are replaced)."""
    try:
        with seeded(0):
            return cls.from_config({k: v for k, v in config.items() if not k.startswith("_")})
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        message = f"{file}: no {cls.__name__} can be built from this config ({err})"
        raise DamagedCheckpointError(message) from err


class LocalModelMixin(ModelMixin):
    """`from_pretrained` for a folder written by `save_pretrained`: local safetensors, loaded strictly."""

    nested_configs: ClassVar[dict[str, type]] = {}  # config keys holding a diffusers model's config

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike):
        """The model saved in the folder `path`; DamagedCheckpointError (a ValueError) naming the file and
        the key or tensor if anything in it is wrong (see `models.loading`)."""
        return load_folder(cls, path, cls.nested_configs)


# --- manifests ------------------------------------------------------------------------------------------


def file_record(path: str | os.PathLike) -> dict[str, Any]:
    """{"sha256": hex digest, "size": bytes} of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "size": os.path.getsize(path)}


def folder_files(folder: Path) -> dict[str, Path]:
    """{relative posix path: path} of the files under `folder` a manifest lists: not hidden, not itself."""
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and rel.as_posix() != MANIFEST and not any(p.startswith(".") for p in rel.parts):
            files[rel.as_posix()] = path
    return files


def made_with() -> dict[str, str]:
    """What wrote a manifest: torch, diffusers and Python versions, the machine, torch's CPU kernel level
    and its CUDA version. A training run repeats bit for bit only where these are the same (float
    reductions differ between builds and between AVX2 and AVX-512 kernels), so a bundle records them."""
    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": str(torch.version.cuda),  # the build's CUDA ("None" for a CPU build): what --device cuda ran
    }


def manifest_text(files: Mapping[str, str | os.PathLike]) -> str:
    """The manifest of `files` ({name in the folder: where its bytes are now}), as JSON text, with
    `made_with()` (readers check "format" and "files" only)."""
    records = {name: file_record(files[name]) for name in sorted(files)}
    found = {"format": MANIFEST_FORMAT, "files": records, "made_with": made_with()}
    return json.dumps(found, indent=2) + "\n"


def write_manifest(path: str | os.PathLike) -> Path:
    """Write `path/manifest.json` for the files now in the folder `path` (atomically); its path."""
    folder = Path(path)
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(manifest_text(folder_files(folder)), encoding="utf-8")
    return folder / MANIFEST


def _manifest_records(file: Path, remedy: str) -> dict[str, dict[str, Any]]:
    """The "files" of a manifest, their shape checked (a damaged manifest is named as such)."""
    try:
        data = read_json(file)
    except DamagedCheckpointError as err:
        raise DamagedCheckpointError(f"{err}; {remedy}") from err
    files = data.get("files")
    if data.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
        raise DamagedCheckpointError(f"{file} is not a manifest ({MANIFEST_FORMAT!r}); {remedy}")
    for name, record in files.items():
        inside = not Path(name).is_absolute() and ".." not in Path(name).parts
        typed = isinstance(record, dict) and isinstance(record.get("sha256"), str)
        if not (inside and typed and isinstance(record.get("size"), int)):
            raise DamagedCheckpointError(f"{file}: the entry {name!r} is malformed; {remedy}")
    return files


def verify_manifest(path: str | os.PathLike, remedy: str) -> None:
    """Check every file of the folder `path` against its manifest.json: all there (FileNotFoundError),
    no unlisted model file, every size and sha256 as recorded (DamagedCheckpointError); each message
    names the file(s) and ends with `remedy` (how to get an intact folder back)."""
    folder = Path(path)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} is missing: the files of {folder} cannot be checked; {remedy}")
    records = _manifest_records(manifest, remedy)
    if missing := [name for name in records if not (folder / name).is_file()]:
        names = _few(str(folder / n) for n in missing)
        raise FileNotFoundError(f"{names} missing (listed in {manifest}); {remedy}")
    extra = [n for n in folder_files(folder) if n not in records and n.endswith(MODEL_SUFFIXES)]
    if extra:
        names = _few(str(folder / n) for n in extra)
        raise DamagedCheckpointError(f"{names}: not in {manifest}, not a file of this model; {remedy}")
    for name in sorted(records):
        file, want = folder / name, records[name]
        if os.path.getsize(file) != want["size"]:
            raise DamagedCheckpointError(
                f"{file} has {os.path.getsize(file)} bytes, {want['size']} in {manifest}: the file is "
                f"truncated or damaged; {remedy}"
            )
        if file_record(file)["sha256"] != want["sha256"]:
            raise DamagedCheckpointError(
                f"{file}: its sha256 differs from {manifest}: the file is damaged or was changed; {remedy}"
            )
