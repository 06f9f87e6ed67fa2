"""How long a big bracketed paste takes to reach the prompt, and then to be sent.

    python benchmarks/paste.py [--megabytes 5] [--runs 3] [--one-line]

Runs the real `foundry-tui` in a pseudo-terminal (ptyterm.py) against the local test server
(a fixed short reply), pastes N MB of text lines between ESC[200~ and ESC[201~, and prints:
paste written -> in the prompt (its last line, or the one-line marker of a folded paste), and
Enter -> the turn completed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ptyterm import PtyApp  # noqa: E402

MARK = "END-OF-PASTE-MARK"


def paste_bytes(megabytes: float, one_line: bool) -> bytes:
    line = b"2026-12-06 12:00:00 INFO worker-7 handled request in 12 ms, status 200 OK\n"
    body = line * int(megabytes * 1_000_000 / len(line))
    if one_line:  # a minified file, a base64 blob: no line breaks at all
        body = body.replace(b"\n", b" ")
    return b"\x1b[200~" + body + MARK.encode() + b"\x1b[201~"


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def run_once(url: str, data: bytes, directory: Path) -> tuple[float, float]:
    config = directory / "config.toml"
    config.write_text(
        f'[profiles.local]\nkind = "compatible"\nendpoint = "{url}"\nauth = "none"\n'
        'deployments = ["gpt-4o"]\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "HOME": str(directory),
        "FOUNDRY_TUI_CONFIG": str(config),
        "TERM": "xterm-256color",
    }
    executable = Path(sys.executable).parent / "foundry-tui"
    with PtyApp([str(executable), "--db", str(directory / "h.db")], env=env) as app:
        app.wait_text("Enter to send", 20)
        app.wait_idle(0.5, 20, strict=False)
        # Its last line, or the marker a folded paste shows in its place (widgets/prompt.py).
        shown = app.watch(lambda s: s.contains(MARK) or s.contains("[pasted "))
        start = time.monotonic()
        writer = threading.Thread(target=write_all, args=(app.master, data))
        writer.start()
        pasted = app.wait(shown, 300, "the end of the paste") - start
        writer.join()
        app.wait_idle(0.5, 60, strict=False)
        done = app.watch(lambda s: s.contains("● completed"))
        start = app.send("\r")
        sent = app.wait(done, 300, "the reply") - start
    return pasted, sent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one-line", action="store_true", help="no line breaks in the paste")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.responses_server", "--port", "0", "--reply", "ok"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split(" ", 1)[1].strip()
        data = paste_bytes(args.megabytes, args.one_line)
        pastes, sends = [], []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as directory:
                pasted, sent = run_once(url, data, Path(directory))
            pastes.append(pasted)
            sends.append(sent)
            print(
                f"{len(data):,} bytes: paste -> on screen {pasted:.2f} s, Enter -> completed {sent:.2f} s"
            )
        print(
            f"median of {args.runs}: paste {statistics.median(pastes):.2f} s, "
            f"send {statistics.median(sends):.2f} s"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
