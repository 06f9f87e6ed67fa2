"""An aiohttp server on an event loop of its own, in a daemon thread: the base of the test
servers (tests.responses_server, tests.gateway_server), which say how to start and stop
their app in `_astart` and `_astop` and set `port` once they listen."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import threading
from typing import Self


class ThreadedServer(abc.ABC):
    port: int | None = None
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def thread_name(self) -> str:
        return type(self).__name__

    @abc.abstractmethod
    async def _astart(self) -> None:
        """Starts listening (on the server's own loop) and sets ``port``."""

    @abc.abstractmethod
    async def _astop(self) -> None:
        """Stops listening and closes what `_astart` opened."""

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{self.thread_name} already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        if self.port is None:
            raise RuntimeError(f"{self.thread_name} did not start in time")
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._astop(), loop)
            with contextlib.suppress(Exception):
                future.result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
