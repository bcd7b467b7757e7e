"""One thread-count setting for a block: torch's intra-op threads and the OpenMP/BLAS pools together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

from samplers.validation import check_int


@contextmanager
def limit_threads(threads: int = 1) -> Iterator[None]:
    """Run a block with `threads` torch, OpenMP and BLAS threads, restoring the previous counts afterwards.
    With one, float results do not depend on the machine's thread count (pooled sums keep their order)."""
    check_int("threads", threads, 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)
