"""Files copied in for prompts that were never saved do not stay for ever: a kept file no
prompt names, and a copy's temporary file, are swept a day after they were last written
(when the app opens the history); a file a prompt names never is, nor a recent one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus, StorageError
from foundry_tui.store import UNLINKED_FILE_AGE, Store
from foundry_tui.store.files import folder_for
from foundry_tui.ui.app import make_app
from tests.helpers import wait_until, write_config
from tests.test_attachments import PNG, attach

DAY_AND_A_BIT = UNLINKED_FILE_AGE + 3600


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def prompt_with(store: Store, kept: object) -> None:
    conversation = store.create_conversation(
        profile="local", settings=GenerationSettings(model="gpt-4o")
    )
    store.add_message(
        conversation_id=conversation.id,
        role=MessageRole.USER,
        text="look",
        status=MessageStatus.COMPLETED,
        attachments=[kept],  # type: ignore[list-item]
    )


def test_old_files_no_prompt_names_are_swept_and_the_rest_stay(tmp_path: Path) -> None:
    with Store.open(tmp_path / "h.db") as store:
        named = store.keep_attachment(attach(tmp_path, "named.png", PNG))
        prompt_with(store, named)
        orphan = store.keep_attachment(attach(tmp_path, "orphan.png", PNG + b"1"))
        recent = store.keep_attachment(attach(tmp_path, "recent.png", PNG + b"2"))
        leftover = store.files.root / ".incoming-abc123"
        leftover.write_bytes(b"half a copy")
        fresh_leftover = store.files.root / ".incoming-def456"
        fresh_leftover.write_bytes(b"a copy going on")
        for sha256 in (named.sha256, orphan.sha256):
            age(store.files.path_of(sha256), DAY_AND_A_BIT)
        age(leftover, DAY_AND_A_BIT)

        assert store.sweep_unlinked_files() == 2

        assert not store.files.path_of(orphan.sha256).exists()
        assert not leftover.exists()
        assert store.files.read(named.sha256) == PNG
        assert store.files.path_of(recent.sha256).exists()
        assert fresh_leftover.exists()
        assert store.sweep_unlinked_files() == 0


def test_a_prompt_that_could_not_be_saved_leaves_a_file_that_is_swept_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(tmp_path / "h.db") as store:
        kept = store.keep_attachment(attach(tmp_path, "chart.png", PNG))

        def disk_full(**_: object) -> None:
            raise StorageError("Could not write to h.db: the disk is full.")

        monkeypatch.setattr(store, "add_message", disk_full)
        with pytest.raises(StorageError):
            prompt_with(store, kept)
        path = store.files.path_of(kept.sha256)
        assert store.sweep_unlinked_files() == 0  # it may be about to be named
        age(path, DAY_AND_A_BIT)
        assert store.sweep_unlinked_files() == 1
        assert not path.exists()


def test_keeping_the_same_bytes_again_makes_an_old_unnamed_file_recent(tmp_path: Path) -> None:
    """Attached again, an orphan is about to be named: the sweep must not take it from
    under the prompt being saved."""
    with Store.open(tmp_path / "h.db") as store:
        kept = store.keep_attachment(attach(tmp_path, "chart.png", PNG))
        age(store.files.path_of(kept.sha256), DAY_AND_A_BIT)
        store.keep_attachment(attach(tmp_path, "again.png", PNG))
        assert store.sweep_unlinked_files() == 0
        assert store.files.read(kept.sha256) == PNG


def test_no_attachments_folder_is_nothing_to_sweep(tmp_path: Path) -> None:
    with Store.open(tmp_path / "h.db") as store:
        assert not folder_for(tmp_path / "h.db").exists()
        assert store.sweep_unlinked_files() == 0


async def test_the_app_sweeps_when_it_opens_the_history(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    with Store.open(config.db_path) as store:
        orphan = store.keep_attachment(attach(tmp_path, "orphan.png", PNG))
        path = store.files.path_of(orphan.sha256)
    age(path, DAY_AND_A_BIT)
    app = make_app(config)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: not path.exists(), what="the old file swept")
