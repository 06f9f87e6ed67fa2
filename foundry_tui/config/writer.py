"""Writing the config file: add or replace one profile, or set one ``[ui]`` value,
keeping everything else (comments too).

Used by the setup screen, ``foundry-tui local install`` and the app when the user picks a
theme; nothing else writes the file.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from foundry_tui.config import ConfigError
from foundry_tui.config.toml_lines import HEADER_RE, LineFinder, table_name, tomllib_line
from foundry_tui.core.models import EndpointKind, Profile

__all__ = ["write_profile", "write_ui_setting"]


def _toml_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _profile_table(profile: Profile) -> dict[str, Any]:
    table: dict[str, Any]
    if profile.kind is EndpointKind.LOCAL:  # no key to name: the app makes one
        table = {"kind": profile.kind.value}
        if profile.endpoint:
            table["endpoint"] = profile.endpoint
        table["deployments"] = list(profile.deployments)
    else:
        table = {
            "kind": profile.kind.value,
            "endpoint": profile.endpoint,
            "auth": profile.auth.value,
            "api_key_env": profile.api_key_env,
            "deployments": list(profile.deployments),
        }
    if profile.scope:
        table["scope"] = profile.scope
    if profile.defaults is not None:
        d = profile.defaults
        defaults: dict[str, Any] = {}
        if d.model:
            defaults["model"] = d.model
        if d.instructions is not None:
            defaults["instructions"] = d.instructions
        if d.temperature is not None:
            defaults["temperature"] = float(d.temperature)
        if d.top_p is not None:
            defaults["top_p"] = float(d.top_p)
        if d.max_output_tokens is not None:
            defaults["max_output_tokens"] = int(d.max_output_tokens)
        table["defaults"] = defaults
    return table


def _profile_text(profile: Profile) -> str:
    table = _profile_table(profile)
    defaults = table.pop("defaults", None)
    header = table_name(("profiles", profile.name))
    lines = [f"[{header}]"]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    if defaults is not None:
        lines += ["", f"[{header}.defaults]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in defaults.items()]
    return "\n".join(lines) + "\n"


def _dump(data: Mapping[str, Any]) -> str:
    """Serialise a whole config (used when the file cannot be edited in place)."""
    lines: list[str] = []
    tables: list[tuple[tuple[str, ...], Mapping[str, Any]]] = []

    def walk(prefix: tuple[str, ...], table: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        tables.append((prefix, scalars))
        for k, v in table.items():
            if isinstance(v, dict):
                walk((*prefix, k), v)

    walk((), data)
    for prefix, scalars in tables:
        if (
            prefix
            and not scalars
            and any(p[: len(prefix)] == prefix and len(p) > len(prefix) for p, _ in tables)
        ):
            continue
        if prefix:
            lines += ["", f"[{table_name(prefix)}]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _edit_in_place(text: str, profile: Profile, make_default: bool) -> str:
    """Replace the profile's tables in `text`, keeping everything else (and comments)."""
    finder = LineFinder(text)
    lines = finder.lines
    drop: set[int] = set()
    own = ("profiles", profile.name)
    for parts, start, end in finder.sections:
        if parts and parts[:2] == own:
            drop.update(range(start, end))
    kept = [line for index, line in enumerate(lines) if index not in drop]
    while kept and not kept[-1].strip():
        kept.pop()
    if make_default:
        first_header = next(
            (index for index, line in enumerate(kept) if HEADER_RE.match(line)), len(kept)
        )
        setting = f"default_profile = {_toml_string(profile.name)}"
        for index in range(first_header):
            if re.match(r"\s*default_profile\s*=", kept[index]):
                kept[index] = setting
                break
        else:
            kept.insert(0, setting)
            if len(kept) > 1 and kept[1].strip():
                kept.insert(1, "")
    body = "\n".join(kept)
    return (body + "\n\n" if body.strip() else "") + _profile_text(profile)


def write_profile(path: Path, profile: Profile, *, make_default: bool = True) -> None:
    """Add or replace ``[profiles.NAME]`` in the config file, keeping everything else.

    The directory is created with mode 0700 and the file written with mode 0600. Only the
    name of the key's environment variable is written, never a key.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    data = _parsed(text, path)
    expected = dict(data)
    expected_profiles = dict(expected.get("profiles", {}))
    expected_profiles[profile.name] = _profile_table(profile)
    expected["profiles"] = expected_profiles
    if make_default:
        expected["default_profile"] = profile.name

    new_text = _edit_in_place(text, profile, make_default)
    if not _reads_as(new_text, expected):  # written in a form we cannot edit line by line
        new_text = _dump(expected)
    _write_file(path, new_text)


def write_ui_setting(path: Path, key: str, value: str | bool) -> None:
    """Set ``key = value`` in the file's ``[ui]`` table, keeping everything else.

    The line that sets it already is replaced (its comment kept); otherwise the line is
    added at the end of ``[ui]``, or a ``[ui]`` table at the end of the file.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    data = _parsed(text, path)
    expected = dict(data)
    expected["ui"] = {**expected.get("ui", {}), key: value}
    new_text = _set_in_table(text, ("ui",), key, value)
    if not _reads_as(new_text, expected):  # e.g. `ui = { … }` inline: written anew
        new_text = _dump(expected)
    _write_file(path, new_text)


def _parsed(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"not valid TOML, so not rewritten: {exc}", path=path, line=tomllib_line(str(exc))
        ) from exc


def _reads_as(text: str, expected: Mapping[str, Any]) -> bool:
    try:
        return tomllib.loads(text) == expected
    except tomllib.TOMLDecodeError:
        return False


def _set_in_table(text: str, table: tuple[str, ...], key: str, value: object) -> str:
    finder = LineFinder(text)
    lines = list(finder.lines)
    setting = f"{_toml_key(key)} = {_toml_value(value)}"
    section = next(((start, end) for parts, start, end in finder.sections if parts == table), None)
    if section is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += [*([""] if lines else []), f"[{table_name(table)}]", setting]
        return "\n".join(lines) + "\n"
    start, end = section
    key_re = re.compile(rf"\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=")
    for index in range(start + 1, end):
        if key_re.match(lines[index]):
            lines[index] = setting + _comment_of(lines[index])
            return "\n".join(lines) + "\n"
    last = start
    for index in range(start + 1, end):
        stripped = lines[index].strip()
        if stripped and not stripped.startswith("#"):
            last = index
    lines.insert(last + 1, setting)
    return "\n".join(lines) + "\n"


def _comment_of(line: str) -> str:
    """The comment after a one-line `key = value` (with the space before it), or ""."""
    for index, char in enumerate(line):
        if char != "#":
            continue
        try:
            tomllib.loads(line[:index])
        except tomllib.TOMLDecodeError:
            continue  # a "#" inside the value
        return "  " + line[index:]
    return ""


def _write_file(path: Path, new_text: str) -> None:
    """Replaces the file at once (a crash leaves the old or the new one, never half)."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        directory.chmod(0o700)
    fd, tmp_name = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new_text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
