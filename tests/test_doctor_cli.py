"""`python -m foundry_tui doctor` end to end: a real process, an empty HOME and XDG dirs
(conftest), the local server on 127.0.0.1; its lines and its exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import ResponsesServer

ROOT = Path(__file__).resolve().parents[1]


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "foundry_tui", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},  # the isolated HOME and XDG dirs of conftest
        cwd=ROOT,
        check=False,
    )


def statuses(stdout: str) -> dict[str, str]:
    """The first word (status) of each check's line, by its title; fix lines are indented."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        if line[:4] in ("PASS", "WARN", "FAIL"):
            found[line[6:19].strip()] = line[:4]
    return found


def test_an_empty_home_warns_with_the_setup_hint_and_exits_0(isolated_home: Path) -> None:
    result = doctor()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    config_file = isolated_home / "xdg_config_home" / "foundry-tui" / "config.toml"
    assert lines[0] == f"WARN  config         no config file at {config_file}"
    assert lines[1].startswith("      Run foundry-tui: its setup screen writes the file.")
    found = statuses(result.stdout)
    assert found["profile"] == "WARN"
    assert found["database"] == "PASS"
    assert "endpoint" not in found and "deployment" not in found
    assert result.stderr == ""


def test_a_working_profile_passes_against_the_local_server(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    with ResponsesServer(api_key=TEST_KEY) as server:
        config.write_text(
            f'[profiles.work]\nkind = "compatible"\nendpoint = "{server.base_url}"\n'
            f'api_key_env = "{KEY_VARIABLE}"\ndeployments = ["gpt-4o"]\n',
            encoding="utf-8",
        )
        result = doctor("--config", str(config), env={KEY_VARIABLE: TEST_KEY})
        sent = server.created()
    assert result.returncode == 0, result.stdout + result.stderr
    found = statuses(result.stdout)
    for check in ("config", "profile", "endpoint", "DNS", "TLS", "auth", "deployment"):
        assert found[check] == "PASS", result.stdout
    assert len(sent) == 1 and sent[0]["store"] is False
    assert TEST_KEY not in result.stdout + result.stderr


def test_json_lines_for_a_missing_key_and_a_damaged_database_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[profiles.work]\nkind = "compatible"\nendpoint = "http://127.0.0.1:9/v1"\n'
        f'api_key_env = "{KEY_VARIABLE}"\n',
        encoding="utf-8",
    )
    db = tmp_path / "history.db"
    db.write_bytes(b"not a database at all " * 100)
    result = doctor("--config", str(config), "--db", str(db), "--json")
    assert result.returncode == 1
    objects = {o["check"]: o for o in map(json.loads, result.stdout.splitlines())}
    assert objects["auth"]["status"] == "FAIL"
    assert objects["auth"]["detail"] == f"${KEY_VARIABLE} is not set"
    assert objects["auth"]["fix"].startswith(
        f"Set {KEY_VARIABLE} to the key for http://127.0.0.1:9/v1"
    )
    assert "deployment" not in objects  # it needs the key
    assert objects["database"]["status"] == "FAIL"
    assert "is damaged or is not a SQLite database" in objects["database"]["detail"]
    assert set(objects["database"]) == {"check", "status", "title", "detail", "fix"}
