"""A stream that brings bytes but no text, or runs too long, ends with a clear message and
keeps the text it brought. The limits are the profile's (small here, to keep tests fast)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.config import ConfigError, Overrides, load_config
from foundry_tui.core.models import (
    BackendError,
    EndpointKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
    TextDelta,
)
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from tests.helpers import KEY_VARIABLE, send, start_chat
from tests.responses_server import Fault, ResponsesServer

PROMPT = "a b c d"
REPLY = "You said: " + PROMPT


def limited_backend(server: ResponsesServer, **limits: float) -> Backend:
    profile = Profile(
        name="p",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        api_key_env="K",
        **limits,  # type: ignore[arg-type]
    )
    return Backend(profile, env={"K": "sk-test-0123456789abcdef"}, max_retries=0, timeout=30)


async def stream(backend: Backend, texts: list[str]) -> None:
    async for event in backend.stream_reply(
        settings=GenerationSettings(model="gpt-4o"),
        input=[InputMessage(MessageRole.USER, PROMPT)],
        previous_response_id=None,
    ):
        if isinstance(event, TextDelta):
            texts.append(event.text)


@pytest.mark.parametrize("events", [False, True], ids=["keep-alive comments", "in_progress events"])
async def test_no_text_for_the_idle_limit_ends_the_stream(
    server: ResponsesServer, events: bool
) -> None:
    backend = limited_backend(server, stream_idle_seconds=0.3)
    # (The server would end the reply normally after 5 s of keep-alives.)
    server.inject(Fault.KEEPALIVE, after_deltas=3, seconds=5, events=events)
    texts: list[str] = []
    with pytest.raises(BackendError) as caught:
        await stream(backend, texts)
    assert "sent no text for 0.3 seconds" in caught.value.detail
    assert "stream_idle_seconds" in caught.value.detail
    assert "".join(texts) == " ".join(REPLY.split()[:3]) + " "

    # Escape during such a wait is still a cancel, not the limit.
    server.inject(Fault.KEEPALIVE, after_deltas=1, seconds=5)
    task = asyncio.create_task(stream(backend, texts := []))
    while not texts:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await backend.aclose()


async def test_a_stream_past_the_total_limit_ends(server: ResponsesServer) -> None:
    backend = limited_backend(server, stream_total_seconds=0.4)
    server.tokens_per_second = 20  # text keeps coming: only the total limit stops it
    server.queue_reply(" ".join(f"w{i}" for i in range(100)))  # 5 s at 20 tokens/s
    texts: list[str] = []
    with pytest.raises(BackendError) as caught:
        await stream(backend, texts)
    await backend.aclose()
    assert "ran past 0.4 seconds" in caught.value.detail
    assert "stream_total_seconds" in caught.value.detail
    assert texts and "".join(texts).startswith("w0 w1")


def test_limits_are_read_from_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    base = '[profiles.p]\nkind = "compatible"\nendpoint = "http://127.0.0.1:9/v1"\nauth = "none"\n'
    path.write_text(base + "stream_idle_seconds = 2.5\nstream_total_seconds = 90\n")
    profile = load_config(path, env={}).active_profile()
    assert profile is not None
    assert (profile.stream_idle_seconds, profile.stream_total_seconds) == (2.5, 90.0)
    path.write_text(base + "stream_idle_seconds = 0\n")
    with pytest.raises(ConfigError, match="stream_idle_seconds"):
        load_config(path, env={})


async def test_the_turn_says_the_stream_went_quiet(tmp_path: Path, server: ResponsesServer) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[profiles.p]\nkind = "compatible"\nendpoint = "{server.base_url}"\n'
        f'api_key_env = "{KEY_VARIABLE}"\ndeployments = ["gpt-4o"]\nstream_idle_seconds = 0.3\n'
    )
    config = load_config(path, overrides=Overrides(db=tmp_path / "history.db"))

    def backend(profile: Profile) -> Any:
        return Backend(profile, max_retries=0, timeout=30)

    app = make_app(config, backend_factory=backend)
    async with app.run_test(size=(150, 40)) as pilot:
        await start_chat(app, pilot)
        server.inject(Fault.KEEPALIVE, after_deltas=3, seconds=5)
        failed = await send(pilot, app, PROMPT)
        assert failed.message.status == MessageStatus.FAILED
        assert "stopped sending text" in failed.footer
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        _user, reply = store.transcript(summary.id)
    assert reply.status == MessageStatus.FAILED and REPLY.startswith(reply.text) and reply.text
