"""When a create that failed before any reply is tried again, and what the status line says.

The SDK's own rules (connection errors, 408, 409, 429 and 5xx; ``x-should-retry`` obeyed),
applied by the backends themselves rather than inside the SDK, so the status line can say
so and count the wait down. Shared by the SDK client and the lean transport.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from foundry_tui.backend.errors import retry_after_seconds

__all__ = ["MAX_RETRY_WAIT", "WAIT_NOTICE_SECONDS", "retry_reason", "retry_wait"]

# A server that asks for a longer wait than this ends the turn with its message instead
# (Ctrl+R resends).
MAX_RETRY_WAIT = 60.0
# After this long without an answer (a gateway retrying a 429 by itself holds the request
# for a minute) the status line says how long the server is taking.
WAIT_NOTICE_SECONDS = 20.0


def retry_wait(
    status: int | None, headers: Mapping[str, str] | None, attempt: int, attempts: int
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None: do not retry.

    ``status`` None means no answer came (refused, reset, timed out). A wait the server
    asks for (under any ``*retry-after*`` name) is taken up to MAX_RETRY_WAIT, else
    exponential backoff from 0.5 s to 8 s with jitter."""
    if attempt >= attempts:
        return None
    if status is not None:
        answered = headers or {}
        should = answered.get("x-should-retry")
        if should == "false" or (
            should != "true" and status not in (408, 409, 429) and status < 500
        ):
            return None
        asked = retry_after_seconds(answered)
        if asked is not None:
            return asked if asked <= MAX_RETRY_WAIT else None
    return min(0.5 * 2.0 ** (attempt - 1), 8.0) * (1 - 0.25 * random.random())


def retry_reason(status: int | None, *, timed_out: bool = False) -> str:
    """What the status line says was wrong with the failed attempt."""
    if status is not None:
        if status == 429:
            return "rate limited"
        if status >= 500:
            return f"server error ({status})"
        return f"the server answered {status}"
    return "timed out" if timed_out else "could not connect"
