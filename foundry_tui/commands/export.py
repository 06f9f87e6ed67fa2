"""`foundry-tui export ID [--format md|json] [-o FILE]`: one saved conversation as Markdown
to read or JSON to process (docs/export-format.md), on stdout or in a file only you can
read. ID is the conversation's id or any response id in it (as `--resume` takes)."""

from __future__ import annotations

import argparse
import os
import sys

from foundry_tui.commands import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_common_options,
    load,
    say_problem,
)
from foundry_tui.core.export_files import render, write_private
from foundry_tui.core.paths import PathProblem, expand_user_path, output_problem
from foundry_tui.core.transfer import find
from foundry_tui.store import Store, StoreError

FORMATS = ("md", "json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foundry-tui export",
        description=(
            "Write one saved conversation as Markdown (to read) or JSON (every message, id, "
            "usage, setting and status; foundry-tui import reads it back)."
        ),
        epilog="Examples: foundry-tui export ID --format md -o chat.md | "
        "foundry-tui export resp_abc --format json | jq -r '.messages[].text'",
    )
    parser.add_argument("id", metavar="ID", help="a conversation id, or any response id in it")
    parser.add_argument("--format", choices=FORMATS, default="md", help="md (the default) or json")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default="-",
        help="write to FILE (replaced at once, readable only by you); - or none: stdout",
    )
    parser.add_argument(
        "--all-branches",
        action="store_true",
        help="Markdown: every branch (edited prompts, regenerated replies), not only the one "
        "the app shows; JSON always holds them all",
    )
    add_common_options(parser)
    return parser


def open_history(args: argparse.Namespace, *, create: bool) -> Store:
    """The history database the config (or --db) names; UsageError when there is none yet
    and ``create`` is false."""
    path = load(args).db_path
    if not create and not path.exists():
        raise UsageError(f"there is no history database yet at {path}")
    return Store.open(path)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    target: str = args.id
    try:
        output = None if args.output == "-" else expand_user_path(args.output)
        with open_history(args, create=False) as store:
            exported = find(store, target)
        if exported is None:
            raise UsageError(f"no saved conversation or response has the id {target}")
    except PathProblem as refused:
        say_problem(f"cannot write {args.output}: {refused}")
        return EXIT_USAGE
    except UsageError as error:
        say_problem(str(error))
        return EXIT_USAGE
    except StoreError as error:
        say_problem(str(error))
        return EXIT_FAILED
    text = render(exported, args.format, all_branches=args.all_branches)
    if output is None:
        return _to_stdout(text)
    problem = output_problem(output)
    if problem is not None:
        say_problem(f"cannot write {output}: {problem}")
        return EXIT_USAGE
    try:
        write_private(output, text.encode("utf-8"))
    except OSError as error:
        say_problem(f"cannot write {output}: {error.strerror or error}")
        return EXIT_FAILED
    return EXIT_OK


def _to_stdout(text: str) -> int:
    try:
        # UTF-8 whatever the locale says, as in a file: `> chat.md` gives the same bytes.
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # The reader stopped (`| head`): what it did not want is not a failure. Python
        # would still fail flushing at exit, so stdout goes to /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_OK
