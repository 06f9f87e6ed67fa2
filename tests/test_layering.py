"""The layering rules hold, and start-up stays free of the slow imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_contract_catches_a_widget_doing_http(tmp_path: Path) -> None:
    """The checker itself must fail on a violation, or a green run proves nothing."""
    package = tmp_path / "foundry_tui"
    subprocess.run(["cp", "-r", str(ROOT / "foundry_tui"), str(package)], check=True)
    (package / "widgets" / "leaky.py").write_text("import openai\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        (ROOT / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "foundry_tui.widgets.leaky -> openai" in result.stdout


def test_starting_the_app_leaves_slow_imports_for_later() -> None:
    code = (
        "import sys, foundry_tui.cli, foundry_tui.app; "
        "print(sorted(m for m in ('openai', 'azure.identity', 'sqlite_utils', 'httpx2') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
