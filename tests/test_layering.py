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
    assert "8 kept, 0 broken" in result.stdout


def test_contract_catches_a_widget_doing_http(tmp_path: Path) -> None:
    """The checker itself must fail on a violation, or a green run proves nothing."""
    package = tmp_path / "foundry_tui"
    subprocess.run(["cp", "-r", str(ROOT / "foundry_tui"), str(package)], check=True)
    (package / "ui" / "widgets" / "leaky.py").write_text("import openai\n", encoding="utf-8")
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
    assert "foundry_tui.ui.widgets.leaky -> openai" in result.stdout


def test_starting_the_app_leaves_slow_imports_for_later() -> None:
    code = (
        "import sys, foundry_tui.cli, foundry_tui.ui.app, foundry_tui.ui.screens.chat; "
        "print(sorted(m for m in ('openai', 'azure.identity', 'sqlite_utils', 'httpx2', "
        "'markdown_it', 'pygments') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


FIRST_FRAME_PROBE = """
import asyncio, sys
from pathlib import Path
from foundry_tui.ui.app import FoundryApp, make_app
from foundry_tui.config import Overrides, load_config

seen = {}
original = FoundryApp._warm_up

def probe(self, *args):
    # Runs right after the chat screen's first frame, before the deferred imports.
    seen.update(
        {m: m in sys.modules for m in ("openai", "azure.identity", "markdown_it", "sqlite_utils")}
    )
    original(self, *args)

FoundryApp._warm_up = probe

async def main():
    config_path = Path(sys.argv[1]) / "config.toml"
    config_path.write_text(
        '[profiles.p]\\nkind = "compatible"\\nendpoint = "http://127.0.0.1:9/v1"\\n'
        'auth = "none"\\ndeployments = ["m"]\\n'
    )
    config = load_config(config_path, overrides=Overrides(db=Path(sys.argv[1]) / "h.db"))
    app = make_app(config)
    async with app.run_test() as pilot:
        for _ in range(200):
            if seen:
                break
            await pilot.pause(0.01)
    print(sorted(name for name, loaded in seen.items() if loaded), bool(seen))

asyncio.run(main())
"""


def test_first_frame_comes_before_the_slow_imports(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FIRST_FRAME_PROBE, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[] True"
