"""Settling the heap once a process has started, so sending is not slowed by the collector.

A worker loads modules, SQLAlchemy's tables, compiled templates and Babel's
locale data once, and keeps them for its life. Python's cyclic collector
would keep scanning those hundreds of thousands of objects in its oldest
generation while the dispatcher allocates; ``gc.freeze()`` moves everything
alive at start-up out of its sight. Measured on the outbound benchmark
(N=2000, SQLite): collections took about 150 ms without, 45 ms with
(0.05 ms a message).
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap() -> None:
    """Collect once, then freeze what is alive: call when start-up is done."""
    gc.collect()
    gc.freeze()
