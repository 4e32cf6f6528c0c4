"""Torch thread count for small models, restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Small recurrent or cumulative-sum steps run fastest on one thread; two OpenMP threads on
    a busy 2-core machine spin-wait and ran 20-40x slower here. Process-wide while active."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
