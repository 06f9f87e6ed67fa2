"""JSON with huge strings, decoded without holding the UI loop.

A reply of tens of MB can come in one event: one delta, and the final response repeats
the whole text. ``json.loads`` of a 50 MB event holds the GIL for ~165 ms in one call, and
the UI loop with it: keys typed then wait that long. ``loads_yielding`` decodes the same
JSON in steps of a few ms: the string literals over BIG_STRING are cut out of the text
(found with ``str.find``, at C speed), the rest is decoded at once (it is small), and each
big literal is decoded piece by piece, the loop getting a turn between pieces. The result
is what ``json.loads`` gives, errors included (a ValueError).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

# Below this, an event is decoded in one call (a few ms at most).
BIG_EVENT = 1 << 20
# A string literal this long is decoded apart, in PIECE-sized steps.
BIG_STRING = 1 << 16
PIECE = 1 << 19
# Escapes are at most 6 characters (``\\uXXXX``); a surrogate pair is two of them.
_LONGEST_ESCAPE = 6


async def loads_yielding(text: str) -> Any:
    """``json.loads(text)``, letting the event loop run between steps of a huge text."""
    if len(text) < BIG_EVENT:
        return json.loads(text)
    spans = await _big_literals(text)
    if not spans:
        return json.loads(text)
    marker = f"\x00big-{os.urandom(8).hex()}-"
    parts: list[str] = []
    last = 0
    for index, (start, end) in enumerate(spans):
        parts.append(text[last:start])
        parts.append(json.dumps(f"{marker}{index}"))
        last = end + 1
    parts.append(text[last:])
    skeleton = json.loads("".join(parts))
    decoded = [await _decode_literal(text, start, end) for start, end in spans]
    return _put_back(skeleton, marker, decoded)


async def _big_literals(text: str) -> list[tuple[int, int]]:
    """(opening quote, closing quote) of each string literal over BIG_STRING long.
    Outside a literal, JSON has no quote; inside one, only escaped ones."""
    spans: list[tuple[int, int]] = []
    find = text.find
    position = 0
    steps = 0
    while True:
        opening = find('"', position)
        if opening < 0:
            return spans
        closing = opening + 1
        while True:
            closing = find('"', closing)
            if closing < 0:
                raise json.JSONDecodeError("Unterminated string", text, opening)
            backslashes = 0
            while text[closing - 1 - backslashes] == "\\":
                backslashes += 1
            if backslashes % 2 == 0:
                break
            closing += 1
            steps += 1
            if steps % 20_000 == 0:  # a text of escaped quotes: a turn for the loop
                await asyncio.sleep(0)
        if closing - opening > BIG_STRING:
            spans.append((opening, closing))
        position = closing + 1


def _safe_cut(text: str, cut: int, start: int) -> int:
    """The nearest place at or before ``cut`` (after ``start``) that is not inside an
    escape, nor between the two halves of a surrogate pair."""
    window = text.rfind("\\", max(start, cut - _LONGEST_ESCAPE), cut)
    if window >= 0:
        # Before the run of backslashes that holds it: an escape begins at a run's start.
        while window > start and text[window - 1] == "\\":
            window -= 1
        cut = window
    if text.startswith("\\u", cut) and text[cut + 2 : cut + 4].lower() in ("dc", "dd", "de", "df"):
        cut = _safe_cut(text, cut - _LONGEST_ESCAPE, start)  # keep the pair together
    return cut


async def _decode_literal(text: str, opening: int, closing: int) -> str:
    pieces: list[str] = []
    start = opening + 1
    while start < closing:
        end = closing if closing - start <= PIECE else _safe_cut(text, start + PIECE, start)
        if end <= start:  # a run of backslashes as long as a piece: the rest in one step
            end = closing
        pieces.append(json.loads(f'"{text[start:end]}"'))
        start = end
        await asyncio.sleep(0)
    return "".join(pieces)


def _put_back(value: Any, marker: str, decoded: list[str]) -> Any:
    if isinstance(value, str):
        if value.startswith(marker):
            return decoded[int(value[len(marker) :])]
        return value
    if isinstance(value, dict):
        return {
            _put_back(key, marker, decoded): _put_back(item, marker, decoded)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_put_back(item, marker, decoded) for item in value]
    return value
