"""`foundry-tui ask [PROMPT]`: one turn from the shell, saved like a turn in the TUI.

The prompt is the argument, or what comes on stdin, or both (stdin first, as context, then
the argument, as llm does). The reply streams to stdout as plain text with nothing a
terminal would act on (or as JSON Lines with ``--json``); status and errors go to stderr.
The turn goes through the same `Workspace` and `ChatSession` as the TUI's, so it is saved
in the same history (the prompt before the request leaves) and shows there.

Fast to the first token: nothing of Textual, Rich or the openai SDK is imported on the way
(the reply is read by the lean transport, backend/lean.py); the store and the backend are
imported only once the flags and the config are known good.

``--attach FILE`` (repeatable) sends images and PDFs with the prompt, checked as the chat
screen checks them before anything is saved or sent.

Exit status: 0 done (an incomplete reply too, with a note on stderr), 1 the server or the
model failed, 2 a bad flag, config, id or attachment (nothing was sent), 130 interrupted
(Ctrl+C: the partial reply is saved as cancelled, as Escape does in the TUI), 143 after
SIGTERM and 129 after SIGHUP (a closed terminal or SSH session), the reply saved the same
way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from foundry_tui.commands import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SIGNAL_BASE,
    EXIT_USAGE,
    UsageError,
    add_common_options,
    load,
    say_problem,
)
from foundry_tui.commands._reply import ReplyPrinter
from foundry_tui.core.parameters import REASONING_EFFORTS, REASONING_SUMMARIES, VERBOSITIES

if TYPE_CHECKING:
    from foundry_tui.config import AppConfig
    from foundry_tui.core.attachments import FileToAttach
    from foundry_tui.core.models import GenerationSettings, Profile
    from foundry_tui.core.session import ChatSession
    from foundry_tui.core.workspace import AppBackend, Workspace

# `--continue` without an id: the conversation updated last.
_LATEST = "latest"
# The choices that leave a reasoning setting to the server.
_DEFAULT = "default"
_OFF = "off"
# A conversation id as the store makes them (uuid4 hex), as `history` lists them.
_CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foundry-tui ask",
        description=(
            "Send one prompt and stream the reply to stdout. The prompt is PROMPT, or stdin, "
            "or both (stdin first, as context). The turn is saved in the history."
        ),
        epilog=(
            "Exit status: 0 done, 1 the server or the model failed, 2 a bad flag, config, "
            "id or attachment, 130 interrupted (the partial reply is saved as cancelled). "
            'Example: git diff | foundry-tui ask "review this"'
        ),
    )
    parser.add_argument("prompt", nargs="?", metavar="PROMPT", help="the prompt")
    chain = parser.add_mutually_exclusive_group()
    chain.add_argument(
        "-c",
        "--continue",
        dest="continue_id",
        nargs="?",
        const=_LATEST,
        metavar="ID",
        help="continue a saved conversation: ID as `history` lists it (default: the latest one)",
    )
    chain.add_argument(
        "--resume",
        metavar="ID",
        help="continue a conversation by its id or by a response id in it (resp_…); one "
        "only the server knows is rebuilt from it first",
    )
    parser.add_argument("-m", "--model", metavar="DEPLOYMENT", help="deployment (model) name")
    parser.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    parser.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling")
    parser.add_argument(
        "--max-output-tokens", type=int, metavar="N", help="the most tokens the reply may take"
    )
    parser.add_argument(
        "--reasoning-effort",
        choices=(_DEFAULT, *REASONING_EFFORTS),
        help="how much a reasoning model thinks (default: the server's)",
    )
    parser.add_argument(
        "--reasoning-summary",
        choices=(_OFF, *REASONING_SUMMARIES),
        help="a summary of the model's reasoning (default: off)",
    )
    parser.add_argument(
        "--verbosity",
        choices=(_DEFAULT, *VERBOSITIES),
        help="how long the answer is (default: the server's)",
    )
    parser.add_argument("-s", "--instructions", metavar="TEXT", help="system instructions")
    parser.add_argument(
        "--local", action="store_true", help="ask the local model on this computer (offline)"
    )
    parser.add_argument(
        "-a",
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help="send an image (PNG, JPEG, WebP, GIF) or a PDF with the prompt; repeatable",
    )
    parser.add_argument(
        "--json", action="store_true", help="JSON Lines: one object per event (see --no-stream)"
    )
    parser.add_argument(
        "--no-stream",
        action="store_true",
        help="print the reply once it is complete (with --json: one result object)",
    )
    add_common_options(parser)
    return parser


def read_prompt(argument: str | None) -> str:
    """The prompt from the argument and stdin (stdin first: the context it is about)."""
    piped = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    parts = [part for part in (piped.strip("\n"), argument) if part and part.strip()]
    if not parts:
        raise UsageError("no prompt: give one as an argument or on stdin")
    return "\n\n".join(parts)


def _check(args: argparse.Namespace) -> None:
    taken = args.continue_id not in (None, _LATEST)
    if args.prompt is None and taken and not _CONVERSATION_ID.fullmatch(args.continue_id):
        # `-c "next question"`: the optional id took the prompt; it is the prompt.
        args.prompt, args.continue_id = args.continue_id, _LATEST
    if args.temperature is not None and not 0 <= args.temperature <= 2:
        raise UsageError("--temperature must be between 0 and 2")
    if args.top_p is not None and not 0 <= args.top_p <= 1:
        raise UsageError("--top-p must be between 0 and 1")
    if args.max_output_tokens is not None and args.max_output_tokens < 1:
        raise UsageError("--max-output-tokens must be 1 or more")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)  # a bad flag: usage on stderr, exit 2
    try:
        _check(args)
        prompt = read_prompt(args.prompt)
        config = load(args, model=args.model, local=args.local)
        profile = config.active_profile()
        if profile is None:
            raise UsageError(
                f"no profile to use in {config.path}: run foundry-tui once to set one up, "
                "or name one with --profile"
            )
        files = _attachments(args.attach, profile)
    except UsageError as error:
        say_problem(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    printer = ReplyPrinter(json_lines=args.json, stream=not args.no_stream)
    try:
        return asyncio.run(_ask(args, config, profile, prompt, printer, files))
    except KeyboardInterrupt:  # before the turn started: nothing to save
        say_problem("interrupted")
        return EXIT_INTERRUPTED
    finally:
        printer.close()


def _attachments(paths: list[str], profile: Profile) -> list[FileToAttach]:
    """The files of ``--attach``, checked as the chat screen checks them (type by
    content, the API's size limits); UsageError naming what is wrong."""
    if not paths:
        return []
    from foundry_tui.core.attachments import AttachmentRejected, check_file, check_together
    from foundry_tui.core.models import EndpointKind

    if profile.kind is EndpointKind.LOCAL:
        raise UsageError(
            "the local model reads text only: it cannot take --attach files "
            "(ask a deployment that reads images and PDFs)"
        )
    try:
        files = [check_file(path) for path in paths]
        check_together(files)
    except AttachmentRejected as refused:
        raise UsageError(f"cannot attach: {refused}") from None
    return files


def _settings(args: argparse.Namespace, base: GenerationSettings) -> GenerationSettings:
    """``base`` with what the flags set."""
    chosen = {
        name: value
        for name, value in (
            ("model", args.model),
            ("temperature", args.temperature),
            ("top_p", args.top_p),
            ("max_output_tokens", args.max_output_tokens),
            ("instructions", args.instructions),
            ("reasoning_effort", args.reasoning_effort),
            ("reasoning_summary", args.reasoning_summary),
            ("verbosity", args.verbosity),
        )
        if value is not None
    }
    # "default" and "off" leave the setting to the server (clear a continued one's).
    cleared = {name: None for name, value in chosen.items() if value in (_DEFAULT, _OFF)}
    return replace(base, **{**chosen, **cleared})


def _backend(profile: Profile) -> AppBackend:
    from foundry_tui.core.models import EndpointKind

    if profile.kind is EndpointKind.LOCAL:
        from foundry_tui.local.backend import LocalBackend

        return LocalBackend(profile)
    from foundry_tui.backend.lean import backend_for

    return backend_for(profile)


def _workspace(config: AppConfig, profile: Profile, backend: AppBackend) -> Workspace:
    from foundry_tui.core.workspace import StoreOpening, Workspace
    from foundry_tui.store import Store

    async def open_store() -> Store:
        return await asyncio.to_thread(Store.open, config.db_path)

    return Workspace(StoreOpening(open_store), backend, profile)


async def _session(args: argparse.Namespace, workspace: Workspace) -> ChatSession:
    """The conversation the turn goes to: new, continued or resumed (UsageError if the id
    names none)."""
    if args.resume:
        try:
            return await workspace.resume(args.resume)
        except LookupError as error:
            raise UsageError(str(error)) from None
    if args.continue_id is None:
        return await workspace.new_session(_settings(args, workspace.default_settings()))
    target = args.continue_id
    if target == _LATEST:
        newest = await workspace.conversations(limit=1)
        if not newest:
            raise UsageError("no saved conversation to continue")
        target = newest[0].id
    try:
        return await workspace.open_session(target)
    except LookupError:
        raise UsageError(f"no saved conversation with id {target}") from None


# What ends `ask` as Ctrl+C does (the partial reply saved), and how stderr says it.
_SIGNALS: dict[int, str] = {
    getattr(signal, name): why
    for name, why in (("SIGTERM", "terminated"), ("SIGHUP", "hung up"))
    if hasattr(signal, name)  # Windows has no SIGHUP
}


def _end_on_signals() -> list[int]:
    """Makes SIGTERM and SIGHUP cancel the running turn, as Ctrl+C does, instead of
    ending the process where it stands (the reply since the last partial save lost).
    Returns the list the signal's number goes into."""
    received: list[int] = []
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def end(signum: int) -> None:
        if not received and task is not None:
            received.append(signum)
            task.cancel()

    for signum in _SIGNALS:
        # Windows' event loops take no signal handlers.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, end, signum)
    return received


async def _ask(
    args: argparse.Namespace,
    config: AppConfig,
    profile: Profile,
    prompt: str,
    printer: ReplyPrinter,
    files: list[FileToAttach],
) -> int:
    from foundry_tui.core.attachments import AttachmentRejected
    from foundry_tui.core.models import BackendError, ErrorKind, StorageError
    from foundry_tui.core.turns import Turns

    ended_by = _end_on_signals()
    backend = _backend(profile)
    # The HTTP client is built while the history opens and the prompt is saved: both are
    # mostly waiting on SQLite, which lets go of the GIL.
    warming = asyncio.ensure_future(asyncio.to_thread(backend.warm_up))
    workspace = _workspace(config, profile, backend)
    store = None
    try:
        try:
            store = await workspace.history
        except StorageError as error:
            say_problem(str(error))
            return EXIT_USAGE
        prepare = getattr(backend, "prepare", None)
        if prepare is not None:  # the local model: loading takes seconds, said on stderr
            await prepare(printer.status)
        session = await _session(args, workspace)
        if args.continue_id is not None or args.resume:
            for note in session.notes:
                printer.status(note)
            await session.update_settings(_settings(args, session.conversation.settings))
            turns = Turns(session, await session.transcript())
        else:
            turns = Turns(session)
        return await printer.turn(turns, prompt, files)
    except AttachmentRejected as refused:  # changed or gone since it was checked
        say_problem(f"cannot attach: {refused}")
        return EXIT_USAGE
    except UsageError as error:
        say_problem(str(error))
        return EXIT_USAGE
    except BackendError as error:  # before the turn: the local model, a resume
        say_problem(error.user_message)
        return EXIT_USAGE if error.kind is ErrorKind.CONFIG else EXIT_FAILED
    except StorageError as error:
        say_problem(str(error))
        return EXIT_FAILED
    except asyncio.CancelledError:  # Ctrl+C or a signal: the session saved the partial reply
        if ended_by:
            printer.interrupted(store, _SIGNALS[ended_by[0]])
            return EXIT_SIGNAL_BASE + ended_by[0]
        printer.interrupted(store)
        return EXIT_INTERRUPTED
    finally:
        await asyncio.wait({warming})
        await backend.aclose()
        if store is not None:
            store.close()


__all__ = ["EXIT_OK", "build_parser", "main", "read_prompt"]
