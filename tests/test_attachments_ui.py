"""Attachments in the chat screen: chips under the prompt (from the F3 picker, from paths
pasted or typed), removed by key or click, handed to the turn when the prompt is sent;
chips on user messages in the transcript. A file's name is untrusted text everywhere.

`Turns.send` takes ``attachments=`` once the attachment store is in (helper "attach"):
here it is replaced by a recording wrapper that keeps the files and sends the text."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from textual import events
from textual.widgets import Input, Static

from foundry_tui.core.attachments import FileToAttach
from foundry_tui.core.dropped_paths import path_words
from foundry_tui.core.models import Attachment, MessageRole
from foundry_tui.core.session import TurnEvent
from foundry_tui.core.turns import Turns
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.attach_picker import AttachableTree, AttachPicker
from foundry_tui.ui.screens.chat import ChatScreen
from foundry_tui.ui.widgets.attachment_chips import AttachmentChip, AttachmentChips
from foundry_tui.ui.widgets.footer import KeyFooter
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.transcript import Transcript
from tests.helpers import (
    last_reply_done,
    press_keys,
    record_notifications,
    shown,
    start_chat,
    visible_text,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 1192  # 1.2 kB
PDF = b"%PDF-1.7\n" + b"x" * 2491  # 2.5 kB
# A name a file system allows: markup, an escape sequence (a title change), a bidi override.
HOSTILE_NAME = "[b]bold [@click=app.quit]x \x1b]0;pwned\x07\u202egnp.png"
HOSTILE_SHOWN = "[b]bold [@click=app.quit]x gnp.png"


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with two attachable files, one with a space in its name, a text
    file the API does not take and a sub-folder; the app starts there."""
    folder = tmp_path / "work"
    (folder / "sub").mkdir(parents=True)
    (folder / "photo.png").write_bytes(PNG)
    (folder / "My Report.pdf").write_bytes(PDF)
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "sub" / "inner.png").write_bytes(PNG)
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def sent_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Every Turns.send as (prompt, attachments): the text goes on to the real send."""
    calls: list[tuple[str, tuple[Any, ...]]] = []
    original = Turns.send

    def recording(
        self: Turns, prompt: str, settings: Any = None, **options: Any
    ) -> AsyncGenerator[TurnEvent, None]:
        calls.append((prompt, tuple(options.get("attachments", ()))))
        return original(self, prompt, settings)

    monkeypatch.setattr(Turns, "send", recording)
    yield calls


def chip_words(screen: ChatScreen) -> list[str]:
    """The words of each chip on screen (once composed)."""
    return [
        str(label.render())
        for chip in screen.query(AttachmentChip)
        for label in chip.query(".chip-label").results(Static)
    ]


def chip_names(screen: ChatScreen) -> list[str]:
    return [file.name for file in screen.query_one(AttachmentChips).files]


async def paste(pilot: Any, text: str) -> None:
    prompt = pilot.app.screen.query_one(PromptInput)
    prompt.focus()
    pilot.app.post_message(events.Paste(text))  # as the driver does: to the focused widget
    await pilot.pause()


def app_for(tmp_path: Path, server: ResponsesServer) -> Any:
    return make_app(write_config(tmp_path, server.base_url))


# -- the words --------------------------------------------------------------------------


def test_only_a_text_made_of_paths_is_read_as_paths() -> None:
    assert path_words("see /etc/hosts") is None  # a sentence mentioning a path
    assert path_words("what is in photo.png?") is None
    assert path_words("it's /tmp/a.png") is None  # an unbalanced quote: a sentence
    assert path_words("hello") is None
    assert path_words("/tmp/a.png " * 2000) is None  # too long to be paths
    words = path_words("'/a/My File.pdf' \"/b/c d.png\"\n/e/f\\ g.gif file:///h/i%20j.webp")
    assert words is not None
    assert words.words == ("/a/My File.pdf", "/b/c d.png", "/e/f g.gif", "/h/i j.webp")


# -- the picker -------------------------------------------------------------------------


async def test_f3_opens_the_picker_and_the_file_picked_becomes_a_chip(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, AttachPicker), what="picker")
        tree = app.screen.query_one(AttachableTree)
        await wait_until(pilot, lambda: len(tree.root.children) == 3, what="folder listed")
        # Folders first, then the attachable files; notes.txt is left out.
        assert [str(node.label) for node in tree.root.children] == [
            "sub",
            "My Report.pdf",
            "photo.png",
        ]
        await press_keys(pilot, "down", "down", "down", "enter")  # photo.png
        await wait_until(pilot, lambda: app.screen is screen, what="picker closed")
        await wait_until(
            pilot, lambda: chip_words(screen) == ["photo.png · PNG image, 1.2 kB"], what="chip"
        )
        assert screen.query_one(PromptInput).has_focus


async def test_a_path_typed_in_the_picker_is_attached_and_tab_completes_it(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, AttachPicker), what="picker")
        field = app.screen.query_one("#attach-path")
        field.focus()
        await press_keys(pilot, *"My", "tab")
        await wait_until(pilot, lambda: field.value == "My Report.pdf", what="completed")
        await pilot.press("enter")
        await wait_until(pilot, lambda: chip_names(screen) == ["My Report.pdf"], what="chip")


async def test_the_picker_goes_up_a_folder_and_into_a_typed_one(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, AttachPicker), what="picker")
        picker = app.screen
        tree = picker.query_one(AttachableTree)
        folder = picker.query_one("#attach-folder", Static)
        assert str(folder.render()) == f"In {files}"
        await pilot.press("backspace")
        await wait_until(pilot, lambda: Path(tree.path) == files.parent, what="folder above")
        assert str(folder.render()) == f"In {files.parent}"
        field = picker.query_one("#attach-path", Input)
        field.focus()
        field.value = f"{files}/sub"
        await pilot.press("enter")
        await wait_until(pilot, lambda: Path(tree.path) == files / "sub", what="typed folder")
        await wait_until(pilot, lambda: len(tree.root.children) == 1, what="listed")
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: chip_names(screen) == ["inner.png"], what="chip")


async def test_a_file_refused_in_the_picker_is_a_notice_and_no_chip(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        notices = record_notifications(app)
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, AttachPicker), what="picker")
        app.screen.query_one("#attach-path").focus()
        await press_keys(pilot, *"notes.txt", "enter")
        await wait_until(pilot, lambda: bool(notices), what="the refusal")
        assert notices == [
            "Cannot attach: notes.txt is not a PNG, JPEG, WebP or GIF image or a PDF: "
            "the only files the API takes with a prompt."
        ]
        assert chip_names(screen) == []
        assert not screen.query_one(AttachmentChips).display


async def test_escape_closes_the_picker_with_nothing_attached(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, AttachPicker), what="picker")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="picker closed")
        assert chip_names(screen) == []


async def test_the_attach_key_is_in_the_key_bar_and_the_palette(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(160, 36)) as pilot:
        screen = await start_chat(app, pilot)
        commands = [command.title for command in app.get_system_commands(screen)]
        assert "Attach…" in commands
        assert screen.active_bindings["f3"].binding.id == "chat.attach"
        footer = screen.query_one(KeyFooter)
        await wait_until(pilot, lambda: "Attach…" in footer.render_line(0).text, what="key")


# -- paths pasted or typed into the prompt ----------------------------------------------


@pytest.mark.parametrize(
    "form",
    ["plain", "single-quoted", "double-quoted", "escaped", "url", "tilde"],
)
async def test_a_dropped_file_pasted_as_its_path_becomes_a_chip(
    tmp_path: Path, server: ResponsesServer, files: Path, form: str, monkeypatch: Any
) -> None:
    path = files / "My Report.pdf"
    monkeypatch.setenv("HOME", str(files))
    pasted = {
        "plain": str(files / "photo.png"),
        "single-quoted": f"'{path}'",
        "double-quoted": f'"{path}"',
        "escaped": str(path).replace(" ", "\\ "),
        "url": "file://" + quote(str(path)),
        "tilde": "~/photo.png",
    }[form]
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        prompt = screen.query_one(PromptInput)
        await press_keys(pilot, *"Look: ")
        await paste(pilot, pasted)
        expected = "photo.png" if form in ("plain", "tilde") else "My Report.pdf"
        await wait_until(pilot, lambda: chip_names(screen) == [expected], what="chip")
        assert prompt.text == "Look: "  # the path left the prompt


async def test_several_paths_pasted_at_once_become_chips(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await paste(pilot, f"{files}/photo.png '{files}/My Report.pdf'\n{files}/sub/inner.png")
        await wait_until(pilot, lambda: len(chip_names(screen)) == 3, what="chips")
        assert chip_names(screen) == ["photo.png", "My Report.pdf", "inner.png"]
        assert screen.query_one(PromptInput).text == ""
        # The same file again is not a second chip.
        await paste(pilot, f"{files}/photo.png")
        await wait_until(pilot, lambda: screen.query_one(PromptInput).text == "", what="taken")
        assert len(chip_names(screen)) == 3


async def test_a_sentence_mentioning_a_path_stays_text(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        prompt = screen.query_one(PromptInput)
        sentence = f"what is in {files}/photo.png?"
        await paste(pilot, sentence)
        assert prompt.text == sentence
        # A paste of paths that do not all exist is text too.
        prompt.clear()
        await paste(pilot, f"{files}/photo.png {files}/missing.png")
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert prompt.text == f"{files}/photo.png {files}/missing.png"
        assert chip_names(screen) == []


async def test_a_big_paste_is_never_read_as_paths(
    tmp_path: Path, server: ResponsesServer, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a short paste can be paths: a big one is not even split into words (a paste
    of 5 MB costs what it did)."""
    from foundry_tui.ui.widgets import prompt as prompt_module

    split: list[int] = []
    real_path_words = prompt_module.path_words

    def recording(text: str) -> Any:
        split.append(len(text))
        return real_path_words(text)

    monkeypatch.setattr(prompt_module, "path_words", recording)
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await paste(pilot, f"{files}/photo.png")
        await wait_until(pilot, lambda: chip_names(screen) == ["photo.png"], what="chip")
        assert split == [len(f"{files}/photo.png")]
        big = f"{files}/photo.png\n" * (5_000_000 // (len(str(files)) + 11))
        await paste(pilot, big)
        prompt = screen.query_one(PromptInput)
        assert prompt.full_text == big  # held whole, as text
        assert split == [len(f"{files}/photo.png")]  # and never split into words


async def test_a_refused_file_pasted_is_a_notice_and_its_path_stays(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        notices = record_notifications(app)
        await paste(pilot, f"{files}/photo.png {files}/notes.txt")
        await wait_until(pilot, lambda: bool(notices), what="the refusal")
        assert notices == [
            "Cannot attach: notes.txt is not a PNG, JPEG, WebP or GIF image or a PDF: "
            "the only files the API takes with a prompt."
        ]
        assert chip_names(screen) == ["photo.png"]
        assert screen.query_one(PromptInput).text == f"{files}/notes.txt"


async def test_a_typed_prompt_of_only_a_path_becomes_a_chip_not_a_message(
    tmp_path: Path, server: ResponsesServer, files: Path, sent_files: list[Any]
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await press_keys(pilot, *"./photo.png", "enter")
        await wait_until(pilot, lambda: chip_names(screen) == ["photo.png"], what="chip")
        assert sent_files == []  # nothing was sent
        # A one-word prompt that names no file is sent as it is, with the file.
        await press_keys(pilot, *"missing.png", "enter")
        await wait_until(pilot, lambda: last_reply_done(app), what="the reply")
        assert [(text, [f.name for f in files]) for text, files in sent_files] == [
            ("missing.png", ["photo.png"])
        ]


# -- removing -----------------------------------------------------------------------------


async def test_a_chip_is_removed_by_key_and_by_a_click_on_its_cross(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await paste(pilot, f"{files}/photo.png '{files}/My Report.pdf' {files}/sub/inner.png")
        await wait_until(pilot, lambda: len(chip_names(screen)) == 3, what="chips")
        await press_keys(pilot, "tab")  # from the prompt to the first chip
        chips = list(screen.query(AttachmentChip))
        await wait_until(pilot, lambda: chips[0].has_focus, what="the first chip focused")
        await press_keys(pilot, "right")
        await wait_until(pilot, lambda: chips[1].has_focus, what="the second chip focused")
        await press_keys(pilot, "delete")
        await wait_until(pilot, lambda: len(chip_names(screen)) == 2, what="removed by key")
        assert chip_names(screen) == ["photo.png", "inner.png"]
        await wait_until(pilot, lambda: chips[2].has_focus, what="the next chip focused")
        await pilot.pause()  # the chips laid out again, where a click finds them
        await pilot.click(".chip-remove")  # the first chip's ✕
        await wait_until(pilot, lambda: chip_names(screen) == ["inner.png"], what="clicked")
        await press_keys(pilot, "backspace")
        await wait_until(
            pilot,
            lambda: (
                not screen.query_one(AttachmentChips).display
                and screen.query_one(PromptInput).has_focus
            ),
            what="the last removed: the chips hidden, the prompt focused",
        )
        assert chip_names(screen) == []


# -- sending ------------------------------------------------------------------------------


async def test_the_files_go_with_the_prompt_and_their_chips_then_go(
    tmp_path: Path, server: ResponsesServer, files: Path, sent_files: list[Any]
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await paste(pilot, f"{files}/photo.png '{files}/My Report.pdf'")
        await wait_until(pilot, lambda: len(chip_names(screen)) == 2, what="chips")
        await press_keys(pilot, *"Compare these", "enter")
        await wait_until(pilot, lambda: last_reply_done(app), what="the reply")
        await wait_until(pilot, lambda: chip_names(screen) == [], what="chips cleared")
        assert len(sent_files) == 1
        prompt, attachments = sent_files[0]
        assert prompt == "Compare these"
        assert [(f.name, f.media_type, f.size) for f in attachments] == [
            ("photo.png", "image/png", len(PNG)),
            ("My Report.pdf", "application/pdf", len(PDF)),
        ]
        assert all(isinstance(file, FileToAttach) for file in attachments)
        # The next prompt goes without files, through the send as it always was.
        await press_keys(pilot, *"and now?", "enter")
        await wait_until(pilot, lambda: len(sent_files) == 2 and last_reply_done(app))
        assert sent_files[1] == ("and now?", ())


async def test_files_with_no_text_are_sent_with_an_empty_prompt(
    tmp_path: Path, server: ResponsesServer, files: Path, sent_files: list[Any]
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await pilot.press("enter")  # nothing to send
        assert sent_files == []
        await paste(pilot, f"{files}/photo.png")
        await wait_until(pilot, lambda: chip_names(screen) == ["photo.png"], what="chip")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(sent_files), what="the send")
        assert sent_files[0][0] == ""
        assert [file.name for file in sent_files[0][1]] == ["photo.png"]


async def test_a_send_that_fails_before_leaving_keeps_the_chips(
    tmp_path: Path,
    server: ResponsesServer,
    files: Path,
    sent_files: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from foundry_tui.core.models import StorageError
    from foundry_tui.core.workspace import Workspace

    async def full_disk(*_args: Any, **_kwargs: Any) -> Any:
        raise StorageError("The disk is full.")

    monkeypatch.setattr(Workspace, "new_session", full_disk)
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        notices = record_notifications(app)
        await paste(pilot, f"{files}/photo.png")
        await wait_until(pilot, lambda: chip_names(screen) == ["photo.png"], what="chip")
        await press_keys(pilot, *"describe", "enter")
        await wait_until(pilot, lambda: bool(notices), what="the failure")
        await app.workers.wait_for_complete()
        assert screen.query_one(PromptInput).text == "describe"
        assert chip_names(screen) == ["photo.png"]


# -- the transcript -----------------------------------------------------------------------


async def test_user_messages_show_their_attachments(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_chat(app, pilot)
        await press_keys(pilot, *"hello", "enter")
        await wait_until(pilot, lambda: last_reply_done(app), what="the reply")
        user = next(b.message for b in shown(app) if b.message.role == MessageRole.USER)
        with_files = replace(
            user,
            attachments=(
                Attachment("ab" * 32, HOSTILE_NAME, "image/png", 1_234_567),
                Attachment("cd" * 32, "report.pdf", "application/pdf", 2_000),
                Attachment("ef" * 32, "x" * 500 + ".pdf", "application/pdf", 3_000),
            ),
        )
        transcript = screen.query_one(Transcript)
        await transcript.show([with_files])
        await pilot.pause()
        text = visible_text(transcript)
        assert f"▪ {HOSTILE_SHOWN} · PNG image, 1.2 MB" in text
        assert "▪ report.pdf · PDF document, 2.0 kB" in text
        assert "\x1b" not in text and "\u202e" not in text
        assert transcript.blocks[0].files.splitlines() == [
            f"▪ {HOSTILE_SHOWN} · PNG image, 1.2 MB",
            "▪ report.pdf · PDF document, 2.0 kB",
            "▪ " + "x" * 47 + "… · PDF document, 3.0 kB",  # a 500-character name, cut
        ]


# -- untrusted names ----------------------------------------------------------------------


async def pick_in_tree(pilot: Any, screen: ChatScreen, path: Path) -> None:
    """F3, then the tree's cursor on ``path`` and Enter."""
    app = pilot.app
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(app.screen, AttachPicker), what="picker")
    tree = app.screen.query_one(AttachableTree)
    await wait_until(pilot, lambda: bool(tree.root.children), what="folder listed")
    node = next(node for node in tree.root.children if node.data and node.data.path == path)
    tree.move_cursor(node)
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.screen is screen, what="picker closed")


async def test_a_hostile_file_name_is_inert_on_the_chip_the_notice_and_the_picker(
    tmp_path: Path, server: ResponsesServer, files: Path
) -> None:
    hostile = files / HOSTILE_NAME
    hostile.write_bytes(PNG)
    refused = files / f"{HOSTILE_NAME}.pdf"
    refused.write_bytes(b"not a pdf")
    long_name = files / ("n" * 240 + ".png")
    long_name.write_bytes(PNG)
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        screen = await start_chat(app, pilot)
        notices = record_notifications(app)
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, AttachPicker), what="picker")
        tree = app.screen.query_one(AttachableTree)
        await wait_until(pilot, lambda: len(tree.root.children) == 6, what="folder listed")
        labels = [node.label.plain for node in tree.root.children]
        assert HOSTILE_SHOWN in labels and f"{HOSTILE_SHOWN}.pdf" in labels
        assert not any("\x1b" in label or "\u202e" in label for label in labels)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="picker closed")
        await pick_in_tree(pilot, screen, hostile)
        await wait_until(pilot, lambda: len(chip_names(screen)) == 1, what="chip")
        await pick_in_tree(pilot, screen, refused)
        await wait_until(pilot, lambda: bool(notices), what="the refusal")
        # The toast on screen (the app's notify makes every notification inert).
        await wait_until(pilot, lambda: bool(app.screen.query("Toast")), what="the toast")
        toast = str(app.screen.query("Toast").last().render())
        assert f"{HOSTILE_SHOWN}.pdf is not a PNG" in toast, toast
        assert "\x1b" not in toast and "\u202e" not in toast
        await paste(pilot, str(long_name))
        expected = [f"{HOSTILE_SHOWN} · PNG image, 1.2 kB", "n" * 47 + "… · PNG image, 1.2 kB"]
        await wait_until(pilot, lambda: chip_words(screen) == expected, what="chips")
        # A click on a chip's words does nothing: the markup is text.
        await pilot.click(".chip-label")
        await pilot.pause()
        assert app.return_code is None and app.screen is screen
        assert len(chip_names(screen)) == 2
