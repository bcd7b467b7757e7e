"""The kit's own tiny VidRD, saved as diffusers-style folders, and loading it from a local folder.

    models/weights/tiny-vidrd/
        manifest.json    sha256 and size of every other file (models.loading)
        unet/            VidRDUNet            (config.json, diffusion_pytorch_model.safetensors)
        vae/             TemporalVAE          (config.json, diffusion_pytorch_model.safetensors)
        text_encoder/    WordEncoder          (config.json, diffusion_pytorch_model.safetensors)
        scheduler/       DDIMScheduler        (scheduler_config.json)

`save_pipeline` writes a bundle all or nothing: built in a temporary folder beside the target, with its
manifest, loaded back strictly, and only then swapped in. `load_pipeline` checks that every file is
there, then every file against the manifest (a damaged, changed or extra model file is named, with how
to get the bundle back), then loads each model strictly (`models.loading`); nothing is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from diffusers import DDIMScheduler

from .files import atomic_folder
from .loading import MANIFEST, DamagedCheckpointError, verify_manifest, write_manifest
from .pipeline import VidRDPipeline
from .temporal_vae import TemporalVAE
from .text import WordEncoder
from .vidrd_unet import VidRDUNet

BUNDLED = Path(__file__).resolve().parent / "weights" / "tiny-vidrd"
BUNDLED_WORLD = "shapes"  # the world (models.data.worlds) the committed bundle was trained on
# What a VidRD bundle samples with unless told otherwise (vidrd generate, model_quality, model_continuity)
VIDRD_FRAMES, VIDRD_STEPS, VIDRD_GUIDANCE = 8, 25, 7.5
BUNDLE_COMMAND = "python -m models.train --out runs/tiny --bundle models/weights/tiny-vidrd"
_WEIGHTS = ("config.json", "diffusion_pytorch_model.safetensors")
MODELS = {"unet": VidRDUNet, "vae": TemporalVAE, "text_encoder": WordEncoder}
REQUIRED = (
    *(f"{part}/{name}" for part in MODELS for name in _WEIGHTS),
    "scheduler/scheduler_config.json",
    MANIFEST,
)


def missing_files(path: str | os.PathLike) -> list[Path]:
    """The files of a saved pipeline that are not there, in REQUIRED order."""
    root = Path(path)
    return [root / name for name in REQUIRED if not (root / name).is_file()]


def remedy(path: str | os.PathLike) -> str:
    """How to get an intact bundle back at `path`: the command for the bundled one, else a re-save."""
    root = Path(path)
    if root.resolve() == BUNDLED.resolve():
        return f"reinstall the kit or restore {root} from its repository, or regenerate it: {BUNDLE_COMMAND}"
    return (
        f"regenerate the bundle: save the pipeline again with models.bundled.save_pipeline, or for a "
        f"trained run: python -m models.train --out RUN --bundle {root}"
    )


def load_pipeline(path: str | os.PathLike = BUNDLED) -> VidRDPipeline:
    """A `VidRDPipeline` from a folder written by `save_pipeline` (default: the bundled tiny model)."""
    root = Path(path)
    missing = missing_files(root)
    if missing:
        old = " (a bundle written before manifests: re-save it)" if missing[0].name == MANIFEST else ""
        raise FileNotFoundError(
            f"the saved VidRD pipeline at {root} lacks {missing[0]}{old} (needs {list(REQUIRED)}); "
            f"{remedy(root)}"
        )
    try:
        verify_manifest(root, remedy(root))
    except DamagedCheckpointError as error:  # name the tensor or key too, where a strict load can tell
        _strict_loads(root, error)
        raise
    models = {part: cls.from_pretrained(root / part).eval() for part, cls in MODELS.items()}
    scheduler = DDIMScheduler.from_pretrained(root / "scheduler", local_files_only=True)
    return VidRDPipeline(**models, scheduler=scheduler)


def _strict_loads(root: Path, manifest_error: DamagedCheckpointError) -> None:
    """Load each part strictly; the first one that fails raises its error (naming the file and the tensor
    or key), chained to the manifest's. Returns if every part loads (the manifest's error then stands)."""
    for part, cls in MODELS.items():
        try:
            cls.from_pretrained(root / part)
        except DamagedCheckpointError as error:
            raise DamagedCheckpointError(f"{error}; {remedy(root)}") from manifest_error


def save_pipeline(pipe: VidRDPipeline, path: str | os.PathLike) -> Path:
    """Write the four folders of `pipe` and their manifest under `path`, all or nothing: the bundle is
    built beside `path`, loaded back strictly and compared with `pipe`, and only then replaces `path`
    (an existing bundle there is left as it was if anything fails)."""
    root = Path(path)
    with atomic_folder(root) as tmp:
        for part in MODELS:
            getattr(pipe, part).save_pretrained(tmp / part)
        pipe.scheduler.save_pretrained(tmp / "scheduler")
        write_manifest(tmp)
        check_saved(pipe, load_pipeline(tmp), tmp, MODELS)
    return root


def check_saved(pipe, saved, folder: Path, parts) -> None:
    """The weights of `parts` read back from `folder` (`saved`) are `pipe`'s, bit for bit; else a
    DamagedCheckpointError naming the part's folder and the tensors."""
    for part in parts:
        ours, theirs = getattr(pipe, part).state_dict(), getattr(saved, part).state_dict()
        differ = [k for k in ours if k not in theirs
                  or not torch.equal(ours[k].detach().cpu(), theirs[k].cpu().to(ours[k].dtype))]  # fmt: skip
        if differ:
            raise DamagedCheckpointError(
                f"{folder / part}: the saved {', '.join(differ[:5])} differ from the pipeline's"
            )
