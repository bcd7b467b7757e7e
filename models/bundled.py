"""The kit's own tiny VidRD, saved as diffusers-style folders, and loading it from a local folder.

    models/weights/tiny-vidrd/
        unet/            VidRDUNet            (config.json, diffusion_pytorch_model.safetensors)
        vae/             TemporalVAE          (config.json, diffusion_pytorch_model.safetensors)
        text_encoder/    WordEncoder          (config.json, diffusion_pytorch_model.safetensors)
        scheduler/       DDIMScheduler        (scheduler_config.json)

Loading checks every file first and names the first one that is missing; nothing is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from diffusers import DDIMScheduler

from .pipeline import VidRDPipeline
from .temporal_vae import TemporalVAE
from .text import WordEncoder
from .vidrd_unet import VidRDUNet

BUNDLED = Path(__file__).resolve().parent / "weights" / "tiny-vidrd"
_WEIGHTS = ("config.json", "diffusion_pytorch_model.safetensors")
REQUIRED = (
    *(f"{part}/{name}" for part in ("unet", "vae", "text_encoder") for name in _WEIGHTS),
    "scheduler/scheduler_config.json",
)


def missing_files(path: str | os.PathLike) -> list[Path]:
    """The files of a saved pipeline that are not there, in REQUIRED order."""
    root = Path(path)
    return [root / name for name in REQUIRED if not (root / name).is_file()]


def load_pipeline(path: str | os.PathLike = BUNDLED) -> VidRDPipeline:
    """A `VidRDPipeline` from a folder written by `save_pipeline` (default: the bundled tiny model)."""
    missing = missing_files(path)
    if missing:
        raise FileNotFoundError(
            f"the saved VidRD pipeline at {path} lacks {missing[0]} (needs {list(REQUIRED)})"
        )
    root = Path(path)
    return VidRDPipeline(
        unet=VidRDUNet.from_pretrained(root / "unet").eval(),
        vae=TemporalVAE.from_pretrained(root / "vae").eval(),
        text_encoder=WordEncoder.from_pretrained(root / "text_encoder").eval(),
        scheduler=DDIMScheduler.from_pretrained(root / "scheduler", local_files_only=True),
    )


def save_pipeline(pipe: VidRDPipeline, path: str | os.PathLike) -> Path:
    """Write the four folders of `pipe` under `path` (safetensors)."""
    root = Path(path)
    pipe.unet.save_pretrained(root / "unet")
    pipe.vae.save_pretrained(root / "vae")
    pipe.text_encoder.save_pretrained(root / "text_encoder")
    pipe.scheduler.save_pretrained(root / "scheduler")
    return root
