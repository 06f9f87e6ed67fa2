"""The request's reasoning, verbosity and cache parameters, and what a deployment refuses.

Real AsyncOpenAI (and the lean transport) against the local server: each field goes out
as the schema has it (the server validates it), the cache key is the conversation's id,
and a refused parameter is explained, resent without, remembered in the database and left
out of the next send, also after the app starts again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx2
import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.backend.errors import StatusAnswer, explain_answer
from foundry_tui.backend.lean import LeanBackend
from foundry_tui.backend.request import create_body
from foundry_tui.core.models import (
    AuthMethod,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    Message,
    MessageRole,
    MessageStatus,
    Profile,
    Usage,
)
from foundry_tui.core.session import (
    ChatSession,
    ParameterDropped,
    SettingsChanged,
    TurnEnded,
    TurnEvent,
)
from foundry_tui.core.turns import Remedy, Turns, budget_note
from foundry_tui.store import Store
from tests.gateway_server import GatewayServer
from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import Fault, ResponsesServer

MODEL = "gpt-5"
REASONING = GenerationSettings(
    model=MODEL, reasoning_effort="high", reasoning_summary="detailed", verbosity="low"
)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, models=[MODEL, "gpt-4o"]) as running:
        yield running


def profile_for(base_url: str) -> Profile:
    return Profile(
        name="work",
        kind=EndpointKind.COMPATIBLE,
        endpoint=base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
    )


@pytest.fixture
async def backend(server: ResponsesServer) -> AsyncIterator[Backend]:
    made = Backend(profile_for(server.base_url), max_retries=0, timeout=5)
    yield made
    await made.aclose()


async def play(events: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
    return [event async for event in events]


def ended(events: list[TurnEvent]) -> TurnEnded:
    [end] = [event for event in events if isinstance(event, TurnEnded)]
    return end


async def new_turns(store: Store, backend: object, settings: GenerationSettings) -> Turns:
    session = await ChatSession.start_new(
        store,
        backend,  # type: ignore[arg-type]
        profile="work",
        settings=settings,
    )
    return Turns(session)


# -- what is sent --------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["sdk", "lean"])
async def test_each_field_is_sent_as_the_schema_has_it(
    tmp_path: Path, server: ResponsesServer, transport: str
) -> None:
    profile = profile_for(server.base_url)
    backend = (
        Backend(profile, max_retries=0)
        if transport == "sdk"
        else LeanBackend(profile, max_retries=0)
    )
    with Store.open(tmp_path / "history.db") as store:
        turns = await new_turns(store, backend, REASONING)
        assert ended(await play(turns.send("think hard"))).reply.status == MessageStatus.COMPLETED
        conversation_id = turns.session.conversation.id
        quiet = replace(REASONING, reasoning_summary=None, verbosity=None)
        ended(await play(turns.send("again", quiet)))
        ended(await play(turns.send("plain", GenerationSettings(model=MODEL))))
    await backend.aclose()
    full, effort_only, plain = server.created()
    assert full["reasoning"] == {"effort": "high", "summary": "detailed"}
    assert full["text"] == {"verbosity": "low"}
    assert full["prompt_cache_key"] == conversation_id
    assert effort_only["reasoning"] == {"effort": "high"} and "text" not in effort_only
    assert "reasoning" not in plain and "text" not in plain
    assert plain["prompt_cache_key"] == conversation_id
    assert server.schema_errors == []


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
async def test_every_effort_of_the_schema_is_accepted(
    server: ResponsesServer, backend: Backend, effort: str
) -> None:
    settings = GenerationSettings(model=MODEL, reasoning_effort=effort, reasoning_summary="auto")
    events = [
        e
        async for e in backend.stream_reply(
            settings=settings,
            input=[InputMessage(MessageRole.USER, "hi")],
            previous_response_id=None,
            prompt_cache_key="conv-1",
        )
    ]
    assert events
    assert server.created()[-1]["reasoning"] == {"effort": effort, "summary": "auto"}
    assert server.schema_errors == []


def test_the_server_refuses_a_field_off_the_schema(server: ResponsesServer) -> None:
    """The server's check is what makes the tests above mean something."""
    body = create_body(
        GenerationSettings(model=MODEL, reasoning_effort="extreme"),
        [InputMessage(MessageRole.USER, "hi")],
        None,
        store=True,
    )
    answer = httpx2.post(
        f"{server.base_url}/responses",
        json={**body, "stream": False},
        headers={"Authorization": f"Bearer {TEST_KEY}"},
    )
    assert answer.status_code == 500 and server.schema_errors


def test_left_out_parameters_are_not_in_the_body() -> None:
    body = create_body(
        replace(REASONING, temperature=0.3),
        [InputMessage(MessageRole.USER, "hi")],
        None,
        store=False,
        prompt_cache_key="c1",
        omit=("reasoning.summary", "text.verbosity", "prompt_cache_key", "include", "temperature"),
    )
    assert body["reasoning"] == {"effort": "high"}
    assert not {"text", "prompt_cache_key", "include", "temperature"} & set(body)
    body = create_body(REASONING, [], None, store=False, omit=("reasoning.effort",))
    assert body["reasoning"] == {"summary": "detailed"}
    body = create_body(REASONING, [], None, store=False, omit=("reasoning",))
    assert "reasoning" not in body


# -- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "settings", "field", "words"),
    [
        ("temperature", GenerationSettings(model=MODEL, temperature=0.3), "temperature", "temp"),
        ("reasoning.effort", REASONING, "reasoning_effort", "reasoning effort"),
        ("reasoning.summary", REASONING, "reasoning_summary", "reasoning summary"),
        ("text.verbosity", REASONING, "verbosity", "verbosity"),
    ],
)
async def test_a_refused_setting_is_explained_resent_without_and_remembered(
    tmp_path: Path,
    server: ResponsesServer,
    backend: Backend,
    parameter: str,
    settings: GenerationSettings,
    field: str,
    words: str,
) -> None:
    server.refuse(MODEL, parameter)
    path = tmp_path / "history.db"
    with Store.open(path) as store:
        turns = await new_turns(store, backend, settings)
        refused = ended(await play(turns.send("think")))
        assert refused.error is not None
        assert refused.error.kind is ErrorKind.UNSUPPORTED_PARAMETER
        assert refused.error.param == parameter
        assert words in refused.error.title and "resend without" in refused.error.detail
        assert turns.remedy is Remedy.RESEND_WITHOUT and turns.refused[0] == parameter

        events = await play(turns.retry())
        [changed] = [e for e in events if isinstance(e, SettingsChanged)]
        assert getattr(changed.settings, field) is None
        assert changed.reason.startswith("Resending without")
        assert ended(events).reply.status == MessageStatus.COMPLETED
        assert getattr(turns.session.conversation.settings, field) is None
        assert store.rejected_parameters("work", MODEL).keys() >= {parameter}

    # The app starts again: another conversation with the same defaults is sent without
    # it from the start, and says so; the request never carries it.
    before = len(server.created())
    with Store.open(path) as store:
        turns = await new_turns(store, backend, settings)
        events = await play(turns.send("again"))
        [note] = [e for e in events if isinstance(e, SettingsChanged)]
        assert f"{MODEL} refused" in note.reason and getattr(note.settings, field) is None
        assert ended(events).reply.status == MessageStatus.COMPLETED
        # Another profile's deployment of the same name is another deployment.
        other = await ChatSession.start_new(store, backend, profile="home", settings=settings)
        assert await other.refused_parameters(MODEL) == {}
    [sent] = server.created()[before:]
    outer, _, inner = parameter.partition(".")
    assert inner not in sent.get(outer, {}) if inner else outer not in sent


async def test_a_refused_cache_key_is_dropped_at_once_and_remembered(
    tmp_path: Path, server: ResponsesServer, backend: Backend
) -> None:
    server.refuse(MODEL, "prompt_cache_key")
    path = tmp_path / "history.db"
    with Store.open(path) as store:
        turns = await new_turns(store, backend, GenerationSettings(model=MODEL))
        events = await play(turns.send("hello"))
        [dropped] = [e for e in events if isinstance(e, ParameterDropped)]
        assert dropped.parameter == "prompt_cache_key" and "prompt cache key" in dropped.reason
        end = ended(events)
        assert end.error is None and end.reply.status == MessageStatus.COMPLETED
        assert end.reply.text == "You said: hello"
        assert turns.remedy is None
    with_key, without = server.created()
    assert with_key["prompt_cache_key"] and "prompt_cache_key" not in without

    with Store.open(path) as store:  # started again: left out from the first request
        turns = await new_turns(store, backend, GenerationSettings(model=MODEL))
        events = await play(turns.send("hello again"))
        assert not [e for e in events if isinstance(e, ParameterDropped | SettingsChanged)]
        assert ended(events).reply.status == MessageStatus.COMPLETED
    assert len(server.created()) == 3 and "prompt_cache_key" not in server.created()[-1]


async def test_a_refused_value_is_resent_without_but_not_remembered(
    tmp_path: Path, server: ResponsesServer, backend: Backend
) -> None:
    """xhigh where a model takes only low to high: the effort itself is not refused."""
    server.refuse(MODEL, "reasoning.effort=xhigh")
    xhigh = replace(REASONING, reasoning_effort="xhigh")
    with Store.open(tmp_path / "history.db") as store:
        turns = await new_turns(store, backend, xhigh)
        refused = ended(await play(turns.send("think")))
        assert refused.error is not None and refused.error.code == "unsupported_value"
        assert refused.error.param == "reasoning.effort"
        assert refused.error.title == "'gpt-5' does not accept the reasoning effort sent"
        assert turns.remedy is Remedy.RESEND_WITHOUT
        assert ended(await play(turns.retry())).reply.status == MessageStatus.COMPLETED
        assert store.rejected_parameters("work", MODEL) == {}
        events = await play(turns.send("low now", replace(REASONING, reasoning_effort="low")))
        assert not [e for e in events if isinstance(e, SettingsChanged)]
    assert server.created()[-1]["reasoning"]["effort"] == "low"
    assert "effort" not in server.created()[1]["reasoning"]


async def test_a_refusal_learnt_in_one_conversation_serves_the_others(
    tmp_path: Path, server: ResponsesServer, backend: Backend
) -> None:
    with Store.open(tmp_path / "history.db") as store:
        first = await new_turns(store, backend, REASONING)
        other = await new_turns(store, backend, REASONING)
        ended(await play(other.send("before")))  # it has sent to the deployment already
        server.refuse(MODEL, "text.verbosity")
        assert ended(await play(first.send("refused"))).error is not None
        events = await play(other.send("after"))
        assert any(isinstance(e, SettingsChanged) for e in events)
        assert ended(events).reply.status == MessageStatus.COMPLETED
    assert [("text" in body) for body in server.created()] == [True, True, False]


@pytest.mark.parametrize("embed", ["json", "repr", "text"])
async def test_a_gateways_rewrapped_refusal_is_read(
    tmp_path: Path, server: ResponsesServer, embed: str
) -> None:
    server.refuse(MODEL, "reasoning.summary", "prompt_cache_key")
    with GatewayServer(server, embed=embed) as gateway:
        backend = Backend(profile_for(gateway.base_url), max_retries=0, timeout=5)
        with Store.open(tmp_path / "history.db") as store:
            turns = await new_turns(store, backend, REASONING)
            events = await play(turns.send("think"))
            assert [e.parameter for e in events if isinstance(e, ParameterDropped)] == [
                "prompt_cache_key"
            ]
            error = ended(events).error
            assert error is not None and error.kind is ErrorKind.UNSUPPORTED_PARAMETER
            assert error.param == "reasoning.summary"
            retried = ended(await play(turns.retry()))
            assert retried.reply.status == MessageStatus.COMPLETED
            assert set(store.rejected_parameters("work", MODEL)) == {
                "prompt_cache_key",
                "reasoning.summary",
            }
        await backend.aclose()
    assert server.created()[-1]["reasoning"] == {"effort": "high"}


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        (
            {"code": "unknown_parameter", "param": "reasoning_effort", "message": "x"},
            "reasoning.effort",
        ),
        (
            {"code": "400", "message": "Unrecognized request argument supplied: prompt_cache_key"},
            "prompt_cache_key",
        ),
        (
            {"code": "400", "message": "litellm: Unsupported parameter: 'include[0]' is not ok"},
            "include",
        ),
        ({"code": "unsupported_value", "param": "text", "message": "x"}, "text.verbosity"),
        ({"code": "invalid_value", "param": "reasoning.effort", "message": "bad"}, None),
    ],
)
def test_refusals_are_recognised_under_their_many_names(
    body: dict[str, object], parameter: str | None
) -> None:
    answer = StatusAnswer.from_http(400, json.dumps({"error": body}), {})
    error = explain_answer(answer, profile=profile_for("http://127.0.0.1:9/v1"))
    if parameter is None:
        assert error.kind is ErrorKind.BAD_REQUEST
    else:
        assert error.kind is ErrorKind.UNSUPPORTED_PARAMETER and error.param == parameter


# -- a budget spent reasoning --------------------------------------------------------


async def test_a_budget_spent_reasoning_offers_a_larger_one(
    tmp_path: Path, server: ResponsesServer, backend: Backend
) -> None:
    settings = GenerationSettings(model=MODEL, max_output_tokens=64, reasoning_effort="high")
    with Store.open(tmp_path / "history.db") as store:
        turns = await new_turns(store, backend, settings)
        server.inject(Fault.INCOMPLETE, after_deltas=0)
        cut = ended(await play(turns.send("a hard question")))
        assert cut.reply.status == MessageStatus.INCOMPLETE and cut.reply.text == ""
        assert turns.remedy is Remedy.LARGER_BUDGET and turns.can_continue
        assert budget_note(cut.reply, turns.session.conversation.settings) == (
            "The model used its whole budget of 64 output tokens reasoning and wrote no answer."
        )
        assert turns.larger_budget() == 128
        events = await play(turns.retry_with_budget())
        [changed] = [e for e in events if isinstance(e, SettingsChanged)]
        assert changed.settings.max_output_tokens == 128
        assert changed.reason == "Resending with max output tokens 128 (twice 64)."
        assert ended(events).reply.status == MessageStatus.COMPLETED
        assert turns.session.conversation.settings.max_output_tokens == 128
        assert turns.remedy is None
        with pytest.raises(LookupError):
            turns.retry_with_budget()
    assert server.created()[-1]["max_output_tokens"] == 128


async def test_with_no_budget_set_four_times_the_output_used(
    tmp_path: Path, server: ResponsesServer, backend: Backend
) -> None:
    with Store.open(tmp_path / "history.db") as store:
        turns = await new_turns(store, backend, GenerationSettings(model=MODEL))
        reply = Message(
            id="r",
            conversation_id=turns.session.conversation.id,
            parent_id="u",
            role=MessageRole.ASSISTANT,
            text="Well, it",
            status=MessageStatus.INCOMPLETE,
            created_at="2026-12-06T00:00:00Z",
            usage=Usage(output_tokens=1000, reasoning_tokens=990),
            error="Cut off at the max output tokens limit.",
        )
        offered = Turns(turns.session, [reply])
        assert offered.remedy is Remedy.LARGER_BUDGET and offered.larger_budget() == 4000
        assert budget_note(reply, GenerationSettings(model=MODEL)) == (
            "The model used its whole budget of 1,000 output tokens reasoning "
            "(990 reasoning tokens) and wrote only a few words."
        )
        # A few words without reasoning are the start of an answer: go on instead.
        started = replace(reply, usage=Usage(output_tokens=3))
        assert Turns(turns.session, [started]).remedy is Remedy.CONTINUE
        wordy = replace(reply, text="word " * 40)
        assert Turns(turns.session, [wordy]).remedy is Remedy.CONTINUE


# -- profile defaults ----------------------------------------------------------------

CONFIG = """# my settings
default_profile = "work"

[profiles.work]
kind = "compatible"
endpoint = "http://127.0.0.1:9/v1"
auth = "none"
deployments = ["gpt-5"]

[profiles.work.defaults]
model = "gpt-5"
reasoning_effort = "xhigh"   # think hard
reasoning_summary = "concise"
verbosity = "high"
"""


def test_profile_defaults_carry_the_reasoning_settings(tmp_path: Path) -> None:
    from foundry_tui.config import load_config
    from foundry_tui.core.workspace import Workspace

    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    profile = load_config(path).profiles["work"]
    workspace = Workspace(None, None, profile)  # type: ignore[arg-type]
    assert workspace.default_settings() == GenerationSettings(
        model=MODEL, reasoning_effort="xhigh", reasoning_summary="concise", verbosity="high"
    )


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('reasoning_effort = "extreme"', "'reasoning_effort' must be one of none | minimal"),
        ('reasoning_summary = "off"', "'reasoning_summary' must be one of auto | concise"),
        ("verbosity = 2", "'verbosity' must be a string"),
    ],
)
def test_a_reasoning_default_off_the_list_is_refused(tmp_path: Path, line: str, words: str) -> None:
    from foundry_tui.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    key = line.split()[0]
    kept = [kept for kept in CONFIG.splitlines() if not kept.startswith(key)]
    path.write_text("\n".join([*kept, line]) + "\n")
    with pytest.raises(ConfigError, match=words.replace("|", r"\|")):
        load_config(path)


def test_the_reasoning_defaults_are_written_keeping_the_file(tmp_path: Path) -> None:
    from foundry_tui.config import load_config
    from foundry_tui.config.writer import write_profile

    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    profile = load_config(path).profiles["work"]
    assert profile.defaults is not None
    changed = replace(
        profile,
        defaults=replace(profile.defaults, reasoning_summary=None, verbosity="low"),
    )
    write_profile(path, changed)
    text = path.read_text()
    assert "# my settings" in text and 'reasoning_effort = "xhigh"   # think hard' in text
    assert "reasoning_summary" not in text and 'verbosity = "low"' in text
    assert load_config(path).profiles["work"] == changed
