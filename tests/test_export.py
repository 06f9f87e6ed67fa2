"""`foundry-tui export` and `foundry-tui import`, end to end through a real subprocess
(`python -m foundry_tui`) with the test's own empty HOME and XDG dirs, over a history
built with the Store API; the document checked against its JSON Schema; a file that is
not a sound export of ours refused whole."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from foundry_tui import cli
from foundry_tui.core import transfer
from foundry_tui.core.export_files import file_name, suggested_path
from foundry_tui.core.models import (
    GenerationSettings,
    MessageRole,
    MessageStatus,
    ServerState,
    Usage,
)
from foundry_tui.store import Store
from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.test_untrusted_surfaces import FORBIDDEN, HOSTILE, HOSTILE_SHOWN, TITLE

SCHEMA = json.loads(
    (Path(transfer.__file__).parent / "export_schema.json").read_text(encoding="utf-8")
)
ENDPOINT = "https://secret-resource.openai.azure.com"
REPLY = """## Plan

1. Read the **file**
2. Count the lines

```python
def count(path: str) -> int:
    return sum(1 for _ in open(path))
```

Markup stays text: [bold]not bold[/bold]."""
CUT_OFF = "Here is the rest:\n\n```bash\nwc -l notes.txt"


def foundry(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """`python -m foundry_tui ARGS` in this test's HOME (conftest's isolated_home)."""
    return subprocess.run(
        [sys.executable, "-m", "foundry_tui", *args],
        input=stdin,
        capture_output=True,
        timeout=30,
        check=False,
        env=dict(os.environ),
    )


def build_history(db: Path) -> tuple[str, list[str]]:
    """A conversation with a reply of each kind, and a retried turn whose first attempt is
    on a branch off the path: its id and the response ids on the path, in order."""
    with Store.open(db) as store:
        conversation = store.create_conversation(
            profile="work",
            settings=GenerationSettings(
                model="gpt-4o",
                instructions="Answer briefly.",
                temperature=0.7,
                max_output_tokens=800,
            ),
        )
        cid = conversation.id

        def turn(prompt: str, text: str, status: MessageStatus, **fields: Any) -> None:
            store.add_message(
                conversation_id=cid, role=MessageRole.USER, text=prompt,
                status=MessageStatus.COMPLETED, model="gpt-4o",
            )  # fmt: skip
            reply = store.add_message(
                conversation_id=cid, role=MessageRole.ASSISTANT, text="",
                status=MessageStatus.PENDING, model="gpt-4o",
                previous_response_id=fields.pop("previous", None),
            )  # fmt: skip
            store.update_message(reply.id, text=text, status=status, **fields)

        turn(
            "How do I count lines in a file?", REPLY, MessageStatus.COMPLETED,
            response_id="resp_one", response_model="gpt-4o-2024-08-06",
            usage=Usage(25, 180, 205),
        )  # fmt: skip
        turn(
            "And in bash?", CUT_OFF, MessageStatus.INCOMPLETE, response_id="resp_two",
            previous="resp_one", usage=Usage(210, 800, 1010),
            error="The reply reached max_output_tokens.",
        )  # fmt: skip
        turn("Why?", "", MessageStatus.FAILED, error="The server failed (500).")
        # Retried: the failed reply stays on a branch; the path goes on from its prompt.
        path = store.transcript(cid)
        store.set_head(cid, path[-2].id)
        retried = store.add_message(
            conversation_id=cid, role=MessageRole.ASSISTANT, text="Because.",
            status=MessageStatus.COMPLETED, model="gpt-4o", previous_response_id="resp_two",
            response_id="resp_three",
        )  # fmt: skip
        store.update_message(retried.id, usage=Usage(1020, 3, 1023))
        turn("Say more", "Partial ans", MessageStatus.CANCELLED)
        store.set_server_state(cid, ServerState.LIVE)
    return cid, ["resp_one", "resp_two", "resp_three"]


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, str, list[str]]:
    db = tmp_path / "history.db"
    cid, response_ids = build_history(db)
    return db, cid, response_ids


@pytest.fixture
def keyed_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose profile has an endpoint and a key in the environment: neither may
    reach an export."""
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[profiles.work]\nkind = "azure"\nendpoint = "{ENDPOINT}"\n'
        f'api_key_env = "{KEY_VARIABLE}"\ndeployments = ["gpt-4o"]\n',
        encoding="utf-8",
    )
    return config


def conversations(db: Path) -> int:
    with Store.open(db) as store:
        return len(store.list_conversations())


def one_line_problem(result: subprocess.CompletedProcess[bytes]) -> str:
    """The refusal: exit 2, nothing on stdout, one line on stderr, no traceback."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("foundry-tui: "), lines
    return lines[0]


# -- export ----------------------------------------------------------------------------------


def test_markdown_reads_well_and_holds_no_secret(
    history: tuple[Path, str, list[str]], keyed_config: Path
) -> None:
    db, cid, response_ids = history
    # Any response id in the conversation finds it.
    result = foundry("export", "resp_two", "--db", str(db), "--config", str(keyed_config))
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    text = result.stdout.decode()
    front, body = text.split("\n---\n", 1)
    assert front.splitlines() == [
        "---",
        'title: "How do I count lines in a file?"',
        f'conversation_id: "{cid}"',
        'model: "gpt-4o"',
        'instructions: "Answer briefly."',
        "temperature: 0.7",
        "top_p: null",
        "max_output_tokens: 800",
        *[line for line in front.splitlines() if line.startswith(("created_at", "updated_at"))],
        "response_ids:",
        *[f'  - "{response_id}"' for response_id in response_ids],
        'exported_by: "foundry-tui 0.1.0"',
    ]
    sections = [line for line in body.splitlines() if line.startswith("## ")]
    assert [line for line in sections if line in ("## User", "## Assistant (gpt-4o)")] == [
        "## User",
        "## User",
        "## Assistant (gpt-4o)",
        "## User",
        "## Assistant (gpt-4o)",
        "## User",
        "## Assistant (gpt-4o)",
    ]
    assert "## Assistant (gpt-4o-2024-08-06)" in sections  # what the server said wrote it
    assert body.startswith("\n# How do I count lines in a file?\n\n## User\n")
    assert f"\n{REPLY}\n\n## User\n" in body  # the model's Markdown as it wrote it
    assert "> *Incomplete: the reply stopped early. The reply reached max_output_tokens.*" in body
    assert f"\n{CUT_OFF}\n```\n" in body  # the cut-off code block closed
    assert "> *Cancelled: stopped before the end; the text so far is kept.*\n\nPartial ans" in body
    assert "Because." in body and "The server failed" not in body  # the branch retried away
    assert TEST_KEY not in text and "secret-resource" not in text


def test_json_to_a_file_is_private_complete_and_valid(
    history: tuple[Path, str, list[str]], keyed_config: Path, tmp_path: Path
) -> None:
    db, cid, response_ids = history
    out = tmp_path / "out" / "chat.json"
    out.parent.mkdir()
    out.write_text("an older export", encoding="utf-8")
    out.chmod(0o644)
    result = foundry(
        "export", cid, "--format", "json", "-o", str(out), "--db", str(db),
        "--config", str(keyed_config),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"" and result.stderr == b""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["chat.json"]  # no temporary left
    raw = out.read_text(encoding="utf-8")
    assert TEST_KEY not in raw and "secret-resource" not in raw
    data = json.loads(raw)
    Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(data)
    assert (data["format"], data["version"]) == ("foundry-tui.conversation", 2)
    conversation = data["conversation"]
    assert conversation["id"] == cid and conversation["server_state"] == "live"
    assert conversation["settings"] == {
        "model": "gpt-4o",
        "instructions": "Answer briefly.",
        "temperature": 0.7,
        "top_p": None,
        "max_output_tokens": 800,
        "reasoning_effort": None,
        "reasoning_summary": None,
        "verbosity": None,
    }
    # Every branch is in it (a parent before its children); the path is the head's line.
    by_id: dict[str, dict[str, Any]] = {}
    for message in data["messages"]:
        assert message["parent_id"] is None or message["parent_id"] in by_id
        by_id[message["id"]] = message
    messages: list[dict[str, Any]] = []
    current = conversation["head_message_id"]
    while current is not None:
        messages.insert(0, by_id[current])
        current = by_id[current]["parent_id"]
    off_path = [m for m in data["messages"] if m not in messages]
    assert [(m["status"], m["error"]) for m in off_path] == [("failed", "The server failed (500).")]
    assert off_path[0]["parent_id"] == messages[4]["id"]  # beside its retry
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4
    assert [m["status"] for m in messages[1::2]] == [
        "completed",
        "incomplete",
        "completed",
        "cancelled",
    ]
    assert [m["response_id"] for m in messages[1::2]] == [*response_ids, None]
    assert messages[3]["previous_response_id"] == "resp_one"
    assert messages[1]["usage"] == {
        "input_tokens": 25,
        "output_tokens": 180,
        "total_tokens": 205,
        "cached_input_tokens": None,
        "reasoning_tokens": None,
    }
    assert messages[1]["text"] == REPLY and messages[1]["response_model"] == "gpt-4o-2024-08-06"
    assert messages[3]["error"] == "The reply reached max_output_tokens."
    assert conversation["head_message_id"] == messages[-1]["id"]
    assert all(m["parent_id"] == p["id"] for p, m in pairwise(messages))


def test_an_unknown_id_is_refused(history: tuple[Path, str, list[str]]) -> None:
    db, _cid, _ids = history
    line = one_line_problem(foundry("export", "resp_nowhere", "--db", str(db)))
    assert "resp_nowhere" in line


def test_no_history_yet_is_refused_and_not_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none" / "history.db"
    assert cli.main(["export", "x", "--db", str(missing), "-o", str(tmp_path / "x")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not missing.parent.exists() and not (tmp_path / "x").exists()


def test_output_to_a_folder_that_is_not_there_is_refused(
    history: tuple[Path, str, list[str]], tmp_path: Path
) -> None:
    db, cid, _ids = history
    code = cli.main(["export", cid, "--db", str(db), "-o", str(tmp_path / "no" / "chat.md")])
    assert code == 2 and not (tmp_path / "no").exists()
    assert cli.main(["export", cid, "--db", str(db), "-o", str(tmp_path)]) == 2  # a folder


def test_exports_printed_to_a_terminal_are_inert(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """A title and texts full of escape sequences: the Markdown leaves them out, the JSON
    writes them as \\u escapes, which decode to exactly what was saved."""
    db = tmp_path / "history.db"
    with Store.open(db) as store:
        conversation = store.create_conversation(
            profile="p", settings=GenerationSettings(model="m"), title=TITLE
        )
        store.add_message(
            conversation_id=conversation.id, role=MessageRole.USER,
            text=HOSTILE.replace("\ud800", ""), status=MessageStatus.COMPLETED,
        )  # fmt: skip
    assert cli.main(["export", conversation.id, "--db", str(db)]) == 0
    md = capsysbinary.readouterr().out
    assert (
        cli.main(["export", conversation.id, "--db", str(db), "--format", "json", "-o", "-"]) == 0
    )
    js = capsysbinary.readouterr().out
    for output in (md, js):
        for sequence in FORBIDDEN:
            assert sequence not in output, sequence
    assert HOSTILE_SHOWN.replace("\ufffd", "") in md.decode()
    data = json.loads(js)
    assert data["conversation"]["title"] == TITLE
    assert data["messages"][0]["text"] == HOSTILE.replace("\ud800", "")


# -- import ------------------------------------------------------------------------------------


def test_export_import_export_gives_the_same_document(
    history: tuple[Path, str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, cid, _ids = history
    first = foundry("export", cid, "--format", "json", "--db", str(db))
    other = tmp_path / "other.db"  # created by the import
    imported = foundry("import", "-", "--db", str(other), stdin=first.stdout)
    assert imported.returncode == 0, imported.stderr
    new_id = imported.stdout.decode().strip()
    assert new_id != cid and "imported" in imported.stderr.decode()
    assert cli.main(["export", new_id, "--format", "json", "--db", str(other)]) == 0
    again = capsys.readouterr().out
    before, after = json.loads(first.stdout), json.loads(again)
    assert after["conversation"]["id"] == new_id
    # Only the local ids differ: replaced consistently, they give the same document.
    old_ids = [before["conversation"]["id"], *(m["id"] for m in before["messages"])]
    new_ids = [after["conversation"]["id"], *(m["id"] for m in after["messages"])]
    assert not set(old_ids) & set(new_ids)
    renamed = again
    for old, new in zip(old_ids, new_ids, strict=True):
        renamed = renamed.replace(new, old)
    assert renamed == first.stdout.decode()
    with Store.open(other) as store:  # the response ids lead to it: it can chain on
        found = store.find_conversation_by_response_id("resp_three")
    assert found is not None and found.id == new_id


def document() -> dict[str, Any]:
    return {
        "format": "foundry-tui.conversation",
        "version": 2,
        "exported_by": "foundry-tui 0.1.0",
        "conversation": {
            "id": "c1",
            "title": "A title",
            "profile": "work",
            "created_at": "2026-12-06T05:01:10.011735+00:00",
            "updated_at": "2026-12-06T05:01:11.011735+00:00",
            "server_state": "unknown",
            "head_message_id": "m2",
            "settings": {
                "model": "gpt-4o",
                "instructions": None,
                "temperature": None,
                "top_p": None,
                "max_output_tokens": None,
                "reasoning_effort": None,
                "reasoning_summary": None,
                "verbosity": None,
            },
        },
        "attachments": [],
        "messages": [
            message("m1", None, "user", "Hello"),
            message("m2", "m1", "assistant", "Hi"),
        ],
    }


def message(mid: str, parent: str | None, role: str, text: str) -> dict[str, Any]:
    return {
        "id": mid,
        "parent_id": parent,
        "role": role,
        "status": "completed",
        "created_at": "2026-12-06T05:01:10.5+00:00",
        "model": "gpt-4o",
        "response_model": None,
        "response_id": "resp_x" if role == "assistant" else None,
        "previous_response_id": None,
        "usage": {
            "input_tokens": None,
            "output_tokens": None,
            "total_tokens": None,
            "cached_input_tokens": None,
            "reasoning_tokens": None,
        },
        "first_token_ms": None,
        "duration_ms": None,
        "error": None,
        "text": text,
        "reasoning": "",
        "attachments": [],
    }


def changed(path: str, value: Any) -> bytes:
    data = document()
    *parents, last = path.split(".")
    target: Any = data
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return json.dumps(data).encode()


_DELETE = object()

# Refused by the importer; the schema cannot say these (references, times, NaN, surrogates).
BEYOND_THE_SCHEMA = {
    "parent not earlier", "head not a message", "not a time", "NaN", "lone surrogate"
}  # fmt: skip
REFUSED: dict[str, tuple[bytes, str]] = {
    "not json": (b"# a Markdown export\n", "not valid JSON"),
    "not utf-8": (b"\xff\xfe{}", "not UTF-8"),
    "another program's json": (b'{"messages": []}', "not a foundry-tui conversation export"),
    "a list": (b"[1, 2]", "not a foundry-tui conversation export"),
    "newer version": (changed("version", 3), "newer foundry-tui"),
    "version as text": (changed("version", "1"), '"version"'),
    "unknown status": (changed("messages.1.status", "exploded"), "messages[1].status"),
    "unknown role": (changed("messages.0.role", "system"), "messages[0].role"),
    "parent not earlier": (changed("messages.0.parent_id", "m2"), "messages[0].parent_id"),
    "head not a message": (changed("conversation.head_message_id", "m9"), "head_message_id"),
    "missing key": (changed("conversation.title", _DELETE), '"title"'),
    "unknown key": (changed("conversation.endpoint", "https://x"), "unknown key"),
    "text not a string": (changed("messages.0.text", ["a"]), "messages[0].text"),
    "token count past 64 bits": (changed("messages.1.usage.total_tokens", 2**64), "out of range"),
    "negative token count": (changed("messages.1.usage.input_tokens", -1), "out of range"),
    "temperature as a bool": (changed("conversation.settings.temperature", True), "number"),
    "not a time": (changed("conversation.updated_at", "yesterday"), "ISO 8601"),
    "id too long": (changed("messages.1.response_id", "r" * 300), "256"),
    "NaN": (
        json.dumps(document()).replace('"temperature": null', '"temperature": NaN').encode(),
        "NaN",
    ),
    "lone surrogate": (json.dumps(document()).replace("Hello", "\\ud800").encode(), "surrogate"),
    "nested too deep": (b"[" * 100_000 + b"]" * 100_000, "not a foundry-tui"),
    "a number too long": (b'{"format": 1' + b"0" * 5_000 + b"}", "number too long"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_import_refuses_what_is_not_a_sound_export(name: str) -> None:
    data, expected = REFUSED[name]
    with pytest.raises(transfer.TransferError) as refused:
        transfer.parse(data)
    assert expected in str(refused.value) and "\n" not in str(refused.value)
    if name.startswith(("not ", "nested", "a number")) or name in BEYOND_THE_SCHEMA:
        return
    # The schema refuses it too: the importer and the documented shape agree.
    assert not Draft202012Validator(SCHEMA).is_valid(json.loads(data))


def test_a_refused_import_says_why_in_one_line_and_saves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "history.db"
    with Store.open(db) as store:
        store.create_conversation(profile="p", settings=GenerationSettings(model="m"))
    file = tmp_path / "in.json"
    file.write_bytes(REFUSED["parent not earlier"][0])
    assert cli.main(["import", str(file), "--db", str(db)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"foundry-tui: cannot import {file}: it is not a sound foundry-tui export: "
        "messages[0].parent_id names no earlier message.\n"
    )
    assert conversations(db) == 1  # nothing saved
    assert cli.main(["import", str(tmp_path / "none.json"), "--db", str(db)]) == 2
    assert "none.json: there is no such file" in capsys.readouterr().err


def test_a_sound_document_is_valid_and_imported(tmp_path: Path) -> None:
    data = document()
    data["messages"][1]["status"] = "pending"  # streaming when it was exported
    Draft202012Validator(SCHEMA).validate(data)
    with Store.open(tmp_path / "h.db") as store:
        saved = transfer.save_imported(store, transfer.parse(json.dumps(data).encode()))
        messages = store.transcript(saved.id)
    assert [m.text for m in messages] == ["Hello", "Hi"]
    assert messages[1].parent_id == messages[0].id and messages[1].response_id == "resp_x"
    assert messages[1].status == MessageStatus.INTERRUPTED  # it streams nowhere now
    assert saved.title == "A title" and saved.updated_at == data["conversation"]["updated_at"]


def test_the_store_saves_a_whole_conversation_or_nothing(tmp_path: Path) -> None:
    exported = transfer.parse(json.dumps(document()).encode())
    first, second = exported.messages
    with Store.open(tmp_path / "h.db") as store:
        with pytest.raises(ValueError, match="before its parent"):
            store.import_conversation(exported.conversation, [second, first])
        with pytest.raises(sqlite3.IntegrityError):  # the same id twice: the 2nd insert fails
            store.import_conversation(exported.conversation, [first, first, second])
        assert store.list_conversations() == []


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(transfer.MAX_IMPORT_BYTES + 1)  # sparse: nothing to write
    db = tmp_path / "history.db"
    line = one_line_problem(foundry("import", str(huge), "--db", str(db)))
    assert "400 MB" in line
    assert not db.exists()  # nothing written, not even an empty history


def test_a_file_name_from_any_title(tmp_path: Path, isolated_home: Path) -> None:
    assert file_name(TITLE) == "title-b-t-b-end"  # the escape sequences' payloads gone too
    assert file_name("../../etc/passwd") == "etc-passwd"
    assert file_name("…") == "conversation"
    assert suggested_path("Plan", "md") == isolated_home / "plan.md"  # no Downloads: home
    downloads = isolated_home / "Downloads"
    downloads.mkdir()
    (downloads / "plan.json").touch()
    assert suggested_path("Plan", "json") == downloads / "plan-2.json"
