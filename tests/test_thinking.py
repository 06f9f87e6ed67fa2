"""The "Thinking" block: a reasoning model's summary streams above its answer, folds to
one line when the answer starts, unfolds by key (ctrl+t) and click, and is shown folded
when the conversation is opened again. The status line counts while a model thinks
without a summary."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message as TextualMessage

from foundry_tui.core.models import MessageStatus
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.turn_flow import ReplyText, ThinkingText
from foundry_tui.ui.widgets.status import StatusLine
from foundry_tui.ui.widgets.transcript import Transcript
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    chat_ready,
    fix_reply_clock,
    offset_of,
    press_keys,
    replies,
    send,
    start_chat,
    visible_text,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

# Model text that looks like markup stays text.
THOUGHT = ["**Weighing it**\n\nA [bold]careful[/bold] look first.", "**Deciding**\n\nShort answer."]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(
        api_key=TEST_KEY, reasoning_models=["o4-mini"], reasoning=lambda body: THOUGHT
    ) as running:
        running.default_summary = "auto"
        yield running


def _app(tmp_path: Path, server: ResponsesServer, **options: Any) -> Any:
    config = write_config(tmp_path, server.base_url, deployments=("o4-mini",), sidebar=False)
    return make_app(config, **options)


async def test_the_summary_streams_then_folds_when_the_answer_starts(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.tokens_per_second = 60
    # The answer waits a while after the summary: on a loaded machine the screen could
    # otherwise take the summary and the answer's start in one go, folded before drawn.
    server.first_delta_delay = 2.0
    seen: list[TextualMessage] = []
    app = _app(tmp_path, server)
    async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
        await start_chat(app, pilot)
        await press_keys(pilot, *"hello", "enter")
        transcript = app.screen.query_one(Transcript)
        await wait_until(pilot, lambda: len(replies(app)) == 1, what="the reply's block")
        block = replies(app)[-1]
        # Thinking, before any answer: unfolded, its text on screen as text.
        await wait_until(
            pilot,
            lambda: "A [bold]careful[/bold] look" in visible_text(transcript),
            what="the summary streaming",
        )
        assert block.thinking is not None and not block.thinking.folded
        assert block.message.text == "" and "You said" not in visible_text(transcript)
        assert "▾ Thinking…" in visible_text(transcript)
        # The answer's first text folds it to one line, while the answer still streams.
        await wait_until(pilot, lambda: "You said" in visible_text(transcript), what="answer")
        assert block.thinking.folded
        assert "careful" not in visible_text(transcript)
        await wait_until(pilot, lambda: replies(app)[-1].message.status == MessageStatus.COMPLETED)
        await app.workers.wait_for_complete()
        # How long it thought depends on the machine; the words do not.
        assert re.search(r"▸ Thinking · \d+ s · 9 words", visible_text(transcript))
        # The reasoning went to the screen as ThinkingText, all of it before the answer.
        kinds = [type(m) for m in seen if isinstance(m, ThinkingText | ReplyText)]
        assert kinds[0] is ThinkingText
        assert ThinkingText not in kinds[kinds.index(ReplyText) :]


async def test_the_key_and_a_click_unfold_and_fold_it(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = _app(tmp_path, server)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_chat(app, pilot)
        await send(pilot, app, "hello")
        await app.workers.wait_for_complete()
        transcript = app.screen.query_one(Transcript)
        assert "careful" not in visible_text(transcript)
        assert "ctrl+t" in app.screen.active_bindings  # in the key bar and the palette
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: "careful" in visible_text(transcript), what="unfolded")
        assert "▾ Thinking" in visible_text(transcript)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: "careful" not in visible_text(transcript), what="folded")
        await pilot.click(Transcript, offset=offset_of(transcript, "▸ Thinking"))
        await wait_until(pilot, lambda: "careful" in visible_text(transcript), what="clicked open")
        await pilot.click(Transcript, offset=offset_of(transcript, "▾ Thinking"))
        await wait_until(pilot, lambda: "careful" not in visible_text(transcript), what="closed")


async def test_a_reopened_conversation_shows_the_thinking_folded(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = _app(tmp_path, server)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_chat(app, pilot)
        reply = await send(pilot, app, "hello")
        await app.workers.wait_for_complete()
    saved = reply.message
    again = _app(tmp_path, server, resume=saved.conversation_id)
    async with again.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: chat_ready(again) and len(replies(again)) == 1)
        transcript = again.screen.query_one(Transcript)
        await wait_until(pilot, lambda: "▸ Thinking · 9 words" in visible_text(transcript))
        assert "careful" not in visible_text(transcript)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: "careful" in visible_text(transcript), what="unfolded")


async def test_the_status_line_counts_while_a_model_thinks_in_silence(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.default_summary = None
    server.thinking_seconds = 0.6
    app = _app(tmp_path, server)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_chat(app, pilot)
        await press_keys(pilot, *"hello", "enter")
        status = app.screen.query_one(StatusLine)
        await wait_until(pilot, lambda: status.waiting.startswith("thinking… "), what="counting")
        assert replies(app)[-1].thinking is None or not replies(app)[-1].has_thinking
        await wait_until(pilot, lambda: replies(app)[-1].message.status == MessageStatus.COMPLETED)
        assert status.waiting == ""
        # Nothing to show: no Thinking block, no key for it.
        transcript = app.screen.query_one(Transcript)
        assert "Thinking" not in visible_text(transcript)
        assert "ctrl+t" not in app.screen.active_bindings


async def _thought_and_answered(pilot: Any, *, unfold: bool) -> None:
    from tests.test_snapshots import no_blink

    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app), what="chat")
    app.screen.query_one("#prompt").text = "Is it worth it?"
    await pilot.press("enter")
    await wait_until(
        pilot,
        lambda: any(block.message.status == MessageStatus.COMPLETED for block in replies(app)),
        what="the reply",
    )
    await app.workers.wait_for_complete()
    block = replies(app)[-1]
    assert block.thinking is not None
    block.thinking.seconds = 12.0  # the picture must not depend on how long it took
    if unfold:
        await pilot.press("ctrl+t")
    else:
        transcript = app.screen.query_one(Transcript)
        transcript.toggle_thinking(block)
        transcript.toggle_thinking(block)
    await no_blink(pilot)


@pytest.mark.parametrize("unfold", [False, True], ids=["folded", "unfolded"])
def test_thinking_block_snapshot(
    snap_compare: Any,
    tmp_path: Path,
    server: ResponsesServer,
    unfold: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fix_reply_clock(monkeypatch)

    async def run_before(pilot: Any) -> None:
        await _thought_and_answered(pilot, unfold=unfold)

    assert snap_compare(_app(tmp_path, server), terminal_size=(90, 24), run_before=run_before)
