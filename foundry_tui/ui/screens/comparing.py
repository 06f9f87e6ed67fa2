"""Compare, from the chat screen: the dialog, the compare screen, and the chat after it.

"Compare…" (the palette, or F8) asks which deployments (and the local model, when it is
installed and the profile is not itself the local model) answer which prompt (the prompt
box's text), then shows the compare screen. When it closes, the chat shows the
conversation's path again: the chosen reply (else the first answer) as the last turn, the
others its siblings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from foundry_tui.core.compare import Comparison, Contender
from foundry_tui.ui.screens.compare import CompareOutcome, CompareScreen
from foundry_tui.ui.screens.compare_picker import ComparePick, ComparePicker
from foundry_tui.ui.screens.model_choice import settings_for_send
from foundry_tui.ui.widgets.prompt import PromptInput

if TYPE_CHECKING:
    from foundry_tui.core.compare import LocalModel
    from foundry_tui.core.models import GenerationSettings
    from foundry_tui.core.session import ChatSession
    from foundry_tui.ui.screens.chat import ChatScreen

LOCAL_UNAVAILABLE = (
    "The local model is not installed or cannot run here (foundry-tui local install)."
)


class Comparing:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    async def open(self) -> None:
        """Shows the dialog (run in a worker: looking for the local model reads files)."""
        screen = self.screen
        settings = settings_for_send(screen)
        if settings is None:
            return
        local: LocalModel | None = None
        label: str | None = None
        if screen.workspace.local_model is not None:
            local = screen.workspace.local_model()
            label = await local.label()
        prompt = screen.query_one(PromptInput).text
        picker = ComparePicker(screen.workspace.profile.deployments, settings.model, prompt, label)

        def picked(pick: ComparePick | None) -> None:
            if pick is not None:
                screen.run_worker(
                    self.start(pick, settings, local, label), group="open", exclusive=True
                )

        screen.app.push_screen(picker, picked)

    async def start(
        self,
        pick: ComparePick,
        settings: GenerationSettings,
        local: LocalModel | None,
        label: str | None,
    ) -> None:
        screen = self.screen
        if pick.local and (local is None or label is None):
            screen.notify(LOCAL_UNAVAILABLE, severity="error")
            return
        turns = screen.turns or await screen.conversations.start(settings, pick.prompt)
        if turns is None:
            return
        session = turns.session
        backend = screen.workspace.backend
        contenders = [
            Contender(model, replace(settings, model=model), backend) for model in pick.models
        ]
        if local is not None and label is not None and pick.local:
            contenders.append(local.contender(label, session.conversation.settings))
        prompt_box = screen.query_one(PromptInput)
        if prompt_box.text == pick.prompt:
            prompt_box.text = ""

        def compared(outcome: CompareOutcome | None) -> None:
            screen.run_worker(self.after(session, outcome), group="open", exclusive=True)

        screen.app.push_screen(
            CompareScreen(Comparison(session, contenders), pick.prompt), compared
        )

    async def after(self, session: ChatSession, outcome: CompareOutcome | None) -> None:
        """The chat again, on the conversation's path as the comparison left it."""
        screen = self.screen
        await screen.conversations.show(session)
        screen.refresh_history()
        if outcome is None:
            return
        if outcome.chosen is not None:
            screen.notify(outcome.chosen.notice, title="Compare")
        elif outcome.head is not None:
            screen.notify(
                "No reply chosen: the first answer is shown; the others stay as branches.",
                title="Compare",
            )
        # The compared prompt if it could not be saved, then what was typed meanwhile:
        # into the prompt box, in front of anything it holds, so nothing typed is lost.
        wanted = "\n\n".join(text for text in (outcome.unsaved_prompt, outcome.next_prompt) if text)
        prompt_box = screen.query_one(PromptInput)
        if not wanted:
            return
        if prompt_box.text.strip():
            prompt_box.put_back(f"{wanted}\n\n")
        else:
            prompt_box.text = wanted
            prompt_box.move_cursor(prompt_box.document.end)
