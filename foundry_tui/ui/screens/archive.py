"""The palette's archive commands: archive or restore the open conversation, and switch the
history list between the conversations and the archived ones.

The history list has its own keys for these (widgets/history.py: a, v); the palette acts
on the conversation that is open, wherever the cursor is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from foundry_tui.ui.screens.panels import toggle_history
from foundry_tui.ui.widgets.history import ConversationList, HistoryPanel

if TYPE_CHECKING:
    from foundry_tui.ui.screens.chat import ChatScreen

ARCHIVE_TITLE = "Archive conversation"
RESTORE_TITLE = "Restore conversation"
SHOW_ARCHIVED_TITLE = "Show archived"
SHOW_LISTED_TITLE = "Show conversations"


def archive_commands(chat: ChatScreen) -> Iterator[SystemCommand]:
    session = chat.session
    if session is not None:
        conversation_id = session.conversation.id
        if chat.conversations.archived:
            yield SystemCommand(
                RESTORE_TITLE,
                "Bring the open conversation back to the history list",
                lambda: chat.set_archived(conversation_id, False),
            )
        else:
            yield SystemCommand(
                ARCHIVE_TITLE,
                "Hide the open conversation from the history list (kept; Show archived lists it)",
                lambda: chat.set_archived(conversation_id, True),
            )
    archived = chat.query_one(HistoryPanel).showing_archived
    yield SystemCommand(
        SHOW_LISTED_TITLE if archived else SHOW_ARCHIVED_TITLE,
        "List the conversations that are not archived"
        if archived
        else "List the archived conversations in the history list (its filter searches them)",
        lambda: show_archived(chat, not archived),
    )


def show_archived(chat: ChatScreen, archived: bool) -> None:
    """The history list, shown and focused, with the archived conversations or the others."""
    panel = chat.query_one(HistoryPanel)
    panel.show_archived(archived)
    if not panel.display:
        toggle_history(chat)
    else:
        chat.query_one(ConversationList).focus()
