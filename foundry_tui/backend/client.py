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
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from foundry_tui.backend.errors import (
    clean_text,
    explain,
    retry_after_seconds,
    stream_error,
    translatable,
)
from foundry_tui.backend.limits import StreamLimits
from foundry_tui.backend.sdk_stream import stream_events, warm_up_client_library
from foundry_tui.config.endpoints import base_url_for, entra_scope_for, foundry_project_endpoint
from foundry_tui.core.coerce import ID_NOTE, MODEL_NOTE, USAGE_NOTE, short_string, token_count
from foundry_tui.core.guards import key_problem, plain_http_problem
from foundry_tui.core.logs import debugging, get_logger, hide_secret, withhold_texts
from foundry_tui.core.models import (
    Answered,
    AuthMethod,
    BackendError,
    BackendEvent,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    InputMessages,
    MessageRole,
    MessageStatus,
    Profile,
    ResponseFinished,
    ResponseStarted,
    RetrievedResponse,
    Retrying,
    TextDelta,
    Usage,
    Waiting,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types.responses import Response

__all__ = ["Backend", "to_input_items", "warm_up_client_library"]

_log = get_logger(__name__)

_MAX_DEPLOYMENT_PAGES = 20
_DRAIN_SECONDS = 2.0
# A create that fails before any reply (429, 5xx, no connection) is retried here, not by
# the SDK, so the status line can say so and count the wait down. A server that asks for
# a longer wait than this ends the turn with its message instead (Ctrl+R resends).
MAX_RETRY_WAIT = 60.0
# After this long without an answer (a gateway retrying a 429 by itself holds the request
# for a minute) the status line says how long the server is taking.
WAIT_NOTICE_SECONDS = 20.0
# Reading a response's input items: pages of this many, at most this many pages. A server
# that ignores `limit` sends its default page (the API's default is 20).
_INPUT_PAGE = 100
_MAX_INPUT_PAGES = 50
_DEFAULT_PAGE = 20


def to_input_items(messages: list[InputMessage]) -> list[dict[str, object]]:
    """Input items for `responses.create` from the app's messages."""
    return [
        {"type": "message", "role": MessageRole(message.role).value, "content": message.text}
        for message in messages
    ]


def _usage(response: Any) -> Usage:
    """The response's token counts; one that is not a whole number SQLite can hold (a
    broken server's 10**30, a string) is dropped (see `_usage_dropped`)."""
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage()
    return Usage(
        input_tokens=token_count(getattr(usage, "input_tokens", None)),
        output_tokens=token_count(getattr(usage, "output_tokens", None)),
        total_tokens=token_count(getattr(usage, "total_tokens", None)),
    )


def _usage_dropped(response: Any) -> bool:
    usage = getattr(response, "usage", None)
    return usage is not None and any(
        (value := getattr(usage, name, None)) is not None and token_count(value) is None
        for name in ("input_tokens", "output_tokens", "total_tokens")
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
    sees the reply taken in full and the connection can be reused. Bounded; the server's
    and the network's errors are ignored (the reply is complete already)."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _event in stream:
                pass
    except translatable():  # TimeoutError (the bound) is an OSError
        return


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _origin(url: Any) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def _redirect_guard(base_url: str) -> Callable[[Any], Awaitable[None]]:
    """A response hook that stops a redirect to another origin (scheme, host or port):
    followed, it would post the prompt, the transcript and the key there. A redirect
    within the origin (a path moved on the same server) is followed, as before."""

    async def guard(response: Any) -> None:
        if not response.has_redirect_location:
            return
        import httpx2  # loaded with openai already

        here = response.request.url
        try:
            target = here.join(response.headers["location"])
            if _origin(target) == _origin(here):
                return
            where = clean_text(f"{target.scheme}://{target.netloc.decode('ascii')}", limit=120)
        except (KeyError, ValueError, UnicodeError, httpx2.InvalidURL):
            # an address httpx cannot read: not followed either
            where = "an address that is not a valid URL"
        raise BackendError(
            ErrorKind.CONFIG,
            f"The server redirected the request to {where}",
            f"{base_url} answered {response.status_code} pointing to another host; the "
            "request was not sent there. If the service has moved, set the profile's "
            "endpoint to its new address.",
            status_code=response.status_code,
        )

    return guard


def _retry_wait(exc: Exception, attempt: int, attempts: int) -> float | None:
    """Seconds to wait before the next attempt of a failed create, or None: do not retry.

    The SDK's rules: connection errors, 408, 409, 429 and 5xx, `x-should-retry` obeyed;
    a wait the server asks for (under any `*retry-after*` name) up to MAX_RETRY_WAIT,
    else exponential backoff from 0.5 s to 8 s with jitter."""
    import openai

    if attempt >= attempts:
        return None
    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers
        should = headers.get("x-should-retry")
        status = exc.status_code
        if should == "false" or (
            should != "true" and status not in (408, 409, 429) and status < 500
        ):
            return None
        asked = retry_after_seconds(headers)
        if asked is not None:
            return asked if asked <= MAX_RETRY_WAIT else None
    elif not isinstance(exc, openai.APIConnectionError):  # timeouts are connection errors
        return None
    return min(0.5 * 2.0 ** (attempt - 1), 8.0) * (1 - 0.25 * random.random())


def _retry_reason(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "rate limited"
        if exc.status_code >= 500:
            return f"server error ({exc.status_code})"
        return f"the server answered {exc.status_code}"
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    return "could not connect"


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Done-callback: a request abandoned (cancelled turn) logs no unretrieved error."""
    if not task.cancelled():
        task.exception()


def _item_id(item: object) -> str | None:
    return _str_or_none(getattr(item, "id", None))


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
        self._single_try: AsyncOpenAI | None = None  # the client without SDK retries
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
        problem = plain_http_problem(self.base_url, profile.auth, allowed=profile.allow_plain_http)
        if problem is not None:
            raise BackendError(
                ErrorKind.CONFIG, "Not sent: the connection is not encrypted", problem + "."
            )
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
        problem = key_problem(key)
        if problem is not None:  # never sent: a server would echo it back
            raise BackendError(
                ErrorKind.CONFIG,
                f"The key in ${name} cannot be used",
                f"It {problem}: set {name} again without it.",
            )
        self._secrets = (key,)
        hide_secret(key, name)  # nor in the log
        return key

    def _get_client(self) -> AsyncOpenAI:
        with self._client_lock:  # built by the warm-up thread or by the first request
            if self._client is None:
                from openai import AsyncOpenAI, DefaultAsyncHttpxClient

                api_key = self._api_key()
                guard = _redirect_guard(self.base_url)
                http_client = self._http_client
                if http_client is None:
                    # The SDK's own defaults (connection limits, redirects followed), with
                    # a guard on where a redirect may lead.
                    http_client = DefaultAsyncHttpxClient(
                        timeout=self._timeout, event_hooks={"response": [guard]}
                    )
                else:
                    hooks = http_client.event_hooks
                    http_client.event_hooks = {**hooks, "response": [*hooks["response"], guard]}
                self._client = AsyncOpenAI(
                    base_url=self.base_url,
                    api_key=api_key,
                    max_retries=self._max_retries,
                    timeout=self._timeout,
                    http_client=http_client,
                )
                self._single_try = self._client.with_options(max_retries=0)
            return self._client

    async def _ready_client(self) -> AsyncOpenAI:
        """The client; built in a thread the first time. Importing openai (~0.5 s) and
        building its TLS context (~0.1 s) on the UI loop froze the screen for that long
        when something asked the server before the warm-up had done it (a conversation
        resumed at start is checked at once)."""
        if self._client is None:
            return await asyncio.to_thread(self._get_client)
        return self._client

    def _create_client(self) -> AsyncOpenAI:
        """The client for creating replies: the SDK does not retry; stream_reply does."""
        self._get_client()
        assert self._single_try is not None
        return self._single_try

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
        self._single_try = None  # shares the client's connections: closed with it
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
        Before the reply: `Retrying` before each retry of a failed request, `Waiting` once
        a request has gone unanswered WAIT_NOTICE_SECONDS, and `Answered` after either.
        """
        withhold_texts(message.text for message in input)  # logged only with --debug
        if debugging():
            _log.debug("request to %s (%s): %r", self.base_url, settings.model, input)
        await self._ready_client()
        from openai import omit

        client = self._create_client()
        arguments: dict[str, Any] = {
            "model": settings.model,
            "input": to_input_items(input),
            "instructions": settings.instructions if settings.instructions else omit,
            "previous_response_id": previous_response_id or omit,
            "temperature": settings.temperature if settings.temperature is not None else omit,
            "top_p": settings.top_p if settings.top_p is not None else omit,
            "max_output_tokens": (
                settings.max_output_tokens if settings.max_output_tokens is not None else omit
            ),
            "store": store,
            "stream": True,
        }
        attempts = self._max_retries + 1
        announced = False  # a Retrying or Waiting went out: Answered follows
        attempt = 1
        while True:
            request = asyncio.ensure_future(client.responses.create(**arguments))
            request.add_done_callback(_retrieved)
            failure: Exception | None = None
            try:
                answered, _ = await asyncio.wait({request}, timeout=WAIT_NOTICE_SECONDS)
                if not answered:
                    announced = True
                    yield Waiting(WAIT_NOTICE_SECONDS)
                stream = await request
            except translatable() as exc:
                failure = exc
            finally:
                request.cancel()  # a no-op once it is done; else the turn was cancelled
            if failure is None:
                break
            wait = _retry_wait(failure, attempt, attempts)
            if wait is None:
                raise self._explain(failure, "create", settings) from failure
            attempt += 1
            announced = True
            yield Retrying(_retry_reason(failure), wait, attempt, attempts)
            await asyncio.sleep(wait)

        request_id = stream.response.headers.get("x-request-id") or stream.response.headers.get(
            "apim-request-id"
        )
        started = False
        started_id: str | None = None
        held_failure: ResponseFinished | None = None
        limits = StreamLimits(
            idle=self.profile.stream_idle_seconds,
            total=self.profile.stream_total_seconds,
            base_url=self.base_url,
        )
        try:
            async with stream:
                if announced:
                    yield Answered()
                events = stream_events(stream, limits)
                async for event in events:
                    kind = getattr(event, "type", None)
                    if kind in ("response.created", "response.in_progress", "response.queued"):
                        if not started:
                            started = True
                            response = cast("Response", cast(Any, event).response)
                            started_id = short_string(response.id)
                            yield ResponseStarted(started_id, short_string(response.model))
                    elif kind == "response.output_text.delta":
                        delta = event.delta
                        if isinstance(delta, str) and delta:
                            yield TextDelta(delta)
                    elif kind in ("response.completed", "response.incomplete", "response.failed"):
                        response = cast("Response", cast(Any, event).response)
                        if not started:
                            started = True
                            started_id = short_string(response.id)
                            yield ResponseStarted(started_id, short_string(response.model))
                        finished = self._finished(kind, response, started_id)
                        if kind == "response.failed" and getattr(response, "error", None) is None:
                            # Azure sends `failed` with error null, then an error frame that
                            # says why (e.g. the output content filter): wait for it.
                            held_failure = finished
                            continue
                        yield finished
                        await _drain(events)
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
        except translatable() as exc:
            raise self._explain(exc, "stream", settings, request_id) from exc
        finally:
            limits.close()
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

    def _finished(
        self, kind: str, response: Response, started_id: str | None = None
    ) -> ResponseFinished:
        if kind == "response.completed":
            status = MessageStatus.COMPLETED
        elif kind == "response.incomplete":
            status = MessageStatus.INCOMPLETE
        else:
            status = MessageStatus.FAILED
        details = getattr(response, "incomplete_details", None)
        reason = short_string(getattr(details, "reason", None), 80)
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
        response_id = short_string(getattr(response, "id", None)) or started_id
        raw_model = getattr(response, "model", None)
        model = short_string(raw_model)
        notes: list[str] = []
        if response_id is None and getattr(response, "id", None) is not None:
            notes.append(ID_NOTE)
        if model is None and raw_model is not None and raw_model != "":
            notes.append(MODEL_NOTE)
        if _usage_dropped(response):
            notes.append(USAGE_NOTE)
        return ResponseFinished(
            status=status,
            response_id=response_id,
            model=model,
            usage=_usage(response),
            incomplete_reason=reason,
            error=error_text,
            notes=tuple(notes),
        )

    # ------------------------------------------------------------------ stored state

    async def retrieve(self, response_id: str) -> RetrievedResponse | None:
        """The stored response, or None when the server no longer has it."""
        client = await self._ready_client()
        import openai

        try:
            response = await client.responses.retrieve(response_id)
        except openai.NotFoundError:
            return None
        except translatable() as exc:
            # A 400 that says the id is unknown is "not there" too: agentserver's
            # "Malformed identifier" for ids it cannot have issued, and gateways that
            # answer an unknown id with 400 (the upstream's 404 inside their message).
            error = self._explain(exc, "retrieve")
            if error.kind is ErrorKind.NOT_FOUND:
                return None
            raise error from exc
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

    async def holds(self, response_id: str) -> bool:
        """Whether the server still has the response, asked without reading it: a stored
        reply can be megabytes, which the SDK would decode on the UI loop (a 50 MB reply
        held the screen a second when its conversation reopened) only to answer yes."""
        client = await self._ready_client()
        import openai

        try:
            async with client.responses.with_streaming_response.retrieve(response_id):
                return True
        except openai.NotFoundError:
            return False
        except translatable() as exc:
            error = self._explain(exc, "retrieve")  # a "not found" 400, as in retrieve
            if error.kind is ErrorKind.NOT_FOUND:
                return False
            raise error from exc

    async def input_messages(self, response_id: str) -> InputMessages:
        """The user/assistant messages of a stored response's input, oldest first.

        Bounded whatever the server does: a page or a cursor seen before ends the reading
        (a gateway that ignores `after` sends the same page forever), and so does the page
        limit; `cut` then says the server may hold more. A server that ignores `order`
        sends its default order, newest first (the API's default): told apart by asking
        once for the newest item, and put oldest first.
        """
        client = await self._ready_client()
        from openai import omit

        items: list[Any] = []
        seen: set[str] = set()
        cursors: set[str] = set()
        cursor: str | None = None
        cut = False
        newest_first = False
        try:
            for number in range(_MAX_INPUT_PAGES):
                page = await client.responses.input_items.list(
                    response_id, order="asc", limit=_INPUT_PAGE, after=cursor or omit
                )
                data = list(page.data or [])
                if number == 0 and len(data) > 1:
                    newest_first = await self._ignores_order(response_id, data[0])
                fresh = [item for item in data if _item_id(item) not in seen]
                if data and not fresh:
                    # The same page again: `after` is ignored. A server that ignores
                    # `limit` too sends its default page size; fewer was the whole list.
                    cut = len(items) >= _DEFAULT_PAGE
                    break
                items += fresh
                seen.update(i for i in map(_item_id, fresh) if i is not None)
                if not data or not page.has_more:
                    break
                cursor = _item_id(data[-1])
                if cursor is None or cursor in cursors:
                    cut = True
                    break
                cursors.add(cursor)
            else:
                cut = True
        except translatable() as exc:
            raise self._explain(exc, "input_items") from exc
        if newest_first:
            items.reverse()
        messages = InputMessages(cut=cut)
        for item in items:
            if getattr(item, "type", None) != "message":
                continue
            role = getattr(item, "role", None)
            if role not in ("user", "assistant"):
                continue
            text = _text_of(getattr(item, "content", None))
            if text:
                messages.append(InputMessage(MessageRole(role), text))
        return messages

    async def _ignores_order(self, response_id: str, first: object) -> bool:
        """Whether the server sent `first` (asked oldest first) as its newest item too."""
        first_id = _item_id(first)
        if first_id is None:
            return False
        newest = await self._get_client().responses.input_items.list(
            response_id, order="desc", limit=1
        )
        data = list(newest.data or [])
        return bool(data) and _item_id(data[0]) == first_id

    async def list_models(self) -> list[str]:
        """Model ids the endpoint offers (a Foundry project: its deployment names)."""
        client = await self._ready_client()
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
        except translatable() as exc:
            raise self._explain(exc, "list_models") from exc
        return list(dict.fromkeys(names))
