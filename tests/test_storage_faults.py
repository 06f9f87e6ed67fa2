"""The history survives: newer or damaged databases, a full disk, two processes at once,
and `kill -9` in the middle of a streamed reply."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from foundry_tui.core.models import MessageRole, MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.problem import ProblemScreen
from tests.helpers import (
    control,
    record_notifications,
    send,
    start_chat,
    terminal_env,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer
from tests.test_e2e_tmux import ROOT, Terminal


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_database_from_a_newer_version_is_refused_untouched(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    Store.open(config.db_path).close()
    with sqlite3.connect(config.db_path) as conn:
        conn.execute("INSERT INTO _foundry_migrations VALUES ('m999_future', '2030-01-01')")
        conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = digest(config.db_path)
    app = make_app(config)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, ProblemScreen) and app.screen.is_mounted,
            what="problem",
        )
        text = str(app.screen.query_one("#problem-detail").render())
        assert str(config.db_path) in text and "newer" in text
        await pilot.press("f")  # there is no way forward to take: nothing happens
        assert isinstance(app.screen, ProblemScreen)
    assert digest(config.db_path) == before


async def test_damaged_database_is_kept_and_a_fresh_one_started(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    config.db_path.write_bytes(b"these bytes are not a database " * 200)
    before = digest(config.db_path)
    app = make_app(config)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, ProblemScreen) and app.screen.is_mounted,
            what="problem",
        )
        text = str(app.screen.query_one("#problem-detail").render())
        assert str(config.db_path) in text and "damaged" in text
        await pilot.press("f")
        await start_chat(app, pilot)
        reply = await send(pilot, app, "fresh start")
        assert reply.message.status == MessageStatus.COMPLETED
    [kept] = tmp_path.glob("history-damaged-*.db")
    assert digest(kept) == before
    with Store.open(config.db_path) as store:
        assert [c.title for c in store.list_conversations()] == ["fresh start"]


async def test_full_disk_keeps_the_prompt_and_writes_no_half_rows(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    app = make_app(config)
    notices = record_notifications(app)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "first")
        assert app.store is not None
        connection = app.store._conn  # the disk "fills up" under the running app
        assert connection is not None
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")
        screen.query_one("#prompt").text = "x" * 20_000 + " will not fit"
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: any("disk is full" in notice for notice in notices),
            what="disk full message",
        )
        assert screen.query_one("#prompt").text.endswith("will not fit")  # kept
        connection.execute("PRAGMA max_page_count = 1073741823")
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        texts = [m.text for m in store.transcript(summary.id)]
    assert texts == ["first", "You said: first"]


CHATTER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from foundry_tui.backend.client import Backend
    from foundry_tui.core.models import GenerationSettings, Profile, EndpointKind, AuthMethod
    from foundry_tui.core.session import ChatSession, TurnEnded
    from foundry_tui.store import Store

    async def main(db, url, name, turns):
        store = Store.open(Path(db))
        profile = Profile(name="p", kind=EndpointKind.COMPATIBLE, endpoint=url,
                          auth=AuthMethod.NONE, deployments=("gpt-4o",))
        backend = Backend(profile)
        session = await ChatSession.start_new(
            store, backend, profile="p", settings=GenerationSettings(model="gpt-4o"))
        for turn in range(turns):
            async for event in session.send(f"{name} turn {turn}"):
                if isinstance(event, TurnEnded) and event.error is not None:
                    raise SystemExit(f"turn failed: {event.error}")
        await backend.aclose()
        store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


def test_two_processes_chat_on_one_database_at_once(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    turns = 25
    with ResponsesServer(tokens_per_second=2000) as server:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", CHATTER, str(db), server.base_url, name, str(turns)],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("alpha", "beta")
        ]
        errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    assert not any("locked" in e for e in errors)
    with Store.open(db) as store:
        conversations = store.list_conversations()
        assert len(conversations) == 2
        for summary in conversations:
            messages = store.transcript(summary.id)
            assert len(messages) == 2 * turns
            assert all(m.status == MessageStatus.COMPLETED for m in messages)
            prompts = [m.text for m in messages if m.role == MessageRole.USER]
            name = prompts[0].split()[0]
            assert prompts == [f"{name} turn {i}" for i in range(turns)]


def test_kill_9_mid_stream_keeps_prompt_and_partial_reply(
    tmp_path: Path, server_process: Callable[..., str]
) -> None:
    executable = Path(sys.executable).parent / "foundry-tui"
    url = server_process("--tps", "25", "--reply-tokens", "150")
    db = tmp_path / "history.db"
    env = terminal_env(tmp_path, url)
    terminal = Terminal(tmp_path)
    try:
        terminal.launch(f"{executable} --db {db}", env)
        terminal.wait_for("Enter to send")
        terminal.type("stream a long answer")
        terminal.keys("Enter")
        terminal.wait_for("streaming")
        # Let at least one partial save happen (every 0.3 s), then kill without warning.
        with Store.open(db) as store:
            deadline_ok = False
            for _ in range(100):
                [summary] = store.list_conversations() or [None]
                if summary is not None:
                    msgs = store.transcript(summary.id)
                    if len(msgs) == 2 and len(msgs[1].text) > 20:
                        deadline_ok = True
                        break
                subprocess.run(["sleep", "0.1"], check=True)
            assert deadline_ok, "no partial reply was saved while streaming"
        shell = terminal.tmux("list-panes", "-t", "app", "-F", "#{pane_pid}").strip()
        app_pid = subprocess.run(
            ["pgrep", "-P", shell], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        os.kill(int(app_pid), signal.SIGKILL)
        terminal.wait_for("EXITED-137")
        terminal.close()
        control(url, "tps", tokens_per_second=None)  # the next reply at once

        terminal.launch(f"{executable} --db {db}", env)
        terminal.wait_for("Enter to send")
        terminal.keys("C-o")
        terminal.wait_for("stream a long answer")
        terminal.keys("Enter")
        terminal.wait_for("interrupted")
        terminal.keys("C-l")
        terminal.type("still there?")
        terminal.keys("Enter")
        terminal.wait_for("● completed", timeout=40)
        terminal.keys("C-q")
    finally:
        terminal.close()
    with Store.open(db) as store:
        [summary] = store.list_conversations()
        prompt, partial, second, answer = store.transcript(summary.id)
    assert prompt.text == "stream a long answer"
    assert partial.status == MessageStatus.INTERRUPTED and len(partial.text) > 20
    assert second.text == "still there?"
    assert answer.status == MessageStatus.COMPLETED
