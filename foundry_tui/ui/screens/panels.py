"""The chat screen's side panels: which show at the start, and their keys.

A panel's key goes to the panel: it shows it, or moves the cursor into it when it is shown
elsewhere; only a press from inside the panel hides it.
"""

from __future__ import annotations

from textual.screen import Screen

from foundry_tui.ui.widgets.history import ConversationList, HistoryPanel
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.sidebar import SettingsSidebar

# Wide terminals show both panels from the start; narrow ones keep the transcript roomy.
SIDEBAR_MIN_WIDTH = 120
HISTORY_MIN_WIDTH = 150


def lay_out_panels(screen: Screen[None], width: int, sidebar: bool | None) -> bool:
    """Shows the panels that fit ``width`` (the sidebar as the user last left it, if
    known); returns whether the history list is in view."""
    screen.query_one(SettingsSidebar).display = (
        sidebar if sidebar is not None else width >= SIDEBAR_MIN_WIDTH
    )
    history_shown = width >= HISTORY_MIN_WIDTH
    screen.query_one(HistoryPanel).display = history_shown
    return history_shown


def toggle_sidebar(screen: Screen[None]) -> None:
    sidebar = screen.query_one(SettingsSidebar)
    if sidebar.display and sidebar.has_focus_within:
        sidebar.display = False
        screen.query_one(PromptInput).focus()
        return
    sidebar.display = True
    sidebar.query_one("#model-input").focus()


def toggle_history(screen: Screen[None]) -> None:
    history = screen.query_one(HistoryPanel)
    if history.display and history.has_focus_within:
        history.display = False
        screen.query_one(PromptInput).focus()
        return
    history.display = True
    conversations = history.query_one(ConversationList)
    if conversations.highlighted is None and conversations.option_count:
        conversations.highlighted = 0
    conversations.focus()
