"""When a create that failed before any reply is tried again, and what the status line says.

The SDK's own rules (connection errors, 408, 409, 429 and 5xx; ``x-should-retry`` obeyed),
applied by the backends themselves rather than inside the SDK, so the status line can say
so and count the wait down. Shared by the SDK client and the lean transport.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from foundry_tui.backend.errors import retry_after_seconds
from foundry_tui.core.models import BackendError, Retrying, Waiting

__all__ = [
    "MAX_RETRY_WAIT",
    "WAIT_NOTICE_SECONDS",
    "CreateAttempts",
    "retry_reason",
    "retry_wait",
]

_Answer = TypeVar("_Answer")

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


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Done-callback: a request abandoned (cancelled turn) logs no unretrieved error."""
    if not task.cancelled():
        task.exception()


class CreateAttempts(Generic[_Answer]):
    """A create request, tried again while the rules above allow, for either transport.

    Iterate ``events()`` (the `Waiting` and `Retrying` the status line shows); when it
    ends, ``answer`` holds the server's answer and ``announced`` says whether one of those
    events went out (the caller then yields `Answered`). ``judge`` reads a failure as
    (seconds to wait or None, the reason to show); ``refused`` explains the failure that
    ends the turn. Cancelling the iteration cancels the request in flight.
    """

    def __init__(
        self,
        send: Callable[[], Awaitable[_Answer]],
        *,
        failures: tuple[type[Exception], ...],
        judge: Callable[[Exception, int, int], tuple[float | None, str]],
        refused: Callable[[Exception], BackendError],
        attempts: int,
        notice_after: float,
    ) -> None:
        self._send = send
        self._failures = failures
        self._judge = judge
        self._refused = refused
        self._attempts = attempts
        self._notice_after = notice_after
        self._answer: _Answer | None = None
        self.announced = False

    @property
    def answer(self) -> _Answer:
        if self._answer is None:
            raise RuntimeError("no answer yet: iterate events() to its end first")
        return self._answer

    async def events(self) -> AsyncGenerator[Waiting | Retrying, None]:
        attempt = 1
        while True:
            request = asyncio.ensure_future(self._send())
            request.add_done_callback(_retrieved)
            failure: Exception | None = None
            try:
                answered, _ = await asyncio.wait({request}, timeout=self._notice_after)
                if not answered:
                    self.announced = True
                    yield Waiting(self._notice_after)
                self._answer = await request
            except self._failures as exc:
                failure = exc
            finally:
                request.cancel()  # a no-op once it is done; else the turn was cancelled
            if failure is None:
                return
            wait, reason = self._judge(failure, attempt, self._attempts)
            if wait is None:
                raise self._refused(failure) from failure
            attempt += 1
            self.announced = True
            yield Retrying(reason, wait, attempt, self._attempts)
            await asyncio.sleep(wait)
