"""Attachments end to end in the TUI, with no stand-in: a path pasted becomes a chip, the
prompt goes with the file through the real AsyncOpenAI to the local server (which says what
it received), the file is kept beside the database, and reopening the conversation shows
the file on the prompt; a replay after expiry sends it again."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual import events

from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.attachment_chips import AttachmentChips
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.transcript import Transcript
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    last_reply_done,
    press_keys,
    start_chat,
    visible_text,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # 2,056 bytes


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


async def test_a_pasted_image_is_sent_kept_and_shown_again_on_reopening(
    tmp_path: Path, server: ResponsesServer
) -> None:
    image = tmp_path / "chart.png"
    image.write_bytes(PNG)
    config = write_config(tmp_path, server.base_url, sidebar=False)
    app = make_app(config)
    async with app.run_test(size=(110, 32)) as pilot:
        screen = await start_chat(app, pilot)
        prompt = screen.query_one(PromptInput)
        prompt.focus()
        app.post_message(events.Paste(str(image)))
        chips = screen.query_one(AttachmentChips)
        await wait_until(pilot, lambda: [f.name for f in chips.files] == ["chart.png"])
        await press_keys(pilot, *"What is this?", "enter")
        transcript = screen.query_one(Transcript)
        await wait_until(pilot, lambda: last_reply_done(app), what="the reply")
        await wait_until(
            pilot, lambda: "I see 1 image (png, 2056 bytes)" in visible_text(transcript)
        )
        assert "chart.png · PNG image, 2.1 kB" in visible_text(transcript)
        assert not chips.files  # the chips went with the prompt
        conversation = screen.session.conversation.id if screen.session else ""
    sent = server.created()[-1]["input"][-1]["content"]
    assert sent[0] == {"type": "input_text", "text": "What is this?"}
    assert sent[1]["type"] == "input_image"
    assert sent[1]["image_url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    # Kept beside the database, once, by its content.
    store = Store.open(config.db_path)
    try:
        (user, _reply) = store.transcript(conversation)
        (kept,) = user.attachments
        assert store.read_attachment(kept.sha256) == PNG
    finally:
        store.close()
    image.unlink()  # the original is gone: the kept copy is what a replay sends

    server.expire_all()
    reopened = make_app(config, resume=conversation)
    async with reopened.run_test(size=(110, 32)) as pilot:
        screen = await start_chat(reopened, pilot)
        transcript = screen.query_one(Transcript)
        await wait_until(
            pilot,
            lambda: "chart.png · PNG image, 2.1 kB" in visible_text(transcript),
            what="the file on the reopened prompt",
        )
        await press_keys(pilot, *"And now?", "enter")
        await wait_until(
            pilot,
            lambda: last_reply_done(reopened) and "You said: And now?" in visible_text(transcript),
            what="the replayed turn",
        )
    replayed = server.created()[-1]
    assert "previous_response_id" not in replayed
    first_prompt = replayed["input"][0]["content"]
    assert first_prompt[1]["image_url"].endswith(base64.b64encode(PNG).decode())
