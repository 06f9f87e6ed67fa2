"""`foundry-tui import FILE.json`: a conversation that `foundry-tui export --format json`
wrote, saved as a new conversation (new local ids; its response ids kept, so it chains on
or replays like the original). Prints the new conversation's id.

The file is untrusted: anything but a sound export of a version this foundry-tui reads is
refused as a whole (exit 2, one line on stderr), and nothing is saved.
"""

from __future__ import annotations

import argparse
import sys

from foundry_tui.commands import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_common_options,
    say_problem,
)
from foundry_tui.commands.export import open_history
from foundry_tui.core.paths import PathProblem, expand_user_path, file_problem
from foundry_tui.core.text import one_line
from foundry_tui.core.transfer import MAX_IMPORT_BYTES, TOO_BIG, TransferError, parse, save_imported
from foundry_tui.store import StoreError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foundry-tui import",
        description=(
            "Save a conversation exported with `foundry-tui export --format json` as a new "
            "conversation; prints its id."
        ),
        epilog="Example: foundry-tui import chat.json  (- reads standard input)",
    )
    parser.add_argument("file", metavar="FILE.json", help="the export to read; - for stdin")
    add_common_options(parser)
    return parser


def read_limited(name: str) -> bytes:
    """The file's bytes, or TransferError past MAX_IMPORT_BYTES (read no further)."""
    if name == "-":
        data = sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1)
    else:
        path = expand_user_path(name)
        problem = file_problem(path)
        if problem is None and not path.exists():
            problem = "there is no such file"
        if problem is not None:
            raise UsageError(f"cannot read {name}: {problem}")
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise TransferError(TOO_BIG)
        with path.open("rb") as handle:
            data = handle.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise TransferError(TOO_BIG)
    return data


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    name: str = args.file
    try:
        exported = parse(read_limited(name))
        with open_history(args, create=True) as store:
            conversation = save_imported(store, exported)
    except TransferError as refused:
        say_problem(f"cannot import {name}: {refused}")
        return EXIT_USAGE
    except (UsageError, PathProblem) as error:
        say_problem(str(error))
        return EXIT_USAGE
    except OSError as error:
        say_problem(f"cannot read {name}: {error.strerror or error}")
        return EXIT_USAGE
    except StoreError as error:
        say_problem(str(error))
        return EXIT_FAILED
    count = len(exported.messages)
    title = one_line(conversation.title, 80) or "untitled"
    print(
        f"foundry-tui: imported “{title}” ({count} message{'s' * (count != 1)}) "
        f"as conversation {conversation.id}",
        file=sys.stderr,
    )
    print(conversation.id)
    return EXIT_OK
