"""`foundry-tui ask` with the reasoning flags, a refused parameter and a budget spent
reasoning: the real command in a subprocess against the local server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import Fault, ResponsesServer
from tests.test_ask import env, run, store_of

__all__ = ["env"]  # the fixture, shared with test_ask


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


def test_the_reasoning_flags_are_sent_and_saved(
    env: dict[str, str], server: ResponsesServer
) -> None:
    result = run(
        env,
        "--reasoning-effort",
        "minimal",
        "--reasoning-summary",
        "auto",
        "--verbosity",
        "high",
        "why?",
    )
    assert result.returncode == 0, result.stderr
    first = server.created()[-1]
    assert first["reasoning"] == {"effort": "minimal", "summary": "auto"}
    assert first["text"] == {"verbosity": "high"}
    with store_of(env) as store:
        [summary] = store.list_conversations()
        saved = store.get_conversation(summary.id)
    assert saved is not None and first["prompt_cache_key"] == saved.id
    # Continued with "off" and "default": they leave the server to decide again.
    again = run(
        env, "--continue", saved.id, "--reasoning-summary", "off", "--verbosity", "default", "go"
    )
    assert again.returncode == 0, again.stderr
    assert server.created()[-1]["reasoning"] == {"effort": "minimal"}
    assert "text" not in server.created()[-1]


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--reasoning-effort", "extreme"), ("--reasoning-summary", "long"), ("--verbosity", "max")],
)
def test_a_value_off_the_list_is_a_usage_error(
    env: dict[str, str], server: ResponsesServer, flag: str, value: str
) -> None:
    result = run(env, flag, value, "why?")
    assert result.returncode == 2 and f"argument {flag}: invalid choice: '{value}'" in result.stderr
    assert server.created() == []


def test_a_refused_verbosity_names_the_flag_and_is_not_sent_again(
    env: dict[str, str], server: ResponsesServer
) -> None:
    server.refuse("gpt-4o", "text.verbosity")
    refused = run(env, "--verbosity", "low", "why?")
    assert refused.returncode == 1
    assert "does not accept a verbosity" in refused.stderr
    assert "leave out --verbosity" in refused.stderr
    again = run(env, "--verbosity", "low", "why not?")  # remembered: left out, and said so
    assert again.returncode == 0, again.stderr
    assert "gpt-4o refused verbosity before: sent without it" in again.stderr
    as_json = run(env, "--json", "--verbosity", "low", "and now?")
    notes = [line for line in as_json.stdout.splitlines() if '"settings_changed"' in line]
    assert len(notes) == 1 and "refused verbosity before" in notes[0]
    assert [("text" in body) for body in server.created()] == [True, False, False]


def test_a_budget_spent_reasoning_gives_the_flags_to_use(
    env: dict[str, str], server: ResponsesServer
) -> None:
    server.inject(Fault.INCOMPLETE, after_deltas=0)
    result = run(env, "--max-output-tokens", "300", "a hard one")
    assert result.returncode == 0
    assert (
        "The model used its whole budget of 300 output tokens reasoning and wrote no answer."
        in result.stderr
    )
    assert "--max-output-tokens 600" in result.stderr
