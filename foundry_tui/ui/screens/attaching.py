"""The chat screen's attachments: files chosen in the picker (F3), pasted or typed as paths,
shown as chips under the prompt until the prompt that carries them is sent.

What a user means by a path in the prompt (core.dropped_paths): a paste, or a whole prompt
sent with Enter, made only of paths that all exist, is files to attach: each accepted file
becomes a chip and its path leaves the prompt; a refused one is said in a notice, naming
the file and the limit, and its path stays as text. A text that mentions a path among
other words is text. Every check reads the disk, so it runs in a thread; the UI loop only
splits short texts into words.

The chips stay until the turn that carries them has started (the prompt is saved): a send
that fails before that leaves them in place, nothing lost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from foundry_tui.core.attachments import AttachmentRejected, FileToAttach
from foundry_tui.core.dropped_paths import Dropped, PathWords, check_one, path_words, resolve
from foundry_tui.core.models import GenerationSettings
from foundry_tui.core.session import TurnEvent, TurnStarted
from foundry_tui.core.turns import Turns
from foundry_tui.ui.screens.turn_flow import TurnClosed, TurnMessage, TurnUpdate
from foundry_tui.ui.widgets.attachment_chips import AttachmentChips
from foundry_tui.ui.widgets.prompt import PromptInput

if TYPE_CHECKING:
    from foundry_tui.ui.screens.chat import ChatScreen

REFUSED_TITLE = "Cannot attach"


def send_with_files(
    turns: Turns, text: str, settings: GenerationSettings, files: Sequence[FileToAttach]
) -> AsyncGenerator[TurnEvent, None]:
    """The turn for ``text`` and its files; without files, the plain send, unchanged."""
    if not files:
        return turns.send(text, settings)
    return turns.send(text, settings, attachments=tuple(files))


class Attaching:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        # The files handed to the turn that is starting: their chips go once it has.
        self.in_flight: tuple[FileToAttach, ...] = ()

    @property
    def chips(self) -> AttachmentChips:
        return self.screen.query_one(AttachmentChips)

    @property
    def files(self) -> tuple[FileToAttach, ...]:
        return self.chips.files

    # -- the picker ------------------------------------------------------------------

    def open_picker(self) -> None:
        # Imported when first asked for: the tree widget is no part of start-up.
        from foundry_tui.ui.screens.attach_picker import AttachPicker

        self.screen.app.push_screen(AttachPicker(Path.cwd()), self._picked)

    def _picked(self, path: Path | None) -> None:
        if path is not None:
            self.screen.run_worker(
                self._check_picked(path), group="attach-check", exit_on_error=False
            )

    async def _check_picked(self, path: Path) -> None:
        if any(os.path.abspath(path) == os.path.abspath(chip.path) for chip in self.files):
            return  # attached already
        try:
            file = await asyncio.to_thread(check_one, path, self.files)
        except AttachmentRejected as error:
            self._refused(str(error))
            return
        await self.chips.add([file])

    # -- paths in the prompt ---------------------------------------------------------

    def pasted(self, event: PromptInput.PathsPasted) -> None:
        self.screen.run_worker(self._check_pasted(event), group="attach-check", exit_on_error=False)

    async def _check_pasted(self, event: PromptInput.PathsPasted) -> None:
        dropped = await asyncio.to_thread(resolve, event.words, self.files)
        if dropped is None:
            return  # not files: the paste is text, and stays
        if event.prompt.take_pasted_paths(event, dropped.kept_text):
            await self._take(dropped)

    def typed(self, event: PromptInput.Submitted) -> bool:
        """Whether the prompt sent is only paths: then its files are checked (in a thread)
        and it is sent as text only if they are not all there."""
        words = path_words(event.text)
        if words is None:
            return False
        self.screen.run_worker(
            self._check_typed(event, words), group="attach-check", exit_on_error=False
        )
        return True

    async def _check_typed(self, event: PromptInput.Submitted, words: PathWords) -> None:
        dropped = await asyncio.to_thread(resolve, words, self.files)
        if dropped is None:
            self.screen.submit(event.prompt, event.text)
            return
        if dropped.kept_text:
            event.prompt.put_back(dropped.kept_text)
        await self._take(dropped)

    async def _take(self, dropped: Dropped) -> None:
        for _path, reason in dropped.refused:
            self._refused(reason)
        await self.chips.add(dropped.accepted)

    def _refused(self, reason: str) -> None:
        self.screen.notify(reason, title=REFUSED_TITLE, severity="warning", timeout=10)

    # -- sending ---------------------------------------------------------------------

    def changed(self) -> None:
        self.screen.query_one(PromptInput).has_attachments = bool(self.files)

    async def turn_message(self, message: TurnMessage) -> None:
        """The chips of the files sent go once their turn has started."""
        if not self.in_flight:
            return
        if isinstance(message, TurnUpdate) and isinstance(message.event, TurnStarted):
            sent, self.in_flight = self.in_flight, ()
            await self.chips.drop(sent)
        elif isinstance(message, TurnClosed):
            self.in_flight = ()
