"""Shared fixtures; hypothesis runs derandomized so that CI is reproducible."""

from pathlib import Path

import pytest
import torch
from diffusers import DDIMScheduler
from hypothesis import settings

from models.bundled import save_pipeline
from models.tiny import tiny_pipeline

settings.register_profile("kit", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("kit")

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP threads spinning at
# their barriers made model tests ~30x slower. Results do not depend on the thread count.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> Path:
    """An untrained tiny VidRD saved as a bundle (tests that damage one copy it first)."""
    return save_pipeline(tiny_pipeline(seed=0), tmp_path_factory.mktemp("model") / "tiny-vidrd")


@pytest.fixture
def ddim() -> DDIMScheduler:
    """DDIM as in the paper; clip_sample off because the analytic prior's data are unit variance."""
    return DDIMScheduler(clip_sample=False)
