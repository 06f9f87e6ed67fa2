"""``tests.responses_server.ResponsesServer`` with a clock on its text deltas.

The server runs in the benchmark's own process (a background thread), so the times it
records and the times ``ptyterm`` stamps on terminal output come from one monotonic clock.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ptyterm import proc_cpu_seconds

from tests.responses_server import ResponsesServer, SchemaNotFoundError


@dataclass
class DeltaProbe:
    """What to record for the next streamed reply.

    ``indices``: delta indices (0 = first delta) whose send time is recorded (the time
    ``resp.write`` returned, i.e. the frame was handed to the socket). ``cpu_pid``: also
    sample that process's CPU seconds at those moments.
    """

    indices: set[int]
    cpu_pid: int | None = None
    sent: dict[int, float] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)
    total: int = 0
    finished: threading.Event = field(default_factory=threading.Event)
    on_delta: Callable[[int, float], None] | None = None


class _TimedResponse:
    """Stands in for the aiohttp response inside ``_write_deltas``: counts delta frames."""

    def __init__(self, resp: Any, probe: DeltaProbe, start: int) -> None:
        self._resp = resp
        self._probe = probe
        self._next = start

    async def write(self, data: bytes) -> None:
        await self._resp.write(data)
        i = self._next
        self._next += 1
        probe = self._probe
        probe.total = self._next
        if i in probe.indices:
            t = time.monotonic()
            probe.sent[i] = t
            if probe.cpu_pid is not None:
                with contextlib.suppress(OSError):
                    probe.cpu[i] = proc_cpu_seconds(probe.cpu_pid)
            if probe.on_delta is not None:
                probe.on_delta(i, t)


class TimedServer(ResponsesServer):
    """Set ``server.probe`` before a turn; the next stream's deltas are timed into it."""

    def __init__(self, **kwargs: Any) -> None:
        try:
            super().__init__(**kwargs)
        except SchemaNotFoundError:
            # The official schema (tests/schema, or FOUNDRY_TUI_RESPONSES_SCHEMA) is for the
            # tests; the benchmark can run without checking every payload against it.
            super().__init__(**{**kwargs, "validate": False})
        self.probe: DeltaProbe | None = None
        #: monotonic time each POST to /responses was read in full (its body received)
        self.creates_received: list[float] = []

    async def _create(self, request: Any) -> Any:
        # Called once the middleware has read and parsed the whole body.
        self.creates_received.append(time.monotonic())
        return await super()._create(request)

    async def _write_deltas(self, resp: Any, frame: Any, start: int, end: int, loop: Any) -> None:
        probe = self.probe
        if probe is None:
            await super()._write_deltas(resp, frame, start, end, loop)
            return
        timed = _TimedResponse(resp, probe, start)
        try:
            await super()._write_deltas(timed, frame, start, end, loop)
        finally:
            if end >= 0 and timed._next >= end:
                probe.finished.set()
