"""A person using the local model: Pilot tests of the app with SmolLM2 running for real.

Skipped only on a CPU without AVX2 (see test_local_backend.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.config import Overrides, load_config
from foundry_tui.core.models import (
    AuthMethod,
    EndpointKind,
    GenerationSettings,
    MessageRole,
    MessageStatus,
    Profile,
)
from foundry_tui.local import discovery
from foundry_tui.local.backend import LocalBackend
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.message_block import MessageBlock
from foundry_tui.ui.widgets.status import StatusLine
from tests.helpers import KEY_VARIABLE, TEST_KEY, chat_ready, press_keys, shown, wait_until

pytestmark = [
    pytest.mark.skipif(
        discovery.cpu_has_avx2() is False,
        reason="this CPU lacks AVX2 (not in the flags of /proc/cpuinfo): the prebuilt llama.cpp "
        "in xllamacpp cannot run here",
    ),
    # One llama.cpp server at a time (see pyproject's addopts): each wants both cores.
    pytest.mark.xdist_group("local_model"),
]

LOADING_TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def model_installed() -> None:
    if not discovery.runtime_installed() or discovery.bundled_model() is None:
        pytest.fail(f"the local model is not installed here: run `{discovery.INSTALL_COMMAND}`")


def write_local_config(directory: Path) -> Path:
    path = directory / "config.toml"
    path.write_text(
        """default_profile = "offline"

[profiles.offline]
kind = "local"

[profiles.offline.defaults]
max_output_tokens = 16
temperature = 0.0
""",
        encoding="utf-8",
    )
    return path


def replies(app: Any) -> list[MessageBlock]:
    return [block for block in shown(app) if block.message.role == MessageRole.ASSISTANT]


def reply_done(app: Any, count: int) -> bool:
    views = replies(app)
    return len(views) >= count and views[-1].message.status != MessageStatus.PENDING


async def send(pilot: Any, app: Any, text: str) -> MessageBlock:
    count = len(replies(app)) + 1
    prompt = app.screen.query_one("#prompt")
    await wait_until(pilot, lambda: prompt.has_focus, what="the prompt focused")
    await press_keys(pilot, *text, "enter")
    await wait_until(
        pilot, lambda: reply_done(app, count), timeout=LOADING_TIMEOUT, what=f"reply to {text!r}"
    )
    return replies(app)[-1]


def status_text(app: Any) -> str:
    return app.screen.query_one(StatusLine).full_text  # type: ignore[no-any-return]


async def test_local_chat_streams_saves_and_reopens_after_a_restart(tmp_path: Path) -> None:
    config = load_config(write_local_config(tmp_path), overrides=Overrides(db=tmp_path / "h.db"))
    app = make_app(config)
    notices: list[str] = []
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat screen")
        assert isinstance(app.backend, LocalBackend)
        status = app.screen.query_one(StatusLine)

        def loaded() -> bool:
            if status.notice:
                notices.append(status.notice)
            return app.backend.ready and not status.notice  # type: ignore[union-attr]

        await wait_until(pilot, loaded, timeout=LOADING_TIMEOUT, what="local model loaded")
        first = await send(pilot, app, "What is the capital of France?")
        assert first.message.status in (MessageStatus.COMPLETED, MessageStatus.INCOMPLETE)
        assert first.message.text.strip()
        assert first.source.strip()
        second = await send(pilot, app, "And of Italy?")
        assert second.message.text.strip()
        assert "local model: sends the transcript each turn" in status_text(app)
        assert "in " in status_text(app)  # usage, as llama.cpp reports it
        pid = app.backend.server.pid  # type: ignore[union-attr]
    assert any(n.startswith("Loading local model SmolLM2-135M… 98 MB") for n in notices)
    assert pid is not None
    with pytest.raises(ProcessLookupError):  # quitting stopped the llama.cpp process
        os.kill(pid, 0)
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        messages = store.transcript(summary.id)
    assert [m.role for m in messages] == [MessageRole.USER, MessageRole.ASSISTANT] * 2
    assert messages[0].text == "What is the capital of France?"
    assert all(not m.response_id for m in messages)  # nothing to chain from: llama.cpp keeps none

    # A restart: the conversation is listed, reopens, and continues by replaying it.
    again = make_app(config, resume=summary.id)
    async with again.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: len(replies(again)) == 2, what="reopened transcript")
        await wait_until(
            pilot,
            lambda: "local model: sends the transcript each turn" in status_text(again),
            what="the status line saying the transcript is sent",
        )
        third = await send(pilot, again, "Thanks!")
        assert third.message.status in (MessageStatus.COMPLETED, MessageStatus.INCOMPLETE)
        usage = third.message.usage
        assert usage.input_tokens is not None and usage.input_tokens > 30  # history was sent
    with Store.open(config.db_path) as store:
        assert len(store.transcript(summary.id)) == 6


async def test_a_local_reply_cut_off_at_max_output_tokens_offers_continue(tmp_path: Path) -> None:
    from foundry_tui.ui.screens.chat import CONTINUE_PROMPT
    from foundry_tui.ui.widgets.footer import KeyFooter

    config = load_config(write_local_config(tmp_path), overrides=Overrides(db=tmp_path / "h.db"))
    app = make_app(config)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat screen")
        cut = await send(pilot, app, "Write a long story about a dragon.")
        assert cut.message.status == MessageStatus.INCOMPLETE
        assert "max output tokens" in cut.footer
        footer = app.screen.query_one(KeyFooter)
        await wait_until(pilot, lambda: "^g Continue" in footer.text, what="Continue offered")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: reply_done(app, 2), timeout=LOADING_TIMEOUT)
        prompts = [b.message.text for b in shown(app) if b.message.role == MessageRole.USER]
        assert prompts[-1] == CONTINUE_PROMPT
        assert replies(app)[-1].message.text.strip()


async def test_setup_screen_offers_the_local_model_first(tmp_path: Path) -> None:
    from textual.widgets import Button

    from foundry_tui.ui.screens.setup import SetupScreen

    config_path = tmp_path / "conf" / "config.toml"
    app = make_app(load_config(config_path, overrides=Overrides(db=tmp_path / "h.db")))
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen), what="setup")
        button = app.screen.query_one("#setup-local", Button)
        assert button.has_focus and "no account" in str(button.label)
        await pilot.press("enter")
        await wait_until(pilot, lambda: chat_ready(app), what="chat screen")
        reply = await send(pilot, app, "Hi")
        assert reply.message.text.strip()
    written = config_path.read_text()
    assert 'kind = "local"' in written and "api_key" not in written
    profile = load_config(config_path).active_profile()
    assert profile is not None and profile.kind is EndpointKind.LOCAL


async def test_setup_screen_says_how_to_get_the_local_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import Static

    from foundry_tui.ui.screens.setup import SetupScreen

    monkeypatch.setattr(discovery, "bundled_model", lambda: None)
    app = make_app(load_config(tmp_path / "config.toml"))
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen), what="setup")
        assert not app.screen.query("#setup-local")
        text = str(app.screen.query_one("#setup-local-text", Static).render())
        assert "foundry-tui local install" in text


async def test_a_conversation_moves_between_a_cloud_deployment_and_the_local_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foundry_tui.backend.client import Backend
    from foundry_tui.core.session import ChatSession, SendMode, TurnEnded, TurnStarted
    from tests.responses_server import ResponsesServer

    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    cloud_profile = Profile(
        name="cloud",
        kind=EndpointKind.COMPATIBLE,
        endpoint="",
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
        deployments=("gpt-4o",),
    )
    local = LocalBackend(load_config(write_local_config(tmp_path)).profiles["offline"])
    with ResponsesServer(api_key=TEST_KEY) as server, Store.open(tmp_path / "h.db") as store:
        cloud = Backend(Profile(**{**cloud_profile.__dict__, "endpoint": server.base_url}))

        async def turn(session: ChatSession, text: str) -> tuple[TurnStarted, TurnEnded]:
            events = [event async for event in session.send(text)]
            started = next(e for e in events if isinstance(e, TurnStarted))
            ended = next(e for e in events if isinstance(e, TurnEnded))
            assert ended.error is None, ended.error
            return started, ended

        try:
            session = await ChatSession.start_new(
                store, cloud, profile="cloud", settings=GenerationSettings(model="gpt-4o")
            )
            _, cloud_reply = await turn(session, "Hello cloud")
            anchor = cloud_reply.reply.response_id
            assert anchor

            # Cloud -> local: the transcript is sent, nothing is chained.
            on_local = await ChatSession.open(store, local, session.conversation.id)
            await on_local.update_settings(
                GenerationSettings(model="smollm2-135m", max_output_tokens=12, temperature=0)
            )
            started, local_reply = await turn(on_local, "Hello local")
            assert started.mode == SendMode.LOCAL
            assert local_reply.reply.text.strip() and not local_reply.reply.response_id
            assert (local_reply.reply.usage.input_tokens or 0) > 20  # the cloud turn went along

            # Local -> cloud: chains on the last cloud reply, sending the local turn along.
            back = await ChatSession.open(store, cloud, session.conversation.id)
            await back.update_settings(GenerationSettings(model="gpt-4o"))
            started, _ = await turn(back, "Back to the cloud")
            assert started.mode == SendMode.CHAIN
            body = server.created()[-1]
            assert body["previous_response_id"] == anchor
            texts = [item["content"] for item in body["input"]]
            assert texts == ["Hello local", local_reply.reply.text, "Back to the cloud"]
        finally:
            await cloud.aclose()
            await local.aclose()
