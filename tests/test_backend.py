"""backend.py + errors.py: unit tests over httpx2.MockTransport, then the loopback server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from foundry_tui.backend.client import Backend, to_input_items
from foundry_tui.backend.errors import clean_text
from foundry_tui.core.models import (
    AuthMethod,
    BackendError,
    BackendEvent,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
    Usage,
)
from tests.helpers import VirtualClockLoop
from tests.responses_server import Fault, ResponsesServer

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-test-abcdef0123456789"
KEY_ENV = "FOUNDRY_TEST_KEY"
MOCK_URL = "http://127.0.0.1:9"  # never dialled: MockTransport answers


def make_profile(
    endpoint: str = MOCK_URL,
    *,
    kind: EndpointKind = EndpointKind.COMPATIBLE,
    auth: AuthMethod = AuthMethod.API_KEY,
    name: str = "test",
) -> Profile:
    return Profile(name=name, kind=kind, endpoint=endpoint, auth=auth, api_key_env=KEY_ENV)


def hi(text: str = "hello") -> list[InputMessage]:
    return [InputMessage(MessageRole.USER, text)]


SETTINGS = GenerationSettings(model="gpt-4o", instructions="Answer briefly.")


async def collect(
    backend: Backend,
    settings: GenerationSettings = SETTINGS,
    messages: list[InputMessage] | None = None,
    previous: str | None = None,
) -> list[BackendEvent]:
    return [
        event
        async for event in backend.stream_reply(
            settings=settings, input=messages or hi(), previous_response_id=previous
        )
    ]


async def failure(backend: Backend, **kwargs: Any) -> BackendError:
    with pytest.raises(BackendError) as caught:
        await collect(backend, **kwargs)
    return caught.value


def text_of(events: list[BackendEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def finished(events: list[BackendEvent]) -> ResponseFinished:
    last = events[-1]
    assert isinstance(last, ResponseFinished)
    return last


# --------------------------------------------------------------------------- mock transport

Handler = Callable[[httpx2.Request], httpx2.Response]


def mock_backend(
    handler: Handler,
    *,
    profile: Profile | None = None,
    env: dict[str, str] | None = None,
    **kwargs: Any,
) -> Backend:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return Backend(
        profile or make_profile(),
        env={KEY_ENV: KEY} if env is None else env,
        max_retries=0,
        http_client=client,
        **kwargs,
    )


def error_reply(
    status: int, error: dict[str, Any], headers: dict[str, str] | None = None
) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            status, json={"error": error}, headers={"x-request-id": "req_42", **(headers or {})}
        )

    return handler


def sse(*events: dict[str, Any], tail: str = "") -> Handler:
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events) + tail

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=body.encode(), headers={"content-type": "text/event-stream"}
        )

    return handler


def response_obj(status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": status, "output": [], **extra}


class FakeCredential:
    """An azure.identity.aio-style credential that never leaves the process."""

    def __init__(self, token: str = "entra-token-xyz", error: Exception | None = None) -> None:
        self.token = token
        self.error = error
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        if self.error is not None:
            raise self.error
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True


def test_import_does_not_load_openai_or_azure() -> None:
    code = (
        "import foundry_tui.backend.client, sys\n"
        "assert 'openai' not in sys.modules and 'azure.identity' not in sys.modules\n"
        "assert 'httpx2' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_to_input_items() -> None:
    items = to_input_items(
        [InputMessage(MessageRole.USER, "q"), InputMessage(MessageRole.ASSISTANT, "a")]
    )
    assert items == [
        {"type": "message", "role": "user", "content": "q"},
        {"type": "message", "role": "assistant", "content": "a"},
    ]


def test_description_names_the_variable_not_the_key() -> None:
    backend = Backend(
        make_profile("https://myres.openai.azure.com", kind=EndpointKind.AZURE_OPENAI),
        env={KEY_ENV: KEY},
    )
    assert backend.description == (
        f"https://myres.openai.azure.com/openai/v1/ · API key from ${KEY_ENV}"
    )
    entra = Backend(
        make_profile(
            "https://a.services.ai.azure.com/api/projects/p",
            kind=EndpointKind.FOUNDRY_PROJECT,
            auth=AuthMethod.ENTRA_ID,
        )
    )
    assert entra.description == (
        "https://a.services.ai.azure.com/api/projects/p/openai/v1 · Entra ID "
        "(https://ai.azure.com/.default)"
    )
    assert Backend(make_profile(auth=AuthMethod.NONE)).description.endswith("no key")


async def test_missing_key_is_a_config_error() -> None:
    backend = mock_backend(sse(), env={}, profile=make_profile(kind=EndpointKind.AZURE_OPENAI))
    error = await failure(backend)
    assert error.kind is ErrorKind.CONFIG
    assert error.title == "No API key"
    assert KEY_ENV in error.detail and "Entra ID" in error.detail
    await backend.aclose()


async def test_request_carries_key_and_every_setting() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return sse(
            {"type": "response.created", "response": response_obj("in_progress", model="m")},
            {"type": "response.completed", "response": response_obj(model="m")},
        )(request)

    backend = mock_backend(handler)
    settings = GenerationSettings(
        model="gpt-4o", instructions="Be kind.", temperature=0.5, top_p=0.25, max_output_tokens=9
    )
    await collect(backend, settings, previous="resp_0")
    body = json.loads(seen[0].content)
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert body == {
        "model": "gpt-4o",
        "input": [{"type": "message", "role": "user", "content": "hello"}],
        "instructions": "Be kind.",
        "previous_response_id": "resp_0",
        "temperature": 0.5,
        "top_p": 0.25,
        "max_output_tokens": 9,
        "store": True,
        "stream": True,
    }
    await backend.aclose()


async def test_none_safe_events_and_empty_deltas() -> None:
    backend = mock_backend(
        sse(
            # no response.created: in_progress starts the reply
            {"type": "response.in_progress", "response": response_obj("in_progress")},
            {"type": "response.output_text.delta", "delta": ""},
            {"type": "response.output_text.delta", "delta": "Hi"},
            {"type": "response.output_text.delta", "delta": ""},
            {"type": "response.output_text.delta", "delta": " there"},
            {"type": "response.some_future_event", "x": 1},
            {
                "type": "response.completed",
                "response": response_obj(usage={"input_tokens": 3, "output_tokens": None}),
            },
        )
    )
    events = await collect(backend)
    assert events == [
        ResponseStarted("resp_1", None),
        TextDelta("Hi"),
        TextDelta(" there"),
        ResponseFinished(
            status=MessageStatus.COMPLETED,
            response_id="resp_1",
            model=None,
            usage=Usage(input_tokens=3),
        ),
    ]
    await backend.aclose()


async def test_stream_without_terminal_event() -> None:
    backend = mock_backend(
        sse(
            {"type": "response.created", "response": response_obj("in_progress")},
            {"type": "response.output_text.delta", "delta": "partial"},
        )
    )
    events: list[BackendEvent] = []
    with pytest.raises(BackendError) as caught:
        async for event in backend.stream_reply(
            settings=SETTINGS, input=hi(), previous_response_id=None
        ):
            events.append(event)
    assert text_of(events) == "partial"
    assert caught.value.kind is ErrorKind.CONNECTION
    assert caught.value.title == "The connection closed before the reply finished"
    await backend.aclose()


async def test_failed_with_null_error_then_nothing() -> None:
    backend = mock_backend(
        sse({"type": "response.failed", "response": response_obj("failed", error=None)})
    )
    events = await collect(backend)
    assert isinstance(events[0], ResponseStarted)
    done = finished(events)
    assert done.status is MessageStatus.FAILED and done.error


async def test_error_event_content_filter() -> None:
    backend = mock_backend(
        sse(
            {"type": "response.created", "response": response_obj("in_progress")},
            {"type": "error", "code": "content_filter", "message": "filtered", "param": None},
        )
    )
    error = await failure(backend)
    assert error.kind is ErrorKind.CONTENT_FILTER and error.code == "content_filter"


async def test_nested_error_frame_with_content_filter_results() -> None:
    frame = {
        "error": {
            "code": "content_filter",
            "message": "Output filtered",
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "violence": {"filtered": True, "severity": "medium"},
                    "hate": {"filtered": False, "severity": "safe"},
                },
            },
        }
    }
    backend = mock_backend(
        sse(
            {"type": "response.created", "response": response_obj("in_progress")},
            {"type": "response.failed", "response": response_obj("failed", error=None)},
            tail=f"data: {json.dumps(frame)}\n\n",
        )
    )
    error = await failure(backend)
    assert error.kind is ErrorKind.CONTENT_FILTER
    assert "violence" in error.detail and "hate" not in error.detail


STATUS_CASES = [
    pytest.param(
        401,
        {"code": "invalid_api_key", "message": f"Incorrect API key provided: {KEY}."},
        {},
        ErrorKind.AUTH,
        [KEY_ENV],
        id="401",
    ),
    pytest.param(
        403,
        {"code": "PermissionDenied", "message": "lacks data action"},
        {},
        ErrorKind.AUTH,
        ["Access denied", KEY_ENV],
        id="403",
    ),
    pytest.param(
        404,
        {"code": "DeploymentNotFound", "message": "The API deployment does not exist."},
        {},
        ErrorKind.DEPLOYMENT_NOT_FOUND,
        ["'gpt-4o'", MOCK_URL, "pick another in the sidebar", "Azure portal"],
        id="404-deployment",
    ),
    pytest.param(
        404,
        {"message": "Not found", "code": None},
        {},
        ErrorKind.DEPLOYMENT_NOT_FOUND,
        ["'gpt-4o'"],
        id="404-any",
    ),
    pytest.param(
        400,
        {
            "code": "previous_response_not_found",
            "param": "previous_response_id",
            "message": "Previous response with id 'resp_0' not found.",
        },
        {},
        ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND,
        ["no longer on the server"],
        id="400-previous",
    ),
    pytest.param(
        400,
        {"code": "unsupported_parameter", "param": "temperature", "message": "Unsupported"},
        {},
        ErrorKind.UNSUPPORTED_PARAMETER,
        ["reasoning model", "clear them in the sidebar"],
        id="400-temperature",
    ),
    pytest.param(
        400,
        {"code": "unsupported_value", "param": "top_p", "message": "Unsupported value"},
        {},
        ErrorKind.UNSUPPORTED_PARAMETER,
        ["top_p"],
        id="400-top-p",
    ),
    pytest.param(
        400,
        {
            "code": "content_filter",
            "param": "prompt",
            "message": "The response was filtered",
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": True, "severity": "high"},
                    "jailbreak": {"filtered": True, "detected": True},
                    "self_harm": {"filtered": False, "severity": "safe"},
                },
            },
        },
        {},
        ErrorKind.CONTENT_FILTER,
        ["hate, jailbreak"],
        id="400-content-filter",
    ),
    pytest.param(
        400,
        {"code": "invalid_value", "param": "input", "message": "Bad\x1b[31m input\x07"},
        {},
        ErrorKind.BAD_REQUEST,
        ["Bad input", "(parameter: input)"],
        id="400-other",
    ),
    pytest.param(
        429,
        {"code": "rate_limit_exceeded", "message": "slow down"},
        {"retry-after": "7"},
        ErrorKind.RATE_LIMITED,
        ["Try again in 7 seconds"],
        id="429-retry-after",
    ),
    pytest.param(
        429,
        {"code": "rate_limit_exceeded", "message": "slow down"},
        {},
        ErrorKind.RATE_LIMITED,
        ["Try again shortly"],
        id="429",
    ),
    pytest.param(500, {"message": "boom"}, {}, ErrorKind.SERVER, ["Server error (500)"], id="500"),
    pytest.param(503, {"message": "busy"}, {}, ErrorKind.SERVER, ["(503)"], id="503"),
    pytest.param(422, {"message": "nope"}, {}, ErrorKind.BAD_REQUEST, ["(422)", "nope"], id="422"),
]


@pytest.mark.parametrize(("status", "error", "headers", "kind", "phrases"), STATUS_CASES)
async def test_status_errors_on_create(
    status: int,
    error: dict[str, Any],
    headers: dict[str, str],
    kind: ErrorKind,
    phrases: list[str],
) -> None:
    backend = mock_backend(error_reply(status, error, headers))
    explained = await failure(backend)
    assert explained.kind is kind
    assert explained.status_code == status
    assert explained.request_id == "req_42"
    assert explained.code == error.get("code")
    assert explained.param == error.get("param")
    text = explained.user_message
    for phrase in phrases:
        assert phrase in text
    assert KEY not in text and "\x1b" not in text
    await backend.aclose()


async def test_entra_auth_errors_name_scope_and_role() -> None:
    credential = FakeCredential()
    profile = make_profile(
        "https://acct.services.ai.azure.com/api/projects/p",
        kind=EndpointKind.FOUNDRY_PROJECT,
        auth=AuthMethod.ENTRA_ID,
    )
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers["authorization"])
        return error_reply(401, {"code": "Unauthorized", "message": "bad token"})(request)

    backend = mock_backend(handler, profile=profile, credential=credential)
    error = await failure(backend)
    assert seen == ["Bearer entra-token-xyz"]
    assert credential.scopes == [("https://ai.azure.com/.default",)]
    assert error.kind is ErrorKind.AUTH
    assert "https://ai.azure.com/.default" in error.detail
    assert "Cognitive Services OpenAI User" in error.detail
    assert "entra-token-xyz" not in error.user_message
    await backend.aclose()
    assert not credential.closed  # the caller's credential is the caller's to close


@pytest.mark.parametrize("which", ["ClientAuthenticationError", "CredentialUnavailableError"])
async def test_credential_failure_lists_sources(which: str) -> None:
    import azure.core.exceptions
    import azure.identity

    cls = getattr(azure.core.exceptions, which, None) or getattr(azure.identity, which)
    message = (
        "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
        "Attempted credentials:\n"
        "\tEnvironmentCredential: EnvironmentCredential authentication unavailable.\n"
        "\tAzureCliCredential: Please run 'az login' to set up an account\n"
        "To mitigate this issue, please refer to the troubleshooting guidelines here at "
        "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot."
    )
    credential = FakeCredential(error=cls(message=message))
    profile = make_profile(
        "https://myres.openai.azure.com", kind=EndpointKind.AZURE_OPENAI, auth=AuthMethod.ENTRA_ID
    )
    backend = mock_backend(sse(), profile=profile, credential=credential)
    error = await failure(backend)
    assert error.kind is ErrorKind.AUTH
    assert "https://cognitiveservices.azure.com/.default" in error.detail
    assert "EnvironmentCredential" in error.detail and "AzureCliCredential" in error.detail
    assert "aka.ms" not in error.detail and "\t" not in error.detail
    await backend.aclose()


async def test_default_credential_is_made_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.identity.aio

    made: list[FakeCredential] = []

    def factory() -> FakeCredential:
        made.append(FakeCredential(token="made-token"))
        return made[-1]

    monkeypatch.setattr(azure.identity.aio, "DefaultAzureCredential", factory)
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers["authorization"])
        return sse({"type": "response.completed", "response": response_obj()})(request)

    profile = make_profile(
        "https://myres.openai.azure.com", kind=EndpointKind.AZURE_OPENAI, auth=AuthMethod.ENTRA_ID
    )
    backend = mock_backend(handler, profile=profile)
    await collect(backend)
    await collect(backend)
    assert seen == ["Bearer made-token", "Bearer made-token"]
    assert len(made) == 1 and made[0].scopes[0] == ("https://cognitiveservices.azure.com/.default",)
    await backend.aclose()
    assert made[0].closed


async def test_no_auth_sends_placeholder() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("authorization", ""))
        return sse({"type": "response.completed", "response": response_obj()})(request)

    backend = mock_backend(handler, profile=make_profile(auth=AuthMethod.NONE), env={})
    await collect(backend)
    assert seen == ["Bearer unused"]


@pytest.mark.parametrize(
    ("raised", "title"),
    [
        (httpx2.ConnectError("[Errno 111] Connection refused"), "Could not connect to"),
        (httpx2.ReadTimeout("timed out"), "Timed out waiting for"),
    ],
)
async def test_transport_errors(raised: Exception, title: str) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise raised

    backend = mock_backend(handler)
    error = await failure(backend)
    assert error.kind is ErrorKind.CONNECTION
    assert error.title.startswith(title) and MOCK_URL in error.title
    assert error.status_code is None


async def test_retrieve_maps_not_found_and_malformed_ids_to_none() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        rid = request.url.path.rsplit("/", 1)[-1]
        if rid == "gone":
            return error_reply(404, {"message": "not found"})(request)
        if rid == "bad":
            return error_reply(
                400,
                {"code": "invalid_parameters", "param": "responseId{bad}", "message": "Malformed"},
            )(request)
        if rid == "boom":
            return error_reply(500, {"message": "boom"})(request)
        return httpx2.Response(
            200,
            json=response_obj(
                id=rid,
                model="gpt-4o-2024-08-06",
                instructions="Be kind.",
                created_at=1700000000,
                previous_response_id="resp_0",
                output=[
                    {
                        "type": "message",
                        "id": "msg_1",
                        "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": "Hi!", "annotations": []}],
                    }
                ],
            ),
        )

    backend = mock_backend(handler)
    assert await backend.retrieve("gone") is None
    assert await backend.retrieve("bad") is None
    with pytest.raises(BackendError) as caught:
        await backend.retrieve("boom")
    assert caught.value.kind is ErrorKind.SERVER
    found = await backend.retrieve("resp_9")
    assert found is not None
    assert (found.id, found.output_text, found.model) == ("resp_9", "Hi!", "gpt-4o-2024-08-06")
    assert (found.instructions, found.previous_response_id) == ("Be kind.", "resp_0")
    assert found.created_at == 1700000000.0 and found.usage == Usage()


async def test_input_messages_not_found_is_an_error() -> None:
    backend = mock_backend(error_reply(404, {"message": "gone"}))
    with pytest.raises(BackendError) as caught:
        await backend.input_messages("resp_x")
    assert caught.value.kind is ErrorKind.NOT_FOUND


async def test_list_models_for_foundry_follows_next_link() -> None:
    project = "http://127.0.0.1:9/api/projects/lab"
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        if request.url.params.get("page") == "2":
            return httpx2.Response(200, json={"value": [{"name": "o4-mini"}]})
        return httpx2.Response(
            200,
            json={
                "value": [{"name": "gpt-4o", "modelName": "gpt-4o"}, {"name": "gpt-4.1"}],
                "nextLink": f"{project}/deployments?api-version=v1&page=2",
            },
        )

    backend = mock_backend(
        handler, profile=make_profile(project, kind=EndpointKind.FOUNDRY_PROJECT)
    )
    assert await backend.list_models() == ["gpt-4o", "gpt-4.1", "o4-mini"]
    assert seen == [
        f"{project}/deployments?api-version=v1",
        f"{project}/deployments?api-version=v1&page=2",
    ]


async def test_list_models_failure() -> None:
    backend = mock_backend(error_reply(401, {"message": "no"}))
    with pytest.raises(BackendError) as caught:
        await backend.list_models()
    assert caught.value.kind is ErrorKind.AUTH


def test_clean_text_masks_secrets_and_controls() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"
    text = f"key {KEY} token {jwt} Bearer abcdefghijklmnop\x00\x1b[2J end\n"
    cleaned = clean_text(text, secrets=["my-own-secret"])
    assert KEY not in cleaned and jwt not in cleaned and "abcdefghijklmnop" not in cleaned
    assert "\x00" not in cleaned and "\x1b" not in cleaned and cleaned.endswith("end")
    assert clean_text("x my-own-secret y", secrets=["my-own-secret"]) == "x *** y"
    assert len(clean_text("a" * 1000)) == 400


# --------------------------------------------------------------------------- loopback server


@pytest.fixture
def server() -> Iterator[ResponsesServer]:
    with ResponsesServer(tokens_per_second=None, api_key=KEY) as running:
        yield running
        assert running.schema_errors == []


@pytest.fixture
async def backend(server: ResponsesServer) -> AsyncIterator[Backend]:
    made = Backend(make_profile(server.base_url), env={KEY_ENV: KEY}, max_retries=0)
    yield made
    await made.aclose()


async def test_stream_reply_events(server: ResponsesServer, backend: Backend) -> None:
    events = await collect(backend, messages=hi("hello there"))
    started = events[0]
    assert isinstance(started, ResponseStarted) and started.model == "gpt-4o"
    assert started.response_id.startswith("resp_")
    assert all(isinstance(event, TextDelta) and event.text for event in events[1:-1])
    assert text_of(events) == "You said: hello there"
    done = finished(events)
    assert done.status is MessageStatus.COMPLETED
    assert done.response_id == started.response_id and done.model == "gpt-4o"
    assert done.usage.output_tokens is not None and done.usage.output_tokens > 0
    assert done.usage.total_tokens == (done.usage.input_tokens or 0) + done.usage.output_tokens
    assert done.error is None and done.incomplete_reason is None


async def test_chaining_sends_instructions_every_turn(
    server: ResponsesServer, backend: Backend
) -> None:
    first = finished(await collect(backend, messages=hi("one")))
    second = finished(await collect(backend, messages=hi("two"), previous=first.response_id))
    assert second.status is MessageStatus.COMPLETED
    bodies = server.created()
    assert [body.get("instructions") for body in bodies] == ["Answer briefly.", "Answer briefly."]
    assert "previous_response_id" not in bodies[0]
    assert bodies[1]["previous_response_id"] == first.response_id
    assert bodies[1]["input"] == [{"type": "message", "role": "user", "content": "two"}]
    stored = await backend.retrieve(second.response_id or "")
    assert stored is not None and stored.previous_response_id == first.response_id


async def test_replayed_transcript_is_sent_as_messages(
    server: ResponsesServer, backend: Backend
) -> None:
    transcript = [
        InputMessage(MessageRole.USER, "first"),
        InputMessage(MessageRole.ASSISTANT, "an earlier answer"),
        InputMessage(MessageRole.USER, "second"),
    ]
    events = await collect(backend, messages=transcript)
    assert text_of(events) == "You said: second"
    assert server.created()[0]["input"] == to_input_items(transcript)


async def test_optional_settings_sent_only_when_set(
    server: ResponsesServer, backend: Backend
) -> None:
    await collect(backend, GenerationSettings(model="gpt-4o"))
    await collect(
        backend,
        GenerationSettings(model="gpt-4o", temperature=0.0, top_p=0.5, max_output_tokens=2),
    )
    plain, tuned = server.created()
    for key in ("temperature", "top_p", "max_output_tokens", "instructions"):
        assert key not in plain
    assert (tuned["temperature"], tuned["top_p"], tuned["max_output_tokens"]) == (0.0, 0.5, 2)


async def test_max_output_tokens_gives_incomplete(
    server: ResponsesServer, backend: Backend
) -> None:
    events = await collect(
        backend, GenerationSettings(model="gpt-4o", max_output_tokens=2), hi("a b c d e f")
    )
    done = finished(events)
    assert done.status is MessageStatus.INCOMPLETE
    assert done.incomplete_reason == "max_output_tokens"
    assert text_of(events)  # the partial text is real output


FAULT_CASES = [
    pytest.param(Fault.RATE_LIMIT, {"retry_after": "3"}, ErrorKind.RATE_LIMITED, "3 seconds"),
    pytest.param(Fault.RATE_LIMIT_NO_RETRY_AFTER, {}, ErrorKind.RATE_LIMITED, "shortly"),
    pytest.param(Fault.SERVER_ERROR, {}, ErrorKind.SERVER, "(500)"),
    pytest.param(Fault.UNAVAILABLE, {}, ErrorKind.SERVER, "(503)"),
    pytest.param(Fault.DROP_STREAM, {}, ErrorKind.CONNECTION, "before the reply finished"),
    pytest.param(Fault.ERROR_EVENT, {}, ErrorKind.STREAM, "invalid content"),
    pytest.param(Fault.NESTED_ERROR, {}, ErrorKind.CONTENT_FILTER, "content filter"),
    pytest.param(
        Fault.NESTED_ERROR,
        {"with_failed": True},
        ErrorKind.CONTENT_FILTER,
        "content filter",
        id="nested_error-after-failed",
    ),
    pytest.param(
        Fault.NESTED_ERROR,
        {"code": "server_error", "message": "The model broke."},
        ErrorKind.STREAM,
        "The model broke.",
        id="nested_error-other",
    ),
    pytest.param(Fault.CONTENT_FILTER, {}, ErrorKind.CONTENT_FILTER, "Categories flagged: hate"),
    pytest.param(Fault.UNAUTHORIZED, {}, ErrorKind.AUTH, KEY_ENV),
    pytest.param(Fault.FORBIDDEN, {}, ErrorKind.AUTH, "Access denied (403)"),
]


@pytest.mark.parametrize(("fault", "options", "kind", "phrase"), FAULT_CASES)
async def test_faults_map_to_error_kinds(
    server: ResponsesServer,
    backend: Backend,
    fault: Fault,
    options: dict[str, Any],
    kind: ErrorKind,
    phrase: str,
) -> None:
    server.inject(fault, **options)
    events: list[BackendEvent] = []
    with pytest.raises(BackendError) as caught:
        async for event in backend.stream_reply(
            settings=SETTINGS, input=hi("some words to send back"), previous_response_id=None
        ):
            events.append(event)
    error = caught.value
    assert error.kind is kind
    assert phrase in error.user_message
    assert KEY not in error.user_message
    if fault in (Fault.DROP_STREAM, Fault.ERROR_EVENT, Fault.NESTED_ERROR):
        assert isinstance(events[0], ResponseStarted) and text_of(events)  # partial text kept
    else:
        assert error.status_code is not None and error.request_id
    # and the next turn works
    assert finished(await collect(backend)).status is MessageStatus.COMPLETED


async def test_failed_response(server: ResponsesServer, backend: Backend) -> None:
    server.inject(Fault.FAILED, message="The model failed\x1b[0m badly.")
    events = await collect(backend, messages=hi("some words to send back"))
    done = finished(events)
    assert done.status is MessageStatus.FAILED
    assert done.error is not None and "The model failed badly." in done.error
    assert done.response_id is not None and text_of(events)


async def test_incomplete_fault(server: ResponsesServer, backend: Backend) -> None:
    server.inject(Fault.INCOMPLETE, reason="content_filter")
    done = finished(await collect(backend, messages=hi("some words to send back")))
    assert (done.status, done.incomplete_reason) == (MessageStatus.INCOMPLETE, "content_filter")


async def test_sdk_retries_rate_limits(server: ResponsesServer) -> None:
    server.inject(Fault.RATE_LIMIT, times=2, retry_after="0")
    backend = Backend(make_profile(server.base_url), env={KEY_ENV: KEY}, max_retries=2)
    assert finished(await collect(backend)).status is MessageStatus.COMPLETED
    assert len(server.created()) == 3
    await backend.aclose()


async def test_unknown_deployment_and_reasoning_model() -> None:
    with ResponsesServer(deployments=["gpt-4o", "o4-mini"], reasoning_models=["o4-mini"]) as srv:
        backend = Backend(make_profile(srv.base_url, auth=AuthMethod.NONE), max_retries=0)
        error = await failure(backend, settings=GenerationSettings(model="gpt-5"))
        assert error.kind is ErrorKind.DEPLOYMENT_NOT_FOUND and error.code == "DeploymentNotFound"
        assert "'gpt-5'" in error.title and srv.base_url in error.detail
        error = await failure(backend, settings=GenerationSettings(model="o4-mini", temperature=1))
        assert error.kind is ErrorKind.UNSUPPORTED_PARAMETER and error.param == "temperature"
        events = await collect(backend, GenerationSettings(model="o4-mini"))
        assert finished(events).status is MessageStatus.COMPLETED
        await backend.aclose()
        assert srv.schema_errors == []


async def test_expired_previous_response(server: ResponsesServer, backend: Backend) -> None:
    first = finished(await collect(backend))
    assert first.response_id is not None
    assert await backend.retrieve(first.response_id) is not None
    server.expire(first.response_id)
    assert await backend.retrieve(first.response_id) is None
    error = await failure(backend, previous=first.response_id)
    assert error.kind is ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND
    assert error.param == "previous_response_id"


async def test_retrieve_stored_response(server: ResponsesServer, backend: Backend) -> None:
    first = finished(await collect(backend))
    second = finished(await collect(backend, messages=hi("again"), previous=first.response_id))
    stored = await backend.retrieve(second.response_id or "")
    assert stored is not None
    assert stored.id == second.response_id
    assert stored.previous_response_id == first.response_id
    assert stored.instructions == "Answer briefly." and stored.model == "gpt-4o"
    assert stored.created_at
    # status/output_text of a stored reply: see the MockTransport and agentserver tests (the
    # local server keeps a streamed response "in_progress" in its store for now)


async def test_input_messages_follow_pagination(server: ResponsesServer, backend: Backend) -> None:
    # user turns only: the local server cannot yet list assistant items sent with string
    # content (the agentserver test covers assistant items)
    transcript = [InputMessage(MessageRole.USER, f"message {i}") for i in range(150)]
    done = finished(await collect(backend, messages=transcript))
    assert await backend.input_messages(done.response_id or "") == transcript
    pages = [
        r
        for r in server.requests
        if r.path.endswith("/input_items") and r.query.get("order") == "asc"
    ]
    assert len(pages) == 2
    assert pages[0].query["order"] == "asc" and pages[0].query["limit"] == "100"
    assert "after" in pages[1].query


async def test_cancelled_stream_leaves_backend_usable(
    server: ResponsesServer, backend: Backend
) -> None:
    stream = backend.stream_reply(
        settings=SETTINGS, input=hi("a long enough prompt here"), previous_response_id=None
    )
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert finished(await collect(backend)).status is MessageStatus.COMPLETED


async def test_timeout_mid_stream(server: ResponsesServer) -> None:
    server.inject(Fault.STALL, after_deltas=1)
    backend = Backend(make_profile(server.base_url), env={KEY_ENV: KEY}, max_retries=0, timeout=0.5)
    error = await failure(backend, messages=hi("some words to send back"))
    assert error.kind is ErrorKind.CONNECTION and error.title.startswith("Timed out")
    await backend.aclose()


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = Backend(
        make_profile(f"http://127.0.0.1:{port}/v1", auth=AuthMethod.NONE), max_retries=0
    )
    error = await failure(backend)
    assert error.kind is ErrorKind.CONNECTION
    assert error.title == f"Could not connect to http://127.0.0.1:{port}/v1"


async def test_wrong_key(server: ResponsesServer) -> None:
    backend = Backend(
        make_profile(server.base_url), env={KEY_ENV: "sk-wrong-key-000000"}, max_retries=0
    )
    error = await failure(backend)
    assert error.kind is ErrorKind.AUTH and error.status_code == 401
    assert "sk-wrong-key-000000" not in error.user_message
    await backend.aclose()


async def test_list_models(server: ResponsesServer, backend: Backend) -> None:
    assert await backend.list_models() == ["gpt-4o", "gpt-4o-mini", "o4-mini"]


async def test_azure_profile_uses_the_azure_base_url(server: ResponsesServer) -> None:
    profile = make_profile(server.url, kind=EndpointKind.AZURE_OPENAI)
    backend = Backend(profile, env={KEY_ENV: KEY}, max_retries=0)
    assert backend.base_url == f"{server.url}/openai/v1/" == server.azure_base_url + "/"
    done = finished(await collect(backend))
    assert done.status is MessageStatus.COMPLETED
    assert await backend.retrieve(done.response_id or "") is not None
    assert await backend.input_messages(done.response_id or "") == hi()
    paths = {request.path for request in server.requests}
    assert "/openai/v1/responses" in paths
    assert all(path.startswith("/openai/v1/") for path in paths)
    await backend.aclose()


async def test_compatible_profile_at_azure_base_url(server: ResponsesServer) -> None:
    backend = Backend(make_profile(server.azure_base_url), env={KEY_ENV: KEY}, max_retries=0)
    assert finished(await collect(backend)).status is MessageStatus.COMPLETED
    await backend.aclose()


async def test_entra_token_reaches_the_server() -> None:
    with ResponsesServer(api_key="entra-token-xyz") as srv:
        credential = FakeCredential()
        profile = make_profile(srv.url, kind=EndpointKind.AZURE_OPENAI, auth=AuthMethod.ENTRA_ID)
        backend = Backend(profile, max_retries=0, credential=credential)
        assert finished(await collect(backend)).status is MessageStatus.COMPLETED
        assert finished(await collect(backend)).status is MessageStatus.COMPLETED
        assert credential.scopes[0] == ("https://cognitiveservices.azure.com/.default",)
        await backend.aclose()


async def test_events_fall_back_to_the_sdk_iteration_without_its_private_members() -> None:
    """Deltas skip the SDK's typed models through private members of its stream; a
    stream without them (another SDK version) is iterated the public way."""
    from foundry_tui.backend.sdk_stream import stream_events as _events

    class PublicOnly:
        def __init__(self, items: list[object]) -> None:
            self._items = items

        def __aiter__(self) -> AsyncIterator[object]:
            return self._gen()

        async def _gen(self) -> AsyncIterator[object]:
            for item in self._items:
                yield item

    items: list[object] = ["a", "b"]
    assert [event async for event in _events(PublicOnly(items))] == items


def _delta_times(
    sends: list[float], *, on_delta: Callable[[VirtualClockLoop, int], None] = lambda loop, n: None
) -> list[float]:
    """Streams one-word deltas through the backend on a virtual clock, the i-th sent by the
    server at ``sends[i]`` seconds after the reply starts; returns when each reached the
    caller, on the same clock (``on_delta`` runs after each, with the count so far).

    The body is written as the clock reaches each send time; a delta whose time has passed
    while the reader was elsewhere is there at once, as if it waited in the socket."""

    def frame(event: dict[str, Any]) -> bytes:
        return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()

    async def body() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        yield frame({"type": "response.created", "response": response_obj("in_progress")})
        for i, at in enumerate(sends):
            if start + at > loop.time():
                await asyncio.sleep(start + at - loop.time())
            yield frame({"type": "response.output_text.delta", "delta": f"w{i} "})
        yield frame({"type": "response.completed", "response": response_obj()})

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    async def run() -> list[float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)
        backend = mock_backend(handler)
        started = 0.0
        times: list[float] = []
        try:
            async for event in backend.stream_reply(
                settings=SETTINGS, input=hi(), previous_response_id=None
            ):
                if isinstance(event, ResponseStarted):
                    started = loop.time()
                if isinstance(event, TextDelta):
                    times.append(loop.time() - started)
                    on_delta(loop, len(times))
        finally:
            await backend.aclose()
        return times

    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(run())


def _paced(count: int, rate: float) -> list[float]:
    """Send times of ``count`` deltas at ``rate`` a second, the first at once."""
    return [i / rate for i in range(count)]


def test_a_trickling_stream_is_read_a_few_deltas_at_a_time() -> None:
    """Deltas sent 20 ms apart are read several at a time, and never later than one wait
    after they were sent: the first one is not held back, the stream is not slower."""
    from foundry_tui.backend.sdk_stream import TRICKLE_WAIT

    sends = _paced(60, 50)
    times = _delta_times(sends)
    assert len(times) == 60  # a delta a word
    assert times[0] == sends[0]  # at once
    reads = len(set(times))  # the deltas read together reach the caller at the same time
    assert reads <= len(times) / 2  # about 20; one a delta without the wait
    late = [got - sent for got, sent in zip(times, sends, strict=True)]
    assert max(late) == pytest.approx(TRICKLE_WAIT - 1 / 50)  # the wait, less one gap
    assert times[-1] <= sends[-1] + TRICKLE_WAIT


def test_a_fast_stream_is_read_as_fast_as_it_comes() -> None:
    """500 deltas at 2,000 a second: each reaches the caller when it is sent, no wait."""
    sends = _paced(500, 2000)
    assert _delta_times(sends) == pytest.approx(sends, abs=1e-9)


def test_a_busy_app_does_not_slow_a_fast_stream() -> None:
    """The app drawing a frame between two deltas (here: 15 ms without yielding, every
    100 deltas) is not taken for a slow stream: the deltas wait in the socket meanwhile,
    and are read at once after it, with no trickle wait on top."""
    frame = 0.015

    def draw(loop: VirtualClockLoop, count: int) -> None:
        if count % 100 == 0:
            loop.advance(frame)

    sends = _paced(1000, 2000)
    times = _delta_times(sends, on_delta=draw)
    late = [got - sent for got, sent in zip(times, sends, strict=True)]
    assert max(late) <= frame  # the frame itself, nothing more
    assert times[-1] == pytest.approx(sends[-1])  # caught up by the end


def test_a_pause_in_a_fast_stream_is_not_taken_for_a_trickle() -> None:
    """A fast stream that stops for a moment (a busy server) goes on at once after the
    pause: no 0.1 s wait, which would hold back the end of the reply."""
    pause = 0.03
    sends = [at + (pause if i > 300 else 0.0) for i, at in enumerate(_paced(1000, 2000))]
    times = _delta_times(sends)
    assert times[301] - times[300] == pytest.approx(pause + 1 / 2000)  # the pause happened...
    assert times == pytest.approx(sends, abs=1e-9)  # ...and nothing waited on top of it


async def test_deltas_skip_the_sdk_typed_models(server: ResponsesServer, backend: Backend) -> None:
    """With this SDK, text deltas take the fast path; the other events are the SDK's."""
    from foundry_tui.backend.sdk_stream import stream_events as _events

    stream = await backend._get_client().responses.create(model="gpt-4o", input="hi", stream=True)
    async with stream:
        events = [event async for event in _events(stream)]
    kinds = [type(event).__name__ for event in events]
    assert "TextDeltaEvent" in kinds
    assert kinds[0] == "ResponseCreatedEvent" and kinds[-1] == "ResponseCompletedEvent"
    text = "".join(e.delta for e in events if type(e).__name__ == "TextDeltaEvent")
    assert text == "You said: hi"
