#!/usr/bin/env python
"""foundry-tui performance benchmark: the real app in a pseudo-terminal, read with pyte.

    python benchmarks/run.py                 # full run, a few minutes
    python benchmarks/run.py --quick         # smoke mode, well under a minute or two
    python benchmarks/run.py --only streaming,typing --json /tmp/r.json
    python benchmarks/run.py --strict        # exit 1 when a target is missed

Every figure is measured from outside the app: the installed ``foundry-tui`` runs in a pty
(``benchmarks/ptyterm.py``) with an isolated HOME, its own config file
(``FOUNDRY_TUI_CONFIG``) and ``--db`` in a temp dir; it talks to the local Responses API
server of ``tests/responses_server.py``, which runs in a thread of this process with a
clock on its text deltas (``benchmarks/timed_server.py``), so server send times and
terminal read times come from one monotonic clock. The ``attach`` group runs that server
in a process of its own instead (``ServerProcess``): reading a 27 MB request would hold
this process up while it stamps the terminal's output. Nothing talks to anything but
127.0.0.1.

The exit code is 0 when every figure was measured, even if targets are missed (``--strict``
makes a missed target exit 1); it is 1 when a measurement itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import dbgen  # noqa: E402
import textgen  # noqa: E402
from ptyterm import PtyApp, ScreenText  # noqa: E402
from timed_server import DeltaProbe, ServerProcess, TimedServer  # noqa: E402

from foundry_tui.store import Store  # noqa: E402
from tests.responses_server import default_reasoning  # noqa: E402

PLACEHOLDER = "Message (Enter to send"
GROUPS = (
    "cold_start",
    "first_token",
    "streaming",
    "reasoning",
    "typing",
    "long_conversation",
    "big_history",
    "local",
    "limits",
    "cli",
    "attach",
    "branches",
    "compare",
)
# The reasoning summary streamed before the answer in the `reasoning` group.
REASONING_TOKENS = 2000
KEY_SHIFT_TAB = "\x1b[Z"
KEY_PAGE_UP = "\x1b[5~"
KEY_HOME = "\x1b[H"
KEY_CTRL_O = "\x0f"
KEY_ESCAPE = "\x1b"
MB = 1024 * 1024


# ---------------------------------------------------------------------------
# Results


@dataclass
class Figure:
    key: str
    title: str
    target: float
    unit: str  # "s", "ms", "x", "% core", "MB"
    judge: str = "median"  # which statistic is compared with the target: median | max
    notes: str = ""
    samples: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: True when a sample is a lower bound (the thing never happened before a timeout)
    censored: bool = False

    def add(self, value: float) -> None:
        self.samples.append(float(value))

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def max(self) -> float | None:
        return max(self.samples) if self.samples else None

    @property
    def value(self) -> float | None:
        """The statistic compared with the target."""
        return self.median if self.judge == "median" else self.max

    @property
    def passed(self) -> bool | None:
        """None when nothing was measured. A censored figure (a lower bound) never passes:
        under the target it shows nothing, over it it fails for sure."""
        value = self.value
        if value is None or self.error is not None:
            return None
        return value <= self.target and not self.censored

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "target": self.target,
            "unit": self.unit,
            "judged_on": self.judge,
            "median": self.median,
            "max": self.max,
            "runs": len(self.samples),
            "samples": [round(s, 6) for s in self.samples],
            "pass": self.passed,
            "censored": self.censored,
            "notes": self.notes,
            "extra": self.extra,
            "error": self.error,
        }


# ---------------------------------------------------------------------------
# Settings per mode


@dataclass(frozen=True)
class Plan:
    quick: bool
    cold_runs: int
    baseline_runs: int
    first_token_turns: int
    stream_tokens: int
    stream_window: int
    stream_runs: int
    slow_seconds: float
    slow_runs: int
    typing_keys: int
    typing_runs: int
    conv_turns: int
    conv_runs: int
    page_ups: int
    big_conversations: int
    big_messages: int
    big_runs: int
    long_timeout: float  # for things that may take very long on a slow app
    patience: float  # longest the long-conversation load is waited for (then: censored)
    top_deadline: float  # longest Home is pressed to reach the first turn
    scroll_deadline: float  # longest a scroll phase may take before the stall is censored

    @classmethod
    def make(cls, quick: bool, patience: float | None = None) -> Plan:
        plan = cls._make(quick)
        if patience is not None:
            plan = dataclasses.replace(
                plan, patience=patience, long_timeout=max(plan.long_timeout, patience)
            )
        return plan

    @classmethod
    def _make(cls, quick: bool) -> Plan:
        if quick:
            return cls(
                quick=True,
                cold_runs=2,
                baseline_runs=1,
                first_token_turns=3,
                stream_tokens=3000,
                stream_window=1000,
                stream_runs=1,
                slow_seconds=3.0,
                slow_runs=1,
                typing_keys=8,
                typing_runs=1,
                conv_turns=20,
                conv_runs=1,
                page_ups=6,
                big_conversations=1000,
                big_messages=20000,
                big_runs=1,
                long_timeout=60.0,
                patience=60.0,
                top_deadline=15.0,
                scroll_deadline=10.0,
            )
        return cls(
            quick=False,
            cold_runs=5,
            baseline_runs=2,
            first_token_turns=8,
            stream_tokens=8000,
            stream_window=1000,
            stream_runs=3,
            slow_seconds=10.0,
            slow_runs=2,
            typing_keys=20,
            typing_runs=2,
            conv_turns=1000,
            conv_runs=2,
            page_ups=30,
            big_conversations=10_000,
            big_messages=200_000,
            big_runs=3,
            long_timeout=120.0,
            patience=100.0,
            top_deadline=25.0,
            scroll_deadline=12.0,
        )


# ---------------------------------------------------------------------------
# Launching the app


@dataclass
class Baseline:
    cols: int
    rows: int
    prompt_seconds: list[float]
    rss_bytes: list[int]

    @property
    def prompt_median(self) -> float:
        return statistics.median(self.prompt_seconds)

    @property
    def rss_median(self) -> float:
        return statistics.median(self.rss_bytes)


class Bench:
    """Shared state: the server, the temp dir, the plan, baselines of an empty app."""

    def __init__(self, plan: Plan, workdir: Path, server: TimedServer) -> None:
        self.plan = plan
        self.workdir = workdir
        self.server = server
        self.launches = 0
        self.executable = self._find_executable()
        self.empty_db = workdir / "empty-template.db"
        Store.open(self.empty_db).close()
        self.baselines: dict[tuple[int, int], Baseline] = {}
        #: the figures the running group has made so far (kept if the group fails later)
        self.group_figures: list[Figure] = []

    def figure(self, *args: Any, **kwargs: Any) -> Figure:
        fig = Figure(*args, **kwargs)
        self.group_figures.append(fig)
        return fig

    @staticmethod
    def _find_executable() -> str:
        beside = Path(sys.executable).parent / "foundry-tui"
        if beside.exists():
            return str(beside)
        found = shutil.which("foundry-tui")
        if found is None:
            raise SystemExit("foundry-tui is not installed (pip install -e '.[test]')")
        return found

    def reset_server(self, *, tps: float | None, first_delta_delay: float = 0.0) -> None:
        self.server.reset()
        self.server.probe = None
        self.server.tokens_per_second = tps
        self.server.first_delta_delay = first_delta_delay

    def fresh_db(self, name: str) -> Path:
        path = self.workdir / f"{name}-{self.launches + 1}.db"
        shutil.copyfile(self.empty_db, path)
        return path

    def launch(
        self,
        *,
        cols: int,
        rows: int,
        db: Path | None = None,
        args: tuple[str, ...] = (),
        endpoint: str | None = None,
    ) -> PtyApp:
        self.launches += 1
        run_dir = self.workdir / f"launch-{self.launches}"
        home = run_dir / "home"
        home.mkdir(parents=True)
        config = run_dir / "config.toml"
        config.write_text(
            "[profiles.local]\n"
            'kind = "compatible"\n'
            f'endpoint = "{endpoint or self.server.base_url}"\n'
            'auth = "none"\n'
            'deployments = ["gpt-4o"]\n',
            encoding="utf-8",
        )
        if db is None:
            db = self.fresh_db("empty")
        env = {
            "HOME": str(home),
            "PATH": os.pathsep.join([str(Path(self.executable).parent), "/usr/bin", "/bin"]),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "FOUNDRY_TUI_CONFIG": str(config),
            "NO_PROXY": "127.0.0.1,localhost",
        }
        argv = [self.executable, "--db", str(db), *args]
        return PtyApp(argv, env=env, cols=cols, rows=rows, cwd=str(run_dir))

    def baseline(self, cols: int, rows: int) -> Baseline:
        """An empty app at this size: median time to the prompt and settled RSS."""
        key = (cols, rows)
        if key not in self.baselines:
            base = Baseline(cols, rows, [], [])
            for _ in range(self.plan.baseline_runs):
                with running(self.launch(cols=cols, rows=rows)) as app:
                    t_prompt = wait_prompt(app)
                    base.prompt_seconds.append(t_prompt - app.spawned_at)
                    settle(app, since=t_prompt)
                    base.rss_bytes.append(app.rss_bytes())
            self.baselines[key] = base
        return self.baselines[key]


@contextlib.contextmanager
def running(app: PtyApp) -> Iterator[PtyApp]:
    try:
        yield app
    finally:
        try:
            app.close()
        finally:
            app.kill()


def wait_prompt(app: PtyApp, timeout: float = 30.0) -> float:
    return app.wait_for(lambda s: s.contains(PLACEHOLDER), timeout, "the prompt placeholder")


def settle(
    app: PtyApp, since: float | None = None, wait: float = 1.0, timeout: float = 60.0
) -> None:
    """Waits ``wait`` s from ``since`` (when the prompt showed: the app's post-frame warm-up
    has started by then), then until the app is idle: no output and next to no CPU for
    0.3 s (shorter than the prompt cursor's 0.5 s blink)."""
    sleep_until((time.monotonic() if since is None else since) + wait)
    app.wait_idle(0.3, timeout)


def wait_completed(app: PtyApp, timeout: float) -> float:
    return app.wait_for(
        lambda s: s.contains("● completed") and not s.contains("● pending"),
        timeout,
        "the reply to complete",
    )


def sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def max_gap(points: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(points)), default=0.0)


def updates_between(app: PtyApp, start: float, end: float) -> list[float]:
    return [t for t in list(app.update_times) if start < t <= end]


# ---------------------------------------------------------------------------
# Groups


def g_cold_start(bench: Bench) -> list[Figure]:
    plan = bench.plan
    prompt = bench.figure(
        "cold_start.prompt",
        "Cold start: prompt frame",
        0.5,
        "s",
        notes=(
            "spawn of the real process -> the pty output that completes the prompt "
            "placeholder on the emulated screen (120x40; empty history db, warm OS file "
            "cache). Whether openai was imported before that frame cannot be seen from "
            "outside the process and is not measured here."
        ),
    )
    keys = bench.figure(
        "cold_start.accepts_keys",
        "Cold start: prompt accepts a key",
        0.5,
        "s",
        notes=(
            "spawn -> a key typed as soon as the placeholder showed is echoed in the "
            "prompt row; extra.key_echo_ms is the key's own latency."
        ),
    )
    echo: list[float] = []
    rss: list[int] = []
    if not plan.quick:
        # One unrecorded launch, so every recorded run sees the same warm file cache.
        with running(bench.launch(cols=120, rows=40)) as app:
            prompt.extra["warm_up_launch_s"] = round(wait_prompt(app) - app.spawned_at, 3)
    for _ in range(plan.cold_runs):
        with running(bench.launch(cols=120, rows=40)) as app:
            t_prompt = wait_prompt(app)
            prompt.add(t_prompt - app.spawned_at)
            row = app.text().row_of(PLACEHOLDER)
            assert row is not None

            def echoed(s: ScreenText, row: int = row) -> bool:
                line = s.lines[row]
                return PLACEHOLDER not in line and "▊ Z " in line

            watcher = app.watch(echoed)
            t_sent = app.send("Z")
            t_echo = app.wait(watcher, 15, "the typed key in the prompt")
            keys.add(t_echo - app.spawned_at)
            echo.append((t_echo - t_sent) * 1000)
            settle(app, since=t_prompt)
            rss.append(app.rss_bytes())
    keys.extra["key_echo_ms"] = [round(v, 1) for v in echo]
    prompt.extra["settled_rss_mb"] = [round(v / MB, 1) for v in rss]
    bench.baselines.setdefault((120, 40), Baseline(120, 40, list(prompt.samples), list(rss)))
    return [prompt, keys]


def g_first_token(bench: Bench) -> list[Figure]:
    plan = bench.plan
    fig = bench.figure(
        "first_token.latency",
        "First token: delta sent -> on screen",
        20.0,
        "ms",
        notes=(
            "server writes the first text delta (a unique marker word) to the socket -> pty "
            "output completing it on screen. Includes loopback HTTP, SSE parsing in the "
            "openai SDK and the session layer, so it over-states 'client received -> "
            "shown'. The server waits 150 ms after response.created etc. before the first "
            "delta so those events are handled first. One app, one turn per sample."
        ),
    )
    bench.reset_server(tps=200.0, first_delta_delay=0.15)
    with running(bench.launch(cols=120, rows=40)) as app:
        wait_prompt(app)
        settle(app, wait=0.0)
        for turn in range(plan.first_token_turns):
            marker = f"FTOKMARK{turn:02d}"
            probe = DeltaProbe({0})
            bench.server.probe = probe
            bench.server.queue_reply(f"{marker} {textgen.prose(30, seed=turn)}")
            watcher = app.watch(lambda s, m=marker: s.contains(m))
            app.send(f"first token probe {turn}\r")
            t_screen = app.wait(watcher, 30, f"first-token marker {marker}")
            deadline = time.monotonic() + 5
            while 0 not in probe.sent and time.monotonic() < deadline:
                time.sleep(0.005)
            fig.add((t_screen - probe.sent[0]) * 1000)
            wait_completed(app, 30)
            app.wait_idle(0.3, 30)
        fig.extra["max_feed_lag_ms"] = round(app.max_feed_lag * 1000, 1)
    return [fig]


PROGRESS_RE = re.compile(r"Qm(\d{5})x")
EARLIER_RE = re.compile(r"(\d+) earlier messages?")


def _display_paced(
    timeline: list[tuple[int, float, float]], n_tokens: int, window: int
) -> dict[str, Any] | None:
    """App CPU per token for the first and the last ``window`` tokens, from the progress
    timeline: the CPU spent between two screen updates is the cost of the tokens the
    second one added, spread evenly over them."""
    if len(timeline) < 2 or timeline[-1][0] < n_tokens - 1:
        return None

    def cost(lo: int, hi: int) -> float:
        total = 0.0
        for (p0, _, c0), (p1, _, c1) in itertools.pairwise(timeline):
            overlap = min(hi, p1) - max(lo, p0)
            if overlap > 0:
                total += (c1 - c0) * overlap / (p1 - p0)
        return total

    first = cost(-1, window - 1)
    last = cost(n_tokens - 1 - window, n_tokens - 1)
    return {
        "first_cpu_s": first,
        "last_cpu_s": last,
        "first_tokens": window,
        "last_tokens": window,
        "screen_advances": len(timeline) - 1,
        "first_token_sent_to_last_shown_s": timeline[-1][1] - timeline[0][1],
        "tokens_per_advance": round(n_tokens / max(1, len(timeline) - 1)),
    }


def _stream_run(
    bench: Bench, *, n_tokens: int, window: int, seed: int, cols: int = 120, rows: int = 40
) -> dict[str, Any]:
    """One 2,000 tokens/s Markdown reply. Marker words at the first and last token, and a
    progress marker ``Qm<index>x`` about every 50 tokens, show how far the screen is."""
    tag = f"{seed:02d}"
    first_name, last_name = f"SFIRSTMARK{tag}", f"SLASTMARK{tag}"
    wanted = {0: first_name, n_tokens - 1: last_name}
    for i in range(50, n_tokens - 1, 50):
        wanted[i] = f"Qm{i:05d}x"
    reply = textgen.markdown_tokens(n_tokens, seed=seed)
    text, placed = textgen.with_markers(reply, wanted)
    i_first, i_last = placed[first_name], placed[last_name]
    assert i_first == 0 and i_last == n_tokens - 1, placed
    # the progress marker words carry their wanted index; map them to where they went
    where = {int(w[2:7]): i for w, i in placed.items() if w.startswith("Qm")}
    i_a = min(i for i in where.values() if i >= window - 1)
    i_b = min(i for i in where.values() if i >= n_tokens - window)
    out: dict[str, Any] = {}
    # The progress timeline: (newest token index on screen, read time, app CPU seconds),
    # one entry each time it advances. The newest text is at the bottom (the transcript
    # follows the stream), so the largest marker index on screen is how far it got.
    timeline: list[tuple[int, float, float]] = []

    def observe(t: float, cpu: float | None, screen: ScreenText) -> None:
        if cpu is None:
            return
        newest = -1
        for line in screen.lines:
            if "Qm" in line:
                for match in PROGRESS_RE.finditer(line):
                    newest = max(newest, where.get(int(match.group(1)), -1))
            if first_name in line:
                newest = max(newest, 0)
            if last_name in line:
                newest = max(newest, i_last)
        if newest >= 0 and (not timeline or newest > timeline[-1][0]):
            timeline.append((newest, t, cpu))

    with running(bench.launch(cols=cols, rows=rows)) as app:
        wait_prompt(app)
        settle(app, wait=0.0)
        app.sample_cpu = True
        app.observers.append(observe)
        probe = DeltaProbe({i_first, i_a, i_b, i_last}, cpu_pid=app.pid)
        w_last = app.watch(lambda s: s.contains(last_name))
        bench.server.probe = probe
        bench.server.queue_reply(text)
        own_cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        app.send("please stream a long markdown reply\r")
        t_last = app.wait(w_last, bench.plan.long_timeout, "the last token")
        own_cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        probe.finished.wait(5)
        out["last_latency_ms"] = (t_last - probe.sent[i_last]) * 1000
        out["stream_seconds"] = probe.sent[i_last] - probe.sent[i_first]
        cpu = probe.cpu
        out["send_paced"] = {
            "first_cpu_s": cpu[i_a] - cpu[i_first],
            "last_cpu_s": cpu[i_last] - cpu[i_b],
        }
        # Token 0's send is where the first window starts (progress -1: nothing shown).
        timeline.insert(0, (-1, probe.sent[i_first], cpu[i_first]))
        out["display_paced"] = _display_paced(timeline, n_tokens, window)
        out["app_cpu_total_s"] = app.cpu_seconds()
        out["bench_cpu_s"] = (own_cpu1.ru_utime + own_cpu1.ru_stime) - (
            own_cpu0.ru_utime + own_cpu0.ru_stime
        )
        out["max_feed_lag_ms"] = app.max_feed_lag * 1000
        wait_completed(app, bench.plan.long_timeout)
    return out


def g_streaming(bench: Bench) -> list[Figure]:
    plan = bench.plan
    n, window = plan.stream_tokens, plan.stream_window
    last = bench.figure(
        "streaming.last_token_latency",
        f"Streaming {n:,} tok @2000/s: last token sent -> on screen",
        100.0,
        "ms",
        notes=(
            "server writes the last delta (a unique marker) -> pty output showing it. "
            f"Markdown reply with headings, paragraphs, lists and code blocks; {n:,} tokens."
        ),
    )
    ratio = bench.figure(
        "streaming.cpu_ratio",
        f"Streaming: app CPU last {window:,} tok / first {window:,} tok",
        1.5,
        "x",
        notes=(
            "app utime+stime (/proc/PID/stat, 10 ms ticks) spent on the last "
            f"{window:,} tokens / on the first {window:,}, display-paced: progress markers "
            "about every 50 tokens give the newest token on screen at each pty chunk (CPU "
            "sampled as the chunk is read); the CPU between two screen advances is spread "
            "over the tokens the second one added; the first window starts when the server "
            "sent token 1. Not sampled at server send times alone, because an app that lags "
            "the stream is at 100% in any send-paced window (that ratio is in "
            "extra.send_paced)."
        ),
    )
    slow = bench.figure(
        "streaming.cpu_at_50tps",
        "Streaming @50 tok/s: app CPU use",
        10.0,
        "% core",
        notes=(
            f"app CPU seconds / wall seconds over {plan.slow_seconds:g} s of a 50 tokens/s "
            "Markdown stream (from 1 s in), sampled when the server sent those tokens."
        ),
    )
    bench.reset_server(tps=2000.0)
    runs = []
    for r in range(plan.stream_runs):
        run = _stream_run(bench, n_tokens=n, window=window, seed=10 + r)
        runs.append(run)
        last.add(run["last_latency_ms"])
        sp = run["send_paced"]
        dp = run["display_paced"]
        if dp is not None and dp["first_cpu_s"] > 0:
            per_first = dp["first_cpu_s"] / dp["first_tokens"]
            per_last = dp["last_cpu_s"] / dp["last_tokens"]
            ratio.add(per_last / per_first)
        elif sp["first_cpu_s"] > 0:
            ratio.add(sp["last_cpu_s"] / sp["first_cpu_s"])
            ratio.notes += " (a run fell back to the send-paced ratio: no progress markers seen)"
        else:
            raise RuntimeError(f"no CPU was used in the first window: {run}")
    last.extra["stream_seconds"] = [round(r["stream_seconds"], 3) for r in runs]
    last.extra["max_feed_lag_ms"] = [round(r["max_feed_lag_ms"], 1) for r in runs]
    last.extra["bench_process_cpu_s"] = [round(r["bench_cpu_s"], 2) for r in runs]
    last.extra["app_cpu_total_s"] = [round(r["app_cpu_total_s"], 2) for r in runs]
    ratio.extra["display_paced"] = [
        {k: round(v, 3) for k, v in r["display_paced"].items()} if r["display_paced"] else None
        for r in runs
    ]
    ratio.extra["send_paced"] = [
        {
            **{k: round(v, 3) for k, v in r["send_paced"].items()},
            "ratio": round(r["send_paced"]["last_cpu_s"] / r["send_paced"]["first_cpu_s"], 3)
            if r["send_paced"]["first_cpu_s"] > 0
            else None,
        }
        for r in runs
    ]

    bench.reset_server(tps=50.0)
    lags = []
    for r in range(plan.slow_runs):
        start_i = 50
        end_i = start_i + int(50 * plan.slow_seconds)
        n_slow = end_i + 100
        reply = textgen.markdown_tokens(n_slow, seed=40 + r)
        marker = f"SLOWMARK{r:02d}"
        text, placed = textgen.with_markers(reply, {end_i: marker})
        end_i = placed[marker]
        with running(bench.launch(cols=120, rows=40)) as app:
            wait_prompt(app)
            settle(app, wait=0.0)
            probe = DeltaProbe({start_i, end_i}, cpu_pid=app.pid)
            bench.server.probe = probe
            bench.server.queue_reply(text)
            watcher = app.watch(lambda s, m=marker: s.contains(m))
            app.send("please stream slowly\r")
            t_seen = app.wait(watcher, plan.slow_seconds + 30, "the slow-stream marker")
            deadline = time.monotonic() + 5
            while end_i not in probe.sent and time.monotonic() < deadline:
                time.sleep(0.01)
            cpu = probe.cpu[end_i] - probe.cpu[start_i]
            wall = probe.sent[end_i] - probe.sent[start_i]
            slow.add(100.0 * cpu / wall)
            lags.append(round((t_seen - probe.sent[end_i]) * 1000, 1))
            app.send(KEY_ESCAPE)  # cancel the rest of the reply
            app.wait_idle(0.3, 15)
    slow.extra["marker_latency_ms"] = lags
    return [last, ratio, slow]


def g_reasoning(bench: Bench) -> list[Figure]:
    """The streaming group's figures when a reasoning summary streams before the answer:
    the same reply and measures, behind REASONING_TOKENS of summary at the same rate."""
    plan = bench.plan
    n, window = plan.stream_tokens, plan.stream_window
    last = bench.figure(
        "reasoning.last_token_latency",
        f"Reasoning {REASONING_TOKENS:,} + answer {n:,} tok @2000/s: last token -> on screen",
        100.0,
        "ms",
        notes=(
            f"as streaming.last_token_latency, with a {REASONING_TOKENS:,}-token reasoning "
            "summary (4 parts) streamed at 2,000 tokens/s into the Thinking block before "
            "the answer (which folds it)."
        ),
    )
    ratio = bench.figure(
        "reasoning.cpu_ratio",
        f"Reasoning: app CPU last {window:,} tok / first {window:,} tok of the answer",
        1.5,
        "x",
        notes="as streaming.cpu_ratio, measured on the answer that follows the summary.",
    )
    server = bench.server
    bench.reset_server(tps=2000.0)
    tokens = textgen.markdown_tokens(REASONING_TOKENS, seed=77).tokens
    quarter = len(tokens) // 4
    parts = ["".join(tokens[i * quarter : (i + 1) * quarter]) for i in range(3)]
    parts.append("".join(tokens[3 * quarter :]))
    server.reasoning_models = {"gpt-4o"}
    server.default_summary = "auto"
    server.reasoning = lambda body: parts
    runs = []
    try:
        for r in range(plan.stream_runs):
            run = _stream_run(bench, n_tokens=n, window=window, seed=60 + r)
            runs.append(run)
            last.add(run["last_latency_ms"])
            dp = run["display_paced"]
            if dp is not None and dp["first_cpu_s"] > 0:
                ratio.add(
                    (dp["last_cpu_s"] / dp["last_tokens"])
                    / (dp["first_cpu_s"] / dp["first_tokens"])
                )
            else:
                raise RuntimeError(f"no display-paced CPU for the answer: {run}")
    finally:
        server.reasoning_models = set()
        server.default_summary = None
        server.reasoning = default_reasoning
    last.extra["app_cpu_total_s"] = [round(r["app_cpu_total_s"], 2) for r in runs]
    last.extra["max_feed_lag_ms"] = [round(r["max_feed_lag_ms"], 1) for r in runs]
    ratio.extra["display_paced"] = [
        {k: round(v, 3) for k, v in r["display_paced"].items()} if r["display_paced"] else None
        for r in runs
    ]
    return [last, ratio]


def g_typing(bench: Bench) -> list[Figure]:
    plan = bench.plan
    fig = bench.figure(
        "typing.key_latency",
        "Typing while streaming @2000 tok/s: key -> prompt",
        50.0,
        "ms",
        judge="max",
        notes=(
            f"{plan.typing_keys} single characters written to the pty every 100 ms while an "
            f"{plan.stream_tokens:,}-token reply streams at 2,000 tokens/s; each sample is "
            "write -> pty output showing the typed text so far in the prompt row. Judged "
            "on the max ('each key')."
        ),
    )
    typed_all = "Kbxjqvwpzmfgyhdcrslteaunoi"
    during_stream = []
    # The server in a process of its own (see ServerProcess): 2,000 frames a second
    # encoded and checked in this process took the GIL from the threads that type the keys
    # and stamp the terminal's output.
    with ServerProcess("--tps", "2000") as server:
        for r in range(plan.typing_runs):
            typed = typed_all[: plan.typing_keys]
            marker = f"TYPEMARK{r:02d}"
            reply = textgen.markdown_tokens(plan.stream_tokens, seed=60 + r)
            text, _ = textgen.with_markers(reply, {0: marker})
            server.reset()
            with running(bench.launch(cols=120, rows=40, endpoint=server.base_url)) as app:
                wait_prompt(app)
                settle(app, wait=0.0)
                server.queue_reply(text)
                first = app.watch(lambda s, m=marker: s.contains(m))
                app.send("please stream while I type\r")
                app.wait(first, 30, "the first token")
                start = time.monotonic()
                sends: list[float] = []
                watchers = []
                for k in range(len(typed)):
                    sleep_until(start + 0.1 * k)
                    wanted = "▊ " + typed[: k + 1]
                    watchers.append(
                        app.watch(lambda s, w=wanted: any(w in line for line in s.bottom(8)))
                    )
                    sends.append(app.send(typed[k]))
                during_stream.append(not server.answers_sent())
                deadline = time.monotonic() + plan.long_timeout
                for k, watcher in enumerate(watchers):
                    t = app.wait(watcher, max(0.1, deadline - time.monotonic()), f"key {k}")
                    fig.add((t - sends[k]) * 1000)
                app.send(KEY_ESCAPE)
                app.wait_idle(0.3, 30)
    fig.extra["stream_still_sending_at_last_key"] = during_stream
    return [fig]


def _scroll_phase(app: PtyApp, keys: list[float], deadline: float) -> tuple[float, float, bool]:
    """After keys were sent: (largest gap, end time, finished). When the app is still busy
    at ``deadline`` the gap still running counts, as a lower bound (finished=False)."""
    end = app.wait_idle(0.4, max(0.1, deadline - time.monotonic()), strict=False)
    finished = end >= 0
    if not finished:
        end = time.monotonic()
    points = [keys[0], *updates_between(app, keys[0], end)]
    if not finished:
        points.append(end)  # the gap still open at the deadline
    return max_gap(points), end, finished


def g_long_conversation(bench: Bench) -> list[Figure]:
    plan = bench.plan
    conv = dbgen.long_conversation_db(plan.conv_turns)
    base = bench.baseline(120, 40)
    visible = bench.figure(
        "long_conversation.latest_visible",
        f"{conv.turns:,}-turn conversation: app up -> latest turn on screen",
        0.3,
        "s",
        notes=(
            f"`foundry-tui --resume <id>` on a db with one {conv.turns:,}-turn conversation "
            f"({conv.words:,} words), 120x40: from the first frame with the prompt to the "
            "last words of the latest reply on screen, both in the same run (the time the "
            "conversation adds; start-up itself is the cold-start figure). "
            "extra.from_launch_s is spawn -> latest turn; extra.minus_cold_start_s subtracts "
            "the median cold start of an empty app at the same size. Runs after "
            "the first are skipped when it took over 20 s; a load still running after "
            f"{plan.patience:g} s (--patience) is recorded as that, censored (>=), and "
            "scrolling and RSS are then measured on the still-loading app."
        ),
    )
    stall = bench.figure(
        "long_conversation.scroll_stall",
        f"{conv.turns:,}-turn conversation: largest gap between screen updates scrolling",
        100.0,
        "ms",
        judge="max",
        notes=(
            f"transcript focused (shift+tab), then {plan.page_ups} PageUp keys at 30/s, "
            "then Home 10 times a second until the first prompt is on screen (older turns "
            f"may be mounted as the top is reached; at most {plan.top_deadline:g} s): the "
            "largest gap between pty output chunks from the first key of a phase to its end "
            "(a key with no visible reaction yet counts from when it was sent). One sample "
            "per run (the max of both phases); a phase still busy "
            f"{plan.scroll_deadline:g} s after its last key, or a first turn never reached, "
            "makes it a lower bound (censored)."
        ),
    )
    rss = bench.figure(
        "long_conversation.rss_increase",
        f"{conv.turns:,}-turn conversation: RSS increase vs empty app",
        150.0,
        "MB",
        judge="max",
        notes=(
            "VmRSS of the app after loading and the scrolling of the stall figure, minus "
            "the median settled VmRSS of an empty app (same terminal size, same settle "
            "rule). If the app mounts older turns only as they are scrolled to, this covers "
            "what was mounted by then: see that figure's extra (reached_first_turn, "
            "unmounted_earlier_messages_last_seen)."
        ),
    )
    visible.extra["build_seconds"] = round(conv.build_seconds, 1)
    visible.extra["baseline_cold_start_s"] = round(base.prompt_median, 3)
    minus: list[float] = []
    from_launch: list[float] = []
    phases: list[dict[str, Any]] = []
    for run_index in range(plan.conv_runs):
        db = bench.workdir / f"conversation-{bench.launches + 1}.db"
        shutil.copyfile(conv.path, db)
        app = bench.launch(cols=120, rows=40, db=db, args=("--resume", conv.conversation_id))
        with running(app):
            deadline = app.spawned_at + plan.patience
            phase: dict[str, Any] = {}
            prompt = app.watch(lambda s: s.contains(PLACEHOLDER))
            latest = app.watch(lambda s: s.contains(dbgen.LATEST_TURN_MARK))
            loaded = latest.done.wait(plan.patience)
            if loaded:
                assert latest.time is not None
                t_prompt = app.wait(prompt, plan.long_timeout, "the prompt placeholder")
                visible.add(latest.time - t_prompt)
                from_launch.append(latest.time - app.spawned_at)
                minus.append(latest.time - app.spawned_at - base.prompt_median)
                # settle, as far as the patience allows
                sleep_until(latest.time + 1.0)
                app.wait_idle(0.3, max(0.1, deadline - time.monotonic()), strict=False)
            else:
                # Still loading: what we know is a lower bound; keys now wait behind the load.
                visible.add(plan.patience)
                visible.censored = rss.censored = True
                phase["still_loading_after_s"] = plan.patience
            rss_loaded = app.rss_bytes()
            phase["rss_after_load_mb"] = round(rss_loaded / MB, 1)
            t_focus = app.send(KEY_SHIFT_TAB)  # prompt -> transcript
            idle = app.wait_idle(0.3, plan.scroll_deadline, strict=False)
            phase["focus_change_busy_s"] = (
                round(max(0.0, idle - t_focus), 3) if idle >= 0 else f">{plan.scroll_deadline:g}"
            )

            # How many older messages the app still holds back, when it says so on screen
            # ("↑ N earlier messages"): tells how far the scrolling below got.
            earlier: list[int] = []

            def count_earlier(
                t: float, cpu: float | None, screen: ScreenText, earlier: list[int] = earlier
            ) -> None:
                for line in screen.lines:
                    match = EARLIER_RE.search(line)
                    if match:
                        earlier.append(int(match.group(1)))

            app.observers.append(count_earlier)

            # Phase A: PageUp at 30 keys/s.
            start = time.monotonic() + 0.01
            keys = []
            for k in range(plan.page_ups):
                sleep_until(start + k / 30)
                keys.append(app.send(KEY_PAGE_UP))
            gap_a, _, done_a = _scroll_phase(app, keys, keys[0] + plan.scroll_deadline)
            phase.update(page_up_max_gap_ms=round(gap_a * 1000, 1), page_up_finished=done_a)
            gap = gap_a
            if done_a and loaded:
                if app.text().contains(dbgen.LATEST_TURN_MARK):
                    raise RuntimeError("PageUp did not scroll the transcript:\n" + str(app.text()))
                # Phase B: Home, 10 presses/s, until the first turn is on screen (a transcript
                # that mounts older turns as you reach its top needs many presses).
                top = app.watch(lambda s: s.contains(dbgen.FIRST_TURN_MARK))
                presses: list[float] = []
                stop_at = time.monotonic() + plan.top_deadline
                while not top.done.is_set() and time.monotonic() < stop_at:
                    presses.append(app.send(KEY_HOME))
                    top.done.wait(0.1)
                gap_b, _, done_b = _scroll_phase(app, presses, presses[-1] + plan.scroll_deadline)
                reached = top.time is not None
                phase.update(
                    home_presses=len(presses),
                    home_max_gap_ms=round(gap_b * 1000, 1),
                    home_finished=done_b,
                    reached_first_turn=reached,
                )
                if reached:
                    phase["home_to_first_turn_s"] = round(top.time - presses[0], 3)  # type: ignore[operator]
                stall.censored = stall.censored or not done_b or not reached
                gap = max(gap, gap_b)
            else:
                stall.censored = stall.censored or not done_a
            stall.add(1000 * gap)
            rss.add((app.rss_bytes() - base.rss_median) / MB)
            if earlier:  # the app's own "↑ N earlier messages" note, as last seen
                phase["unmounted_earlier_messages_last_seen"] = earlier[-1]
            phases.append(phase)
        if run_index == 0 and visible.samples[0] > 20:
            break
    visible.extra["minus_cold_start_s"] = [round(v, 3) for v in minus]
    visible.extra["from_launch_s"] = [round(v, 3) for v in from_launch]
    stall.extra["phases"] = phases
    rss.extra["empty_app_rss_mb"] = round(base.rss_median / MB, 1)
    return [visible, stall, rss]


def _first_entry(s: ScreenText, filter_row: int, width: int = 32) -> str:
    for line in s.lines[filter_row + 1 :]:
        text = line[:width].strip()
        if text:
            return text
    return ""


def g_big_history(bench: Bench) -> list[Figure]:
    plan = bench.plan
    big = dbgen.big_history_db(plan.big_conversations, plan.big_messages)
    cols, rows = 160, 45
    base = bench.baseline(cols, rows)
    shown = bench.figure(
        "big_history.list_visible",
        f"{big.conversations:,} conversations: app up -> history list on screen",
        0.2,
        "s",
        notes=(
            f"db of {big.conversations:,} conversations / {big.messages:,} messages "
            f"({big.words:,} words), {cols}x{rows} so the history panel shows: from the "
            "first frame with the prompt to the newest conversation's title in the list, "
            "both in the same run (the time the history adds; start-up itself is the "
            "cold-start figure); 0 when the list is in that first frame. "
            "extra.from_launch_s is spawn -> list; extra.minus_cold_start_s subtracts the "
            "median cold start of an empty app at the same size; "
            "extra.list_minus_prompt_frame_s is the unclamped difference."
        ),
    )
    search = bench.figure(
        "big_history.search_keystroke",
        f"{big.conversations:,} conversations: filter keystroke -> results",
        50.0,
        "ms",
        judge="max",
        notes=(
            f"'{dbgen.SEARCH_WORD}' typed letter by letter into the history filter "
            "(ctrl+o, shift+tab): each sample is key write -> pty output with the "
            "first list entry that prefix must bring to the top (planted words make every "
            "keystroke change it; extra.matching_rows: rows the store finds per prefix, up "
            "to 1,000; the list fetches about two screens of them, and more as it scrolls). "
            "Judged on the max ('per keystroke')."
        ),
    )
    rss = bench.figure(
        "big_history.rss",
        f"{big.conversations:,} conversations: app RSS",
        250.0,
        "MB",
        judge="max",
        notes="VmRSS after the list showed and after the search (the larger of the two).",
    )
    shown.extra["build_seconds"] = round(big.build_seconds, 1)
    shown.extra["baseline_cold_start_s"] = round(base.prompt_median, 3)
    with Store.open(big.path) as store:
        search.extra["matching_rows"] = {
            dbgen.SEARCH_WORD[:j]: len(store.list_conversations(search=dbgen.SEARCH_WORD[:j]))
            for j in range(1, len(dbgen.SEARCH_WORD) + 1)
        }
    minus: list[float] = []
    after_frame: list[float] = []
    from_launch: list[float] = []
    for _ in range(plan.big_runs):
        # Used in place (300 MB): the app only marks interrupted replies and optimizes.
        with running(bench.launch(cols=cols, rows=rows, db=big.path)) as app:
            # Both watched from the spawn: the prompt frame of this very run, not a baseline's.
            prompt = app.watch(lambda s: s.contains(PLACEHOLDER))
            newest = app.watch(lambda s: any(big.newest_tag in line[:34] for line in s.lines))
            t_list = app.wait(newest, plan.long_timeout, "the newest conversation")
            t_prompt = app.wait(prompt, plan.long_timeout, "the prompt placeholder")
            shown.add(max(0.0, t_list - t_prompt))
            from_launch.append(t_list - app.spawned_at)
            minus.append(t_list - app.spawned_at - base.prompt_median)
            after_frame.append(t_list - t_prompt)
            settle(app, since=t_prompt, timeout=plan.long_timeout)
            rss_list = app.rss_bytes()
            for key in (KEY_CTRL_O, KEY_SHIFT_TAB):  # to the list (shown), to its filter
                app.send(key)
                app.wait_idle(0.3, plan.long_timeout)
            filter_row = app.text().row_of("Filter (full text)")
            if filter_row is None:
                raise RuntimeError("no history filter on screen:\n" + str(app.text()))
            for j, letter in enumerate(dbgen.SEARCH_WORD):
                expected = big.search_tops[j]
                watcher = app.watch(
                    lambda s, e=expected, row=filter_row: _first_entry(s, row).startswith(e)
                )
                t_key = app.send(letter)
                t_hit = app.wait(
                    watcher,
                    plan.long_timeout,
                    f"{expected} first after typing {dbgen.SEARCH_WORD[: j + 1]!r}",
                )
                search.add((t_hit - t_key) * 1000)
                app.wait_idle(0.2, plan.long_timeout)
            rss.add(max(rss_list, app.rss_bytes()) / MB)
    shown.extra["minus_cold_start_s"] = [round(v, 3) for v in minus]
    shown.extra["list_minus_prompt_frame_s"] = [round(v, 3) for v in after_frame]
    shown.extra["from_launch_s"] = [round(v, 3) for v in from_launch]
    return [shown, search, rss]


def _cli_env(bench: Bench, name: str) -> dict[str, str]:
    """A user of the subcommands: own HOME, a keyless profile on the bench server."""
    run_dir = bench.workdir / name
    (run_dir / "home").mkdir(parents=True, exist_ok=True)
    config = run_dir / "config.toml"
    config.write_text(
        "[profiles.local]\n"
        'kind = "compatible"\n'
        f'endpoint = "{bench.server.base_url}"\n'
        'auth = "none"\n'
        'deployments = ["gpt-4o"]\n',
        encoding="utf-8",
    )
    return {
        "HOME": str(run_dir / "home"),
        "PATH": os.pathsep.join([str(Path(bench.executable).parent), "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "FOUNDRY_TUI_CONFIG": str(config),
        "NO_PROXY": "127.0.0.1,localhost",
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _first_byte(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Spawn -> first byte on stdout, spawn -> exit, and all of stdout."""
    import subprocess

    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # read(1) takes one byte, leaving the rest to communicate()
    )
    assert process.stdout is not None
    first = process.stdout.read(1)
    t_first = time.monotonic()
    rest, stderr = process.communicate(timeout=60)
    t_exit = time.monotonic()
    if process.returncode != 0 or not first:
        raise RuntimeError(f"{argv[1:3]} exited {process.returncode}: {stderr[-2000:]!r}")
    return t_first - started, t_exit - started, first + rest


def g_cli(bench: Bench) -> list[Figure]:
    import subprocess

    plan = bench.plan
    runs = 3 if plan.quick else 12
    first = bench.figure(
        "cli.ask_first_token",
        "ask: launch -> first token on stdout",
        0.25,
        "s",
        notes=(
            "spawn of `foundry-tui ask PROMPT` (a new conversation saved in a history db, "
            "keyless profile on the bench server, which sends the reply at once) -> the "
            "first byte of the reply read from its stdout pipe. One unrecorded run first "
            "(warm file cache); extra.exit_s is spawn -> exit."
        ),
    )
    env = _cli_env(bench, "cli-ask")
    db = bench.fresh_db("cli-ask")
    bench.reset_server(tps=None)
    argv = [bench.executable, "ask", "--db", str(db), "what is the first token time?"]
    _first_byte(argv, env)
    exits: list[float] = []
    for t_first, t_exit, out in _measured_runs(first, argv, env, runs):
        if not out.startswith(b"You said: "):
            raise RuntimeError(f"unexpected reply {out[:200]!r}")
        first.add(t_first)
        exits.append(t_exit)
    first.extra["exit_s"] = [round(v, 3) for v in exits]
    floor = []
    for _ in range(3):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        floor.append(time.monotonic() - started)
    first.extra["bare_python_s"] = [round(v, 3) for v in floor]

    big = dbgen.big_history_db(plan.big_conversations, plan.big_messages)
    listing = bench.figure(
        "cli.history_json",
        f"history --json over {big.conversations:,} conversations",
        0.3,
        "s",
        notes=(
            f"spawn of `foundry-tui history --json` (the newest 20, each with its turn "
            f"count) on the db of {big.conversations:,} conversations / {big.messages:,} "
            "messages -> exit, its JSON read in full (as the history list's figure: what "
            "the list shows of a big history). extra.every_conversation_s: the same with "
            "--limit 0, all of them."
        ),
    )
    env = _cli_env(bench, "cli-history")
    newest = [bench.executable, "history", "--json", "--db", str(big.path)]
    every = [*newest, "--limit", "0"]
    _first_byte(newest, env)
    whole: list[float] = []
    for _t_first, t_exit, out in _measured_runs(listing, newest, env, runs):
        rows = json.loads(out)
        if len(rows) != 20 or not rows[0]["title"].startswith(big.newest_tag):
            raise RuntimeError(f"history --json listed {len(rows)} rows, newest {rows[:1]}")
        listing.add(t_exit)
    for _ in range(3):
        _t_first, t_exit, out = _first_byte(every, env)
        if len(json.loads(out)) != big.conversations:
            raise RuntimeError("history --json --limit 0 did not list every conversation")
        whole.append(t_exit)
    listing.extra["every_conversation_s"] = [round(v, 3) for v in whole]
    return [first, listing]


def _measured_runs(
    figure: Figure, argv: list[str], env: dict[str, str], runs: int
) -> Iterator[tuple[float, float, bytes]]:
    """``runs`` spawns of ``argv``: (first byte, exit, stdout) each. The CPU seconds of each
    whole process (to its exit), what a loaded machine does not change, go to the figure's
    extra.process_cpu_s."""
    cpu: list[float] = []
    figure.extra["process_cpu_s"] = cpu
    for _ in range(runs):
        before = _children_cpu()
        measured = _first_byte(argv, env)
        cpu.append(round(_children_cpu() - before, 3))
        yield measured


# The local model's figures (benchmarks/local_model.py) with their numeric targets.
LOCAL_TARGETS = {
    "local: app overhead on the decode rate": ("local.app_overhead", 5.0, "%"),
    "local: first token, short prompt": ("local.first_token", 0.4, "s"),
    "local: first token, follow-up after ~500-token history": ("local.follow_up", 0.3, "s"),
}


def g_local(bench: Bench) -> list[Figure]:
    """The bundled local model through the app's own backend (needs the `local` extra)."""
    import local_model  # benchmarks/ is this script's directory, first on sys.path

    figures = []
    info = {}
    for row in local_model.run(bench.plan.quick):
        target = LOCAL_TARGETS.get(row["figure"])
        if target is None:
            info[row["figure"]] = {"median": row["median"], "unit": row["unit"]}
            continue
        key, limit, unit = target
        figure = Figure(key=key, title=row["figure"], target=limit, unit=unit, notes=row["notes"])
        figure.samples = list(row["samples"])
        figures.append(figure)
    if figures:
        figures[0].extra["also_measured"] = info
    return figures


# ---------------------------------------------------------------------------
# Limits: hostile sizes must not freeze the UI


def _write_all(app: PtyApp, data: bytes) -> float:
    """Writes ``data`` to the terminal in full (a pty takes a large write in pieces);
    returns the time the write started."""
    started = time.monotonic()
    view = memoryview(data)
    while view:
        written = os.write(app.master, view[:65536])
        view = view[written:]
    return started


def _echo_stalls(
    app: PtyApp, keys: int, *, after: str = "\u258a ", interval: float = 0.1
) -> list[float]:
    """Types ``keys`` letters, one every ``interval`` s, each echoed after ``after`` in the
    prompt; returns each key's write -> on-screen time in ms. A frozen UI shows up as one
    large sample (every key typed during the freeze waits for it)."""
    letters = "qwertyuiopasdfghjklzxcvbnm" * (keys // 26 + 1)
    start = time.monotonic()
    sends: list[float] = []
    watchers = []
    for k in range(keys):
        sleep_until(start + interval * k)
        wanted = after + letters[: k + 1]
        watchers.append(app.watch(lambda s, w=wanted: any(w in line for line in s.bottom(10))))
        sends.append(app.send(letters[k]))
    deadline = time.monotonic() + 120
    latencies = []
    for k, watcher in enumerate(watchers):
        t = app.wait(watcher, max(0.1, deadline - time.monotonic()), f"typed key {k}")
        latencies.append((t - sends[k]) * 1000)
    return latencies


def g_limits(bench: Bench) -> list[Figure]:
    plan = bench.plan
    huge_mb = 10 if plan.quick else 50
    huge = bench.figure(
        "limits.huge_reply_stall",
        f"{huge_mb} MB reply in one delta: largest key -> echo",
        500.0,
        "ms",
        judge="max",
        notes=(
            f"the server sends a {huge_mb} MB reply as one text delta; from the moment the "
            "prompt is sent, a key is typed every 100 ms for 6 s; each sample is that "
            "key's write -> echo in the prompt. Judged on the max: the longest freeze."
        ),
    )
    reopen = bench.figure(
        "limits.huge_reply_reopen_stall",
        f"Reopening the {huge_mb} MB reply: largest key -> echo",
        500.0,
        "ms",
        judge="max",
        notes="--resume of that conversation; keys typed every 100 ms for 3 s from the prompt frame.",
    )
    models = bench.figure(
        "limits.models_100k_stall",
        "/models with 100,000 entries: largest key -> echo at start-up",
        500.0,
        "ms",
        judge="max",
        notes=(
            "the endpoint lists 100,000 models; keys typed every 100 ms for 4 s from the "
            "prompt frame, while the list is fetched and the sidebar filled."
        ),
    )
    paste_shown = bench.figure(
        "limits.paste_5mb_shown",
        "5 MB bracketed paste: write -> its end shown in the prompt",
        0.5,
        "s",
        judge="max",
        notes="5 MB of log lines written to the terminal as one bracketed paste.",
    )
    paste_stall = bench.figure(
        "limits.paste_5mb_send_stall",
        "5 MB paste sent: largest key -> echo",
        500.0,
        "ms",
        judge="max",
        notes=(
            "after the paste, Enter sends it; once the prompt is empty again (the time "
            "that took is in extra), keys are typed every 100 ms for 4 s; each sample is "
            "the key's write -> echo in the prompt."
        ),
    )
    runs = 1 if plan.quick else 2

    # Each part's server runs in a process of its own (see ServerProcess): encoding and
    # checking a 50 MB reply, 100,000 models or a 5 MB request in this process held its
    # GIL for hundreds of ms, and the threads that type the keys and stamp the terminal's
    # output waited (keys were written up to 250 ms late, and their echoes seen late).

    # A huge reply, then its reopening.
    word = "x" * 999 + " "
    huge_text = word * (huge_mb * 1024 * 1024 // len(word)) + "HUGEEND"
    with ServerProcess("--tokens-per-delta", str(10**9)) as server:
        for _ in range(runs):
            db = bench.fresh_db("huge")
            server.reset()
            server.queue_reply(huge_text)
            launched = bench.launch(cols=120, rows=40, db=db, endpoint=server.base_url)
            with running(launched) as app:
                wait_prompt(app)
                settle(app, wait=0.0)
                app.send("send me something huge\r")
                app.wait_text("send me something huge", 30)  # the turn has started
                for value in _echo_stalls(app, 60):
                    huge.add(value)
                app.wait_for(
                    lambda s: s.contains("● ") and not s.contains("● pending"),
                    plan.long_timeout,
                    "the huge reply to end",
                )
                huge.extra.setdefault("rss_mb", []).append(round(app.rss_bytes() / MB, 1))
            store = Store.open(db)
            try:
                conversation = store.list_conversations(limit=1)[0].id
            finally:
                store.close()
            with running(
                bench.launch(
                    cols=120,
                    rows=40,
                    db=db,
                    args=("--resume", conversation),
                    endpoint=server.base_url,
                )
            ) as app:
                wait_prompt(app)
                for value in _echo_stalls(app, 30):
                    reopen.add(value)
                reopen.extra.setdefault("rss_mb", []).append(round(app.rss_bytes() / MB, 1))

    # A model list of 100,000 entries.
    listing = bench.workdir / "models-100k.json"
    listing.write_text(json.dumps([f"model-{i:06d}" for i in range(100_000)]), encoding="utf-8")
    with ServerProcess("--models-file", str(listing)) as server:
        for _ in range(runs):
            with running(bench.launch(cols=160, rows=40, endpoint=server.base_url)) as app:
                wait_prompt(app)
                for value in _echo_stalls(app, 40):
                    models.add(value)
                models.extra.setdefault("rss_mb", []).append(round(app.rss_bytes() / MB, 1))

    # A 5 MB paste, then sending it.
    line = "2026-12-06T02:41:07Z INFO worker[17] request handled in 12 ms path=/v1/responses\n"
    body = line * (5 * 1024 * 1024 // len(line)) + "PASTEEND"
    with ServerProcess() as server:
        for _ in range(runs):
            server.reset()
            server.queue_reply("Got it: PASTEREPLY")
            with running(bench.launch(cols=120, rows=40, endpoint=server.base_url)) as app:
                wait_prompt(app)
                settle(app, wait=0.0)
                # A paste this big is shown folded to one marker line ([pasted N lines, ...]).
                shown = app.watch(
                    lambda s: any("PASTEEND" in row or "[pasted " in row for row in s.bottom(10))
                )
                started = _write_all(app, b"\x1b[200~" + body.encode() + b"\x1b[201~")
                paste_shown.add(
                    app.wait(shown, plan.long_timeout, "the end of the paste") - started
                )
                sent = app.send("\r")
                emptied = app.wait_for(
                    lambda s: s.contains(PLACEHOLDER), plan.long_timeout, "the prompt to empty"
                )
                paste_stall.extra.setdefault("enter_to_prompt_emptied_s", []).append(
                    round(emptied - sent, 3)
                )
                for value in _echo_stalls(app, 40):
                    paste_stall.add(value)
                app.wait_for(
                    lambda s: s.contains("PASTEREPLY"), plan.long_timeout, "the reply to the paste"
                )
    return [huge, reopen, models, paste_shown, paste_stall]


def _timed_send(
    bench: Bench, server: ServerProcess, app: PtyApp, prompt: str, reply_mark: str
) -> tuple[float, float]:
    """Types ``prompt`` and Enter; returns (Enter written, the server had the request's
    whole body) on the one clock, waiting for the reply to show."""
    before = len(server.creates_read())
    app.send(prompt)
    app.wait_text(prompt, 30)
    sent = app.send("\r")
    app.wait_for(lambda s: s.contains(reply_mark), bench.plan.long_timeout, "the reply")
    return sent, server.creates_read()[before]


def g_attach(bench: Bench) -> list[Figure]:
    plan = bench.plan
    added = bench.figure(
        "attach.image_20mb_added",
        "20 MB image attached: time added to the send",
        0.3,
        "s",
        judge="median",
        notes=(
            "Enter -> the server has read the whole request, with a 20 MB PNG attached "
            "(pasted as a path, shown as a chip) minus the same without it, in the same app "
            "(turn 1 warms the client up, turn 2 plain, turn 3 with the image)."
        ),
    )
    frozen = bench.figure(
        "attach.image_20mb_stall",
        "20 MB image sent: largest key -> echo",
        50.0,
        "ms",
        judge="max",
        notes=(
            "from Enter on the prompt with the image, a key is typed every 50 ms for 3 s; "
            "each sample is that key's write -> echo in the prompt (hashing, keeping, "
            "encoding and sending the image all happen meanwhile)."
        ),
    )
    image = bench.workdir / "photo.png"
    size = 20 * 1000 * 1000
    with image.open("wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n")
        file.write(os.urandom(size - 8))
    runs = 1 if plan.quick else 3
    # The server reads, parses and checks a 27 MB body: in a process of its own, so that
    # this one's terminal reader is not held up by it (see ServerProcess).
    with ServerProcess() as server:
        for _ in range(runs):
            server.reset()
            server.queue_reply("WARMREPLY")
            server.queue_reply("PLAINREPLY")
            server.queue_reply("IMAGEREPLY")
            launched = bench.launch(cols=120, rows=40, endpoint=server.base_url)
            with running(launched) as app:
                wait_prompt(app)
                settle(app, wait=0.0)
                # The first send of a session builds the client: not what is measured here.
                _timed_send(bench, server, app, "warm up", "WARMREPLY")
                app.send("plain turn")
                app.wait_text("plain turn", 30)
                plain_sent = app.send("\r")
                plain_stalls = _echo_stalls(app, 60, interval=0.05)
                app.wait_for(lambda s: s.contains("PLAINREPLY"), plan.long_timeout, "the reply")
                plain_received = server.creates_read()[1]
                frozen.extra.setdefault("plain_send_max_ms", []).append(round(max(plain_stalls), 1))
                _write_all(app, b"\x1b[200~" + str(image).encode() + b"\x1b[201~")
                app.wait_for(
                    lambda s: any("20.0 MB" in row for row in s.bottom(12)), 30, "the image chip"
                )
                app.send("look at this")
                app.wait_text("look at this", 30)
                sent = app.send("\r")
                stalls = _echo_stalls(app, 60, interval=0.05)
                for value in stalls:
                    frozen.add(value)
                frozen.extra.setdefault("image_send_max_ms", []).append(round(max(stalls), 1))
                app.wait_for(
                    lambda s: s.contains("IMAGEREPLY"), plan.long_timeout, "the reply to the image"
                )
                received = server.creates_read()[2]
                added.add((received - sent) - (plain_received - plain_sent))
                added.extra.setdefault("plain_send_s", []).append(
                    round(plain_received - plain_sent, 3)
                )
                added.extra.setdefault("image_send_s", []).append(round(received - sent, 3))
    return [added, frozen]


def g_branches(bench: Bench) -> list[Figure]:
    import branches  # benchmarks/branches.py

    figures: list[Figure] = branches.run(bench)
    return figures


def g_compare(bench: Bench) -> list[Figure]:
    """Three Compare columns streaming at once while keys are typed (compare.py)."""
    from compare import g_compare as measure_compare

    return measure_compare(bench)


GROUP_FUNCS: dict[str, Callable[[Bench], list[Figure]]] = {
    "cold_start": g_cold_start,
    "first_token": g_first_token,
    "streaming": g_streaming,
    "reasoning": g_reasoning,
    "typing": g_typing,
    "long_conversation": g_long_conversation,
    "big_history": g_big_history,
    "local": g_local,
    "limits": g_limits,
    "cli": g_cli,
    "attach": g_attach,
    "branches": g_branches,
    "compare": g_compare,
}

# The figures each group reports, so a failed group still lists them (with its error).
GROUP_FIGURES: dict[str, list[tuple[str, str, float, str, str]]] = {
    "cold_start": [
        ("cold_start.prompt", "Cold start: prompt frame", 0.5, "s", "median"),
        ("cold_start.accepts_keys", "Cold start: prompt accepts a key", 0.5, "s", "median"),
    ],
    "first_token": [
        ("first_token.latency", "First token: delta sent -> on screen", 20.0, "ms", "median"),
    ],
    "streaming": [
        ("streaming.last_token_latency", "Streaming: last token latency", 100.0, "ms", "median"),
        ("streaming.cpu_ratio", "Streaming: CPU last/first window", 1.5, "x", "median"),
        ("streaming.cpu_at_50tps", "Streaming @50 tok/s: CPU", 10.0, "% core", "median"),
    ],
    "reasoning": [
        ("reasoning.last_token_latency", "Reasoning: last token latency", 100.0, "ms", "median"),
        ("reasoning.cpu_ratio", "Reasoning: CPU last/first window", 1.5, "x", "median"),
    ],
    "typing": [
        ("typing.key_latency", "Typing while streaming", 50.0, "ms", "max"),
    ],
    "long_conversation": [
        ("long_conversation.latest_visible", "Long conversation: latest turn", 0.3, "s", "median"),
        ("long_conversation.scroll_stall", "Long conversation: scroll stall", 100.0, "ms", "max"),
        ("long_conversation.rss_increase", "Long conversation: RSS increase", 150.0, "MB", "max"),
    ],
    "local": [
        ("local.app_overhead", "local: app overhead on the decode rate", 5.0, "%", "median"),
        ("local.first_token", "local: first token, short prompt", 0.4, "s", "median"),
        ("local.follow_up", "local: first token, follow-up after 500 tokens", 0.3, "s", "median"),
    ],
    "big_history": [
        ("big_history.list_visible", "Big history: list on screen", 0.2, "s", "median"),
        ("big_history.search_keystroke", "Big history: search keystroke", 50.0, "ms", "max"),
        ("big_history.rss", "Big history: RSS", 250.0, "MB", "max"),
    ],
    "limits": [
        ("limits.huge_reply_stall", "Huge reply: largest key -> echo", 500.0, "ms", "max"),
        ("limits.huge_reply_reopen_stall", "Huge reply reopened: stall", 500.0, "ms", "max"),
        ("limits.models_100k_stall", "100,000 models: stall", 500.0, "ms", "max"),
        ("limits.paste_5mb_shown", "5 MB paste: shown", 0.5, "s", "max"),
        ("limits.paste_5mb_send_stall", "5 MB paste sent: stall", 500.0, "ms", "max"),
    ],
    "cli": [
        ("cli.ask_first_token", "ask: launch -> first token on stdout", 0.25, "s", "median"),
        ("cli.history_json", "history --json over 10,000 conversations", 0.3, "s", "median"),
    ],
    "attach": [
        ("attach.image_20mb_added", "20 MB image: time added to the send", 0.3, "s", "median"),
        ("attach.image_20mb_stall", "20 MB image sent: stall", 50.0, "ms", "max"),
    ],
    "branches": [
        ("branches.open", "Branched 1,000 turns: latest turn", 0.3, "s", "median"),
        ("branches.switch", "Branched 1,000 turns: branch switch", 50.0, "ms", "max"),
    ],
    "compare": [
        ("compare.key_latency", "Compare, 3 streams: key latency", 50.0, "ms", "max"),
        ("compare.last_token_latency", "Compare, 3 streams: last token", 100.0, "ms", "max"),
    ],
}


# ---------------------------------------------------------------------------
# Output


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "% core":
        return f"{value:.1f}%"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:g}"


def table(figures: list[Figure]) -> str:
    header = ("figure", "target", "median", "max", "runs", "result")
    rows = []
    for fig in figures:
        target = f"<= {_fmt(fig.target, fig.unit)} ({fig.judge})"
        result = "ERROR" if fig.error else {True: "pass", False: "FAIL", None: "-"}[fig.passed]
        prefix = ">= " if fig.censored else ""
        rows.append(
            (
                fig.title,
                target,
                prefix + _fmt(fig.median, fig.unit),
                prefix + _fmt(fig.max, fig.unit),
                str(len(fig.samples)),
                result,
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def notes_text(figures: list[Figure]) -> str:
    out = []
    for fig in figures:
        out.append(f"- {fig.key}: {fig.notes}")
        if fig.extra:
            out.append(f"    extra: {json.dumps(fig.extra, sort_keys=True)}")
        if fig.error:
            out.append(f"    ERROR: {fig.error}")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Main


def _parse_groups(value: str | None) -> list[str]:
    if not value:
        return list(GROUPS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode (~30-60 s)")
    parser.add_argument(
        "--json", type=Path, default=HERE / "results.json", help="where to write the results"
    )
    parser.add_argument(
        "--only", metavar="NAME[,NAME]", help=f"run only these groups: {', '.join(GROUPS)}"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--patience",
        type=float,
        metavar="SECONDS",
        help="how long to wait for the long conversation to load before recording a lower "
        "bound (default: 100 s, quick: 60 s)",
    )
    args = parser.parse_args(argv)
    groups = _parse_groups(args.only)
    plan = Plan.make(args.quick, args.patience)

    # Timestamps from the reader and server threads matter more than pyte's throughput.
    sys.setswitchinterval(0.001)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)

    started = time.monotonic()
    load_start = list(os.getloadavg())
    figures: list[Figure] = []
    failed_groups: list[str] = []
    server = TimedServer(tokens_per_second=None)
    workdir = Path(tempfile.mkdtemp(prefix="foundry-tui-bench-"))
    try:
        server.start()
        bench = Bench(plan, workdir, server)
        for name in groups:
            t0 = time.monotonic()
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            bench.group_figures = []
            try:
                got = GROUP_FUNCS[name](bench)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                print(traceback.format_exc(), file=sys.stderr)
                failed_groups.append(name)
                got = list(bench.group_figures)
                for fig in got:  # what was measured before the failure stays
                    if fig.samples:
                        fig.extra["group_error"] = detail[:2000]
                    else:
                        fig.error = detail[:4000]
                made = {fig.key for fig in got}
                got += [
                    Figure(key, title, target, unit, judge=judge, error=detail[:4000])
                    for key, title, target, unit, judge in GROUP_FIGURES[name]
                    if key not in made
                ]
            print(f"[{name}] {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
            figures += got
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.monotonic() - started
    print(table(figures))
    print()
    print(notes_text(figures))
    print(
        f"\n{'quick' if plan.quick else 'full'} run: {elapsed:.1f} s; load average "
        f"{load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end on {os.cpu_count()} CPUs "
        "(other processes on the machine skew every figure)"
    )
    result = {
        "meta": {
            "mode": "quick" if plan.quick else "full",
            "groups": groups,
            "failed_groups": failed_groups,
            "duration_s": round(elapsed, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": list(os.getloadavg()),
            "executable": bench.executable if "bench" in locals() else None,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "figures": {fig.key: fig.as_json() for fig in figures},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {args.json}")

    measured = not failed_groups and all(fig.error is None and fig.samples for fig in figures)
    if not measured:
        return 1
    if args.strict and not all(fig.passed for fig in figures):
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as interrupt:
        print(f"interrupted ({interrupt}); the app and the server were stopped", file=sys.stderr)
        sys.exit(130)
