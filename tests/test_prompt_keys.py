"""Keys typed around Enter: the prompt box empties when Enter is pressed, so a key typed
right after it (before the screen has taken the prompt) starts the next prompt."""

from __future__ import annotations

from pathlib import Path

from textual import events

from foundry_tui.core.models import MessageRole
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.prompt import PromptInput
from tests.helpers import last_reply_done, replies, shown, start_chat, wait_until, write_config
from tests.responses_server import ResponsesServer, make_text


async def test_a_key_typed_right_after_enter_is_kept(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start_chat(app, pilot)
        prompt = screen.query_one(PromptInput)
        prompt.text = "first question"
        # Both keys queued at once, as a fast typist's terminal delivers them: the screen
        # sees the Submitted message only after the box has handled the second key.
        prompt.post_message(events.Key("enter", None))
        prompt.post_message(events.Key("x", "x"))
        await wait_until(pilot, lambda: bool(replies(app)) and last_reply_done(app))
        sent = [b.message.text for b in shown(app) if b.message.role == MessageRole.USER]
        assert sent == ["first question"]
        assert prompt.text == "x"


async def test_a_prompt_refused_while_a_reply_streams_is_put_back_before_new_keys(
    tmp_path: Path, server: ResponsesServer
) -> None:
    """The box empties on Enter: a prompt the screen refuses comes back, in front of the
    keys typed since (a guard: before the box emptied itself, it simply stayed)."""
    server.tokens_per_second = 20
    server.queue_reply(make_text(400))  # 20 s: still streaming when Enter is pressed
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start_chat(app, pilot)
        prompt = screen.query_one(PromptInput)
        await pilot.press(*"stream slowly", "enter")
        await wait_until(pilot, lambda: bool(replies(app)), what="the streaming reply")
        prompt.text = "second"
        prompt.move_cursor(prompt.document.end)
        prompt.post_message(events.Key("enter", None))
        prompt.post_message(events.Key("y", "y"))
        await wait_until(pilot, lambda: prompt.text == "secondy", what="the prompt put back")
        assert [b.message.text for b in shown(app) if b.message.role == MessageRole.USER] == [
            "stream slowly"
        ]
        await pilot.press("escape")
