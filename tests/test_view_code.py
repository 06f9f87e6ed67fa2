""" "View code" without a terminal: the code core/request_code.py writes for each kind of
profile, read back (the Python run with a stand-in SDK, the curl run with a stand-in curl)
to the very body it was given; then the real thing: the generated script run with the real
SDK, and the generated curl, against the local server, sending what the app then sends."""

from __future__ import annotations

import ast
import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.backend.request_code import code_for
from foundry_tui.core.models import (
    AuthMethod,
    EndpointKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    Profile,
)
from foundry_tui.core.request_code import (
    ARGUMENT_LIMIT,
    SHOWN_STRING_LIMIT,
    RequestCode,
    RequestTarget,
    write_code,
)
from foundry_tui.core.session import ChatSession, NextRequest, SendMode, first_request
from foundry_tui.core.turns import Turns
from foundry_tui.local.backend import LocalBackend
from foundry_tui.store import Store
from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import ResponsesServer

SECRET = "sk-live-DO-NOT-LEAK-7f3a9c"
# Text a prompt, a replayed reply or instructions may hold: quotes of both kinds, command
# substitution, backticks, a variable, backslashes, newlines, a tab, an escape sequence
# (OSC 52), a bidi override and an invisible tag character.
HOSTILE = (
    "it's \"quoted\" $(touch PWNED) `touch PWNED2` ${HOME} \\ back\\slash '\\''\n"
    "second line\ttab \x1b]52;c;cHduZWQ=\x07 \u202eevil\u202c \U000e0041 done"
)
SETTINGS = GenerationSettings(model="gpt-4o", instructions="Answer briefly.")


def body_for(prompt: str = "Hello", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "gpt-4o",
        "input": [{"type": "message", "role": "user", "content": prompt}],
        "instructions": "Answer briefly.",
    }
    body.update(extra)
    body.update(store=True, stream=True)
    return body


PROFILES = {
    "azure-key": Profile(
        name="a",
        kind=EndpointKind.AZURE_OPENAI,
        endpoint="https://res.cognitiveservices.azure.com/openai",
        auth=AuthMethod.API_KEY,
        api_key_env="AZURE_OPENAI_API_KEY",
    ),
    "azure-entra": Profile(
        name="b",
        kind=EndpointKind.AZURE_OPENAI,
        endpoint="https://res.openai.azure.com",
        auth=AuthMethod.ENTRA_ID,
    ),
    "foundry-entra": Profile(
        name="c",
        kind=EndpointKind.FOUNDRY_PROJECT,
        endpoint="https://acct.services.ai.azure.com/api/projects/proj",
        auth=AuthMethod.ENTRA_ID,
    ),
    "openai": Profile(
        name="d",
        kind=EndpointKind.OPENAI,
        endpoint="",
        auth=AuthMethod.API_KEY,
        api_key_env="OPENAI_API_KEY",
    ),
    "compatible-none": Profile(
        name="e",
        kind=EndpointKind.COMPATIBLE,
        endpoint="http://127.0.0.1:9999/v1/",
        auth=AuthMethod.NONE,
    ),
}
# (base URL, Authorization as curl writes it, what the Python passes as api_key)
EXPECTED = {
    "azure-key": (
        "https://res.openai.azure.com/openai/v1/",
        '"Authorization: Bearer $AZURE_OPENAI_API_KEY"',
        'os.environ["AZURE_OPENAI_API_KEY"]',
    ),
    "azure-entra": (
        "https://res.openai.azure.com/openai/v1/",
        '"Authorization: Bearer $(az account get-access-token --scope '
        'https://cognitiveservices.azure.com/.default --query accessToken -o tsv)"',
        "token_provider",
    ),
    "foundry-entra": (
        "https://acct.services.ai.azure.com/api/projects/proj/openai/v1",
        '"Authorization: Bearer $(az account get-access-token --scope '
        'https://ai.azure.com/.default --query accessToken -o tsv)"',
        "token_provider",
    ),
    "openai": (
        "https://api.openai.com/v1",
        '"Authorization: Bearer $OPENAI_API_KEY"',
        'os.environ["OPENAI_API_KEY"]',
    ),
    "compatible-none": ("http://127.0.0.1:9999/v1/", "'Authorization: Bearer unused'", '"unused"'),
}


# -- reading the code back ------------------------------------------------------------------


class _Stream(list[object]):
    pass


def sent_by_python(code: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Runs the script with a stand-in `openai` (and `azure.identity`) and returns what it
    gave ``client.responses.create``, and how the client was made."""
    made: dict[str, Any] = {}

    class Responses:
        def create(self, **arguments: Any) -> _Stream:
            made["body"] = arguments
            return _Stream()

    class OpenAI:
        def __init__(self, *, base_url: str, api_key: object) -> None:
            made.update(base_url=base_url, api_key=api_key)
            self.responses = Responses()

    identity = types.ModuleType("azure.identity")
    identity.DefaultAzureCredential = lambda: "credential"  # type: ignore[attr-defined]
    identity.get_bearer_token_provider = lambda credential, scope: ("provider", scope)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "openai", types.SimpleNamespace(OpenAI=OpenAI))
    monkeypatch.setitem(sys.modules, "azure.identity", identity)
    exec(compile(code, "generated.py", "exec"), {"__name__": "__main__"})
    return made


STAND_IN_CURL = """curl() {
  printf '%s\\n' "$@" > "$OUT/arguments"
  if [ "${@: -1}" = "@-" ]; then cat > "$OUT/body"; else printf '%s' "${@: -1}" > "$OUT/body"; fi
}
"""


def sent_by_curl(code: str, directory: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs the command in bash with a stand-in curl; returns the body it would post and
    the arguments before it."""
    done = subprocess.run(
        ["bash", "-s"],  # the script on stdin: as an argument, one of 150 KB is too long
        input=STAND_IN_CURL + code,
        cwd=directory,
        env={"PATH": os.environ["PATH"], "OUT": str(directory), **(env or {})},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    body = json.loads((directory / "body").read_text(encoding="utf-8"))
    return {"body": body, "arguments": (directory / "arguments").read_text().splitlines()}


def curl_words(code: str) -> list[str]:
    """The command's words as a POSIX shell splits them (comments and line ends dropped)."""
    return shlex.split(code.replace("\\\n", " "), comments=True)


# -- per kind -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PROFILES))
def test_code_for_each_kind_sends_the_body_where_the_app_does(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = PROFILES[kind]
    base_url, authorization, api_key = EXPECTED[kind]
    body = body_for(HOSTILE, reasoning={"effort": "low", "summary": "auto"})
    code = code_for(profile, base_url, body)

    ast.parse(code.python)
    ast.parse(code.python_shown)
    assert f"    api_key={api_key},\n" in code.python
    monkeypatch.setenv(profile.api_key_env, "from-the-environment")
    made = sent_by_python(code.python, monkeypatch)
    assert made["body"] == body and made["base_url"] == base_url
    if profile.auth is AuthMethod.ENTRA_ID:
        scope = authorization.split("--scope ")[1].split(" ")[0]
        assert made["api_key"] == ("provider", scope)
    elif profile.auth is AuthMethod.API_KEY:
        assert made["api_key"] == "from-the-environment"

    words = curl_words(code.curl)
    assert words[:4] == ["curl", "-sS", "-N", base_url.rstrip("/") + "/responses"]
    assert f"  -H {authorization} \\" in code.curl.splitlines()
    assert json.loads(words[words.index("-d") + 1]) == body
    assert sent_by_curl(code.curl, tmp_path)["body"] == body
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()


def test_untrusted_text_stays_inside_its_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    """No control character, bidi override or tag is left raw in either code; nothing the
    text holds is run (checked by the round trips above and below)."""
    body = body_for(HOSTILE)
    code = code_for(PROFILES["azure-key"], EXPECTED["azure-key"][0], body)
    for text in (code.python, code.curl, code.python_shown, code.curl_shown):
        assert all(char.isprintable() or char == "\n" for char in text)
        assert "\\u202e" in text and "\\u001b]52" in text
    assert "\\U000e0041" in code.python and "\\udb40\\udc41" in code.curl


def test_the_key_is_named_never_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET)
    backend = Backend(PROFILES["azure-key"])
    code = backend.request_code(SETTINGS, first_request("Hello", stateless=False))
    for text in (code.python, code.curl, code.python_shown, code.curl_shown):
        assert SECRET not in text and "AZURE_OPENAI_API_KEY" in text
    # and the curl, run, reads it from the variable
    ran = sent_by_curl(code.curl, tmp_path, env={"AZURE_OPENAI_API_KEY": SECRET})
    assert f"Authorization: Bearer {SECRET}" in ran["arguments"]


def test_a_key_variable_the_shell_cannot_expand_is_asked_of_printenv(tmp_path: Path) -> None:
    target = RequestTarget("https://x.example/v1", AuthMethod.API_KEY, key_env="MY KEY;$(id)")
    code = write_code(body_for(), target)
    assert 'os.environ["MY KEY;$(id)"]' in code.python
    assert "$(printenv 'MY KEY;$(id)')" in code.curl
    ran = sent_by_curl(code.curl, tmp_path, env={"MY KEY;$(id)": "k-1"})
    assert "Authorization: Bearer k-1" in ran["arguments"]


def test_local_model_code_has_its_bounds_and_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local model's request as its backend sends it: its own reply budget, nothing
    stored, no chain; its address when started, llama-server's default before."""
    profile = Profile(name="l", kind=EndpointKind.LOCAL, endpoint="", auth=AuthMethod.NONE)
    backend = LocalBackend(profile, max_output_tokens=321)
    request = first_request("Hi", stateless=True)
    code = backend.request_code(GenerationSettings(model="smollm2-135m"), request)
    monkeypatch.setenv("FOUNDRY_TUI_LOCAL_KEY", "k")
    made = sent_by_python(code.python, monkeypatch)
    assert made["base_url"] == "http://127.0.0.1:8080/v1"
    assert made["body"]["max_output_tokens"] == 321 and made["body"]["store"] is False
    assert 'os.environ["FOUNDRY_TUI_LOCAL_KEY"]' in code.python
    assert "not running yet" in code.python and "not running yet" in code.curl


# -- keys the body may gain, and big values ----------------------------------------------


def test_any_key_of_the_body_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever create_body adds (nested objects, lists, numbers, null, a key that is no
    Python name) comes out in both codes."""
    body = body_for(
        reasoning={"effort": "high", "summary": "detailed"},
        text={"verbosity": "low"},
        prompt_cache_key="conv-1",
        include=["reasoning.encrypted_content"],
        temperature=0.25,
        max_output_tokens=4096,
        metadata={},
        tools=[],
        truncation=None,
        **{"class": 1, "odd-key": {"a b": [1, 2.5, False]}},
    )
    code = write_code(body, RequestTarget("https://x.example/v1", AuthMethod.NONE))
    assert sent_by_python(code.python, monkeypatch)["body"] == body
    assert sent_by_curl(code.curl, tmp_path)["body"] == body
    assert "file=sys.stderr" in code.python  # the thinking, apart from the answer


def test_attachments_are_read_from_their_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data URL is written as a read of its file, in the copied code too (a megabyte of
    base64 helps no one); run where the files are, both send the same bytes."""
    png = bytes(range(256)) * 2_000
    pdf = b"%PDF-1.7 " * 50_000
    (tmp_path / "attachment-1.png").write_bytes(png)
    (tmp_path / "it's $(x).pdf").write_bytes(pdf)
    content = [
        {"type": "input_text", "text": HOSTILE},
        {"type": "input_image", "image_url": "data:image/png;base64," + _b64(png)},
        {
            "type": "input_file",
            "filename": "it's $(x).pdf",
            "file_data": "data:application/pdf;base64," + _b64(pdf),
        },
    ]
    body = body_for()
    body["input"] = [{"type": "message", "role": "user", "content": content}]
    code = write_code(body, RequestTarget("https://x.example/v1", AuthMethod.NONE))
    for text in (code.python, code.curl, code.python_shown, code.curl_shown):
        assert len(text) < 5_000  # no base64 in it
    assert 'data_url("attachment-1.png", "image/png")' in code.python
    monkeypatch.chdir(tmp_path)
    assert sent_by_python(code.python, monkeypatch)["body"] == body
    assert sent_by_curl(code.curl, tmp_path)["body"] == body
    assert "--data-binary" in code.curl  # piped: far past one argument's limit


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_long_text_is_cut_on_screen_and_whole_in_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_text = "word " * 30_000  # past one curl argument too
    body = body_for(long_text)
    code = write_code(body, RequestTarget("https://x.example/v1", AuthMethod.NONE))
    ast.parse(code.python_shown)
    note = "150,000 characters in all (Copy takes them whole)"
    assert note in code.python_shown and note in code.curl_shown
    assert len(code.python_shown) < SHOWN_STRING_LIMIT + 2_000
    assert len(code.curl) > ARGUMENT_LIMIT and "--data-binary @-" in code.curl
    assert sent_by_python(code.python, monkeypatch)["body"] == body
    assert sent_by_curl(code.curl, tmp_path)["body"] == body


# -- what the next send would make --------------------------------------------------------


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


@pytest.fixture
async def turns(tmp_path: Path, server: ResponsesServer) -> AsyncIterator[Turns]:
    profile = Profile(
        name="local",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
    )
    backend = Backend(profile, max_retries=0, timeout=5)
    with Store.open(tmp_path / "history.db") as store:
        session = await ChatSession.start_new(store, backend, profile="local", settings=SETTINGS)
        yield Turns(session)
    await backend.aclose()


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(extra)
    return env


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_environment(**{KEY_VARIABLE: TEST_KEY}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def streamed_text(sse: str) -> str:
    deltas = []
    for line in sse.splitlines():
        if line.startswith("data: "):
            event = json.loads(line[6:])
            if event.get("type") == "response.output_text.delta":
                deltas.append(event["delta"])
    return "".join(deltas)


async def test_the_generated_code_runs_and_sends_what_the_app_sends(
    turns: Turns, server: ResponsesServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First turn, then a chained one, then a replay after expiry: each time the curl
    streams the reply and the app's own send then posts the same body. The script is run
    with the real SDK once (a process importing openai takes a second or more here), on
    the first turn; on the others what it hands the SDK is checked."""
    backend = turns.session.backend
    assert isinstance(backend, Backend)
    curl = shutil.which("curl")
    for prompt, mode in (
        (HOSTILE, SendMode.NEW),
        ("And then?", SendMode.CHAIN),
        ("Once more", SendMode.REPLAY),
    ):
        if mode is SendMode.REPLAY:
            server.expire_all()
            assert await turns.check_server() is SendMode.REPLAY
        request = await turns.next_request(prompt)
        assert request.mode is mode
        code = backend.request_code(SETTINGS, request)

        if mode is SendMode.NEW:
            assert run_python(code.python) == f"You said: {prompt}\n"
            by_code = server.created()[-1]
        else:
            with monkeypatch.context() as patch:
                by_code = sent_by_python(code.python, patch)["body"]

        if curl is not None:
            done = subprocess.run(
                ["bash", "-s"],
                input=code.curl,
                env=_environment(**{KEY_VARIABLE: TEST_KEY}),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert streamed_text(done.stdout) == f"You said: {prompt}"
            assert server.created()[-1] == by_code

        async for _event in turns.send(prompt):
            pass
        assert server.created()[-1] == by_code
        assert ("previous_response_id" in by_code) == (mode is SendMode.CHAIN)
        assert len(by_code["input"]) == (5 if mode is SendMode.REPLAY else 1)
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()


def test_curl_is_on_this_machine() -> None:
    """The run above skips curl only where there is none; here there is."""
    assert shutil.which("curl") is not None


async def test_next_request_reads_and_sends_nothing(turns: Turns, server: ResponsesServer) -> None:
    before = len(server.requests)
    request = await turns.next_request("Hi")
    assert request == NextRequest(
        SendMode.NEW,
        [InputMessage(MessageRole.USER, "Hi")],
        None,
        store=True,
        prompt_cache_key=turns.session.conversation.id,
    )
    assert len(server.requests) == before
    assert await turns.session.transcript() == []


def test_write_code_is_what_the_screen_and_the_copy_use() -> None:
    code = write_code(body_for(), RequestTarget("https://x.example/v1", AuthMethod.NONE))
    assert isinstance(code, RequestCode)
    assert code.python == code.python_shown and code.curl == code.curl_shown  # nothing long
