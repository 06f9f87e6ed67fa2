"""A prompt sent before the app's warm-up is done does not import the client library on
the UI loop: the first request first runs the warm-up in a thread (or waits there for the
warm-up's thread), so what the request itself then loads is already loaded. In a fresh
interpreter, through the real SDK against the local server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import ResponsesServer

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import asyncio, json, sys, threading
from foundry_tui.backend.client import Backend
from foundry_tui.backend.sdk_stream import client_library_warm
from foundry_tui.core.models import (
    AuthMethod, EndpointKind, GenerationSettings, InputMessage, MessageRole, Profile,
)

HEAVY = ("openai", "anyio", "httpx2", "httpcore2", "pydantic", "azure")

def heavy_modules():
    return {name for name in sys.modules if name.split(".")[0] in HEAVY}

async def main():
    profile = Profile(
        name="t", kind=EndpointKind.COMPATIBLE, endpoint=sys.argv[1],
        auth=AuthMethod.API_KEY, api_key_env=sys.argv[2],
    )
    backend = Backend(profile, max_retries=0)
    before = heavy_modules()
    await backend._ready_client()
    ready = heavy_modules()
    events = [
        type(event).__name__
        async for event in backend.stream_reply(
            settings=GenerationSettings(model="gpt-4o"),
            input=[InputMessage(MessageRole.USER, "hi")],
            previous_response_id=None,
        )
    ]
    await backend.aclose()
    print(json.dumps({
        "warm": client_library_warm(),
        "loaded_before": len(before),
        "loaded_by_ready": len(ready - before),
        "loaded_by_request": sorted(heavy_modules() - ready),
        "events": events,
    }))

asyncio.run(main())
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


def test_the_first_request_loads_the_client_library_off_the_loop(server: ResponsesServer) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, server.base_url, KEY_VARIABLE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["events"][-1] == "ResponseFinished"
    assert seen["warm"] is True
    assert seen["loaded_before"] == 0  # nothing of it at start-up
    assert seen["loaded_by_ready"] > 100  # the library, loaded in a thread
    # What the request itself made the loop load: nothing of the heavy packages.
    assert seen["loaded_by_request"] == []
