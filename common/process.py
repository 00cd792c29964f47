"""Process-wide tuning shared by the long-running commands."""

from __future__ import annotations

import gc


def tune_garbage_collector(threshold: int) -> None:
    """For a long-running process that allocates briskly (`edgewatch collector`, `edgewatch
    simulate`), after start.

    The collector keeps many long-lived objects (rule and predictive state of every device) and
    allocates briskly; at Python's default the cyclic collector ran about 2 000 times while
    200 000 queued messages drained and took 15 % of the processing thread. Collections every
    `threshold` allocations, with what exists after start-up frozen out of them (restored state
    is never garbage), cut that to about 1 %. Reference counting still frees everything else at
    once; only reference cycles wait longer. The simulator's in-flight messages (hundreds of
    thousands of objects while the broker is slow to acknowledge) would make its collections
    ever longer in the same way."""
    if threshold > 0:
        _, middle, oldest = gc.get_threshold()
        gc.set_threshold(threshold, middle, oldest)
    gc.freeze()
