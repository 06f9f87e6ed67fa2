"""What a 20 MB image costs a send (issue 13: at most 0.3 s more, the UI never frozen more
than 50 ms).

    python benchmarks/attachment_send.py [--transport sdk|lean] [--tries N]

A turn is sent through ``ChatSession`` (the chat screen's path) to the local test server in
its own process, with and without a 20 MB PNG. Printed, each the median and max of the tries:

* the time from ``send`` to the reply's first delta, and the difference the image makes;
* the longest the event loop went without running a 2 ms ticker during the send (what
  the UI would feel: its frames and keys run on that loop).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from foundry_tui.core.attachments import check_file
from foundry_tui.core.models import AuthMethod, EndpointKind, GenerationSettings, Profile
from foundry_tui.core.session import ChatSession, ReplyDelta
from foundry_tui.store import Store

KEY_VARIABLE = "FOUNDRY_TUI_BENCH_KEY"
IMAGE_BYTES = 20 * 1000 * 1000


def start_server() -> tuple[subprocess.Popen[str], str]:
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.responses_server", "--port", "0", "--no-validate"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line.startswith("READY "), line
    return process, line.split(" ", 1)[1]


async def one_send(session: ChatSession, files: list[object]) -> tuple[float, float]:
    """(seconds to the first delta, the longest loop stall in seconds)."""
    loop = asyncio.get_running_loop()
    stalls: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.002)
            now = loop.time()
            stalls.append(now - last - 0.002)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    first: float | None = None
    async for event in session.send("What is this?", attachments=files):  # type: ignore[arg-type]
        if first is None and isinstance(event, ReplyDelta):
            first = time.perf_counter() - started
    stop.set()
    await ticking
    assert first is not None
    return first, max(stalls)


async def main_async(transport: str, tries: int) -> None:
    process, base_url = start_server()
    os.environ[KEY_VARIABLE] = "unused"
    profile = Profile(
        name="bench",
        kind=EndpointKind.COMPATIBLE,
        endpoint=base_url,
        auth=AuthMethod.NONE,
        api_key_env=KEY_VARIABLE,
    )
    if transport == "sdk":
        from foundry_tui.backend.client import Backend

        backend = Backend(profile, max_retries=0, timeout=60)
    else:
        from foundry_tui.backend.lean import LeanBackend

        backend = LeanBackend(profile, max_retries=0, timeout=60)  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as folder:
            image = Path(folder) / "photo.png"
            with image.open("wb") as out:
                out.write(b"\x89PNG\r\n\x1a\n")
                out.write(os.urandom(IMAGE_BYTES - 8))
            checked = check_file(image)
            with Store.open(Path(folder) / "history.db") as store:
                results: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
                for attempt in range(tries + 1):
                    for label, files in (("without", []), ("with", [checked])):
                        session = await ChatSession.start_new(
                            store,
                            backend,  # type: ignore[arg-type]
                            profile="bench",
                            settings=GenerationSettings(model="gpt-4o"),
                        )
                        measured = await one_send(session, files)
                        if attempt:  # the first round warms imports and the connection
                            results[label].append(measured)
                for label, runs in results.items():
                    firsts = [first for first, _ in runs]
                    stalls = [stall for _, stall in runs]
                    print(
                        f"{transport} {label:>7} image: first delta "
                        f"{statistics.median(firsts):.3f} / {max(firsts):.3f} s, "
                        f"largest loop stall {statistics.median(stalls) * 1000:.1f} / "
                        f"{max(stalls) * 1000:.1f} ms"
                    )
                added = statistics.median(f for f, _ in results["with"]) - statistics.median(
                    f for f, _ in results["without"]
                )
                print(f"{transport} the 20 MB image adds {added:.3f} s (median)")
    finally:
        await backend.aclose()
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transport", choices=("sdk", "lean"), default="sdk")
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main_async(args.transport, args.tries))


if __name__ == "__main__":
    main()
