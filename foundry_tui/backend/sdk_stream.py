"""The one place that uses the openai SDK's private streaming members.

A reply streams one event per token, and the SDK builds a typed model for each; a text
delta needs only its text (at 2,000 tokens/s the models were a fifth of the app's CPU). So
`stream_events` reads the server-sent events through the SDK's private members (the ones
its own loop uses) and skips the model for text deltas; every other event still goes
through the SDK's own processing. tests/test_sdk_contract.py names what is relied on:

    AsyncStream._iter_events(), ._cast_to, ._options, ._client._process_response_data(
    data=, cast_to=, response=), openai._models.construct_type(type_=, value=)

Those can change in any SDK release, so a failure of the private path never fails a turn:

- Before the response body is read (a member renamed, a signature changed), the stream
  is iterated the SDK's public way (``async for``), and so is every later stream: the
  private path is marked broken for the process and the log says so once.
- Once the private reader has taken bytes from the body, the public iteration can no
  longer start (httpx2 hands a body to one reader only). A failure to decode an event
  there (the processing changed shape) turns that event and every later one into
  `_Plain` views of their JSON, which hold every field the backend reads; the reply goes
  on and no text is lost, whether or not events were already yielded.
- A failure inside the SDK's event reader itself, once it has read from the body, cannot
  be recovered: it propagates, and the turn ends as failed with the text so far kept
  (the session saves it before the error surfaces, and it is logged as a bug).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from foundry_tui.backend.big_json import loads_yielding
from foundry_tui.backend.limits import StreamLimits
from foundry_tui.backend.limits import next_within as _next_within
from foundry_tui.backend.replies import REASONING_DELTAS as _REASONING_DELTAS
from foundry_tui.backend.replies import REPEATS as _REPEATS
from foundry_tui.backend.replies import TYPE_WITHIN as _TYPE_WITHIN
from foundry_tui.core.logs import get_logger

__all__ = [
    "FAST_STREAM_DELTAS",
    "FAST_STREAM_SECONDS",
    "TRICKLE_GAP",
    "TRICKLE_WAIT",
    "ReasoningDeltaEvent",
    "TextDeltaEvent",
    "private_path_problem",
    "stream_events",
    "warm_up_client_library",
]

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


# Why the private path cannot be used in this process, once that is known; and whether
# the installed SDK's signatures were checked yet (once per process).
_broken: str | None = None
_checked = False
# The parameters each private callable must take, by name (what the calls below pass).
REQUIRED_PARAMETERS: dict[str, tuple[str, ...]] = {
    "AsyncStream._iter_events": ("self",),
    "AsyncAPIClient._process_response_data": ("self", "data", "cast_to", "response"),
    "construct_type": ("type_", "value"),
}


class TextDeltaEvent:
    """A ``response.output_text.delta`` event, read without the SDK's typed model."""

    __slots__ = ("delta",)
    type = "response.output_text.delta"

    def __init__(self, delta: object) -> None:
        self.delta = delta


class ReasoningDeltaEvent:
    """A reasoning delta (a summary's or the reasoning text's), read without the SDK's
    typed model: a summary can stream as fast as an answer."""

    __slots__ = ("delta", "type")

    def __init__(self, kind: str, delta: object) -> None:
        self.type = kind
        self.delta = delta


class _Plain:
    """An event's JSON read as attributes (a missing field reads None), for when the SDK's
    private processing failed on a stream whose body can no longer be read the public way.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        return _Plain(value) if isinstance(value, dict) else value


def _signature_problem(name: str, function: Callable[..., Any]) -> str | None:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError) as error:
        return f"{name}: no signature ({error})"
    missing = [p for p in REQUIRED_PARAMETERS[name] if p not in parameters]
    if missing:
        return f"{name}{inspect.signature(function)} no longer takes {', '.join(missing)}"
    extra = [
        p.name
        for p in parameters.values()
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in REQUIRED_PARAMETERS[name]
    ]
    if extra:
        return f"{name}{inspect.signature(function)} now requires {', '.join(extra)}"
    return None


def private_path_problem() -> str | None:
    """What in the installed openai no longer matches the private members used here, or
    None. Checked once per process (a few inspect.signature calls), before any stream."""
    global _broken
    if _broken is not None:
        return _broken
    try:
        from openai._base_client import AsyncAPIClient
        from openai._models import construct_type
        from openai._streaming import AsyncStream

        checks: list[tuple[str, Callable[..., Any]]] = [
            ("AsyncStream._iter_events", AsyncStream._iter_events),
            ("AsyncAPIClient._process_response_data", AsyncAPIClient._process_response_data),
            ("construct_type", construct_type),
        ]
        problems = [p for n, f in checks if (p := _signature_problem(n, f)) is not None]
    except Exception as error:  # an SDK that moved its modules: any failure means "broken"
        problems = [f"{type(error).__name__}: {error}"]
    if problems:
        _mark_broken("; ".join(problems))
    return _broken


def _mark_broken(reason: str) -> None:
    global _broken
    if _broken is None:
        _broken = reason
        get_logger(__name__).warning(
            "The openai SDK's private streaming members changed (%s): replies stream "
            "through its public iteration from now on.",
            reason,
        )


def _private_parts(stream: Any) -> tuple[Any, Any, Any, bool] | None:
    """What the private path needs from this stream, or None: use the public iteration."""
    global _checked
    if not _checked:
        _checked = True
        private_path_problem()
    if _broken is not None:
        return None
    try:
        events = stream._iter_events()
        process = stream._client._process_response_data
        cast_to = stream._cast_to
        options = stream._options
        legacy = options is None or getattr(options, "stream_mode", "legacy") == "legacy"
        return events.__aiter__(), process, cast_to, legacy
    except Exception as error:  # the SDK's private members, not ours: anything may change
        _mark_broken(f"{type(error).__name__}: {error}")
        return None


async def stream_events(stream: Any, limits: StreamLimits | None = None) -> AsyncIterator[Any]:
    """The stream's events as the SDK makes them, except text deltas (`TextDeltaEvent`)
    and reasoning deltas (`ReasoningDeltaEvent`).

    `limits` ends a stream that brings no text, or runs, too long. A frame whose data is
    not JSON raises `openai.APIError` (the server's fault, said as such), whichever path
    reads it.
    """
    limits = limits or StreamLimits.none()
    parts = _private_parts(stream)
    if parts is None:
        async for event in _public(stream, limits):
            yield event
        return
    iterator, process, cast_to, legacy = parts
    from openai import APIError

    loop = asyncio.get_running_loop()
    recent: deque[float] = deque(maxlen=FAST_STREAM_DELTAS)  # when the latest deltas came
    plain = False  # the SDK's processing failed: events are read as `_Plain` from here on
    yielded = False
    while True:
        asked = loop.time()
        try:
            sse = await _next_within(iterator, limits)
        except StopAsyncIteration:
            break
        except Exception as error:
            if _known_failure(error):
                raise
            _mark_broken(f"{type(error).__name__}: {error}")  # later streams: the public way
            if yielded or _body_taken(stream):
                raise
            # The SDK's reader failed before it read anything: the public way still can.
            async for public_event in _public(stream, limits):
                yield public_event
            return
        # How long this event kept the reader waiting: not how long the app took between
        # two events (a frame drawn meanwhile is not a slow stream).
        waited = loop.time() - asked
        try:
            data_text: str = sse.data
            if data_text.startswith("[DONE]"):
                break
            if sse.event in _REPEATS and sse.event in data_text[:_TYPE_WITHIN]:
                continue
        except Exception as error:  # the SDK's event object changed shape
            _mark_broken(f"{type(error).__name__}: {error}")
            raise
        data = await _json(data_text, stream)
        if isinstance(data, dict):
            kind = data.get("type")
            if (
                kind == "response.output_text.delta" or kind in _REASONING_DELTAS
            ) and "error" not in data:
                delta = data.get("delta")
                yielded = True
                if kind == "response.output_text.delta":
                    yield TextDeltaEvent(delta)
                else:
                    yield ReasoningDeltaEvent(kind, delta)
                now = loop.time()
                if delta:
                    limits.last_text = now
                fast = len(recent) == FAST_STREAM_DELTAS and now - recent[0] < FAST_STREAM_SECONDS
                recent.append(now)
                if waited > TRICKLE_GAP and not fast:
                    await asyncio.sleep(TRICKLE_WAIT)
                continue
            if isinstance(kind, str) and kind.endswith(".delta") and data.get("delta"):
                limits.last_text = loop.time()  # reasoning text, tool arguments: progress
            if legacy and data.get("error"):  # as the SDK does for a frame with an error
                body = data["error"]
                message = body.get("message") if isinstance(body, dict) else None
                raise APIError(
                    message=message
                    if isinstance(message, str) and message
                    else "An error occurred during streaming",
                    request=stream.response.request,
                    body=body,
                )
        made: Any = None
        if not plain:
            try:
                made = process(data=data, cast_to=cast_to, response=stream.response)
            except Exception as error:  # the SDK's processing, not the server's data
                _mark_broken(f"{type(error).__name__}: {error}")
                plain = True
        if plain:
            made = _Plain(data) if isinstance(data, dict) else data
        yielded = True
        yield made


async def _json(text: str, stream: Any) -> Any:
    """The event's data decoded; a huge one in steps, the UI loop running between them
    (see big_json: a 50 MB delta, and the final response repeating it)."""
    try:
        return await loads_yielding(text)
    except ValueError:
        from openai import APIError

        raise APIError(
            message="The server sent an event that is not JSON",
            request=stream.response.request,
            body=None,
        ) from None


def _known_failure(error: BaseException) -> bool:
    """An error the stream itself reports (the server, the network, the limits): never a
    reason to read it another way."""
    import openai

    from foundry_tui.core.models import BackendError

    return isinstance(error, openai.OpenAIError | BackendError | OSError)


def _body_taken(stream: Any) -> bool:
    try:
        return bool(stream.response.is_stream_consumed)
    except Exception:  # not an httpx2 response: assume the worst, no second reader
        return True


async def _public(stream: Any, limits: StreamLimits) -> AsyncIterator[Any]:
    """The SDK's own iteration, under the same limits."""
    iterator = stream.__aiter__()
    loop = asyncio.get_running_loop()
    while True:
        try:
            event = await _next_within(iterator, limits)
        except StopAsyncIteration:
            return
        except ValueError as error:
            import json

            if not isinstance(error, json.JSONDecodeError):
                raise
            from openai import APIError  # the SDK's own decoding of a frame that is not JSON

            raise APIError(
                message="The server sent an event that is not JSON",
                request=stream.response.request,
                body=None,
            ) from error
        kind = getattr(event, "type", None)
        if isinstance(kind, str) and kind.endswith(".delta") and getattr(event, "delta", None):
            limits.last_text = loop.time()
        yield event


_warm_lock = threading.Lock()
_warm = False


def client_library_warm() -> bool:
    """Whether `warm_up_client_library` has run to its end."""
    return _warm


def warm_up_client_library() -> None:
    """Imports openai and builds its stream-event validators here, in a thread: on the UI
    loop they cost about 0.5 s and 0.6 s, the first time a reply streams. Also imports
    what the first request would import on the loop (anyio's asyncio backend and its
    synchronization primitives, loaded lazily). Best effort; runs once, and a second
    caller waits for the first (Backend calls it in a thread before its first request,
    in case that comes before the app's warm-up is done)."""
    global _warm
    with _warm_lock:
        if not _warm:
            _warm_up()
            _warm = True


def _warm_up() -> None:
    try:
        import anyio
        import anyio._backends._asyncio

        anyio.Event  # noqa: B018  (a lazy import: its module loads on first access)
        anyio.Lock  # noqa: B018
        from foundry_tui.backend.errors import translatable

        translatable()  # imports azure.core's errors, once
        import openai.resources.responses.responses  # noqa: F401
        from openai._models import construct_type
        from openai.types.responses import ResponseStreamEvent

        private_path_problem()
        response = {"id": "resp_0", "object": "response", "created_at": 0, "output": []}
        for event in (
            {"type": "response.created", "response": response},
            {"type": "response.output_text.delta", "delta": ""},
            {"type": "response.completed", "response": response},
        ):
            construct_type(type_=ResponseStreamEvent, value={**event, "sequence_number": 0})
    except Exception as error:  # a private helper of the SDK: a warm-up must never fail
        _mark_broken(f"warm-up: {type(error).__name__}: {error}")
