"""`foundry-tui ask` with a reasoning model: the thinking goes to stderr, stdout stays the
answer alone; `--json` carries the reasoning as its own events."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import ResponsesServer
from tests.test_ask import env, no_terminal_controls, run

__all__ = ["env"]  # the fixture, shared with test_ask

THOUGHT = ["**Checking**\n\nA \x1b]0;pwned\x07 look.", "**Done**\n\nShort."]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(
        api_key=TEST_KEY, reasoning_models=["o4-mini"], reasoning=lambda body: THOUGHT
    ) as running:
        running.default_summary = "auto"
        yield running


def test_the_thinking_goes_to_stderr_and_the_answer_alone_to_stdout(
    env: dict[str, str], server: ResponsesServer
) -> None:
    result = run(env, "-m", "o4-mini", "why")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "You said: why\n"
    # Not a terminal: plain text, made inert, then a blank line.
    assert result.stderr == "**Checking**\n\nA  look.\n\n**Done**\n\nShort.\n\n"
    assert no_terminal_controls(result.stderr)
    quiet = run(env, "-m", "o4-mini", "--no-stream", "again")
    assert quiet.stdout == "You said: again\n"
    assert quiet.stderr.startswith("**Checking**")


def test_json_lines_carry_the_reasoning_as_events(
    env: dict[str, str], server: ResponsesServer
) -> None:
    lines = [
        json.loads(line) for line in run(env, "--json", "-m", "o4-mini", "q").stdout.splitlines()
    ]
    kinds = [line["type"] for line in lines]
    assert kinds[:3] == ["started", "reasoning_started", "reasoning"]
    assert kinds.index("delta") > max(i for i, kind in enumerate(kinds) if kind == "reasoning")
    thought = "".join(line["text"] for line in lines if line["type"] == "reasoning")
    assert thought == "\n\n".join(THOUGHT)  # JSON escapes what a terminal would act on
    assert lines[-1]["reasoning"] == thought
