"""`foundry-tui doctor`: is this setup able to chat? One line per check, and the fix.

    foundry-tui doctor [--config PATH] [--profile NAME] [--db PATH] [--json]

The checks run in order (foundry_tui.commands.checks): the config file, the profile, the
endpoint URL's shape, DNS, TLS, authentication, the deployment answering, the history
database, the local model. Each prints ``PASS|WARN|FAIL  <what>  <detail>`` and, for WARN
and FAIL, the fix on the lines below; ``--json`` prints one JSON object per check instead.
A check that needs an earlier one which failed is left out (fix that one first); network
checks talk only to the configured endpoint, each within a few seconds. Exit status 1 when
any check fails, else 0 (2 for a bad flag).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from foundry_tui.commands import EXIT_FAILED, EXIT_OK, add_common_options
from foundry_tui.commands.checks import CheckResult, Context, Options, Seams, Status
from foundry_tui.commands.checks.database import check_database
from foundry_tui.commands.checks.local import check_local
from foundry_tui.commands.checks.network import check_dns, check_tls
from foundry_tui.commands.checks.service import check_auth, check_deployment
from foundry_tui.commands.checks.setup import check_config, check_endpoint, check_profile
from foundry_tui.core.text import one_line, sanitize

__all__ = ["STEPS", "Step", "build_parser", "format_result", "main", "run_checks"]

_TITLE_WIDTH = 13
_INDENT = " " * 6
_DETAIL_LIMIT = 400
_FIX_LIMIT = 1_200


@dataclass(frozen=True)
class Step:
    """A check and the checks it needs: it is left out when one of them failed."""

    name: str
    run: Callable[[Context], Awaitable[list[CheckResult]]]
    needs: tuple[str, ...] = ()


STEPS: tuple[Step, ...] = (
    Step("config", check_config),
    Step("profile", check_profile, ("config",)),
    Step("endpoint", check_endpoint, ("profile",)),
    Step("dns", check_dns, ("endpoint",)),
    Step("tls", check_tls, ("dns",)),
    Step("auth", check_auth, ("profile",)),
    Step("deployment", check_deployment, ("endpoint", "dns", "tls", "auth")),
    Step("database", check_database, ("config",)),
    Step("local", check_local),
)


async def run_checks(options: Options, seams: Seams | None = None) -> AsyncIterator[CheckResult]:
    """Each check's results, as they come."""
    ctx = Context(options=options, seams=seams or Seams())
    left_out: set[str] = set()  # failed, or not run because a check they need failed
    try:
        for step in STEPS:
            if left_out.intersection(step.needs):
                left_out.add(step.name)
                continue
            try:
                results = await step.run(ctx)
            except Exception as exc:  # one broken check must not hide the others
                results = [_broken(step, exc)]
            if any(result.status is Status.FAIL for result in results):
                left_out.add(step.name)
            for result in results:
                yield result
    finally:
        await ctx.aclose()


def _broken(step: Step, exc: Exception) -> CheckResult:
    return CheckResult(
        step.name,
        Status.FAIL,
        step.name,
        f"the check could not run ({type(exc).__name__}: {one_line(str(exc), 200)})",
        "This is a bug in foundry-tui doctor: please report it with this output.",
    )


def format_result(result: CheckResult) -> str:
    """``STATUS  title  detail`` and the fix below it, indented; nothing a terminal would
    act on (a path or a server's words may hold escape sequences)."""
    title = one_line(result.title, _TITLE_WIDTH)
    line = (
        f"{result.status.value}  {title:<{_TITLE_WIDTH}}  {one_line(result.detail, _DETAIL_LIMIT)}"
    )
    if result.status is Status.PASS or not result.fix:
        return line
    fix = sanitize(result.fix, _FIX_LIMIT)
    lines = [_INDENT + " ".join(text.split()) for text in fix.splitlines() if text.strip()]
    return "\n".join([line, *lines])


def as_json(result: CheckResult) -> str:
    return json.dumps(
        {
            "check": result.check,
            "status": result.status.value,
            "title": one_line(result.title, None),
            "detail": one_line(result.detail, _DETAIL_LIMIT),
            "fix": sanitize(result.fix, _FIX_LIMIT) if result.status is not Status.PASS else "",
        }
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foundry-tui doctor",
        description=(
            "Check the config file, the profile, the endpoint, DNS and TLS, authentication, "
            "the deployment, the history database and the local model: one PASS, WARN or "
            "FAIL line each, with the fix. Exit status 1 when a check fails."
        ),
    )
    add_common_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per check")
    return parser


async def _report(options: Options, as_lines: bool, out: TextIO, seams: Seams | None) -> int:
    failed = False
    async for result in run_checks(options, seams):
        failed = failed or result.status is Status.FAIL
        print(format_result(result) if as_lines else as_json(result), file=out, flush=True)
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: Sequence[str], *, seams: Seams | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(list(argv))  # a bad flag: argparse exits with 2
    options = Options(config=args.config, profile=args.profile, db=args.db)
    return asyncio.run(_report(options, not args.json, out or sys.stdout, seams))
