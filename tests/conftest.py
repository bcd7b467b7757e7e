"""Shared fixtures; hypothesis runs derandomized so that CI is reproducible."""

import pytest
from diffusers import DDIMScheduler
from hypothesis import settings

settings.register_profile("kit", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("kit")


@pytest.fixture
def ddim() -> DDIMScheduler:
    """DDIM as in the paper; clip_sample off because the analytic prior's data are unit variance."""
    return DDIMScheduler(clip_sample=False)
