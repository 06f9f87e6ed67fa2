"""`foundry-tui history [--search Q] [--limit N] [--json]`: the saved conversations, newest
first: id, title, model, turns (prompts saved) and last update.

Read through the same `Store` calls as the TUI's history list; titles and models are
untrusted text, shown one line each with nothing a terminal would act on (``--json``
escapes them instead).
"""

from __future__ import annotations

import argparse
import json
import sys

from foundry_tui.commands import (
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
        description="List saved conversations, newest first.",
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
    parser.add_argument("--json", action="store_true", help="a JSON array, one object each")
    add_common_options(parser)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.limit < 0:
            raise UsageError("--limit must be 0 (all) or more")
        config = load(args)
        if not config.db_path.exists():  # nothing saved yet; opening would create it
            rows: list[dict[str, object]] = []
        else:
            rows = _rows(config.db_path, args.search, args.limit)
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


def _rows(path: object, search: str | None, limit: int) -> list[dict[str, object]]:
    from pathlib import Path

    from foundry_tui.store import Store

    with Store.open(Path(str(path))) as store:
        found = store.list_conversations(limit=limit or sys.maxsize, search=search)
        turns = store.turn_counts([summary.id for summary in found])
    return [
        {
            "id": summary.id,
            "title": summary.title,
            "model": summary.model,
            "turns": turns.get(summary.id, 0),
            "updated_at": summary.updated_at,
        }
        for summary in found
    ]


def _table(rows: list[dict[str, object]]) -> str:
    lines = [
        f"{row['id']}  {str(row['updated_at'])[:19].replace('T', ' ')}  "
        f"{row['turns']:>4} {'turn ' if row['turns'] == 1 else 'turns'}  "
        f"{one_line(str(row['model']), 24):<24}  "
        f"{one_line(str(row['title']) or '(untitled)', 60)}"
        for row in rows
    ]
    return "".join(line + "\n" for line in lines)
