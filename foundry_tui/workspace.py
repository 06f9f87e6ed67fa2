"""What the screens may ask for beyond one conversation: the history, opening, resuming.

Screens hold a Workspace and never the store or the backend themselves; every call here is
async and runs SQLite work in a thread, so the UI loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from foundry_tui.models import ConversationSummary, GenerationSettings, Profile
from foundry_tui.session import ChatSession, ResponsesBackend, import_from_server

if TYPE_CHECKING:
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


@dataclass
class Workspace:
    """``history`` resolves to the store once the database is open (it opens while the
    first frame is drawn); every call that needs it waits for it, or raises its
    StorageError."""

    history: Awaitable[Store]
    backend: AppBackend
    profile: Profile

    async def _store(self) -> Store:
        return await self.history

    def default_settings(self, model: str | None = None) -> GenerationSettings:
        defaults = self.profile.defaults or GenerationSettings(model="")
        chosen = model or defaults.model or next(iter(self.profile.deployments), "")
        return GenerationSettings(
            model=chosen,
            instructions=defaults.instructions,
            temperature=defaults.temperature,
            top_p=defaults.top_p,
            max_output_tokens=defaults.max_output_tokens,
        )

    async def conversations(
        self, search: str | None = None, *, limit: int = HISTORY_ROWS
    ) -> list[ConversationSummary]:
        """The newest ``limit`` conversations, or those matching ``search`` (full text)."""
        store = await self._store()
        return await asyncio.to_thread(
            store.list_conversations,
            limit=max(1, limit),
            search=search.strip() if search else None,
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
        if found is None:
            found = await import_from_server(store, self.backend, target, profile=self.profile.name)
        return ChatSession(store, self.backend, found)

    async def delete(self, conversation_id: str) -> None:
        await asyncio.to_thread((await self._store()).delete_conversation, conversation_id)

    async def rename(self, conversation_id: str, title: str) -> None:
        await asyncio.to_thread((await self._store()).rename_conversation, conversation_id, title)

    async def endpoint_models(self) -> list[str]:
        return await self.backend.list_models()
