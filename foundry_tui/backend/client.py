"""The only module that talks HTTP: one `AsyncOpenAI` client per profile.

`openai` and `azure.identity` are imported lazily, inside methods, so importing this
module stays cheap (the app starts before either is loaded). The SDK's stream of
Responses API events is reduced to the app's `BackendEvent`s (models.py); every failure
leaves as a `BackendError` whose text a user can act on (see errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, cast

from foundry_tui.backend.auth import api_key_for, refuse_plain_http
from foundry_tui.backend.errors import explain, translatable
from foundry_tui.backend.limits import StreamLimits
from foundry_tui.backend.redirects import redirect_guard as _redirect_guard
from foundry_tui.backend.replies import ReplyReader
from foundry_tui.backend.replies import response_usage as _usage
from foundry_tui.backend.request import (
    EncodedBody,
    body_bytes,
    carries_files,
    create_body,
    next_body,
    to_input_items,
    upload,
)
from foundry_tui.backend.retries import (
    MAX_RETRY_WAIT,
    WAIT_NOTICE_SECONDS,
    CreateAttempts,
    retry_reason,
    retry_wait,
)
from foundry_tui.backend.sdk_stream import stream_events, warm_up_client_library
from foundry_tui.config.endpoints import base_url_for, entra_scope_for, foundry_project_endpoint
from foundry_tui.core.logs import debugging, get_logger, withhold_texts
from foundry_tui.core.models import (
    Answered,
    AuthMethod,
    BackendError,
    BackendEvent,
    EndpointKind,
    ErrorKind,
    FetchedFile,
    GenerationSettings,
    InputMessage,
    InputMessages,
    MessageRole,
    Profile,
    RetrievedResponse,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from foundry_tui.core.request_code import RequestCode
    from foundry_tui.core.session import NextRequest

__all__ = ["MAX_RETRY_WAIT", "Backend", "to_input_items", "warm_up_client_library"]

_log = get_logger(__name__)

_MAX_DEPLOYMENT_PAGES = 20
_DRAIN_SECONDS = 2.0
# A create that fails before any reply (429, 5xx, no connection) is retried here, not by
# the SDK (retries.py: MAX_RETRY_WAIT, and WAIT_NOTICE_SECONDS before a wait is announced).
# Reading a response's input items: pages of this many, at most this many pages. A server
# that ignores `limit` sends its default page (the API's default is 20).
_INPUT_PAGE = 100
_MAX_INPUT_PAGES = 50
_DEFAULT_PAGE = 20


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


def _files_of(content: object) -> tuple[FetchedFile, ...]:
    """The image and file parts of a prompt's content, as the server listed them."""
    if not isinstance(content, list):
        return ()
    files: list[FetchedFile] = []
    for part in content:
        kind = getattr(part, "type", None)
        if kind == "input_image":
            url = getattr(part, "image_url", None) or getattr(part, "file_id", None)
            files.append(
                FetchedFile(f"image-{len(files) + 1}", url if isinstance(url, str) else "")
            )
        elif kind == "input_file":
            name = getattr(part, "filename", None)
            url = (
                getattr(part, "file_data", None)
                or getattr(part, "file_id", None)
                or getattr(part, "file_url", None)
            )
            files.append(
                FetchedFile(
                    name if isinstance(name, str) and name else f"file-{len(files) + 1}",
                    url if isinstance(url, str) else "",
                )
            )
    return tuple(files)


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


async def _post_response(client: AsyncOpenAI, content: EncodedBody) -> Any:
    """``responses.create(stream=True)`` with a body already written as JSON (in a
    thread): the SDK would write it on the loop."""
    from openai import AsyncStream
    from openai.types.responses import Response, ResponseStreamEvent

    return await client.post(
        "/responses",
        content=upload(content),
        cast_to=Response,
        stream=True,
        stream_cls=AsyncStream[ResponseStreamEvent],
        options={
            "headers": {"Content-Type": "application/json", "Content-Length": str(len(content))},
            "security": {"bearer_auth": True},
        },
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _retry_wait(exc: Exception, attempt: int, attempts: int) -> float | None:
    """Seconds to wait before the next attempt of a failed create, or None: do not retry
    (the rules: retries.retry_wait)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return retry_wait(exc.status_code, exc.response.headers, attempt, attempts)
    if isinstance(exc, openai.APIConnectionError):  # timeouts are connection errors
        return retry_wait(None, None, attempt, attempts)
    return None


def _retry_reason(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APIStatusError):
        return retry_reason(exc.status_code)
    return retry_reason(None, timed_out=isinstance(exc, openai.APITimeoutError))


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
        if profile.auth is AuthMethod.ENTRA_ID:
            refuse_plain_http(profile, self.base_url)
            from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

            if self._credential is None:
                self._credential = DefaultAzureCredential()
            provider = get_bearer_token_provider(self._credential, entra_scope_for(profile))
            return cast("Callable[[], Awaitable[str]]", provider)
        key = api_key_for(profile, self.base_url, self._env)
        if profile.auth is AuthMethod.API_KEY:
            self._secrets = (key,)
        return key

    def _get_client(self) -> AsyncOpenAI:
        with self._client_lock:  # built by the warm-up thread or by the first request
            if self._client is None:
                from openai import AsyncOpenAI, DefaultAsyncHttpxClient

                from foundry_tui.backend.turns_taken import take_turns

                api_key = self._api_key()
                # A guard on where a redirect may lead; a body read in turns with the UI.
                on_response = [_redirect_guard(self.base_url), take_turns]
                http_client = self._http_client
                if http_client is None:
                    # The SDK's own defaults (connection limits, redirects followed).
                    http_client = DefaultAsyncHttpxClient(
                        timeout=self._timeout, event_hooks={"response": on_response}
                    )
                else:
                    hooks = http_client.event_hooks
                    http_client.event_hooks = {
                        **hooks,
                        "response": [*hooks["response"], *on_response],
                    }
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
        from foundry_tui.backend.sdk_stream import client_library_warm, warm_up_client_library

        if not client_library_warm():
            # Sent before the app's warm-up was done: what a first request imports and
            # builds is done in a thread (waiting for the warm-up's thread if it is at it),
            # not on the loop, where the screen froze for as long.
            await asyncio.to_thread(warm_up_client_library)
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

    def request_body(self, settings: GenerationSettings, request: NextRequest) -> dict[str, object]:
        """The body `stream_reply` posts for ``request`` (the same call as there)."""
        return next_body(settings, request)

    def request_code(self, settings: GenerationSettings, request: NextRequest) -> RequestCode:
        """That request as Python and curl, for the palette's "View code"; never a key."""
        from foundry_tui.backend.request_code import code_for

        return code_for(self.profile, self.base_url, self.request_body(settings, request))

    async def stream_reply(
        self,
        *,
        settings: GenerationSettings,
        input: list[InputMessage],
        previous_response_id: str | None,
        store: bool = True,
        prompt_cache_key: str | None = None,
        omit: Collection[str] = (),
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
        client = self._create_client()
        arguments: dict[str, Any] = create_body(
            settings,
            input,
            previous_response_id,
            store=store,
            prompt_cache_key=prompt_cache_key,
            omit=omit,
        )
        create: Callable[[], Awaitable[Any]] = lambda: client.responses.create(**arguments)  # noqa: E731
        if carries_files(input):
            content = await asyncio.to_thread(body_bytes, arguments)
            create = functools.partial(_post_response, client, content)
        attempts = CreateAttempts(
            create,
            failures=translatable(),
            judge=lambda failure, attempt, most: (
                _retry_wait(failure, attempt, most),
                _retry_reason(failure),
            ),
            refused=lambda failure: self._explain(failure, "create", settings),
            attempts=self._max_retries + 1,
            notice_after=WAIT_NOTICE_SECONDS,
        )
        async with contextlib.aclosing(attempts.events()) as waits:
            async for wait in waits:
                yield wait
        stream = attempts.answer
        request_id = stream.response.headers.get("x-request-id") or stream.response.headers.get(
            "apim-request-id"
        )
        reader = ReplyReader(base_url=self.base_url, secrets=self._secrets, request_id=request_id)
        limits = StreamLimits(
            idle=self.profile.stream_idle_seconds,
            total=self.profile.stream_total_seconds,
            base_url=self.base_url,
        )
        try:
            async with stream:
                if attempts.announced:
                    yield Answered()
                events = stream_events(stream, limits)
                async for event in events:
                    for reply_event in reader.read(event):
                        yield reply_event
                    if reader.done:
                        await _drain(events)
                        return
        except BackendError:
            raise
        except translatable() as exc:
            raise self._explain(exc, "stream", settings, request_id) from exc
        finally:
            limits.close()
        yield reader.end()

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

    async def delete_response(self, response_id: str) -> bool:
        """Deletes the stored response; False when the server no longer had it (deleted
        or expired: nothing left to delete). BackendError when it could not."""
        client = await self._ready_client()
        import openai

        try:
            await client.responses.delete(response_id)
        except openai.NotFoundError:
            return False
        except translatable() as exc:
            error = self._explain(exc, "delete")  # a "not found" 400, as in retrieve
            if error.kind is ErrorKind.NOT_FOUND:
                return False
            raise error from exc
        return True

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
            content = getattr(item, "content", None)
            text = _text_of(content)
            files = _files_of(content) if role == "user" else ()
            if text or files:
                messages.append(InputMessage(MessageRole(role), text, fetched_files=files))
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
