"""Resumable generation: after each finished clip, what the next one needs is on disk.

    <folder>/clip_00000.pt ...   each finished clip: its kept latents and its initial noise
    <folder>/state.pt            the sampler's state after the last of them, with the run's fingerprint

A clip's file is complete before the state that counts it is written, and each file is written in one
rename, so a run killed at any point leaves a folder that continues exactly where it stopped. The
fingerprint (the parameters and the model) is compared on resume: another one is refused with the keys
that differ. Everything is read with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from samplers import Clip
from samplers.state import Resume, SamplerState

from .files import atomic_path, remove
from .loading import load_weights_only

STATE = "state.pt"


class ResumeError(ValueError):
    """A resume folder that cannot be continued: damaged, or written with other parameters."""


class ClipStore:
    """The resume folder of one run, identified by `fingerprint` (a JSON-able dict)."""

    def __init__(self, folder: str | os.PathLike, fingerprint: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.fingerprint = json.loads(json.dumps(fingerprint))  # as it will read back

    @property
    def afresh(self) -> str:
        return f"delete {self.folder}, or run without resuming, to start afresh"

    def clip_path(self, index: int) -> Path:
        return self.folder / f"clip_{index:05d}.pt"

    def save_clip(self, clip: Clip) -> None:
        with atomic_path(self.clip_path(clip.index)) as tmp:
            torch.save({"index": clip.index, "start": clip.start, "latents": clip.latents.cpu(),
                        "initial_noise": clip.initial_noise.cpu()}, tmp)  # fmt: skip

    def save_state(self, state: SamplerState) -> None:
        fingerprint = json.dumps(self.fingerprint, sort_keys=True)
        data = {"fingerprint": fingerprint, "sampler": _to(state.to_dict(), "cpu")}
        with atomic_path(self.folder / STATE) as tmp:
            torch.save(data, tmp)

    def load(self, device: torch.device | str = "cpu") -> Resume | None:
        """The point to resume from, or None when the folder holds no state (nothing finished yet)."""
        path = self.folder / STATE
        if not path.is_file():
            return None
        data = _read(path)
        if not isinstance(data, dict) or set(data) != {"fingerprint", "sampler"}:
            raise ResumeError(f"{path} is not a resume state of the kit; {self.afresh}")
        self._check_fingerprint(path, json.loads(data["fingerprint"]))
        state = SamplerState.from_dict(_to(data["sampler"], device), str(path))
        return Resume(state=state, clips=self._clips(state, device))

    def clear(self) -> None:
        """Remove this store's own files (state.pt, clip_*.pt, and the hidden temporaries of theirs that a
        killed write leaves, models.files.temporary_sibling), then the folder if that left it empty: a
        folder that holds anything else (a caller's mistake) keeps it."""
        if not self.folder.is_dir():
            return
        temporaries = [*self.folder.glob(f".{STATE}.*"), *self.folder.glob(".clip_[0-9]*.pt.*")]
        for path in [self.folder / STATE, *self.folder.glob("clip_[0-9]*.pt"), *temporaries]:
            remove(path)
        if not any(self.folder.iterdir()):
            self.folder.rmdir()

    def _check_fingerprint(self, path: Path, saved: dict[str, Any]) -> None:
        keys = sorted(set(saved) | set(self.fingerprint))
        differ = [k for k in keys if saved.get(k) != self.fingerprint.get(k)]
        if differ:
            shown = "; ".join(f"{k}: {saved.get(k)!r} then, {self.fingerprint.get(k)!r} now" for k in differ)
            raise ResumeError(
                f"cannot resume from {path}: it was written with other parameters or another model "
                f"({shown}); run with the same ones, or without resuming to start afresh"
            )

    def _clips(self, state: SamplerState, device) -> Iterator[Clip]:
        """The finished clips, read one at a time (memory stays that of one clip)."""
        for index in range(state.next_clip):
            path = self.clip_path(index)
            data = _read(path)
            if not isinstance(data, dict) or data.get("index") != index or \
                    data.get("start") != state.clip_starts[index]:  # fmt: skip
                raise ResumeError(f"{path} is not clip {index} of this run; {self.afresh}")
            yield Clip(index=index, start=data["start"], latents=data["latents"].to(device),
                       initial_noise=data["initial_noise"].to(device))  # fmt: skip


def _read(path: Path) -> Any:
    return load_weights_only(path, ResumeError, "resume file", f"delete {path.parent} to start afresh")


def _to(value: Any, device) -> Any:
    """`value` with every tensor moved to `device` (dicts and lists walked)."""
    if isinstance(value, torch.Tensor):
        return value.to(device) if value.dtype != torch.uint8 else value.cpu()  # generator states stay
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    return value
