"""Plain data shared by the layers: config, backend, store, session and UI.

Nothing here imports Textual, openai or SQLite, so every layer can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class EndpointKind(StrEnum):
    """Where a profile's endpoint lives; decides the base URL and the Entra ID scope."""

    AZURE_OPENAI = "azure"  # https://RES.openai.azure.com or RES.cognitiveservices/services.ai
    FOUNDRY_PROJECT = "foundry"  # https://ACCOUNT.services.ai.azure.com/api/projects/PROJECT
    OPENAI = "openai"  # https://api.openai.com/v1
    COMPATIBLE = "compatible"  # any OpenAI-compatible base URL, used as given
    LOCAL = "local"  # the bundled local model (xllamacpp), started by the app itself


class AuthMethod(StrEnum):
    API_KEY = "api_key"  # read from the environment variable the profile names
    ENTRA_ID = "entra_id"  # azure.identity.aio.DefaultAzureCredential
    NONE = "none"  # local servers that want no key


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    PENDING = "pending"  # user prompt saved, request not answered yet / reply streaming
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"  # server stopped early (max_output_tokens, content_filter)
    FAILED = "failed"
    CANCELLED = "cancelled"  # the user pressed Escape
    INTERRUPTED = "interrupted"  # found PENDING at start-up: the app died mid-stream


class ServerState(StrEnum):
    """Whether the server still holds the conversation's head response."""

    UNKNOWN = "unknown"  # not checked yet
    LIVE = "live"  # retrieve() found it: the next turn chains with previous_response_id
    EXPIRED = "expired"  # 404: the next turn replays the local transcript as input


@dataclass(frozen=True)
class GenerationSettings:
    """What a turn is sent with. None means "leave it to the server"."""

    model: str
    instructions: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    # Reasoning models: sent as `reasoning: {effort, summary}` and `text: {verbosity}`.
    # Free strings, not enums: a server may know values this version does not.
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    verbosity: str | None = None


# A stream that brings no text for this long, or runs this long in all, is ended (the
# screen would otherwise sit at "streaming…" for as long as a server keeps it open).
DEFAULT_STREAM_IDLE_SECONDS = 60.0
DEFAULT_STREAM_TOTAL_SECONDS = 1800.0


@dataclass(frozen=True)
class Profile:
    """One named endpoint + auth + the deployments a user works with there."""

    name: str
    kind: EndpointKind
    endpoint: str
    auth: AuthMethod = AuthMethod.API_KEY
    api_key_env: str = "AZURE_OPENAI_API_KEY"
    deployments: tuple[str, ...] = ()
    defaults: GenerationSettings | None = None
    # Optional override for the Entra ID scope (sovereign clouds).
    scope: str | None = None
    # The user's opt-in to send a key over plain http:// to another machine (an internal
    # gateway on a private network); loopback needs none.
    allow_plain_http: bool = False
    stream_idle_seconds: float = DEFAULT_STREAM_IDLE_SECONDS
    stream_total_seconds: float = DEFAULT_STREAM_TOTAL_SECONDS


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    # input_tokens_details.cached_tokens / output_tokens_details.reasoning_tokens
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True)
class Attachment:
    """A file sent with a prompt. The bytes are kept once per content (``sha256``) beside
    the database; ``name`` is the file's name as the user gave it: untrusted text."""

    sha256: str
    name: str
    media_type: str  # image/png, image/jpeg, image/webp, image/gif, application/pdf
    size: int  # bytes


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    parent_id: str | None
    role: MessageRole
    text: str
    status: MessageStatus
    created_at: str  # ISO 8601, UTC
    model: str | None = None  # the deployment asked (assistant) / the deployment in use (user)
    response_model: str | None = None  # what the server said wrote it (gpt-4o-2024-08-06)
    response_id: str | None = None
    previous_response_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    # The model's reasoning summary (or open-weight reasoning text), shown as "Thinking".
    reasoning: str = ""
    # Files sent with a prompt (user messages only), in the order given.
    attachments: tuple[Attachment, ...] = ()
    # Time from the request leaving to the first text, and the whole stream, in ms.
    first_token_ms: int | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    profile: str
    settings: GenerationSettings
    created_at: str
    updated_at: str
    head_message_id: str | None = None
    server_state: ServerState = ServerState.UNKNOWN


# ---------------------------------------------------------------------------
# What the backend yields while a reply streams. The session turns these into
# saved rows and the UI into pixels; neither sees an openai type.


@dataclass(frozen=True)
class ResponseStarted:
    response_id: str | None  # None when the server sent none fit to keep
    model: str | None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the model's reasoning summary or reasoning text (not of the answer)."""

    text: str


@dataclass(frozen=True)
class ReasoningStarted:
    """The model began to reason (a reasoning output item was added): it may think for a
    while before any summary or answer text comes."""


# A reasoning output item as the server handed it out (type, id, summary,
# encrypted_content), JSON-ready: sent back before its reply when a conversation is
# replayed, so the model keeps its earlier reasoning.
ReasoningItem = dict[str, object]


@dataclass(frozen=True)
class ResponseFinished:
    """The stream ended with a final status from the server."""

    status: MessageStatus  # COMPLETED, INCOMPLETE or FAILED
    response_id: str | None
    model: str | None
    usage: Usage
    incomplete_reason: str | None = None
    error: str | None = None  # user-facing text for FAILED
    # What the server sent that was not fit to keep (an id that is an object, token
    # counts beyond 64 bits), each a sentence for the user; saved with the reply.
    notes: tuple[str, ...] = ()
    # The response's reasoning items that carry encrypted_content (see ReasoningItem).
    reasoning_items: tuple[ReasoningItem, ...] = ()


@dataclass(frozen=True)
class ContextTrimmed:
    """The backend left the oldest messages out to fit its context budget."""

    dropped_messages: int
    reason: str


@dataclass(frozen=True)
class Retrying:
    """The request failed in a way worth another try (429, 5xx, no connection): the backend
    waits ``wait_seconds``, then sends attempt ``attempt`` of ``attempts``."""

    reason: str  # "rate limited", "server error (503)", ...
    wait_seconds: float
    attempt: int
    attempts: int


@dataclass(frozen=True)
class Waiting:
    """The server has held the request ``seconds`` without answering (a gateway that
    retries by itself can take a minute)."""

    seconds: float


@dataclass(frozen=True)
class Answered:
    """The server answered after a `Retrying` or `Waiting`: the reply streams from here."""


BackendEvent = (
    ResponseStarted
    | TextDelta
    | ReasoningDelta
    | ReasoningStarted
    | ResponseFinished
    | ContextTrimmed
    | Retrying
    | Waiting
    | Answered
)


@dataclass(frozen=True)
class RetrievedResponse:
    """A stored response as `responses.retrieve` returns it, reduced to what we use."""

    id: str
    status: str | None
    model: str | None
    output_text: str
    previous_response_id: str | None
    usage: Usage
    instructions: str | None = None
    created_at: float | None = None


@dataclass(frozen=True)
class FetchedFile:
    """An image or file part of a prompt as the server lists it (`input_items.list`):
    ``url`` is its data URL when the server gave the bytes back, else whatever stood in
    their place (a file id, a web URL), or "". Untrusted, like all the server says."""

    name: str
    url: str


@dataclass(frozen=True)
class InputMessage:
    """One message of a response's input (from `input_items.list`) or of a replay."""

    role: MessageRole
    text: str
    attachments: tuple[Attachment, ...] = ()
    # An assistant message's reasoning items, sent back before it (see ReasoningItem).
    reasoning_items: tuple[ReasoningItem, ...] = ()
    # The attachments' bytes as data URLs ("data:image/png;base64,..."), in the same
    # order: encoded off the UI loop before the request is built (core/attachments.py).
    # Left out of equality and repr: megabytes that say nothing a log needs.
    attachment_data: tuple[EncodedFile, ...] = field(default=(), compare=False, repr=False)
    # A rebuilt prompt's images and files, as the server listed them (kept when saved).
    fetched_files: tuple[FetchedFile, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, eq=False)
class EncodedFile:
    """A file as a base64 data URL ("data:image/png;base64,..."), kept in the pieces it was
    encoded in: joined into one string, 27 MB for a 20 MB image, the copy alone held the
    GIL (and the screen) for ~60 ms. The request body splices the pieces in as they are."""

    prefix: str  # "data:<media type>;base64,"
    chunks: tuple[bytes, ...]  # base64 ASCII, each a whole number of 4-character groups

    def __len__(self) -> int:
        return len(self.prefix) + sum(len(chunk) for chunk in self.chunks)

    def text(self) -> str:
        """The whole URL as one string (small files, tests)."""
        return self.prefix + b"".join(self.chunks).decode("ascii")


class InputMessages(list[InputMessage]):
    """A stored response's input messages, oldest first, as far as the server gave them.

    ``cut`` is set when the server may hold more than was read: it repeated a page or a
    cursor (a gateway that ignores paging), or the list ran past the page limit.
    """

    def __init__(self, messages: list[InputMessage] | None = None, *, cut: bool = False) -> None:
        super().__init__(messages or [])
        self.cut = cut


class StorageError(Exception):
    """The history database failed; ``str()`` says what happened and names the file.

    Raised by the store (store.StoreError derives from it), caught by the UI, which may
    not import the store itself.
    """


class ErrorKind(StrEnum):
    AUTH = "auth"  # 401/403, or no token could be had
    DEPLOYMENT_NOT_FOUND = "deployment_not_found"  # 404 on create: unknown deployment/model
    NOT_FOUND = "not_found"  # 404 elsewhere (retrieve of an expired response)
    PREVIOUS_RESPONSE_NOT_FOUND = "previous_response_not_found"  # 400 on create
    UNSUPPORTED_PARAMETER = "unsupported_parameter"  # e.g. temperature on reasoning models
    CONTENT_FILTER = "content_filter"
    BAD_REQUEST = "bad_request"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"  # >= 500
    CONNECTION = "connection"  # refused, DNS, timeouts, stream cut off
    STREAM = "stream"  # error event / nested error frame mid-stream
    CONFIG = "config"  # missing API key variable and the like


class BackendError(Exception):
    """A failure explained for the user: `title` is one line, `detail` says what to do."""

    def __init__(
        self,
        kind: ErrorKind,
        title: str,
        detail: str = "",
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{title} {detail}".strip())
        self.kind = kind
        self.title = title
        self.detail = detail
        self.status_code = status_code
        self.code = code
        self.param = param
        self.request_id = request_id

    @property
    def user_message(self) -> str:
        return f"{self.title}\n{self.detail}".strip()


#: Pass as ``Store.add_message(parent_id=ROOT)`` to start a new root branch (an edited
#: first prompt); ``parent_id=None`` means "the conversation's current head".
ROOT: Final = ""


@dataclass(frozen=True)
class Siblings:
    """The alternatives at one point of a conversation's tree (prompts edited, replies
    regenerated or compared), oldest first; ``index``: the one on the path shown."""

    ids: tuple[str, ...]
    index: int

    @property
    def count(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class ConversationSummary:
    """One row of the history list."""

    id: str
    title: str
    model: str
    updated_at: str
    server_state: ServerState = ServerState.UNKNOWN


@dataclass(frozen=True)
class LocalOffer:
    """What the setup screen can offer of the bundled local model, found by the app (the
    screens may not look for it themselves). ``label`` is a file name: untrusted text."""

    ready: bool
    cpu_lacks_avx2: bool
    label: str
    megabytes: int | None
    install_command: str
    alias: str
