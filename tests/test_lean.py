"""The lean transport (backend/lean.py, backend/sse.py) reads every stream and every error
as the SDK client does: the same events, the same errors, against the same local server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.backend.lean import LeanBackend, backend_for
from foundry_tui.backend.sse import ServerSentEvent, SSEDecoder
from foundry_tui.core.models import (
    AuthMethod,
    BackendError,
    EndpointKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    Profile,
    ResponseFinished,
    ResponseStarted,
)
from foundry_tui.core.text import InertStream, sanitize
from tests.helpers import write_config
from tests.responses_server import Fault, ResponsesServer

SETTINGS = GenerationSettings(model="gpt-4o", instructions="Be brief.", max_output_tokens=50)
PROMPT = [InputMessage(MessageRole.USER, "tell me something")]


def test_sse_events_are_the_same_however_the_bytes_are_cut() -> None:
    raw = (
        b': keep-alive\n\nevent: a\r\ndata: {"x": 1}\r\n\r\n'
        b"data: one\rdata: two\r\r"
        b"event: b\ndata:  spaced\n\n"
        b"data: \xc3\xa9t\xc3\xa9\n\n"
        b"event: cut\ndata: never finished"
    )
    expected = [
        ServerSentEvent("a", '{"x": 1}'),
        ServerSentEvent(None, "one\ntwo"),
        ServerSentEvent("b", " spaced"),
        ServerSentEvent(None, "été"),
    ]
    whole = SSEDecoder()
    assert list(whole.feed(raw)) == expected
    for size in (1, 2, 3, 7):
        decoder = SSEDecoder()
        got = [e for i in range(0, len(raw), size) for e in decoder.feed(raw[i : i + size])]
        assert got == expected, size


def _outcome(events: list[Any], error: BackendError | None) -> list[Any]:
    """What a turn gave, without what differs between two requests (ids, usage)."""
    shown: list[Any] = []
    for event in events:
        if isinstance(event, ResponseStarted):
            shown.append(("started", event.model))
        elif isinstance(event, ResponseFinished):
            shown.append(("finished", event.status, event.error, event.incomplete_reason))
            shown.append(("notes", event.notes))
        else:
            shown.append(event)
    if error is not None:
        shown.append(("error", error.kind, error.title, error.detail, error.status_code))
    return shown


async def _turn(backend: Any) -> list[Any]:
    events: list[Any] = []
    error: BackendError | None = None
    try:
        async for event in backend.stream_reply(
            settings=SETTINGS, input=PROMPT, previous_response_id=None
        ):
            events.append(event)
    except BackendError as exc:
        error = exc
    finally:
        await backend.aclose()
    return _outcome(events, error)


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        (None, {}),
        (Fault.INCOMPLETE, {"reason": "content_filter"}),
        (Fault.FAILED, {}),
        (Fault.ERROR_EVENT, {}),
        (Fault.NESTED_ERROR, {}),
        (Fault.NESTED_ERROR, {"with_failed": True}),
        (Fault.DROP_STREAM, {}),
        (Fault.HUGE_USAGE, {}),
        (Fault.OBJECT_ID, {}),
        (Fault.CONTENT_FILTER, {}),
        (Fault.UNAUTHORIZED, {}),
        (Fault.FORBIDDEN, {}),
        (Fault.SERVER_ERROR, {"message": "upstream \x1b]0;x\x07 broke"}),
        (Fault.GARBLED_ERROR, {}),
    ],
    ids=lambda value: str(value),
)
async def test_the_lean_transport_reads_like_the_sdk_client(
    tmp_path: Path, server: ResponsesServer, fault: Fault | None, options: dict[str, Any]
) -> None:
    profile = write_config(tmp_path, server.base_url).active_profile()
    assert profile is not None
    outcomes = []
    for backend in (Backend(profile, max_retries=0), LeanBackend(profile, max_retries=0)):
        if fault is not None:
            server.inject(fault, **options)
        outcomes.append(await _turn(backend))
    sdk, lean = outcomes
    assert lean == sdk
    assert server.schema_errors == []


async def test_a_previous_response_the_server_forgot_is_explained_alike(
    tmp_path: Path, server: ResponsesServer
) -> None:
    profile = write_config(tmp_path, server.base_url).active_profile()
    assert profile is not None
    errors = []
    for backend in (Backend(profile, max_retries=0), LeanBackend(profile, max_retries=0)):
        with pytest.raises(BackendError) as caught:
            async for _event in backend.stream_reply(
                settings=SETTINGS, input=PROMPT, previous_response_id="resp_gone"
            ):
                pass
        await backend.aclose()
        errors.append((caught.value.kind, caught.value.title, caught.value.code))
    assert errors[0] == errors[1] and errors[1][2] == "previous_response_not_found"


def test_entra_id_profiles_use_the_sdk_client() -> None:
    endpoint = "https://r.openai.azure.com"
    entra = Profile("e", EndpointKind.AZURE_OPENAI, endpoint, auth=AuthMethod.ENTRA_ID)
    keyed = Profile("k", EndpointKind.AZURE_OPENAI, endpoint)
    assert isinstance(backend_for(entra, {}), Backend)
    assert isinstance(backend_for(keyed, {}), LeanBackend)


def test_a_streamed_reply_is_made_inert_as_the_whole_text_would_be() -> None:
    text = "a \x1b]0;title\x07b \x1b[31mred\x1b[0m c\r\nd \x9b2J e \x1b]8;;http://x\x1b\\link f\r"
    for size in (1, 2, 3, 5):
        stream = InertStream()
        pieces = [stream.feed(text[i : i + size]) for i in range(0, len(text), size)]
        assert "".join(pieces) + stream.end() == sanitize(text), size
