"""Endpoint URLs: what kind of service a URL names, and each profile's base URL and scope.

Base URLs by kind:

- ``azure``: ``https://RES.openai.azure.com`` (also ``RES.cognitiveservices.azure.com``,
  ``RES.services.ai.azure.com``, with or without ``/openai`` or ``/openai/v1``)
  -> ``https://RES.openai.azure.com/openai/v1/``; Entra ID scope
  ``https://cognitiveservices.azure.com/.default``.
- ``foundry``: ``https://ACCOUNT.services.ai.azure.com/api/projects/PROJECT``
  -> ``<project endpoint>/openai/v1``; Entra ID scope ``https://ai.azure.com/.default``.
- ``openai``: ``https://api.openai.com/v1`` when the endpoint is empty.
- ``compatible``: the endpoint as given (trailing slash removed).
- ``local``: only a label, ``local model (FILE)``: the app starts llama.cpp on 127.0.0.1
  at a port chosen then; the endpoint is the path of a GGUF model file (empty: the bundled
  model).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from foundry_tui.core.models import EndpointKind, Profile

__all__ = [
    "AZURE_SCOPE",
    "FOUNDRY_SCOPE",
    "LOCAL_DEFAULT_DEPLOYMENT",
    "OPENAI_BASE_URL",
    "base_url_for",
    "entra_scope_for",
    "foundry_project_endpoint",
    "parse_endpoint_kind",
]

LOCAL_DEFAULT_DEPLOYMENT = "smollm2-135m"  # = foundry_tui.local.discovery.DEFAULT_ALIAS

AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"
FOUNDRY_SCOPE = "https://ai.azure.com/.default"
OPENAI_BASE_URL = "https://api.openai.com/v1"

_AZURE_RESOURCE_SUFFIXES = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
)
# Sovereign clouds: recognised as Azure, host kept as given.
_AZURE_OTHER_SUFFIXES = (
    ".openai.azure.us",
    ".cognitiveservices.azure.us",
    ".openai.azure.cn",
    ".cognitiveservices.azure.cn",
    ".services.ai.azure.us",
    ".services.ai.azure.cn",
)


def _split(url: str) -> tuple[str, str, str]:
    """(scheme, netloc, path) of a URL; a bare host gets https."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    return parts.scheme or "https", parts.netloc, parts.path


def parse_endpoint_kind(url: str) -> EndpointKind:
    """Guess a profile kind from a URL (setup screen, ``--endpoint``)."""
    if not url.strip():
        return EndpointKind.OPENAI
    _scheme, netloc, path = _split(url)
    host = netloc.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    if host == "api.openai.com":
        return EndpointKind.OPENAI
    if "/api/projects/" in path:
        return EndpointKind.FOUNDRY_PROJECT
    if host.endswith(_AZURE_RESOURCE_SUFFIXES + _AZURE_OTHER_SUFFIXES):
        return EndpointKind.AZURE_OPENAI
    return EndpointKind.COMPATIBLE


def base_url_for(profile: Profile) -> str:
    """The base URL the OpenAI client is built with for this profile."""
    endpoint = profile.endpoint.strip()
    if profile.kind is EndpointKind.AZURE_OPENAI:
        scheme, netloc, _path = _split(endpoint)
        host = netloc.lower()
        for suffix in _AZURE_RESOURCE_SUFFIXES:
            if host.endswith(suffix):
                host = host[: -len(suffix)] + ".openai.azure.com"
                netloc = host
                break
        return f"{scheme}://{netloc}/openai/v1/"
    if profile.kind is EndpointKind.FOUNDRY_PROJECT:
        scheme, netloc, path = _split(endpoint)
        match = re.match(r"(.*?/api/projects/[^/]+)", path)
        project = match.group(1) if match else path.rstrip("/")
        return f"{scheme}://{netloc}{project}/openai/v1"
    if profile.kind is EndpointKind.OPENAI:
        return endpoint.rstrip("/") or OPENAI_BASE_URL
    if profile.kind is EndpointKind.LOCAL:
        # Started by the app at a port chosen then; the endpoint names a model file.
        return f"local model ({endpoint or LOCAL_DEFAULT_DEPLOYMENT})"
    return endpoint.rstrip("/")


def foundry_project_endpoint(profile: Profile) -> str:
    """``https://ACCOUNT.services.ai.azure.com/api/projects/PROJECT`` of a foundry profile."""
    base = base_url_for(profile)
    return base.removesuffix("/").removesuffix("/openai/v1")


def entra_scope_for(profile: Profile) -> str:
    if profile.scope:
        return profile.scope
    if profile.kind is EndpointKind.FOUNDRY_PROJECT:
        return FOUNDRY_SCOPE
    return AZURE_SCOPE
