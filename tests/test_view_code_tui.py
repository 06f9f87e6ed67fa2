"""The palette's "View code": Pilot tests against the local server (palette, modal, switch,
copy, Escape), a key that never shows, and a snapshot of the modal."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from textual.widgets import Tabs, TextArea

from foundry_tui.core.models import AuthMethod
from foundry_tui.core.request_code import RequestTarget, write_code
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.view_code import PROMPT_PLACEHOLDER, VIEW_CODE_TITLE, ViewCodeScreen
from foundry_tui.ui.widgets.prompt import PromptInput
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    chat_ready,
    record_notifications,
    send,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer
from tests.test_export_tui import run_command

MARKUP = "[bold]not bold[/bold] [@click=app.quit]quit[/] it's $(x)"


def code_text(app: Any) -> str:
    return str(app.screen.query_one("#view-code-text", TextArea).text)


def body_in(curl: str) -> dict[str, Any]:
    words = shlex.split(curl.replace("\\\n", " "), comments=True)
    return dict(json.loads(words[words.index("-d") + 1]))


async def open_view_code(pilot: Any, app: Any) -> ViewCodeScreen:
    await run_command(pilot, app, VIEW_CODE_TITLE)
    await wait_until(pilot, lambda: isinstance(app.screen, ViewCodeScreen), what="the modal")
    screen = app.screen
    assert isinstance(screen, ViewCodeScreen)
    return screen


async def test_view_code_shows_copies_and_switches(tmp_path: Path, server: ResponsesServer) -> None:
    """Empty prompt: the placeholder stands in. Then the text typed, after a turn, chained
    to its reply; ``s`` and the tabs switch; ``c`` and the button copy the whole code shown,
    with a notice; Escape goes back with the prompt as it was. The key is in none of it."""
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 45)) as pilot:
        chat = await start_chat(app, pilot)
        said = record_notifications(app)

        modal = await open_view_code(pilot, app)
        assert f'"content": "{PROMPT_PLACEHOLDER}"' in code_text(app)
        assert "previous_response_id" not in code_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is chat, what="closed")

        reply = (await send(pilot, app, "hello")).message
        chat.query_one(PromptInput).text = MARKUP
        modal = await open_view_code(pilot, app)
        shown = code_text(app)
        assert shown == modal.code.python_shown
        assert f'previous_response_id="{reply.response_id}"' in shown
        assert 'content": "[bold]not bold[/bold] [@click=app.quit]quit[/] it\'s $(x)"' in shown
        assert f'os.environ["{KEY_VARIABLE}"]' in shown

        await pilot.press("c")
        await wait_until(pilot, lambda: bool(said), what="the copy's notice")
        python = app.clipboard
        assert python == modal.code.python
        assert said == [f"Copied the Python request ({python.count(chr(10))} lines)."]
        said.clear()

        await pilot.press("s")
        await wait_until(pilot, lambda: code_text(app).lstrip("# ").count("curl") > 0)
        assert app.screen.query_one(Tabs).active == "curl"
        body = body_in(code_text(app))
        assert body["previous_response_id"] == reply.response_id
        assert body["input"][-1]["content"] == MARKUP
        await pilot.click("#view-code-copy")
        await wait_until(pilot, lambda: bool(said), what="the copy's notice")
        curl = app.clipboard
        assert curl == modal.code.curl and body_in(curl) == body
        assert said == [f"Copied the curl request ({curl.count(chr(10))} lines)."]

        await pilot.click("Tab#python")
        await wait_until(pilot, lambda: code_text(app) == modal.code.python_shown, what="back")

        screenshot = app.export_screenshot()
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is chat, what="closed")
        assert chat.query_one(PromptInput).text == MARKUP  # the prompt is left as it was
        assert app.return_code is None  # the markup in it clicked nothing
        for seen in (python, curl, screenshot, modal.code.python_shown, modal.code.curl_shown):
            assert TEST_KEY not in seen
        assert len(server.created()) == 1  # viewing sent nothing


async def test_view_code_without_a_model_says_what_to_fix(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    app = make_app(config)
    async with app.run_test(size=(140, 45)) as pilot:
        chat = await start_chat(app, pilot)
        chat.query_one("#model-input").value = ""  # type: ignore[attr-defined]
        said = record_notifications(app)
        await run_command(pilot, app, VIEW_CODE_TITLE)
        await wait_until(pilot, lambda: bool(said), what="the hint")
        assert said == ["Type or pick a deployment (model) name in the sidebar first."]
        assert app.screen is chat


async def _modal(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app), what="chat")
    body: dict[str, object] = {
        "model": "gpt-4o",
        "input": [{"type": "message", "role": "user", "content": "How do I count lines?"}],
        "instructions": "Answer briefly.",
        "previous_response_id": "resp_0123456789",
        "temperature": 0.2,
        "store": True,
        "stream": True,
    }
    target = RequestTarget(
        "https://contoso.openai.azure.com/openai/v1/",
        AuthMethod.API_KEY,
        key_env="AZURE_OPENAI_API_KEY",
        what="an Azure OpenAI resource",
    )
    await app.push_screen(ViewCodeScreen(write_code(body, target)))
    app.screen.query_one(TextArea).cursor_blink = False
    await app.workers.wait_for_complete()
    await pilot.pause(0)


def test_view_code_modal(snap_compare: Any, tmp_path: Path, server: ResponsesServer) -> None:
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    assert snap_compare(app, terminal_size=(110, 40), run_before=_modal)
