"""A streamed reply's events, read into the app's `BackendEvent`s: the same reading for the
SDK client (typed SDK events) and the lean transport (the events' JSON, seen through
`JsonView`). Both give objects whose fields are read as attributes; a field a server left
out reads as None."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from foundry_tui.backend.errors import stream_error
from foundry_tui.core.coerce import ID_NOTE, MODEL_NOTE, USAGE_NOTE, short_string, token_count
from foundry_tui.core.models import (
    BackendError,
    BackendEvent,
    ErrorKind,
    MessageStatus,
    ReasoningDelta,
    ReasoningItem,
    ReasoningStarted,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
    Usage,
)

__all__ = [
    "REASONING_DELTAS",
    "REPEATS",
    "TYPE_WITHIN",
    "JsonView",
    "ReplyReader",
    "reasoning_items",
    "response_usage",
]

# Events that only repeat what the deltas brought, the whole text again (a huge reply
# comes back in each of them): nothing here reads them, so they are skipped by their SSE
# event name, before their data is decoded. Decoding one 50 MB event holds the UI loop for
# a fifth of a second. The name must also be in the data's opening, where a server puts
# its "type", so a mislabelled frame is still read.
REPEATS = frozenset(
    {
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        # The reasoning's whole text again: a summary part's, or an open-weight model's
        # reasoning (as long as an answer). A server that sends no deltas still has its
        # reasoning read, from the final response's output (`ReplyReader.finished`).
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.done",
        "response.reasoning_text.done",
    }
)
# Pieces of the reasoning: a summary's (reasoning models) or the reasoning itself
# (open-weight models).
REASONING_DELTAS = frozenset(
    {"response.reasoning_summary_text.delta", "response.reasoning_text.delta"}
)
# Between two parts of a summary (each a short titled paragraph).
PART_BREAK = "\n\n"
TYPE_WITHIN = 120

_STARTS = ("response.created", "response.in_progress", "response.queued")
_ENDS = {
    "response.completed": MessageStatus.COMPLETED,
    "response.incomplete": MessageStatus.INCOMPLETE,
    "response.failed": MessageStatus.FAILED,
}


class JsonView:
    """A JSON object read as attributes (``event.response.usage.input_tokens``), as the
    SDK's models are: a missing field is None, a nested object another view."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        return JsonView(value) if isinstance(value, dict) else value


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _field(value: Any, name: str) -> Any:
    """A field of an SDK model or of plain JSON (lists inside a `JsonView` stay JSON)."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def _texts(parts: Any) -> list[str]:
    """The texts of a reasoning item's summary or content parts."""
    if not isinstance(parts, list):
        return []
    return [text for part in parts if isinstance(text := _field(part, "text"), str) and text]


def reasoning_items(response: Any) -> tuple[ReasoningItem, ...]:
    """The response's reasoning items that can be sent back on their own: those with
    encrypted_content (one without it only names an item the server kept, which a replay
    after expiry cannot use). Kept as the API takes them in input: type, id, summary,
    encrypted_content."""
    output = getattr(response, "output", None)
    items: list[ReasoningItem] = []
    for item in output if isinstance(output, list) else []:
        if _field(item, "type") != "reasoning":
            continue
        item_id = _field(item, "id")
        encrypted = _field(item, "encrypted_content")
        if not isinstance(item_id, str) or not isinstance(encrypted, str) or not encrypted:
            continue
        summary = [{"type": "summary_text", "text": t} for t in _texts(_field(item, "summary"))]
        items.append(
            {"type": "reasoning", "id": item_id, "summary": summary, "encrypted_content": encrypted}
        )
    return tuple(items)


def _reasoning_text(response: Any) -> str:
    """The reasoning in the final response's output: its summaries' parts, else its
    reasoning text (for a server that streamed none of it)."""
    output = getattr(response, "output", None)
    parts: list[str] = []
    for item in output if isinstance(output, list) else []:
        if _field(item, "type") == "reasoning":
            parts += _texts(_field(item, "summary")) or _texts(_field(item, "content"))
    return PART_BREAK.join(parts)


# The counts read from a response's usage: (field, or its details object and the field in it).
_COUNTS: tuple[tuple[str, str | None], ...] = (
    ("input_tokens", None),
    ("output_tokens", None),
    ("total_tokens", None),
    ("input_tokens_details", "cached_tokens"),
    ("output_tokens_details", "reasoning_tokens"),
)
# What a details object is not: JsonView and the SDK's models give attributes; a server
# that sent a string, a number or a list there gets it back as that.
_NOT_AN_OBJECT = (str, bytes, int, float, list, tuple, dict)


def _raw_counts(usage: Any) -> list[object]:
    """The five counts as the server sent them (None: left out); a details field that is
    not an object is returned as itself, so that it reads as unfit."""
    raw: list[object] = []
    for name, inner in _COUNTS:
        value = getattr(usage, name, None)
        if inner is not None and value is not None and not isinstance(value, _NOT_AN_OBJECT):
            value = getattr(value, inner, None)
        raw.append(value)
    return raw


def response_usage(response: Any) -> Usage:
    """The response's token counts, with the cached input and reasoning tokens from their
    details; one that is not a whole number SQLite can hold (a broken server's 10**30, a
    string) is dropped (see `_usage_dropped`)."""
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage()
    given, made, total, cached, reasoning = (token_count(value) for value in _raw_counts(usage))
    return Usage(
        input_tokens=given,
        output_tokens=made,
        total_tokens=total,
        cached_input_tokens=cached,
        reasoning_tokens=reasoning,
    )


def _usage_dropped(response: Any) -> bool:
    usage = getattr(response, "usage", None)
    return usage is not None and any(
        value is not None and token_count(value) is None for value in _raw_counts(usage)
    )


class ReplyReader:
    """Follows one stream: `read` each event, then `end` if the stream ran out first.

    Yields `ResponseStarted` once, `TextDelta`s (never empty), then one `ResponseFinished`
    (after which `done` is set). An ``error`` event raises its `BackendError`. A reasoning
    model's reply also has `ReasoningStarted` (its reasoning item added) and
    `ReasoningDelta`s (never empty; a summary's parts separated by a blank line).
    """

    def __init__(
        self, *, base_url: str, secrets: Sequence[str] = (), request_id: str | None = None
    ) -> None:
        self.base_url = base_url
        self.secrets = secrets
        self.request_id = request_id
        self.started = False
        self.started_id: str | None = None
        self.done = False
        # Azure sends `failed` with error null, then an error frame that says why (e.g.
        # the output content filter): the failure is held until that frame or the end.
        self.held_failure: ResponseFinished | None = None
        self.reasoning_started = False
        self.reasoned = False  # a reasoning delta was yielded
        self._part_break = False  # a new summary part began after some reasoning

    def read(self, event: Any) -> Iterator[BackendEvent]:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            delta = event.delta
            if isinstance(delta, str) and delta:
                yield TextDelta(delta)
        elif kind in REASONING_DELTAS:
            delta = event.delta
            if isinstance(delta, str) and delta:
                yield from self._reasoning(delta)
        elif kind in _STARTS:
            if not self.started:
                yield self._start(event.response)
        elif kind == "response.reasoning_summary_part.added":
            self._part_break = self.reasoned
        elif kind == "response.output_item.added":
            if _field(getattr(event, "item", None), "type") == "reasoning":
                yield from self._reasoning("")
        elif kind in _ENDS:
            response = event.response
            if not self.started:
                yield self._start(response)
            if not self.reasoned and (text := _reasoning_text(response)):
                yield from self._reasoning(text)
            finished = self.finished(kind, response)
            if kind == "response.failed" and getattr(response, "error", None) is None:
                self.held_failure = finished
                return
            self.done = True
            yield finished
        elif kind == "error":
            raise stream_error(
                _str_or_none(getattr(event, "code", None)),
                _str_or_none(getattr(event, "message", None)),
                param=_str_or_none(getattr(event, "param", None)),
                secrets=self.secrets,
                request_id=self.request_id,
            )

    def _reasoning(self, text: str) -> Iterator[BackendEvent]:
        if not self.reasoning_started:
            self.reasoning_started = True
            yield ReasoningStarted()
        if not text:
            return
        if self._part_break:
            self._part_break = False
            text = PART_BREAK + text
        self.reasoned = True
        yield ReasoningDelta(text)

    def _start(self, response: Any) -> ResponseStarted:
        self.started = True
        self.started_id = short_string(getattr(response, "id", None))
        return ResponseStarted(self.started_id, short_string(getattr(response, "model", None)))

    def end(self) -> ResponseFinished:
        """The stream ended: the held failure, or the error for a stream cut short."""
        if self.held_failure is not None:
            return self.held_failure
        raise BackendError(
            ErrorKind.CONNECTION,
            "The connection closed before the reply finished",
            f"{self.base_url} ended the stream without a final event. "
            "The text received so far is kept.",
            request_id=self.request_id,
        )

    def finished(self, kind: str, response: Any) -> ResponseFinished:
        status = _ENDS[kind]
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
                    secrets=self.secrets,
                )
                error_text = made.user_message
        response_id = short_string(getattr(response, "id", None)) or self.started_id
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
            usage=response_usage(response),
            incomplete_reason=reason,
            error=error_text,
            notes=tuple(notes),
            reasoning_items=reasoning_items(response),
        )
