"""The log file: where it is, who may read it, what never goes in it, and how a bug is
logged and said in one line (the TUI, the command line, the backend's handlers)."""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from foundry_tui import cli
from foundry_tui.backend.client import Backend
from foundry_tui.backend.replies import ReplyReader
from foundry_tui.commands import add_common_options
from foundry_tui.core import logs
from foundry_tui.core.models import (
    AuthMethod,
    BackendError,
    EndpointKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
)
from foundry_tui.ui.app import make_app
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    record_notifications,
    send,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

PROMPT = "the launch code is tangerine-42"
SETTINGS = GenerationSettings(model="gpt-4o")


def log_path() -> Path:
    """Where the log must be, from the XDG dirs conftest points at this test's HOME."""
    return Path(os.environ["XDG_STATE_HOME"]) / "foundry-tui" / "log" / "foundry-tui.log"


def log_text() -> str:
    path = log_path()
    return path.read_text(encoding="utf-8") if path.exists() else ""


def a_bug(message: str = "planted") -> TypeError:
    try:
        raise TypeError(message)
    except TypeError as error:
        return error


def test_nothing_is_written_until_something_is_logged() -> None:
    logs.get_logger("foundry_tui.test").debug("below the level: not written")
    assert not log_path().parent.exists()


def test_the_log_is_private_and_under_platformdirs_log_dir() -> None:
    line = logs.report_bug(a_bug(), "a test")
    path = log_path()
    assert logs.log_file() == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = log_text()
    assert "Unexpected error in a test" in text
    assert "Traceback (most recent call last)" in text and "TypeError: planted" in text
    assert "\n" not in line and str(path) in line and "TypeError" in line


def test_a_log_file_made_with_looser_rights_is_made_private() -> None:
    path = log_path()
    path.parent.mkdir(parents=True)
    path.write_text("old\n")
    path.chmod(0o644)
    logs.report_bug(a_bug(), "a test")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_log_rotates_and_every_file_stays_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 2_000)
    logger = logs.get_logger("foundry_tui.test")
    for number in range(200):
        logger.warning("line %d %s", number, "x" * 50)
    files = sorted(log_path().parent.iterdir())
    names = [f.name for f in files]
    assert names == ["foundry-tui.log", *(f"foundry-tui.log.{n}" for n in (1, 2, 3))]
    assert all(f.stat().st_size <= 2_000 for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert "line 199 " in log_text()


def test_a_log_that_cannot_be_written_does_not_stop_the_app() -> None:
    state = Path(os.environ["XDG_STATE_HOME"])
    state.mkdir(parents=True)
    (state / "foundry-tui").write_text("a file where the folder should be")
    line = logs.report_bug(a_bug(), "a test")
    assert "could not be written" in line and "\n" not in line


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, reply=lambda body: "a reply") as running:
        yield running


@pytest.fixture
async def backend(server: ResponsesServer) -> AsyncIterator[Backend]:
    profile = Profile(
        name="logs",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
    )
    made = Backend(profile, max_retries=0)
    yield made
    await made.aclose()


async def turn_with_a_bug(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> TypeError:
    """A turn whose handling of the final event has a bug that quotes the prompt and
    the key (as a careless message might)."""

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError(f"cannot finish {PROMPT!r} with key {TEST_KEY} (Bearer {TEST_KEY})")

    monkeypatch.setattr(ReplyReader, "finished", broken)
    with pytest.raises(TypeError) as caught:
        async for _event in backend.stream_reply(
            settings=SETTINGS,
            input=[InputMessage(MessageRole.USER, PROMPT)],
            previous_response_id=None,
        ):
            pass
    return caught.value


def parse_debug(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_common_options(parser)
    return parser.parse_args(argv)


async def test_keys_and_prompts_stay_out_of_the_log_without_debug(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_debug([]).debug is False
    error = await turn_with_a_bug(backend, monkeypatch)
    logs.report_bug(error, "a turn")
    text = log_text()
    assert "TypeError" in text and "cannot finish" in text  # the bug is there...
    assert TEST_KEY not in text and PROMPT not in text  # ...its secrets are not
    assert "prompt withheld" in text


async def test_debug_logs_the_prompt_but_never_the_key(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, server: ResponsesServer
) -> None:
    assert parse_debug(["--debug"]).debug is True
    async for _event in backend.stream_reply(
        settings=SETTINGS, input=[InputMessage(MessageRole.USER, PROMPT)], previous_response_id=None
    ):
        pass
    error = await turn_with_a_bug(backend, monkeypatch)
    logs.report_bug(error, "a turn")
    text = log_text()
    assert PROMPT in text and "cannot finish" in text
    assert TEST_KEY not in text
    assert server.created()  # the request went out with the key all the same


def test_an_environment_key_never_reaches_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_SERVICE_API_KEY", "value-of-the-service-key")
    monkeypatch.setenv("PROFILE_VAR", "value-of-the-profile-key")
    logs.hide_secret("value-of-the-profile-key", "PROFILE_VAR")
    logs.get_logger("foundry_tui.test").warning(
        "said value-of-the-service-key and value-of-the-profile-key; Authorization: Basic abcdefgh"
    )
    text = log_text()
    assert "said *** and ***" in text and "abcdefgh" not in text


# ------------------------------------------------------------------ narrowed handlers


async def test_a_bug_in_the_backend_is_not_shown_as_a_server_problem(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backend's handlers translate the SDK's, the network's and azure's errors; a
    TypeError of its own is let through, to be logged as a bug."""
    error = await turn_with_a_bug(backend, monkeypatch)
    assert not isinstance(error, BackendError)


async def test_a_bug_while_reading_a_stored_response_is_let_through(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai.resources.responses import AsyncResponses

    async def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("planted")

    monkeypatch.setattr(AsyncResponses, "retrieve", broken)
    with pytest.raises(TypeError, match="planted"):
        await backend.retrieve("resp_1")


async def test_the_network_s_errors_are_still_translated(backend: Backend) -> None:
    await backend.aclose()
    profile = Profile(
        name="gone",
        kind=EndpointKind.COMPATIBLE,
        endpoint="http://127.0.0.1:9/v1",  # nothing listens on the discard port
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
    )
    gone = Backend(profile, max_retries=0)
    with pytest.raises(BackendError, match="Could not connect"):
        await gone.list_models()
    await gone.aclose()


# ------------------------------------------------------------------ one line to the user


async def test_a_bug_in_a_turn_shows_one_line_naming_the_log(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn's worker fails with a bug: the reply so far is kept, the traceback is in
    the log, one line on the screen names it, and the app goes on."""

    original = ReplyReader.finished
    bug = [True]

    def finished(self: ReplyReader, *args: Any, **kwargs: Any) -> Any:
        if bug:
            raise TypeError("planted bug")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ReplyReader, "finished", finished)
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 40)) as pilot:
        await start_chat(app, pilot)
        notices = record_notifications(app)
        first = await send(pilot, app, "hello")
        await wait_until(pilot, lambda: bool(notices), what="a notification")
        [notice] = notices
        assert str(log_path()) in notice and "TypeError" in notice and "\n" not in notice
        assert first.message.status is not MessageStatus.COMPLETED
        bug.clear()  # the bug fixed: the next turn works
        assert (await send(pilot, app, "again")).message.status is MessageStatus.COMPLETED
        assert app.return_code is None
    assert "planted bug" in log_text() and "Traceback" in log_text()


def main(argv: list[str]) -> int:
    """A subcommand with a bug (cli.SUBCOMMANDS points here in the test below)."""
    raise TypeError(f"planted in a subcommand {TEST_KEY}")


def test_a_bug_in_a_command_is_one_line_on_stderr_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    monkeypatch.setitem(cli.SUBCOMMANDS, "planted", __name__)
    assert cli.main(["planted", "--flag"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and str(log_path()) in err and "TypeError" in err
    text = log_text()
    assert "planted in a subcommand" in text and "Traceback" in text and TEST_KEY not in text


async def test_a_crash_outside_any_worker_is_logged_too(
    tmp_path: Path, server: ResponsesServer
) -> None:
    """Textual's own crash path (an exception no handler caught ends the app): the
    traceback is in the log, and the line naming it is kept for the command line."""
    app = make_app(write_config(tmp_path, server.base_url))

    def crash() -> None:
        raise ZeroDivisionError("planted crash")

    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=(120, 40)) as pilot:
            await start_chat(app, pilot)
            app.call_later(crash)
            await wait_until(pilot, lambda: app.crash_line is not None, what="the crash")
    assert app.crash_line is not None and str(log_path()) in app.crash_line
    assert app.return_code == 1
    assert "planted crash" in log_text() and "Traceback" in log_text()


async def test_debug_logs_a_turn_s_prompt_and_reply(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply("the reply, word for word")
    logs.enable_debug()
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 40)) as pilot:
        await start_chat(app, pilot)
        await send(pilot, app, "what is the plan today")
    text = log_text()
    assert "what is the plan today" in text and "the reply, word for word" in text
    assert TEST_KEY not in text
