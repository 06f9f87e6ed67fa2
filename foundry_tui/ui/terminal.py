"""Keyboard input from the terminal: Textual's Linux driver with a parser that keeps a
bracketed paste whole.

Textual 8.2.8's XTermParser passes a paste through its escape-sequence machine one character
at a time: an ESC inside the paste starts a key sequence, and after 32 characters the
sequence is sent on as keys. Pasted coloured log lines sent half the prompt (the Enter in
them), a paste holding ESC then Ctrl+Q quit the app mid-paste (the rest then went to the
shell), and 5 MB took seconds. Its driver decodes input as strict UTF-8: one invalid byte
ended the input thread, and the app with it.

Here everything between ``ESC [ 200 ~`` and ``ESC [ 201 ~`` is paste text, found by slicing
(not character by character), decoded with replacement characters, and handed on in one
Paste event, sanitized (foundry_tui.core.text): escape sequences and control characters in a
paste are removed, newlines and tabs kept.
"""

from __future__ import annotations

import os
import selectors
from codecs import getincrementaldecoder
from collections.abc import Iterable

from textual import events
from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import BRACKETED_PASTE_END, BRACKETED_PASTE_START, XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

from foundry_tui.core.text import sanitize
from foundry_tui.ui.paste_gate import paste_ended, paste_started

ESC = "\x1b"
# Bytes read from the terminal at a time (Textual reads 4 KB): a big paste arrives in fewer
# pieces; keys and mouse events are far smaller either way.
READ_SIZE = 64 * 1024


def _held_back(text: str, marker: str) -> int:
    """How many characters at the end of ``text`` could be the start of ``marker``."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


class PasteParser(XTermParser):
    """Textual's parser for keys and mouse; a bracketed paste is read here, as text.

    Textual's parser reads an escape sequence with a timeout (``ESC`` alone is the Escape
    key). The characters it is given while it waits are mirrored in ``_sequence``: when they
    are about to complete the paste's start marker, the marker is not handed on, Textual's
    parser is started afresh (nothing is lost: it held only the marker) and the paste is
    read here up to its end marker.
    """

    def __init__(self, debug: bool = False) -> None:
        super().__init__(debug)
        self._sequence = ""
        self._pasting = False
        self._pasted: list[str] = []
        self._held = ""  # the paste's last characters, when they may begin the end marker

    def feed(self, data: str) -> Iterable[Message]:
        if not data:
            if self._pasting:  # the terminal closed mid-paste: keep what came
                yield self._paste_done()
            yield from super().feed(data)
            return
        tokens = self._tokens
        position = 0
        while position < len(data):
            if self._pasting:
                position = self._read_paste(data, position)
                if not self._pasting:
                    yield self._paste_done()
                continue
            character = data[position]
            position += 1
            if self._awaiting.timeout is None:  # not inside an escape sequence
                sequence = character if character == ESC else ""
            else:
                sequence = ESC if character == ESC else self._sequence + character
            if sequence == BRACKETED_PASTE_START:
                self._start_paste()
                continue
            self._sequence = sequence
            # What Textual's Parser.feed does for each character.
            self._timeout_time = None
            self._awaiting = self._gen.send(character)
            if self._awaiting.timeout is not None:
                self._timeout_time = get_time() + self._awaiting.timeout
            while tokens:
                yield tokens.popleft()

    def _start_paste(self) -> None:
        self._gen.close()
        self._gen = self.parse(self._tokens.append)
        self._awaiting = next(self._gen)
        self._timeout_time = None
        self._sequence = ""
        self._pasting = True
        paste_started()

    def _read_paste(self, data: str, position: int) -> int:
        """Takes paste text from ``data[position:]``; returns where reading goes on."""
        held = self._held
        text = held + data[position:] if held else data[position:]
        end = text.find(BRACKETED_PASTE_END)
        if end < 0:
            keep = _held_back(text, BRACKETED_PASTE_END)
            self._pasted.append(text[: len(text) - keep])
            self._held = text[len(text) - keep :]
            return len(data)
        self._pasted.append(text[:end])
        self._held = ""
        self._pasting = False
        paste_ended()
        return position + end + len(BRACKETED_PASTE_END) - len(held)

    def _paste_done(self) -> events.Paste:
        text = "".join(self._pasted) + self._held
        self._pasted.clear()
        self._held = ""
        self._pasting = False
        paste_ended()
        return events.Paste(sanitize(text))


class PasteSafeDriver(LinuxDriver):
    """Textual's Linux driver, reading with PasteParser and decoding invalid UTF-8 as U+FFFD."""

    def run_input_thread(self) -> None:
        """LinuxDriver.run_input_thread with the parser and the decoder swapped."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = PasteParser(self._debug)
        decode = getincrementaldecoder("utf-8")(errors="replace").decode

        def process(ready: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
            for index, (_key, mask) in enumerate(ready):
                if mask & selectors.EVENT_READ:
                    last = index == len(ready) - 1
                    text = decode(os.read(self.fileno, READ_SIZE), final=final and last)
                    if not text:
                        break
                    for event in parser.feed(text):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process(selector.select(0.1))
            selector.unregister(self.fileno)
            process(selector.select(0.1), final=True)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
