"""One content digest for the kit: sha256 over nested mappings, sequences, tensors and plain values, with
names, types and shapes fed in so that different structures never collide. Training checkpoints seal
their contents with it; the resume fingerprint identifies a model's weights with it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch


def content_digest(value: Any) -> str:
    """sha256 hex of `value`: tensors by dtype, shape and bytes (on the CPU), mappings in their order."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, Mapping):
        digest.update(f"mapping {len(value)};".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__} {len(value)};".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__} {value!r};".encode())
