"""The Textual application: picks the first screen, owns the store and the backend.

`make_app` is the one factory the CLI and every test use.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Callable, Iterable
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from textual import events, on, work
from textual.app import App, AutopilotCallbackType, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerCancelled, WorkerError, WorkerFailed, WorkerState

from foundry_tui.config import AppConfig, ConfigError, Overrides, load_config
from foundry_tui.core.logs import get_logger, report_bug
from foundry_tui.core.models import EndpointKind, Profile, StorageError
from foundry_tui.core.text import one_line, sanitize
from foundry_tui.ui.frames import input_arrived, pace_frames
from foundry_tui.ui.idle_gc import CHECK_EVERY, IdleCollector
from foundry_tui.ui.messages import BackendProgress, HistoryUnusable, ModelsListed
from foundry_tui.ui.screens.problem import ProblemScreen
from foundry_tui.ui.screens.setup import SetupScreen
from foundry_tui.ui.strips import keep_lines_acyclic

if TYPE_CHECKING:
    from foundry_tui.core.compare import LocalModel
    from foundry_tui.core.workspace import AppBackend, StoreOpening, Workspace
    from foundry_tui.store import Store
    from foundry_tui.ui.screens.chat import ChatScreen

BackendFactory = Callable[[Profile], "AppBackend"]
# Seconds after the chat screen appears before the first reply's imports start.
WARM_UP_DELAY = 0.3
# Python's default is 10: automatic full collections a hundred times less often, a safety
# net; they run when the app is idle instead (see settle_memory and ui.idle_gc).
GEN2_THRESHOLD = 1000
# Signals that end the app the way Ctrl+Q does: the streaming reply is saved and the
# terminal restored. The exit status is then 128 + the signal's number, as a shell
# reports a process killed by it (143 for SIGTERM, 129 for SIGHUP).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
# A notification's text is cut here: a toast shows a few lines, and a server's error page
# can be a megabyte.
NOTIFICATION_LIMIT = 2_000


@runtime_checkable
class PreparedBackend(Protocol):
    """A backend that must start something first (the local model server)."""

    async def prepare(self, progress: Callable[[str], None]) -> None: ...


def settle_memory() -> None:
    """Called once start-up (and the warm-up's imports) are done.

    Start-up leaves a few hundred thousand long-lived objects (Textual, the SDK, pydantic's
    validators). Left in the collector's oldest generation, each full collection walks
    them all: a 100-200 ms pause, at random, under a keystroke or a streaming reply.
    Frozen, later collections walk only what the app made since. (No collection first: it
    would hold the GIL for that long itself.) The CLI turns the collector off for start-up;
    this turns it back on.
    """
    gc.freeze()
    # Streaming makes short-lived objects by the thousand; a full collection still walks
    # every live widget and rendered line, so it is left to run a hundred times less often
    # than Python's default, and runs when the app is idle instead (ui.idle_gc). The young
    # generations are collected as usual.
    gen0, gen1, _gen2 = gc.get_threshold()
    gc.set_threshold(gen0, gen1, GEN2_THRESHOLD)
    gc.enable()


def _open_store(path: Path) -> Store:
    from foundry_tui.store import Store

    return Store.open(path)


def _default_backend(profile: Profile) -> AppBackend:
    from foundry_tui.core.models import EndpointKind

    if profile.kind == EndpointKind.LOCAL:
        from foundry_tui.local.backend import LocalBackend

        return LocalBackend(profile)
    from foundry_tui.backend.client import Backend

    return Backend(profile)


class FoundryApp(App[None]):
    TITLE = "foundry-tui"
    # The first screen is made by get_default_screen, which Textual gives no stylesheet
    # of its own: every screen's sheet is loaded with the app's (each is rooted in its
    # screen's name; a screen pushed later finds its sheet already loaded).
    CSS_PATH = ["app.tcss", "screens/chat.tcss", "screens/setup.tcss", "screens/problem.tcss"]
    BINDINGS = [
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            id="app.quit",
            priority=True,
            tooltip="Quit foundry-tui (everything is already saved)",
        ),
    ]

    def __init__(
        self,
        config: AppConfig,
        *,
        overrides: Overrides | None = None,
        backend_factory: BackendFactory = _default_backend,
        resume: str | None = None,
    ) -> None:
        keep_lines_acyclic()  # every line drawn is freed when dropped (see ui.strips)
        pace_frames()  # what is typed shows at once, even while a reply streams (ui.frames)
        super().__init__()
        self._idle_collector = IdleCollector(busy=self._streaming)
        self.config = config
        self.overrides = overrides or Overrides()
        self.backend_factory = backend_factory
        self.resume = resume
        self.store: Store | None = None
        self.backend: AppBackend | None = None
        self.workspace: Workspace | None = None
        self.sidebar_preference = config.sidebar
        self._chat_modes = 0
        self._local_model: LocalModel | None = None  # Compare's local column, once used
        self._stop_signal: int | None = None
        self.crash_line: str | None = None  # see _handle_exception
        # The theme picked last time (the config's [ui] theme); one it does not know is
        # left alone, and Textual's default applies.
        self._saved_theme = config.theme
        if config.theme and config.theme in self.available_themes:
            self.theme = config.theme

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification is plain, inert text: many carry what a server or model said,
        and neither markup in them (``[@click=app.quit]``) nor an escape sequence may act."""
        super().notify(
            sanitize(message, NOTIFICATION_LIMIT),
            title=one_line(title, 100),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def get_driver_class(self) -> type[Driver]:
        """Textual's Linux driver, with input that keeps a bracketed paste whole (terminal.py)."""
        driver = super().get_driver_class()
        if sys.platform == "win32":
            return driver
        from textual.drivers.linux_driver import LinuxDriver

        if driver is not LinuxDriver:  # TEXTUAL_DRIVER names another: it wins
            return driver
        from foundry_tui.ui.terminal import PasteSafeDriver

        return PasteSafeDriver

    def watch_theme(self, theme: str) -> None:
        if theme != self._saved_theme:
            self.save_theme(theme)

    @work(exclusive=True, group="theme", exit_on_error=False)
    async def save_theme(self, theme: str) -> None:
        """Keeps the theme the user picked for the next start, in the config's [ui]."""
        from foundry_tui.config.writer import write_ui_setting

        try:
            await asyncio.to_thread(write_ui_setting, self.config.path, "theme", theme)
        except (ConfigError, OSError) as error:
            self.notify(
                f"The theme applies until you quit: {error}",
                title="Could not save the theme",
                severity="warning",
            )
            return
        self._saved_theme = theme

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette offers every action of the current screen that applies right now."""
        yield from super().get_system_commands(screen)
        for binding in screen.BINDINGS:
            if not isinstance(binding, Binding) or binding.action.startswith("app."):
                continue
            if screen.check_action(binding.action, ()) is not True:
                continue
            yield SystemCommand(
                binding.description,
                binding.tooltip,
                partial(screen.run_action, binding.action),
            )
        palette_commands = getattr(screen, "palette_commands", None)
        if palette_commands is not None:
            yield from palette_commands()

    async def run_async(
        self,
        *,
        headless: bool = False,
        inline: bool = False,
        inline_no_clear: bool = False,
        mouse: bool = True,
        size: tuple[int, int] | None = None,
        auto_pilot: AutopilotCallbackType | None = None,
    ) -> None:
        """Runs the app with SIGTERM and SIGHUP handled for as long as it runs, from before
        the terminal is set up until after it is restored. (Tests that use ``run_test`` do
        not come here: they leave the test process's signals alone.)"""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for stop in STOP_SIGNALS:
            try:
                loop.add_signal_handler(stop, self._stop_on_signal, int(stop))
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or no Unix signals: the defaults stay
            installed.append(stop)
        try:
            return await super().run_async(
                headless=headless,
                inline=inline,
                inline_no_clear=inline_no_clear,
                mouse=mouse,
                size=size,
                auto_pilot=auto_pilot,
            )
        finally:
            for stop in installed:
                loop.remove_signal_handler(stop)

    def _stop_on_signal(self, signum: int) -> None:
        if self._stop_signal is not None:
            return  # already stopping
        self._stop_signal = signum
        # Run by the app's own message loop, like a key's action, not in the bare
        # signal callback (a signal that comes before the first frame waits for it).
        self.call_later(self._stop_after_reply, signum)

    async def _stop_after_reply(self, signum: int) -> None:
        """Cancels a streaming reply, which saves its text so far (marked cancelled), waits
        until it is saved, then exits like Ctrl+Q, which restores the terminal."""
        turns = [w for w in self.workers if w.group == "turn" and not w.is_finished]
        for worker in turns:
            worker.cancel()
        for worker in turns:
            with suppress(WorkerCancelled, WorkerFailed, WorkerError):
                await worker.wait()
        self.exit(return_code=128 + signum)

    def get_default_screen(self) -> Screen[Any]:
        """The first screen is the chat itself (or the setup when nothing is configured),
        not a blank screen with the chat pushed on top: a screen below the top one keeps
        asking the top one to repaint in full while the app starts."""
        profile = self.config.active_profile()
        if profile is None:
            # Looked up, never imported: importing llama.cpp costs far more than finding it.
            from foundry_tui.local.discovery import local_offer

            return SetupScreen(local_offer(), config_path=str(self.config.path))
        return self._new_chat(profile)

    async def on_mount(self) -> None:
        if self.config.keymap:
            self.set_keymap(self.config.keymap)
        self.set_interval(CHECK_EVERY, self._idle_collector.tick)
        if isinstance(self.screen, SetupScreen):
            self.set_timer(WARM_UP_DELAY, settle_memory)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.InputEvent, events.Paste)):
            self._idle_collector.input_seen()
        if isinstance(event, (events.Key, events.Paste)):
            input_arrived()
        await super().on_event(event)

    def _streaming(self) -> bool:
        """Whether a reply streams on any screen open (a Compare over the chat, too)."""
        return any(getattr(screen, "streaming", False) for screen in self.screen_stack)

    def _new_chat(self, profile: Profile) -> ChatScreen:
        from foundry_tui.core.workspace import StoreOpening, Workspace
        from foundry_tui.ui.screens.chat import ChatScreen

        # The chat screen is drawn first; the history database opens when the screen
        # needs it (a conversation to resume, the history list in view) or with the
        # warm-up, and whatever needs it waits for it in its own worker.
        history = StoreOpening(partial(self._open_history, self.config.db_path))
        self.backend = self.backend_factory(profile)
        self.workspace = Workspace(history, self.backend, profile)
        if profile.kind != EndpointKind.LOCAL:  # a local profile's deployments are the model
            self.workspace.local_model = self._compare_local_model
        return ChatScreen(self.workspace, resume=self.resume)

    def _compare_local_model(self) -> LocalModel:
        """The bundled local model as a Compare column: one for the app's whole run (it
        loads once), stopped when the app ends."""
        if self._local_model is None:
            from foundry_tui.config import local_profile
            from foundry_tui.core.compare import LocalModel
            from foundry_tui.local.discovery import DEFAULT_ALIAS, local_offer

            def find() -> str | None:
                offer = local_offer()
                return offer.label if offer.ready else None

            def make() -> AppBackend:
                from foundry_tui.local.backend import LocalBackend

                return LocalBackend(local_profile())

            self._local_model = LocalModel(find, make, DEFAULT_ALIAS)
        return self._local_model

    def on_chat_screen_ready(self, event: ChatScreen.Ready) -> None:
        chat = event.chat
        # Imports for the first reply run in a thread, a moment after the first frame:
        # started at once, they would compete for the GIL with the first keys typed.
        self.set_timer(WARM_UP_DELAY, partial(self._warm_up, chat.workspace.history))
        if isinstance(self.backend, PreparedBackend):
            self.prepare_backend(self.backend, chat)

    async def _replace_with_chat(self, profile: Profile) -> None:
        """Puts a new chat in place of the app's screens (the setup, or a chat whose
        history could not be opened).

        The first screen is the base of Textual's default mode and cannot be switched out
        (Textual's switch_screen fails on a base screen, textual#2650), so each new chat
        gets a mode of its own; the previous one is removed, except the default mode, which
        Textual keeps: its screen stays suspended, drawing nothing.
        """
        if self.backend is not None:
            await self.backend.aclose()
        chat = self._new_chat(profile)
        self._chat_modes += 1
        mode = f"chat-{self._chat_modes}"
        self.add_mode(mode, lambda: chat)
        previous = self.current_mode
        await self.switch_mode(mode)
        if previous != "_default":
            await self.remove_mode(previous)

    async def _open_history(self, path: Path) -> Store:
        store = await asyncio.to_thread(_open_store, path)
        self.store = store
        await asyncio.to_thread(store.mark_interrupted)
        self.sweep_unlinked_files(store)
        return store

    @work(thread=True, group="tidy", exit_on_error=False)
    def sweep_unlinked_files(self, store: Store) -> None:
        """Files copied in for prompts that were never saved go, a day later (a read of
        the attachments folder, off the UI loop)."""
        try:
            swept = store.sweep_unlinked_files()
        except StorageError as error:
            get_logger(__name__).warning("attachments not swept: %s", error)
            return
        if swept:
            get_logger(__name__).info("swept %d attachment files no prompt names", swept)

    @on(HistoryUnusable)
    async def _history_unusable(self, event: HistoryUnusable) -> None:
        await self._storage_problem(event.error, event.profile)

    async def _storage_problem(self, error: StorageError, profile: Profile) -> None:
        from foundry_tui.store import CorruptDatabaseError, Store

        path = self.config.db_path
        if isinstance(error, CorruptDatabaseError):

            async def start_fresh(accepted: bool | None) -> None:
                if not accepted:
                    return
                try:
                    kept = await asyncio.to_thread(Store.set_aside, path)
                except StorageError as failure:
                    await self.push_screen(
                        ProblemScreen(
                            "The damaged history database could not be moved aside",
                            f"{failure}\n\nNothing was changed: the damaged file is still "
                            f"at {path}. Move it yourself, or start foundry-tui with "
                            "--db and the path of another file.",
                        )
                    )
                    return
                self.notify(
                    f"The damaged file was moved, unchanged, to {kept}.",
                    title="Started a fresh history",
                    timeout=30,
                )
                await self._replace_with_chat(profile)

            await self.push_screen(
                ProblemScreen(
                    "The history database is damaged",
                    f"{error}\n\nStarting fresh moves the damaged file aside, unchanged, "
                    "and creates a new, empty history in its place.",
                    offer="Start a fresh history",
                ),
                start_fresh,
            )
            return
        await self.push_screen(ProblemScreen("The history database cannot be used", str(error)))

    def _warm_up(self, history: StoreOpening) -> None:
        history.start()
        self.import_client_library()

    @work(thread=True, exit_on_error=False, group="warm-up")
    def import_client_library(self) -> None:
        """`import openai` costs ~0.5 s, Markdown rendering ~0.1 s: both are imported after
        the first frame, off the UI loop; only then is the endpoint asked for its models."""
        from foundry_tui.ui.paste_gate import imports_yield_to_pastes

        try:
            with imports_yield_to_pastes():
                from foundry_tui.backend.client import warm_up_client_library
                from foundry_tui.store import warm_up_access_layer
                from foundry_tui.ui.widgets.message_block import warm_up_rendering

                warm_up_rendering()
                warm_up_client_library()
                warm_up_access_layer()
                if self.backend is not None:
                    self.backend.warm_up()
        finally:
            settle_memory()

        if not isinstance(self.backend, PreparedBackend):
            self.call_from_thread(self.load_endpoint_models)

    @work(exclusive=True, group="prepare", exit_on_error=False)
    async def prepare_backend(self, backend: PreparedBackend, chat: Screen[None]) -> None:
        """Starts a backend that needs time (the local model) without blocking the UI."""
        from foundry_tui.core.models import BackendError

        def progress(text: str) -> None:
            chat.post_message(BackendProgress(text))

        try:
            await backend.prepare(progress)
        except BackendError as error:
            progress(error.title)
            self.notify(
                error.detail or error.title, title=error.title, severity="error", timeout=30
            )
            return
        progress("")
        self.load_endpoint_models()

    @work(exclusive=True, group="models", exit_on_error=False)
    async def load_endpoint_models(self) -> None:
        from foundry_tui.core.models import BackendError
        from foundry_tui.ui.screens.chat import ChatScreen

        if self.workspace is None:
            return
        try:
            models = await self.workspace.endpoint_models()
        except BackendError:
            return  # listing is a convenience; typed names still work
        # Keys typed meanwhile go first: reading a long listing (100,000 ids) and listing it
        # in the sidebar each take a tenth of a second or so.
        await asyncio.sleep(0)
        listed = ModelsListed(self.workspace.profile.deployments, tuple(models))
        for screen in self.screen_stack:
            if isinstance(screen, ChatScreen):
                screen.post_message(listed)

    @on(SetupScreen.ProfileEntered)
    async def _profile_entered(self, event: SetupScreen.ProfileEntered) -> None:
        setup = event.control if isinstance(event.control, SetupScreen) else self.screen
        try:
            from foundry_tui.config.writer import write_profile

            await asyncio.to_thread(write_profile, self.config.path, event.profile)
            self.config = await asyncio.to_thread(
                load_config, self.config.path, overrides=self.overrides
            )
        except (ConfigError, OSError) as error:
            if isinstance(setup, SetupScreen):
                setup.show_error(f"Could not save the config: {error}")
            return
        profile = self.config.active_profile() or event.profile
        await self._replace_with_chat(profile)

    async def on_unmount(self) -> None:
        if self.backend is not None:
            await self.backend.aclose()
        if self._local_model is not None:
            await self._local_model.aclose()
        if self.store is not None:
            self.store.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in one of the app's own workers (warm-up, model list, theme) ends only
        that worker: its traceback goes to the log, one line to the screen."""
        error = event.worker.error
        if event.state == WorkerState.ERROR and error is not None:
            line = report_bug(error, f"the {event.worker.group} worker")
            self.notify(line, title="Something went wrong", severity="error", timeout=12)

    def _handle_exception(self, error: Exception) -> None:
        """Textual's crash path (an exception nothing caught): logged as well, and the
        line naming the log is kept for the command line to print after the app."""
        self.crash_line = report_bug(error, "the app")
        super()._handle_exception(error)


def make_app(
    config: AppConfig,
    *,
    overrides: Overrides | None = None,
    backend_factory: BackendFactory = _default_backend,
    resume: str | None = None,
) -> FoundryApp:
    return FoundryApp(config, overrides=overrides, backend_factory=backend_factory, resume=resume)
