"""Shared fixtures; hypothesis runs derandomized so that CI is reproducible."""

import pytest
import torch
from diffusers import DDIMScheduler
from hypothesis import settings

settings.register_profile("kit", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("kit")

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP threads spinning at
# their barriers made model tests ~30x slower. Results do not depend on the thread count.
torch.set_num_threads(1)


@pytest.fixture
def ddim() -> DDIMScheduler:
    """DDIM as in the paper; clip_sample off because the analytic prior's data are unit variance."""
    return DDIMScheduler(clip_sample=False)
