"""The command line: --help, --version, flags wired to the config, bad config on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from foundry_tui import __version__, cli

EXECUTABLE = Path(sys.executable).parent / "foundry-tui"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXECUTABLE), *args], capture_output=True, text=True, timeout=30, env=env, check=False
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"foundry-tui {__version__}"


def test_help_lists_every_flag() -> None:
    result = run("--help")
    assert result.returncode == 0
    for flag in ("--profile", "--model", "--endpoint", "--db", "--resume", "--config", "--version"):
        assert flag in result.stdout


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "foundry_tui", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == f"foundry-tui {__version__}"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '[profiles.a]\nkind = "azure"\nendpoint = "https://x.openai.azure.com"\ntemprature = 1\n',
            "temprature",
        ),
        ("[profiles.a\nkind = 1\n", "line 1"),
        ('[profiles.a]\nkind = "azure"\n', "endpoint"),
        ('[profiles.a]\nkind = "azure"\nendpoint = "https://x"\napi_key = "sk-123"\n', "api_key"),
    ],
)
def test_bad_config_is_explained_without_traceback(
    tmp_path: Path, content: str, expected: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(content, encoding="utf-8")
    result = run("--config", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(config) in result.stderr
    assert expected in result.stderr
    assert "sk-123" not in result.stderr


def test_flags_reach_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class FakeApp:
        return_code = 0
        crash_line = None

        def run(self) -> None:
            seen["ran"] = True

    def fake_make_app(config: Any, **kwargs: Any) -> FakeApp:
        seen["config"] = config
        seen.update(kwargs)
        return FakeApp()

    monkeypatch.setattr("foundry_tui.ui.app.make_app", fake_make_app)
    config = tmp_path / "config.toml"
    config.write_text(
        '[profiles.work]\nkind = "azure"\nendpoint = "https://a.openai.azure.com"\n'
        'deployments = ["gpt-4o"]\n'
        '[profiles.home]\nkind = "compatible"\nendpoint = "http://127.0.0.1:9/v1"\n'
        'auth = "none"\ndeployments = ["local"]\n',
        encoding="utf-8",
    )
    code = cli.main(
        [
            "--config",
            str(config),
            "--profile",
            "work",
            "--model",
            "gpt-4o-mini",
            "--endpoint",
            "https://b.openai.azure.com",
            "--db",
            str(tmp_path / "other.db"),
            "--resume",
            "resp_abc",
        ]
    )
    assert code == 0 and seen["ran"]
    profile = seen["config"].active_profile()
    assert profile.name == "work"
    assert profile.endpoint == "https://b.openai.azure.com"
    assert "gpt-4o-mini" in profile.deployments
    assert profile.defaults.model == "gpt-4o-mini"
    assert seen["config"].db_path == tmp_path / "other.db"
    assert seen["resume"] == "resp_abc"
