"""Checks that keep an API key where it belongs: never sent unencrypted to another machine,
never taken for a variable's name, never a value that cannot be one header line.

Plain functions over strings, shared by the config loader, the backend and the setup
screen (which may not import either); every message they return leaves the key out.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

from foundry_tui.core.models import AuthMethod

__all__ = [
    "PLAIN_HTTP_SETTING",
    "is_loopback",
    "key_problem",
    "looks_like_key",
    "masked",
    "plain_http_host",
    "plain_http_problem",
]

#: The profile setting that lets a key go over plain HTTP (an internal gateway).
PLAIN_HTTP_SETTING: Final = "allow_plain_http = true"

# What keys and tokens start with (OpenAI, Anthropic-style, JWTs).
_KEY_PREFIXES = ("sk-", "sk_", "eyJ")
# A variable's name is rarely this long, holds digits, and has fewer than two underscores;
# Azure keys (32 hex or 84 alphanumeric characters) and most others do.
_KEY_MIN_CHARS = 20


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: this machine, where nothing is on the wire."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def plain_http_host(endpoint: str) -> str | None:
    """The host an ``http://`` endpoint names, unless it is this machine."""
    url = endpoint.strip()
    if not url.lower().startswith("http://"):
        return None
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    return None if host and is_loopback(host) else _printable(host) or "(no host)"


def plain_http_problem(endpoint: str, auth: AuthMethod, *, allowed: bool) -> str | None:
    """Why a profile must not be used as it is: it would send its key or token over plain
    HTTP to another machine, and the user did not opt in. None when it may."""
    if allowed or auth is AuthMethod.NONE:
        return None
    host = plain_http_host(endpoint)
    if host is None:
        return None
    what = "the API key" if auth is AuthMethod.API_KEY else "the Entra ID token"
    return (
        f"the endpoint uses plain http:// to {host}, which would send {what} unencrypted: "
        "use https://, or, for an internal gateway on a private network, "
        f"set {PLAIN_HTTP_SETTING} in the profile"
    )


def looks_like_key(value: str) -> bool:
    """Whether ``value``, given as a variable's name, reads like a key or token instead."""
    text = value.strip()
    if text.startswith(_KEY_PREFIXES) and len(text) > 8:
        return True
    return (
        len(text) >= _KEY_MIN_CHARS
        and any(ch.isdigit() for ch in text)
        and any(ch.isalpha() for ch in text)
        and text.count("_") < 2
        and " " not in text
    )


def masked(value: str) -> str:
    """The first three characters and an ellipsis: enough to recognise, not to use."""
    return _printable(value.strip()[:3]) + "…"


def key_problem(key: str) -> str | None:
    """What makes ``key`` unusable as a header value, without showing any of it."""
    for index, ch in enumerate(key, start=1):
        if ch in "\r\n":
            return f"holds a line break (character {index} of {len(key)})"
        if not ch.isprintable() or not ch.isascii():
            return f"holds a control or non-ASCII character (character {index} of {len(key)})"
    return None


def _printable(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)
