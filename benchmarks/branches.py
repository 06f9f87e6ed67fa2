"""The `branches` group of benchmarks/run.py: a 1,000-turn conversation with a branch at
every 10th turn (issue 14: it opens within 0.3 s, a branch switch redraws within 50 ms).

The database is written through the public ``Store`` API like the `long_conversation`
one (dbgen.py): at turns 9, 19, ... 999 the prompt has a sibling prompt with its own
reply, and the head is left on the original path. The app opens it with ``--resume`` in a
pty; then Ctrl+Up selects the newest reply, Up its prompt (which shows "‹ 1/2 ›"), and
``]`` and ``[`` switch between that prompt and its sibling: each switch is timed from the
key's write to the screen showing the other branch.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dbgen
from textgen import markdown_text, prose

from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus
from foundry_tui.store import Store, writes

#: bump when what the generator writes changes (invalidates the cached db)
BRANCHED_VERSION = 2
BRANCH_EVERY = 10
PLACEHOLDER = "Message (Enter to send"
#: In the newest prompt's sibling and its reply: on screen once that branch is shown.
OTHER_BRANCH_MARK = "OTHERBRANCHMARK"
KEY_CTRL_UP = "\x1b[1;5A"
KEY_UP = "\x1b[A"
SWITCHES = 10  # each way


@dataclass
class BranchedConversation:
    path: Path
    conversation_id: str
    turns: int
    branches: int
    build_seconds: float


def branched_conversation_db(turns: int) -> BranchedConversation:
    final = dbgen._cache_path("branched", BRANCHED_VERSION, turns)
    meta = final.with_suffix(".meta")
    branches = turns // BRANCH_EVERY
    if final.exists() and meta.exists():
        return BranchedConversation(final, meta.read_text().strip(), turns, branches, 0.0)
    start = time.monotonic()
    tmp = dbgen._scratch(final)
    rng = random.Random(turns)
    with Store.open(tmp) as store:
        conversation = store.create_conversation(
            profile="local", settings=GenerationSettings(model="gpt-4o")
        )
        cid = conversation.id
        parent: str = writes.ROOT
        for turn in range(turns):
            prompt = prose(rng.choice((20, 60, 150, 300)), seed=turn * 2)
            if turn == 0:
                prompt = f"The first question\n{dbgen.FIRST_TURN_MARK} {prose(40, seed=0)}"
            reply = markdown_text(rng.randint(220, 380), seed=turn * 2 + 1)
            if turn == turns - 1:
                reply = f"{reply}\n\nThe end {dbgen.LATEST_TURN_MARK}"
            user = _add(store, cid, MessageRole.USER, prompt, parent)
            answer = _add(store, cid, MessageRole.ASSISTANT, reply, user, f"resp_b{turn:06d}")
            if turn % BRANCH_EVERY == BRANCH_EVERY - 1:
                other = _add(store, cid, MessageRole.USER, f"{OTHER_BRANCH_MARK} asked", parent)
                _add(
                    store,
                    cid,
                    MessageRole.ASSISTANT,
                    f"{OTHER_BRANCH_MARK} answered {prose(60, seed=turn)}",
                    other,
                    f"resp_b{turn:06d}x",
                )
                store.set_head(cid, answer)
            parent = answer
        path = store.transcript(cid)
        assert len(path) == 2 * turns and path[-1].id == parent, "the head left the main path"
    dbgen._finish(tmp, final)
    meta.write_text(cid)
    return BranchedConversation(final, cid, turns, branches, time.monotonic() - start)


def _add(
    store: Store,
    cid: str,
    role: MessageRole,
    text: str,
    parent: str,
    response_id: str | None = None,
) -> str:
    return store.add_message(
        conversation_id=cid,
        role=role,
        text=text,
        status=MessageStatus.COMPLETED,
        model="gpt-4o",
        parent_id=parent,
        response_id=response_id,
    ).id


@contextlib.contextmanager
def _running(app: Any) -> Iterator[Any]:
    try:
        yield app
    finally:
        try:
            app.close()
        finally:
            app.kill()


def run(bench: Any) -> list[Any]:
    """The group: figures ``branches.open`` and ``branches.switch``."""
    plan = bench.plan
    conv = branched_conversation_db(plan.conv_turns)
    opened = bench.figure(
        "branches.open",
        f"{conv.turns:,}-turn conversation, a branch every {BRANCH_EVERY}th turn: "
        "app up -> latest turn on screen",
        0.3,
        "s",
        notes=(
            f"`foundry-tui --resume <id>` on a db with one {conv.turns:,}-turn conversation "
            f"with {conv.branches} branch points (a sibling prompt and its reply at every "
            f"{BRANCH_EVERY}th turn; the head on the original path), 120x40: from the first "
            "frame with the prompt to the latest reply's last words on screen."
        ),
    )
    switch = bench.figure(
        "branches.switch",
        f"{conv.turns:,}-turn conversation: branch switch key -> other branch on screen",
        50.0,
        "ms",
        judge="max",
        notes=(
            "the newest prompt selected (Ctrl+Up, Up: it shows ‹ 1/2 ›), then `]` and `[` "
            f"{SWITCHES} times each, the app idle before each: from the key's write to the "
            "screen showing the other branch (‹ 2/2 › with its reply, or ‹ 1/2 › with the "
            "original reply). The switch reads the new path and its siblings from the "
            "database and redraws only what follows the branch point."
        ),
    )
    opened.extra["build_seconds"] = round(conv.build_seconds, 1)
    for _ in range(plan.conv_runs):
        db = bench.workdir / f"branched-{bench.launches + 1}.db"
        db.write_bytes(conv.path.read_bytes())
        app = bench.launch(cols=120, rows=40, db=db, args=("--resume", conv.conversation_id))
        with _running(app):
            prompt = app.watch(lambda s: s.contains(PLACEHOLDER))
            latest = app.watch(lambda s: s.contains(dbgen.LATEST_TURN_MARK))
            t_latest = app.wait(latest, plan.patience, "the latest turn")
            t_prompt = app.wait(prompt, plan.long_timeout, "the prompt placeholder")
            opened.add(t_latest - t_prompt)
            time.sleep(max(0.0, t_latest + 1.0 - time.monotonic()))
            app.wait_idle(0.3, plan.long_timeout)
            app.send(KEY_CTRL_UP)
            app.wait_idle(0.3, plan.long_timeout)
            app.send(KEY_UP)
            app.wait_for(lambda s: s.contains("‹ 1/2 ›"), 10, "the newest prompt's branches")
            app.wait_idle(0.3, plan.long_timeout)
            for _ in range(SWITCHES):
                for key, shown in (("]", "‹ 2/2 ›"), ("[", "‹ 1/2 ›")):

                    def other(s: Any, shown: str = shown, key: str = key) -> bool:
                        mark = s.contains(OTHER_BRANCH_MARK)
                        return s.contains(shown) and (mark if key == "]" else not mark)

                    watcher = app.watch(other)
                    sent = app.send(key)
                    switch.add(1000 * (app.wait(watcher, 10, f"the switch after {key}") - sent))
                    app.wait_idle(0.3, plan.long_timeout)
    return [opened, switch]
