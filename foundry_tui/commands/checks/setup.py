"""The config file, the active profile and the shape of its endpoint URL: no network."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

from foundry_tui.commands.checks import CheckResult, Context, Status, fail, passed, warn
from foundry_tui.config import ConfigError, Overrides, default_config_path, load_config
from foundry_tui.config.endpoints import (
    AZURE_SCOPE,
    FOUNDRY_SCOPE,
    base_url_for,
    parse_endpoint_kind,
)
from foundry_tui.core.guards import key_problem
from foundry_tui.core.models import AuthMethod, EndpointKind, Profile

__all__ = ["KIND_LABELS", "SETUP_HINT", "check_config", "check_endpoint", "check_profile"]

SETUP_HINT = (
    "Run foundry-tui: its setup screen writes the file. Or set AZURE_OPENAI_ENDPOINT "
    "(with AZURE_OPENAI_API_KEY, or sign in with az login), or OPENAI_API_KEY."
)
KIND_LABELS = {
    EndpointKind.AZURE_OPENAI: "Azure OpenAI resource",
    EndpointKind.FOUNDRY_PROJECT: "Foundry project",
    EndpointKind.OPENAI: "OpenAI",
    EndpointKind.COMPATIBLE: "OpenAI-compatible server",
    EndpointKind.LOCAL: "local model",
}
# The ends of an operation's URL, pasted where the base URL belongs.
_OPERATIONS = ("/responses", "/chat/completions", "/completions", "/embeddings")


# Loader errors that are about one flag or variable, not the file: reported by the check
# they belong to, and the file loaded without that input for the checks after it.
_DEFERRED = {
    "profile": "profile",
    "FOUNDRY_TUI_PROFILE": "profile",
    "--db": "database",
    "FOUNDRY_TUI_DB": "database",
}


async def check_config(ctx: Context) -> list[CheckResult]:
    """Found, parses, valid: the loader the TUI uses, with its words."""
    env = dict(ctx.seams.env)
    options = ctx.options
    try:
        path = options.config or default_config_path(env)
    except ConfigError as error:
        return [fail("config", "config", str(error), _config_fix(error))]
    overrides = Overrides(profile=options.profile, db=options.db)
    left_out: set[str] = set()
    while ctx.config is None:
        try:
            ctx.config = load_config(path, env=env, overrides=overrides)
        except ConfigError as error:
            owner = _DEFERRED.get(error.key or "")
            if owner is None and error.key and key_problem(env.get(error.key, "").strip()):
                owner = "auth"  # a key that cannot be sent: the auth check says why
            if owner is None or error.key in left_out:
                return [fail("config", "config", str(error), _config_fix(error))]
            left_out.add(str(error.key))
            ctx.deferred.setdefault(owner, error)
            if error.key == "profile":
                overrides = dataclasses.replace(overrides, profile=None)
            elif error.key == "--db":
                overrides = dataclasses.replace(overrides, db=None)
            else:
                env.pop(str(error.key), None)
    config = ctx.config
    if path.is_file():
        count = len([p for p in config.profiles.values() if p.name != "env"])
        return [passed("config", "config", f"{path} ({_plural(count, 'profile')})")]
    if config.active_profile() is not None:
        return [
            passed("config", "config", f"no file at {path}; the profile comes from the environment")
        ]
    return [warn("config", "config", f"no config file at {path}", SETUP_HINT)]


def _config_fix(error: ConfigError) -> str:
    where = f" at line {error.line}" if error.line is not None else ""
    if error.key is not None and (error.key.isupper() or error.key.startswith("--")):
        return f"Fix {error.key} as the message says, or unset it."
    return (
        f"Edit {error.path}{where} as the message says (the README's Configuration section "
        "shows every key), or move the file aside and run foundry-tui to set up again."
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


async def check_profile(ctx: Context) -> list[CheckResult]:
    """Which profile is active, and why that one."""
    config = ctx.config
    assert config is not None
    known = ", ".join(sorted(config.profiles)) or "none"
    unknown = ctx.deferred.get("profile")
    if unknown is not None:
        return [
            fail(
                "profile",
                "profile",
                unknown.problem,
                f"Pick one of the profiles ({known}) with --profile NAME or FOUNDRY_TUI_PROFILE, "
                f"or add that profile to {config.path}."
                if config.profiles
                else f"There is no profile yet: run foundry-tui to set one up, or add a "
                f"[profiles.NAME] table to {config.path}.",
            )
        ]
    profile = config.active_profile()
    if profile is None and not config.profiles:
        return [
            warn(
                "profile",
                "profile",
                "no profile is set up",
                f"Add a [profiles.NAME] table to {config.path}, or run foundry-tui to set one up.",
            )
        ]
    if profile is None:
        return [
            warn(
                "profile",
                "profile",
                f"several profiles ({known}) and none chosen: foundry-tui opens its setup screen",
                f'Set default_profile = "NAME" in {config.path}, or pass --profile NAME.',
            )
        ]
    ctx.profile = profile
    if profile.auth is AuthMethod.API_KEY:
        auth = f"key from ${profile.api_key_env}"
    elif profile.auth is AuthMethod.ENTRA_ID:
        auth = "Entra ID"
    else:
        auth = "no key"
    model = profile.defaults.model if profile.defaults is not None else ""
    model = model or (profile.deployments[0] if profile.deployments else "")
    about = f"{profile.kind.value}, {auth}" + (f", model {model}" if model else "")
    return [passed("profile", "profile", f"'{profile.name}' ({about}; {_why(ctx, profile)})")]


def _why(ctx: Context, profile: Profile) -> str:
    config = ctx.config
    assert config is not None
    if ctx.options.profile is not None:
        return "--profile"
    if ctx.seams.env.get("FOUNDRY_TUI_PROFILE", "").strip():
        return "FOUNDRY_TUI_PROFILE"
    if profile.name == "env":
        if ctx.seams.env.get("AZURE_OPENAI_ENDPOINT", "").strip():
            return "from AZURE_OPENAI_ENDPOINT"
        if ctx.seams.env.get("OPENAI_BASE_URL", "").strip():
            return "from OPENAI_BASE_URL"
        return "from OPENAI_API_KEY"
    if config.default_profile == profile.name:
        return "default_profile"
    return "the only profile"


async def check_endpoint(ctx: Context) -> list[CheckResult]:
    """The URL's shape: Azure OpenAI resource, Foundry project or a /v1 base, and the
    mistakes a pasted URL brings (an operation's path, an api-version)."""
    profile = ctx.profile
    if profile is None or profile.kind is EndpointKind.LOCAL:
        return []
    base = base_url_for(profile)
    label = KIND_LABELS[profile.kind]
    try:
        parts = urlsplit(profile.endpoint.strip() or base)
        base_parts = urlsplit(base)
        _ports = (parts.port, base_parts.port)  # a port that is not a number: ValueError
    except ValueError as error:
        return [
            fail(
                "endpoint",
                "endpoint",
                f"{profile.endpoint!r} is not a usable URL ({error})",
                "Set the endpoint to https://HOST[:PORT][/PATH], as the portal or provider shows it.",
            )
        ]
    failures: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    if base_parts.scheme not in ("http", "https") or not base_parts.hostname:
        failures.append(
            (
                f"{base} is not an http(s) URL with a host",
                "Set the endpoint to https://HOST[:PORT][/PATH].",
            )
        )
    query = parse_qs(parts.query)
    path = parts.path.rstrip("/")
    azure = profile.kind in (EndpointKind.AZURE_OPENAI, EndpointKind.FOUNDRY_PROJECT)
    if azure:
        if "api-version" in query:
            warnings.append(
                (
                    f"the endpoint's api-version={query['api-version'][0]} is ignored: the v1 API "
                    f"({base}) takes none",
                    "Remove ?api-version=... from the endpoint; foundry-tui uses the v1 API.",
                )
            )
        extra = _extra_path(profile.kind, path)
        if extra:
            warnings.append(
                (
                    f"the path {extra} is ignored: requests go to {base}",
                    "Set the endpoint to the resource or project URL alone "
                    "(Azure portal → Keys and Endpoint, or the Foundry project's overview).",
                )
            )
    else:
        if parts.query:
            failures.append(
                (
                    f"the base URL carries a query ({parts.query}): requests would go to "
                    f"{base}/responses with it in the middle",
                    "Remove everything from the ? on; an OpenAI-compatible base URL takes no "
                    "api-version.",
                )
            )
        if path.endswith(_OPERATIONS):
            operation = next(op for op in _OPERATIONS if path.endswith(op))
            failures.append(
                (
                    f"the endpoint is an operation's URL (it ends in {operation}): requests "
                    f"would go to {base}/responses",
                    f"Set the endpoint to the base URL, without {operation} "
                    "(for most servers it ends in /v1).",
                )
            )
        guessed = parse_endpoint_kind(profile.endpoint)
        if guessed in (EndpointKind.AZURE_OPENAI, EndpointKind.FOUNDRY_PROJECT) and (
            "/openai/v1" not in path
        ):
            failures.append(
                (
                    f"the host is an {KIND_LABELS[guessed]}, but the profile's kind is "
                    f"'{profile.kind.value}': requests go to {base}, without /openai/v1",
                    f'Set kind = "{guessed.value}" in the profile (or remove kind: it is '
                    "guessed from the URL).",
                )
            )
    warnings += _scope_mismatch(profile)
    detail = f"{label}: requests go to {base}"
    if failures:
        return [_combined(Status.FAIL, failures)]
    if warnings:
        return [_combined(Status.WARN, warnings, prefix=f"{label}; ")]
    return [passed("endpoint", "endpoint", detail)]


def _extra_path(kind: EndpointKind, path: str) -> str:
    """The part of an Azure endpoint's path that base_url_for drops, if any."""
    if kind is EndpointKind.FOUNDRY_PROJECT:
        head, _, rest = path.partition("/api/projects/")
        _project, _, tail = rest.partition("/")
        tail = "/" + tail if tail else ""
        return "" if tail in ("", "/openai", "/openai/v1") and not head else f"{head}{tail}"
    return "" if path in ("", "/openai", "/openai/v1") else path


def _scope_mismatch(profile: Profile) -> list[tuple[str, str]]:
    if profile.auth is not AuthMethod.ENTRA_ID or not profile.scope:
        return []
    wanted = FOUNDRY_SCOPE if profile.kind is EndpointKind.FOUNDRY_PROJECT else AZURE_SCOPE
    if profile.kind not in (EndpointKind.AZURE_OPENAI, EndpointKind.FOUNDRY_PROJECT):
        return []
    if profile.scope.rstrip("/") == wanted.rstrip("/"):
        return []
    other = AZURE_SCOPE if wanted == FOUNDRY_SCOPE else FOUNDRY_SCOPE
    if profile.scope.rstrip("/") != other.rstrip("/"):
        return []  # a sovereign cloud's scope: not ours to judge
    return [
        (
            f"the profile's scope {profile.scope} is for the other kind of endpoint "
            f"({KIND_LABELS[profile.kind]} tokens are for {wanted})",
            f'Set scope = "{wanted}" in the profile, or remove scope.',
        )
    ]


def _combined(status: Status, findings: list[tuple[str, str]], prefix: str = "") -> CheckResult:
    detail = prefix + "; ".join(what for what, _fix in findings)
    fix = "\n".join(dict.fromkeys(fix for _what, fix in findings))
    return dataclasses.replace(fail("endpoint", "endpoint", detail, fix), status=status)
