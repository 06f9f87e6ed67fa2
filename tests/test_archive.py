"""Archiving: a conversation leaves the history list and stays whole; the archived list
shows it (its filter searches it); restoring brings it back. The store, the CLI
(`history --archived`, `history archive ID`, `history restore ID`) and the TUI's keys and
palette commands."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from foundry_tui.commands import history as history_command
from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus
from foundry_tui.store import Store
from foundry_tui.store.migrations import SCHEMA_VERSION
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.history import ConversationList, HistoryPanel
from tests.helpers import start_chat, wait_until, write_config
from tests.responses_server import ResponsesServer

SETTINGS = GenerationSettings(model="gpt-4o")


def conversation(store: Store, title: str, text: str, *, response_id: str | None = None) -> str:
    made = store.create_conversation(profile="local", settings=SETTINGS, title=title)
    store.add_message(
        conversation_id=made.id, role=MessageRole.USER, text=text, status=MessageStatus.COMPLETED
    )
    store.add_message(
        conversation_id=made.id,
        role=MessageRole.ASSISTANT,
        text=f"answer to {text}",
        status=MessageStatus.COMPLETED,
        response_id=response_id,
    )
    return made.id


def ids(store: Store, **options: object) -> list[str]:
    return [summary.id for summary in store.list_conversations(**options)]  # type: ignore[arg-type]


# -- the store ---------------------------------------------------------------------------


def test_m005_adds_archived_at_and_an_index_for_each_list(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(conversations)")}
        indexes = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'conversations'"
            )
        }
        plans = [
            " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in (
                "SELECT id FROM conversations WHERE archived_at IS NULL "
                "ORDER BY updated_at DESC, seq DESC LIMIT 50",
                "SELECT id FROM conversations WHERE archived_at IS NOT NULL "
                "ORDER BY updated_at DESC, seq DESC LIMIT 50",
            )
        ]
    finally:
        conn.close()
    assert "archived_at" in columns
    assert "WHERE archived_at IS NULL" in indexes["conversations_listed"]
    assert "WHERE archived_at IS NOT NULL" in indexes["conversations_archived"]
    # Each list walks its own index in order: no sort of the table, no scan of the other.
    assert "conversations_listed" in plans[0] and "TEMP B-TREE" not in plans[0]
    assert "conversations_archived" in plans[1] and "TEMP B-TREE" not in plans[1]
    assert SCHEMA_VERSION == 5


def test_archive_hides_from_the_list_keeps_everything_and_restore_brings_it_back(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path / "history.db") as store:
        old = conversation(store, "old", "kubernetes pods")
        kept = conversation(store, "kept", "kubernetes nodes")
        store.archive_conversation(old)
        assert ids(store) == [kept]
        assert ids(store, archived=True) == [old]
        assert store.is_archived(old) and not store.is_archived(kept)
        # Search finds it in the archived list only.
        assert ids(store, search="kubernetes") == [kept]
        assert ids(store, search="kubernetes", archived=True) == [old]
        assert ids(store, search="pods") == []
        assert ids(store, search="pods", archived=True) == [old]
        # Nothing of it was deleted.
        assert [m.text for m in store.transcript(old)] == [
            "kubernetes pods",
            "answer to kubernetes pods",
        ]
        store.restore_conversation(old)
        assert set(ids(store)) == {old, kept} and ids(store, archived=True) == []
        assert not store.is_archived(old)
        store.archive_conversation("does-not-exist")  # no-op, as rename is


def test_archived_hits_do_not_use_up_the_search_limit(tmp_path: Path) -> None:
    with Store.open(tmp_path / "history.db") as store:
        live = conversation(store, "live", "zebra")
        for n in range(5):
            store.archive_conversation(conversation(store, f"a{n}", "zebra"))
        # The five newest hits are archived: the listed one is still found with limit 1.
        assert ids(store, search="zebra", limit=1) == [live]
        assert len(ids(store, search="zebra", limit=10, archived=True)) == 5


def test_response_ids_of_every_branch_once(tmp_path: Path) -> None:
    with Store.open(tmp_path / "history.db") as store:
        cid = conversation(store, "t", "q", response_id="resp_a")
        first = store.transcript(cid)[0]
        store.add_message(
            conversation_id=cid,
            role=MessageRole.ASSISTANT,
            text="another answer",
            status=MessageStatus.COMPLETED,
            response_id="resp_b",
            parent_id=first.id,
        )
        store.add_message(
            conversation_id=cid,
            role=MessageRole.ASSISTANT,
            text="a failed one",
            status=MessageStatus.FAILED,
            parent_id=first.id,
        )
        other = conversation(store, "o", "q", response_id="resp_other")
        assert store.response_ids(cid) == ["resp_a", "resp_b"]
        assert store.response_ids(other) == ["resp_other"]


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> list[str]:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    return ["--config", str(config.path), "--db", str(tmp_path / "history.db")]


def test_history_archived_lists_them_and_json_says_so(
    tmp_path: Path, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(tmp_path / "history.db") as store:
        old = conversation(store, "old one", "x", response_id="resp_old")
        kept = conversation(store, "kept one", "y")
        store.archive_conversation(old)
    assert history_command.main(["--json", *cli]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(row["id"], row["archived"]) for row in listed] == [(kept, False)]
    assert history_command.main(["--json", "--archived", *cli]) == 0
    archived = json.loads(capsys.readouterr().out)
    assert [(row["id"], row["title"], row["archived"]) for row in archived] == [
        (old, "old one", True)
    ]
    assert history_command.main(["--archived", *cli]) == 0
    table = capsys.readouterr().out
    assert old in table and kept not in table


def test_history_archive_and_restore_by_id_or_response_id(
    tmp_path: Path, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(tmp_path / "history.db") as store:
        cid = conversation(store, "to archive \x1b]0;pwned\x07", "x", response_id="resp_1")
    assert history_command.main(["archive", cid, *cli]) == 0
    said = capsys.readouterr().err
    assert said.startswith(f"Archived {cid}") and "\x1b" not in said and "\x07" not in said
    with Store.open(tmp_path / "history.db") as store:
        assert ids(store, archived=True) == [cid]
    assert history_command.main(["restore", "resp_1", *cli]) == 0
    assert capsys.readouterr().err.startswith(f"Restored {cid}")
    with Store.open(tmp_path / "history.db") as store:
        assert ids(store) == [cid] and ids(store, archived=True) == []
    assert history_command.main(["archive", "nope", *cli]) == 2
    assert "no saved conversation or response has the id nope" in capsys.readouterr().err


def test_history_archive_without_a_database_is_a_usage_error(
    tmp_path: Path, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert history_command.main(["restore", "abc", *cli]) == 2
    assert "no history database yet" in capsys.readouterr().err
    assert not (tmp_path / "history.db").exists()


# -- the TUI -------------------------------------------------------------------------------


async def test_history_keys_archive_show_archived_search_and_restore(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    with Store.open(config.db_path) as store:
        older = conversation(store, "older", "alpha words")
        newer = conversation(store, "newer", "beta words")
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        panel = screen.query_one(HistoryPanel)
        history = screen.query_one(ConversationList)

        def listed() -> list[str | None]:
            return [history.get_option_at_index(i).id for i in range(history.option_count)]

        await wait_until(pilot, lambda: listed() == [newer, older], what="both listed")
        history.focus()
        history.highlighted = 0
        await pilot.press("a")  # archive the newer one
        await wait_until(pilot, lambda: listed() == [older], what="archived")
        with Store.open(config.db_path) as store:
            assert ids(store, archived=True) == [newer]
        await pilot.press("v")  # the archived list
        await wait_until(pilot, lambda: listed() == [newer], what="the archived list")
        assert panel.showing_archived
        await pilot.press("shift+tab")  # the filter searches the archived ones
        await pilot.press(*"alpha")
        await wait_until(pilot, lambda: listed() == [None], what="no archived alpha")
        filter_ = screen.query_one("#history-filter")
        filter_.value = "beta"  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: listed() == [newer], what="archived beta")
        history.focus()
        history.highlighted = 0
        await pilot.press("a")  # in the archived list, a restores
        await wait_until(pilot, lambda: listed() == [None], what="restored")
        filter_.value = ""  # type: ignore[attr-defined]
        await pilot.press("v")  # back to the conversations
        await wait_until(pilot, lambda: listed() == [newer, older], what="both again")
    with Store.open(config.db_path) as store:
        assert ids(store, archived=True) == []


async def test_palette_archives_the_open_conversation_and_restores_it(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from foundry_tui.ui.screens.archive import (
        ARCHIVE_TITLE,
        RESTORE_TITLE,
        SHOW_ARCHIVED_TITLE,
        SHOW_LISTED_TITLE,
        archive_commands,
    )

    config = write_config(tmp_path, server.base_url)
    with Store.open(config.db_path) as store:
        cid = conversation(store, "open me", "gamma")
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        history = screen.query_one(ConversationList)

        def titles() -> list[str]:
            return [command.title for command in archive_commands(screen)]

        assert titles() == [SHOW_ARCHIVED_TITLE]  # nothing open: nothing to archive
        screen.open_conversation(cid)
        await wait_until(pilot, lambda: ARCHIVE_TITLE in titles(), what="archive offered")
        # The palette offers them (the app adds the chat screen's palette commands).
        [archive] = [c for c in app.get_system_commands(screen) if c.title == ARCHIVE_TITLE]
        archive.callback()
        await wait_until(pilot, lambda: RESTORE_TITLE in titles(), what="restore offered")
        await wait_until(pilot, lambda: history.get_option_at_index(0).id is None, what="gone")
        [show] = [c for c in archive_commands(screen) if c.title == SHOW_ARCHIVED_TITLE]
        show.callback()
        await wait_until(pilot, lambda: history.get_option_at_index(0).id == cid)
        assert history.has_focus and SHOW_LISTED_TITLE in titles()
        [restore] = [c for c in archive_commands(screen) if c.title == RESTORE_TITLE]
        restore.callback()
        await wait_until(pilot, lambda: ARCHIVE_TITLE in titles(), what="archive again")
    with Store.open(config.db_path) as store:
        assert ids(store) == [cid]
