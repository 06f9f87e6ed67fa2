"""The benchmark keeps working: `benchmarks/run.py --quick` measures every figure.

This checks the benchmark, not the app's speed: no target is asserted here (timing in unit
tests is flaky by nature). The full run is `python benchmarks/run.py`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"

pytestmark = pytest.mark.benchmark  # off by default: `python -m pytest -m benchmark`

FIGURES = {
    "cold_start.prompt",
    "cold_start.accepts_keys",
    "first_token.latency",
    "streaming.last_token_latency",
    "streaming.cpu_ratio",
    "streaming.cpu_at_50tps",
    "reasoning.last_token_latency",
    "reasoning.cpu_ratio",
    "typing.key_latency",
    "long_conversation.latest_visible",
    "long_conversation.scroll_stall",
    "long_conversation.rss_increase",
    "big_history.list_visible",
    "big_history.search_keystroke",
    "big_history.rss",
    "local.app_overhead",
    "local.first_token",
    "local.follow_up",
    "limits.huge_reply_stall",
    "limits.huge_reply_reopen_stall",
    "limits.models_100k_stall",
    "limits.paste_5mb_shown",
    "limits.paste_5mb_send_stall",
    "cli.ask_first_token",
    "cli.history_json",
    "branches.open",
    "branches.switch",
}
# Figures that can rightly be below zero (the app's run was faster than the reference).
SIGNED = {"local.app_overhead"}


def test_quick_benchmark_measures_every_figure(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "foundry-tui"
    assert executable.exists(), "foundry-tui must be installed (pip install -e '.[test]')"
    out = tmp_path / "results.json"
    try:
        result = subprocess.run(
            [sys.executable, str(RUN), "--quick", "--json", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the quick benchmark took over 240 s:\n{exc.stdout}\n{exc.stderr}")
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout[-6000:]}\n"
        f"stderr:\n{result.stderr[-6000:]}"
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["meta"]["mode"] == "quick"
    figures = data["figures"]
    assert set(figures) == FIGURES
    for key, figure in figures.items():
        assert figure["error"] is None, (key, figure["error"])
        for stat in ("median", "max", "target"):
            value = figure[stat]
            assert isinstance(value, int | float) and math.isfinite(value), (key, stat, value)
        assert figure["max"] >= figure["median"], (key, figure)
        assert key in SIGNED or figure["median"] >= 0, (key, figure)
        assert figure["runs"] >= 1 and len(figure["samples"]) == figure["runs"], key
        assert isinstance(figure["pass"], bool), (key, figure["pass"])
    # The table is printed too, one row per figure.
    assert "figure" in result.stdout and "target" in result.stdout
