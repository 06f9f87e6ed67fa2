"""Server-Sent Events from a byte stream, for the lean transport (the SDK has its own).

An event is its ``event`` name and its ``data`` lines joined by newlines, dispatched at a
blank line; comments (``:`` lines, keep-alives) and other fields are read past. Lines end
in LF, CRLF or CR. An event the stream ends inside is dropped, as the SDK drops it.

Linear in the stream's length whatever the chunking: a 50 MB line that arrives 64 KB at a
time is scanned once, not once per chunk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    event: str | None
    data: str


class SSEDecoder:
    """Feed it chunks of bytes; it gives back the events they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # where the search for the next line end resumes
        self._event: str | None = None
        self._data: list[str] = []
        self._has_data = False

    def feed(self, chunk: bytes) -> Iterator[ServerSentEvent]:
        buffer = self._buffer
        buffer += chunk
        start = 0
        while True:
            found = _LINE_END.search(buffer, self._scanned)
            if found is None:
                self._scanned = len(buffer)
                break
            if found.group() == b"\r" and found.end() == len(buffer):
                # A CR last in the buffer may be the first half of a CRLF.
                self._scanned = found.start()
                break
            line = bytes(buffer[start : found.start()])
            start = self._scanned = found.end()
            event = self._line(line)
            if event is not None:
                yield event
        if start:
            del buffer[:start]
            self._scanned -= start

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            if not self._has_data and self._event is None:
                return None
            event = ServerSentEvent(self._event, "\n".join(self._data))
            self._event, self._data, self._has_data = None, [], False
            return event
        line = raw.decode("utf-8", errors="replace")
        name, colon, value = line.partition(":")
        if not name:  # a comment
            return None
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        return None
