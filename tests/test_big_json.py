"""Huge JSON events decoded in steps (foundry_tui.backend.big_json): the same result as
``json.loads``, whatever the strings hold, and the event loop runs between the steps."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from foundry_tui.backend import big_json
from foundry_tui.backend.big_json import loads_yielding

# Characters that make cutting a JSON string hard: escapes of every kind, backslash runs,
# quotes, characters outside the BMP (a surrogate pair when escaped) and plain text.
ALPHABET = [
    '"',
    "\\",
    "\\\\",
    "\n",
    "\t",
    "\x01",
    "é",
    "日",
    "😀",
    "\U0010ffff",
    "/",
    "a",
    "b",
    " ",
]


@pytest.fixture(autouse=True)
def small_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sizes small enough that short test strings take every path."""
    monkeypatch.setattr(big_json, "BIG_EVENT", 64)
    monkeypatch.setattr(big_json, "BIG_STRING", 16)
    monkeypatch.setattr(big_json, "PIECE", 7)


def random_text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(length))


@pytest.mark.parametrize("seed", range(40))
def test_the_same_value_as_json_loads(seed: int) -> None:
    rng = random.Random(seed)
    value = {
        "type": "response.output_text.delta",
        "delta": random_text(rng, rng.randint(0, 400)),
        "nested": [random_text(rng, rng.randint(0, 60)) for _ in range(3)],
        random_text(rng, 40): {"n": 1, "ok": True, "none": None, "f": 1.5},
    }
    ascii_only = seed % 2 == 0  # \\uXXXX escapes and surrogate pairs, or raw UTF-8
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert asyncio.run(loads_yielding(text)) == json.loads(text)


def test_a_surrogate_pair_cut_at_every_place_stays_one_character() -> None:
    for filler in range(0, 12):
        value = {"delta": "x" * filler + "😀" * 30 + "\\" * 3}
        text = json.dumps(value)  # "\ud83d\ude00" escapes
        assert asyncio.run(loads_yielding(text)) == value


def test_a_run_of_backslashes_longer_than_a_piece() -> None:
    value = {"delta": "\\" * 200 + '"' + "\\" * 31}
    text = json.dumps(value)
    assert asyncio.run(loads_yielding(text)) == value


@pytest.mark.parametrize(
    "text",
    [
        '{"delta": "' + "a" * 100,  # never closed
        '{"delta": "' + "a" * 100 + '\\x"}',  # an escape JSON does not have
        '{"delta": "' + "a" * 100 + '\x01"}',  # a control character, unescaped
        '{"delta": "' + "a" * 100 + '"',  # the object never closed
    ],
)
def test_what_json_loads_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        asyncio.run(loads_yielding(text))


def test_the_loop_runs_between_the_pieces() -> None:
    async def run() -> int:
        turns = 0
        done = asyncio.Event()

        async def count() -> None:
            nonlocal turns
            while not done.is_set():
                turns += 1
                await asyncio.sleep(0)

        counter = asyncio.create_task(count())
        await loads_yielding(json.dumps({"delta": "word " * 200}))
        done.set()
        await counter
        return turns

    assert asyncio.run(run()) > 100  # 1,000 characters in pieces of 7
