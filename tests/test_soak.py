"""Soak: 200 turns across 20 conversations through the app, with faults at random.

Afterwards every prompt is in the database, every completed reply is byte for byte what
the server sent, and the process's memory stayed bounded. Prints the counts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.core.models import MessageRole, MessageStatus, Profile
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.chat import ChatScreen
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    press_keys,
    replies,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import Fault, ResponsesServer

# Run by its own command (`python -m pytest -m soak`), which CI runs after the suite.
pytestmark = pytest.mark.soak

TURNS = 200
CONVERSATIONS = 20
FAULTS = [
    Fault.RATE_LIMIT,
    Fault.SERVER_ERROR,
    Fault.UNAVAILABLE,
    Fault.DROP_STREAM,
    Fault.FAILED,
    Fault.ERROR_EVENT,
    Fault.NESTED_ERROR,
    Fault.INCOMPLETE,
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, tokens_per_second=None) as running:
        yield running


async def test_soak(tmp_path: Path, server: ResponsesServer) -> None:
    rng = random.Random(20261127)
    server.reply = lambda body: (
        "Reply "
        + " ".join(
            rng.choice(["alpha", "`beta`", "**gamma**", "δ", "\n\n- item"])
            for _ in range(rng.randint(5, 60))
        )
    )
    config = write_config(tmp_path, server.base_url)

    def quick(profile: Profile) -> Backend:
        return Backend(profile, max_retries=0, timeout=5)

    app = make_app(config, backend_factory=quick)
    prompts: list[str] = []
    counts: Counter[str] = Counter()
    conversation_ids: list[str] = []
    memory: list[float] = []
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        assert isinstance(screen, ChatScreen)
        for turn in range(TURNS):
            # Two passes over the 20 conversations, 5 turns a visit.
            visit, within = divmod(turn, TURNS // (2 * CONVERSATIONS))
            if within == 0 and visit < CONVERSATIONS:
                if turn:
                    await press_keys(pilot, "ctrl+n")
                    await wait_until(pilot, lambda: screen.session is None, what="new")
            elif within == 0:
                target = conversation_ids[visit - CONVERSATIONS]
                screen.open_conversation(target)
                await wait_until(
                    pilot,
                    lambda t=target: (
                        screen.session is not None
                        and screen.session.conversation.id == t
                        and not screen.streaming
                        and bool(replies(app))
                        and all(block.message.conversation_id == t for block in replies(app))
                    ),
                    what="reopened",
                )
                box = screen.query_one("#prompt")
                await wait_until(pilot, lambda b=box: b.has_focus, what="the prompt focused")
            fault = rng.choice(FAULTS) if rng.random() < 0.3 else None
            if fault is not None:
                server.inject(fault)
            prompt = f"turn {turn} {rng.random():.6f}"
            prompts.append(prompt)
            before = len(replies(app))
            screen.query_one("#prompt").text = prompt
            await press_keys(pilot, "enter")
            await wait_until(
                pilot,
                lambda b=before: (
                    len(replies(app)) > b
                    and replies(app)[-1].message.status != MessageStatus.PENDING
                    and not screen.streaming
                ),
                what=f"turn {turn}",
            )
            status = replies(app)[-1].message.status
            counts[f"{fault.value if fault else 'no fault'} -> {status.value}"] += 1
            if status != MessageStatus.COMPLETED and rng.random() < 0.5:
                counts["retried"] += 1
                failed = replies(app)[-1].message.id
                await press_keys(pilot, "ctrl+r")
                await wait_until(
                    pilot,
                    lambda f=failed: (
                        replies(app)[-1].message.id != f
                        and replies(app)[-1].message.status != MessageStatus.PENDING
                        and not screen.streaming
                    ),
                    what="retry",
                )
            assert screen.session is not None
            if within == 0 and visit < CONVERSATIONS:
                conversation_ids.append(screen.session.conversation.id)
            if turn % 20 == 19:
                memory.append(rss_mb())
    with Store.open(config.db_path) as store:
        saved_prompts: list[str] = []
        completed = 0
        for summary in store.list_conversations():
            for message in store.transcript(summary.id):
                if message.role == MessageRole.USER:
                    saved_prompts.append(message.text)
                elif message.status == MessageStatus.COMPLETED:
                    assert message.response_id is not None
                    sent = server.stored[message.response_id]["output"][0]["content"][0]["text"]
                    assert message.text == sent
                    completed += 1
    assert sorted(saved_prompts) == sorted(prompts)
    # The first pass warms Textual's caches; over the second 100 turns memory must level off.
    growth = memory[-1] - memory[4]
    print(
        f"\nsoak: {TURNS} turns in {len(conversation_ids)} conversations; "
        f"{completed} completed replies identical to the server's; "
        f"{len(saved_prompts)} prompts saved; RSS every 20 turns (MB): "
        + ", ".join(f"{m:.0f}" for m in memory)
    )
    for outcome, number in sorted(counts.items()):
        print(f"  {outcome}: {number}")
    assert len(conversation_ids) == CONVERSATIONS
    assert growth < 40, memory
