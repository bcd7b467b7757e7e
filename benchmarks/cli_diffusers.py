"""`vidrd generate --pipeline PATH`: a diffusers video pipeline saved with `save_pretrained`, made long.

The folder is read locally only (no download). Its `model_index.json` names the pipeline class, which
must be one LongVideoPipeline supports (models.families); that is checked before anything is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from models.families import DIFFUSERS_FAMILIES, supported_pipelines
from models.flow import load_flow, quiet_loading, read_defaults
from models.long_pipeline import LongVideoOutput, LongVideoPipeline
from models.video_io import FrameSink
from samplers import Clip, LongVideoSampler


def check_pipeline_folder(folder: Path) -> str:
    """The pipeline class named by `folder`/model_index.json; ValueError unless it is a supported one."""
    index = Path(folder) / "model_index.json"
    if not index.is_file():
        raise ValueError(f"pipeline must be the folder of a diffusers pipeline saved with save_pretrained "
                         f"(with model_index.json); got {str(folder)!r}")  # fmt: skip
    try:
        name = json.loads(index.read_text(encoding="utf-8"))["_class_name"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"pipeline's {index} is unreadable ({error!r})") from error
    if name not in supported_pipelines(DIFFUSERS_FAMILIES):
        supported = ", ".join(supported_pipelines(DIFFUSERS_FAMILIES))
        raise ValueError(f"pipeline {str(folder)!r} holds a {name}; supported: {supported}")
    return name


def load_long_pipeline(folder: Path) -> LongVideoPipeline:
    """The saved pipeline, loaded from local files only, wrapped in a LongVideoPipeline; a kit flow bundle
    (with generation defaults) loads through `load_flow`, every file checked against its manifest."""
    from diffusers import DiffusionPipeline

    if read_defaults(folder) is not None:
        return LongVideoPipeline.from_pipe(load_flow(folder))
    with quiet_loading():
        pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return LongVideoPipeline.from_pipe(pipe)


def sample_long(long: LongVideoPipeline, prompts: tuple[str, ...], sampler: LongVideoSampler, clips: int,
                size: dict[str, Any], seed: int, sink: FrameSink,
                on_clip: Callable[[Clip], None]) -> LongVideoOutput:  # fmt: skip
    """The long video into `sink`; `size` holds num_frames, height, width (None: the pipeline's default),
    num_inference_steps and guidance_scale."""
    given = {k: v for k, v in size.items() if v is not None}
    prompt = prompts[0] if len(prompts) == 1 else list(prompts)
    return long(prompt, sampler=sampler, num_clips=clips, generator=torch.Generator().manual_seed(seed),
                sink=sink, on_clip=on_clip, **given)  # fmt: skip
