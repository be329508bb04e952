"""How a worker's periodic background tasks stop (malloc trimming, the memory probe).

Why one helper: each such task stops the same way at shutdown — cancel it, then wait for it to unwind, so the
event loop does not close over a pending task ("Task was destroyed but it is pending") and a sample or trim in
progress finishes its own clean-up.
"""

from __future__ import annotations

import asyncio
import contextlib


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
