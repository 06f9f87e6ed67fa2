"""Run a real program in a pseudo-terminal and read its screen with ``pyte``.

``PtyApp`` spawns the process with the pty's slave side as its controlling terminal and
stdin/stdout/stderr. Two threads of our own serve the master side:

* the *reader* only does ``os.read`` and stamps every chunk with ``time.monotonic()`` the
  moment it is read, so timestamps stay accurate even when the emulator falls behind;
* the *feeder* feeds the chunks to a ``pyte.Screen`` in order, keeps a cache of the text of
  every row, and evaluates the registered watchers after every chunk.

A watcher's result is the *read time of the chunk after which its predicate first held*:
when text "appears on screen" is therefore the moment the terminal received the bytes that
completed it, independent of how long our Python emulator then takes to parse them.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import fcntl
import os
import queue
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyte

Predicate = Callable[["ScreenText"], bool]


class ScreenText:
    """The rows of the emulated screen as plain strings (one per row, padded)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def contains(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def row_of(self, text: str) -> int | None:
        for y, line in enumerate(self.lines):
            if text in line:
                return y
        return None

    def bottom(self, n: int) -> list[str]:
        return self.lines[-n:]

    def __str__(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines)


@dataclass
class _Watcher:
    predicate: Predicate
    done: threading.Event = field(default_factory=threading.Event)
    time: float | None = None
    #: the app's CPU seconds when that chunk was read (only with ``PtyApp.sample_cpu``)
    cpu: float | None = None


class _Screen(pyte.Screen):
    """pyte's screen, minus the private-mode/DA noise Textual sends that pyte would echo."""

    def report_device_attributes(self, *args: object, **kwargs: object) -> None:
        return None

    def report_device_status(self, *args: object, **kwargs: object) -> None:
        return None


class PtyApp:
    """One process in a pty of ``cols`` x ``rows``; see the module docstring."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        cols: int = 120,
        rows: int = 40,
        cwd: str | None = None,
        keep_raw: bool = False,
    ) -> None:
        self.cols, self.rows = cols, rows
        #: every byte the program wrote, in order (only with ``keep_raw``)
        self.raw: bytearray | None = bytearray() if keep_raw else None
        self.screen = _Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines = [" " * cols for _ in range(rows)]
        self._lock = threading.Lock()
        self._watchers: list[_Watcher] = []
        self._chunks: queue.Queue[tuple[float, float | None, bytes] | None] = queue.Queue()
        #: read time of every chunk fed so far (one entry per os.read)
        self.update_times: list[float] = []
        self.bytes_read = 0
        self.fed_chunks = 0
        #: the longest time a chunk waited between being read and being parsed
        self.max_feed_lag = 0.0
        #: when True the reader also samples the app's CPU seconds with every chunk
        self.sample_cpu = False
        #: called by the feeder after every chunk: (read time, app CPU or None, screen)
        self.observers: list[Callable[[float, float | None, ScreenText], None]] = []
        self._closed = False

        master, slave = os.openpty()
        winsize = struct.pack("HHHH", rows, cols, 0, 0)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, winsize)
        fcntl.ioctl(master, termios.TIOCSWINSZ, winsize)
        self.master = master

        def make_controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.spawned_at = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=cwd,
                close_fds=True,
                preexec_fn=make_controlling_tty,  # the pty becomes its controlling tty
            )
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        os.close(slave)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read_loop, name="pty-reader", daemon=True)
        self._feeder = threading.Thread(target=self._feed_loop, name="pty-feeder", daemon=True)
        self._reader.start()
        self._feeder.start()

    # -- threads ------------------------------------------------------------------

    def _read_loop(self) -> None:
        fd = self.master
        try:
            while not self._closed:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    if self.proc.poll() is not None:
                        # drain whatever is left, then stop
                        with contextlib.suppress(OSError):
                            while select.select([fd], [], [], 0)[0]:
                                data = os.read(fd, 65536)
                                if not data:
                                    break
                                self._chunks.put((time.monotonic(), None, data))
                        break
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError as exc:
                    if exc.errno == errno.EIO:  # the slave side closed: the process is gone
                        break
                    raise
                if not data:
                    break
                t = time.monotonic()
                cpu = None
                if self.sample_cpu:
                    with contextlib.suppress(OSError, ValueError):
                        cpu = proc_cpu_seconds(self.pid)
                self._chunks.put((t, cpu, data))
        finally:
            self._chunks.put(None)

    def _feed_loop(self) -> None:
        while True:
            item = self._chunks.get()
            if item is None:
                return
            t, cpu, data = item
            if self.raw is not None:
                self.raw += data
            text = self._decoder.decode(data)
            with self._lock:
                self.stream.feed(text)
                buffer = self.screen.buffer
                cols = self.cols
                for y in self.screen.dirty:
                    if 0 <= y < self.rows:
                        row = buffer[y]
                        self._lines[y] = "".join(row[x].data for x in range(cols))
                self.screen.dirty.clear()
                self.update_times.append(t)
                self.bytes_read += len(data)
                self.fed_chunks += 1
                if self._watchers or self.observers:
                    snapshot = ScreenText(list(self._lines))
                    for observer in self.observers:
                        observer(t, cpu, snapshot)
                    for watcher in self._watchers:
                        if watcher.time is None and watcher.predicate(snapshot):
                            watcher.time = t
                            watcher.cpu = cpu
                            watcher.done.set()
                    self._watchers = [w for w in self._watchers if w.time is None]
                self.max_feed_lag = max(self.max_feed_lag, time.monotonic() - t)

    # -- API ------------------------------------------------------------------------

    def text(self) -> ScreenText:
        with self._lock:
            return ScreenText(list(self._lines))

    def watch(self, predicate: Predicate) -> _Watcher:
        """Starts watching now; if it already holds, the watcher is done at once."""
        watcher = _Watcher(predicate)
        with self._lock:
            if predicate(ScreenText(list(self._lines))):
                watcher.time = time.monotonic()
                watcher.done.set()
            else:
                self._watchers.append(watcher)
        return watcher

    def wait(self, watcher: _Watcher, timeout: float, what: str = "") -> float:
        """The read time of the chunk that made ``watcher`` hold; TimeoutError if not."""
        if not watcher.done.wait(timeout):
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)
            raise TimeoutError(
                f"timed out after {timeout:g} s waiting for {what or 'the screen'}; "
                f"screen:\n{self.text()}"
            )
        assert watcher.time is not None
        return watcher.time

    def wait_for(self, predicate: Predicate, timeout: float, what: str = "") -> float:
        return self.wait(self.watch(predicate), timeout, what)

    def wait_text(self, text: str, timeout: float) -> float:
        return self.wait_for(lambda s: s.contains(text), timeout, repr(text))

    def wait_idle(
        self, quiet: float, timeout: float, *, cpu_share: float = 0.15, strict: bool = True
    ) -> float:
        """Waits until the app printed nothing for ``quiet`` s *and* used at most
        ``cpu_share`` of a core meanwhile (a busy app prints nothing either: silence alone
        is not idleness). Returns the read time of the last output. On timeout: raises
        TimeoutError when ``strict``, else returns ``-1.0``."""
        deadline = time.monotonic() + timeout
        samples: list[tuple[float, float]] = []  # (time, app CPU seconds)
        tick = 1.0 / _CLK_TCK
        while True:
            now = time.monotonic()
            try:
                cpu = self.cpu_seconds()
            except (OSError, ValueError):  # the process is gone: nothing more will come
                cpu = samples[-1][1] if samples else 0.0
            samples.append((now, cpu))
            with self._lock:
                last = self.update_times[-1] if self.update_times else self.spawned_at
                pending = not self._chunks.empty()
            if not pending and now - last >= quiet:
                window = [c for t, c in samples if t >= now - quiet]
                if samples[0][0] <= now - quiet and window:
                    used = cpu - min(window)
                    if used <= cpu_share * quiet + 2 * tick:
                        return last
            if now >= deadline:
                if strict:
                    raise TimeoutError(
                        f"the app never went quiet (no output, little CPU) for {quiet:g} s "
                        f"in {timeout:g} s"
                    )
                return -1.0
            time.sleep(0.02)

    def send(self, data: bytes | str) -> float:
        """Writes keys to the terminal; returns the time just before the write."""
        raw = data.encode() if isinstance(data, str) else data
        t = time.monotonic()
        os.write(self.master, raw)
        return t

    def feeder_backlog(self) -> int:
        return self._chunks.qsize()

    # -- /proc -----------------------------------------------------------------------

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads) from /proc/PID/stat."""
        return proc_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return proc_rss_bytes(self.pid)

    # -- teardown --------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> int | None:
        """Asks the app to quit (ctrl+q), then terminates/kills it; closes the pty."""
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(OSError):
                    self.send(b"\x11")  # ctrl+q
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.terminate()
                    try:
                        self.proc.wait(timeout=3)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        self.proc.wait(timeout=3)
        finally:
            self._closed = True
            self._reader.join(timeout=2)
            with contextlib.suppress(OSError):
                os.close(self.master)
            self._feeder.join(timeout=5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=3)

    def __enter__(self) -> PtyApp:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            self.kill()


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read().decode()
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
