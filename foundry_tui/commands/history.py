"""`foundry-tui history [--search Q] [--limit N] [--archived] [--json]`: the saved
conversations, newest first: id, title, model, turns (prompts saved) and last update;
`--archived` lists the archived ones instead.

`foundry-tui history archive ID` and `history restore ID` archive a conversation (it leaves
the list, and the TUI's list, and stays whole) or bring it back, as `local install` and
`local status` are verbs of `local`. ID is a conversation's id or any response id in it.

Read through the same `Store` calls as the TUI's history list; titles and models are
untrusted text, shown one line each with nothing a terminal would act on (``--json``
escapes them instead).
"""

from __future__ import annotations

import argparse
import json
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
from foundry_tui.core.models import StorageError
from foundry_tui.core.text import one_line

__all__ = ["build_parser", "main"]

DEFAULT_LIMIT = 20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foundry-tui history",
        description="List saved conversations, newest first. "
        "`foundry-tui history archive ID` / `restore ID` archive a conversation or bring it "
        "back.",
        epilog="Example: foundry-tui history --json | jq -r '.[0].id'",
    )
    parser.add_argument(
        "-q", "--search", metavar="Q", help="only conversations whose title or text has Q"
    )
    parser.add_argument(
        "-n",
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N conversations (default {DEFAULT_LIMIT}; 0: all)",
    )
    parser.add_argument(
        "--archived", action="store_true", help="list the archived conversations instead"
    )
    parser.add_argument("--json", action="store_true", help="a JSON array, one object each")
    add_common_options(parser)
    return parser


VERBS = ("archive", "restore")


def main(argv: list[str]) -> int:
    if argv and argv[0] in VERBS:
        return _change(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.limit < 0:
            raise UsageError("--limit must be 0 (all) or more")
        config = load(args)
        if not config.db_path.exists():  # nothing saved yet; opening would create it
            rows: list[dict[str, object]] = []
        else:
            rows = _rows(config.db_path, args.search, args.limit, archived=args.archived)
    except (UsageError, StorageError) as error:
        say_problem(str(error))
        return EXIT_USAGE
    if args.json:
        # Compact: the C encoder (indent= takes the pure-Python one, 5x slower).
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        sys.stdout.write(_table(rows))
    sys.stdout.flush()
    return EXIT_OK


def _rows(
    path: object, search: str | None, limit: int, *, archived: bool = False
) -> list[dict[str, object]]:
    from pathlib import Path

    from foundry_tui.store import Store

    with Store.open(Path(str(path))) as store:
        found = store.list_conversations(
            limit=limit or sys.maxsize, search=search, archived=archived
        )
        turns = store.turn_counts([summary.id for summary in found])
    return [
        {
            "id": summary.id,
            "title": summary.title,
            "model": summary.model,
            "turns": turns.get(summary.id, 0),
            "updated_at": summary.updated_at,
            "archived": archived,
        }
        for summary in found
    ]


def _change_parser(verb: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"foundry-tui history {verb}",
        description=(
            "Archive a conversation: it leaves the history list (foundry-tui history "
            "--archived lists it) and stays whole."
            if verb == "archive"
            else "Bring an archived conversation back to the history list."
        ),
    )
    parser.add_argument("id", metavar="ID", help="a conversation's id, or a response id in it")
    add_common_options(parser)
    return parser


def _change(verb: str, argv: list[str]) -> int:
    from foundry_tui.store import Store

    args = _change_parser(verb).parse_args(argv)
    target: str = args.id
    try:
        path = load(args).db_path
        if not path.exists():
            raise UsageError(f"there is no history database yet at {path}")
        with Store.open(path) as store:
            found = store.get_conversation(target) or store.find_conversation_by_response_id(target)
            if found is None:
                raise UsageError(f"no saved conversation or response has the id {target}")
            if verb == "archive":
                store.archive_conversation(found.id)
            else:
                store.restore_conversation(found.id)
    except UsageError as error:
        say_problem(str(error))
        return EXIT_USAGE
    except StorageError as error:
        say_problem(str(error))
        return EXIT_FAILED
    done = "Archived" if verb == "archive" else "Restored"
    title = one_line(found.title, 60) or "(untitled)"
    sys.stderr.write(f"{done} {found.id}  {title}\n")
    return EXIT_OK


def _table(rows: list[dict[str, object]]) -> str:
    lines = [
        f"{row['id']}  {str(row['updated_at'])[:19].replace('T', ' ')}  "
        f"{row['turns']:>4} {'turn ' if row['turns'] == 1 else 'turns'}  "
        f"{one_line(str(row['model']), 24):<24}  "
        f"{one_line(str(row['title']) or '(untitled)', 60)}"
        for row in rows
    ]
    return "".join(line + "\n" for line in lines)
