"""Saving and loading the kit's models the diffusers way, from local folders only (nothing downloaded)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from diffusers import ModelMixin


def json_native(config: dict[str, Any]) -> dict[str, Any]:
    """`config` as config.json gives it back (tuples become lists), so save/load round trips are exact."""
    return json.loads(json.dumps(dict(config)))


def public_config(model: Any) -> dict[str, Any]:
    """A diffusers model's config without diffusers' bookkeeping keys (`_class_name`, ...)."""
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


class LocalModelMixin(ModelMixin):
    """`from_pretrained` for a folder written by `save_pretrained`: safetensors, local files only."""

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any):
        if not Path(path).is_dir():
            raise FileNotFoundError(
                f"path must be a local folder written by {cls.__name__}.save_pretrained; got {str(path)!r} "
                "(the kit never downloads)"
            )
        kwargs.setdefault("local_files_only", True)
        kwargs.setdefault("use_safetensors", True)
        kwargs.setdefault("low_cpu_mem_usage", False)  # `accelerate` is not a dependency of the kit
        return super().from_pretrained(path, **kwargs)
