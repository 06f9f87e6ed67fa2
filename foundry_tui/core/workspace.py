"""What the screens may ask for beyond one conversation: the history, opening, resuming.

Screens hold a Workspace and never the store or the backend themselves; every call here is
async and runs SQLite work in a thread, so the UI loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from foundry_tui.core.models import (
    BackendError,
    Conversation,
    ConversationSummary,
    GenerationSettings,
    Profile,
)
from foundry_tui.core.session import (
    ChatSession,
    NextRequest,
    ResponsesBackend,
    first_request,
    import_from_server,
)

if TYPE_CHECKING:
    from foundry_tui.core.compare import LocalModel
    from foundry_tui.core.export_files import ExportFormat
    from foundry_tui.core.request_code import RequestCode
    from foundry_tui.core.transfer import Exported
    from foundry_tui.core.turns import Turns
    from foundry_tui.store import Store


# Rows the history list asks for when it does not say: about two screens. The list asks for
# more, a page at a time, as its cursor or scroll nears the end of what it has.
HISTORY_ROWS = 50


class AppBackend(ResponsesBackend, Protocol):
    """Everything the app uses of a backend (backend.Backend, local.LocalBackend)."""

    async def list_models(self) -> list[str]: ...

    async def aclose(self) -> None: ...

    def warm_up(self) -> None:
        """Prepares what the first request needs; called in a thread after start-up."""

    def request_code(self, settings: GenerationSettings, request: NextRequest) -> RequestCode:
        """The request a turn would send, as code to run elsewhere; never a key."""


@runtime_checkable
class DeletesResponses(Protocol):
    """A backend whose server stores responses that it can delete (backend.Backend)."""

    base_url: str

    async def delete_response(self, response_id: str) -> bool:
        """Deletes the stored response; False when the server no longer had it. Raises
        BackendError when it could not (refused, throttled, unreachable)."""


# Stored responses deleted at the same time (one conversation can hold hundreds).
DELETE_AT_ONCE = 4


class ExportProblem(Exception):
    """An export could not be written; ``str()`` says why, in one sentence."""


def _retrieve_exception(task: asyncio.Task[Store]) -> None:
    if not task.cancelled():
        task.exception()


class StoreOpening:
    """The history database, opened once: when something first awaits it, or at ``start()``.

    Opening imports the store's modules and runs any pending migration, Python that holds
    the GIL in its thread; nothing on the first frame needs it unless a conversation is
    resumed or the history list is in view, so the app starts it a moment after that frame.
    """

    def __init__(self, open_store: Callable[[], Coroutine[Any, Any, Store]]) -> None:
        self._open_store = open_store
        self._task: asyncio.Task[Store] | None = None
        self._started = asyncio.Event()

    def start(self) -> asyncio.Task[Store]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._open_store())
            # A failure is reported by the opener; whoever awaits gets it raised as well.
            self._task.add_done_callback(_retrieve_exception)
            self._started.set()
        return self._task

    def __await__(self) -> Generator[Any, None, Store]:
        return self.start().__await__()

    async def when_opened(self) -> Store:
        """Waits for someone else to open it; does not start the opening."""
        await self._started.wait()
        return await self.start()


@dataclass
class Workspace:
    """``history`` resolves to the store once the database is open; every call that needs
    it opens it or waits for it, or raises its StorageError."""

    history: StoreOpening
    backend: AppBackend
    profile: Profile
    # The bundled local model as a Compare column (core/compare.py), when the profile is
    # not itself the local model; made when Compare first asks.
    local_model: Callable[[], LocalModel] | None = None

    async def _store(self) -> Store:
        return await self.history

    def open_history(self) -> None:
        self.history.start()

    async def history_opened(self) -> None:
        """Returns once the history is open, without opening it."""
        await self.history.when_opened()

    def default_settings(self, model: str | None = None) -> GenerationSettings:
        defaults = self.profile.defaults or GenerationSettings(model="")
        chosen = model or defaults.model or next(iter(self.profile.deployments), "")
        return GenerationSettings(
            model=chosen,
            instructions=defaults.instructions,
            temperature=defaults.temperature,
            top_p=defaults.top_p,
            max_output_tokens=defaults.max_output_tokens,
            reasoning_effort=defaults.reasoning_effort,
            reasoning_summary=defaults.reasoning_summary,
            verbosity=defaults.verbosity,
        )

    async def conversations(
        self, search: str | None = None, *, limit: int = HISTORY_ROWS, archived: bool = False
    ) -> list[ConversationSummary]:
        """The newest ``limit`` conversations, or those matching ``search`` (full text);
        the archived ones with ``archived``."""
        store = await self._store()
        return await asyncio.to_thread(
            store.list_conversations,
            limit=max(1, limit),
            search=search.strip() if search else None,
            archived=archived,
        )

    async def new_session(self, settings: GenerationSettings) -> ChatSession:
        return await ChatSession.start_new(
            await self._store(), self.backend, profile=self.profile.name, settings=settings
        )

    async def open_session(self, conversation_id: str) -> ChatSession:
        return await ChatSession.open(await self._store(), self.backend, conversation_id)

    async def resume(self, target: str) -> ChatSession:
        """Opens a saved conversation by its id, or by any response id in it, or rebuilds
        one from the server when only the server knows that response id."""
        store = await self._store()
        found = await asyncio.to_thread(store.get_conversation, target)
        if found is None:
            found = await asyncio.to_thread(store.find_conversation_by_response_id, target)
        notes: list[str] = []
        if found is None:
            found = await import_from_server(
                store, self.backend, target, profile=self.profile.name, notes=notes
            )
        session = ChatSession(store, self.backend, found)
        session.notes = notes
        return session

    async def recent_prompts(self, exclude_conversation: str | None, limit: int) -> list[str]:
        """Prompts of other conversations, newest first (Up on an empty prompt)."""
        store = await self._store()
        return await asyncio.to_thread(
            store.recent_prompts, exclude_conversation=exclude_conversation, limit=limit
        )

    async def delete(self, conversation_id: str) -> None:
        await asyncio.to_thread((await self._store()).delete_conversation, conversation_id)

    async def rename(self, conversation_id: str, title: str) -> None:
        await asyncio.to_thread((await self._store()).rename_conversation, conversation_id, title)

    async def set_archived(self, conversation_id: str, archived: bool) -> None:
        store = await self._store()
        change = store.archive_conversation if archived else store.restore_conversation
        await asyncio.to_thread(change, conversation_id)

    async def is_archived(self, conversation_id: str) -> bool:
        return await asyncio.to_thread((await self._store()).is_archived, conversation_id)

    async def saved_conversation(self, conversation_id: str) -> Conversation | None:
        return await asyncio.to_thread((await self._store()).get_conversation, conversation_id)

    @property
    def server_host(self) -> str:
        """The host (and port) requests go to, to name it to the user."""
        from urllib.parse import urlsplit

        base_url = self.backend.base_url if isinstance(self.backend, DeletesResponses) else ""
        try:
            host = urlsplit(base_url).netloc
        except ValueError:
            host = ""
        return host or "the server"

    @property
    def keeps_responses(self) -> bool:
        """Whether the server stores responses this app can delete (not the local model)."""
        return not self.backend.stateless and isinstance(self.backend, DeletesResponses)

    async def stored_responses(self, conversation_id: str) -> list[str]:
        """The response ids the server may still hold for the conversation (all
        branches); none when this backend keeps nothing."""
        if not self.keeps_responses:
            return []
        return await asyncio.to_thread((await self._store()).response_ids, conversation_id)

    async def delete_on_server(self, response_ids: Sequence[str]) -> list[tuple[str, BackendError]]:
        """Deletes each stored response (DELETE_AT_ONCE at a time); one already gone counts
        as deleted. Returns those that could not be deleted, with why, in their order."""
        backend = self.backend
        if not isinstance(backend, DeletesResponses):
            return []
        gate = asyncio.Semaphore(DELETE_AT_ONCE)

        async def delete(response_id: str) -> BackendError | None:
            async with gate:
                try:
                    await backend.delete_response(response_id)
                except BackendError as error:
                    return error
                return None

        outcomes = await asyncio.gather(*(delete(rid) for rid in response_ids))
        return [
            (rid, error)
            for rid, error in zip(response_ids, outcomes, strict=True)
            if error is not None
        ]

    async def endpoint_models(self) -> list[str]:
        return await self.backend.list_models()

    async def request_code(
        self, turns: Turns | None, prompt: str, settings: GenerationSettings
    ) -> RequestCode:
        """The request sending ``prompt`` with ``settings`` would make now, in the open
        conversation (``turns``) or a new one, as code ("View code"). Written in a thread:
        a long transcript or an attachment makes it megabytes."""
        if turns is not None:
            request = await turns.next_request(prompt, settings)
        else:
            refused = await asyncio.to_thread(
                (await self._store()).rejected_parameters, self.profile.name, settings.model
            )
            request = first_request(prompt, stateless=self.backend.stateless, omit=refused)
        return await asyncio.to_thread(self.backend.request_code, settings, request)

    # -- exports: the reading, rendering and writing all in threads (their modules are
    # -- imported only when an export is asked for: nothing at start-up)

    async def _exported(self, conversation_id: str) -> Exported:
        from foundry_tui.core.transfer import find

        exported = await asyncio.to_thread(find, await self._store(), conversation_id)
        if exported is None:
            raise LookupError("That conversation is no longer saved.")
        return exported

    async def suggested_export_path(self, title: str, form: ExportFormat) -> Path:
        """A file in the Downloads (else home) folder named after ``title``, not yet there."""
        from foundry_tui.core.export_files import suggested_path

        return await asyncio.to_thread(suggested_path, title, form)

    async def export_conversation(
        self,
        conversation_id: str,
        form: ExportFormat,
        path_text: str,
        *,
        all_branches: bool = False,
    ) -> Path:
        """Writes the conversation to the file ``path_text`` names (replacing it); returns
        where it went. ExportProblem says why it could not, StorageError if reading failed.
        ``all_branches``: Markdown holds every branch (JSON always does)."""
        from foundry_tui.core.export_files import render, write_private
        from foundry_tui.core.paths import PathProblem, expand_user_path, output_problem

        if not path_text.strip():
            raise ExportProblem("Type the path of the file to write.")
        try:
            path = expand_user_path(path_text.strip())
        except PathProblem as refused:
            raise ExportProblem(f"{path_text} cannot be used: {refused}") from None
        problem: str | None = await asyncio.to_thread(output_problem, path)
        if problem is not None:
            raise ExportProblem(f"{path} cannot be written: {problem}")
        exported = await self._exported(conversation_id)
        data = await asyncio.to_thread(
            lambda: render(exported, form, all_branches=all_branches).encode("utf-8")
        )
        try:
            await asyncio.to_thread(write_private, path, data)
        except OSError as error:
            raise ExportProblem(f"{path} cannot be written: {error.strerror or error}") from None
        return path

    async def conversation_markdown(self, conversation_id: str) -> str:
        from foundry_tui.core.export_files import render

        exported = await self._exported(conversation_id)
        return await asyncio.to_thread(render, exported, "md")
