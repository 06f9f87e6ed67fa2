"""A reasoning model's reply through both transports (the SDK client and the lean one)
against the local server: the reasoning's events, its encrypted items, and `include`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from foundry_tui.backend.client import Backend
from foundry_tui.backend.lean import LeanBackend
from foundry_tui.core.models import (
    BackendError,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    ReasoningDelta,
    ReasoningStarted,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
)
from tests.helpers import KEY_VARIABLE, TEST_KEY, write_config
from tests.responses_server import ResponsesServer, decrypt_reasoning

PROMPT = [InputMessage(MessageRole.USER, "why is the sky blue")]
SUMMARY = GenerationSettings(model="o4-mini", reasoning_summary="auto")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(
        api_key=TEST_KEY, reasoning_models=["o4-mini"], open_weight_models=["gpt-oss"]
    ) as running:
        # As a deployment set to summarise (the request's reasoning.summary is the
        # "params" part's; either makes the server summarise).
        running.default_summary = "auto"
        yield running


def _backends(tmp_path: Path, server: ResponsesServer) -> list[Any]:
    config = write_config(tmp_path, server.base_url, deployments=("o4-mini", "gpt-oss", "gpt-4o"))
    profile = config.active_profile()
    assert profile is not None
    return [Backend(profile, max_retries=0), LeanBackend(profile, max_retries=0)]


async def _events(backend: Any, settings: GenerationSettings, input: Any = PROMPT) -> list[Any]:
    try:
        return [
            event
            async for event in backend.stream_reply(
                settings=settings, input=input, previous_response_id=None
            )
        ]
    finally:
        await backend.aclose()


def _shape(events: list[Any]) -> list[Any]:
    """The events without what differs between two requests (ids, usage)."""
    shape: list[Any] = []
    for event in events:
        if isinstance(event, ResponseStarted):
            shape.append("started")
        elif isinstance(event, ResponseFinished):
            shape.append(("finished", event.status, len(event.reasoning_items)))
        elif (
            isinstance(event, ReasoningDelta | TextDelta)
            and shape
            and type(shape[-1]) is type(event)
        ):
            shape[-1] = type(event)(shape[-1].text + event.text)
        else:
            shape.append(event)
    return shape


async def test_a_summary_streams_before_the_answer_alike_on_both_transports(
    tmp_path: Path, server: ResponsesServer
) -> None:
    shapes = [_shape(await _events(b, SUMMARY)) for b in _backends(tmp_path, server)]
    sdk, lean = shapes
    assert lean == sdk
    assert sdk == [
        "started",
        ReasoningStarted(),
        ReasoningDelta(
            "**Reading the question**\n\nThe user wrote: why is the sky blue"
            "\n\n**Planning the answer**\n\nI will repeat it back, briefly."
        ),
        TextDelta("You said: why is the sky blue"),
        ("finished", MessageStatus.COMPLETED, 1),
    ]
    assert server.schema_errors == []
    # The summary asked for reasoning: the request asked for the encrypted items.
    assert all(r["include"] == ["reasoning.encrypted_content"] for r in server.created())


async def test_the_encrypted_item_is_kept_as_the_api_takes_it_back(
    tmp_path: Path, server: ResponsesServer
) -> None:
    for backend in _backends(tmp_path, server):
        finished = (await _events(backend, SUMMARY))[-1]
        assert isinstance(finished, ResponseFinished)
        (item,) = finished.reasoning_items
        assert set(item) == {"type", "id", "summary", "encrypted_content"}
        assert item["type"] == "reasoning"
        assert decrypt_reasoning(str(item["encrypted_content"]))["id"] == item["id"]  # type: ignore[index]
        assert item["summary"][0]["text"].startswith("**Reading")  # type: ignore[index]


async def test_open_weight_reasoning_text_streams_alike(
    tmp_path: Path, server: ResponsesServer
) -> None:
    settings = GenerationSettings(model="gpt-oss")
    shapes = [_shape(await _events(b, settings)) for b in _backends(tmp_path, server)]
    assert shapes[0] == shapes[1]
    assert shapes[0][1:3] == [
        ReasoningStarted(),
        ReasoningDelta(
            "**Reading the question**\n\nThe user wrote: why is the sky blue"
            "\n\n**Planning the answer**\n\nI will repeat it back, briefly."
        ),
    ]
    assert server.schema_errors == []
    # Nothing asked for reasoning: no include, so no encrypted item to keep.
    assert all("include" not in r for r in server.created())
    assert shapes[0][-1] == ("finished", MessageStatus.COMPLETED, 0)


async def test_a_model_thinking_without_a_summary_says_it_started(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.default_summary = None
    settings = GenerationSettings(model="o4-mini")
    shapes = [_shape(await _events(b, settings)) for b in _backends(tmp_path, server)]
    assert shapes[0] == shapes[1]
    assert shapes[0][:2] == ["started", ReasoningStarted()]
    assert not any(isinstance(event, ReasoningDelta) for event in shapes[0])


async def test_an_ordinary_chat_sends_no_include(tmp_path: Path, server: ResponsesServer) -> None:
    settings = GenerationSettings(model="gpt-4o")
    for backend in _backends(tmp_path, server):
        events = await _events(backend, settings)
        assert not any(isinstance(e, ReasoningStarted | ReasoningDelta) for e in events)
    assert [("include" in r) for r in server.created()] == [False, False]


async def test_reasoning_items_go_back_before_their_reply(
    tmp_path: Path, server: ResponsesServer
) -> None:
    backend = _backends(tmp_path, server)[1]
    finished = (await _events(backend, SUMMARY))[-1]
    history = [
        *PROMPT,
        InputMessage(MessageRole.ASSISTANT, "Rayleigh", reasoning_items=finished.reasoning_items),
        InputMessage(MessageRole.USER, "and sunsets?"),
    ]
    for again in _backends(tmp_path, server):
        await _events(again, GenerationSettings(model="o4-mini"), history)
    for request in server.created()[1:]:
        kinds = [item.get("type") for item in request["input"]]
        assert kinds == ["message", "reasoning", "message", "message"]
        assert request["input"][1] == finished.reasoning_items[0]
        # Sending reasoning back asks for the new reply's too.
        assert request["include"] == ["reasoning.encrypted_content"]
    assert server.schema_errors == []


class _RefusesInclude(ResponsesServer):
    """A deployment that takes no `include` (the "params" part remembers such refusals)."""

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if "include" in body:
            return self._error(
                request,
                400,
                "Unsupported parameter: 'include' is not supported with this model.",
                param="include",
                code="unsupported_parameter",
            )
        return await super()._create(request)


async def test_a_server_refusing_include_names_the_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with _RefusesInclude(api_key=TEST_KEY, reasoning_models=["o4-mini"]) as server:
        for backend in _backends(tmp_path, server):
            with pytest.raises(BackendError) as caught:
                await _events(backend, SUMMARY)
            assert caught.value.kind is ErrorKind.UNSUPPORTED_PARAMETER
            assert caught.value.param == "include"
