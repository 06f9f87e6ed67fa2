"""Limits that end a stream the UI would otherwise wait on forever: one that brings bytes
but no text (keep-alive comments, events without text) for ``idle`` seconds, and one that
runs past ``total`` seconds in all.

One timer per stream does the watching, not a check per event: the reader only notes
when text came (a time it has read anyway) and whether it is waiting for the server. When
the timer finds a limit passed while the reader waits, it cancels that wait, as
``asyncio.timeout`` would; otherwise the reader sees the flag before its next read.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from foundry_tui.core.models import BackendError, ErrorKind

__all__ = ["StreamLimits", "next_within"]


class StreamLimits:
    """Watches one stream; create it inside the task that reads the stream."""

    def __init__(self, *, idle: float, total: float, base_url: str) -> None:
        self.idle = idle
        self.total = total
        self.base_url = base_url
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        start = self._loop.time()
        self._end = start + total
        #: Loop time of the latest text; the reader sets it.
        self.last_text = start
        #: True while the reader waits for the server; the reader sets it.
        self.reading = False
        #: Which limit ended the stream: "idle" or "total".
        self.expired: str | None = None
        self._cancelled = False
        first = min(start + idle, self._end)
        self._handle = self._loop.call_at(first, self._check) if math.isfinite(first) else None

    @classmethod
    def none(cls) -> StreamLimits:
        """No limits (no timer)."""
        return cls(idle=math.inf, total=math.inf, base_url="")

    def _check(self) -> None:
        now = self._loop.time()
        if now >= self._end:
            self.expired = "total"
        elif now >= self.last_text + self.idle:
            self.expired = "idle"
        else:
            self._handle = self._loop.call_at(
                min(self.last_text + self.idle, self._end), self._check
            )
            return
        if self.reading and self._task is not None:
            self._cancelled = True
            self._task.cancel()

    def took_over(self) -> bool:
        """After a CancelledError in a read: True when this timer caused it alone (then the
        read ends with `error()`); False when the task was cancelled by someone else too."""
        if not self._cancelled or self._task is None:
            return False
        self._cancelled = False
        return self._task.uncancel() == 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def error(self) -> BackendError:
        if self.expired == "total":
            return BackendError(
                ErrorKind.CONNECTION,
                "The reply took too long",
                f"The stream from {self.base_url} ran past {self.total:g} seconds "
                "(stream_total_seconds in the profile) and was stopped. "
                "The text received so far is kept.",
            )
        return BackendError(
            ErrorKind.CONNECTION,
            "The server stopped sending text",
            f"{self.base_url} kept the stream open but sent no text for {self.idle:g} "
            "seconds (stream_idle_seconds in the profile), so it was stopped. "
            "The text received so far is kept.",
        )


async def next_within(iterator: Any, limits: StreamLimits) -> Any:
    """The iterator's next item (StopAsyncIteration at its end), or the limits' error when
    one ran out before it came (their timer cancels the wait)."""
    if limits.expired:
        raise limits.error()
    limits.reading = True
    try:
        return await iterator.__anext__()
    except asyncio.CancelledError:
        if limits.took_over():
            raise limits.error() from None
        raise
    finally:
        limits.reading = False
