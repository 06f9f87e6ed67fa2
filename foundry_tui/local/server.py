"""Starts and stops llama.cpp's HTTP server (the `serve` child process) from asyncio.

The server listens on 127.0.0.1 at a port the OS picks and answers only requests that carry
`LocalServer.api_key`, a random token made here and handed to the child on its stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

__all__ = ["LocalServer", "ServerOptions", "ServerStartError"]

_SERVE_SCRIPT = Path(__file__).with_name("serve.py")
_LOG_TAIL = 2000
# After llama.cpp says it is ready: how long, and how often, to try its listener. It
# returns as soon as the listener accepts; 5 s was once not enough on a loaded 2-core CI
# run (the first request was refused and retried).
LISTEN_WAIT_SECONDS = 30.0
LISTEN_POLL_SECONDS = 0.02
# How long one probe waits for the server's status line.
LISTEN_ANSWER_SECONDS = 2.0


@dataclass(frozen=True)
class ServerOptions:
    model: Path
    alias: str
    n_ctx: int = 4096
    cache_ram_mib: int = 128  # llama.cpp keeps earlier prompts here to switch back fast
    threads: int | None = None  # generating; None: llama.cpp's choice (the physical cores)
    threads_batch: int | None = None  # reading the prompt; None: as `threads`
    startup_timeout: float = 180.0
    stop_timeout: float = 10.0


class ServerStartError(Exception):
    """The child did not come up. `kind`: import, load, config, crashed, timeout."""

    def __init__(
        self, kind: str, detail: str, *, returncode: int | None = None, log: str = ""
    ) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.returncode = returncode
        self.log = log

    @property
    def killed_by_sigill(self) -> bool:
        return self.returncode == -signal.SIGILL


class LocalServer:
    """One llama.cpp server process. `start` once, `stop` any number of times."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.api_key = secrets.token_urlsafe(32)
        self.address: str | None = None
        self.pid: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``http://127.0.0.1:PORT/v1``)."""
        if self.address is None:
            raise RuntimeError("the local server is not running")
        return f"{self.address}/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, on_wait: Callable[[float], None] | None = None) -> str:
        """Starts the child and waits until the model is loaded; returns its address.

        `on_wait(seconds_so_far)` is called about twice a second while the model loads.
        Raises ServerStartError; the child is gone by then.
        """
        if self._process is not None:
            raise RuntimeError("the local server was already started")
        self._log = tempfile.TemporaryFile(prefix="foundry-tui-llama-")  # noqa: SIM115 (closed in stop)
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # isolated: only the standard library and site-packages
            str(_SERVE_SCRIPT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,  # the terminal's Ctrl+C/Ctrl+Z are the app's, not its
            # Leave OMP_WAIT_POLICY alone: PASSIVE halves the decode rate on 2 cores
            # (38 vs 80 tokens/s) and ACTIVE keeps a core busy while idle.
        )
        try:
            return await self._handshake(on_wait)
        except BaseException:
            await self.stop()
            raise

    async def _handshake(self, on_wait: Callable[[float], None] | None) -> str:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        options = self.options
        config = {
            "model": str(options.model),
            "alias": options.alias,
            "api_key": self.api_key,
            "n_ctx": options.n_ctx,
            "cache_ram_mib": options.cache_ram_mib,
            "threads": options.threads,
            "threads_batch": options.threads_batch,
        }
        process.stdin.write((json.dumps(config) + "\n").encode())
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await process.stdin.drain()
        started = time.monotonic()
        reader = asyncio.ensure_future(process.stdout.readline())
        try:
            while True:
                done, _ = await asyncio.wait({reader}, timeout=0.5)
                if done:
                    break
                elapsed = time.monotonic() - started
                if elapsed > options.startup_timeout:
                    raise ServerStartError(
                        "timeout",
                        f"the model did not load within {options.startup_timeout:g} s",
                        log=self.log_tail(),
                    )
                if on_wait is not None:
                    on_wait(elapsed)
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        line = reader.result()
        event = _parse(line)
        if event.get("event") == "ready" and isinstance(event.get("address"), str):
            self.address = str(event["address"])
            self.pid = process.pid
            await _listening(self.address, LISTEN_WAIT_SECONDS)
            return self.address
        returncode = await process.wait()
        if event.get("event") == "error":
            raise ServerStartError(
                str(event.get("kind") or "load"),
                str(event.get("detail") or "no details"),
                returncode=returncode,
                log=self.log_tail(),
            )
        raise ServerStartError(
            "crashed",
            f"the llama.cpp process ended with status {returncode}",
            returncode=returncode,
            log=self.log_tail(),
        )

    def log_tail(self) -> str:
        """The end of what llama.cpp wrote to stderr (for error details)."""
        log = self._log
        if log is None or log.closed:
            return ""
        try:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - _LOG_TAIL))
            return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    async def stop(self) -> None:
        """Asks the child to stop (it joins llama.cpp's threads), kills it if it hangs."""
        process = self._process
        if process is not None and process.returncode is None and self.address is None:
            # Still loading (or stuck): there is nothing to shut down politely.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if process is not None and process.returncode is None:
            stdin = process.stdin
            if stdin is not None and not stdin.is_closing():
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
                    stdin.write(b"stop\n")
                    await stdin.drain()
                stdin.close()
            try:
                await asyncio.wait_for(process.wait(), self.options.stop_timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        elif process is not None and process.stdin is not None:
            process.stdin.close()
        self.address = None
        log, self._log = self._log, None
        if log is not None:
            log.close()


def _parse(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line.decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def _listening(address: str, seconds: float) -> None:
    """Returns once ``address`` accepts a connection, or after ``seconds``. llama.cpp says
    it is ready when its server is made, a moment before its listener accepts: on a busy
    machine the first request was refused and the first turn showed a retry."""
    parts = urlsplit(address)
    host, port = parts.hostname or "127.0.0.1", parts.port
    if port is None:
        return
    deadline = time.monotonic() + seconds
    while True:
        if await _answers_http(host, port):
            return
        if time.monotonic() >= deadline:
            return  # the first request then says what is wrong
        await asyncio.sleep(LISTEN_POLL_SECONDS)


async def _answers_http(host: str, port: int) -> bool:
    """Whether the server answers an HTTP request with a status line (any status: the
    request carries no key). Accepting a connection was not enough: on a loaded machine
    the first request after that was still reset, and the first turn showed a retry."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), LISTEN_ANSWER_SECONDS)
        return line.startswith(b"HTTP/")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
