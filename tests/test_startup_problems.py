"""Start-up problems: one clear line on stderr and exit status 2, never a traceback, before
the UI starts; history database files that cannot be used, and their modes; "start fresh"
where the damaged file cannot be moved."""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from foundry_tui import cli
from foundry_tui.store import Store, StoreWriteError, migrations
from foundry_tui.store import open as store_open
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.problem import ProblemScreen
from tests.helpers import wait_until, write_config
from tests.responses_server import ResponsesServer

PROFILE = '[profiles.p]\nkind = "compatible"\nendpoint = "http://127.0.0.1:9"\nauth = "none"\n'


# Root reads and writes any file whatever its mode: run as root, the app is started without
# the two capabilities that allow that (util-linux's setpriv), so file modes hold for it.
AS_A_USER = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
)


def start(*args: str, env: dict[str, str] | None = None, as_user: bool = False) -> tuple[int, str]:
    """Runs `python -m foundry_tui` (``as_user``: without root's power over file modes);
    (exit status, stderr). It must stop by itself: an app that started its UI instead is
    a failure."""
    try:
        result = subprocess.run(
            [*(AS_A_USER if as_user else []), sys.executable, "-m", "foundry_tui", *args],
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the app started instead of refusing to")
    assert result.stdout == ""
    return result.returncode, result.stderr


def assert_refused(status: int, stderr: str, *words: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert status == 2, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("foundry-tui: ")
    for word in words:
        assert word in stderr, stderr


def config_file(directory: Path, text: str) -> Path:
    path = directory / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# The config file


def test_a_config_folder_that_is_a_file(isolated_home: Path) -> None:
    folder = isolated_home / "xdg_config_home" / "foundry-tui"
    folder.parent.mkdir(parents=True)
    folder.write_text("not a folder", encoding="utf-8")
    assert_refused(*start(), str(folder), "not a folder")


def test_a_config_folder_that_cannot_be_read(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Permission denied on the folder. Root reads any folder, so the denial is simulated
    where the app asks the file system about the config file."""
    folder = isolated_home / "xdg_config_home" / "foundry-tui"
    real_stat = os.stat

    def denied(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(path).startswith(str(folder)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", denied)
    status = cli.main([])
    assert_refused(status, capsys.readouterr().err, "permission denied", str(folder))


def test_a_config_folder_without_permissions(isolated_home: Path) -> None:
    folder = isolated_home / "xdg_config_home" / "foundry-tui"
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(PROFILE, encoding="utf-8")
    folder.chmod(0)
    try:
        assert_refused(*start(as_user=True), "permission denied")
    finally:
        folder.chmod(0o700)


def test_deeply_nested_toml(tmp_path: Path) -> None:
    path = config_file(tmp_path, "a = " + "[" * 100_000)
    assert_refused(*start("--config", str(path)), str(path), "nested too deeply")


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (lambda tmp: tmp, "a folder, not a file"),
        (lambda tmp: Path("/dev/null"), "a device"),
        (lambda tmp: fifo(tmp), "a named pipe"),
        (lambda tmp: blocker(tmp) / "config.toml", "is not a folder"),
    ],
    ids=["folder", "device", "fifo", "under-a-file"],
)
def test_config_flag_pointing_at_an_odd_place(
    tmp_path: Path, target: Callable[[Path], Path], words: str
) -> None:
    path = target(tmp_path)
    assert_refused(*start("--config", str(path)), str(path), words)


def test_config_variable_naming_an_unknown_user() -> None:
    status, stderr = start(env={"FOUNDRY_TUI_CONFIG": "~nosuchuser/config.toml"})
    assert_refused(status, stderr, "FOUNDRY_TUI_CONFIG", "no user 'nosuchuser'")


# ---------------------------------------------------------------------------
# The history database's path, checked before the UI starts


def fifo(directory: Path) -> Path:
    path = directory / "pipe"
    os.mkfifo(path)
    return path


def blocker(directory: Path) -> Path:
    path = directory / "a-file"
    path.write_text("a file, not a folder", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("db_path", "words"),
    [
        ("~nosuchuser/history.db", ["line 6", "db_path", "no user 'nosuchuser'"]),
        ("a\\u0000b.db", ["line 6", "db_path", "NUL byte"]),
    ],
    ids=["unknown-user", "nul-byte"],
)
def test_db_path_in_the_config_that_cannot_be_a_path(
    tmp_path: Path, db_path: str, words: list[str]
) -> None:
    path = config_file(tmp_path, f'{PROFILE}[ui]\ndb_path = "{db_path}"\n')
    assert_refused(*start("--config", str(path)), str(path), *words)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (lambda tmp: "~nosuchuser/history.db", "no user 'nosuchuser'"),
        (lambda tmp: "/dev/null", "a device"),
        (lambda tmp: "/dev/zero", "a device"),
        (lambda tmp: str(fifo(tmp)), "a named pipe"),
        (lambda tmp: str(tmp), "a folder, not a file"),
        (lambda tmp: str(blocker(tmp) / "history.db"), "is not a folder"),
    ],
    ids=["unknown-user", "dev-null", "dev-zero", "fifo", "folder", "under-a-file"],
)
@pytest.mark.parametrize("given_by", ["--db", "FOUNDRY_TUI_DB"])
def test_db_flag_or_variable_pointing_at_an_odd_place(
    tmp_path: Path, target: Callable[[Path], str], words: str, given_by: str
) -> None:
    config = config_file(tmp_path, PROFILE)
    db = target(tmp_path)
    if given_by == "--db":
        status, stderr = start("--config", str(config), "--db", db)
    else:
        status, stderr = start("--config", str(config), env={"FOUNDRY_TUI_DB": db})
    assert_refused(status, stderr, given_by, words)


def test_a_data_folder_that_is_a_file(isolated_home: Path, tmp_path: Path) -> None:
    folder = isolated_home / "xdg_data_home" / "foundry-tui"
    folder.parent.mkdir(parents=True)
    folder.write_text("not a folder", encoding="utf-8")
    config = config_file(tmp_path, PROFILE)
    assert_refused(*start("--config", str(config)), str(folder), "not a folder", "--db")


def test_messages_stay_on_one_line_whatever_the_path_holds(tmp_path: Path) -> None:
    folder = tmp_path / "two\nlines \x1b]0;title\x07"
    folder.mkdir()
    status, stderr = start("--config", str(folder))
    assert_refused(status, stderr, "a folder, not a file")
    assert "\x1b" not in stderr


# ---------------------------------------------------------------------------
# The store


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (lambda tmp: Path("/dev/null"), "a device, not a file"),
        (lambda tmp: Path("/dev/zero"), "a device, not a file"),
        (fifo, "a named pipe, not a file"),
        (lambda tmp: tmp, "a folder, not a file"),
    ],
    ids=["dev-null", "dev-zero", "fifo", "folder"],
)
def test_store_refuses_what_is_not_a_file(
    tmp_path: Path, target: Callable[[Path], Path], words: str
) -> None:
    path = target(tmp_path)
    with pytest.raises(StoreWriteError) as info:
        Store.open(path)
    assert str(path) in str(info.value) and words in str(info.value)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_side_files_are_private_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database others can read (copied in, or made by another tool), left by a crash
    with its -wal and -shm: from the first read on, all three are 0600."""
    path = tmp_path / "history.db"
    Store.open(path).close()
    keeper = sqlite3.connect(path)  # holds the side files open, as a crashed app leaves them
    keeper.execute("CREATE TABLE IF NOT EXISTS _probe (x)")
    sides = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    for file in (path, *sides):
        file.chmod(0o644)
    seen: dict[str, int] = {}
    inspect = migrations.inspect

    def spying_inspect(db: object) -> migrations.SchemaStatus:
        seen.update({file.name: mode(file) for file in (path, *sides)})
        return inspect(db)  # type: ignore[arg-type]

    monkeypatch.setattr(migrations, "inspect", spying_inspect)
    with Store.open(path):
        assert {file.name: mode(file) for file in (path, *sides)} == dict.fromkeys(seen, 0o600)
    keeper.close()
    assert seen == {path.name: 0o600, sides[0].name: 0o600, sides[1].name: 0o600}


def test_side_files_of_a_new_database_are_private(tmp_path: Path) -> None:
    umask = os.umask(0)  # the widest: every file gets the mode it is created with
    try:
        path = tmp_path / "history.db"
        with Store.open(path):
            for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                assert mode(file) == 0o600, file
    finally:
        os.umask(umask)


def test_set_aside_moves_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "history.db"
    files = {path: b"damaged", Path(f"{path}-wal"): b"newest writes", Path(f"{path}-shm"): b"s"}
    for file, data in files.items():
        file.write_bytes(data)
    real_replace = os.replace

    def replace(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
        if str(source).endswith("-wal"):
            raise PermissionError(errno.EACCES, "Permission denied", str(source))
        real_replace(source, destination)

    monkeypatch.setattr(store_open.os, "replace", replace)
    with pytest.raises(StoreWriteError) as info:
        Store.set_aside(path)
    assert "read-only" in str(info.value) and str(path) in str(info.value)
    assert {file: file.read_bytes() for file in files} == files
    assert sorted(tmp_path.iterdir()) == sorted(files)


# ---------------------------------------------------------------------------
# "Start fresh" where the damaged file cannot be moved


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_start_fresh_in_a_read_only_folder_says_so_and_changes_nothing(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, server.base_url)
    config.db_path.write_bytes(b"these bytes are not a database " * 200)
    before = digest(config.db_path)
    listing = sorted(tmp_path.iterdir())

    def read_only_folder(source: object, destination: object) -> None:
        # What a folder without write permission gives anyone but root.
        raise PermissionError(errno.EACCES, "Permission denied", str(source))

    monkeypatch.setattr(store_open.os, "replace", read_only_folder)
    app = make_app(config)
    async with app.run_test(size=(120, 30)) as pilot:

        def problem_shown(words: str) -> bool:
            screen = app.screen
            return (
                isinstance(screen, ProblemScreen)
                and screen.is_mounted
                and words in str(screen.query_one("#problem-title").render())
            )

        await wait_until(pilot, lambda: problem_shown("damaged"), what="damaged database")
        await pilot.press("f")
        await wait_until(pilot, lambda: problem_shown("could not be moved"), what="refusal")
        detail = str(app.screen.query_one("#problem-detail").render())
        assert "read-only" in detail and "Nothing was changed" in detail
        assert str(config.db_path) in detail
        assert len(app.screen.query("#problem-accept")) == 0  # no way forward to offer
        await pilot.press("q")
    assert app.return_code == 0
    assert digest(config.db_path) == before
    assert sorted(tmp_path.iterdir()) == listing
