"""The palette's "View code": the request the next send would make, as Python (the openai
SDK) and as curl, in a modal to read and copy.

What it shows is written by the core (`Workspace.request_code`, core/request_code.py) from
the sidebar's settings, the prompt box's text and the conversation's context; it never holds
a key. The code quotes untrusted text (the prompt, replies replayed): it is shown in a
read-only TextArea, which draws text and never reads markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static, Tab, Tabs, TextArea

from foundry_tui.ui.screens.export import COPY_LIMIT
from foundry_tui.ui.screens.model_choice import settings_for_send
from foundry_tui.ui.widgets.prompt import PromptInput

if TYPE_CHECKING:
    from foundry_tui.core.request_code import RequestCode
    from foundry_tui.ui.screens.chat import ChatScreen

VIEW_CODE_TITLE: Final = "View code"
# Stands for the prompt while the prompt box is empty.
PROMPT_PLACEHOLDER: Final = "Your prompt"

Language = Literal["python", "curl"]
_NAMES: Final[dict[Language, str]] = {"python": "Python", "curl": "curl"}


class ViewCodeScreen(ModalScreen[None]):
    """The code of one request; ``s`` switches Python and curl, ``c`` copies the one shown."""

    CSS_PATH = "view_code.tcss"
    BINDINGS = [
        Binding(
            "c", "copy", "Copy", id="view_code.copy", tooltip="Copy the code shown to the clipboard"
        ),
        Binding(
            "s",
            "switch",
            "Python/curl",
            id="view_code.switch",
            tooltip="Show the request as Python or as curl",
        ),
        Binding("escape", "close", "Close", id="view_code.close", tooltip="Close the code"),
    ]

    def __init__(self, code: RequestCode, language: Language = "python") -> None:
        super().__init__()
        self.code = code
        self.language: Language = language

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="view-code-dialog"):
            yield Static("The request your next send makes", classes="dialog-question")
            yield Tabs(Tab("Python", id="python"), Tab("curl", id="curl"), active=self.language)
            yield TextArea(
                self.shown,
                read_only=True,
                soft_wrap=False,
                show_line_numbers=False,
                id="view-code-text",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Copy", variant="primary", id="view-code-copy")
                yield Button("Close", id="view-code-close")
            yield Static(
                "c copy · s Python/curl · Escape close · never a key: its variable is read",
                classes="hint",
            )

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    @property
    def shown(self) -> str:
        code = self.code
        return code.python_shown if self.language == "python" else code.curl_shown

    @property
    def copied(self) -> str:
        return self.code.python if self.language == "python" else self.code.curl

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        language: Language = "curl" if event.tab.id == "curl" else "python"
        if language != self.language:
            self.language = language
            self.query_one(TextArea).load_text(self.shown)

    def action_switch(self) -> None:
        self.query_one(Tabs).active = "curl" if self.language == "python" else "python"

    @on(Button.Pressed, "#view-code-copy")
    def action_copy(self) -> None:
        text = self.copied
        name = _NAMES[self.language]
        if len(text) > COPY_LIMIT:
            self.notify(
                f"The {name} request is {len(text):,} characters, more than a terminal passes "
                "to the clipboard.",
                title="Too long to copy",
                severity="warning",
                timeout=15,
            )
            return
        self.app.copy_to_clipboard(text)
        lines = text.count("\n") + (not text.endswith("\n"))
        self.notify(f"Copied the {name} request ({lines:,} lines).")

    @on(Button.Pressed, "#view-code-close")
    def action_close(self) -> None:
        self.dismiss(None)


def view_code_command(chat: ChatScreen) -> SystemCommand:
    return SystemCommand(
        VIEW_CODE_TITLE,
        "The request your next send makes, as Python or curl, to copy (never with a key)",
        lambda: chat.run_worker(
            _view_code(chat), group="view-code", exclusive=True, exit_on_error=False
        ),
    )


async def _view_code(chat: ChatScreen) -> None:
    settings = settings_for_send(chat)  # says what to fix when a send could not go
    if settings is None:
        return
    prompt = chat.query_one(PromptInput).full_text
    code = await chat.workspace.request_code(
        chat.turns, prompt if prompt.strip() else PROMPT_PLACEHOLDER, settings
    )
    await chat.app.push_screen(ViewCodeScreen(code))
