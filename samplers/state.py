"""What a long video needs to continue after a finished clip: the sampler's resumable state.

Between clips the sampler carries exactly three things forward: the generator's state, the previous
clip's initial noise zT[i] (FNR, FreeNoiseRescheduling, ... read it) and what the guidances recorded of it
(DSG, ...).
With those, and the frame index where the next clip starts, clip i + 1 onward come out with the same bits
as in an uninterrupted run. The strategies themselves hold no state across clips.

`SamplerState.to_dict()` holds tensors, ints and tuples only, so it round-trips through
`torch.save` / `torch.load(..., weights_only=True)`; `from_dict` checks what it reads and names the source
and the key of anything missing or malformed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from .protocols import Recording

_KEYS = ("next_clip", "generator_state", "previous_noise", "recording", "clip_starts")


@dataclass(frozen=True)
class SamplerState:
    """The state after clips 0 .. next_clip - 1 are finished."""

    next_clip: int  # index of the clip to sample next
    generator_state: torch.Tensor  # torch.Generator.get_state() after the last finished clip
    previous_noise: torch.Tensor  # zT[next_clip - 1], (B, C, N, H, W)
    recording: Recording | None  # what the guidances recorded of that clip
    clip_starts: tuple[int, ...]  # where each finished clip begins in the long video; then the next one

    def to_dict(self) -> dict[str, Any]:
        recording = None
        if self.recording is not None:
            r = self.recording
            recording = {"frames": list(r.frames), "latents": r.latents, "final": r.final}
        return {"next_clip": self.next_clip, "generator_state": self.generator_state,
                "previous_noise": self.previous_noise, "recording": recording,
                "clip_starts": list(self.clip_starts)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any, source: str) -> SamplerState:
        """A state from `to_dict()`'s output; ValueError naming `source` and the key if malformed."""
        if not isinstance(data, dict) or set(data) != set(_KEYS):
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{source}: a sampler state must hold exactly the keys {list(_KEYS)}; got {got}")
        for key in ("generator_state", "previous_noise"):
            if not isinstance(data[key], torch.Tensor):
                raise ValueError(f"{source}: sampler state key {key!r} must be a tensor")
        starts = data["clip_starts"]
        if not (isinstance(data["next_clip"], int) and data["next_clip"] >= 1 and isinstance(starts, list)
                and len(starts) == data["next_clip"] + 1):  # fmt: skip
            raise ValueError(f"{source}: sampler state keys 'next_clip' and 'clip_starts' disagree")
        return cls(data["next_clip"], data["generator_state"], data["previous_noise"],
                   _recording(data["recording"], source), tuple(starts))  # fmt: skip


def _recording(data: Any, source: str) -> Recording | None:
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) != {"frames", "latents", "final"}:
        raise ValueError(f"{source}: sampler state key 'recording' is malformed")
    return Recording(frames=tuple(data["frames"]), latents=data["latents"], final=data["final"])


@dataclass(frozen=True)
class Resume:
    """Where `LongVideoSampler.sample(resume=...)` continues: the state after the finished clips, and those
    clips (`Clip`s, in order, e.g. read lazily from disk) to stream out again before the new ones."""

    state: SamplerState
    clips: Iterable[Any]
