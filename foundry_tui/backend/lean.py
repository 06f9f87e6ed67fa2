"""`LeanBackend`: replies streamed without the openai SDK, for `foundry-tui ask`.

Importing openai takes about 0.65 s, more than the whole budget from launch to the first
token of a one-shot question. This backend posts ``/responses`` with httpx2 (which the SDK
is built on) and reads the Server-Sent Events itself (sse.py). Everything that is not
transport is the SDK client's own: the request body (request.py), the key and its checks
(auth.py), the retry policy (retries.py), the redirect guard (redirects.py), the stream
limits (limits.py), the reading of the events (replies.py) and every error's explanation
(errors.py). It yields the same `BackendEvent`s, so `ChatSession` drives it unchanged.

Only replies take this path. Reading stored responses (``--resume resp_…``) and the model
list go through the SDK client, made when first needed. A profile that signs in with
Entra ID uses the SDK client (`Backend`) throughout: see `backend_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import AsyncIterator, Collection, Mapping
from typing import TYPE_CHECKING, Any

from foundry_tui import __version__
from foundry_tui.backend.auth import api_key_for
from foundry_tui.backend.errors import (
    MAX_ERROR_BODY,
    StatusAnswer,
    connection_error,
    error_frame,
    explain_answer,
    timeout_error,
    unexpected_error,
)
from foundry_tui.backend.limits import StreamLimits, next_within
from foundry_tui.backend.redirects import redirect_guard
from foundry_tui.backend.replies import (
    REASONING_DELTAS,
    REPEATS,
    TYPE_WITHIN,
    JsonView,
    ReplyReader,
)
from foundry_tui.backend.request import (
    EncodedBody,
    body_bytes,
    carries_files,
    create_body,
    next_body,
    upload,
)
from foundry_tui.backend.retries import (
    WAIT_NOTICE_SECONDS,
    CreateAttempts,
    retry_reason,
    retry_wait,
)
from foundry_tui.backend.sse import ServerSentEvent, SSEDecoder
from foundry_tui.config.endpoints import base_url_for
from foundry_tui.core.models import (
    Answered,
    AuthMethod,
    BackendError,
    BackendEvent,
    GenerationSettings,
    InputMessage,
    Profile,
    RetrievedResponse,
    TextDelta,
)

if TYPE_CHECKING:
    import httpx2

    from foundry_tui.backend.client import Backend
    from foundry_tui.core.request_code import RequestCode
    from foundry_tui.core.session import NextRequest
    from foundry_tui.core.workspace import AppBackend

__all__ = ["LeanBackend", "backend_for"]

# What follows the final event (normally only the end of the body) is read for at most this
# long, so the connection is left clean.
_DRAIN_SECONDS = 2.0


class _Refused(Exception):
    """The server answered the create with an error status."""

    def __init__(self, answer: StatusAnswer) -> None:
        super().__init__(answer.status_code)
        self.answer = answer


def backend_for(profile: Profile, env: Mapping[str, str] | None = None) -> AppBackend:
    """The lean backend, or the SDK client for a profile whose token comes from Entra ID
    (azure-identity needs the SDK's hooks; slower to start, the same replies)."""
    if profile.auth is AuthMethod.ENTRA_ID:
        from foundry_tui.backend.client import Backend

        return Backend(profile, env=env)
    return LeanBackend(profile, env=env)


def _judge(failure: Exception, attempt: int, attempts: int) -> tuple[float | None, str]:
    """A failed create read by the shared rules (retries.py): the wait, and the reason."""
    import httpx2

    answer = failure.answer if isinstance(failure, _Refused) else None
    status = answer.status_code if answer is not None else None
    headers = answer.headers if answer is not None else None
    timed_out = isinstance(failure, httpx2.TimeoutException)
    return retry_wait(status, headers, attempt, attempts), retry_reason(status, timed_out=timed_out)


class LeanBackend:
    """Responses API replies for one profile (API key or no key), without the SDK."""

    stateless = False

    def __init__(
        self,
        profile: Profile,
        *,
        env: Mapping[str, str] | None = None,
        max_retries: int = 2,
        timeout: float = 60.0,
    ) -> None:
        self.profile = profile
        self.base_url = base_url_for(profile)
        self._url = self.base_url.rstrip("/") + "/responses"
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._max_retries = max_retries
        self._timeout = timeout
        self._http: httpx2.AsyncClient | None = None
        self._http_lock = threading.Lock()  # built by warm_up's thread or the first reply
        self._sdk: Backend | None = None
        self._secrets: tuple[str, ...] = ()

    # ------------------------------------------------------------------ set-up

    def _client(self) -> httpx2.AsyncClient:
        with self._http_lock:
            return self._http or self._build_client()

    def _build_client(self) -> httpx2.AsyncClient:
        if self._http is None:
            import httpx2

            key = api_key_for(self.profile, self.base_url, self._env)
            if self.profile.auth is AuthMethod.API_KEY:
                self._secrets = (key,)
            headers = {
                "Authorization": f"Bearer {key}",
                "Accept": "application/json",
                "User-Agent": f"foundry-tui/{__version__}",
            }
            # As the SDK does: its client reads these variables for OpenAI accounts.
            for variable, header in (
                ("OPENAI_ORG_ID", "OpenAI-Organization"),
                ("OPENAI_PROJECT_ID", "OpenAI-Project"),
            ):
                value = self._env.get(variable)
                if value:
                    headers[header] = value
            self._http = httpx2.AsyncClient(
                headers=headers,
                timeout=self._timeout,
                follow_redirects=True,
                event_hooks={"response": [redirect_guard(self.base_url)]},
                verify=_tls_context(self.base_url),
            )
        return self._http

    def warm_up(self) -> None:
        """Builds the HTTP client (importing httpx2 and httpcore2: most of the time to the
        first token) ahead of the first request, in a thread while the history opens.
        Best effort: a missing key is reported by the first request."""
        with contextlib.suppress(BackendError):
            self._client()

    def _full(self) -> Backend:
        """The SDK client, for what is not a reply (stored responses, the model list)."""
        if self._sdk is None:
            from foundry_tui.backend.client import Backend

            self._sdk = Backend(
                self.profile, env=self._env, max_retries=self._max_retries, timeout=self._timeout
            )
        return self._sdk

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        sdk, self._sdk = self._sdk, None
        if sdk is not None:
            await sdk.aclose()

    # ------------------------------------------------------------------ replies

    def request_code(self, settings: GenerationSettings, request: NextRequest) -> RequestCode:
        """The request `stream_reply` posts for ``request``, as code; never a key."""
        from foundry_tui.backend.request_code import code_for

        body = next_body(settings, request)
        return code_for(self.profile, self.base_url, body)

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
        """One turn, as `Backend.stream_reply` sends and reads it (same events, same
        errors, same retries)."""
        import httpx2

        body = create_body(
            settings,
            input,
            previous_response_id,
            store=store,
            prompt_cache_key=prompt_cache_key,
            omit=omit,
        )
        # Files' bytes: the JSON is written in a thread (see request.carries_files).
        content = await asyncio.to_thread(body_bytes, body) if carries_files(input) else None
        client = self._client()
        attempts = CreateAttempts(
            lambda: self._open(client, body, content),
            failures=(_Refused, httpx2.TransportError),
            judge=_judge,
            refused=lambda failure: self._explain(failure, "create", settings),
            attempts=self._max_retries + 1,
            notice_after=WAIT_NOTICE_SECONDS,
        )
        async with contextlib.aclosing(attempts.events()) as waits:
            async for wait in waits:
                yield wait
        response = attempts.answer
        request_id = response.headers.get("x-request-id") or response.headers.get("apim-request-id")
        reader = ReplyReader(base_url=self.base_url, secrets=self._secrets, request_id=request_id)
        limits = StreamLimits(
            idle=self.profile.stream_idle_seconds,
            total=self.profile.stream_total_seconds,
            base_url=self.base_url,
        )
        loop = asyncio.get_running_loop()
        chunks = response.aiter_bytes().__aiter__()
        try:
            if attempts.announced:
                yield Answered()
            async for sse in _events(chunks, limits):
                data = sse.data
                if data.startswith("[DONE]"):
                    break
                if not data or (sse.event in REPEATS and sse.event in data[:TYPE_WITHIN]):
                    continue
                event = json.loads(data)
                if not isinstance(event, dict):
                    continue
                kind = event.get("type")
                if kind == "response.output_text.delta" and "error" not in event:
                    delta = event.get("delta")
                    if isinstance(delta, str) and delta:
                        limits.last_text = loop.time()
                        yield TextDelta(delta)
                    continue
                if kind in REASONING_DELTAS and "error" not in event:
                    delta = event.get("delta")
                    if isinstance(delta, str) and delta:
                        limits.last_text = loop.time()
                        for reply_event in reader.read(_Delta(kind, delta)):
                            yield reply_event
                    continue
                if isinstance(kind, str) and kind.endswith(".delta") and event.get("delta"):
                    limits.last_text = loop.time()  # tool arguments and the like: progress
                error = event.get("error")
                if error:  # a frame that is an error (as the SDK reads it, type or not)
                    raise error_frame(
                        error if isinstance(error, dict) else {"message": str(error)},
                        secrets=self._secrets,
                        request_id=request_id,
                    )
                for reply_event in reader.read(JsonView(event)):
                    yield reply_event
                if reader.done:
                    await _drain(chunks)
                    return
        except BackendError:
            raise
        except (httpx2.TransportError, ValueError, UnicodeDecodeError) as exc:
            raise self._explain(exc, "stream", settings, request_id) from exc
        finally:
            limits.close()
            await response.aclose()
        yield reader.end()

    async def _open(
        self,
        client: httpx2.AsyncClient,
        body: dict[str, object],
        content: EncodedBody | None = None,
    ) -> httpx2.Response:
        """The streamed answer to the create, or _Refused with the server's error."""
        request = (
            client.build_request("POST", self._url, json=body)
            if content is None
            else client.build_request(
                "POST",
                self._url,
                content=upload(content),
                headers={"Content-Type": "application/json", "Content-Length": str(len(content))},
            )
        )
        response = await client.send(request, stream=True)
        if 200 <= response.status_code < 300:
            return response
        try:
            text = await _bounded_text(response)
        finally:
            await response.aclose()
        raise _Refused(StatusAnswer.from_http(response.status_code, text, response.headers))

    def _explain(
        self,
        exc: BaseException,
        operation: str,
        settings: GenerationSettings | None = None,
        request_id: str | None = None,
    ) -> BackendError:
        import httpx2

        if isinstance(exc, _Refused):
            return explain_answer(
                exc.answer,
                profile=self.profile,
                settings=settings,
                operation=operation,
                secrets=self._secrets,
            )
        if isinstance(exc, httpx2.TimeoutException):
            return timeout_error(self.base_url, operation, request_id)
        if isinstance(exc, httpx2.TransportError):
            return connection_error(
                self.base_url, operation, exc, secrets=self._secrets, request_id=request_id
            )
        return unexpected_error(
            self.base_url, operation, exc, secrets=self._secrets, request_id=request_id
        )

    # ------------------------------------------------------------------ stored state

    async def retrieve(self, response_id: str) -> RetrievedResponse | None:
        return await self._full().retrieve(response_id)

    async def holds(self, response_id: str) -> bool:
        return await self._full().holds(response_id)

    async def input_messages(self, response_id: str) -> list[InputMessage]:
        return await self._full().input_messages(response_id)

    async def list_models(self) -> list[str]:
        return await self._full().list_models()


class _Delta:
    """A reasoning delta for the reader, without a view of the whole event."""

    __slots__ = ("delta", "type")

    def __init__(self, kind: str, delta: str) -> None:
        self.type = kind
        self.delta = delta


def _tls_context(base_url: str) -> Any:
    """httpx2's default verification for https. For a plain-http base URL, a context that
    verifies but trusts no certificate: loading the system's CA store takes ~60 ms that no
    request to it needs (a redirect to another origin, https included, is refused)."""
    if not base_url.lower().startswith("http://"):
        return True
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


async def _events(
    chunks: AsyncIterator[bytes], limits: StreamLimits
) -> AsyncIterator[ServerSentEvent]:
    """The answer's events, each read within the stream's limits."""
    decoder = SSEDecoder()
    while True:
        try:
            chunk = await next_within(chunks, limits)
        except StopAsyncIteration:
            return
        for event in decoder.feed(chunk):
            yield event


async def _bounded_text(response: httpx2.Response) -> str:
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size >= MAX_ERROR_BODY:
            break
    return b"".join(parts).decode("utf-8", errors="replace")


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Reads what follows the final event, bounded; a failure here changes nothing."""
    import httpx2

    with contextlib.suppress(httpx2.TransportError, TimeoutError):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _chunk in chunks:
                pass
