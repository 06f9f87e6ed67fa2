"""A conversation as a file and back: the JSON export document, read from the store and
checked on its way in.

The document's shape is versioned (``FORMAT``, ``VERSION``) and described by the JSON
Schema ``export_schema.json`` beside this module (docs/export-format.md says it in
words). It holds what the store holds of one conversation and nothing else: no endpoint,
no key, no environment. Local ids are in it so that parents and the head can be named;
importing gives the conversation and its messages new local ids and keeps everything else
(response ids included, so an imported conversation can chain on or replay).

A file to import is untrusted: it is refused as a whole (`TransferError`, one sentence)
unless it is ours, of a version this code reads, and sound in every field. Its text is
then stored as it is; every surface that shows it sanitizes it (core/text.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from foundry_tui import __version__
from foundry_tui.core.attachments import MEDIA_TYPES, base64_text, sniff_media_type
from foundry_tui.core.branches import Tree
from foundry_tui.core.models import (
    Attachment,
    Conversation,
    GenerationSettings,
    Message,
    MessageRole,
    MessageStatus,
    ServerState,
    Usage,
)

if TYPE_CHECKING:
    from foundry_tui.store import Store

__all__ = [
    "FORMAT",
    "MAX_IMPORT_BYTES",
    "TOO_BIG",
    "VERSION",
    "Exported",
    "TransferError",
    "document",
    "dumps",
    "find",
    "parse",
    "save_imported",
]

FORMAT: Final = "foundry-tui.conversation"
# 2: attachments (their bytes once each, base64), the reasoning text, cached input and
# reasoning token counts, the time to first token and the duration, and the reasoning
# and verbosity settings. Version 1 documents are still read (those fields empty).
VERSION: Final = 2

# A file bigger than this is refused before it is read: the store keeps replies of tens of
# megabytes and attachments of up to 50 MB a prompt (a third more as base64), and
# decoding JSON takes a few times its size in memory.
MAX_IMPORT_BYTES: Final = 400_000_000
TOO_BIG: Final = f"it is bigger than the {MAX_IMPORT_BYTES // 1_000_000} MB an import may be."
MAX_MESSAGES: Final = 100_000
MAX_ID_CHARS: Final = 256  # as core/coerce.py keeps a server's ids
MAX_TITLE_CHARS: Final = 1_000
MAX_TIME_CHARS: Final = 64
MAX_NAME_CHARS: Final = 1_000  # an attachment's file name
MAX_ATTACHMENTS: Final = 100_000
_MAX_INTEGER: Final = 2**63 - 1  # SQLite's INTEGER

_T = TypeVar("_T")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_E = TypeVar("_E", MessageRole, MessageStatus, ServerState)


class TransferError(ValueError):
    """A file that cannot be imported; ``str()`` is one sentence saying why."""


@dataclass(frozen=True)
class Exported:
    """One conversation as the store holds it: the conversation and all its messages, on
    every branch, in the order written (a parent before its children)."""

    conversation: Conversation
    messages: list[Message]
    # The attachments' bytes by SHA-256 (absent: not kept any more when exported).
    files: dict[str, bytes] = field(default_factory=dict, repr=False)

    def path(self) -> list[Message]:
        """The branch the conversation shows: from a root to its head, oldest first."""
        # No head named (a document made by hand): the message written last ends it.
        head = self.conversation.head_message_id or (
            self.messages[-1].id if self.messages else None
        )
        if head is None:
            return []
        by_id = {message.id: message for message in self.messages}
        tree = Tree((message.id, message.parent_id) for message in self.messages)
        return [by_id[message_id] for message_id in tree.path_to(head)]


# -- out -------------------------------------------------------------------------------------


def find(store: Store, target: str) -> Exported | None:
    """The conversation with id ``target``, or the one holding response id ``target``."""
    conversation = store.get_conversation(target) or store.find_conversation_by_response_id(target)
    if conversation is None:
        return None
    messages = store.all_messages(conversation.id)
    files: dict[str, bytes] = {}
    for message in messages:
        for attachment in message.attachments:
            if attachment.sha256 not in files:
                try:
                    files[attachment.sha256] = store.read_attachment(attachment.sha256)
                except OSError:
                    continue  # removed by hand: exported without its bytes (data null)
    return Exported(conversation, messages, files)


def _usage(usage: Usage) -> dict[str, int | None]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def _attachments(exported: Exported) -> list[dict[str, Any]]:
    """Each attached content once, in the order first attached."""
    listed: dict[str, dict[str, Any]] = {}
    for message in exported.messages:
        for attachment in message.attachments:
            if attachment.sha256 in listed:
                continue
            data = exported.files.get(attachment.sha256)
            listed[attachment.sha256] = {
                "sha256": attachment.sha256,
                "media_type": attachment.media_type,
                "size": attachment.size,
                "data": None if data is None else base64_text(data),
            }
    return list(listed.values())


def document(exported: Exported) -> dict[str, Any]:
    """The JSON document (as Python data) for ``exported``."""
    conversation = exported.conversation
    settings = conversation.settings
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_by": f"foundry-tui {__version__}",
        "conversation": {
            "id": conversation.id,
            "title": conversation.title,
            "profile": conversation.profile,
            "created_at": conversation.created_at,
            "updated_at": conversation.updated_at,
            "server_state": conversation.server_state.value,
            "head_message_id": conversation.head_message_id,
            "settings": {
                "model": settings.model,
                "instructions": settings.instructions,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "max_output_tokens": settings.max_output_tokens,
                "reasoning_effort": settings.reasoning_effort,
                "reasoning_summary": settings.reasoning_summary,
                "verbosity": settings.verbosity,
            },
        },
        "attachments": _attachments(exported),
        "messages": [
            {
                "id": message.id,
                "parent_id": message.parent_id,
                "role": message.role.value,
                "status": message.status.value,
                "created_at": message.created_at,
                "model": message.model,
                "response_model": message.response_model,
                "response_id": message.response_id,
                "previous_response_id": message.previous_response_id,
                "usage": _usage(message.usage),
                "first_token_ms": message.first_token_ms,
                "duration_ms": message.duration_ms,
                "error": message.error,
                "text": message.text,
                "reasoning": message.reasoning,
                "attachments": [
                    {"sha256": attachment.sha256, "name": attachment.name}
                    for attachment in message.attachments
                ],
            }
            for message in exported.messages
        ],
    }


# Characters JSON leaves raw that a terminal may act on or show misleadingly (C1 controls
# such as CSI, bidi controls, line separators) or that UTF-8 cannot encode (lone
# surrogates): written as \u escapes, so the document printed to a terminal is inert and
# still decodes to exactly the same text. They can only be inside strings.
_RAW_UNSAFE = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)


def dumps(data: dict[str, Any]) -> str:
    """``data`` as indented JSON text (non-ASCII text kept readable), ending in a newline.

    The attachments' base64 (megabytes, which need no escaping) is spliced in after the
    rest is encoded and made inert: the encoder and the regex over them would hold the
    GIL for a few hundred ms, and the UI's export runs in a thread beside the screen."""
    files = data.get("attachments")
    spliced: list[str] = []
    if isinstance(files, list) and any(isinstance(f, dict) and f.get("data") for f in files):
        nonce = secrets.token_hex(16)
        placeholders = []
        for item in files:
            if isinstance(item, dict) and isinstance(item.get("data"), str):
                spliced.append(item["data"])
                item = {**item, "data": f"{nonce}:{len(spliced) - 1}"}
            placeholders.append(item)
        data = {**data, "attachments": placeholders}
    text = json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False)
    text = _RAW_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text) + "\n"
    if not spliced:
        return text
    pieces = re.split(rf'"{nonce}:(\d+)"', text)
    return "".join(
        f'"{spliced[int(piece)]}"' if index % 2 else piece for index, piece in enumerate(pieces)
    )


# -- in --------------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise TransferError(f"it is not valid JSON ({name} is not a JSON number).")


def parse(data: bytes) -> Exported:
    """The conversation in an export file's bytes; TransferError if it is not one of ours,
    is of a newer version, is malformed or too big. Nothing is touched: the caller saves it
    (``save_imported``)."""
    if len(data) > MAX_IMPORT_BYTES:
        raise TransferError(TOO_BIG)
    try:
        # Ours are UTF-8 (json.loads would take UTF-16 and -32 too); an editor's BOM is let be.
        raw = json.loads(data.decode("utf-8-sig"), parse_constant=_refuse_constant)
    except TransferError:
        raise
    except UnicodeDecodeError:
        raise TransferError("it is not UTF-8 text, so not a foundry-tui export.") from None
    except json.JSONDecodeError as error:
        raise TransferError(
            f"it is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from None
    except ValueError:  # a number of more digits than Python converts (4,300)
        raise TransferError("it is not a foundry-tui export (a number too long).") from None
    except RecursionError:
        raise TransferError("it is not a foundry-tui export (nested too deep).") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise TransferError(
            f'it is not a foundry-tui conversation export (no "format": "{FORMAT}").'
        )
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TransferError('its "version" is not a whole number of 1 or more.')
    if version > VERSION:
        raise TransferError(
            f"it was written by a newer foundry-tui (format version {version}; this one "
            f"reads up to {VERSION}): upgrade foundry-tui to import it."
        )
    return _Reader(version).exported(raw)


class _Reader:
    """Checks each field of a document as it converts it; the first problem is refused,
    naming where it is (``messages[3].status``)."""

    def __init__(self, version: int) -> None:
        self.version = version
        # The document's attachments (version 2): what each message's list names.
        self.attachments: dict[str, Attachment] = {}
        self.files: dict[str, bytes] = {}

    def exported(self, raw: dict[str, Any]) -> Exported:
        top = {"format", "version", "exported_by", "conversation", "messages"}
        self._keys(raw, "", top | {"attachments"} if self.version >= 2 else top)
        self._string(raw, "", "exported_by", limit=MAX_TITLE_CHARS)
        if self.version >= 2:
            self._attachments(raw)
        head = self._object(raw, "", "conversation")
        listed = raw["messages"]
        if not isinstance(listed, list):
            raise self._problem("messages", "is not a list")
        if len(listed) > MAX_MESSAGES:
            raise self._problem("messages", f"holds more than {MAX_MESSAGES:,} messages")
        messages: list[Message] = []
        ids: set[str] = set()
        for index, item in enumerate(listed):
            where = f"messages[{index}]"
            if not isinstance(item, dict):
                raise self._problem(where, "is not an object")
            message = self._message(item, where)
            if message.id in ids:
                raise self._problem(f"{where}.id", "repeats an earlier message's id")
            if message.parent_id is not None and message.parent_id not in ids:
                raise self._problem(f"{where}.parent_id", "names no earlier message")
            ids.add(message.id)
            messages.append(message)
        conversation = self._conversation(head, "conversation")
        if (conversation.head_message_id is None) != (not messages) or (
            conversation.head_message_id is not None and conversation.head_message_id not in ids
        ):
            raise self._problem("conversation.head_message_id", "names none of the messages")
        return Exported(conversation, messages, self.files)

    def _attachments(self, raw: dict[str, Any]) -> None:
        listed = raw["attachments"]
        if not isinstance(listed, list):
            raise self._problem("attachments", "is not a list")
        if len(listed) > MAX_ATTACHMENTS:
            raise self._problem("attachments", f"holds more than {MAX_ATTACHMENTS:,} files")
        for index, item in enumerate(listed):
            where = f"attachments[{index}]"
            if not isinstance(item, dict):
                raise self._problem(where, "is not an object")
            self._keys(item, where, {"sha256", "media_type", "size", "data"})
            sha256 = self._string(item, where, "sha256", limit=64)
            if not _SHA256.fullmatch(sha256):
                raise self._problem(f"{where}.sha256", "is not a SHA-256 in lowercase hex")
            if sha256 in self.attachments:
                raise self._problem(f"{where}.sha256", "repeats an earlier attachment")
            media_type = self._string(item, where, "media_type", limit=MAX_ID_CHARS)
            if media_type not in MEDIA_TYPES:
                allowed = ", ".join(MEDIA_TYPES)
                raise self._problem(f"{where}.media_type", f"is not one of {allowed}")
            size = self._integer(item, where, "size")
            encoded = self._optional(item, where, "data", self._text)
            if encoded is not None:
                try:
                    data = base64.b64decode(encoded, validate=True)
                except (binascii.Error, ValueError):
                    raise self._problem(f"{where}.data", "is not base64") from None
                # The file is untrusted: what it says of the bytes must be what they are.
                if hashlib.sha256(data).hexdigest() != sha256:
                    raise self._problem(f"{where}.data", "does not match its sha256")
                if len(data) != size:
                    raise self._problem(f"{where}.size", "is not the size of its data")
                if sniff_media_type(data[:16]) != media_type:
                    raise self._problem(f"{where}.data", f"is not a {MEDIA_TYPES[media_type]}")
                self.files[sha256] = data
            self.attachments[sha256] = Attachment(sha256, "", media_type, size)

    def _message_attachments(
        self, raw: dict[str, Any], where: str, role: MessageRole
    ) -> tuple[Attachment, ...]:
        listed = raw["attachments"]
        at = f"{where}.attachments"
        if not isinstance(listed, list):
            raise self._problem(at, "is not a list")
        if listed and role is not MessageRole.USER:
            raise self._problem(at, "is not empty, but only a prompt carries files")
        found: list[Attachment] = []
        for index, item in enumerate(listed):
            here = f"{at}[{index}]"
            if not isinstance(item, dict):
                raise self._problem(here, "is not an object")
            self._keys(item, here, {"sha256", "name"})
            known = self.attachments.get(self._string(item, here, "sha256", limit=64))
            if known is None:
                raise self._problem(f"{here}.sha256", "names none of the attachments")
            name = self._string(item, here, "name", limit=MAX_NAME_CHARS)
            found.append(replace(known, name=name))
        return tuple(found)

    def _conversation(self, raw: dict[str, Any], where: str) -> Conversation:
        self._keys(
            raw,
            where,
            {
                "id",
                "title",
                "profile",
                "created_at",
                "updated_at",
                "server_state",
                "head_message_id",
                "settings",
            },
        )
        settings = self._object(raw, where, "settings")
        at = f"{where}.settings"
        known = {"model", "instructions", "temperature", "top_p", "max_output_tokens"}
        if self.version >= 2:
            known |= {"reasoning_effort", "reasoning_summary", "verbosity"}
        self._keys(settings, at, known)
        return Conversation(
            id=self._id(raw, where, "id"),
            title=self._string(raw, where, "title", limit=MAX_TITLE_CHARS),
            profile=self._string(raw, where, "profile", limit=MAX_ID_CHARS),
            settings=GenerationSettings(
                model=self._string(settings, at, "model", limit=MAX_ID_CHARS),
                instructions=self._optional(settings, at, "instructions", self._text),
                temperature=self._optional(settings, at, "temperature", self._number),
                top_p=self._optional(settings, at, "top_p", self._number),
                max_output_tokens=self._optional(settings, at, "max_output_tokens", self._integer),
                reasoning_effort=self._newer(settings, at, "reasoning_effort", self._setting),
                reasoning_summary=self._newer(settings, at, "reasoning_summary", self._setting),
                verbosity=self._newer(settings, at, "verbosity", self._setting),
            ),
            created_at=self._time(raw, where, "created_at"),
            updated_at=self._time(raw, where, "updated_at"),
            head_message_id=self._optional(raw, where, "head_message_id", self._id),
            server_state=self._choice(raw, where, "server_state", ServerState),
        )

    def _message(self, raw: dict[str, Any], where: str) -> Message:
        self._keys(
            raw,
            where,
            {
                "id",
                "parent_id",
                "role",
                "status",
                "created_at",
                "model",
                "response_model",
                "response_id",
                "previous_response_id",
                "usage",
                "error",
                "text",
            }
            | (
                {"first_token_ms", "duration_ms", "reasoning", "attachments"}
                if self.version >= 2
                else set()
            ),
        )
        usage = self._object(raw, where, "usage")
        at = f"{where}.usage"
        counts = {"input_tokens", "output_tokens", "total_tokens"}
        if self.version >= 2:
            counts |= {"cached_input_tokens", "reasoning_tokens"}
        self._keys(usage, at, counts)
        role = self._choice(raw, where, "role", MessageRole)
        return Message(
            id=self._id(raw, where, "id"),
            conversation_id="",
            parent_id=self._optional(raw, where, "parent_id", self._id),
            role=role,
            text=self._text(raw, where, "text"),
            status=self._choice(raw, where, "status", MessageStatus),
            created_at=self._time(raw, where, "created_at"),
            model=self._optional(raw, where, "model", self._id),
            response_model=self._optional(raw, where, "response_model", self._id),
            response_id=self._optional(raw, where, "response_id", self._id),
            previous_response_id=self._optional(raw, where, "previous_response_id", self._id),
            usage=Usage(
                input_tokens=self._optional(usage, at, "input_tokens", self._integer),
                output_tokens=self._optional(usage, at, "output_tokens", self._integer),
                total_tokens=self._optional(usage, at, "total_tokens", self._integer),
                cached_input_tokens=self._newer(usage, at, "cached_input_tokens", self._integer),
                reasoning_tokens=self._newer(usage, at, "reasoning_tokens", self._integer),
            ),
            error=self._optional(raw, where, "error", self._text),
            reasoning=self._text(raw, where, "reasoning") if self.version >= 2 else "",
            attachments=(self._message_attachments(raw, where, role) if self.version >= 2 else ()),
            first_token_ms=self._newer(raw, where, "first_token_ms", self._integer),
            duration_ms=self._newer(raw, where, "duration_ms", self._integer),
        )

    # -- one field each ---------------------------------------------------------------

    @staticmethod
    def _problem(where: str, what: str) -> TransferError:
        return TransferError(f"it is not a sound foundry-tui export: {where} {what}.")

    @staticmethod
    def _at(where: str, key: str) -> str:
        return f"{where}.{key}" if where else key

    def _keys(self, raw: dict[str, Any], where: str, expected: set[str]) -> None:
        missing = sorted(expected - raw.keys())
        if missing:
            raise self._problem(where or "the document", f'has no "{missing[0]}"')
        extra = sorted(str(key) for key in raw.keys() - expected)
        if extra:
            # Named as JSON, so a key made of escape sequences is shown escaped.
            raise self._problem(
                where or "the document", f"has an unknown key {json.dumps(extra[0][:40])}"
            )

    def _object(self, raw: dict[str, Any], where: str, key: str) -> dict[str, Any]:
        value = raw[key]
        if not isinstance(value, dict):
            raise self._problem(self._at(where, key), "is not an object")
        return value

    def _text(self, raw: dict[str, Any], where: str, key: str) -> str:
        value = raw[key]
        if not isinstance(value, str):
            raise self._problem(self._at(where, key), "is not a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self._problem(
                self._at(where, key), "holds a lone surrogate (\\ud800-\\udfff)"
            ) from None
        return value

    def _string(self, raw: dict[str, Any], where: str, key: str, *, limit: int) -> str:
        value = self._text(raw, where, key)
        if len(value) > limit:
            raise self._problem(self._at(where, key), f"is longer than {limit:,} characters")
        return value

    def _id(self, raw: dict[str, Any], where: str, key: str) -> str:
        value = self._string(raw, where, key, limit=MAX_ID_CHARS)
        if not value:
            raise self._problem(self._at(where, key), "is empty")
        return value

    def _time(self, raw: dict[str, Any], where: str, key: str) -> str:
        value = self._string(raw, where, key, limit=MAX_TIME_CHARS)
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise self._problem(self._at(where, key), "is not an ISO 8601 time") from None
        return value

    def _number(self, raw: dict[str, Any], where: str, key: str) -> float:
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._problem(self._at(where, key), "is not a number")
        number = float(value)
        if not math.isfinite(number):
            raise self._problem(self._at(where, key), "is not a finite number")
        return number

    def _integer(self, raw: dict[str, Any], where: str, key: str) -> int:
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._problem(self._at(where, key), "is not a whole number")
        if not 0 <= value <= _MAX_INTEGER:
            raise self._problem(self._at(where, key), "is out of range")
        return value

    def _choice(self, raw: dict[str, Any], where: str, key: str, kind: type[_E]) -> _E:
        value = raw[key]
        try:
            return kind(value)
        except (ValueError, TypeError):
            allowed = ", ".join(member.value for member in kind)
            raise self._problem(self._at(where, key), f"is not one of {allowed}") from None

    def _setting(self, raw: dict[str, Any], where: str, key: str) -> str:
        return self._string(raw, where, key, limit=MAX_ID_CHARS)

    def _newer(
        self,
        raw: dict[str, Any],
        where: str,
        key: str,
        read: Callable[[dict[str, Any], str, str], _T],
    ) -> _T | None:
        """A field version 2 added: None in a version 1 document."""
        return self._optional(raw, where, key, read) if self.version >= 2 else None

    def _optional(
        self,
        raw: dict[str, Any],
        where: str,
        key: str,
        read: Callable[[dict[str, Any], str, str], _T],
    ) -> _T | None:
        return None if raw[key] is None else read(raw, where, key)


def save_imported(store: Store, exported: Exported) -> Conversation:
    """Saves ``exported`` as a new conversation, in one transaction; returns it. Its
    conversation and messages get new local ids; the rest is kept as it was. A reply that
    was still streaming when exported is kept as interrupted: it streams nowhere now.
    The attachments' bytes are kept beside the database first (once per content)."""
    for data in exported.files.values():
        store.keep_attachment_bytes(data)
    messages = [
        replace(message, status=MessageStatus.INTERRUPTED)
        if message.status is MessageStatus.PENDING and message.role is MessageRole.ASSISTANT
        else message
        for message in exported.messages
    ]
    return store.import_conversation(exported.conversation, messages)
