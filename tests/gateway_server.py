"""An OpenAI-compatible gateway in front of `ResponsesServer`, as companies put in front of Azure.

A real reverse proxy on 127.0.0.1 (aiohttp, its own event loop in a thread) that passes
requests to an upstream `ResponsesServer` and misbehaves the way such gateways were seen
to in front of Azure (README, "When things go wrong"). Each behaviour is
a switch, on by default::

    with ResponsesServer(api_key=KEY) as upstream, GatewayServer(upstream) as gateway:
        client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=KEY)

* ``wrap_errors``: an upstream error comes back as ``{"error": {"code": "<HTTP status>",
  "param": null, "type": null, "message": "gateway.XError: upstream said - <upstream JSON>"}}``;
  ``embed="repr"`` embeds it as a Python dict's repr instead (what a proxy that prints the
  upstream SDK's exception gives); ``embed="text"`` only the upstream's message text (its
  code and param are lost: "Unsupported parameter: 'reasoning.effort' is not supported").
* ``retry_after_header``: the upstream ``Retry-After`` is sent under this name instead.
* ``ignore_paging``: ``GET /responses/{id}/input_items`` drops ``after``, ``limit`` and
  ``order``: always the upstream's default page (the newest 20, newest first), and
  ``has_more: true`` every time. ``default_order="asc"``: a gateway whose default page is
  the oldest 20, oldest first.
* Response ids are the gateway's own (the upstream id, encoded with a routing prefix). With
  ``raw_previous_ids`` a retrieved response's ``previous_response_id`` is the upstream's raw
  id, which this gateway's own GET rejects (400).
* ``unknown_id_status``: the status an unknown response id gets (400; upstream said 404).
* ``hold_429_seconds``: a 429 from upstream is retried by the gateway itself, every
  ``retry_interval`` seconds, for this long before the client hears of it.
* ``fail_dropped_streams``: a stream the upstream drops, or one that carries an ``error``
  event or error frame, ends with a ``response.failed`` event (and a clean end of stream).

Streams pass through unbuffered: each SSE frame is written as soon as it has arrived.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.responses_server import ResponsesServer
from tests.threaded_server import ThreadedServer

__all__ = ["GatewayRequest", "GatewayServer", "decode_id", "encode_id"]

_PREFIX = "gw1:"
_EXCEPTION_NAMES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    429: "RateLimitError",
}
_RESPONSE_PATH = re.compile(r"^(?P<base>/(?:openai/)?v1)/responses/(?P<id>[^/]+)(?P<tail>/.*)?$")
_FORWARDED_HEADERS = ("authorization", "api-key", "content-type", "accept")


def encode_id(upstream_id: str) -> str:
    """The gateway's id for an upstream response id (routing prefix + the id, base64)."""
    raw = base64.urlsafe_b64encode((_PREFIX + upstream_id).encode()).decode().rstrip("=")
    return f"resp_{raw}"


def decode_id(gateway_id: str) -> str | None:
    """The upstream id inside one of this gateway's ids, or None (not one it issued)."""
    if not gateway_id.startswith("resp_"):
        return None
    body = gateway_id[len("resp_") :]
    try:
        decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded[len(_PREFIX) :] if decoded.startswith(_PREFIX) else None


@dataclass
class GatewayRequest:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)


class GatewayServer(ThreadedServer):
    """A misbehaving OpenAI-compatible gateway in front of a `ResponsesServer`."""

    def __init__(
        self,
        upstream: ResponsesServer,
        *,
        wrap_errors: bool = True,
        embed: str = "json",
        retry_after_header: str | None = "llm_provider-retry-after",
        ignore_paging: bool = True,
        default_order: str = "desc",
        raw_previous_ids: bool = True,
        unknown_id_status: int = 400,
        hold_429_seconds: float = 0.0,
        retry_interval: float = 0.1,
        fail_dropped_streams: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        if embed not in ("json", "repr", "text"):
            raise ValueError("embed is 'json', 'repr' or 'text'")
        self.upstream = upstream
        self.wrap_errors = wrap_errors
        self.embed = embed
        self.retry_after_header = retry_after_header
        self.ignore_paging = ignore_paging
        self.default_order = default_order
        self.raw_previous_ids = raw_previous_ids
        self.unknown_id_status = unknown_id_status
        self.hold_429_seconds = hold_429_seconds
        self.retry_interval = retry_interval
        self.fail_dropped_streams = fail_dropped_streams
        self.host = host
        self.port: int | None = None
        self.requests: list[GatewayRequest] = []
        #: how many times the gateway retried a 429 by itself
        self.own_retries = 0
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle ------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("GatewayServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def paths(self, suffix: str = "") -> list[GatewayRequest]:
        """The requests the gateway received whose path ends with ``suffix``."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith(suffix)]

    async def _astart(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A client that goes away cancels its handler, which lets go of the upstream.
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def _astop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- routing ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.requests.append(GatewayRequest(request.method, request.path, dict(request.query)))
        match = _RESPONSE_PATH.match(request.path)
        if match is not None:
            upstream_id = decode_id(match["id"])
            if upstream_id is None:
                return self._own_error(
                    self.unknown_id_status,
                    f"Invalid response id '{match['id']}': not issued by this gateway "
                    "(could not decode its routing prefix).",
                )
            path = f"{match['base']}/responses/{upstream_id}{match['tail'] or ''}"
            if (match["tail"] or "") == "/input_items" and request.method == "GET":
                return await self._input_items(request, path)
            return await self._forward_json(request, path)
        if request.method == "POST" and request.path.endswith("/responses"):
            return await self._create(request)
        return await self._forward_json(request, request.path)

    def _headers(self, request: web.Request) -> dict[str, str]:
        return {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED_HEADERS}

    async def _send(
        self,
        request: web.Request,
        path: str,
        *,
        body: bytes | None = None,
        query: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        assert self._session is not None
        return await self._session.request(
            request.method,
            self.upstream.url + path,
            params=dict(request.query) if query is None else query,
            data=body,
            headers=self._headers(request),
        )

    # -- plain JSON requests ----------------------------------------------------------------

    async def _forward_json(self, request: web.Request, path: str) -> web.Response:
        body = await request.read()
        async with await self._send(request, path, body=body or None) as upstream:
            text = await upstream.text()
            if upstream.status >= 400:
                status = upstream.status
                if status == 404 and _RESPONSE_PATH.match(request.path):
                    status = self.unknown_id_status
                return self._error(status, text, upstream.headers)
            payload = json.loads(text) if text else None
            return web.json_response(self._rewrite(payload), headers=_request_id(upstream))

    async def _input_items(self, request: web.Request, path: str) -> web.Response:
        if self.ignore_paging:
            query = {} if self.default_order == "desc" else {"order": self.default_order}
        else:
            query = dict(request.query)
        async with await self._send(request, path, query=query) as upstream:
            text = await upstream.text()
            if upstream.status >= 400:
                status = self.unknown_id_status if upstream.status == 404 else upstream.status
                return self._error(status, text, upstream.headers)
            payload = json.loads(text)
        if self.ignore_paging:
            payload["has_more"] = True
        return web.json_response(payload, headers=_request_id(upstream))

    # -- create ----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("previous_response_id"), str):
            previous = decode_id(body["previous_response_id"])
            if previous is None:
                return self._own_error(
                    400, f"Invalid previous_response_id '{body['previous_response_id']}'."
                )
            body["previous_response_id"] = previous
            raw = json.dumps(body).encode()
        deadline = time.monotonic() + self.hold_429_seconds
        while True:
            upstream = await self._send(request, request.path, body=raw)
            if upstream.status != 429 or time.monotonic() >= deadline:
                break
            upstream.release()
            with self._lock:
                self.own_retries += 1
            await asyncio.sleep(self.retry_interval)
        try:
            if upstream.status >= 400:
                return self._error(upstream.status, await upstream.text(), upstream.headers)
            if not upstream.headers.get("Content-Type", "").startswith("text/event-stream"):
                payload = json.loads(await upstream.text())
                return web.json_response(self._rewrite(payload), headers=_request_id(upstream))
            return await self._stream(request, upstream)
        finally:
            upstream.release()

    async def _stream(
        self, request: web.Request, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **_request_id(upstream),
            },
        )
        await response.prepare(request)
        last_response: dict[str, Any] = {}
        buffer = b""
        finished = False
        with contextlib.suppress(ConnectionError):  # the client went away: nothing to say
            try:
                async for chunk in upstream.content.iter_any():
                    buffer += chunk
                    while b"\n\n" in buffer:
                        frame, buffer = buffer.split(b"\n\n", 1)
                        out, finished = self._frame(frame, last_response, finished)
                        await response.write(out)
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                pass  # the upstream dropped: said below
            if not finished and self.fail_dropped_streams:
                error = self._wrapped_error_object(
                    500, '{"error": {"message": "upstream connection closed", "code": null}}'
                )
                await response.write(_sse(_failed(self._rewrite(dict(last_response)), error)))
            await response.write_eof()
        return response

    def _frame(
        self, frame: bytes, last_response: dict[str, Any], finished: bool
    ) -> tuple[bytes, bool]:
        """One upstream SSE frame as the gateway sends it on, and whether the stream ended."""
        data = b"\n".join(
            line[5:].lstrip(b" ") for line in frame.split(b"\n") if line.startswith(b"data:")
        )
        try:
            event = json.loads(data)
        except ValueError:
            return frame + b"\n\n", finished
        if not isinstance(event, dict):
            return frame + b"\n\n", finished
        kind = event.get("type")
        if kind == "response.output_text.delta":
            return frame + b"\n\n", finished  # the hot path: passed on as it came
        if isinstance(event.get("response"), dict):
            last_response.clear()
            last_response.update(event["response"])
        if self.fail_dropped_streams and (kind == "error" or (kind is None and "error" in event)):
            upstream_error = event if kind == "error" else event["error"]
            error = self._wrapped_error_object(500, json.dumps({"error": upstream_error}))
            return _sse(_failed(self._rewrite(dict(last_response)), error)), True
        done = kind in ("response.completed", "response.incomplete", "response.failed")
        return _sse(self._rewrite(event)), finished or done

    # -- what the gateway changes --------------------------------------------------------

    def _rewrite(self, payload: Any) -> Any:
        """Response ids become the gateway's; previous ids stay raw with raw_previous_ids."""
        if isinstance(payload, dict):
            target = payload.get("response") if isinstance(payload.get("response"), dict) else None
            for obj in (payload, target):
                if not isinstance(obj, dict) or obj.get("object") != "response":
                    continue
                if isinstance(obj.get("id"), str):
                    obj["id"] = encode_id(obj["id"])
                previous = obj.get("previous_response_id")
                if isinstance(previous, str) and not self.raw_previous_ids:
                    obj["previous_response_id"] = encode_id(previous)
        return payload

    def _wrapped_error_object(self, status: int, upstream_text: str) -> dict[str, Any]:
        embedded = upstream_text
        if self.embed == "repr":
            with contextlib.suppress(ValueError):
                embedded = repr(json.loads(upstream_text))
        elif self.embed == "text":
            with contextlib.suppress(ValueError, TypeError, KeyError):
                embedded = str(json.loads(upstream_text)["error"]["message"])
        name = _EXCEPTION_NAMES.get(status, "InternalServerError" if status >= 500 else "APIError")
        return {
            "message": f"gateway.{name}: upstream said - {embedded}",
            "type": None,
            "param": None,
            "code": str(status),
        }

    def _error(self, status: int, upstream_text: str, upstream_headers: Any) -> web.Response:
        headers: dict[str, str] = {}
        for name in ("retry-after", "retry-after-ms"):
            value = upstream_headers.get(name)
            if value is None:
                continue
            renamed = self.retry_after_header
            key = name if renamed is None else renamed + name[len("retry-after") :]
            headers[key] = value
        if not self.wrap_errors:
            return web.Response(
                status=status, text=upstream_text, content_type="application/json", headers=headers
            )
        payload = {"error": self._wrapped_error_object(status, upstream_text)}
        return web.json_response(payload, status=status, headers=headers)

    def _own_error(self, status: int, message: str) -> web.Response:
        payload = {"error": {"message": message, "type": None, "param": None, "code": str(status)}}
        return web.json_response(payload, status=status)


def _request_id(upstream: aiohttp.ClientResponse) -> dict[str, str]:
    value = upstream.headers.get("x-request-id")
    return {"x-request-id": value} if value else {}


def _sse(event: dict[str, Any]) -> bytes:
    kind = event.get("type")
    head = f"event: {kind}\n" if isinstance(kind, str) else ""
    return f"{head}data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def _failed(response: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    failed = {**response, "status": "failed", "error": error}
    failed.setdefault("object", "response")
    failed.setdefault("id", "resp_gateway_failed")
    failed.setdefault("output", [])
    return {"type": "response.failed", "response": failed, "sequence_number": 0}
