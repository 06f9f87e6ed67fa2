"""Deterministic waits and shared builders for the Pilot tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from foundry_tui.config import AppConfig, Overrides, load_config

TEST_KEY = "sk-test-0123456789abcdef"
KEY_VARIABLE = "FOUNDRY_TEST_KEY"


async def wait_until(
    pilot: Pilot[object], predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = ""
) -> None:
    """Lets the app run until ``predicate()`` holds; fails with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.01)
        await asyncio.sleep(0)


def write_config(
    directory: Path,
    base_url: str,
    *,
    deployments: tuple[str, ...] = ("gpt-4o", "gpt-4o-mini", "o4-mini"),
    instructions: str = "Answer briefly.",
    sidebar: bool = True,
    db: Path | None = None,
) -> AppConfig:
    """A config file with one profile pointed at the local server, loaded like the CLI does."""
    path = directory / "config.toml"
    listed = ", ".join(f'"{name}"' for name in deployments)
    path.write_text(
        f"""default_profile = "local"

[profiles.local]
kind = "compatible"
endpoint = "{base_url}"
auth = "api_key"
api_key_env = "{KEY_VARIABLE}"
deployments = [{listed}]

[profiles.local.defaults]
model = "{deployments[0]}"
instructions = "{instructions}"

[ui]
sidebar = {"true" if sidebar else "false"}
""",
        encoding="utf-8",
    )
    return load_config(path, overrides=Overrides(db=db or directory / "history.db"))
