"""Where a profile's requests go and how they authenticate, for the code "View code" writes
(core/request_code.py): the base URL and Entra ID scope the client uses (config.endpoints),
and the key's variable by name."""

from __future__ import annotations

from foundry_tui.core.models import EndpointKind, Profile
from foundry_tui.core.request_code import RequestCode, RequestTarget, write_code

__all__ = ["code_for", "target_for"]

_WHAT = {
    EndpointKind.AZURE_OPENAI: "an Azure OpenAI resource",
    EndpointKind.FOUNDRY_PROJECT: "a Foundry project",
    EndpointKind.OPENAI: "OpenAI",
    EndpointKind.COMPATIBLE: "an OpenAI-compatible server",
    EndpointKind.LOCAL: "the local model (llama.cpp's server)",
}


def target_for(profile: Profile, base_url: str, *, notes: tuple[str, ...] = ()) -> RequestTarget:
    from foundry_tui.config.endpoints import entra_scope_for

    return RequestTarget(
        base_url=base_url,
        auth=profile.auth,
        key_env=profile.api_key_env,
        scope=entra_scope_for(profile),
        what=_WHAT[profile.kind],
        notes=notes,
    )


def code_for(
    profile: Profile, base_url: str, body: dict[str, object], *, notes: tuple[str, ...] = ()
) -> RequestCode:
    return write_code(body, target_for(profile, base_url, notes=notes))
