"""The request a send makes, written as code to run elsewhere (the palette's "View code").

Pure and headless: from the body of ``POST /responses`` (backend/request.create_body,
whatever keys it holds) and a `RequestTarget` (where it goes, how it authenticates), it
writes a Python script using the openai SDK and a curl command. Neither ever holds a key:
a key is read from its environment variable by name, an Entra ID token is asked of
azure.identity or the Azure CLI.

Untrusted text (a prompt, a reply replayed, instructions, a file name) is written as an
escaped string literal: JSON's escapes (which Python shares), plus every character that is
not printable (controls, bidi overrides, invisible tags), so it can neither end its literal
nor hide in what is shown. In curl the JSON sits in single quotes (each ``'`` in it
written ``'\\''``), where the shell expands nothing.

An attachment's base64 data URL is written as a read of its file (`data_url(...)` in
Python, ``base64 < FILE`` piped into curl), in the shown code and the copied code alike: a
20 MB literal is useless on a clipboard and unreadable on screen, and the file read gives
the same bytes. A string longer than SHOWN_STRING_LIMIT is cut in the shown code only,
with a note; the copied code has it whole.
"""

from __future__ import annotations

import json
import keyword
import re
import shlex
from dataclasses import dataclass
from typing import Final

from foundry_tui.core.models import AuthMethod

__all__ = [
    "ARGUMENT_LIMIT",
    "DATA_URL_MIN",
    "SHOWN_STRING_LIMIT",
    "RequestCode",
    "RequestTarget",
    "curl_command",
    "python_code",
    "write_code",
]

# Strings longer than this are cut in the shown code (kept whole in the copied code).
SHOWN_STRING_LIMIT: Final = 2_000
# A data URL at least this long is written as a read of its file.
DATA_URL_MIN: Final = 256
# What the SDK needs as a key when the server wants none (the app sends the same).
NO_KEY: Final = "unused"
# The longest body given to curl as an argument (Linux's MAX_ARG_STRLEN is 128 KiB).
ARGUMENT_LIMIT: Final = 100_000

_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,")
_SUFFIXES: Final = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
}
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class RequestTarget:
    """Where a request goes and how it authenticates; never a key's value."""

    base_url: str
    auth: AuthMethod
    key_env: str = ""  # api_key: the environment variable that holds the key
    scope: str = ""  # entra_id: the token's scope
    what: str = "an OpenAI-compatible server"  # said in the first comment
    notes: tuple[str, ...] = ()  # more comment lines (our own words, never untrusted text)


@dataclass(frozen=True)
class RequestCode:
    """The request as code: ``*_shown`` for the screen, the others to copy."""

    python: str
    curl: str
    python_shown: str
    curl_shown: str


def write_code(body: dict[str, object], target: RequestTarget) -> RequestCode:
    return RequestCode(
        python=python_code(body, target),
        curl=curl_command(body, target),
        python_shown=python_code(body, target, shown=True),
        curl_shown=curl_command(body, target, shown=True),
    )


# -- string literals ------------------------------------------------------------------


def _escaped(text: str, *, python: bool) -> str:
    """``text`` as a double-quoted literal, valid in Python and JSON alike, with only
    printable characters in it."""
    literal = json.dumps(text, ensure_ascii=False)
    if literal.isprintable():
        return literal
    return "".join(char if char.isprintable() else _escape(char, python) for char in literal)


def _escape(char: str, python: bool) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    if python:
        return f"\\U{code:08x}"
    code -= 0x10000  # JSON: a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _cut(text: str, shown: bool) -> tuple[str, str | None]:
    """The text to write and, when it was cut for the screen, the note saying so."""
    if not shown or len(text) <= SHOWN_STRING_LIMIT:
        return text, None
    return (
        text[:SHOWN_STRING_LIMIT],
        f"cut here: {len(text):,} characters in all (Copy takes them whole)",
    )


@dataclass(frozen=True)
class _DataUrl:
    media_type: str
    file: str


def _data_url(value: str, sibling_name: object, files: list[str]) -> _DataUrl | None:
    if len(value) < DATA_URL_MIN:
        return None
    match = _DATA_URL.match(value)
    if match is None:
        return None
    media_type = match.group(1)
    if isinstance(sibling_name, str) and sibling_name:
        name = sibling_name
    else:
        name = f"attachment-{len(files) + 1}{_SUFFIXES.get(media_type, '')}"
    files.append(name)
    return _DataUrl(media_type, name)


# -- Python -----------------------------------------------------------------------------


class _Python:
    def __init__(self, shown: bool) -> None:
        self.shown = shown
        self.files: list[str] = []

    def value(self, value: object, depth: int, sibling_name: object = None) -> tuple[str, str]:
        """(the expression, a trailing comment or "")."""
        if isinstance(value, dict):
            return self.mapping(value, depth), ""
        if isinstance(value, list | tuple):
            return self.sequence(list(value), depth), ""
        if isinstance(value, str):
            data = _data_url(value, sibling_name, self.files)
            if data is not None:
                call = f"data_url({_escaped(data.file, python=True)}, "
                return call + f"{_escaped(data.media_type, python=True)})", ""
            text, note = _cut(value, self.shown)
            return _escaped(text, python=True), note or ""
        if value is None or isinstance(value, bool | int | float):
            return repr(value), ""
        return _escaped(str(value), python=True), ""

    def mapping(self, mapping: dict[object, object], depth: int) -> str:
        if not mapping:
            return "{}"
        pad = "    " * (depth + 1)
        name = mapping.get("filename")
        lines = ["{"]
        for key, item in mapping.items():
            text, note = self.value(item, depth + 1, name)
            comment = f"  # {note}" if note else ""
            lines.append(f"{pad}{_escaped(str(key), python=True)}: {text},{comment}")
        lines.append("    " * depth + "}")
        return "\n".join(lines)

    def sequence(self, items: list[object], depth: int) -> str:
        if not items:
            return "[]"
        pad = "    " * (depth + 1)
        lines = ["["]
        for item in items:
            text, note = self.value(item, depth + 1)
            comment = f"  # {note}" if note else ""
            lines.append(f"{pad}{text},{comment}")
        lines.append("    " * depth + "]")
        return "\n".join(lines)

    def arguments(self, body: dict[str, object]) -> list[str]:
        named: list[str] = []
        others: dict[object, object] = {}
        for key, item in body.items():
            if key.isidentifier() and not keyword.iskeyword(key):
                text, note = self.value(item, 1)
                comment = f"  # {note}" if note else ""
                named.append(f"    {key}={text},{comment}")
            else:
                others[key] = item
        if others:
            named.append(f"    **{self.mapping(others, 1)},")
        return named


def _client_call(base_url: str, api_key: str) -> list[str]:
    return ["client = OpenAI(", f"    base_url={base_url},", f"    api_key={api_key},", ")"]


def _python_client(target: RequestTarget) -> tuple[set[str], list[str], list[str]]:
    """(standard modules to import, other import lines, the lines that make ``client``)."""
    base_url = _escaped(target.base_url, python=True)
    if target.auth is AuthMethod.ENTRA_ID:
        return (
            set(),
            [
                "from azure.identity import DefaultAzureCredential, get_bearer_token_provider",
                "from openai import OpenAI",
            ],
            [
                "# An Entra ID token for the signed-in identity (az login, a managed identity...).",
                "token_provider = get_bearer_token_provider(",
                f"    DefaultAzureCredential(), {_escaped(target.scope, python=True)}",
                ")",
                *_client_call(base_url, "token_provider"),
            ],
        )
    if target.auth is AuthMethod.API_KEY:
        key = f"os.environ[{_escaped(target.key_env, python=True)}]"
        return (
            {"os"},
            ["from openai import OpenAI"],
            [
                "# The key is read from the environment, as foundry-tui reads it.",
                *_client_call(base_url, key),
            ],
        )
    return (
        set(),
        ["from openai import OpenAI"],
        [
            "# The server wants no key; the SDK needs one, so it sends this one.",
            *_client_call(base_url, _escaped(NO_KEY, python=True)),
        ],
    )


_DATA_URL_HELPER = [
    "",
    "",
    "def data_url(path: str, media_type: str) -> str:",
    '    """An attached file as the base64 data URL foundry-tui sent (keep the file here)."""',
    '    with open(path, "rb") as file:',
    '        return f"data:{media_type};base64," + base64.b64encode(file.read()).decode()',
]


def python_code(body: dict[str, object], target: RequestTarget, *, shown: bool = False) -> str:
    """A script that sends ``body`` with the openai SDK and prints the reply as it streams."""
    writer = _Python(shown)
    arguments = writer.arguments(body)
    modules, imports, client = _python_client(target)
    reasoning = "reasoning" in body
    if reasoning:
        modules.add("sys")
    if writer.files:
        modules.add("base64")
    lines = [f"# The request foundry-tui sends to {target.what}.", *_notes(target)]
    lines += [f"import {module}" for module in sorted(modules)]
    lines += [""] if modules else []
    lines += imports
    if writer.files:
        lines += _DATA_URL_HELPER
        lines.append("")
    lines += ["", *client, "", "stream = client.responses.create(", *arguments, ")"]
    lines += [
        "for event in stream:",
        '    if event.type == "response.output_text.delta":',
        '        print(event.delta, end="", flush=True)',
    ]
    if reasoning:
        lines += [
            '    elif event.type == "response.reasoning_summary_text.delta":',
            '        print(event.delta, end="", flush=True, file=sys.stderr)  # the thinking',
        ]
    lines.append("print()")
    return "\n".join(lines) + "\n"


def _notes(target: RequestTarget) -> list[str]:
    return [f"# {note}" for note in target.notes]


# -- curl ---------------------------------------------------------------------------------


class _Json:
    """The body as pretty JSON for a single-quoted shell word: every ``'`` in a string is
    written ``'\\''``. A data URL's base64 is marked (NUL, its file's number, NUL: a NUL is
    never left raw in a literal) where `curl_command` splices in a read of its file."""

    def __init__(self, shown: bool) -> None:
        self.shown = shown
        self.files: list[str] = []

    def string(self, text: str) -> str:
        return _escaped(text, python=False).replace("'", "'\\''")

    def value(self, value: object, depth: int, sibling_name: object = None) -> str:
        if isinstance(value, dict):
            return self.mapping(value, depth)
        if isinstance(value, list | tuple):
            return self.sequence(list(value), depth)
        if isinstance(value, str):
            data = _data_url(value, sibling_name, self.files)
            if data is not None:
                prefix = self.string(f"data:{data.media_type};base64,")[:-1]
                return f'{prefix}\0{len(self.files) - 1}\0"'
            text, note = _cut(value, self.shown)
            if note is not None:
                text += f"… [{note}]"
            return self.string(text)
        if value is None or isinstance(value, bool | int | float):
            return json.dumps(value)
        return self.string(str(value))

    def mapping(self, mapping: dict[object, object], depth: int) -> str:
        if not mapping:
            return "{}"
        pad = "  " * (depth + 1)
        name = mapping.get("filename")
        items = [
            f"{pad}{self.string(str(key))}: {self.value(item, depth + 1, name)}"
            for key, item in mapping.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"

    def sequence(self, items: list[object], depth: int) -> str:
        if not items:
            return "[]"
        pad = "  " * (depth + 1)
        lines = [f"{pad}{self.value(item, depth + 1)}" for item in items]
        return "[\n" + ",\n".join(lines) + "\n" + "  " * depth + "]"


def _authorization(target: RequestTarget) -> str:
    """The Authorization header as a shell word; the app sends every kind of key as Bearer."""
    if target.auth is AuthMethod.ENTRA_ID:
        token = (
            "az account get-access-token --scope "
            f"{shlex.quote(target.scope)} --query accessToken -o tsv"
        )
        return f'"Authorization: Bearer $({token})"'
    if target.auth is AuthMethod.API_KEY:
        name = target.key_env
        if _SHELL_NAME.fullmatch(name):
            return f'"Authorization: Bearer ${name}"'
        # Not a name the shell can expand: asked of printenv, quoted.
        return f'"Authorization: Bearer $(printenv {shlex.quote(name)})"'
    return shlex.quote(f"Authorization: Bearer {NO_KEY}")


def curl_command(body: dict[str, object], target: RequestTarget, *, shown: bool = False) -> str:
    """A curl command that posts ``body`` and prints the server-sent events as they come.

    The body is one argument (``-d``) unless it carries files or is too long for one (Linux
    takes at most 128 KiB per argument): then it is piped in, written by ``printf`` (a shell
    builtin, so no such limit) and ``base64`` reading each file."""
    writer = _Json(shown)
    data = writer.value(body, 0)
    url = target.base_url.rstrip("/") + "/responses"
    lines = [f"# The request foundry-tui sends to {target.what}.", *_notes(target)]
    if target.auth is AuthMethod.API_KEY:
        lines.append("# The key is read from the environment, as foundry-tui reads it.")
    elif target.auth is AuthMethod.ENTRA_ID:
        lines.append("# An Entra ID token from the Azure CLI (az login first).")
    curl = [
        f"curl -sS -N {shlex.quote(url)} \\",
        "  -H 'Content-Type: application/json' \\",
        f"  -H {_authorization(target)} \\",
    ]
    if not writer.files and len(data) <= ARGUMENT_LIMIT:
        lines += [*curl, f"  -d '{data}'"]
        return "\n".join(lines) + "\n"
    if writer.files:
        lines.append("# Attachments are read from their files (keep them in this directory).")
    lines.append("{")
    for number, piece in enumerate(data.split("\0")):
        if number % 2:
            lines.append(f"  base64 < {shlex.quote(writer.files[int(piece)])} | tr -d '\\n'")
        elif piece:
            lines.append(f"  printf '%s' '{piece}'")
    lines += [f"}} | {curl[0]}", *curl[1:], "  --data-binary @-"]
    return "\n".join(lines) + "\n"
