"""`foundry-tui` command line: parse flags, load the config, run the app.

Only argparse and the config module load before the app: `--help` and `--version`
answer at once, and a bad config file is reported on stderr without a traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from foundry_tui import __version__
from foundry_tui.commands import add_debug_option
from foundry_tui.config import ConfigError, Overrides, default_config_path, load_config

# Textual's frame rate limit (TEXTUAL_FPS); see main().
FRAMES_PER_SECOND = 120


def build_parser() -> argparse.ArgumentParser:
    try:
        config_file = str(default_config_path())
    except ConfigError as error:  # reported when the config is loaded
        config_file = str(error.path)
    parser = argparse.ArgumentParser(
        prog="foundry-tui",
        description=(
            "A terminal chat client for the OpenAI Responses API on Azure AI Foundry, "
            "Azure OpenAI, OpenAI and compatible servers."
        ),
        epilog=(
            "Precedence: these flags > environment variables > the config file. "
            f"Config file: {config_file}. "
            "The local model (no account, offline): foundry-tui local install [GGUF_PATH] | "
            "foundry-tui local status (see foundry-tui local --help). "
            f"Subcommands (each has --help): {', '.join(SUBCOMMANDS)}."
        ),
    )
    parser.add_argument("--version", action="version", version=f"foundry-tui {__version__}")
    parser.add_argument("--profile", metavar="NAME", help="use this profile from the config file")
    parser.add_argument(
        "--model", metavar="DEPLOYMENT", help="deployment (model) name for new conversations"
    )
    parser.add_argument(
        "--endpoint", metavar="URL", help="endpoint URL (Azure resource, Foundry project, base URL)"
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="chat with the local model on this computer (no account, offline)",
    )
    parser.add_argument("--db", metavar="PATH", type=Path, help="the history database to use")
    parser.add_argument(
        "--config", metavar="PATH", type=Path, help="the config file to use instead of the default"
    )
    parser.add_argument(
        "--resume",
        metavar="ID",
        help="open a saved conversation, or rebuild one from a response id (resp_...)",
    )
    add_debug_option(parser)
    return parser


def one_line(text: str) -> str:
    """A message on one line, with nothing a terminal would act on: a path or a value
    in it may hold newlines or escape sequences."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


# `foundry-tui NAME ...`: the module whose main(argv) runs it. Imported only when named,
# so the TUI's start-up and each subcommand load nothing of the others.
SUBCOMMANDS: dict[str, str] = {
    "local": "foundry_tui.local.install",
    "export": "foundry_tui.commands.export",
    "import": "foundry_tui.commands.import_",
    "doctor": "foundry_tui.commands.doctor",
    "ask": "foundry_tui.commands.ask",
    "history": "foundry_tui.commands.history",
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except Exception as error:  # a bug: its traceback goes to the log, one line to stderr
        from foundry_tui.core.logs import report_bug

        print(f"foundry-tui: {one_line(report_bug(error, 'foundry-tui'))}", file=sys.stderr)
        return 1


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] and arguments[0] in SUBCOMMANDS:
        from importlib import import_module

        command: Callable[[list[str]], int] = import_module(SUBCOMMANDS[arguments[0]]).main
        return command(arguments[1:])
    args = build_parser().parse_args(arguments)
    overrides = Overrides(
        profile=args.profile,
        model=args.model,
        endpoint=args.endpoint,
        db=args.db,
        local=args.local,
    )
    try:
        config = load_config(args.config, overrides=overrides)
    except ConfigError as error:
        print(f"foundry-tui: {one_line(str(error))}", file=sys.stderr)
        return 2
    # Start-up makes a few hundred thousand objects that live as long as the app (Textual,
    # its styles, the widgets): collecting garbage among them is wasted work, about 5% of
    # the time to the first frame. The app freezes them and collects again after its
    # warm-up (FoundryApp.settle_memory); the finally covers every other way out.
    gc.disable()
    # The pace of frames not drawn for input (ui.frames draws those at once): a scroll,
    # a branch switch or a streaming column waits at most 1/120 s after the last frame,
    # against 1/60 s at Textual's default. Frames are still drawn only when something
    # changed. (Read when Textual is imported; a value the user set wins.)
    os.environ.setdefault("TEXTUAL_FPS", str(FRAMES_PER_SECOND))
    try:
        from foundry_tui.ui.app import make_app

        app = make_app(config, overrides=overrides, resume=args.resume)
        app.run()
    finally:
        gc.enable()
    _let_go_of_a_lost_terminal()
    if app.crash_line is not None:  # after Textual's own report of the crash
        print(f"foundry-tui: {one_line(app.crash_line)}", file=sys.stderr)
    return app.return_code or 0


def _let_go_of_a_lost_terminal() -> None:
    """After a hang-up (SIGHUP: the terminal closed), what is still buffered for the
    terminal (Textual draws on stderr) can never be written, and Python would end with
    status 120 instead of the app's own: what cannot be written goes to /dev/null."""
    for stream in (sys.__stderr__, sys.__stdout__):
        if stream is None:
            continue
        try:
            stream.flush()
        except OSError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, stream.fileno())
            finally:
                os.close(devnull)
