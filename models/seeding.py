"""Deterministic construction: diffusers and torch initialise weights from the global RNG, so the kit
builds models inside `seeded(seed)`, which seeds it and restores the caller's state afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with the global RNG seeded, restoring its previous state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
