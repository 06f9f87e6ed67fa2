"""The `compare` group of benchmarks/run.py: three columns streaming at 2,000 tokens/s each.

The real app in a pty (ptyterm), three deployments of one profile, one Compare of a
prompt to all three. While they stream, single characters are typed into the compare
screen's next-prompt box every 100 ms (Ctrl+L focuses it): each sample is the write ->
the pty output showing the text typed so far. Each column's reply ends on a marker word;
the server's clock on its last delta (sent) and the pty's on the screen showing it
(seen) give each column's last-token lag.

The server streams the three replies at once, each on its own schedule, in a process of
its own (timed_server.ServerProcess): 6,000 frames a second encoded and checked in this
process would hold its GIL, and the thread stamping the terminal's output would wait for
it. The server reports when each model's last delta was written, on the same clock.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import textgen
from ptyterm import PtyApp
from timed_server import ServerProcess

DEPLOYMENTS = ("gpt-4o", "gpt-4o-mini", "o4-mini")
PLACEHOLDER = "Message (Enter to send"
KEY_F8 = "\x1b[19~"
KEY_DOWN = "\x1b[B"
KEY_CTRL_S = "\x13"
KEY_CTRL_L = "\x0c"
KEY_ESCAPE = "\x1b"
TYPED = "Kbxjqvwpzmfgyhdcrslteaunoi"
TOKENS_PER_SECOND = 2000.0


def _launch(bench: Any, server: ServerProcess, cols: int, rows: int) -> PtyApp:
    """The app with one profile of three deployments (run.py's launch has one)."""
    bench.launches += 1
    run_dir = Path(bench.workdir) / f"launch-{bench.launches}"
    home = run_dir / "home"
    home.mkdir(parents=True)
    config = run_dir / "config.toml"
    listed = ", ".join(f'"{name}"' for name in DEPLOYMENTS)
    config.write_text(
        "[profiles.local]\n"
        'kind = "compatible"\n'
        f'endpoint = "{server.base_url}"\n'
        'auth = "none"\n'
        f"deployments = [{listed}]\n"
        "\n[ui]\nsidebar = false\n",
        encoding="utf-8",
    )
    env = {
        "HOME": str(home),
        "PATH": os.pathsep.join([str(Path(bench.executable).parent), "/usr/bin", "/bin"]),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "FOUNDRY_TUI_CONFIG": str(config),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    argv = [bench.executable, "--db", str(bench.fresh_db("compare"))]
    return PtyApp(argv, env=env, cols=cols, rows=rows, cwd=str(run_dir))


def _run(bench: Any, server: ServerProcess, run: int, n_tokens: int, keys: int) -> dict[str, Any]:
    lasts = {f"C{c}L{run:02d}MK": c for c in range(3)}
    texts: dict[str, str] = {}
    for column, model in enumerate(DEPLOYMENTS):
        reply = textgen.markdown_tokens(n_tokens, seed=90 + 3 * run + column)
        wanted = {n_tokens - 1: f"C{column}L{run:02d}MK"}
        texts[model], placed = textgen.with_markers(reply, wanted)
        assert placed[wanted[n_tokens - 1]] == n_tokens - 1, placed
    server.reset()
    server.replies_by_model(texts)
    out: dict[str, Any] = {"key_ms": [], "lag_ms": {}}
    app = _launch(bench, server, cols=150, rows=40)
    try:
        t_prompt = app.wait_for(lambda s: s.contains(PLACEHOLDER), 30, "the prompt")
        time.sleep(max(0.0, t_prompt + 1.0 - time.monotonic()))
        app.wait_idle(0.3, 60)
        app.send("compare these three")
        app.wait_text("compare these three", 10)
        app.send(KEY_F8)
        app.wait_text("Compare: one prompt", 10)
        app.send(KEY_DOWN + KEY_DOWN + " ")  # the third deployment too
        app.wait_idle(0.2, 10)
        seen_last = {c: app.watch(lambda s, m=m: s.contains(m)) for m, c in lasts.items()}
        # Every column's header shows its time to first token once its text comes.
        streaming = app.watch(lambda s: sum(line.count("TTFT") for line in s.lines[:4]) >= 3)
        app.send(KEY_CTRL_S)
        app.wait(streaming, 30, "every column's first token")
        cpu_first, t_first = app.cpu_seconds(), time.monotonic()
        app.send(KEY_CTRL_L)
        start = time.monotonic() + 0.05
        sends: list[float] = []
        watchers = []
        for k in range(keys):
            delay = start + 0.1 * k - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            typed = TYPED[: k + 1]
            watchers.append(app.watch(lambda s, t=typed: any(t in line for line in s.bottom(4))))
            sends.append(app.send(TYPED[k]))
        out["streaming_at_last_key"] = len(server.answers_sent()) < 3
        for k, watcher in enumerate(watchers):
            try:
                seen = app.wait(watcher, bench.plan.long_timeout, f"key {k}")
            except TimeoutError:
                bottom = "\n".join(app.text().bottom(6))
                raise TimeoutError(f"key {k} never showed; the bottom rows:\n{bottom}") from None
            out["key_ms"].append((seen - sends[k]) * 1000)
        for column, watcher in seen_last.items():
            seen = app.wait(watcher, bench.plan.long_timeout, f"column {column}'s last token")
            model = DEPLOYMENTS[column]
            deadline = time.monotonic() + 5
            while model not in (sent := server.answers_sent()) and time.monotonic() < deadline:
                time.sleep(0.01)
            out["lag_ms"][column] = (seen - sent[model]) * 1000
        cpu_last = app.cpu_seconds()
        out["app_cpu_share"] = (cpu_last - cpu_first) / (time.monotonic() - t_first)
        out["app_cpu_s"] = cpu_last - cpu_first
        out["stream_seconds"] = n_tokens / TOKENS_PER_SECOND
        app.wait_idle(0.3, 30)
        app.send(KEY_ESCAPE)  # close: back to the chat
        app.wait_text(PLACEHOLDER, 10)
    finally:
        try:
            app.close()
        finally:
            app.kill()
    return out


def g_compare(bench: Any) -> list[Any]:
    plan = bench.plan
    n = plan.stream_tokens
    keys = plan.typing_keys
    typing = bench.figure(
        "compare.key_latency",
        f"Compare, 3 x {n:,} tok @2000/s: key -> next-prompt box",
        50.0,
        "ms",
        judge="max",
        notes=(
            f"three deployments stream {n:,}-token Markdown replies at 2,000 tokens/s each "
            f"into the compare screen's columns (150x40); {keys} single characters are "
            "written to the pty every 100 ms into its next-prompt box (Ctrl+L) from when "
            "every column's header shows its time to first token; each sample is write -> pty output "
            "showing the text typed so far. Judged on the max."
        ),
    )
    lag = bench.figure(
        "compare.last_token_latency",
        f"Compare, 3 x {n:,} tok @2000/s: last token sent -> on screen, per column",
        100.0,
        "ms",
        judge="max",
        notes=(
            "per column: the server writes its stream's last delta (a unique marker) -> pty "
            "output showing it in that column. Judged on the max over columns and runs."
        ),
    )
    runs = []
    options = ("--tps", str(TOKENS_PER_SECOND), "--deployments", ",".join(DEPLOYMENTS))
    with ServerProcess(*options) as server:
        for run in range(max(1, plan.typing_runs)):
            result = _run(bench, server, run, n, keys)
            runs.append(result)
            for value in result["key_ms"]:
                typing.add(value)
            for value in result["lag_ms"].values():
                lag.add(value)
    typing.extra["streaming_at_last_key"] = [r["streaming_at_last_key"] for r in runs]
    typing.extra["app_cpu_share_while_streaming"] = [round(r["app_cpu_share"], 2) for r in runs]
    lag.extra["per_column_ms"] = [
        {f"column {c + 1}": round(v, 1) for c, v in sorted(r["lag_ms"].items())} for r in runs
    ]
    return [typing, lag]
