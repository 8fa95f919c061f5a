"""Reading a namespace with the cycle collector paused.

A list answer of thousands of objects becomes hundreds of thousands of dicts and lists
in one call; CPython's cycle collector counts every one of them and walks the young
(and, as they survive, the whole) heap over and over while they pile up, which costs
more than the decoding itself. None of them is in a cycle (JSON makes trees, and the
conversions to digests, workloads and pods make trees), so reference counting frees
them all; with the collector paused while a namespace is read, it runs once afterwards
on what the command keeps.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cycle collector in this block (nested blocks and a collector someone
    else disabled are left alone)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
