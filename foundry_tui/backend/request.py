"""What a turn sends: the body of `POST /responses`, the same for every transport.

The SDK client (`client.Backend`) passes it to ``responses.create`` as keyword arguments;
the lean transport (`lean.LeanBackend`) posts it as JSON. A setting left to the server is
left out of the body, not sent as null; so is a parameter the deployment refused before
(``omit``: the API's names, dotted for a nested field, e.g. ``reasoning.summary``).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator, Callable, Collection
from typing import TYPE_CHECKING

from foundry_tui.core.models import EncodedFile, GenerationSettings, InputMessage, MessageRole

if TYPE_CHECKING:
    from foundry_tui.core.session import NextRequest

__all__ = [
    "ENCRYPTED_REASONING",
    "EncodedBody",
    "asks_for_reasoning",
    "body_bytes",
    "carries_files",
    "create_body",
    "next_body",
    "to_input_items",
    "upload",
]

# What `include` asks for so a reply's reasoning items carry their encrypted content, the
# one form of them a request can send back without the server keeping them.
ENCRYPTED_REASONING = "reasoning.encrypted_content"

_SPLICED = 64 * 1024
# What JSON writes as it is: printable ASCII but the quote and the backslash.
_VERBATIM = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def _verbatim(value: str) -> bytes | None:
    """``value`` as the bytes JSON would write for it (without its quotes), when it needs
    no escape (a base64 data URL never does); None otherwise. Two passes in C: 40 ms for
    27 MB, where a regex takes 0.1 s and the JSON encoder 0.24 s."""
    if not value.isascii():
        return None
    data = value.encode("ascii")
    return None if data.translate(None, _VERBATIM) else data


def carries_files(messages: list[InputMessage]) -> bool:
    """Whether the body holds files' bytes: tens of megabytes of base64, whose JSON takes
    0.3-0.6 s to write (measured: 20 MB image), too long for the UI's loop."""
    return any(message.attachment_data for message in messages)


class EncodedBody:
    """A request body as the pieces it is written in (``len`` is its Content-Length): the
    files' base64 is never copied into one buffer (27 MB held the GIL for tens of ms)."""

    __slots__ = ("length", "pieces")

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.length = sum(len(piece) for piece in pieces)

    def __len__(self) -> int:
        return self.length

    def __bytes__(self) -> bytes:
        return b"".join(self.pieces)


def body_bytes(body: dict[str, object]) -> EncodedBody:
    """The body as the SDK writes it (compact JSON, UTF-8); for a thread (carries_files).

    The files' data URLs are not run through the JSON encoder: they need no escaping, so
    the rest is encoded around placeholders and their pieces are spliced in as they are."""
    spliced: list[list[bytes]] = []
    # A nonce, so that no text of the body (a prompt holding the same characters) can
    # pass for a placeholder.
    nonce = secrets.token_hex(16)

    def placeholder(value: str | EncodedFile) -> str | None:
        if isinstance(value, EncodedFile):
            spliced.append([value.prefix.encode("ascii"), *value.chunks])
        else:
            data = _verbatim(value)
            if data is None:
                return None
            spliced.append([data])
        return f"\x00{nonce}:{len(spliced) - 1}\x00"

    shallow = dict(body)
    items = shallow.get("input")
    if isinstance(items, list):
        shallow["input"] = [_without_urls(item, placeholder) for item in items]
    text = json.dumps(shallow, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if not spliced:
        return EncodedBody([text.encode()])
    # The encoder writes each placeholder's NULs as the six characters \u0000.
    pieces: list[bytes] = []
    for index, piece in enumerate(re.split(rf"\\u0000{nonce}:(\d+)\\u0000", text)):
        if index % 2:
            pieces += spliced[int(piece)]
        else:
            pieces.append(piece.encode())
    return EncodedBody(pieces)


_UPLOAD_CHUNK = 256 * 1024


async def upload(content: EncodedBody) -> AsyncIterator[bytes]:
    """``content`` a piece at a time, for a request sent with its Content-Length: written
    whole, 27 MB went through the event loop's socket buffer in copies of 20-40 ms."""
    for piece in content.pieces:
        view = memoryview(piece)
        for start in range(0, len(view), _UPLOAD_CHUNK):
            yield view[start : start + _UPLOAD_CHUNK].tobytes()


def _without_urls(item: object, placeholder: Callable[[str | EncodedFile], str | None]) -> object:
    """An input item with its big data URLs (image_url, file_data) as placeholders."""
    if not isinstance(item, dict) or not isinstance(item.get("content"), list):
        return item
    parts = []
    for part in item["content"]:
        if isinstance(part, dict):
            part = dict(part)
            for key in ("image_url", "file_data"):
                value = part.get(key)
                if isinstance(value, EncodedFile) or (
                    isinstance(value, str) and len(value) > _SPLICED
                ):
                    # An EncodedFile always has a placeholder (base64 needs no escape).
                    part[key] = placeholder(value) or value
        parts.append(part)
    return {**item, "content": parts}


def to_input_items(messages: list[InputMessage]) -> list[dict[str, object]]:
    """Input items for `responses.create` from the app's messages; an assistant message's
    reasoning items go just before it, where the model produced them, and a prompt's files
    follow its text as content parts."""
    items: list[dict[str, object]] = []
    for message in messages:
        items.extend(message.reasoning_items)
        items.append(
            {
                "type": "message",
                "role": MessageRole(message.role).value,
                "content": _content_parts(message) if message.attachments else message.text,
            }
        )
    return items


def asks_for_reasoning(settings: GenerationSettings, input: list[InputMessage]) -> bool:
    """Whether the turn goes to a model that reasons: asked to (an effort other than
    none, or a summary), or sending reasoning items back. Only such a request carries
    `include`, so a chat with a model that never reasoned is sent as before."""
    if any(message.reasoning_items for message in input):
        return True
    effort = settings.reasoning_effort
    return bool(settings.reasoning_summary) or (effort is not None and effort != "none")


def _content_parts(message: InputMessage) -> list[dict[str, object]]:
    """A prompt with files: its text, then each file, as the schema's InputTextContent,
    InputImageContent (image_url: a data URL; detail: auto) and InputFileContent
    (filename and file_data: a data URL)."""
    parts: list[dict[str, object]] = []
    if message.text:
        parts.append({"type": "input_text", "text": message.text})
    data = message.attachment_data
    for index, attachment in enumerate(message.attachments):
        # Without its bytes (a request shown, not sent: "View code"), a placeholder that
        # says so and that no server takes for a file.
        url = (
            data[index]
            if index < len(data)
            else f"data:{attachment.media_type};base64,<{attachment.name}: {attachment.size} bytes>"
        )
        if attachment.media_type.startswith("image/"):
            parts.append({"type": "input_image", "image_url": url, "detail": "auto"})
        else:
            parts.append({"type": "input_file", "filename": attachment.name, "file_data": url})
    return parts


def next_body(settings: GenerationSettings, request: NextRequest) -> dict[str, object]:
    """The body a send would post for the session's ``request`` ("View code")."""
    return create_body(
        settings,
        request.input,
        request.previous_response_id,
        store=request.store,
        prompt_cache_key=request.prompt_cache_key,
        omit=request.omit,
    )


def create_body(
    settings: GenerationSettings,
    input: list[InputMessage],
    previous_response_id: str | None,
    *,
    store: bool,
    prompt_cache_key: str | None = None,
    omit: Collection[str] = (),
) -> dict[str, object]:
    """The streamed create request for one turn."""
    body: dict[str, object] = {"model": settings.model, "input": to_input_items(input)}
    if settings.instructions:
        body["instructions"] = settings.instructions
    if previous_response_id:
        body["previous_response_id"] = previous_response_id
    if settings.temperature is not None:
        body["temperature"] = settings.temperature
    if settings.top_p is not None:
        body["top_p"] = settings.top_p
    if settings.max_output_tokens is not None:
        body["max_output_tokens"] = settings.max_output_tokens
    reasoning = _present(effort=settings.reasoning_effort, summary=settings.reasoning_summary)
    if reasoning:
        body["reasoning"] = reasoning
    if settings.verbosity is not None:
        body["text"] = {"verbosity": settings.verbosity}
    if prompt_cache_key:
        body["prompt_cache_key"] = prompt_cache_key
    if asks_for_reasoning(settings, input):
        # Every turn of a reasoning model, chained or not (store true): a replay after
        # the server forgot the chain can send back only what was asked for here.
        body["include"] = [ENCRYPTED_REASONING]
    body["store"] = store
    body["stream"] = True
    for name in omit:
        _leave_out(body, name)
    return body


def _present(**fields: str | None) -> dict[str, object]:
    return {name: value for name, value in fields.items() if value is not None}


def _leave_out(body: dict[str, object], name: str) -> None:
    """Removes ``name`` (``a.b`` for a nested field) and an object it leaves empty."""
    outer, _, inner = name.partition(".")
    if not inner:
        body.pop(outer, None)
        return
    nested = body.get(outer)
    if isinstance(nested, dict):
        nested.pop(inner, None)
        if not nested:
            del body[outer]
