"""The API key a profile sends, checked: the same rules for the SDK client and the lean
transport. Entra ID tokens come from azure-identity, in the SDK client only."""

from __future__ import annotations

from collections.abc import Mapping

from foundry_tui.core.guards import key_problem, plain_http_problem
from foundry_tui.core.logs import hide_secret
from foundry_tui.core.models import AuthMethod, BackendError, EndpointKind, ErrorKind, Profile

__all__ = ["NO_KEY", "api_key_for", "refuse_plain_http"]

# What goes in the Authorization header for a server that wants no key (as the SDK sends).
NO_KEY = "unused"


def refuse_plain_http(profile: Profile, base_url: str) -> None:
    """Raises when the key or token would cross the network unencrypted."""
    problem = plain_http_problem(base_url, profile.auth, allowed=profile.allow_plain_http)
    if problem is not None:
        raise BackendError(
            ErrorKind.CONFIG, "Not sent: the connection is not encrypted", problem + "."
        )


def api_key_for(profile: Profile, base_url: str, env: Mapping[str, str]) -> str:
    """The key of an ``api_key`` profile (NO_KEY for ``none``); BackendError when it is
    missing, unusable, or would go over plain HTTP to another machine."""
    if profile.auth is AuthMethod.NONE:
        return NO_KEY
    refuse_plain_http(profile, base_url)
    name = profile.api_key_env
    key = env.get(name, "").strip()
    if not key:
        azure = profile.kind in (EndpointKind.AZURE_OPENAI, EndpointKind.FOUNDRY_PROJECT)
        where = "Keys and Endpoint in the Azure portal" if azure else "your provider"
        also = " or switch the profile to Entra ID" if azure else ""
        raise BackendError(
            ErrorKind.CONFIG,
            "No API key",
            f"Set {name} to the key for {base_url} (from {where}){also}.",
        )
    problem = key_problem(key)
    if problem is not None:  # never sent: a server would echo it back
        raise BackendError(
            ErrorKind.CONFIG,
            f"The key in ${name} cannot be used",
            f"It {problem}: set {name} again without it.",
        )
    hide_secret(key, name)  # nor in the log, whichever transport sends it
    return key
