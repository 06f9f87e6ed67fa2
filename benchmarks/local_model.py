#!/usr/bin/env python
"""The local model (SmolLM2-135M on xllamacpp): speed through the app vs llama.cpp's own.

    python benchmarks/local_model.py            # full run, about a minute
    python benchmarks/local_model.py --quick    # smoke mode, about 20 s
    python benchmarks/local_model.py --json /tmp/local.json

`run(quick)` returns one row per figure (figure, target, median, max, runs, passed, notes)
for `benchmarks/run.py` to merge. Everything goes through the app's own stack: `LocalBackend`
starts the llama.cpp server (a child process on 127.0.0.1) and streams through
`backend.Backend` (the openai SDK), exactly as a chat does; the Textual UI is not involved.

Figures:

- decode rate through the app, and the overhead it adds over llama.cpp's own rate measured
  in the same run: the same prompt and settings (temperature 0, so the same tokens) sent as
  a raw streamed request, whose final event carries llama.cpp's `timings`. Target: the app
  adds <= 5 %.
- first token for a short prompt (a new one each run): <= 0.4 s.
- a follow-up turn after a ~500-token history (the turn before it read that history, so
  llama.cpp's prompt cache holds it): <= 0.3 s to the first token. The same history read
  cold (no cache) is reported beside it.
- model load time and the server's memory (RSS), for information.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from foundry_tui.config import local_profile  # noqa: E402
from foundry_tui.core.models import (  # noqa: E402
    GenerationSettings,
    InputMessage,
    MessageRole,
    ResponseFinished,
    TextDelta,
)
from foundry_tui.local.backend import LocalBackend  # noqa: E402

_WORDS = [
    "river",
    "stone",
    "lantern",
    "market",
    "winter",
    "orchard",
    "signal",
    "harbor",
    "copper",
    "meadow",
    "engine",
    "garden",
    "letter",
    "window",
    "mountain",
    "bridge",
    "candle",
    "forest",
    "station",
    "village",
    "silver",
    "morning",
    "thunder",
    "island",
    "library",
    "painter",
    "sailor",
    "kitchen",
    "feather",
    "compass",
    "ladder",
    "mirror",
    "planet",
]


def _notes(seed: int, words: int) -> str:
    rng = random.Random(seed)
    sentences = []
    while sum(len(s.split()) for s in sentences) < words:
        length = rng.randint(6, 12)
        sentence = " ".join(rng.choice(_WORDS) for _ in range(length))
        sentences.append(sentence.capitalize() + ".")
    return " ".join(sentences)


def _row(
    figure: str,
    target: str,
    values: list[float],
    unit: str,
    check: Callable[[float], bool] | None,
    notes: str,
) -> dict[str, Any]:
    median = statistics.median(values) if values else None
    worst = max(values) if values else None
    return {
        "figure": figure,
        "target": target,
        "median": None if median is None else round(median, 4),
        "max": None if worst is None else round(worst, 4),
        "unit": unit,
        "runs": len(values),
        "passed": None if check is None or median is None else check(median),
        "notes": notes,
        "samples": [round(v, 4) for v in values],
    }


async def _stream(
    backend: LocalBackend, messages: list[InputMessage], settings: GenerationSettings
) -> dict[str, Any]:
    """Time one turn through the app's backend: first token, decode rate, usage."""
    asked = time.perf_counter()
    stamps: list[float] = []
    finished: ResponseFinished | None = None
    async for event in backend.stream_reply(
        settings=settings, input=messages, previous_response_id=None
    ):
        if isinstance(event, TextDelta):
            stamps.append(time.perf_counter())
        elif isinstance(event, ResponseFinished):
            finished = event
    assert finished is not None and stamps, "the model sent no text"
    output = finished.usage.output_tokens or len(stamps)
    span = stamps[-1] - stamps[0]
    return {
        "first": stamps[0] - asked,
        "rate": (output - 1) / span if span > 0 and output > 1 else None,
        "output": output,
        "input": finished.usage.input_tokens,
    }


def _raw_timings(backend: LocalBackend, prompt: str, max_tokens: int) -> dict[str, Any]:
    """The same request without the app: a raw streamed POST; llama.cpp's own timings."""
    server = backend.server
    assert server is not None
    body = {
        "model": backend.alias,
        "input": [{"type": "message", "role": "user", "content": prompt}],
        "max_output_tokens": max_tokens,
        "temperature": 0,
        "store": False,
        "stream": True,
    }
    request = urllib.request.Request(
        f"{server.base_url}/responses",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.api_key}"},
    )
    stamps: list[float] = []
    timings: dict[str, Any] = {}
    with urllib.request.urlopen(request, timeout=120) as response:
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = json.loads(data)
            if event.get("type") == "response.output_text.delta":
                stamps.append(time.perf_counter())
            elif event.get("type") in ("response.completed", "response.incomplete"):
                timings = event.get("timings") or {}
                usage = (event.get("response") or {}).get("usage") or {}
                timings["output_tokens"] = usage.get("output_tokens")
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    outputs = timings.get("output_tokens") or len(stamps)
    timings["client_rate"] = (outputs - 1) / span if span > 0 else None
    return timings


def _rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def _measure(quick: bool) -> list[dict[str, Any]]:
    runs = 3 if quick else 7
    decode_tokens = 96 if quick else 256
    backend = LocalBackend(local_profile())
    rows: list[dict[str, Any]] = []
    try:
        started = time.perf_counter()
        await backend.prepare(lambda _text: None)
        load = time.perf_counter() - started
        rows.append(
            _row(
                "local: model load (prepare)",
                "info",
                [load],
                "s",
                None,
                "checks, child process start, 98 MB GGUF load, openai warm-up",
            )
        )
        # Warm the path once (connection, template prefix in the prompt cache).
        short = GenerationSettings(model=backend.alias, max_output_tokens=4, temperature=0)
        await _stream(backend, [InputMessage(MessageRole.USER, "Hello.")], short)

        # -- decode rate: app vs llama.cpp, same prompt, same tokens. Raw, app, raw again:
        # the app's run is compared with the mean of the two around it, so that load from
        # elsewhere on the machine (it has 2 cores) moves both sides alike.
        app_rates: list[float] = []
        own_rates: list[float] = []
        raw_client: list[float] = []
        overheads: list[float] = []
        topics = ["a cat", "the sea", "a city", "a robot", "winter", "a garden", "a train"]
        settings = GenerationSettings(
            model=backend.alias, max_output_tokens=decode_tokens, temperature=0
        )
        for run in range(runs):
            prompt = f"Write a long story about {topics[run % len(topics)]}."
            before = await asyncio.to_thread(_raw_timings, backend, prompt, decode_tokens)
            app = await _stream(backend, [InputMessage(MessageRole.USER, prompt)], settings)
            after = await asyncio.to_thread(_raw_timings, backend, prompt, decode_tokens)
            own = [
                float(t["predicted_per_second"])
                for t in (before, after)
                if t.get("predicted_per_second")
            ]
            if app["rate"] and own:
                reference = statistics.fmean(own)
                app_rates.append(app["rate"])
                own_rates.extend(own)
                overheads.append(1 - app["rate"] / reference)
            raw_client.extend(
                float(t["client_rate"]) for t in (before, after) if t.get("client_rate")
            )
        rows.append(
            _row(
                "local: decode rate through the app",
                "info",
                app_rates,
                "tok/s",
                None,
                f"{decode_tokens} tokens, temperature 0; llama.cpp's own rate (timings."
                f"predicted_per_second) median {statistics.median(own_rates):.1f} tok/s; "
                f"raw HTTP client-side {statistics.median(raw_client):.1f} tok/s",
            )
        )
        rows.append(
            _row(
                "local: app overhead on the decode rate",
                "<= 5 %",
                [100 * o for o in overheads],
                "%",
                lambda v: v <= 5.0,
                "1 - app rate / llama.cpp's own rate for the same request just before and "
                "after it, per run (negative: the app's run was the faster)",
            )
        )

        # -- first token, short prompt (a new one each run)
        firsts: list[float] = []
        names = ["Ada", "Bob", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana"]
        for run in range(runs):
            prompt = f"Say hello to {names[run % len(names)]} number {run}."
            result = await _stream(backend, [InputMessage(MessageRole.USER, prompt)], short)
            firsts.append(result["first"])
        rows.append(
            _row(
                "local: first token, short prompt",
                "<= 0.4 s",
                firsts,
                "s",
                lambda v: v <= 0.4,
                "~35-token prompt (template included), new each run, through LocalBackend",
            )
        )

        # -- follow-up after a ~500-token history
        follow: list[float] = []
        cold: list[float] = []
        inputs: list[int] = []
        reply_settings = GenerationSettings(
            model=backend.alias, max_output_tokens=40, temperature=0
        )
        for run in range(runs):
            notes = _notes(1000 + run, 350)
            history = [InputMessage(MessageRole.USER, f"Here are my notes: {notes} Summarise.")]
            first_turn = await _stream(backend, history, reply_settings)
            cold.append(first_turn["first"])
            # The app sends back what it showed: the reply text as streamed.
            reply_text = await _reply_text(backend, history, reply_settings)
            history.append(InputMessage(MessageRole.ASSISTANT, reply_text))
            await _stream(backend, history[:1], reply_settings)  # the cache holds turn 1 again
            history.append(InputMessage(MessageRole.USER, "Thanks. Which word comes first?"))
            result = await _stream(backend, history, short)
            follow.append(result["first"])
            inputs.append(int(result["input"] or 0))
        rows.append(
            _row(
                "local: first token, follow-up after ~500-token history",
                "<= 0.3 s",
                follow,
                "s",
                lambda v: v <= 0.3,
                f"follow-up prompts of {min(inputs)}-{max(inputs)} tokens with the previous turn "
                f"in llama.cpp's prompt cache; the same history read cold: median "
                f"{statistics.median(cold):.2f} s to the first token",
            )
        )
        rss = _rss_mb(backend.server.pid if backend.server else None)
        rows.append(
            _row(
                "local: server memory (RSS)",
                "info",
                [rss] if rss is not None else [],
                "MB",
                None,
                f"llama.cpp child process, n_ctx {backend.n_ctx}",
            )
        )
    finally:
        await backend.aclose()
    return rows


async def _reply_text(
    backend: LocalBackend, messages: list[InputMessage], settings: GenerationSettings
) -> str:
    parts: list[str] = []
    async for event in backend.stream_reply(
        settings=settings, input=messages, previous_response_id=None
    ):
        if isinstance(event, TextDelta):
            parts.append(event.text)
    return "".join(parts)


def run(quick: bool) -> list[dict[str, Any]]:
    """Measures the local model; one dict per figure (see the module docstring)."""
    return asyncio.run(_measure(quick))


def _format(rows: list[dict[str, Any]]) -> str:
    header = ("figure", "target", "median", "max", "runs", "result")
    lines = []
    for row in rows:
        unit = row.get("unit", "")
        median = "-" if row["median"] is None else f"{row['median']:.3g} {unit}"
        worst = "-" if row["max"] is None else f"{row['max']:.3g} {unit}"
        result = {True: "pass", False: "FAIL", None: "-"}[row["passed"]]
        lines.append((row["figure"], row["target"], median, worst, str(row["runs"]), result))
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = [" | ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines]
    out.append("")
    out += [f"- {row['figure']}: {row['notes']}" for row in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the rows here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    print(_format(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    missed = any(row["passed"] is False for row in rows)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
