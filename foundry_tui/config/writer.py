"""Writing the config file: add or replace one profile, or set one ``[ui]`` value, through
tomlkit, so the rest of the file stays as the user wrote it (comments, blank lines, key
order, quoting, other tables).

Used by the setup screen, ``foundry-tui local install`` and the app when the user picks a
theme; nothing else writes the file. Importing this module imports tomlkit, so the app
imports it only when it writes (start-up and ``load_config`` never do).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Array, InlineTable, Item, String, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from foundry_tui.config import ConfigError, _default_key_env
from foundry_tui.config.toml_lines import tomllib_line
from foundry_tui.core.models import (
    DEFAULT_STREAM_IDLE_SECONDS,
    DEFAULT_STREAM_TOTAL_SECONDS,
    AuthMethod,
    EndpointKind,
    Profile,
)

__all__ = ["write_profile", "write_ui_setting"]

# A table of the document: a [header] table, an inline { } table, or the document itself.
_Table = Table | InlineTable | TOMLDocument
# Profile keys a local profile may have, which `load_config` checks but does not use.
_LOCAL_IGNORES = {
    "auth",
    "api_key_env",
    "scope",
    "allow_plain_http",
    "stream_idle_seconds",
    "stream_total_seconds",
}
# Profile keys written only when they differ from the default, or the file names them already.
_OPTIONAL = {
    "allow_plain_http": False,
    "stream_idle_seconds": DEFAULT_STREAM_IDLE_SECONDS,
    "stream_total_seconds": DEFAULT_STREAM_TOTAL_SECONDS,
}


def write_profile(path: Path, profile: Profile, *, make_default: bool = True) -> None:
    """Add or replace ``[profiles.NAME]`` in the config file, keeping everything else.

    A profile the file has already is edited key by key (a key that keeps its value keeps
    its line and comment); a new one goes after the other profiles. A new directory gets
    mode 0700 and a new file 0600; an existing file keeps its mode. Only the name of the
    key's environment variable is written, never a key.
    """

    def edit(doc: TOMLDocument, data: dict[str, Any]) -> None:
        pieces = _child_tables(doc, "profiles", path)
        holder = next((piece for piece in pieces if profile.name in piece), None)
        old = holder.get(profile.name) if holder is not None else None
        if holder is not None and not isinstance(old, Table | InlineTable):
            # Written with dotted keys (`a.kind = …`): written anew as [profiles.NAME].
            del holder[profile.name]
            old = None
        content = _profile_table(profile, set(old.keys()) if old is not None else None)
        before = data["profiles"].get(profile.name, {}) if old is not None else {}
        if profile.kind is EndpointKind.LOCAL and before.get("kind") == "local":
            # Keys `load_config` checks but ignores for a local profile stay as they are.
            content.update({key: before[key] for key in _LOCAL_IGNORES & set(before)})
        data.setdefault("profiles", {})[profile.name] = content
        if make_default:
            data["default_profile"] = profile.name
            _set_value(doc, "default_profile", profile.name)
        if old is not None:
            _merge(old, content)
        elif not pieces:
            _add_table(doc, "profiles", _new_table({profile.name: content}, super_table=True))
        else:
            _add_profile(doc, pieces[-1], profile.name, content)

    _rewrite(path, edit)


def write_ui_setting(path: Path, key: str, value: str | bool) -> None:
    """Set ``key = value`` in the file's ``[ui]`` table, keeping everything else.

    The line that sets it already gets the new value (its comment and spacing kept);
    otherwise the key goes after the last one of ``[ui]``, or a ``[ui]`` table at the end
    of the file.
    """

    def edit(doc: TOMLDocument, data: dict[str, Any]) -> None:
        data.setdefault("ui", {})[key] = value
        pieces = _child_tables(doc, "ui", path)
        if not pieces:
            _add_table(doc, "ui", _new_table({key: value}))
        else:
            holder = next((piece for piece in pieces if key in piece), pieces[-1])
            _set_value(holder, key, value)

    _rewrite(path, edit)


# --------------------------------------------------------------------------- the file


def _rewrite(path: Path, edit: Callable[[TOMLDocument, dict[str, Any]], None]) -> None:
    """Read, edit and replace the file under a lock; refuse (file untouched) when it does
    not parse, or when the edited text would not read back as exactly the intended data."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path  # keep a dotfile link
    directory = target.parent
    try:
        directory.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        pass
    else:
        directory.chmod(0o700)  # mkdir's mode is masked by the umask
    with _locked(directory):
        text = _read(target)
        data = _parsed(text, target)
        try:
            doc = tomlkit.parse(text)
        except TOMLKitError as exc:
            line = getattr(exc, "line", None)
            raise ConfigError(
                f"cannot be edited, so not rewritten: {exc}", path=target, line=line
            ) from exc
        edit(doc, data)
        new_text = doc.as_string()
        try:
            written = tomllib.loads(new_text)
        except tomllib.TOMLDecodeError:
            written = None
        if written != data:
            raise ConfigError(
                "its layout could not be edited without changing other settings, so it was "
                "not rewritten; make the change by hand",
                path=target,
            )
        _replace_file(target, new_text)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text, so not rewritten ({exc})", path=path) from exc


def _parsed(text: str, path: Path) -> dict[str, Any]:
    """The file as `load_config` reads it (the same parser, the same line numbers)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"not valid TOML, so not rewritten: {exc}", path=path, line=tomllib_line(str(exc))
        ) from exc
    except RecursionError:
        raise ConfigError(
            "not valid TOML (nested too deeply), so not rewritten", path=path
        ) from None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialises writers (the app saving a theme while `local install` adds a profile),
    so neither loses the other's change. Best effort: where the folder cannot be locked,
    each write is still atomic."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _replace_file(path: Path, new_text: str) -> None:
    """Replaces the file at once (a crash leaves the old or the new one, never half of
    one), with the old file's mode, or 0600 for a new file."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp_name, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(new_text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Makes the rename itself durable (POSIX; elsewhere the rename is all there is)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- the profile


def _profile_table(profile: Profile, explicit: set[str] | None) -> dict[str, Any]:
    """What `load_config` reads back as `profile`. `explicit` names the keys the file's
    table has already (None: a new table): a key left out there that would be read as
    the same value stays left out, and an optional key the user wrote stays."""
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
        implicit: dict[str, object] = {
            "auth": AuthMethod.API_KEY.value,
            "api_key_env": _default_key_env(profile.kind),
            "deployments": [],
            "endpoint": "",
        }
        if explicit is not None:
            for key, default in implicit.items():
                if key not in explicit and _same(default, table[key]):
                    del table[key]
        for key, default in _OPTIONAL.items():
            value = getattr(profile, key)
            if value != default or key in (explicit or ()):
                table[key] = value
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
        for key in ("reasoning_effort", "reasoning_summary", "verbosity"):
            if (value := getattr(d, key)) is not None:
                defaults[key] = str(value)
        table["defaults"] = defaults
    return table


def _add_profile(
    doc: TOMLDocument, profiles: Table | InlineTable, name: str, content: Mapping[str, Any]
) -> None:
    """A new ``[profiles.NAME]`` after the other profiles, a blank line either side."""
    if isinstance(profiles, InlineTable):
        profiles[name] = _new_inline(content)
        return
    table = _new_table(content)
    # Comments and blank lines at the end of the last profile lead into what follows it
    # (a comment above [keymap]): they move to the end of the new profile.
    trailer = _pop_trailer(_last_table(profiles))
    _insert(profiles, name, table)
    end = _last_table(table)
    for item in trailer:
        end.value.append(None, item)
    if not trailer and _followed_by_more(doc, profiles):
        end.add(tomlkit.nl())


def _last_table(table: Table) -> Table:
    """The table whose body the file shows last of `table` (a sub-table of a sub-table…)."""
    while (body := table.value.body) and isinstance(body[-1][1], Table):
        table = body[-1][1]
    return table


def _pop_trailer(table: Table) -> list[Item]:
    """Take the blank lines and comments off the end of the table's body, from the first
    blank line on: a comment right under the last key (`# allow_plain_http = true`) stays
    with its table."""
    body = table.value.body
    start = len(body)
    while start and body[start - 1][0] is None and not isinstance(body[start - 1][1], Table | AoT):
        start -= 1
    tail = [item for _key, item in body[start:]]
    blank = next((index for index, item in enumerate(tail) if isinstance(item, Whitespace)), 0)
    del body[start + blank :]
    return tail[blank:]


def _followed_by_more(doc: TOMLDocument, table: _Table) -> bool:
    """Whether anything but blank lines comes after `table` in the file."""
    body = doc.body
    for index, (_key, item) in enumerate(body):
        if item is table:
            rest = body[index + 1 :]
            return bool(rest) and not isinstance(rest[0][1], Whitespace)
    return False


# --------------------------------------------------------------------------- tomlkit edits


def _child_tables(doc: TOMLDocument, key: str, path: Path) -> list[Table | InlineTable]:
    """The top-level table `key`: its pieces, when the file writes it in several places
    (``[profiles.a]``, ``[ui]``, ``[profiles.b]``); [] when there is none."""
    if key not in doc:
        return []
    pieces = [item for k, item in doc.body if k is not None and k.key == key]
    if not pieces or not all(isinstance(piece, Table | InlineTable) for piece in pieces):
        raise ConfigError(f"'{key}' is not a table, so not rewritten", path=path, key=key)
    return pieces  # type: ignore[return-value]  # checked just above


def _merge(table: Table | InlineTable, content: Mapping[str, Any]) -> None:
    """Make `table` hold exactly `content`, touching only the keys whose value changes."""
    for key in [k for k in table if k not in content]:
        del table[key]
    for key, value in content.items():
        old = table.get(key)
        if isinstance(value, dict) and isinstance(old, Table | InlineTable):
            _merge(old, value)
        elif isinstance(value, dict):
            sub = _new_inline(value) if isinstance(table, InlineTable) else _new_table(value)
            if old is not None:
                del table[key]
            _insert(table, key, sub)
        else:
            _set_value(table, key, value)


def _set_value(table: _Table, key: str, value: Any) -> None:
    """Set one plain value: unchanged, the line stays as it is; changed, the value is
    replaced in its line (indent and comment kept); new, it goes after the table's last
    key."""
    if key not in table:
        _insert(table, key, _new_item(value, None))
        return
    old = table[key]
    if _same(old.unwrap() if isinstance(old, Item) else old, value):
        return
    table[key] = _new_item(value, old)


def _insert(table: _Table, key: str, item: Item) -> None:
    """After the table's last key (before its trailing comments and blank lines, and
    before its sub-tables when `item` is a plain value), indented like its neighbours."""
    if isinstance(table, InlineTable):
        _insert_inline(table, key, item)
        return
    container = table if isinstance(table, TOMLDocument) else table.value
    body = container.body
    is_table = isinstance(item, Table | AoT)
    position = 0
    for index, (k, v) in enumerate(body):
        if k is None:
            continue
        if not is_table and isinstance(v, Table | AoT) and not k.is_dotted():
            break
        position = index + 1
    if not is_table and position:
        previous = body[position - 1][1]
        if not isinstance(previous, Table | AoT):
            item.trivia.indent = previous.trivia.indent
    if position < len(body) and (insert_at := _insert_at(container)) is not None:
        following = body[position][1]
        if is_table and position and not isinstance(body[position - 1][1], Whitespace):
            item.trivia.indent = "\n"
        elif not is_table and isinstance(following, Table) and "\n" not in following.trivia.indent:
            following.trivia.indent = "\n" + following.trivia.indent  # a blank line before it
        insert_at(position, key, item)
    else:
        container.append(key, item)


def _insert_inline(table: InlineTable, key: str, item: Item) -> None:
    """At the end of ``{ … }``, before the space that closes it."""
    container = table.value
    body = container.body
    if any(k is not None for k, _ in body):
        item.trivia.indent = " "
    position = len(body)
    while position and body[position - 1][0] is None:
        last = body[position - 1][1]
        if not isinstance(last, Whitespace) or "," in last.as_string():
            break
        position -= 1
    if position < len(body) and (insert_at := _insert_at(container)) is not None:
        insert_at(position, key, item)
    else:
        table[key] = item


def _insert_at(container: Container) -> Callable[[int, str, Item], object] | None:
    """tomlkit's own insertion at a position. Its public ``add`` puts a key after a
    table's trailing comments and blank lines (the comment above the next table); where a
    tomlkit release drops this, keys go there, which reads back the same."""
    insert_at: Callable[[int, str, Item], object] | None = getattr(container, "_insert_at", None)
    return insert_at


def _add_table(doc: TOMLDocument, key: str, table: Table) -> None:
    """A new top-level table at the end of the file, after one blank line."""
    text = doc.as_string()
    if text.strip() and not text.endswith("\n\n"):
        table.trivia.indent = "\n" if text.endswith("\n") else "\n\n"
    doc.append(key, table)


def _new_table(content: Mapping[str, Any], *, super_table: bool = False) -> Table:
    table = tomlkit.table(is_super_table=super_table)
    for key, value in content.items():
        table.append(key, _new_table(value) if isinstance(value, dict) else _new_item(value, None))
    return table


def _new_inline(content: Mapping[str, Any]) -> InlineTable:
    table = tomlkit.inline_table()
    for key, value in content.items():
        table.append(key, _new_inline(value) if isinstance(value, dict) else _new_item(value, None))
    return table


def _new_item(value: Any, old: object) -> Item:
    """`value` as an item, in the old item's style where it can be (a 'literal' string
    stays literal, an array written over several lines stays so)."""
    shown = old.as_string() if isinstance(old, String) else ""
    literal = shown.startswith("'") and not shown.startswith("'''")
    if isinstance(value, str) and literal and _literal_ok(value):
        return tomlkit.string(value, literal=True)
    if isinstance(value, list) and isinstance(old, Array) and "\n" in old.as_string():
        array = tomlkit.array()
        array.extend(value)
        array.multiline(True)
        return array
    item: Item = tomlkit.item(value)
    return item


def _literal_ok(value: str) -> bool:
    return not any(ch == "'" or ch == "\x7f" or (ord(ch) < 0x20 and ch != "\t") for ch in value)


def _same(old: object, new: object) -> bool:
    """Equal as `load_config` reads them (an integer and the same float are the same)."""
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new) and old == new
    if isinstance(old, int | float) and isinstance(new, int | float):
        return old == new
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    return type(old) is type(new) and old == new
