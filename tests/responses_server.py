"""A real HTTP + SSE server on 127.0.0.1 that speaks the OpenAI Responses API.

Used by the unit tests, the tmux end-to-end test and the benchmarks.  It runs an
``aiohttp.web`` application on its own event loop in a background thread::

    with ResponsesServer(tokens_per_second=None) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        ...

or from a shell (prints ``READY http://127.0.0.1:PORT/v1`` first, then serves until
SIGTERM/SIGINT)::

    python -m tests.responses_server --port 0 --tps 50

Every payload the server sends is validated against the official OpenAPI subset in
``tests/schema/openapi-responses.json`` (per-event-type schemas); a failure is
recorded in ``schema_errors`` and turned into an HTTP 500 so that tests notice.  Azure-only
error shapes (content filter with ``type: null``, ``PermissionDenied``,
``DeploymentNotFound``, unknown routes) are not OpenAI payloads and are checked against a
minimal Azure error shape instead. A few faults (``GARBLED_ERROR``, ``HUGE_USAGE``,
``ODD_USAGE``, ``OBJECT_ID``) send what no schema allows on purpose: their payloads are
validated as a sound server would send them, then broken.

Usage is counted as a cache would: the input tokens of the earlier turns a request chains
on (``previous_response_id``), and of the leading input items that repeat the previous
request with the same ``prompt_cache_key`` (its input and its reply), are
``input_tokens_details.cached_tokens``. Reasoning tokens are 0.

Out-of-process users (the tmux test) can steer a running server through
``POST /_control/{inject,reply,tps,expire,reset,received}`` with a JSON body (see
``_control``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.threaded_server import ThreadedServer

__all__ = [
    "SCHEMA_PATH",
    "Fault",
    "RecordedRequest",
    "ResponsesServer",
    "SchemaNotFoundError",
    "SchemaValidator",
    "count_tokens",
    "default_reply",
    "load_validator",
    "make_text",
    "split_tokens",
]

#: The official schema subset, vendored beside this file (its README says where it was cut
#: from). ``FOUNDRY_TUI_RESPONSES_SCHEMA`` overrides it.
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "openapi-responses.json"
_SCHEMA_URI = "urn:openai-responses-openapi"

# ---------------------------------------------------------------------------
# Schema validation
# ---------------------------------------------------------------------------


class SchemaNotFoundError(FileNotFoundError):
    """The official OpenAPI schema file is missing (validate=True cannot work)."""


#: A minimal check for Azure-only error bodies that are not OpenAI ``ErrorResponse``s.
AZURE_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": ["string", "null"]}, "message": {"type": "string"}},
        }
    },
}

_MODEL_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {
        "object": {"const": "list"},
        "data": {"type": "array", "items": {"$ref": "#/$defs/model"}},
    },
    "$defs": {
        "model": {
            "type": "object",
            "required": ["id", "object", "created", "owned_by"],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "model"},
                "created": {"type": "integer"},
                "owned_by": {"type": "string"},
            },
        }
    },
}

_DELETED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "deleted"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "response.deleted"},
        "deleted": {"const": True},
    },
}


def _path_str(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".") or "<root>"


def _explain(error: ValidationError) -> ValidationError:
    """Descend into oneOf/anyOf failures, following the branch whose ``type`` matched."""
    while error.context:
        branches: dict[Any, list[ValidationError]] = defaultdict(list)
        for sub in error.context:
            branches[sub.relative_schema_path[0] if sub.relative_schema_path else 0].append(sub)
        plausible = [
            subs
            for subs in branches.values()
            if not any(list(s.relative_path) == ["type"] for s in subs)
            and not any(s.validator == "type" and not s.relative_path for s in subs)
        ]
        if not plausible:
            break
        best = min(plausible, key=len)
        # Prefer the deepest error of the chosen branch.
        error = max(best, key=lambda e: len(e.absolute_path))
    return error


class SchemaValidator:
    """Validates payloads against named component schemas of the official OpenAPI subset."""

    def __init__(self, path: Path | str | None = None) -> None:
        path = Path(path or os.environ.get("FOUNDRY_TUI_RESPONSES_SCHEMA") or SCHEMA_PATH)
        if not path.is_file():
            raise SchemaNotFoundError(
                f"Responses API schema not found at {path}. It is expected in "
                "tests/schema/openapi-responses.json (set FOUNDRY_TUI_RESPONSES_SCHEMA to "
                "override), or pass validate=False."
            )
        self.path = path
        self.document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_SCHEMA_URI, resource)
        self.schemas: dict[str, Any] = self.document["components"]["schemas"]
        self.event_schemas: dict[str, str] = {}
        for name, schema in self.schemas.items():
            enum = schema.get("properties", {}).get("type", {}).get("enum")
            is_event = name.endswith("StreamingEvent") or (
                name.startswith("Response") and name.endswith("Event")
            )
            if is_event and enum:
                self.event_schemas[enum[0]] = name
        self._validators: dict[str, Draft202012Validator] = {}
        self._lock = threading.Lock()

    def _validator(self, name: str) -> Draft202012Validator:
        validator = self._validators.get(name)
        if validator is None:
            with self._lock:
                if name not in self.schemas:
                    raise KeyError(f"no component schema named {name!r}")
                validator = Draft202012Validator(
                    {"$ref": f"{_SCHEMA_URI}#/components/schemas/{name}"},
                    registry=self._registry,
                )
                self._validators[name] = validator
        return validator

    def errors(self, schema: str | dict[str, Any], payload: Any) -> list[str]:
        """Validation errors of ``payload`` against a component name or an inline schema."""
        if isinstance(schema, str):
            validator = self._validator(schema)
            label = schema
        else:
            validator = Draft202012Validator(schema)
            label = str(schema.get("title", "inline schema"))
        out = []
        for error in validator.iter_errors(payload):
            leaf = _explain(error)
            out.append(f"{label} at {_path_str(leaf.absolute_path)}: {leaf.message}")
        return out

    def event_errors(self, event: Any) -> list[str]:
        """Errors of a stream event against the per-type schema (e.g. ResponseTextDeltaEvent)."""
        if not isinstance(event, dict):
            return [f"event is not an object: {event!r:.80}"]
        etype = event.get("type")
        name = self.event_schemas.get(etype) if isinstance(etype, str) else None
        if name is None:
            return [f"unknown stream event type {etype!r}"]
        return self.errors(name, event)

    def check(self, schema: str | dict[str, Any], payload: Any) -> None:
        """Raise ``AssertionError`` listing the errors, if any."""
        errors = self.errors(schema, payload)
        if errors:
            raise AssertionError("\n".join(errors))

    def check_event(self, event: Any) -> None:
        errors = self.event_errors(event)
        if errors:
            raise AssertionError("\n".join(errors))


@lru_cache(maxsize=4)
def _cached_validator(path: str) -> SchemaValidator:
    return SchemaValidator(path)


def load_validator(path: Path | str | None = None) -> SchemaValidator:
    """A shared (cached) validator for the official schema; raises SchemaNotFoundError."""
    resolved = Path(path or os.environ.get("FOUNDRY_TUI_RESPONSES_SCHEMA") or SCHEMA_PATH)
    if not resolved.is_file():
        SchemaValidator(resolved)  # raises the descriptive SchemaNotFoundError
    return _cached_validator(str(resolved.resolve()))


# ---------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\S+\s*")


def split_tokens(text: str) -> list[str]:
    """Words with their trailing whitespace; ``"".join(split_tokens(t)) == t`` always."""
    tokens = _TOKEN_RE.findall(text)
    if not tokens:
        return [text] if text else []
    lead = len(text) - len(text.lstrip())
    if lead:
        tokens[0] = text[:lead] + tokens[0]
    return tokens


def count_tokens(text: str | None) -> int:
    """Deterministic token count: whitespace-separated words."""
    return len(text.split()) if text else 0


_WORDS = tuple(
    re.findall(
        r"\S+",
        "the quick brown fox jumps over a lazy dog while streaming tokens arrive in order "
        "and each delta carries one word with its trailing space so that joined text matches "
        "byte for byte including newlines unicode like café naïve and emoji 🚀 ok",
    )
)


def make_text(n_tokens: int, *, seed: int = 0, line_words: int = 12) -> str:
    """A deterministic reply of exactly ``n_tokens`` tokens, with line and paragraph breaks."""
    parts: list[str] = []
    for i in range(n_tokens):
        word = _WORDS[(i * 7 + seed) % len(_WORDS)]
        if i == n_tokens - 1:
            sep = ""
        elif (i + 1) % (line_words * 4) == 0:
            sep = "\n\n"
        elif (i + 1) % line_words == 0:
            sep = "\n"
        else:
            sep = " "
        parts.append(word + sep)
    return "".join(parts)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    """Text of the last user message of a create request body."""
    inp = body.get("input")
    if isinstance(inp, str):
        return inp
    if isinstance(inp, list):
        for item in reversed(inp):
            if isinstance(item, dict) and item.get("role") == "user":
                return _content_text(item.get("content"))
    return ""


_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
_IMAGE_HEADS = {
    "png": b"\x89PNG\r\n\x1a\n",
    "jpeg": b"\xff\xd8\xff",
    "gif": b"GIF8",
    "webp": b"RIFF",
}


def _decoded(url: str) -> tuple[str, bytes] | None:
    """(media type, bytes) of a base64 data URL; None when it is not one."""
    match = _DATA_URL.fullmatch(url)
    if match is None:
        return None
    try:
        return match.group(1), base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return None


def _size_of(url: str) -> tuple[str, int] | None:
    """(media type, decoded size) of a base64 data URL, without decoding it (the create
    handler has checked that it decodes)."""
    match = _DATA_URL.fullmatch(url[:200])
    if match is None:
        return None
    encoded = len(url) - len(url[:200]) + len(match.group(2))
    return match.group(1), encoded * 3 // 4 - url[-2:].count("=")


def attachments_seen(body: dict[str, Any]) -> str:
    """What the last user message carried besides text, in words: "1 image (png, 1234
    bytes) and 1 file (report.pdf, 2345 bytes)"; "" when nothing."""
    inp = body.get("input")
    content: Any = None
    if isinstance(inp, list):
        for item in reversed(inp):
            if isinstance(item, dict) and item.get("role") == "user":
                content = item.get("content")
                break
    if not isinstance(content, list):
        return ""
    images: list[str] = []
    files: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "input_image":
            found = _size_of(str(part.get("image_url") or ""))
            if found is not None:
                images.append(f"{found[0].split('/')[-1]}, {found[1]} bytes")
        elif part.get("type") == "input_file":
            found = _size_of(str(part.get("file_data") or ""))
            size = f", {found[1]} bytes" if found is not None else ""
            files.append(f"{part.get('filename')}{size}")
    said = [
        f"{len(listed)} {noun}{'s' if len(listed) != 1 else ''} ({'; '.join(listed)})"
        for noun, listed in (("image", images), ("file", files))
        if listed
    ]
    return " and ".join(said)


def default_reply(body: dict[str, Any]) -> str:
    """``"You said: " + <text of the last user message>``, and what it carried: " I see 1
    image (png, 1234 bytes) and 1 file (report.pdf, 2345 bytes)."."""
    seen = attachments_seen(body)
    return "You said: " + last_user_text(body) + (f" I see {seen}." if seen else "")


def default_reasoning(body: dict[str, Any]) -> list[str]:
    """A reasoning model's summary parts (or, for an open-weight model, its reasoning
    text as one part): titled paragraphs, as OpenAI's summaries are."""
    return [
        "**Reading the question**\n\nThe user wrote: " + last_user_text(body)[:200],
        "**Planning the answer**\n\nI will repeat it back, briefly.",
    ]


# What stands in for a reasoning item's encrypted content: the item's id and text, so a
# replay can be checked (the server refuses content it did not hand out).
ENCRYPTED_PREFIX = "gAAAA-test-"


def encrypt_reasoning(item_id: str, text: str) -> str:
    raw = _dumps({"id": item_id, "text": text}).encode()
    return ENCRYPTED_PREFIX + base64.urlsafe_b64encode(raw).decode()


def decrypt_reasoning(value: str) -> dict[str, Any] | None:
    if not value.startswith(ENCRYPTED_PREFIX):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value[len(ENCRYPTED_PREFIX) :]))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------
# Public data types
# ---------------------------------------------------------------------------


class Fault(StrEnum):
    """What to do to the next POST /responses request(s); see ``ResponsesServer.inject``."""

    RATE_LIMIT = "rate_limit"
    RATE_LIMIT_NO_RETRY_AFTER = "rate_limit_no_retry_after"
    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"
    DROP_STREAM = "drop_stream"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    ERROR_EVENT = "error_event"
    NESTED_ERROR = "nested_error"
    CONTENT_FILTER = "content_filter"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    #: extra: some deltas, then nothing for ``seconds`` (default: until the client goes away
    #: or the server stops), then the rest of the stream.
    STALL = "stall"
    #: extra: a 500 whose body is not valid UTF-8 (a broken proxy), not schema-shaped.
    GARBLED_ERROR = "garbled_error"
    #: extra (streams): the final usage.input_tokens is 10**30, beyond SQLite's integers.
    HUGE_USAGE = "huge_usage"
    #: extra (streams): the final usage's fields replaced by ``usage`` (a None value
    #: leaves the field out), e.g. ``{"input_tokens_details": {"cached_tokens": "12"}}``.
    ODD_USAGE = "odd_usage"
    #: extra (streams): the response id is a JSON object in every event.
    OBJECT_ID = "object_id"
    #: extra (streams): some deltas, then only SSE comments (``events=True``: only
    #: response.in_progress events) every 20 ms for ``seconds`` (default: until the client
    #: goes away or the server stops), then the rest of the stream.
    KEEPALIVE = "keepalive"
    #: extra: a 307 (or ``status``) to ``location``, with no body.
    REDIRECT = "redirect"


_HTTP_FAULTS = {
    Fault.GARBLED_ERROR,
    Fault.REDIRECT,
    Fault.RATE_LIMIT,
    Fault.RATE_LIMIT_NO_RETRY_AFTER,
    Fault.SERVER_ERROR,
    Fault.UNAVAILABLE,
    Fault.CONTENT_FILTER,
    Fault.UNAUTHORIZED,
    Fault.FORBIDDEN,
}
_FAULT_OPTIONS = {
    "after_deltas",  # stream faults: deltas sent before the fault (default 3)
    "message",  # error message override
    "code",  # error code override
    "retry_after",  # RATE_LIMIT: retry-after header value (default "0")
    "reason",  # INCOMPLETE: incomplete_details.reason (default "max_output_tokens")
    "with_failed",  # NESTED_ERROR: precede the frame by response.failed with error null (Azure)
    "seconds",  # STALL, KEEPALIVE: how long (None = until disconnect / stop)
    "events",  # KEEPALIVE: send response.in_progress events instead of comments
    "location",  # REDIRECT: where to (required)
    "status",  # REDIRECT: the status code (default 307)
    "usage",  # ODD_USAGE: the usage fields sent instead (None: left out)
}


class _Headers(dict[str, str]):
    """A dict with case-insensitive lookups (keys stored lower-case)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for k, v in items:
            super().__setitem__(k.lower(), v)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    method: str
    path: str  # e.g. "/v1/responses"
    headers: dict[str, str]  # case-insensitive lookups
    body: dict[str, Any] | None  # parsed JSON body or None
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class _Turn:
    body: dict[str, Any]
    response_id: str
    msg_id: str
    created_at: int
    input_items: list[dict[str, Any]]
    tokens: list[str]  # the tokens that will be sent (already cut to max_output_tokens)
    truncated: bool
    input_tokens: int
    cached_tokens: int
    fault: Fault | None
    options: dict[str, Any]
    # A reasoning model's reasoning: its parts' tokens (summary parts, or one part of
    # open-weight reasoning text), how many tokens it thought, and in which style.
    reasoning_parts: list[list[str]] = field(default_factory=list)
    reasoning_tokens: int = 0
    reasoning_id: str | None = None
    open_weight: bool = False


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class _Invalid(Exception):
    """A payload failed schema validation; already recorded."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


_FULLY_VALIDATED_DELTAS = 5
_JSON = web.RequestKey("responses_server_json", object)
_REQUEST_ID = web.RequestKey("responses_server_request_id", str)
_MODEL_CREATED = 1_715_367_049

# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class ResponsesServer(ThreadedServer):
    """A deterministic OpenAI Responses API server (create/stream/retrieve/delete/items/models)."""

    def __init__(
        self,
        *,
        tokens_per_second: float | None = None,
        reply: Callable[[dict[str, Any]], str] | None = None,
        api_key: str | None = None,
        deployments: Iterable[str] | None = None,
        reasoning_models: Iterable[str] = (),
        refused: Mapping[str, Iterable[str]] | None = None,
        open_weight_models: Iterable[str] = (),
        reasoning: Callable[[dict[str, Any]], list[str]] | None = None,
        reasoning_tokens: int = 64,
        text_only_models: Iterable[str] = (),
        models: Iterable[str] = ("gpt-4o", "gpt-4o-mini", "o4-mini"),
        validate: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        first_delta_delay: float = 0.0,
        tokens_per_delta: int = 1,
        input_items_history: bool = True,
    ) -> None:
        self.tokens_per_second = tokens_per_second
        #: seconds between response.content_part.added and the first delta (time to first token)
        self.first_delta_delay = first_delta_delay
        self.tokens_per_delta = tokens_per_delta
        # True: input_items of a chained response start with the earlier turns, as on
        # OpenAI and agentserver; False: only that request's own input (older servers).
        self.input_items_history = input_items_history
        self.reply: Callable[[dict[str, Any]], str] = reply or default_reply
        self.api_key = api_key
        self.deployments = set(deployments) if deployments is not None else None
        self.reasoning_models = set(reasoning_models)
        # model -> the request parameters it refuses (API names, a nested one dotted:
        # "reasoning.effort"), with the 400 Azure and OpenAI answer.
        self.refused: dict[str, set[str]] = {
            model: set(names) for model, names in (refused or {}).items()
        }
        # Models that reason: `reasoning_models` stream a summary when the request's
        # reasoning.summary asks for one (else they think in silence); open-weight models
        # stream their reasoning text (response.reasoning_text.*) whatever is asked.
        self.open_weight_models = set(open_weight_models)
        self.reasoning: Callable[[dict[str, Any]], list[str]] = reasoning or default_reasoning
        #: reasoning tokens counted for a reply whose reasoning is not shown
        self.silent_reasoning_tokens = reasoning_tokens
        #: the summary a reasoning model gives when the request's reasoning.summary is unset
        #: (a deployment configured to summarise); None: it thinks in silence
        self.default_summary: str | None = None
        #: seconds a reasoning model thinks after its reasoning item is added
        self.thinking_seconds = 0.0
        #: models without vision: a request with an image or a file gets the API's 400
        self.text_only_models = set(text_only_models)
        self.models = list(models)
        self.validate = validate
        self.validator: SchemaValidator | None = load_validator() if validate else None
        self.host = host
        self._requested_port = port
        self.port: int | None = None

        self.requests: list[RecordedRequest] = []
        #: monotonic time at which each POST /responses body had been read and parsed
        self.creates_read: list[float] = []
        #: (model, monotonic time) as each streamed answer's last delta had been written
        self.answers_sent: list[tuple[str, float]] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self.schema_errors: list[str] = []

        self._lock = threading.Lock()
        self._faults: deque[tuple[Fault, dict[str, Any]]] = deque()
        self._delete_faults: dict[str, tuple[Fault, dict[str, Any]]] = {}
        self._replies: deque[str] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._streams: set[asyncio.Transport] = set()
        # prompt_cache_key -> the items the last request with that key sent and got.
        self._cache_prefixes: dict[str, list[tuple[Any, ...]]] = {}

    # -- public control API -------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("ResponsesServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def azure_base_url(self) -> str:
        return f"{self.url}/openai/v1"

    def created(self) -> list[dict[str, Any]]:
        """Bodies of every POST .../responses request, in order."""
        with self._lock:
            return [
                r.body or {}
                for r in self.requests
                if r.method == "POST" and r.path.endswith("/responses")
            ]

    def inject(self, fault: Fault | str, times: int = 1, **options: Any) -> None:
        """Queue ``fault`` for the next ``times`` create requests (FIFO with other faults)."""
        fault = Fault(fault)
        unknown = set(options) - _FAULT_OPTIONS
        if unknown:
            raise TypeError(f"unknown fault option(s): {sorted(unknown)}")
        with self._lock:
            for _ in range(times):
                self._faults.append((fault, dict(options)))

    def refuse(self, model: str, *parameters: str) -> None:
        """From now on ``model`` answers a request carrying any of ``parameters`` (API
        names, nested ones dotted: ``reasoning.summary``) with a 400 unsupported_parameter;
        one given as ``name=value`` refuses only that value (400 unsupported_value)."""
        with self._lock:
            self.refused.setdefault(model, set()).update(parameters)

    def fail_delete(self, response_id: str, fault: Fault | str, **options: Any) -> None:
        """Every DELETE of ``response_id`` from now on is answered with the HTTP ``fault``
        (UNAUTHORIZED, FORBIDDEN, RATE_LIMIT, SERVER_ERROR...); the response stays stored."""
        fault = Fault(fault)
        if fault not in _HTTP_FAULTS or set(options) - _FAULT_OPTIONS:
            raise TypeError(f"not an HTTP fault or unknown options: {fault}, {sorted(options)}")
        with self._lock:
            self._delete_faults[response_id] = (fault, dict(options))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delete_faults.clear()

    def queue_reply(self, text: str) -> None:
        """The next create replies with exactly ``text`` (FIFO; falls back to ``reply``)."""
        with self._lock:
            self._replies.append(text)

    def expire(self, response_id: str) -> None:
        with self._lock:
            self.stored.pop(response_id, None)

    def expire_all(self) -> None:
        with self._lock:
            self.stored.clear()

    def reset(self) -> None:
        """Forget requests, stored responses, queued faults/replies and schema errors."""
        with self._lock:
            self.requests.clear()
            self.stored.clear()
            self._faults.clear()
            self._delete_faults.clear()
            self._replies.clear()
            self.schema_errors.clear()
            self._cache_prefixes.clear()
            self.creates_read.clear()
            self.answers_sent.clear()

    # -- lifecycle ------------------------------------------------------------

    async def _astart(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", "/openai/v1"):
            app.router.add_post(f"{prefix}/responses", self._create)
            app.router.add_get(f"{prefix}/responses/{{id}}", self._retrieve)
            app.router.add_delete(f"{prefix}/responses/{{id}}", self._delete)
            app.router.add_get(f"{prefix}/responses/{{id}}/input_items", self._input_items)
            app.router.add_get(f"{prefix}/models", self._models)
            app.router.add_get(f"{prefix}/models/{{id}}", self._model)
        app.router.add_post("/_control/{action}", self._control)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def _astop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        for transport in list(self._streams):
            transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- plumbing ---------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        n = next(self._ids)
        return prefix + hashlib.sha256(f"{prefix}{n}".encode()).hexdigest()[:48]

    def _record_schema_errors(self, where: str, errors: list[str]) -> None:
        with self._lock:
            self.schema_errors.extend(f"{where}: {e}" for e in errors)

    def _check(self, schema: str | dict[str, Any], payload: Any, where: str) -> None:
        if self.validator is None:
            return
        errors = self.validator.errors(schema, payload)
        if errors:
            self._record_schema_errors(where, errors)
            raise _Invalid(errors)

    def _check_event(self, event: dict[str, Any]) -> None:
        if self.validator is None:
            return
        errors = self.validator.event_errors(event)
        if errors:
            self._record_schema_errors(f"event {event.get('type')}", errors)
            raise _Invalid(errors)

    def _json(
        self,
        request: web.Request,
        payload: Any,
        *,
        status: int = 200,
        schema: str | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        if schema is not None:
            try:
                self._check(schema, payload, f"{request.method} {request.path} ({status})")
            except _Invalid as exc:
                return self._invalid_response(request, exc)
        hdrs = {"x-request-id": request.get(_REQUEST_ID, "")}
        if headers:
            hdrs.update(headers)
        return web.Response(
            status=status,
            text=_dumps(payload),
            content_type="application/json",
            headers=hdrs,
        )

    def _invalid_response(self, request: web.Request, exc: _Invalid) -> web.Response:
        body = {
            "error": {
                "message": "responses_server: payload failed schema validation: "
                + "; ".join(exc.errors[:5]),
                "type": "server_error",
                "param": None,
                "code": "schema_validation_failed",
            }
        }
        return web.Response(
            status=500,
            text=_dumps(body),
            content_type="application/json",
            headers={"x-request-id": request.get(_REQUEST_ID, "")},
        )

    def _error(
        self,
        request: web.Request,
        status: int,
        message: str,
        *,
        type: str | None = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        payload = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return self._json(request, payload, status=status, schema="ErrorResponse", headers=headers)

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        auth = request.headers.get("Authorization", "")
        if auth == f"Bearer {self.api_key}":
            return True
        return request.headers.get("api-key") == self.api_key

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        request[_JSON] = body
        request[_REQUEST_ID] = "req_" + self._new_id("")[:32]
        if request.path.startswith("/_control/"):
            return await handler(request)  # type: ignore[no-any-return]
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    headers=_Headers(request.headers.items()),
                    body=body,
                    query=dict(request.query),
                )
            )
        if not self._authorized(request):
            return self._fault_response(request, Fault.UNAUTHORIZED, {})
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            payload = {"error": {"code": str(exc.status), "message": "Resource not found"}}
            return self._json(request, payload, status=exc.status, schema=AZURE_ERROR_SCHEMA)

    # -- faults -------------------------------------------------------------------

    def _fault_response(
        self, request: web.Request, fault: Fault, options: dict[str, Any]
    ) -> web.Response:
        message = options.get("message")
        body = request.get(_JSON)
        model = body.get("model") if isinstance(body, dict) else None
        if fault in (Fault.RATE_LIMIT, Fault.RATE_LIMIT_NO_RETRY_AFTER):
            headers = {}
            if fault is Fault.RATE_LIMIT:
                headers["retry-after"] = str(options.get("retry_after", "0"))
            return self._error(
                request,
                429,
                message or f"Rate limit reached for {model or 'requests'}. Please try again later.",
                type="requests",
                code=options.get("code", "rate_limit_exceeded"),
                headers=headers,
            )
        if fault is Fault.REDIRECT:
            return web.Response(
                status=int(options.get("status", 307)), headers={"Location": options["location"]}
            )
        if fault is Fault.GARBLED_ERROR:
            return web.Response(
                status=500,
                body=b'{"error": {"message": "proxy \xff\xfe\xc3( broke \x1b]0;pwned\x07"}}',
                content_type="application/json",
            )
        if fault is Fault.SERVER_ERROR:
            return self._error(
                request,
                500,
                message
                or "The server had an error while processing your request. Sorry about that!",
                type="server_error",
                code=options.get("code"),
            )
        if fault is Fault.UNAVAILABLE:
            return self._error(
                request,
                503,
                message or "The server is overloaded or not ready yet.",
                type="server_error",
                code=options.get("code"),
            )
        if fault is Fault.UNAUTHORIZED:
            return self._error(
                request,
                401,
                message
                or "Access denied due to invalid subscription key or wrong API endpoint. Make "
                "sure to provide a valid key for an active subscription and use a correct "
                "regional API endpoint for your resource.",
                code=options.get("code", "invalid_api_key"),
            )
        if fault is Fault.FORBIDDEN:
            payload = {
                "error": {
                    "code": options.get("code", "PermissionDenied"),
                    "message": message
                    or "The principal `00000000-0000-0000-0000-000000000000` lacks the required "
                    "data action `Microsoft.CognitiveServices/accounts/OpenAI/responses/write` "
                    f"to perform `POST {request.path}` operation.",
                }
            }
            return self._json(request, payload, status=403, schema=AZURE_ERROR_SCHEMA)
        if fault is Fault.CONTENT_FILTER:
            payload = {
                "error": {
                    "message": message
                    or "The response was filtered due to the prompt triggering Azure OpenAI's "
                    "content management policy. Please modify your prompt and retry. To learn "
                    "more about our content filtering policies please read our documentation: "
                    "https://go.microsoft.com/fwlink/?linkid=2198766",
                    "type": None,
                    "param": "prompt",
                    "code": options.get("code", "content_filter"),
                    "status": 400,
                    "innererror": {
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_result": {
                            "hate": {"filtered": True, "severity": "high"},
                            "jailbreak": {"filtered": False, "detected": False},
                            "self_harm": {"filtered": False, "severity": "safe"},
                            "sexual": {"filtered": False, "severity": "safe"},
                            "violence": {"filtered": False, "severity": "safe"},
                        },
                    },
                }
            }
            return self._json(request, payload, status=400, schema=AZURE_ERROR_SCHEMA)
        raise AssertionError(f"not an HTTP fault: {fault}")

    # -- request normalisation ----------------------------------------------------------

    def _refused_content(self, request: web.Request, inp: Any, model: str) -> web.Response | None:
        """The API's 400 for a content part the schema (InputContent) does not allow, an
        image or file whose data URL is not base64 of what it says, or an image or file
        sent to a model without vision; None when the parts are sound."""
        if not isinstance(inp, list):
            return None
        for i, item in enumerate(inp):
            content = item.get("content") if isinstance(item, dict) else None
            if not isinstance(content, list) or item.get("role") == "assistant":
                continue
            for j, part in enumerate(content):
                where = f"input[{i}].content[{j}]"
                if self.validator is not None and isinstance(part, dict):
                    errors = self.validator.errors("InputContent", part)
                    if errors:
                        return self._error(
                            request,
                            400,
                            f"Invalid '{where}': {errors[0][:300]}",
                            param=where,
                            code="invalid_value",
                        )
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in ("input_image", "input_file"):
                    continue
                if model in self.text_only_models:
                    return self._error(
                        request,
                        400,
                        f"Invalid content type. {kind} is only supported by certain models.",
                        param=where,
                        code="invalid_value",
                    )
                refused = self._refused_file(request, part, where)
                if refused is not None:
                    return refused
        return None

    def _refused_file(
        self, request: web.Request, part: dict[str, Any], where: str
    ) -> web.Response | None:
        if part["type"] == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or url.startswith(("http://", "https://")):
                return None  # a file_id, or a URL this server does not fetch
            found = _decoded(url)
            if found is None or not found[0].startswith("image/"):
                return self._error(
                    request,
                    400,
                    f"Invalid '{where}.image_url'. Expected a base64-encoded data URL with an "
                    "image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but "
                    "got an invalid value.",
                    param=f"{where}.image_url",
                    code="invalid_value",
                )
            head = _IMAGE_HEADS.get(found[0].split("/")[-1])
            if head is None or not found[1].startswith(head):
                return self._error(
                    request,
                    400,
                    "You uploaded an unsupported image. Please make sure your image has of one "
                    "the following formats: ['png', 'jpeg', 'gif', 'webp'].",
                    param=f"{where}.image_url",
                    code="invalid_image_format",
                )
            return None
        data = part.get("file_data")
        if data is None:
            return None
        found = _decoded(str(data))
        if found is None:
            return self._error(
                request,
                400,
                f"Invalid '{where}.file_data'. Expected a base64-encoded data URL, but got an "
                "invalid value.",
                param=f"{where}.file_data",
                code="invalid_value",
            )
        if not part.get("filename"):
            return self._error(
                request,
                400,
                f"Missing required parameter: '{where}.filename'.",
                param=f"{where}.filename",
                code="missing_required_parameter",
            )
        if found[0] == "application/pdf" and not found[1].startswith(b"%PDF-"):
            return self._error(
                request,
                400,
                f"The file {part.get('filename')} could not be read as a PDF.",
                param=f"{where}.file_data",
                code="invalid_file",
            )
        return None

    def _normalise_input(self, inp: Any) -> list[dict[str, Any]]:
        if inp is None:
            return []
        if isinstance(inp, str):
            inp = [{"role": "user", "content": inp}]
        if not isinstance(inp, list):
            raise ValueError("'input' must be a string or an array of input items")
        items: list[dict[str, Any]] = []
        for raw in inp:
            if not isinstance(raw, dict):
                raise ValueError("each input item must be an object")
            item = dict(raw)
            kind = item.get("type", "message" if "role" in item else None)
            if kind == "message":
                role = item.get("role")
                if role not in ("user", "system", "developer", "assistant"):
                    raise ValueError(f"invalid role {role!r}")
                content = item.get("content")
                part_type = "output_text" if role == "assistant" else "input_text"
                if isinstance(content, str):
                    parts: list[dict[str, Any]] = [{"type": part_type, "text": content}]
                    if part_type == "output_text":
                        parts[0].update(annotations=[], logprobs=[])
                elif isinstance(content, list):
                    parts = []
                    for part in content:
                        if not isinstance(part, dict):
                            raise ValueError("content parts must be objects")
                        part = dict(part)
                        if part.get("type") in ("input_text", "output_text"):
                            part["type"] = part_type
                        if part_type == "output_text":
                            part.setdefault("annotations", [])
                            part.setdefault("logprobs", [])
                        parts.append(part)
                else:
                    raise ValueError("message content must be a string or an array")
                out: dict[str, Any] = {
                    "id": item.get("id") or self._new_id("msg_"),
                    "type": "message",
                    "role": role,
                    "status": item.get("status") or "completed",
                    "content": parts,
                }
                items.append(out)
            elif kind == "reasoning":
                items.append(self._reasoning_input(item))
            else:
                item.setdefault("id", self._new_id("item_"))
                item.setdefault("status", "completed")
                items.append(item)
        return items

    def _reasoning_input(self, item: dict[str, Any]) -> dict[str, Any]:
        """A reasoning item sent back: exactly the schema's ReasoningItem, and its
        encrypted content one this server handed out for that item."""
        if self.validator is not None:
            errors = self.validator.errors("ReasoningItem", item)
            if errors:
                self._record_schema_errors("input reasoning item", errors)
                raise ValueError("; ".join(errors))
        encrypted = item.get("encrypted_content")
        if encrypted is not None:
            opened = decrypt_reasoning(encrypted) if isinstance(encrypted, str) else None
            if opened is None or opened.get("id") != item.get("id"):
                raise ValueError(f"the encrypted content of reasoning item {item.get('id')!r}")
        return item

    def _reasoning_for(self, body: dict[str, Any]) -> tuple[list[list[str]], int, bool]:
        """(the reasoning's parts as tokens, reasoning tokens, open-weight style)."""
        model = body.get("model")
        if model in self.open_weight_models:
            tokens = split_tokens("\n\n".join(self.reasoning(body)))
            return [tokens], len(tokens), True
        if model not in self.reasoning_models:
            return [], 0, False
        reasoning = body.get("reasoning")
        summary = reasoning.get("summary") if isinstance(reasoning, dict) else None
        summary = summary or self.default_summary
        if not summary:
            return [], self.silent_reasoning_tokens, False
        parts = [split_tokens(part) for part in self.reasoning(body)]
        return parts, max(self.silent_reasoning_tokens, sum(map(len, parts))), False

    def _reasoning_item(self, turn: _Turn, status: str = "completed") -> dict[str, Any]:
        assert turn.reasoning_id is not None
        texts = ["".join(part) for part in turn.reasoning_parts]
        item: dict[str, Any] = {"id": turn.reasoning_id, "type": "reasoning", "summary": []}
        if turn.open_weight:
            item["content"] = [{"type": "reasoning_text", "text": t} for t in texts]
        else:
            item["summary"] = [{"type": "summary_text", "text": t} for t in texts]
        include = turn.body.get("include")
        asked = isinstance(include, list) and "reasoning.encrypted_content" in include
        item["encrypted_content"] = (
            encrypt_reasoning(turn.reasoning_id, "\n\n".join(texts)) if asked else None
        )
        item["status"] = status
        return item

    def _output(self, turn: _Turn, message: dict[str, Any]) -> list[dict[str, Any]]:
        if turn.reasoning_id is None:
            return [message]
        return [self._reasoning_item(turn), message]

    def _reasoning_events(self, turn: _Turn, seq: Iterator[int]) -> list[dict[str, Any]]:
        """The reasoning item's events, in order, each with its sequence number."""
        rid = turn.reasoning_id
        assert rid is not None
        added = {
            **self._reasoning_item(turn, "in_progress"),
            "summary": [],
            "encrypted_content": None,
        }
        added.pop("content", None)
        events: list[dict[str, Any]] = [
            {"type": "response.output_item.added", "output_index": 0, "item": added}
        ]
        for index, part in enumerate(turn.reasoning_parts):
            text = "".join(part)
            if turn.open_weight:
                where = {"item_id": rid, "output_index": 0, "content_index": index}
                events += [
                    {"type": "response.reasoning_text.delta", **where, "delta": d} for d in part
                ]
                events.append({"type": "response.reasoning_text.done", **where, "text": text})
                continue
            where = {"item_id": rid, "output_index": 0, "summary_index": index}
            events.append(
                {
                    "type": "response.reasoning_summary_part.added",
                    **where,
                    "part": {"type": "summary_text", "text": ""},
                }
            )
            events += [
                {"type": "response.reasoning_summary_text.delta", **where, "delta": d} for d in part
            ]
            events += [
                {"type": "response.reasoning_summary_text.done", **where, "text": text},
                {
                    "type": "response.reasoning_summary_part.done",
                    **where,
                    "part": {"type": "summary_text", "text": text},
                },
            ]
        events.append(
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": self._reasoning_item(turn),
            }
        )
        for event in events:
            event["sequence_number"] = next(seq)
        return events

    def _history_tokens(self, previous_id: str | None) -> int:
        total = 0
        seen: set[str] = set()
        while previous_id and previous_id in self.stored and previous_id not in seen:
            seen.add(previous_id)
            prev = self.stored[previous_id]
            total += sum(self._item_tokens(i) for i in prev.get("input_items", []))
            total += sum(self._item_tokens(i) for i in prev.get("output", []))
            previous_id = prev.get("previous_response_id")
        return total

    def _cache_hit(self, key: Any, input_items: list[dict[str, Any]], reply: str) -> int:
        """The tokens of the leading input items that the last request with the same
        ``prompt_cache_key`` sent (or got as its reply); remembers this one's."""
        if not isinstance(key, str):
            return 0
        shapes = [_item_shape(item) for item in input_items]
        with self._lock:
            before = self._cache_prefixes.get(key, [])
            self._cache_prefixes[key] = [*shapes, ("message", "assistant", reply)]
        hit = 0
        for item, shape, earlier in zip(input_items, shapes, before, strict=False):
            if shape != earlier:
                break
            hit += self._item_tokens(item)
        return hit

    @staticmethod
    def _item_tokens(item: dict[str, Any]) -> int:
        if item.get("type") == "message":
            return count_tokens(_content_text(item.get("content")))
        return count_tokens(_dumps(item))

    # -- payload builders ---------------------------------------------------------------

    def _response(
        self,
        turn: _Turn,
        *,
        status: str,
        output: list[dict[str, Any]],
        n_out: int | None,
        error: dict[str, Any] | None = None,
        incomplete_reason: str | None = None,
    ) -> dict[str, Any]:
        b = turn.body
        usage = None
        if n_out is not None:
            usage = {
                "input_tokens": turn.input_tokens,
                "input_tokens_details": {
                    "cached_tokens": turn.cached_tokens,
                    "cache_write_tokens": 0,
                },
                "output_tokens": n_out + turn.reasoning_tokens,
                "output_tokens_details": {"reasoning_tokens": turn.reasoning_tokens},
                "total_tokens": turn.input_tokens + n_out + turn.reasoning_tokens,
            }
        service_tier = b.get("service_tier")
        resp: dict[str, Any] = {
            "id": turn.response_id,
            "object": "response",
            "created_at": turn.created_at,
            "status": status,
            "background": bool(b.get("background") or False),
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": (
                {"reason": incomplete_reason} if incomplete_reason is not None else None
            ),
            "instructions": b.get("instructions"),
            "max_output_tokens": b.get("max_output_tokens"),
            "max_tool_calls": b.get("max_tool_calls"),
            "model": b.get("model"),
            "output": output,
            "parallel_tool_calls": b.get("parallel_tool_calls", True) is not False,
            "previous_response_id": b.get("previous_response_id"),
            "prompt_cache_key": b.get("prompt_cache_key"),
            "reasoning": b.get("reasoning") or {"effort": None, "summary": None},
            "safety_identifier": b.get("safety_identifier"),
            "service_tier": "default" if service_tier in (None, "auto") else service_tier,
            "store": b.get("store") is not False,
            "temperature": 1.0 if b.get("temperature") is None else b["temperature"],
            "text": b.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": b.get("tool_choice") or "auto",
            "tools": b.get("tools") or [],
            "top_logprobs": b.get("top_logprobs") or 0,
            "top_p": 1.0 if b.get("top_p") is None else b["top_p"],
            "truncation": b.get("truncation") or "disabled",
            "metadata": b.get("metadata") or {},
        }
        if usage is not None:  # the schema's ResponseUsage is not nullable: omit it instead
            resp["usage"] = usage
        if b.get("user") is not None:
            resp["user"] = b["user"]
        return resp

    @staticmethod
    def _message(turn: _Turn, text: str, status: str, with_part: bool = True) -> dict[str, Any]:
        content = (
            [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
            if with_part
            else []
        )
        return {
            "id": turn.msg_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def _store(self, turn: _Turn, response: dict[str, Any]) -> None:
        if turn.body.get("store") is False:
            return
        with self._lock:
            self.stored[turn.response_id] = {**response, "input_items": turn.input_items}

    # -- handlers -----------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        # On the system-wide monotonic clock: a benchmark in another process compares it
        # with the times it saw the terminal change.
        self.creates_read.append(time.monotonic())
        body = request[_JSON]
        if not isinstance(body, dict):
            return self._error(
                request,
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly.)",
            )
        with self._lock:
            head = self._faults[0] if self._faults else None
            if head is not None and head[0] in _HTTP_FAULTS:
                self._faults.popleft()
        if head is not None and head[0] in _HTTP_FAULTS:
            return self._fault_response(request, head[0], head[1])

        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self._error(
                request,
                400,
                "Missing required parameter: 'model'.",
                param="model",
                code="missing_required_parameter",
            )
        if self.deployments is not None and model not in self.deployments:
            payload = {
                "error": {
                    "code": "DeploymentNotFound",
                    "message": "The API deployment for this resource does not exist. If you "
                    "created the deployment within the last 5 minutes, please wait a moment "
                    "and try again.",
                }
            }
            return self._json(request, payload, status=404, schema=AZURE_ERROR_SCHEMA)
        if model in self.reasoning_models:
            for param in ("temperature", "top_p"):
                if body.get(param) is not None:
                    return self._error(
                        request,
                        400,
                        f"Unsupported parameter: '{param}' is not supported with this model.",
                        param=param,
                        code="unsupported_parameter",
                    )
        with self._lock:
            refused = sorted(self.refused.get(model, ()))
        for param in refused:
            name, _, value = param.partition("=")
            if value and _value_of(body, name) == value:
                return self._error(
                    request,
                    400,
                    f"Unsupported value: '{name}' does not support '{value}' with this model.",
                    param=name,
                    code="unsupported_value",
                )
            if not value and _carries(body, param):
                return self._error(
                    request,
                    400,
                    f"Unsupported parameter: '{param}' is not supported with this model.",
                    param=param,
                    code="unsupported_parameter",
                )
        try:
            self._check_request_fields(body)
        except _Invalid as exc:
            return self._invalid_response(request, exc)
        max_out = body.get("max_output_tokens")
        if max_out is not None and (not isinstance(max_out, int) or max_out < 1):
            return self._error(
                request,
                400,
                f"Invalid 'max_output_tokens': integer below minimum value. Expected a value "
                f">= 1, but got {max_out!r} instead.",
                param="max_output_tokens",
                code="integer_below_min_value",
            )
        refused = self._refused_content(request, body.get("input"), model)
        if refused is not None:
            return refused
        try:
            input_items = self._normalise_input(body.get("input"))
        except ValueError as exc:
            return self._error(request, 400, f"Invalid 'input': {exc}.", param="input")
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.stored:
            return self._error(
                request,
                400,
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )

        with self._lock:
            fault, options = self._faults.popleft() if self._faults else (None, {})
            queued = self._replies.popleft() if self._replies else None
        text = queued if queued is not None else self.reply(body)
        tokens = split_tokens(text)
        if self.tokens_per_delta > 1:  # bigger deltas: a fast server, or a huge reply
            step = self.tokens_per_delta
            tokens = ["".join(tokens[i : i + step]) for i in range(0, len(tokens), step)]
        reasoning_parts, reasoning_tokens, open_weight = self._reasoning_for(body)
        room = max_out
        if max_out is not None and reasoning_tokens:
            # Reasoning counts against max_output_tokens: a small budget ends in it.
            if reasoning_tokens >= max_out:
                kept: list[list[str]] = []
                left = max_out
                for part in reasoning_parts:
                    if left <= 0:
                        break
                    kept.append(part[:left])
                    left -= len(part)
                reasoning_parts, reasoning_tokens = kept, max_out
            room = max_out - reasoning_tokens
        truncated = room is not None and len(tokens) > room
        if truncated:
            tokens = tokens[:room]
        history = self._history_tokens(previous)
        repeated = self._cache_hit(body.get("prompt_cache_key"), input_items, "".join(tokens))
        own = sum(self._item_tokens(i) for i in input_items)
        instructions = body.get("instructions")
        own += count_tokens(instructions if isinstance(instructions, str) else None)
        turn = _Turn(
            body=body,
            response_id=self._new_id("resp_"),
            msg_id=self._new_id("msg_"),
            created_at=int(time.time()),
            input_items=input_items,
            tokens=tokens,
            truncated=truncated,
            input_tokens=history + own,
            cached_tokens=history + repeated,
            fault=fault,
            options=options,
            reasoning_parts=reasoning_parts,
            reasoning_tokens=reasoning_tokens,
            reasoning_id=self._new_id("rs_") if reasoning_tokens else None,
            open_weight=open_weight,
        )
        if body.get("stream"):
            return await self._stream(request, turn)
        return await self._create_json(request, turn)

    def _check_request_fields(self, body: dict[str, Any]) -> None:
        """The request's reasoning, text and prompt_cache_key, as the schema has them."""
        for name, schema in (
            ("reasoning", "Reasoning"),
            ("text", "ResponseTextParam"),
            ("prompt_cache_key", {"type": "string"}),
        ):
            if name in body:
                self._check(schema, body[name], f"request {name}")

    def _after(self, turn: _Turn) -> int:
        return max(0, min(int(turn.options.get("after_deltas", 3)), len(turn.tokens)))

    async def _create_json(self, request: web.Request, turn: _Turn) -> web.StreamResponse:
        fault, opts = turn.fault, turn.options
        if fault in (Fault.ERROR_EVENT, Fault.NESTED_ERROR):
            return self._error(
                request,
                500,
                opts.get("message") or "The model produced invalid content.",
                type="server_error",
                code=opts.get("code", "server_error"),
            )
        if fault is Fault.DROP_STREAM:
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("dropped by fault injection")
        tokens = turn.tokens
        if fault in (Fault.FAILED, Fault.INCOMPLETE):
            tokens = tokens[: self._after(turn)]
        rate = self.tokens_per_second
        if rate:
            await asyncio.sleep(self.first_delta_delay + len(tokens) / rate)
        text = "".join(tokens)
        if fault is Fault.FAILED:
            response = self._response(
                turn,
                status="failed",
                output=self._output(turn, self._message(turn, text, "incomplete")),
                n_out=len(tokens),
                error={
                    "code": opts.get("code", "server_error"),
                    "message": opts.get("message") or "The model failed to generate a response.",
                },
            )
        elif fault is Fault.INCOMPLETE or turn.truncated:
            response = self._response(
                turn,
                status="incomplete",
                output=self._output(turn, self._message(turn, text, "incomplete")),
                n_out=len(tokens),
                incomplete_reason=opts.get("reason", "max_output_tokens"),
            )
        else:
            response = self._response(
                turn,
                status="completed",
                output=self._output(turn, self._message(turn, text, "completed")),
                n_out=len(tokens),
            )
        out = self._json(request, response, schema="Response")
        if out.status == 200:
            self._store(turn, response)
        return out

    async def _stream(self, request: web.Request, turn: _Turn) -> web.StreamResponse:
        fault, opts = turn.fault, turn.options
        seq = itertools.count(0)
        tokens = turn.tokens
        n_total = len(tokens)
        stop_at = n_total
        if fault in (
            Fault.DROP_STREAM,
            Fault.FAILED,
            Fault.ERROR_EVENT,
            Fault.NESTED_ERROR,
            Fault.INCOMPLETE,
        ):
            stop_at = self._after(turn)
        stall_at = self._after(turn) if fault in (Fault.STALL, Fault.KEEPALIVE) else None

        in_progress = self._response(turn, status="in_progress", output=[], n_out=None)
        # A reasoning item comes first (output 0); the message follows it.
        msg_index = 0 if turn.reasoning_id is None else 1
        opening: list[dict[str, Any]] = [
            {"type": "response.created", "response": in_progress, "sequence_number": next(seq)},
            {
                "type": "response.in_progress",
                "response": in_progress,
                "sequence_number": next(seq),
            },
        ]
        thinking = [] if turn.reasoning_id is None else self._reasoning_events(turn, seq)
        pre: list[dict[str, Any]] = [
            {
                "type": "response.output_item.added",
                "output_index": msg_index,
                "item": self._message(turn, "", "in_progress", with_part=False),
                "sequence_number": next(seq),
            },
            {
                "type": "response.content_part.added",
                "item_id": turn.msg_id,
                "output_index": msg_index,
                "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                "sequence_number": next(seq),
            },
        ]
        first_delta_seq = next(seq)
        seq = itertools.count(first_delta_seq + stop_at)
        sent_text = "".join(tokens[:stop_at])
        post: list[dict[str, Any]] = []
        raw_tail: list[str] = []  # non-event frames (nested error)
        final: dict[str, Any]
        if fault is Fault.FAILED:
            final = self._response(
                turn,
                status="failed",
                output=self._output(turn, self._message(turn, sent_text, "incomplete")),
                n_out=stop_at,
                error={
                    "code": opts.get("code", "server_error"),
                    "message": opts.get("message") or "The model failed to generate a response.",
                },
            )
            post.append(
                {"type": "response.failed", "response": final, "sequence_number": next(seq)}
            )
        elif fault is Fault.ERROR_EVENT:
            message = opts.get("message") or "The model produced invalid content."
            final = self._response(
                turn,
                status="failed",
                output=self._output(turn, self._message(turn, sent_text, "incomplete")),
                n_out=stop_at,
                error={"code": "server_error", "message": message},
            )
            post.append(
                {
                    "type": "error",
                    "code": opts.get("code", "server_error"),
                    "message": message,
                    "param": None,
                    "sequence_number": next(seq),
                }
            )
        elif fault is Fault.NESTED_ERROR:
            message = opts.get("message") or (
                "The response was filtered due to the prompt triggering Azure OpenAI's content "
                "management policy. Please modify your prompt and retry."
            )
            final = self._response(
                turn,
                status="failed",
                output=self._output(turn, self._message(turn, sent_text, "incomplete")),
                n_out=stop_at,
                error=None,
            )
            if opts.get("with_failed"):
                post.append(
                    {"type": "response.failed", "response": final, "sequence_number": next(seq)}
                )
            nested = {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": opts.get("code", "content_filter"),
                }
            }
            self._check("ErrorResponse", nested, "nested error frame")
            raw_tail.append(f"data: {_dumps(nested)}\n\n")
        elif fault is Fault.DROP_STREAM:
            final = self._response(
                turn,
                status="failed",
                output=self._output(turn, self._message(turn, sent_text, "incomplete")),
                n_out=stop_at,
                error={"code": "server_error", "message": "The stream was interrupted."},
            )
        else:
            incomplete = fault is Fault.INCOMPLETE or turn.truncated
            text = "".join(tokens[:stop_at])
            status = "incomplete" if incomplete else "completed"
            item = self._message(turn, text, status)
            part = item["content"][0]
            post += [
                {
                    "type": "response.output_text.done",
                    "item_id": turn.msg_id,
                    "output_index": msg_index,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                    "sequence_number": next(seq),
                },
                {
                    "type": "response.content_part.done",
                    "item_id": turn.msg_id,
                    "output_index": msg_index,
                    "content_index": 0,
                    "part": part,
                    "sequence_number": next(seq),
                },
                {
                    "type": "response.output_item.done",
                    "output_index": msg_index,
                    "item": item,
                    "sequence_number": next(seq),
                },
            ]
            final = self._response(
                turn,
                status=status,
                output=self._output(turn, item),
                n_out=stop_at,
                incomplete_reason=(opts.get("reason", "max_output_tokens") if incomplete else None),
            )
            post.append(
                {
                    "type": "response.incomplete" if incomplete else "response.completed",
                    "response": final,
                    "sequence_number": next(seq),
                }
            )
        final_status = final["status"]  # "cancelled" if the client goes away first

        delta_head = (
            'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            f'"item_id":{_dumps(turn.msg_id)},"output_index":{msg_index},"content_index":0,"delta":'
        )

        def delta_frame(i: int) -> str:
            return (
                f'{delta_head}{_dumps(tokens[i])},"sequence_number":{first_delta_seq + i},'
                '"logprobs":[]}\n\n'
            )

        try:
            for event in opening + pre + post:
                self._check_event(event)
            shown = 0  # every reasoning event but the deltas after the first few
            for event in thinking:
                if not event["type"].endswith(".delta") or shown < _FULLY_VALIDATED_DELTAS:
                    shown += event["type"].endswith(".delta")
                    self._check_event(event)
            for i in range(min(_FULLY_VALIDATED_DELTAS, stop_at)):
                data = delta_frame(i).split("\ndata: ", 1)[1]
                self._check_event(json.loads(data))
        except _Invalid as exc:
            return self._invalid_response(request, exc)
        if fault in (Fault.HUGE_USAGE, Fault.ODD_USAGE, Fault.OBJECT_ID):
            odd = opts.get("usage")
            opening = _broken(fault, opening, odd)
            pre, post = _broken(fault, pre, odd), _broken(fault, post, odd)
        thought = [_frame(event).decode() for event in thinking]

        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": request[_REQUEST_ID],
                "openai-processing-ms": "1",
            },
        )
        await resp.prepare(request)
        transport = request.transport
        if transport is not None:
            self._streams.add(transport)
        self._store(turn, in_progress)
        outcome = final_status
        stored_final = False
        try:
            loop = asyncio.get_running_loop()
            for event in opening:
                await resp.write(_frame(event))
            # The reasoning streams at the reply's pace, one frame per token.
            if thought:
                await resp.write(thought[0].encode())
                if self.thinking_seconds > 0:
                    await asyncio.sleep(self.thinking_seconds)
            # The base class's pacing, always: a subclass that times the answer's deltas
            # (the benchmark's) counts only those.
            await ResponsesServer._write_deltas(
                self, resp, thought.__getitem__, 1, len(thought), loop
            )
            for event in pre:
                await resp.write(_frame(event))
            if self.first_delta_delay > 0:
                await asyncio.sleep(self.first_delta_delay)
            i = 0
            if stall_at is not None:
                await self._write_deltas(resp, delta_frame, 0, stall_at, loop)
                if fault is Fault.KEEPALIVE:
                    beat = _frame(opening[1]) if opts.get("events") else b": keep-alive\n\n"
                    await self._keep_alive(resp, request, beat, opts.get("seconds"))
                else:
                    await self._stall(request, opts.get("seconds"))
                i = stall_at
            await self._write_deltas(resp, delta_frame, i, stop_at, loop)
            self.answers_sent.append((str(turn.body.get("model")), time.monotonic()))
            if fault is Fault.DROP_STREAM:
                # close() sends what is buffered, then FIN: no terminating chunk, no event
                if transport is not None:
                    transport.close()
                self._store(turn, final)
                return resp
            # Stored before the terminal event goes out, as a real server has it by then: a
            # client that reads response.completed and at once retrieves (or a test that then
            # expires everything) must not race the store.
            self._store(turn, final)
            stored_final = True
            for event in post:
                await resp.write(_frame(event))
            for raw in raw_tail:
                await resp.write(raw.encode())
            await resp.write_eof()
        except ConnectionError:
            outcome = "cancelled"  # the client went away (or stop() aborted the stream)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            if outcome == "cancelled" and not stored_final:
                self._store(turn, self._response(turn, status="cancelled", output=[], n_out=None))
            elif not stored_final:
                self._store(turn, final)
            if transport is not None:
                self._streams.discard(transport)
        return resp

    async def _write_deltas(
        self,
        resp: web.StreamResponse,
        frame: Callable[[int], str],
        start: int,
        end: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Write deltas [start, end), one frame per token, paced by absolute schedule."""
        i = start
        rate = self.tokens_per_second
        anchor_t, anchor_i = loop.time(), i
        while i < end:
            current = self.tokens_per_second
            if current != rate:  # changed at runtime: re-anchor the schedule at "now"
                rate, anchor_t, anchor_i = current, loop.time(), i
            if not rate or rate <= 0:
                upto = min(end, i + 256)
            else:
                now = loop.time()
                due = anchor_i + int((now - anchor_t) * rate) + 1  # tokens due by now
                if due <= i:
                    await asyncio.sleep(anchor_t + (i - anchor_i) / rate - now)
                    continue
                upto = min(end, due)
            while i < upto:
                await resp.write(frame(i).encode())
                i += 1
            if not rate:
                await asyncio.sleep(0)  # let other connections run between batches

    async def _stall(self, request: web.Request, seconds: float | None) -> None:
        assert self._stopping is not None
        deadline = None if seconds is None else time.monotonic() + seconds
        transport = request.transport
        while not self._stopping.is_set():
            if transport is None or transport.is_closing():
                raise ConnectionResetError("client went away during stall")
            if deadline is not None and time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.02)
        raise ConnectionResetError("server stopping")

    async def _keep_alive(
        self, resp: web.StreamResponse, request: web.Request, beat: bytes, seconds: float | None
    ) -> None:
        """Bytes but no text: ``beat`` every 20 ms, until ``seconds`` passed."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            await self._stall(request, 0.02)
            await resp.write(beat)

    def _public(self, stored: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in stored.items() if k != "input_items"}

    def _not_found(self, request: web.Request, response_id: str) -> web.Response:
        return self._error(request, 404, f"Response with id '{response_id}' not found.")

    async def _retrieve(self, request: web.Request) -> web.StreamResponse:
        rid = request.match_info["id"]
        stored = self.stored.get(rid)
        if stored is None:
            return self._not_found(request, rid)
        return self._json(request, self._public(stored), schema="Response")

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        rid = request.match_info["id"]
        with self._lock:
            fault = self._delete_faults.get(rid)
            stored = self.stored.pop(rid, None) if fault is None else None
        if fault is not None:
            return self._fault_response(request, *fault)
        if stored is None:
            return self._not_found(request, rid)
        payload = {"id": rid, "object": "response.deleted", "deleted": True}
        return self._json(request, payload, schema=_DELETED_SCHEMA)

    def _context_items(self, stored: dict[str, Any]) -> list[dict[str, Any]]:
        """The earlier turns of a chain (inputs, then outputs, oldest first): what OpenAI's
        and Microsoft's agentserver's input_items list before a chained request's own input."""
        chain: list[dict[str, Any]] = []
        previous = stored.get("previous_response_id")
        while previous and previous in self.stored:
            chain.append(self.stored[previous])
            previous = self.stored[previous].get("previous_response_id")
        items: list[dict[str, Any]] = []
        for earlier in reversed(chain):
            items += earlier.get("input_items", [])
            items += [o for o in earlier.get("output", []) if o.get("type") == "message"]
        return items

    async def _input_items(self, request: web.Request) -> web.StreamResponse:
        rid = request.match_info["id"]
        stored = self.stored.get(rid)
        if stored is None:
            return self._not_found(request, rid)
        query = request.query
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            return self._error(
                request,
                400,
                f"Invalid value for 'order': expected one of asc, desc, but got {order!r}.",
                param="order",
                code="invalid_value",
            )
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 100:
            return self._error(
                request,
                400,
                f"Invalid 'limit': expected an integer between 1 and 100, got "
                f"{query.get('limit')!r}.",
                param="limit",
                code="invalid_value",
            )
        items = self._context_items(stored) if self.input_items_history else []
        items += list(stored.get("input_items", []))
        if order == "desc":
            items.reverse()
        after = query.get("after")
        if after:
            ids = [i.get("id") for i in items]
            if after not in ids:
                return self._error(
                    request, 400, f"Invalid 'after': item '{after}' not found.", param="after"
                )
            items = items[ids.index(after) + 1 :]
        page = items[:limit]
        payload = {
            "object": "list",
            "data": page,
            "has_more": len(items) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
        if not page:
            # The schema types first_id/last_id as strings; an empty page has none.
            try:
                self._check(
                    "ResponseItemList",
                    {**payload, "first_id": "", "last_id": ""},
                    f"GET {request.path}",
                )
            except _Invalid as exc:
                return self._invalid_response(request, exc)
            return self._json(request, payload)
        return self._json(request, payload, schema="ResponseItemList")

    def _model_obj(self, model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"}

    async def _models(self, request: web.Request) -> web.StreamResponse:
        payload = {"object": "list", "data": [self._model_obj(m) for m in self.models]}
        return self._json(request, payload, schema=_MODEL_LIST_SCHEMA)

    async def _model(self, request: web.Request) -> web.StreamResponse:
        mid = request.match_info["id"]
        if mid not in self.models:
            return self._error(
                request,
                404,
                f"The model '{mid}' does not exist or you do not have access to it.",
                code="model_not_found",
            )
        return self._json(request, self._model_obj(mid))

    async def _control(self, request: web.Request) -> web.StreamResponse:
        """Out-of-process steering: inject / reply / replies (by model) / tps / expire /
        reset, and ``received``: the monotonic times at which each create's body had been
        read, and at which each streamed answer's last delta had been written."""
        action = request.match_info["action"]
        raw = request[_JSON]
        body: dict[str, Any] = raw if isinstance(raw, dict) else {}
        try:
            if action == "inject":
                opts = {k: v for k, v in body.items() if k not in ("fault", "times")}
                self.inject(Fault(body["fault"]), int(body.get("times", 1)), **opts)
            elif action == "reply":
                self.queue_reply(str(body["text"]))
            elif action == "tps":
                tps = body.get("tokens_per_second")
                self.tokens_per_second = None if tps is None else float(tps)
            elif action == "expire":
                if body.get("id"):
                    self.expire(str(body["id"]))
                else:
                    self.expire_all()
            elif action == "reset":
                self.reset()
            elif action == "replies":  # a fixed reply for each model named
                by_model = {str(k): str(v) for k, v in dict(body["by_model"]).items()}
                fallback = self.reply
                self.reply = lambda create: (
                    by_model.get(str(create.get("model")), "") or fallback(create)
                )
            elif action == "received":
                return web.json_response(
                    {
                        "ok": True,
                        "creates_read": list(self.creates_read),
                        "answers_sent": [list(pair) for pair in self.answers_sent],
                    }
                )
            else:
                return web.json_response(
                    {"ok": False, "error": f"unknown action {action}"}, status=404
                )
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})


def _value_of(body: dict[str, Any], param: str) -> Any:
    """What the request body sets ``param`` to (``a.b``: field b of object a), or None."""
    outer, _, inner = param.partition(".")
    value = body.get(outer)
    if inner:
        return value.get(inner) if isinstance(value, dict) else None
    return value


def _carries(body: dict[str, Any], param: str) -> bool:
    return _value_of(body, param) is not None


def _item_shape(item: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two input items the same prompt text (not their ids)."""
    if item.get("type") == "message":
        return ("message", item.get("role"), _content_text(item.get("content")))
    return (_dumps({k: v for k, v in item.items() if k != "id"}),)


def _broken(
    fault: Fault, events: list[dict[str, Any]], usage: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Copies of ``events`` as a broken server sends them (after they were validated)."""
    out: list[dict[str, Any]] = json.loads(_dumps(events))
    for event in out:
        response = event.get("response")
        if not isinstance(response, dict):
            continue
        if fault is Fault.OBJECT_ID:
            response["id"] = {"id": response["id"], "object": "response"}
        elif not isinstance(response.get("usage"), dict):
            continue
        elif fault is Fault.ODD_USAGE:
            for name, value in (usage or {}).items():
                if value is None:
                    response["usage"].pop(name, None)
                else:
                    response["usage"][name] = value
        else:
            response["usage"]["input_tokens"] = 10**30
    return out


def _frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {_dumps(event)}\n\n".encode()


def iter_sse(raw: bytes | str) -> Iterator[tuple[str | None, str]]:
    """Parse an SSE body into (event, data) pairs (test helper)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    for block in re.split(r"\r\n\r\n|\n\n|\r\r", text):
        if not block.strip():
            continue
        event, data = None, []
        for line in re.split(r"\r\n|\n|\r", block):
            if line.startswith("event:"):
                event = line[6:].lstrip(" ")
            elif line.startswith("data:"):
                data.append(line[5:][1:] if line[5:].startswith(" ") else line[5:])
        yield event, "\n".join(data)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.responses_server",
        description="Serve a deterministic OpenAI Responses API on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tps", type=float, default=None, help="tokens per second (default: max)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--deployments", default=None, help="comma-separated deployment names")
    parser.add_argument("--reasoning-models", default="", help="comma-separated model names")
    parser.add_argument(
        "--open-weight-models",
        default="",
        help="comma-separated model names that stream their reasoning text",
    )
    parser.add_argument(
        "--text-only-models", default="", help="comma-separated models that refuse images/files"
    )
    parser.add_argument("--models", default=None, help="comma-separated /models ids")
    parser.add_argument(
        "--models-file", default=None, help="a file holding /models ids as a JSON list (any text)"
    )
    parser.add_argument("--reply", default=None, help="fixed reply text for every create")
    parser.add_argument(
        "--reply-tokens", type=int, default=None, help="reply with a deterministic N-token text"
    )
    parser.add_argument("--first-delta-delay", type=float, default=0.0)
    parser.add_argument(
        "--tokens-per-delta", type=int, default=1, help="tokens in each text delta (default 1)"
    )
    parser.add_argument("--no-validate", action="store_true")
    args = parser.parse_args(argv)

    def split(value: str | None) -> list[str] | None:
        return None if value is None else [v.strip() for v in value.split(",") if v.strip()]

    reply: Callable[[dict[str, Any]], str] | None = None
    if args.reply is not None:
        fixed = args.reply

        def reply(body: dict[str, Any]) -> str:
            return str(fixed)

    elif args.reply_tokens is not None:
        generated = make_text(args.reply_tokens)

        def reply(body: dict[str, Any]) -> str:
            return generated

    kwargs: dict[str, Any] = {}
    if args.models is not None:
        kwargs["models"] = split(args.models)
    if args.models_file is not None:
        with open(args.models_file, encoding="utf-8") as listing:
            kwargs["models"] = [str(model) for model in json.load(listing)]
    server = ResponsesServer(
        tokens_per_second=args.tps,
        reply=reply,
        api_key=args.api_key,
        deployments=split(args.deployments),
        reasoning_models=split(args.reasoning_models) or (),
        open_weight_models=split(args.open_weight_models) or (),
        text_only_models=split(args.text_only_models) or (),
        validate=not args.no_validate,
        port=args.port,
        first_delta_delay=args.first_delta_delay,
        tokens_per_delta=args.tokens_per_delta,
        **kwargs,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    try:
        print(f"READY {server.base_url}", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
        if server.schema_errors:
            print("schema errors:", *server.schema_errors, sep="\n", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
