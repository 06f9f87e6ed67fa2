"""The checks behind `foundry-tui doctor`: each one a function of a `Context` that returns
typed results (status, title, detail, fix), headless and testable in-process.

Everything that reaches outside the process goes through `Seams` (the resolver, the TLS
handshake, the Entra ID credential, the clocks, the disk, the local model's discovery), so
a test can stand in for the network, the CPU or the disk without touching them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from foundry_tui.backend.probe import TlsSession, default_credential, tls_handshake
from foundry_tui.config import AppConfig, ConfigError
from foundry_tui.core.models import Profile
from foundry_tui.local import discovery

__all__ = [
    "CheckResult",
    "Context",
    "LocalProbe",
    "Options",
    "Seams",
    "Status",
    "Timeouts",
    "fail",
    "in_thread",
    "passed",
    "warn",
]

T = TypeVar("T")


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: ``check`` is a stable id for scripts, ``title`` what a
    person reads; ``fix`` (WARN and FAIL) says what to do, on lines of its own."""

    check: str
    status: Status
    title: str
    detail: str
    fix: str = ""


def passed(check: str, title: str, detail: str) -> CheckResult:
    return CheckResult(check, Status.PASS, title, detail)


def warn(check: str, title: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(check, Status.WARN, title, detail, fix)


def fail(check: str, title: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(check, Status.FAIL, title, detail, fix)


@dataclass(frozen=True)
class Timeouts:
    """Seconds each check may take: doctor never hangs on a silent network."""

    dns: float = 5.0
    tls: float = 5.0
    token: float = 10.0
    deployment: float = 15.0
    database: float = 5.0


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


@dataclass(frozen=True)
class LocalProbe:
    """The local model's discovery (foundry_tui.local.discovery), as doctor asks it."""

    runtime_installed: Callable[[], bool] = discovery.runtime_installed
    runtime_version: Callable[[], str | None] = discovery.runtime_version
    bundled_model: Callable[[], Path | None] = discovery.bundled_model
    cpu_has_avx2: Callable[[], bool | None] = discovery.cpu_has_avx2
    libgomp_found: Callable[[], bool] = discovery.libgomp_found
    gguf_problem: Callable[[Path], str | None] = discovery.gguf_problem


@dataclass(frozen=True)
class Seams:
    """Where the checks meet the world; the defaults are the real thing."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    resolve: Callable[[str, int], list[str]] = _resolve
    tls_handshake: Callable[[str, int, float], TlsSession] = tls_handshake
    # Makes the azure.identity.aio credential used for the token and the request.
    credential: Callable[[], Any] = default_credential
    wall_clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    free_bytes: Callable[[Path], int] = _free_bytes
    writable: Callable[[Path], bool] = _writable
    local: LocalProbe = field(default_factory=LocalProbe)
    timeouts: Timeouts = field(default_factory=Timeouts)


@dataclass(frozen=True)
class Options:
    """What the user asked for: the same --config, --profile and --db as the TUI."""

    config: Path | None = None
    profile: str | None = None
    db: Path | None = None


@dataclass
class Context:
    """What the checks learn, in order, for the checks after them."""

    options: Options
    seams: Seams
    config: AppConfig | None = None
    # Loader errors about one input (--profile naming no profile, a --db path that
    # cannot be used), by the check that reports them.
    deferred: dict[str, ConfigError] = field(default_factory=dict)
    profile: Profile | None = None
    credential: Any = None  # made by the auth check for Entra ID, used by the deployment check

    async def aclose(self) -> None:
        credential, self.credential = self.credential, None
        if credential is not None:
            close: Callable[[], Awaitable[None]] | None = getattr(credential, "close", None)
            if close is not None:
                try:
                    async with asyncio.timeout(2.0):
                        await close()
                except Exception:  # closing is best effort: the report is what matters
                    return


async def in_thread(function: Callable[[], T], timeout: float) -> T:
    """``function()`` in a daemon thread, given up on after ``timeout`` seconds (TimeoutError).

    Not the loop's executor: a lookup that never returns would keep a worker thread the
    interpreter waits for at exit, and doctor would hang after all."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():  # given up on already
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def work() -> None:
        try:
            value: Any = function()
            error: BaseException | None = None
        except BaseException as exc:
            value, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return

    threading.Thread(target=work, name="doctor-check", daemon=True).start()
    async with asyncio.timeout(timeout):
        return await future
