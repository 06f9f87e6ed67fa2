"""The subcommands: `foundry-tui ask | history | export | import | doctor | local`.

The shell's face of the headless core. Each subcommand is a module here with a
``main(argv) -> int``; `foundry_tui.cli` imports only the one asked for. None of them
imports Textual or Rich (an import-linter contract holds it): a script that runs
`foundry-tui ask` a hundred times pays for neither.

What they share lives here: the options every subcommand takes (which config, profile
and database), loading the config the way the TUI does, the exit statuses, and how a
problem is said on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from foundry_tui.config import AppConfig, ConfigError, Overrides, load_config
from foundry_tui.core.text import one_line

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SIGNAL_BASE",
    "EXIT_USAGE",
    "UsageError",
    "add_common_options",
    "add_debug_option",
    "load",
    "say_problem",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # the server or the model failed the request
EXIT_USAGE: Final = 2  # a bad flag, config or id: nothing was sent
EXIT_INTERRUPTED: Final = 130  # Ctrl+C (128 + SIGINT), as a shell reports it
# Ended by a signal (SIGTERM, SIGHUP): 128 + its number, as a shell reports it.
EXIT_SIGNAL_BASE: Final = 128

# A message on stderr is cut here: a server's error page can be a megabyte.
PROBLEM_LIMIT: Final = 2_000


class UsageError(Exception):
    """A problem with what the user asked for (flags, config, an unknown id): exit 2."""


class _Debug(argparse.Action):
    """``--debug`` takes effect as it is parsed: what follows (loading the config, the
    request) is already logged at DEBUG level."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from foundry_tui.core.logs import enable_debug

        setattr(namespace, self.dest, True)
        enable_debug()


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug",
        action=_Debug,
        nargs=0,
        default=False,
        help="also write prompts, replies and debug detail to the log file (see the README)",
    )


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """--config, --profile, --db and --debug, with the same meaning as for the TUI."""
    parser.add_argument(
        "--config", metavar="PATH", type=Path, help="the config file to use instead of the default"
    )
    parser.add_argument("--profile", metavar="NAME", help="use this profile from the config file")
    parser.add_argument("--db", metavar="PATH", type=Path, help="the history database to use")
    add_debug_option(parser)


def load(args: argparse.Namespace, **overrides: object) -> AppConfig:
    """The config as the TUI would load it with the same flags; UsageError if it is bad.

    ``overrides`` names further `Overrides` fields a subcommand sets (model, endpoint,
    local); flags left out stay None.
    """
    chosen = Overrides(
        profile=getattr(args, "profile", None),
        db=getattr(args, "db", None),
        **overrides,  # type: ignore[arg-type]
    )
    try:
        return load_config(getattr(args, "config", None), overrides=chosen)
    except ConfigError as error:
        raise UsageError(str(error)) from error


def say_problem(message: str) -> None:
    """One problem on stderr, on one line, with nothing a terminal would act on (a path
    or a server's words may hold escape sequences)."""
    print(f"foundry-tui: {one_line(message, PROBLEM_LIMIT)}", file=sys.stderr, flush=True)
