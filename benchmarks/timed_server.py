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


class ServerProcess:
    """``tests.responses_server`` in a process of its own, steered through its control
    endpoint. For groups whose requests are heavy to read: a 27 MB body parsed and checked
    in this process held its GIL for 50-75 ms at a time, and the thread stamping the
    terminal's output waited for it, so the app's echo looked that much later than it was.
    ``creates_read`` and ``answers_sent`` come from the same system-wide monotonic clock
    as those stamps."""

    def __init__(self, *options: str) -> None:
        """``options``: more of the server's command line (``--tps``, ``--deployments``)."""
        import subprocess
        import sys
        from pathlib import Path

        root = Path(__file__).resolve().parents[1]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.responses_server", "--port", "0", *options],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"the server process did not start: {line!r}")
        self.base_url = line.split(" ", 1)[1]

    def _control(self, action: str, **body: Any) -> dict[str, Any]:
        import json
        import urllib.request

        request = urllib.request.Request(
            f"{self.base_url.rstrip('/').removesuffix('/v1')}/_control/{action}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as answer:
            result: dict[str, Any] = json.load(answer)
        return result

    def reset(self) -> None:
        self._control("reset")

    def queue_reply(self, text: str) -> None:
        self._control("reply", text=text)

    def replies_by_model(self, by_model: dict[str, str]) -> None:
        self._control("replies", by_model=by_model)

    def creates_read(self) -> list[float]:
        return [float(t) for t in self._control("received")["creates_read"]]

    def answers_sent(self) -> dict[str, float]:
        """Each model's last streamed answer: when its last delta had been written."""
        return {str(m): float(t) for m, t in self._control("received")["answers_sent"]}

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except Exception:
            self._process.kill()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
