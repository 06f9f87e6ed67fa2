"""The repository is self-contained: the tests need nothing beside the clone, and CI runs
the README's test command as written."""

from __future__ import annotations

import re
from pathlib import Path

from tests.responses_server import SCHEMA_PATH, load_validator

ROOT = Path(__file__).resolve().parents[1]


def project_files() -> list[Path]:
    """The repository's own files: not .git, .venv, caches or build output."""
    return [
        path
        for path in ROOT.rglob("*")
        if path.is_file()
        and not any(
            (part.startswith(".") and part != ".ci")
            or part == "__pycache__"
            or part.endswith(".egg-info")
            for part in path.relative_to(ROOT).parts
        )
    ]


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run the tests", 1)[1].split("\n## ", 1)[0]
    [command] = re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL)[:1]
    return command


def test_the_schema_is_in_the_repository_with_its_licence() -> None:
    assert SCHEMA_PATH.is_relative_to(ROOT / "tests" / "schema")
    assert {SCHEMA_PATH, SCHEMA_PATH.with_name("LICENSE-openapi.txt")} <= set(project_files())
    assert "MIT" in SCHEMA_PATH.with_name("LICENSE-openapi.txt").read_text(encoding="utf-8")
    assert load_validator().event_schemas["response.output_text.delta"]


def test_nothing_reaches_outside_the_clone() -> None:
    outside = re.compile(r"\.\./shared|/work/|shared/responses-api")
    offenders = [
        str(path.relative_to(ROOT))
        for path in project_files()
        if path.suffix in {".py", ".toml", ".md", ".tcss", ".txt", ""}
        and path != Path(__file__)
        and outside.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert offenders == []


def test_ci_runs_the_readme_test_command_verbatim_in_a_clean_copy() -> None:
    command = readme_test_command()
    assert command.endswith("python -m pytest")
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in script.splitlines()
    # ...from a fresh clone in a temporary directory, with an empty HOME.
    assert "mktemp -d" in script and "git clone" in script and 'export HOME="$home"' in script
