"""Deterministic waits and shared builders for the Pilot tests."""

from __future__ import annotations

import asyncio
import itertools
import selectors
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from textual import events
from textual.app import App
from textual.driver import Driver
from textual.drivers.headless_driver import HeadlessDriver
from textual.geometry import Offset, Region
from textual.keys import KEY_NAME_REPLACEMENTS, key_to_character
from textual.pilot import Pilot

from foundry_tui.config import AppConfig, Overrides, load_config
from foundry_tui.core.models import MessageRole, MessageStatus
from foundry_tui.ui.screens.chat import ChatScreen
from foundry_tui.ui.widgets.message_block import MessageBlock
from foundry_tui.ui.widgets.transcript import Transcript

TEST_KEY = "sk-test-0123456789abcdef"
KEY_VARIABLE = "FOUNDRY_TEST_KEY"


async def wait_until(
    pilot: Pilot[object], predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = ""
) -> None:
    """Lets the app run until ``predicate()`` holds; fails with ``what`` after ``timeout``.

    The app paints at its own pace meanwhile (``pilot.pause`` would force a repaint at
    every look)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on a clock of its own, which moves only when the loop has nothing to
    run: it then jumps straight to the next timer. ``asyncio.sleep(0.1)`` takes no real
    time, and ``loop.time()`` says exactly how long a run would have taken with no other
    load on the machine, so timing can be asserted exactly. Run a coroutine on it with
    ``asyncio.Runner(loop_factory=VirtualClockLoop)``. Work that takes time without
    yielding (drawing a frame) is ``advance(seconds)``."""

    #: Real seconds a run may take: code that waits for time to pass in a loop of zero
    #: sleeps would spin here forever, the clock never moving.
    REAL_TIME_LIMIT = 60.0

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, clock: VirtualClockLoop) -> None:
        super().__init__()
        self._clock = clock
        self._give_up = time.monotonic() + clock.REAL_TIME_LIMIT

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if time.monotonic() > self._give_up:
            raise RuntimeError("spinning on a virtual clock: something waits for time to pass")
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only another thread can wake the loop
            return super().select(None)
        self._clock.advance(timeout)  # idle until the next timer: be there at once
        return ready


async def eventually(
    predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = ""
) -> None:
    """``wait_until`` for code with no app: polls ``predicate`` while the loop runs."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def record_notifications(app: App[object]) -> list[str]:
    """Everything ``app`` notifies from now on, as "title: message" (through ``notify``,
    which every notification goes through)."""
    shown: list[str] = []
    notify = app.notify

    def recording(message: str, *, title: str = "", **options: Any) -> None:
        shown.append(f"{title}: {message}" if title else message)
        notify(message, title=title, **options)

    app.notify = recording  # type: ignore[method-assign]
    return shown


class PaintedScreen:
    """What an app paints, frame by frame: run it with ``driver_class=painted.driver`` and
    ``run_test(headless=False)``; it then writes its output as it would to a terminal, read
    here by pyte. ``frames`` is the screen's text after each write; ``now()`` is the screen
    as it is, cheaper: it keeps no frame for the writes it reads (use one or the other)."""

    def __init__(self, width: int, height: int) -> None:
        import pyte

        self._screen = pyte.Screen(width, height)
        self._stream = pyte.Stream(self._screen)
        self._writes: list[str] = []
        self._read = 0
        self._frames: list[list[str]] = []
        terminal = self

        class Painting(HeadlessDriver):
            @property
            def is_headless(self) -> bool:
                return False  # so that the app writes what it paints

            def write(self, data: str) -> None:
                terminal._writes.append(data)

        self.driver: type[Driver] = Painting

    @property
    def frames(self) -> list[list[str]]:
        while self._read < len(self._writes):
            self._stream.feed(self._writes[self._read])
            self._read += 1
            self._frames.append(list(self._screen.display))
        return self._frames

    def now(self) -> list[str]:
        while self._read < len(self._writes):
            self._stream.feed(self._writes[self._read])
            self._read += 1
        return list(self._screen.display)

    @staticmethod
    def text(frame: list[str], region: Region) -> str:
        """The text of ``region`` in ``frame``, a line each, trailing spaces dropped."""
        return "\n".join(
            line[region.x : region.right].rstrip() for line in frame[region.y : region.bottom]
        )


def write_config(
    directory: Path,
    base_url: str,
    *,
    deployments: tuple[str, ...] = ("gpt-4o", "gpt-4o-mini", "o4-mini"),
    instructions: str = "Answer briefly.",
    sidebar: bool = True,
    db: Path | None = None,
) -> AppConfig:
    """A config file with one profile pointed at the local server, loaded like the CLI does."""
    path = directory / "config.toml"
    listed = ", ".join(f'"{name}"' for name in deployments)
    path.write_text(
        f"""default_profile = "local"

[profiles.local]
kind = "compatible"
endpoint = "{base_url}"
auth = "api_key"
api_key_env = "{KEY_VARIABLE}"
deployments = [{listed}]

[profiles.local.defaults]
model = "{deployments[0]}"
instructions = "{instructions}"

[ui]
sidebar = {"true" if sidebar else "false"}
""",
        encoding="utf-8",
    )
    return load_config(path, overrides=Overrides(db=db or directory / "history.db"))


def shown(app: object) -> list[MessageBlock]:
    """The messages the chat screen's transcript shows (none on another screen)."""
    transcripts = app.screen.query(Transcript)  # type: ignore[attr-defined]
    return transcripts.first().blocks if transcripts else []


def visible_text(transcript: Transcript) -> str:
    """The transcript's lines as they are on screen now."""
    height = transcript.scrollable_content_region.height
    return "\n".join(transcript.render_line(y).text for y in range(height))


def offset_of(transcript: Transcript, text: str) -> Offset:
    """Where ``text`` starts in the transcript as it is on screen, relative to the widget
    (as ``Pilot.click`` takes it)."""
    gutter = transcript.content_region.offset - transcript.region.offset
    for y, line in enumerate(visible_text(transcript).split("\n")):
        x = line.find(text)
        if x >= 0:
            return Offset(cell_len(line[:x]), y) + gutter
    raise AssertionError(f"{text!r} is not on screen")


async def click_does_nothing(pilot: Pilot[object], text: str) -> None:
    """Clicks the transcript exactly on ``text`` (model output that would be a link if it
    were taken as markup) and checks that nothing happened: no action, no URL opened, no
    notification, the same screen, the app still running."""
    app = pilot.app
    transcript = app.screen.query_one(Transcript)
    screen = app.screen
    opened: list[str] = []
    app.open_url = lambda url, **options: opened.append(url)  # type: ignore[method-assign]
    notices = record_notifications(app)
    where = offset_of(transcript, text)
    assert await pilot.click(Transcript, offset=where)  # the click landed on the transcript
    await pilot.pause(0)  # what the click would do, done
    assert app.return_code is None  # no quit
    assert app.screen is screen and opened == [] and notices == []
    assert offset_of(transcript, text) == where  # still there, as text


def replies(app: object) -> list[MessageBlock]:
    return [block for block in shown(app) if block.message.role == MessageRole.ASSISTANT]


def chat_ready(app: object) -> bool:
    """The chat screen is on top and mounted (it is the app's first screen, so it is
    current before it is composed)."""
    screen = app.screen  # type: ignore[attr-defined]
    return isinstance(screen, ChatScreen) and screen.is_mounted


async def start_chat(app: object, pilot: object) -> ChatScreen:
    await wait_until(pilot, lambda: chat_ready(app), what="chat screen")  # type: ignore[arg-type]
    return app.screen  # type: ignore[attr-defined,no-any-return]


def last_reply_done(app: object) -> bool:
    views = replies(app)
    return bool(views) and views[-1].message.status != MessageStatus.PENDING


def _key_for(character: str) -> str:
    """The key name Textual gives a typed character ("a", "space", "slash"...)."""
    if character.isalnum():
        return character
    name = unicodedata.name(character).lower().replace("-", "_").replace(" ", "_")
    return KEY_NAME_REPLACEMENTS.get(name, name)


async def press_keys(pilot: Pilot[object], *keys: str) -> None:
    """Presses ``keys`` (characters or key names) as ``Pilot.press`` does, but without its
    wait for an idle CPU after each key (40 ms a key at least): the key events are queued
    in order, as from a fast typist. Wait for what they do with ``wait_until``."""
    for key in keys:
        if len(key) == 1:
            event = events.Key(_key_for(key), key)
        else:
            event = events.Key(key, key_to_character(key))
        pilot.app.post_message(event)
    await pilot.pause(0)


async def send(pilot: object, app: object, text: str) -> MessageBlock:
    before = len(replies(app))
    prompt = app.screen.query_one("#prompt")  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: prompt.has_focus, what="the prompt focused")  # type: ignore[arg-type]
    await press_keys(pilot, *text, "enter")  # type: ignore[arg-type]
    await wait_until(
        pilot,  # type: ignore[arg-type]
        lambda: len(replies(app)) > before and last_reply_done(app),
        what=f"reply to {text!r}",
    )
    return replies(app)[-1]


async def set_field(pilot: object, app: object, selector: str, value: str) -> None:
    from textual.widgets import Input

    field = app.screen.query_one(selector, Input)  # type: ignore[attr-defined]
    field.focus()
    field.value = ""
    await pilot.press(*value) if value else None  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


def control(base_url: str, action: str, **body: object) -> None:
    """Steers a test server running as its own process (``POST /_control/ACTION``)."""
    import json
    import urllib.request

    request = urllib.request.Request(
        base_url.rsplit("/v1", 1)[0] + f"/_control/{action}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()


def terminal_env(directory: Path, base_url: str) -> dict[str, str]:
    """Environment for the real `foundry-tui` in a terminal: its own HOME and a config with
    one keyless profile pointed at ``base_url``."""
    config = directory / "config.toml"
    config.write_text(
        f'[profiles.local]\nkind = "compatible"\nendpoint = "{base_url}"\nauth = "none"\n'
        'deployments = ["gpt-4o"]\n',
        encoding="utf-8",
    )
    return {"HOME": str(directory), "FOUNDRY_TUI_CONFIG": str(config), "TERM": "xterm-256color"}


def fix_reply_clock(monkeypatch: Any) -> None:
    """A fixed clock for the status line's time to first token and speed in pictures:
    each reading 0.1 s after the last (the request leaves, its first output, its end)."""
    ticks = itertools.count()
    monkeypatch.setattr("foundry_tui.core.session._clock", lambda: next(ticks) * 0.1)
