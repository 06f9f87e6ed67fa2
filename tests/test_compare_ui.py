"""Compare in the app: Pilot tests from the palette to the chat after it, against the local
server; the comparison's own rules are in test_compare.py."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, OptionList, SelectionList

from foundry_tui.core.compare import LocalModel
from foundry_tui.core.models import MessageRole, MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.chat import ChatScreen
from foundry_tui.ui.screens.compare import CompareScreen
from foundry_tui.ui.screens.compare_picker import LOCAL_CHOICE, ComparePicker
from foundry_tui.ui.widgets.transcript import Transcript
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    press_keys,
    record_notifications,
    shown,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer, make_text
from tests.test_compare import DEPLOYMENTS, FakeLocal, reply_by_model


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(
        api_key=TEST_KEY, deployments=DEPLOYMENTS, reply=reply_by_model, tokens_per_second=2000
    ) as running:
        yield running


def fix_column_clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each column's reply on a clock of its own, 0.1 s a reading (the request leaves, its
    first output, its end): the figures do not depend on how the streams interleave."""
    clocks: dict[object, Iterator[int]] = {}

    def clock() -> float:
        task = asyncio.current_task()
        return next(clocks.setdefault(task, itertools.count())) * 0.1

    monkeypatch.setattr("foundry_tui.core.session._clock", clock)


async def run_command(pilot: Any, title: str) -> None:
    app = pilot.app
    await press_keys(pilot, "ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
    app.screen.query_one("CommandInput", Input).value = title
    await wait_until(
        pilot,
        lambda: any(
            title in str(option.prompt)
            for results in app.screen.query(OptionList)
            for option in results.options
        ),
        what=f"{title} in the palette",
    )
    await press_keys(pilot, "enter")


async def open_picker(pilot: Any, prompt: str) -> ComparePicker:
    app = pilot.app
    chat = await start_chat(app, pilot)
    chat.query_one("#prompt").text = prompt
    await run_command(pilot, "Compare…")
    await wait_until(
        pilot, lambda: isinstance(app.screen, ComparePicker), timeout=30, what="the picker"
    )
    picker: ComparePicker = app.screen
    await wait_until(pilot, lambda: picker.is_mounted, what="the picker drawn")
    return picker


async def compare_all(pilot: Any, prompt: str, *, local: bool = False) -> CompareScreen:
    picker = await open_picker(pilot, prompt)
    models = picker.query_one(SelectionList)
    assert set(models.selected) == {"gpt-4o", "gpt-4o-mini"}  # the current one and the next
    if local:
        models.select(LOCAL_CHOICE)
    else:
        models.select("o4-mini")
    await press_keys(pilot, "ctrl+s")
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
    compare: CompareScreen = app.screen  # type: ignore[assignment]
    await wait_until(pilot, lambda: bool(compare.columns), what="the columns")
    return compare


def finished(screen: CompareScreen) -> bool:
    return not screen.streaming


def column_text(screen: CompareScreen, index: int) -> str:
    blocks = screen.query_one(f"#compare-reply-{index}", Transcript).blocks
    return blocks[0].source if blocks else ""


def header(screen: CompareScreen, index: int) -> str:
    return str(screen.query_one(f"#compare-header-{index}").render())


async def test_compare_from_the_palette_and_continue_with_one(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        compare = await compare_all(pilot, "Which is best?")
        await wait_until(pilot, lambda: finished(compare), what="all three replies")
        for index, model in enumerate(DEPLOYMENTS):
            blocks = compare.query_one(f"#compare-reply-{index}", Transcript).blocks
            assert [b.message.text for b in blocks] == [f"{model} says: Which is best?"]
            assert blocks[0].message.status == MessageStatus.COMPLETED
            assert model in header(compare, index) and "● completed" in header(compare, index)
            # (Its speed needs a stream longer than a millisecond: see the snapshot.)
            assert "TTFT" in header(compare, index) and " in · " in header(compare, index)
        said = record_notifications(app)
        await press_keys(pilot, "2")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the chat")
        chat: ChatScreen = app.screen  # type: ignore[assignment]
        await wait_until(
            pilot,
            lambda: (
                [b.message.text for b in shown(app)][-2:]
                == ["Which is best?", "gpt-4o-mini says: Which is best?"]
            ),
            what="the chosen reply in the chat",
        )
        await wait_until(
            pilot,
            lambda: any("Continuing with gpt-4o-mini" in line for line in said),
            what="notice",
        )
        session = chat.session
        assert session is not None
        assert session.conversation.settings.model == "gpt-4o-mini"
        assert chat.pending_settings.model == "gpt-4o-mini"  # the sidebar follows
        conversation_id = session.conversation.id
        chosen = shown(app)[-1].message
        # The others are its siblings: branch 2 of 3, in the columns' order.
        branches = (await session.siblings(await session.transcript()))[chosen.id]
        assert branches.count == 3 and branches.index == 1
    with Store.open(tmp_path / "history.db") as store:
        conversation = store.get_conversation(conversation_id)
        assert conversation is not None and conversation.head_message_id == chosen.id
        assert conversation.settings.model == "gpt-4o-mini"
        path = store.transcript(conversation_id)
        assert [m.role for m in path] == [MessageRole.USER, MessageRole.ASSISTANT]
    assert sorted(body["model"] for body in server.created()) == sorted(DEPLOYMENTS)


async def test_escape_cancels_every_column_and_closing_shows_the_first(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.tokens_per_second = 50
    server.reply = lambda body: make_text(3000, seed=3)
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        compare = await compare_all(pilot, "A long story, please")
        await wait_until(
            pilot,
            lambda: all(len(column_text(compare, i)) > 10 for i in range(3)),
            what="text in every column",
        )
        await press_keys(pilot, "escape")
        await wait_until(pilot, lambda: finished(compare), what="every stream stopped")
        comparison = compare.comparison
        for index in range(3):
            reply = comparison.reply(index)
            assert reply is not None and reply.status == MessageStatus.CANCELLED
            assert reply.text  # what came is kept
            assert "● cancelled" in header(compare, index)
        replies = [comparison.reply(i) for i in range(3)]
        assert compare.query_one("#compare-reply-0").has_focus  # a column's Escape is ours
        await press_keys(pilot, "escape")  # now it closes
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the chat")
        first = replies[0]
        assert first is not None
        await wait_until(
            pilot,
            lambda: bool(shown(app)) and shown(app)[-1].message.id == first.id,
            what="the first column's reply in the chat",
        )
        session = app.screen.session
        assert session.conversation.settings.model == "gpt-4o"  # no choice: unchanged
    with Store.open(tmp_path / "history.db") as store:
        for reply in replies:
            assert reply is not None
            saved = store.get_message(reply.id)
            assert saved is not None and saved.status == MessageStatus.CANCELLED
            assert saved.text == reply.text


async def test_a_missing_deployment_fails_in_its_column_only(
    tmp_path: Path, server: ResponsesServer
) -> None:
    """The deployment's name is the config's (or a server's) text: shown as it is, inert."""
    retired = "[b]retired[/b]"
    config = write_config(tmp_path, server.base_url, deployments=("gpt-4o", retired))
    app = make_app(config)
    async with app.run_test(size=(150, 40)) as pilot:
        picker = await open_picker(pilot, "Still there?")
        assert set(picker.query_one(SelectionList).selected) == {"gpt-4o", retired}
        await press_keys(pilot, "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        compare: CompareScreen = app.screen  # type: ignore[assignment]
        await wait_until(pilot, lambda: bool(compare.columns), what="the columns")
        await wait_until(pilot, lambda: finished(compare), what="both over")
        assert column_text(compare, 0) == "gpt-4o says: Still there?"
        failed = compare.query_one("#compare-reply-1", Transcript).blocks[0].message
        assert failed.status == MessageStatus.FAILED
        assert f"Deployment '{retired}' not found" in (failed.error or "")
        assert "● failed" in header(compare, 1)
        assert f"2 · {retired}" in header(compare, 1)  # the brackets shown, not bold
        said = record_notifications(app)
        await press_keys(pilot, "2")  # nothing to continue with there
        await wait_until(pilot, lambda: bool(said), what="the refusal said")
        assert isinstance(app.screen, CompareScreen)
        assert "no answer" in said[-1]


async def test_typing_while_they_stream_waits_in_the_prompt_box(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.tokens_per_second = 200
    server.reply = lambda body: make_text(400, seed=4)
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        compare = await compare_all(pilot, "Go")
        compare.query_one("#compare-next", Input).focus()
        await press_keys(pilot, *"and next 1")  # a digit typed here is text, not a choice
        await wait_until(
            pilot,
            lambda: compare.query_one("#compare-next", Input).value == "and next 1",
            what="the typed text",
        )
        assert isinstance(app.screen, CompareScreen)
        await wait_until(pilot, lambda: finished(compare), what="all three replies")
        await pilot.click("#compare-choose-2")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the chat")
        await wait_until(
            pilot,
            lambda: app.screen.query_one("#prompt").text == "and next 1",
            what="the typed text in the prompt box",
        )
        assert app.screen.session.conversation.settings.model == "o4-mini"


async def test_the_local_model_is_offered_and_answers_in_a_column(
    tmp_path: Path, server: ResponsesServer
) -> None:
    local = FakeLocal("a small local answer")
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        chat = await start_chat(app, pilot)
        assert chat.workspace.local_model is not None  # a cloud profile offers it
        made = LocalModel(lambda: "SmolLM2-135M", lambda: local, "smollm2-135m")
        chat.workspace.local_model = lambda: made
        compare = await compare_all(pilot, "Local as well?", local=True)
        await wait_until(pilot, lambda: finished(compare), what="the replies")
        assert "local model (SmolLM2-135M)" in header(compare, 2)
        assert column_text(compare, 2).strip() == "a small local answer"
        said = record_notifications(app)
        await press_keys(pilot, "3")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the chat")
        await wait_until(
            pilot,
            lambda: (
                bool(shown(app)) and shown(app)[-1].message.text.strip() == "a small local answer"
            ),
            what="the local reply in the chat",
        )
        await wait_until(
            pilot, lambda: any("keeps its model (gpt-4o)" in line for line in said), what="notice"
        )
        assert app.screen.session.conversation.settings.model == "gpt-4o"


async def _three_finished(pilot: Any) -> None:
    from tests.test_snapshots import no_blink

    compare = await compare_all(pilot, "Name a colour")
    await wait_until(pilot, lambda: finished(compare), what="all three replies")
    await pilot.app.workers.wait_for_complete()
    await no_blink(pilot)


def test_compare_screen_with_three_finished_columns(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fix_column_clocks(monkeypatch)
    config = write_config(tmp_path, server.base_url, sidebar=False)
    assert snap_compare(make_app(config), terminal_size=(120, 30), run_before=_three_finished)


async def test_f8_opens_compare_from_the_prompt(tmp_path: Path, server: ResponsesServer) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        chat = await start_chat(app, pilot)
        chat.query_one("#prompt").text = "Both, please"
        assert chat.query_one("#prompt").has_focus
        await press_keys(pilot, "f8")
        await wait_until(
            pilot, lambda: isinstance(app.screen, ComparePicker), timeout=30, what="the picker"
        )
        await wait_until(pilot, lambda: app.screen.is_mounted, what="the picker drawn")
        assert app.screen.query_one("#compare-prompt").text == "Both, please"


async def test_a_deployment_typed_by_name_is_a_contender(
    tmp_path: Path, server: ResponsesServer
) -> None:
    """A profile that lists one deployment can still compare: another one typed by name."""
    app = make_app(write_config(tmp_path, server.base_url, deployments=("gpt-4o",)))
    async with app.run_test(size=(150, 40)) as pilot:
        chat = await start_chat(app, pilot)
        chat.workspace.local_model = None  # whether the model is installed here or not
        picker = await open_picker(pilot, "Two of you?")
        assert picker.query_one(SelectionList).selected == ["gpt-4o"]
        said = picker.query_one("#compare-problem")
        await press_keys(pilot, "ctrl+s")
        await wait_until(pilot, lambda: "Pick 2 or 3" in str(said.render()), what="the refusal")
        picker.query_one("#compare-other", Input).value = "o4-mini"
        await press_keys(pilot, "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        compare: CompareScreen = app.screen  # type: ignore[assignment]
        await wait_until(pilot, lambda: bool(compare.columns), what="the columns")
        await wait_until(pilot, lambda: finished(compare), what="both over")
        assert [column_text(compare, i) for i in range(2)] == [
            "gpt-4o says: Two of you?",
            "o4-mini says: Two of you?",
        ]


async def test_a_columns_first_text_waits_its_turn_and_its_end_shows_at_once() -> None:
    """The columns' repaints take turns (column N's first text is held a moment); the end
    of a reply never waits."""
    from textual.app import App, ComposeResult

    from foundry_tui.core.models import Message
    from foundry_tui.ui.screens.compare import ColumnTranscript

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield ColumnTranscript(id="late", phase=60.0)
            yield ColumnTranscript(id="first")

    reply = Message("r1", "c1", None, MessageRole.ASSISTANT, "", MessageStatus.PENDING, "now")
    app = One()
    async with app.run_test(size=(80, 20)) as pilot:
        late = app.query_one("#late", ColumnTranscript)
        first = app.query_one("#first", ColumnTranscript)
        late_block, first_block = await late.add(reply), await first.add(reply)
        late.write(late_block, "held ")
        first.write(first_block, "shown ")
        await wait_until(pilot, lambda: first_block.source == "shown ", what="the first column")
        late.write(late_block, "back")
        assert late_block.source == ""  # its turn comes later
        await late.finish(late_block)
        assert late_block.source == "held back"


async def test_escape_after_the_replies_closes_even_from_a_column(
    tmp_path: Path, server: ResponsesServer
) -> None:
    """A column is a transcript, whose Escape goes back to the prompt in the chat: here it
    is the compare screen's, which closes once the replies are over."""
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        compare = await compare_all(pilot, "Then close")
        await wait_until(pilot, lambda: finished(compare), what="all three replies")
        assert compare.query_one("#compare-reply-0").has_focus
        await press_keys(pilot, "escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the chat")
        await wait_until(
            pilot,
            lambda: bool(shown(app)) and shown(app)[-1].message.text == "gpt-4o says: Then close",
            what="the first column's reply in the chat",
        )


async def test_a_compared_prompt_that_could_not_be_saved_goes_back_to_the_prompt_box(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk refuses the prompt: no column runs, the failure is said, and on closing
    the prompt is back in the box, ahead of what was typed meanwhile."""
    from foundry_tui.core.models import StorageError

    add_message = Store.add_message

    def refusing(self: Store, **fields: Any) -> Any:
        if fields.get("text") == "Which is best?":
            raise StorageError("Could not write to history.db: the disk is full.")
        return add_message(self, **fields)

    monkeypatch.setattr(Store, "add_message", refusing)
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        said = record_notifications(app)
        compare = await compare_all(pilot, "Which is best?")
        await wait_until(pilot, lambda: finished(compare), what="the comparison over")
        await wait_until(
            pilot, lambda: any("disk is full" in text for text in said), what="the failure said"
        )
        compare.query_one("#compare-next", Input).value = "and then"
        await press_keys(pilot, "escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="the chat")
        await wait_until(
            pilot,
            lambda: app.screen.query_one("#prompt").text == "Which is best?\n\nand then",
            what="the prompt back in the box",
        )
    assert not server.created()  # no column ran without its prompt saved
