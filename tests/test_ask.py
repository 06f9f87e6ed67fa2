"""`foundry-tui ask` and `foundry-tui history` end to end: the real command in a subprocess
(`python -m foundry_tui`) against the local Responses server, with its own HOME and a
config written by `write_config`; what it saved is read back through the `Store`, the way
the TUI's history reads it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus
from foundry_tui.core.turns import CONTINUE_PROMPT
from foundry_tui.store import Store
from tests.gateway_server import GatewayServer
from tests.helpers import KEY_VARIABLE, TEST_KEY, write_config
from tests.responses_server import Fault, ResponsesServer

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "safe \x1b]0;pwned\x07title \x1b[2Jwiped \x9b31mred\x07 \x1b]52;c;Y2xpcA==\x07end"


@pytest.fixture
def env(tmp_path: Path, server: ResponsesServer) -> dict[str, str]:
    """The environment of a user whose config points at the test server."""
    write_config(tmp_path, server.base_url)
    home = tmp_path / "home"
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "FOUNDRY_TUI_CONFIG": str(tmp_path / "config.toml"),
        "FOUNDRY_TUI_DB": str(tmp_path / "history.db"),
        KEY_VARIABLE: TEST_KEY,
    }


def run(
    env: dict[str, str], *args: str, stdin: str | None = None, command: str = "ask"
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "foundry_tui", command, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result


def store_of(env: dict[str, str]) -> Store:
    return Store.open(Path(env["FOUNDRY_TUI_DB"]))


def no_terminal_controls(text: str) -> bool:
    return not any(ch in text for ch in "\x1b\x07\x9b\x9d\x90")


def test_ask_streams_the_reply_and_saves_the_turn_in_the_history(
    env: dict[str, str], server: ResponsesServer
) -> None:
    result = run(env, "hello there")
    assert (result.returncode, result.stdout, result.stderr) == (0, "You said: hello there\n", "")
    with store_of(env) as store:
        listed = store.list_conversations()  # what the TUI's history list shows
        assert [c.title for c in listed] == ["hello there"]
        user, reply = store.transcript(listed[0].id)
    assert (user.role, user.text) == (MessageRole.USER, "hello there")
    assert (reply.status, reply.text) == (MessageStatus.COMPLETED, "You said: hello there")
    assert reply.response_id and reply.usage.output_tokens
    # What the lean transport sent: the SDK's body, each input item valid for the API.
    (body,) = server.created()
    assert body["stream"] is True and body["store"] is True and body["model"] == "gpt-4o"
    assert body["instructions"] == "Answer briefly."
    assert server.validator is not None
    for item in body["input"]:
        assert server.validator.errors("EasyInputMessage", item) == []
    assert server.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert server.schema_errors == []


def test_stdin_comes_first_as_context_for_the_argument(
    env: dict[str, str], server: ResponsesServer
) -> None:
    result = run(env, "review this", stdin="diff --git a/x b/x\n+added\n")
    assert result.returncode == 0, result.stderr
    (body,) = server.created()
    assert body["input"][-1]["content"] == "diff --git a/x b/x\n+added\n\nreview this"
    only_stdin = run(env, stdin="just the pipe\n")
    assert only_stdin.stdout == "You said: just the pipe\n"


def test_json_lines_one_object_per_event_and_one_result_without_streaming(
    env: dict[str, str], server: ResponsesServer
) -> None:
    server.queue_reply("alpha beta gamma")
    lines = [json.loads(line) for line in run(env, "--json", "q").stdout.splitlines()]
    kinds = [line["type"] for line in lines]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert set(kinds[1:-1]) == {"delta"} and len(kinds) > 3
    assert "".join(line["text"] for line in lines[1:-1]) == "alpha beta gamma"
    finished = lines[-1]
    assert finished["status"] == "completed" and finished["mode"] == "new"
    assert finished["conversation_id"] == lines[0]["conversation_id"]

    result = run(env, "--json", "--no-stream", "again")
    (line,) = result.stdout.splitlines()
    answer = json.loads(line)
    assert answer["text"] == "You said: again" and answer["status"] == "completed"
    assert answer["usage"]["output_tokens"] == 3


def test_continue_and_resume_chain_with_previous_response_id(
    env: dict[str, str], server: ResponsesServer
) -> None:
    first = json.loads(run(env, "--json", "--no-stream", "one").stdout)
    other = json.loads(run(env, "--json", "--no-stream", "other").stdout)
    latest = json.loads(run(env, "--json", "--no-stream", "-c", "two").stdout)
    chosen = run(env, "--json", "--no-stream", "--continue", first["conversation_id"], "three")
    resumed = run(env, "--json", "--no-stream", "--resume", first["response_id"], "four")
    bodies = server.created()
    # -c alone: the latest conversation ("other"); an id: that one; --resume: by response id.
    assert bodies[2]["previous_response_id"] == other["response_id"]
    assert latest["conversation_id"] == other["conversation_id"] and latest["mode"] == "chain"
    assert bodies[3]["previous_response_id"] == first["response_id"]
    assert json.loads(chosen.stdout)["conversation_id"] == first["conversation_id"]
    assert bodies[4]["previous_response_id"] == json.loads(chosen.stdout)["response_id"]
    assert json.loads(resumed.stdout)["conversation_id"] == first["conversation_id"]
    assert [b["input"] for b in bodies[2:]] == [
        [{"type": "message", "role": "user", "content": text}] for text in ("two", "three", "four")
    ]


def test_flags_set_the_turn_and_are_kept_with_the_conversation(
    env: dict[str, str], server: ResponsesServer
) -> None:
    args = ("--model", "gpt-4o-mini", "--temperature", "0.5", "--top-p", "0.9")
    more = ("--max-output-tokens", "2", "--instructions", "Be terse.", "long question here")
    result = run(env, "--json", "--no-stream", *args, *more)
    answer = json.loads(result.stdout)
    (body,) = server.created()
    assert (body["model"], body["temperature"], body["top_p"]) == ("gpt-4o-mini", 0.5, 0.9)
    assert (body["max_output_tokens"], body["instructions"]) == (2, "Be terse.")
    # Cut off at 2 tokens: done (exit 0), the note on stderr.
    assert (result.returncode, answer["status"]) == (0, "incomplete")
    assert "max output tokens" in result.stderr
    with store_of(env) as store:
        saved = store.get_conversation(answer["conversation_id"])
    assert saved is not None and saved.settings.model == "gpt-4o-mini"
    assert saved.settings.temperature == 0.5


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        ((), "no prompt"),
        (("--temperature", "3", "hi"), "--temperature"),
        (("--continue", "nosuchid", "hi"), "nosuchid"),
        (("--profile", "missing", "hi"), "missing"),
        (("--bogus", "hi"), "unrecognized arguments"),
    ],
)
def test_usage_and_config_errors_exit_2_and_send_nothing(
    env: dict[str, str], server: ResponsesServer, args: tuple[str, ...], stderr: str
) -> None:
    result = run(env, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert stderr in result.stderr and "Traceback" not in result.stderr
    assert server.created() == []


def test_a_missing_key_is_a_config_error(env: dict[str, str], server: ResponsesServer) -> None:
    result = run({**env, KEY_VARIABLE: ""}, "hi")
    assert result.returncode == 2 and "No API key" in result.stderr
    assert server.created() == []


def test_server_and_model_failures_exit_1_with_the_explanation(
    env: dict[str, str], server: ResponsesServer
) -> None:
    server.inject(Fault.UNAUTHORIZED)
    refused = run(env, "hi")
    assert refused.returncode == 1 and "Not authorized (401)" in refused.stderr
    assert TEST_KEY not in refused.stderr
    server.inject(Fault.FAILED, after_deltas=2)
    failed = run(env, "hi there friend")
    assert failed.returncode == 1 and failed.stdout == "You said: \n"
    assert "failed to generate" in failed.stderr
    with store_of(env) as store:
        newest = store.list_conversations(limit=1)[0]
        assert store.transcript(newest.id)[-1].status is MessageStatus.FAILED


def test_retries_a_rate_limit_saying_so_on_stderr(
    env: dict[str, str], server: ResponsesServer
) -> None:
    server.inject(Fault.RATE_LIMIT, retry_after="0")
    result = run(env, "--json", "hi")
    assert result.returncode == 0
    assert "rate limited; trying again" in result.stderr
    kinds = [json.loads(line)["type"] for line in result.stdout.splitlines()]
    assert kinds[:3] == ["started", "retrying", "answered"]
    assert len(server.created()) == 2


@pytest.mark.parametrize(
    ("signum", "exit_code", "said"),
    [
        (signal.SIGINT, 130, b"interrupted"),  # Ctrl+C
        (signal.SIGTERM, 143, b"terminated"),  # kill, a supervisor stopping the job
        (signal.SIGHUP, 129, b"hung up"),  # the terminal or the SSH session closed
    ],
)
def test_a_signal_mid_reply_saves_the_partial_reply_as_cancelled_and_exits_128_plus_it(
    env: dict[str, str], server: ResponsesServer, signum: int, exit_code: int, said: bytes
) -> None:
    server.tokens_per_second = 20
    server.queue_reply(" ".join(f"word{i}" for i in range(200)))
    process = subprocess.Popen(
        [sys.executable, "-m", "foundry_tui", "ask", "talk"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # what read() takes is not kept from communicate()
    )
    assert process.stdout is not None
    shown = process.stdout.read(12)  # the reply is streaming
    process.send_signal(signum)
    rest, stderr = process.communicate(timeout=30)
    assert process.returncode == exit_code, stderr
    assert said + b": the partial reply is saved as cancelled" in stderr
    with store_of(env) as store:
        reply = store.transcript(store.list_conversations()[0].id)[-1]
    assert reply.status is MessageStatus.CANCELLED
    assert reply.text.startswith("word0") and len(reply.text) < 1000
    assert (shown + rest).decode().strip() == reply.text.strip()


def test_hostile_model_output_is_printed_inert(
    env: dict[str, str], server: ResponsesServer
) -> None:
    server.queue_reply(HOSTILE)
    plain = run(env, "x")
    assert plain.returncode == 0 and no_terminal_controls(plain.stdout)
    assert plain.stdout == "safe title wiped red end\n"
    server.queue_reply(HOSTILE)
    as_json = run(env, "--json", "x")
    assert no_terminal_controls(as_json.stdout)  # escaped: the script gets the text itself
    text = "".join(line.get("text", "") for line in map(json.loads, as_json.stdout.splitlines()))
    assert text == HOSTILE


@pytest.fixture
def gateway(server: ResponsesServer) -> Iterator[GatewayServer]:
    with GatewayServer(server) as running:
        yield running


def test_errors_rewrapped_by_a_gateway_are_explained(
    tmp_path: Path, env: dict[str, str], server: ResponsesServer, gateway: GatewayServer
) -> None:
    config = tmp_path / "gateway"
    config.mkdir()
    write_config(config, gateway.base_url)
    through = {**env, "FOUNDRY_TUI_CONFIG": str(config / "config.toml")}
    server.inject(Fault.CONTENT_FILTER)
    blocked = run(through, "hi")
    assert blocked.returncode == 1
    assert "blocked by the content filter" in blocked.stderr and "hate" in blocked.stderr
    # A chain the gateway no longer knows (its 400, the upstream's code inside the
    # message): the transcript is replayed, as in the TUI.
    first = json.loads(run(through, "--json", "--no-stream", "one").stdout)
    server.expire_all()
    again = run(through, "--json", "--no-stream", "-c", "two")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["mode"] == "new" or "transcript" in again.stderr
    replayed = server.created()[-1]
    assert "previous_response_id" not in replayed
    assert [item["content"] for item in replayed["input"]] == ["one", first["text"], "two"]


def test_ask_imports_neither_textual_nor_rich_nor_openai(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "foundry_tui", "ask", "hi"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "You said: hi\n"
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "httpx2" in imported  # the list is read: the lean transport was imported
    assert not imported & {"textual", "rich", "openai", "azure"}, imported


def test_help_names_the_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "foundry_tui", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert "ask" in result.stdout and "history" in result.stdout


# ---------------------------------------------------------------------------
# history


def test_history_newest_first_with_turns_as_table_and_json(env: dict[str, str]) -> None:
    settings = GenerationSettings(model="gpt-4o")
    with store_of(env) as store:
        for prompts in (["first topic"], ["second topic", "more on the second"]):
            conversation = store.create_conversation(profile="local", settings=settings)
            for prompt in prompts:
                for role in (MessageRole.USER, MessageRole.ASSISTANT):
                    store.add_message(
                        conversation_id=conversation.id,
                        role=role,
                        text=prompt,
                        status=MessageStatus.COMPLETED,
                    )
        evil = store.create_conversation(
            profile="local", settings=settings, title="evil \x1b]0;owned\x07\x1b[2J title"
        )
    rows = json.loads(run(env, "--json", command="history").stdout)
    assert [(r["title"], r["turns"]) for r in rows] == [
        ("evil \x1b]0;owned\x07\x1b[2J title", 0),
        ("second topic", 2),
        ("first topic", 1),
    ]
    assert rows[0]["id"] == evil.id and rows[1]["model"] == "gpt-4o"
    table = run(env, command="history")
    assert table.returncode == 0 and no_terminal_controls(table.stdout)
    lines = table.stdout.splitlines()
    assert len(lines) == 3 and "evil" in lines[0] and "second topic" in lines[1]
    assert "2 turns" in lines[1] and "1 turn " in lines[2]
    found = json.loads(run(env, "--json", "--search", "first", command="history").stdout)
    assert [r["title"] for r in found] == ["first topic"]
    limited = json.loads(run(env, "--json", "--limit", "1", command="history").stdout)
    assert [r["id"] for r in limited] == [evil.id]


def test_history_over_a_generated_database(env: dict[str, str]) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import dbgen
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    big = dbgen.big_history_db(300, 3000)
    result = run(
        {**env, "FOUNDRY_TUI_DB": str(big.path)}, "--json", "--limit", "0", command="history"
    )
    rows = json.loads(result.stdout)
    assert len(rows) == 300 and rows[0]["title"].startswith(big.newest_tag)
    stamps = [r["updated_at"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert {r["turns"] for r in rows} == {5}  # 3000 messages: 10 per conversation


def test_history_without_a_database_is_empty_and_creates_none(env: dict[str, str]) -> None:
    result = run(env, "--json", command="history")
    assert (result.returncode, result.stdout) == (0, "[]\n")
    assert not Path(env["FOUNDRY_TUI_DB"]).exists()


@pytest.mark.xdist_group("local_model")  # one llama.cpp server at a time
def test_ask_local_answers_with_the_bundled_model(env: dict[str, str]) -> None:
    result = run(env, "--local", "--json", "--no-stream", "--max-output-tokens", "8", "Say hi")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["text"].strip() and answer["status"] in ("completed", "incomplete")
    assert answer["mode"] == "new" and answer["response_id"] is None
    with store_of(env) as store:
        (reply,) = [m for m in store.transcript(answer["conversation_id"]) if m.role == "assistant"]
    assert reply.text == answer["text"]


def test_a_cut_off_reply_says_how_to_go_on_and_that_command_continues_it(
    env: dict[str, str], server: ResponsesServer
) -> None:
    """The turn policy's remedy (the TUI's Ctrl+G) reaches the shell as the command to run."""
    cut = run(env, "--json", "--no-stream", "--max-output-tokens", "2", "long question here")
    conversation = json.loads(cut.stdout)["conversation_id"]
    hint = f'foundry-tui ask --continue {conversation} "{CONTINUE_PROMPT}"'
    assert cut.returncode == 0 and hint in cut.stderr
    went_on = run(env, "--continue", conversation, "--max-output-tokens", "200", CONTINUE_PROMPT)
    assert went_on.returncode == 0 and "--continue" not in went_on.stderr
    _first, second = server.created()
    assert second["previous_response_id"] == first_response_id(env, conversation)


def test_a_model_that_refuses_sampling_settings_is_named_with_the_fix(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reasoning model rejects temperature: exit 1, and the turn policy's remedy (the
    TUI's "resend without them") as the flags to leave out."""
    with ResponsesServer(api_key=TEST_KEY, reasoning_models=["o4-mini"]) as reasoning:
        write_config(Path(env["FOUNDRY_TUI_CONFIG"]).parent, reasoning.base_url)
        result = run(env, "--model", "o4-mini", "--temperature", "0.4", "why?")
    assert result.returncode == 1
    assert "leave out --temperature and --top-p" in result.stderr


def first_response_id(env: dict[str, str], conversation: str) -> str | None:
    with store_of(env) as store:
        replies = [m for m in store.transcript(conversation) if m.role.value == "assistant"]
    return replies[0].response_id


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
PDF = b"%PDF-1.7\n" + b"page " * 50


def test_attach_sends_images_and_pdfs_with_the_prompt(
    tmp_path: Path, env: dict[str, str], server: ResponsesServer
) -> None:
    (tmp_path / "plot.png").write_bytes(PNG)
    (tmp_path / "notes.pdf").write_bytes(PDF)
    result = run(
        env,
        "what is this?",
        "--attach",
        str(tmp_path / "plot.png"),
        "-a",
        str(tmp_path / "notes.pdf"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"You said: what is this? I see 1 image (png, {len(PNG)} bytes) and "
        f"1 file (notes.pdf, {len(PDF)} bytes).\n"
    )
    (body,) = server.created()
    assert [part["type"] for part in body["input"][0]["content"]] == [
        "input_text",
        "input_image",
        "input_file",
    ]
    with store_of(env) as store:
        [user, _] = store.transcript(store.list_conversations()[0].id)
    assert [a.name for a in user.attachments] == ["plot.png", "notes.pdf"]


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("missing.png", None, "cannot attach: missing.png: no such file."),
        ("notes.txt", b"just text", "cannot attach: notes.txt is not a PNG, JPEG, WebP or GIF"),
    ],
)
def test_a_refused_attachment_exits_2_and_sends_nothing(
    tmp_path: Path,
    env: dict[str, str],
    server: ResponsesServer,
    name: str,
    data: bytes | None,
    said: str,
) -> None:
    if data is not None:
        (tmp_path / name).write_bytes(data)
    result = run(env, "look", "--attach", str(tmp_path / name))
    assert result.returncode == 2 and result.stdout == ""
    assert said in result.stderr and "Traceback" not in result.stderr
    assert server.created() == []
    assert not Path(env["FOUNDRY_TUI_DB"]).exists()


def test_the_local_model_refuses_attachments_before_loading(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "plot.png").write_bytes(PNG)
    result = run(env, "look", "--local", "--attach", str(tmp_path / "plot.png"))
    assert result.returncode == 2 and result.stdout == ""
    assert "the local model reads text only" in result.stderr
