"""Nothing let in: no secret written anywhere, model output never acted on, odd or huge
replies kept without a crash or a freeze."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from foundry_tui.core.models import MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from tests.helpers import (
    KEY_VARIABLE,
    click_does_nothing,
    control,
    record_notifications,
    replies,
    send,
    start_chat,
    terminal_env,
    wait_until,
    write_config,
)
from tests.responses_server import Fault, ResponsesServer
from tests.test_e2e_tmux import Terminal

SECRET = "sk-proj-SECRET0123456789abcdefSECRET"

HOSTILE = (
    "[bold red]not bold[/] [@click=app.quit]click me[/] "
    "\x1b]52;c;cHduZWQ=\x07 \x1b]0;pwned-title\x07 \x1b[31mred\x1b[0m "
    "\u202eevil\u202c \u2066iso\u2069 nul\x00end \x9b31m"
)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, SECRET)
    with ResponsesServer(api_key=SECRET) as running:
        yield running


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


async def test_no_secret_reaches_any_file_or_message(
    tmp_path: Path, server: ResponsesServer, isolated_home: Path
) -> None:
    config = write_config(tmp_path, server.base_url)
    app = make_app(config)
    notices = record_notifications(app)
    async with app.run_test(size=(150, 40)) as pilot:
        await start_chat(app, pilot)
        await send(pilot, app, "first")
        # A hostile or careless server echoes the key in its error message.
        server.inject(Fault.UNAUTHORIZED, message=f"Incorrect API key provided: {SECRET}")
        failed = await send(pilot, app, "second")
        assert failed.message.status == MessageStatus.FAILED
        shown = [*notices, failed.footer, failed.message.error or ""]
        assert any("Incorrect API key provided" in text for text in shown)  # the echo is shown
        assert all(SECRET not in text for text in shown)
        assert all(SECRET[8:24] not in text for text in shown)
    written = files_under(tmp_path, isolated_home)
    assert config.db_path in written
    assert len(written) >= 2  # the config and the database at least
    for path in written:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert SECRET[8:24].encode() not in data, path
    # The key did reach the server: the test is not vacuous.
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"


async def test_markup_and_escapes_in_a_reply_are_inert(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(HOSTILE)
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        await start_chat(app, pilot)
        reply = await send(pilot, app, "be hostile")
        source = reply.source
        assert "[bold red]not bold[/]" in source and "[@click=app.quit]click me[/]" in source
        for dangerous in ("\x1b", "\x07", "\x00", "\u202e", "\u2066", "\x9b"):
            assert dangerous not in source
        await click_does_nothing(pilot, "click me[/]")  # the would-be link's text
    assert reply.message.text == HOSTILE  # saved exactly as received


async def test_error_body_that_is_not_utf8(tmp_path: Path, server: ResponsesServer) -> None:
    from foundry_tui.backend.client import Backend

    app = make_app(
        write_config(tmp_path, server.base_url),
        backend_factory=lambda profile: Backend(profile, max_retries=0),
    )
    async with app.run_test(size=(150, 40)) as pilot:
        await start_chat(app, pilot)
        server.inject(Fault.GARBLED_ERROR)
        failed = await send(pilot, app, "garbled")
        shown = failed.footer
        assert "Server error (500)" in shown
        assert "\x1b" not in shown and "\x07" not in shown


async def test_one_megabyte_reply_and_a_50k_character_line(
    tmp_path: Path, server: ResponsesServer
) -> None:
    long_line = "x" * 50_000
    paragraphs = "\n\n".join(
        f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 36 for i in range(1000)
    )
    big = f"{long_line}\n\n{paragraphs}"
    assert len(big.encode()) > 1_000_000
    server.queue_reply(big)
    server.tokens_per_delta = 50  # ~4,000 deltas of ~250 bytes: the size is the point here
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await pilot.press(*"big", "enter")
        await wait_until(
            pilot,
            lambda: bool(replies(app)) and replies(app)[-1].message.status != MessageStatus.PENDING,
            timeout=60,
            what="1 MB reply",
        )
        assert replies(app)[-1].message.status == MessageStatus.COMPLETED
        await pilot.press(*"still typing")
        assert screen.query_one("#prompt").text == "still typing"
    with Store.open(tmp_path / "history.db") as store:
        [summary] = store.list_conversations()
        assert store.transcript(summary.id)[-1].text == big


def test_nothing_hostile_reaches_the_real_terminal(
    tmp_path: Path, server_process: Callable[..., str]
) -> None:
    """What the app writes to a real terminal (tmux pipe-pane) carries no sequence from the
    model: no OSC 52 clipboard write, no title change, no bidi override."""
    executable = Path(sys.executable).parent / "foundry-tui"
    url = server_process()
    control(url, "reply", text=HOSTILE)
    raw = tmp_path / "terminal.bytes"
    env = terminal_env(tmp_path, url)
    terminal = Terminal(tmp_path)
    try:
        terminal.launch(f"{executable} --db {tmp_path / 'history.db'}", env)
        terminal.tmux("pipe-pane", "-o", "-t", "app", f"cat >> {raw}")
        terminal.wait_for("Enter to send")
        terminal.type("be hostile")
        terminal.keys("Enter")
        screen = terminal.wait_for("not bold[/]")
        assert "[bold red]not bold[/]" in screen
        terminal.wait_for("● completed")
        terminal.keys("C-q")
        terminal.wait_for("EXITED-0")
    finally:
        terminal.close()
    written = raw.read_bytes()
    assert b"be hostile" in written or b"hostile" in written  # the capture saw the app
    assert b"\x1b]52;" not in written
    assert b"\x1b]0;pwned" not in written and b"\x1b]2;pwned" not in written
    assert "\u202e".encode() not in written and "\u2066".encode() not in written
    assert b"\x00" not in written
