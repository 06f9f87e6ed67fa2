"""The openai SDK's private streaming members that backend/sdk_stream.py relies on, and
what happens when they change: the reply still streams, through the SDK's public
iteration, and the log says so once.

When a test here fails after an SDK upgrade, the app still works (the adapter falls
back), only more slowly: read the message, then update sdk_stream.py.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pytest
from openai._base_client import AsyncAPIClient
from openai._streaming import AsyncStream

from foundry_tui.backend import sdk_stream
from foundry_tui.backend.client import Backend
from foundry_tui.core import logs
from foundry_tui.core.models import (
    AuthMethod,
    BackendEvent,
    EndpointKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
    ResponseFinished,
    TextDelta,
)
from tests.responses_server import ResponsesServer

KEY = "sk-test-contract-0123456789"
KEY_ENV = "FOUNDRY_CONTRACT_KEY"
REPLY = "One two three four five six seven eight nine ten."
SETTINGS = GenerationSettings(model="gpt-4o")
FALLS_BACK = (
    "foundry_tui/backend/sdk_stream.py falls back to the SDK's public iteration (the app "
    "works, with a typed model built per text delta); update the adapter to the new SDK."
)


def _private(owner: object, name: str) -> Callable[..., Any] | None:
    found = getattr(owner, name, None)
    return found if callable(found) else None


def _required(name: str, function: Callable[..., Any] | None, parameters: tuple[str, ...]) -> None:
    version = openai.__version__
    assert function is not None, f"openai {version}: {name} is gone. {FALLS_BACK}"
    signature = inspect.signature(function)
    missing = [p for p in parameters if p not in signature.parameters]
    assert not missing, (
        f"openai {version}: {name}{signature} no longer takes {', '.join(missing)}. {FALLS_BACK}"
    )
    required = [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in parameters
    ]
    assert not required, (
        f"openai {version}: {name}{signature} now requires {', '.join(required)}. {FALLS_BACK}"
    )


def test_the_private_members_the_adapter_calls_are_there() -> None:
    from openai import _models

    _required("AsyncStream._iter_events", _private(AsyncStream, "_iter_events"), ("self",))
    _required(
        "AsyncAPIClient._process_response_data",
        _private(AsyncAPIClient, "_process_response_data"),
        ("self", "data", "cast_to", "response"),
    )
    _required(
        "openai._models.construct_type", _private(_models, "construct_type"), ("type_", "value")
    )
    # The stream keeps what it was made with under these names (read by the adapter).
    _required(
        "AsyncStream.__init__",
        _private(AsyncStream, "__init__"),
        ("self", "cast_to", "response", "client", "options"),
    )
    # The adapter's own check agrees: it would take the private path.
    assert sdk_stream.private_path_problem() is None, f"{sdk_stream.private_path_problem()}"


def profile(server: ResponsesServer) -> Profile:
    return Profile(
        name="contract",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_ENV,
    )


@pytest.fixture
def server() -> Iterator[ResponsesServer]:
    with ResponsesServer(api_key=KEY, reply=lambda body: REPLY) as running:
        yield running


@pytest.fixture
async def backend(server: ResponsesServer) -> AsyncIterator[Backend]:
    made = Backend(profile(server), env={KEY_ENV: KEY}, max_retries=0)
    yield made
    await made.aclose()


async def turn(backend: Backend) -> list[BackendEvent]:
    return [
        event
        async for event in backend.stream_reply(
            settings=SETTINGS,
            input=[InputMessage(MessageRole.USER, "count to ten")],
            previous_response_id=None,
        )
    ]


def whole_reply(events: list[BackendEvent]) -> str:
    last = events[-1]
    assert isinstance(last, ResponseFinished) and last.status is MessageStatus.COMPLETED
    assert last.response_id and last.usage.output_tokens
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def from_adapter() -> bool:
    """Whether the caller of the caller is the adapter (not the SDK's own loop)."""
    return sys._getframe(2).f_globals.get("__name__") == sdk_stream.__name__


def fell_back_notes() -> int:
    path = logs.log_file()
    return path.read_text().count("private streaming members changed") if path.exists() else 0


async def test_the_private_path_takes_the_deltas(backend: Backend) -> None:
    """The baseline the tests below break: with this SDK, deltas skip the typed models."""
    stream = await backend._get_client().responses.create(model="gpt-4o", input="hi", stream=True)
    async with stream:
        kinds = [type(event).__name__ async for event in sdk_stream.stream_events(stream)]
    assert "TextDeltaEvent" in kinds and kinds[-1] == "ResponseCompletedEvent"


@pytest.mark.parametrize("error", [TypeError, ValueError, AttributeError])
async def test_a_private_reader_that_fails_falls_back_to_the_public_iteration(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    """The private event reader fails when the adapter asks for it (a signature or a
    behaviour that changed): every reply still streams whole, through the SDK's public
    iteration, and the log says so once."""
    original = AsyncStream._iter_events

    def changed(self: AsyncStream[Any]) -> AsyncIterator[Any]:
        if from_adapter():
            raise error("_iter_events() changed")
        return original(self)

    monkeypatch.setattr(AsyncStream, "_iter_events", changed)
    assert whole_reply(await turn(backend)) == REPLY
    assert whole_reply(await turn(backend)) == REPLY  # the public way from the start
    assert fell_back_notes() == 1


async def test_a_changed_signature_is_seen_before_the_stream_is_read(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private callable whose parameters changed is never called the old way: the
    adapter checks the signatures first and streams the public way."""
    original = AsyncAPIClient._process_response_data

    def changed(
        self: AsyncAPIClient, *, payload: object = None, cast_to: Any, response: Any, **rest: Any
    ) -> Any:
        return original(self, data=rest.get("data", payload), cast_to=cast_to, response=response)

    monkeypatch.setattr(AsyncAPIClient, "_process_response_data", changed)
    assert whole_reply(await turn(backend)) == REPLY
    problem = sdk_stream.private_path_problem()
    assert problem is not None and "_process_response_data" in problem and "data" in problem
    assert fell_back_notes() == 1


@pytest.mark.parametrize("failing_from", ["response.created", "response.completed"])
async def test_processing_that_fails_mid_stream_loses_no_text(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, failing_from: str
) -> None:
    """The SDK's processing fails once the body is being read (at the first event, or at
    the last, after all the text was shown): the public iteration can no longer start
    there, so the adapter reads the rest itself, and the whole reply, its id and usage
    still arrive."""
    original = AsyncAPIClient._process_response_data
    failing = False

    def changed(self: AsyncAPIClient, *, data: Any, cast_to: Any, response: Any) -> Any:
        nonlocal failing
        if from_adapter() and (failing or data.get("type") == failing_from):
            failing = True
            raise ValueError("construct_type changed")
        return original(self, data=data, cast_to=cast_to, response=response)

    monkeypatch.setattr(AsyncAPIClient, "_process_response_data", changed)
    assert whole_reply(await turn(backend)) == REPLY
    assert failing and fell_back_notes() == 1


async def test_a_frame_that_is_not_json_is_the_server_s_fault(backend: Backend) -> None:
    """Not a bug of the app: a stream error saying so, with the text so far kept."""
    from foundry_tui.core.models import BackendError

    stream = await backend._get_client().responses.create(model="gpt-4o", input="hi", stream=True)

    async def garbage() -> AsyncIterator[Any]:
        class Frame:
            event = "response.output_text.delta"
            data = "{not json"

        yield Frame()

    stream._iter_events = garbage  # type: ignore[method-assign]
    async with stream:
        with pytest.raises(openai.APIError, match="not JSON") as caught:
            [event async for event in sdk_stream.stream_events(stream)]
    error = backend._explain(caught.value, "stream")
    assert isinstance(error, BackendError) and "not JSON" in error.detail


async def test_a_reader_that_fails_mid_stream_keeps_the_text_and_the_next_turn_works(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's event reader itself fails after text arrived: that stream cannot go on
    (its body is half read), so the error surfaces as what it is, after the text so far
    (which the session saves); the next turn streams the public way, whole."""
    original = AsyncStream._iter_events

    async def breaks_after_text(self: AsyncStream[Any]) -> AsyncIterator[Any]:
        async for sse in original(self):
            yield sse
            if sse.event == "response.output_text.delta":
                raise TypeError("the decoder changed")

    def changed(self: AsyncStream[Any]) -> AsyncIterator[Any]:
        return breaks_after_text(self) if from_adapter() else original(self)

    monkeypatch.setattr(AsyncStream, "_iter_events", changed)
    seen: list[BackendEvent] = []
    with pytest.raises(TypeError, match="decoder changed"):
        async for event in backend.stream_reply(
            settings=SETTINGS,
            input=[InputMessage(MessageRole.USER, "count to ten")],
            previous_response_id=None,
        ):
            seen.append(event)
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["One "]
    assert whole_reply(await turn(backend)) == REPLY
    assert fell_back_notes() == 1
