"""The only module that talks HTTP: one `AsyncOpenAI` client per profile.

`openai` and `azure.identity` are imported lazily, inside methods, so importing this
module stays cheap (the app starts before either is loaded). The SDK's stream of
Responses API events is reduced to the app's `BackendEvent`s (models.py); every failure
leaves as a `BackendError` whose text a user can act on (see errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from foundry_tui.endpoints import base_url_for, entra_scope_for, foundry_project_endpoint
from foundry_tui.errors import explain, stream_error
from foundry_tui.models import (
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
    RetrievedResponse,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types.responses import Response

__all__ = ["Backend", "to_input_items"]

_MAX_DEPLOYMENT_PAGES = 20
_DRAIN_SECONDS = 2.0
# While text trickles in (the reader waited more than TRICKLE_GAP for a delta), the
# reader waits TRICKLE_WAIT after that delta before reading on, so
# the next few events are read and decoded as one chunk. Every read costs the HTTP stack
# and the SDK's decoder the same whatever it holds: at 50 tokens/s that was a third of the
# app's CPU; waiting 0.1 s cut that by a fifth. The screen shows new text at most 8 times a
# second anyway, and the first delta and a fast stream are never held back.
TRICKLE_GAP = 0.010
TRICKLE_WAIT = 0.100
# A stream that brought this many deltas within this many seconds is fast: a pause in it
# (a busy server, the network) is not a trickle, and reading on at once keeps its end
# on screen without delay.
FAST_STREAM_DELTAS = 20
FAST_STREAM_SECONDS = 0.1


def to_input_items(messages: list[InputMessage]) -> list[dict[str, object]]:
    """Input items for `responses.create` from the app's messages."""
    return [
        {"type": "message", "role": MessageRole(message.role).value, "content": message.text}
        for message in messages
    ]


def _usage(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage()

    def number(name: str) -> int | None:
        value = getattr(usage, name, None)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return Usage(
        input_tokens=number("input_tokens"),
        output_tokens=number("output_tokens"),
        total_tokens=number("total_tokens"),
    )


def _text_of(content: object) -> str:
    """Text of a message item's content: a string, or the text parts joined."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    if isinstance(content, list):
        for part in content:
            kind = getattr(part, "type", None)
            text = getattr(part, "text", None)
            if kind in ("input_text", "output_text", "text") and isinstance(text, str):
                parts.append(text)
    return "\n".join(parts)


async def _drain(stream: AsyncIterator[object]) -> None:
    """Read what follows the final event (normally just the end of the body), so the server
    sees the reply taken in full and the connection can be reused. Bounded; errors ignored."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _event in stream:
                pass
    except Exception:
        return


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


class Backend:
    """Responses API access for one profile. Construction is cheap and imports nothing."""

    # Servers that keep responses: chain with previous_response_id, store=True.
    stateless = False

    def __init__(
        self,
        profile: Profile,
        *,
        env: Mapping[str, str] | None = None,
        max_retries: int = 2,
        timeout: float = 60.0,
        http_client: Any = None,
        credential: Any = None,
    ) -> None:
        """`http_client` (an `httpx2.AsyncClient`) and `credential` (an azure.identity.aio
        credential used instead of `DefaultAzureCredential`) exist for tests and embedding.
        """
        self.profile = profile
        self.base_url = base_url_for(profile)
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._max_retries = max_retries
        self._timeout = timeout
        self._http_client = http_client
        self._credential: Any = credential
        self._owns_credential = credential is None
        self._client: AsyncOpenAI | None = None
        self._client_lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    # ------------------------------------------------------------------ set-up

    @property
    def description(self) -> str:
        """Where requests go and how they authenticate; never the key itself."""
        auth = self.profile.auth
        if auth is AuthMethod.API_KEY:
            how = f"API key from ${self.profile.api_key_env}"
        elif auth is AuthMethod.ENTRA_ID:
            how = f"Entra ID ({entra_scope_for(self.profile)})"
        else:
            how = "no key"
        return f"{self.base_url} · {how}"

    def _api_key(self) -> str | Callable[[], Awaitable[str]]:
        profile = self.profile
        if profile.auth is AuthMethod.NONE:
            return "unused"
        if profile.auth is AuthMethod.ENTRA_ID:
            from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

            if self._credential is None:
                self._credential = DefaultAzureCredential()
            provider = get_bearer_token_provider(self._credential, entra_scope_for(profile))
            return cast("Callable[[], Awaitable[str]]", provider)
        name = profile.api_key_env
        key = self._env.get(name, "").strip()
        if not key:
            azure = profile.kind in (EndpointKind.AZURE_OPENAI, EndpointKind.FOUNDRY_PROJECT)
            where = "Keys and Endpoint in the Azure portal" if azure else "your provider"
            also = " or switch the profile to Entra ID" if azure else ""
            raise BackendError(
                ErrorKind.CONFIG,
                "No API key",
                f"Set {name} to the key for {self.base_url} (from {where}){also}.",
            )
        self._secrets = (key,)
        return key

    def _get_client(self) -> AsyncOpenAI:
        with self._client_lock:  # built by the warm-up thread or by the first request
            if self._client is None:
                from openai import AsyncOpenAI

                self._client = AsyncOpenAI(
                    base_url=self.base_url,
                    api_key=self._api_key(),
                    max_retries=self._max_retries,
                    timeout=self._timeout,
                    http_client=self._http_client,
                )
            return self._client

    def warm_up(self) -> None:
        """Builds the HTTP client (its TLS context takes ~0.1 s) off the UI loop, so the
        first request does not stall the screen. Best effort: a missing key is reported
        by the first request, as usual."""
        with contextlib.suppress(BackendError):
            self._get_client()

    def _explain(
        self,
        exc: BaseException,
        operation: str,
        settings: GenerationSettings | None = None,
        request_id: str | None = None,
    ) -> BackendError:
        return explain(
            exc,
            profile=self.profile,
            settings=settings,
            operation=operation,
            secrets=self._secrets,
            request_id=request_id,
        )

    async def aclose(self) -> None:
        """Close the HTTP client and the Entra ID credential (if this backend made it)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        credential = self._credential
        if credential is not None and self._owns_credential:
            self._credential = None
            await credential.close()

    # ------------------------------------------------------------------ replies

    async def stream_reply(
        self,
        *,
        settings: GenerationSettings,
        input: list[InputMessage],
        previous_response_id: str | None,
        store: bool = True,
    ) -> AsyncIterator[BackendEvent]:
        """Send one turn and yield what comes back.

        Yields `ResponseStarted` once, `TextDelta`s (never empty), then one
        `ResponseFinished` (completed, incomplete or failed) and stops. Anything else ends
        in a `BackendError`, including a stream that closes before its final event.
        """
        from openai import omit

        client = self._get_client()
        try:
            stream = await client.responses.create(
                model=settings.model,
                input=cast(Any, to_input_items(input)),
                instructions=settings.instructions if settings.instructions else omit,
                previous_response_id=previous_response_id or omit,
                temperature=settings.temperature if settings.temperature is not None else omit,
                top_p=settings.top_p if settings.top_p is not None else omit,
                max_output_tokens=(
                    settings.max_output_tokens if settings.max_output_tokens is not None else omit
                ),
                store=store,
                stream=True,
            )
        except Exception as exc:
            raise self._explain(exc, "create", settings) from exc

        request_id = stream.response.headers.get("x-request-id") or stream.response.headers.get(
            "apim-request-id"
        )
        started = False
        held_failure: ResponseFinished | None = None
        try:
            async with stream:
                async for event in _events(stream):
                    kind = getattr(event, "type", None)
                    if kind in ("response.created", "response.in_progress", "response.queued"):
                        if not started:
                            started = True
                            response = cast("Response", cast(Any, event).response)
                            yield ResponseStarted(response.id, _str_or_none(response.model))
                    elif kind == "response.output_text.delta":
                        delta = event.delta
                        if isinstance(delta, str) and delta:
                            yield TextDelta(delta)
                    elif kind in ("response.completed", "response.incomplete", "response.failed"):
                        response = cast("Response", cast(Any, event).response)
                        if not started:
                            started = True
                            yield ResponseStarted(response.id, _str_or_none(response.model))
                        finished = self._finished(kind, response)
                        if kind == "response.failed" and getattr(response, "error", None) is None:
                            # Azure sends `failed` with error null, then an error frame that
                            # says why (e.g. the output content filter): wait for it.
                            held_failure = finished
                            continue
                        yield finished
                        await _drain(stream)
                        return
                    elif kind == "error":
                        raise stream_error(
                            _str_or_none(getattr(event, "code", None)),
                            _str_or_none(getattr(event, "message", None)),
                            param=_str_or_none(getattr(event, "param", None)),
                            secrets=self._secrets,
                            request_id=request_id,
                        )
        except BackendError:
            raise
        except Exception as exc:
            raise self._explain(exc, "stream", settings, request_id) from exc
        if held_failure is not None:
            yield held_failure
            return
        raise BackendError(
            ErrorKind.CONNECTION,
            "The connection closed before the reply finished",
            f"{self.base_url} ended the stream without a final event. "
            "The text received so far is kept.",
            request_id=request_id,
        )

    def _finished(self, kind: str, response: Response) -> ResponseFinished:
        if kind == "response.completed":
            status = MessageStatus.COMPLETED
        elif kind == "response.incomplete":
            status = MessageStatus.INCOMPLETE
        else:
            status = MessageStatus.FAILED
        details = getattr(response, "incomplete_details", None)
        reason = _str_or_none(getattr(details, "reason", None))
        error_text: str | None = None
        if status is MessageStatus.FAILED:
            error = getattr(response, "error", None)
            if error is None:
                error_text = "The server reported the reply as failed without saying why."
            else:
                made = stream_error(
                    _str_or_none(getattr(error, "code", None)),
                    _str_or_none(getattr(error, "message", None)),
                    secrets=self._secrets,
                )
                error_text = made.user_message
        return ResponseFinished(
            status=status,
            response_id=_str_or_none(getattr(response, "id", None)),
            model=_str_or_none(getattr(response, "model", None)),
            usage=_usage(response),
            incomplete_reason=reason,
            error=error_text,
        )

    # ------------------------------------------------------------------ stored state

    async def retrieve(self, response_id: str) -> RetrievedResponse | None:
        """The stored response, or None when the server no longer has it."""
        import openai

        client = self._get_client()
        try:
            response = await client.responses.retrieve(response_id)
        except openai.NotFoundError:
            return None
        except openai.BadRequestError as exc:
            # agentserver answers 400 "Malformed identifier" (param responseId{...}) for ids
            # it cannot have issued: for our purposes the response is not there.
            param = (exc.param or "").lower()
            if "responseid" in param or "response_id" in param or param == "id":
                return None
            raise self._explain(exc, "retrieve") from exc
        except Exception as exc:
            raise self._explain(exc, "retrieve") from exc
        instructions = response.instructions
        return RetrievedResponse(
            id=response.id,
            status=_str_or_none(getattr(response, "status", None)),
            model=_str_or_none(getattr(response, "model", None)),
            output_text=response.output_text,
            previous_response_id=_str_or_none(getattr(response, "previous_response_id", None)),
            usage=_usage(response),
            instructions=instructions if isinstance(instructions, str) else None,
            created_at=(
                float(response.created_at) if isinstance(response.created_at, int | float) else None
            ),
        )

    async def input_messages(self, response_id: str) -> list[InputMessage]:
        """The user/assistant messages of a stored response's input, oldest first."""
        client = self._get_client()
        messages: list[InputMessage] = []
        try:
            async for item in client.responses.input_items.list(
                response_id, order="asc", limit=100
            ):
                if getattr(item, "type", None) != "message":
                    continue
                role = getattr(item, "role", None)
                if role not in ("user", "assistant"):
                    continue
                text = _text_of(getattr(item, "content", None))
                if text:
                    messages.append(InputMessage(MessageRole(role), text))
        except Exception as exc:
            raise self._explain(exc, "input_items") from exc
        return messages

    async def list_models(self) -> list[str]:
        """Model ids the endpoint offers (a Foundry project: its deployment names)."""
        client = self._get_client()
        names: list[str] = []
        try:
            if self.profile.kind is EndpointKind.FOUNDRY_PROJECT:
                url: str | None = f"{foundry_project_endpoint(self.profile)}/deployments"
                params: dict[str, object] | None = {"api-version": "v1"}
                for _page in range(_MAX_DEPLOYMENT_PAGES):
                    if url is None:
                        break
                    page = await client.get(
                        url,
                        cast_to=cast(Any, object),
                        options={"params": params} if params else {},
                    )
                    value = page.get("value", []) if isinstance(page, dict) else []
                    for entry in value if isinstance(value, list) else []:
                        name = entry.get("name") if isinstance(entry, dict) else None
                        if isinstance(name, str) and name:
                            names.append(name)
                    next_link = page.get("nextLink") if isinstance(page, dict) else None
                    url, params = (next_link, None) if isinstance(next_link, str) else (None, None)
            else:
                # The listing as JSON, not the SDK's typed page: a pydantic object per entry
                # held the UI loop for 5 s on a listing of 100,000 (raw: under 0.1 s).
                listing = await client.get("/models", cast_to=cast(Any, object))
                data = listing.get("data", []) if isinstance(listing, dict) else []
                for entry in data if isinstance(data, list) else []:
                    name = entry.get("id") if isinstance(entry, dict) else None
                    if isinstance(name, str) and name:
                        names.append(name)
        except Exception as exc:
            raise self._explain(exc, "list_models") from exc
        return list(dict.fromkeys(names))


class _TextDelta:
    """A ``response.output_text.delta`` event, read without the SDK's typed model."""

    __slots__ = ("delta",)
    type = "response.output_text.delta"

    def __init__(self, delta: object) -> None:
        self.delta = delta


async def _events(stream: Any) -> AsyncIterator[Any]:
    """The stream's events as the SDK makes them, except text deltas.

    The SDK builds and validates a typed model for every event; a reply streams one
    event per token, and a delta needs only its text: at 2,000 tokens/s that is a fifth
    of the app's CPU. Deltas are read from the SSE data here; every other event still
    goes through the SDK's own processing, errors included. This uses three private
    members of the SDK's AsyncStream (as its own loop does); without them, the SDK's own
    iteration is used.
    """
    try:
        events = stream._iter_events()
        process = stream._client._process_response_data
        cast_to = stream._cast_to
        options = stream._options
        legacy = options is None or getattr(options, "stream_mode", "legacy") == "legacy"
    except AttributeError:
        async for event in stream:
            yield event
        return
    from openai import APIError

    loop = asyncio.get_running_loop()
    iterator = events.__aiter__()
    recent: deque[float] = deque(maxlen=FAST_STREAM_DELTAS)  # when the latest deltas came
    while True:
        asked = loop.time()
        try:
            sse = await iterator.__anext__()
        except StopAsyncIteration:
            break
        # How long this event kept the reader waiting: not how long the app took between
        # two events (a frame drawn meanwhile is not a slow stream).
        waited = loop.time() - asked
        if sse.data.startswith("[DONE]"):
            break
        data = sse.json()
        if isinstance(data, dict):
            if data.get("type") == "response.output_text.delta" and "error" not in data:
                yield _TextDelta(data.get("delta"))
                now = loop.time()
                fast = len(recent) == FAST_STREAM_DELTAS and now - recent[0] < FAST_STREAM_SECONDS
                recent.append(now)
                if waited > TRICKLE_GAP and not fast:
                    await asyncio.sleep(TRICKLE_WAIT)
                continue
            if legacy and data.get("error"):  # as the SDK does for a frame with an error
                error = data["error"]
                message = error.get("message") if isinstance(error, dict) else None
                raise APIError(
                    message=message
                    if isinstance(message, str) and message
                    else "An error occurred during streaming",
                    request=stream.response.request,
                    body=error,
                )
        yield process(data=data, cast_to=cast_to, response=stream.response)


def warm_up_client_library() -> None:
    """Imports openai and builds its stream-event validators here, in a thread: on the UI
    loop they cost about 0.5 s and 0.6 s, the first time a reply streams. Best effort."""
    try:
        import openai.resources.responses.responses  # noqa: F401
        from openai._models import construct_type
        from openai.types.responses import ResponseStreamEvent

        response = {"id": "resp_0", "object": "response", "created_at": 0, "output": []}
        for event in (
            {"type": "response.created", "response": response},
            {"type": "response.output_text.delta", "delta": ""},
            {"type": "response.completed", "response": response},
        ):
            construct_type(type_=ResponseStreamEvent, value={**event, "sequence_number": 0})
    except Exception:  # a private helper of the SDK: a warm-up must never fail the app
        return
