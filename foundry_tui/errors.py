"""Turn SDK and credential exceptions into `BackendError`s a user can act on.

Pure functions. Nothing here imports `openai` or `azure` at module level: `explain` is only
called with an exception those packages raised, so they are loaded by then and imported
inside it. Messages never carry an API key or a token: server text is cut to printable
characters, the caller's secrets are masked, and anything shaped like a key or a JWT too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from foundry_tui.endpoints import base_url_for, entra_scope_for
from foundry_tui.models import AuthMethod, BackendError, ErrorKind, GenerationSettings, Profile
from foundry_tui.text import one_line, shorten

__all__ = ["Operation", "clean_text", "explain", "stream_error"]

# What the backend was doing: decides how a 404 or a dropped connection reads.
Operation = str  # "create" | "stream" | "retrieve" | "input_items" | "list_models"

_ROLE = "Cognitive Services OpenAI User"
_MAX_MESSAGE = 400

_SECRET_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"\bsk-[A-Za-z0-9_*-]{8,}"),  # OpenAI-style keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(api[-_]?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]{8,}"),
)


def clean_text(text: object, *, secrets: Iterable[str] = (), limit: int = _MAX_MESSAGE) -> str:
    """Printable, one-line, secret-free text from something a server or library said."""
    # Made inert first (foundry_tui.text): a control character or an escape sequence inside
    # a key must not hide it from the masks below.
    value = one_line(str(text) if text is not None else "", None)
    for secret in secrets:
        if secret and len(secret) >= 6:
            value = value.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        value = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", value)
    return shorten(value, limit)


def _lines(text: str, *, secrets: Iterable[str], max_lines: int = 12) -> str:
    """Like clean_text but keeps line breaks (credential chains list one source per line)."""
    kept: list[str] = []
    for line in str(text).splitlines():
        line = clean_text(line, secrets=secrets, limit=240)
        if not line or "aka.ms" in line or line.lower().startswith("to mitigate"):
            continue
        kept.append(line)
    if len(kept) > max_lines:
        kept = [*kept[:max_lines], "…"]
    return "\n".join(kept)


def _body(exc: BaseException) -> Mapping[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    return body if isinstance(body, Mapping) else {}


def _server_message(exc: BaseException, secrets: Sequence[str]) -> str:
    body = _body(exc)
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raw = getattr(exc, "body", None)
        message = raw if isinstance(raw, str) and raw.strip() else getattr(exc, "message", "")
    return clean_text(message, secrets=secrets)


def _filtered_categories(body: Mapping[str, Any]) -> list[str]:
    """Names of the content-filter categories marked filtered=true, wherever Azure put them."""
    found: list[str] = []

    def scan(results: object) -> None:
        if isinstance(results, list):
            for entry in results:
                scan(entry)
            return
        if not isinstance(results, Mapping):
            return
        for name, verdict in results.items():
            if isinstance(verdict, Mapping):
                if verdict.get("filtered") is True:
                    label = clean_text(str(name).replace("_", " "), limit=40)
                    if label not in found:
                        found.append(label)
                elif name in ("content_filter_result", "content_filter_results"):
                    scan(verdict)
            elif isinstance(verdict, list) and name in (
                "content_filter_results",
                "content_filters",
            ):
                scan(verdict)

    inner = body.get("innererror")
    if isinstance(inner, Mapping):
        scan(inner.get("content_filter_result"))
        scan(inner.get("content_filter_results"))
    scan(body.get("content_filter_result"))
    scan(body.get("content_filter_results"))
    return found


def _is_content_filter(code: str | None, body: Mapping[str, Any]) -> bool:
    inner = body.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, Mapping) else None
    return code in ("content_filter", "content_filtered", "ResponsibleAIPolicyViolation") or (
        inner_code == "ResponsibleAIPolicyViolation"
    )


def _content_filter_error(body: Mapping[str, Any], *, where: str, **fields: Any) -> BackendError:
    categories = _filtered_categories(body)
    flagged = f"Categories flagged: {', '.join(categories)}. " if categories else ""
    return BackendError(
        ErrorKind.CONTENT_FILTER,
        f"The {where} was blocked by the content filter",
        f"{flagged}Rephrase and try again; the filter's settings are on the deployment in "
        "Azure AI Foundry.",
        **fields,
    )


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        milliseconds = headers.get("retry-after-ms")
        if milliseconds is not None:
            return float(milliseconds) / 1000
        seconds = headers.get("retry-after")
        if seconds is not None:
            return float(seconds)
    except (TypeError, ValueError):
        return None
    return None


def _is_credential_error(exc: BaseException) -> bool:
    try:
        from azure.core.exceptions import ClientAuthenticationError
    except ImportError:  # pragma: no cover - azure-core is a dependency
        return False
    return isinstance(exc, ClientAuthenticationError)


def stream_error(
    code: str | None,
    message: str | None,
    *,
    param: str | None = None,
    body: Mapping[str, Any] | None = None,
    secrets: Sequence[str] = (),
    request_id: str | None = None,
) -> BackendError:
    """An error the server reported inside the stream (an `error` event or error frame)."""
    code = clean_text(code, limit=80) or None if code else None
    fields: dict[str, Any] = {"code": code, "param": param, "request_id": request_id}
    if _is_content_filter(code, body or {}):
        return _content_filter_error(body or {}, where="reply", **fields)
    said = clean_text(message, secrets=secrets) or "no details"
    suffix = f" ({code})" if code else ""
    return BackendError(
        ErrorKind.STREAM,
        "The server reported an error while replying",
        f"{said}{suffix}. The text received so far is kept; press Ctrl+R to retry.",
        **fields,
    )


def explain(
    exc: BaseException,
    *,
    profile: Profile,
    settings: GenerationSettings | None = None,
    operation: Operation = "create",
    secrets: Sequence[str] = (),
    request_id: str | None = None,
) -> BackendError:
    """Map an exception from the SDK or azure-identity to a `BackendError`."""
    if isinstance(exc, BackendError):
        return exc
    import openai

    base_url = base_url_for(profile)
    scope = entra_scope_for(profile)
    model = settings.model if settings is not None else None

    if _is_credential_error(exc):
        detail = _lines(getattr(exc, "message", None) or str(exc), secrets=secrets)
        return BackendError(
            ErrorKind.AUTH,
            "Could not get an Entra ID token",
            f"DefaultAzureCredential found no usable sign-in for scope {scope}. "
            "Sign in with `az login` (or set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
            f"AZURE_CLIENT_SECRET), or switch the profile to an API key.\n{detail}".rstrip(),
            request_id=request_id,
        )

    if isinstance(exc, openai.APITimeoutError):
        what = "while the reply was streaming" if operation == "stream" else "for an answer"
        return BackendError(
            ErrorKind.CONNECTION,
            f"Timed out waiting for {base_url}",
            f"No data arrived {what} within the time limit. Check the network, or try again.",
            request_id=request_id,
        )

    if isinstance(exc, openai.APIConnectionError):
        cause = clean_text(exc.__cause__, secrets=secrets, limit=200) if exc.__cause__ else ""
        if operation == "stream":
            return BackendError(
                ErrorKind.CONNECTION,
                "The connection closed before the reply finished",
                f"{base_url} stopped sending mid-reply"
                + (f" ({cause})" if cause else "")
                + ". The text received so far is kept.",
                request_id=request_id,
            )
        return BackendError(
            ErrorKind.CONNECTION,
            f"Could not connect to {base_url}",
            (f"{cause}. " if cause else "")
            + "Check the endpoint in the profile and the network (proxy, VPN, firewall).",
            request_id=request_id,
        )

    if isinstance(exc, openai.APIStatusError):
        return _explain_status(
            exc,
            profile=profile,
            base_url=base_url,
            scope=scope,
            model=model,
            operation=operation,
            secrets=secrets,
        )

    if isinstance(exc, openai.APIError):  # an error frame inside the stream
        body = _body(exc)
        code = exc.code or (body.get("code") if isinstance(body.get("code"), str) else None)
        return stream_error(
            code,
            _server_message(exc, secrets),
            param=exc.param,
            body=body,
            secrets=secrets,
            request_id=request_id,
        )

    if isinstance(exc, openai.OpenAIError):
        return BackendError(
            ErrorKind.CONFIG,
            "The OpenAI client could not be set up",
            clean_text(exc, secrets=secrets),
            request_id=request_id,
        )

    return BackendError(
        ErrorKind.STREAM if operation == "stream" else ErrorKind.CONNECTION,
        f"Unexpected failure talking to {base_url}",
        f"{type(exc).__name__}: {clean_text(exc, secrets=secrets)}",
        request_id=request_id,
    )


def _explain_status(
    exc: Any,
    *,
    profile: Profile,
    base_url: str,
    scope: str,
    model: str | None,
    operation: Operation,
    secrets: Sequence[str],
) -> BackendError:
    status: int = exc.status_code
    body = _body(exc)
    code: str | None = clean_text(exc.code, limit=80) or None if exc.code else None
    param: str | None = clean_text(exc.param, limit=80) or None if exc.param else None
    headers = exc.response.headers
    request_id = exc.request_id or headers.get("apim-request-id") or headers.get("x-ms-request-id")
    fields: dict[str, Any] = {
        "status_code": status,
        "code": code,
        "param": param,
        "request_id": request_id,
    }
    said = _server_message(exc, secrets)
    server_said = f" Server said: {said}" if said else ""
    what = f"'{model}'" if model else "the model"

    if status in (401, 403):
        title = "Not authorized (401)" if status == 401 else "Access denied (403)"
        if profile.auth is AuthMethod.ENTRA_ID:
            detail = (
                f"Signed in with Entra ID using scope {scope}. The identity needs the role "
                f'"{_ROLE}" on the resource, and the scope must match the endpoint '
                "(https://ai.azure.com/.default for Foundry projects)."
            )
        elif profile.auth is AuthMethod.API_KEY:
            detail = (
                f"{base_url} refused the key in ${profile.api_key_env}. Check that it belongs "
                "to this resource (Azure portal → Keys and Endpoint) or switch to Entra ID."
            )
        else:
            detail = (
                f"{base_url} wants credentials: set the profile's auth to api_key and "
                "api_key_env to the variable holding the key."
            )
        return BackendError(ErrorKind.AUTH, title, detail + server_said, **fields)

    if status == 404:
        about_previous = code == "previous_response_not_found" or (
            param is not None and "response_id" in param.lower() and operation == "create"
        )
        if operation == "create" and about_previous:
            return _previous_not_found(fields, server_said)
        if operation == "create" or code == "DeploymentNotFound":
            return BackendError(
                ErrorKind.DEPLOYMENT_NOT_FOUND,
                f"Deployment {what} not found",
                f"{base_url} has no deployment named {what}: pick another in the sidebar or "
                "check the deployment name in the Azure portal." + server_said,
                **fields,
            )
        if operation == "list_models":
            return BackendError(
                ErrorKind.NOT_FOUND,
                "The server has no model list",
                f"{base_url} answered 404 to the model list; type the deployment name instead."
                + server_said,
                **fields,
            )
        return BackendError(
            ErrorKind.NOT_FOUND,
            "Response not found on the server",
            "It expired (stored responses are kept about 30 days) or was deleted." + server_said,
            **fields,
        )

    if status == 400:
        if code == "previous_response_not_found" or param == "previous_response_id":
            return _previous_not_found(fields, server_said)
        if _is_content_filter(code, body):
            return _content_filter_error(body, where="prompt", **fields)
        unsupported = code in ("unsupported_parameter", "unsupported_value") or (
            "not supported" in said.lower() and param is not None
        )
        if unsupported and param in ("temperature", "top_p"):
            return BackendError(
                ErrorKind.UNSUPPORTED_PARAMETER,
                f"{what} does not accept {param}",
                "This model (a reasoning model) does not accept temperature/top_p; clear them "
                "in the sidebar." + server_said,
                **fields,
            )
        if unsupported:
            name = f"'{param}'" if param else "a setting that was sent"
            return BackendError(
                ErrorKind.UNSUPPORTED_PARAMETER,
                f"{what} does not accept {name}",
                "Clear it in the sidebar and send again." + server_said,
                **fields,
            )
        return BackendError(
            ErrorKind.BAD_REQUEST,
            "The server rejected the request (400)",
            (said or "No reason given.") + (f" (parameter: {param})" if param else ""),
            **fields,
        )

    if status == 429:
        wait = _retry_after(exc)
        when = f"Try again in {wait:g} seconds." if wait is not None else "Try again shortly."
        return BackendError(
            ErrorKind.RATE_LIMITED,
            "Rate limited (429)",
            f"{base_url} is throttling requests for {what} (tokens- or requests-per-minute "
            f"quota). {when}" + server_said,
            **fields,
        )

    if status >= 500:
        return BackendError(
            ErrorKind.SERVER,
            f"Server error ({status})",
            f"{base_url} failed to answer; try again in a moment." + server_said,
            **fields,
        )

    return BackendError(
        ErrorKind.BAD_REQUEST,
        f"The server rejected the request ({status})",
        said or "No reason given.",
        **fields,
    )


def _previous_not_found(fields: dict[str, Any], server_said: str) -> BackendError:
    return BackendError(
        ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND,
        "The previous reply is no longer on the server",
        "It expired (stored responses are kept about 30 days) or was deleted; the conversation "
        "has to be sent again as a transcript." + server_said,
        **fields,
    )
