"""Turn SDK and credential exceptions into `BackendError`s a user can act on.

Pure functions. Nothing here imports `openai` or `azure` at module level: `explain` is only
called with an exception those packages raised, so they are loaded by then and imported
inside it. The lean transport (lean.py), which has no SDK exception, gets the same
explanations from an HTTP answer (`explain_answer`) or a transport failure
(`connection_error`, `timeout_error`). Messages never carry an API key or a token: server text is cut to printable
characters, the caller's secrets are masked, and anything shaped like a key or a JWT too.
"""

from __future__ import annotations

import ast
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from foundry_tui.config.endpoints import base_url_for, entra_scope_for
from foundry_tui.core.models import AuthMethod, BackendError, ErrorKind, GenerationSettings, Profile
from foundry_tui.core.parameters import REFUSABLE
from foundry_tui.core.text import one_line, shorten

__all__ = [
    "Operation",
    "StatusAnswer",
    "clean_text",
    "connection_error",
    "error_frame",
    "error_objects",
    "explain",
    "explain_answer",
    "refused_parameter",
    "retry_after_seconds",
    "stream_error",
    "timeout_error",
    "translatable",
    "unexpected_error",
]

# What the backend was doing: decides how a 404 or a dropped connection reads.
Operation = str  # "create" | "stream" | "retrieve" | "input_items" | "delete" | "list_models"

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
    # Made inert first (foundry_tui.core.text): a control character or an escape sequence inside
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


def _body(exc: BaseException | StatusAnswer) -> Mapping[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    return body if isinstance(body, Mapping) else {}


# An error answer's body is read up to this many characters (a proxy's error page can be
# megabytes; what a user is shown is cut far shorter anyway).
MAX_ERROR_BODY = 1_000_000


@dataclass(frozen=True)
class StatusAnswer:
    """An HTTP error answer as the explanations read it, the same whether it came as an
    SDK exception (`from_sdk`) or as a raw response (`from_http`)."""

    status_code: int
    body: object  # the JSON's "error" object (else the JSON), or the text when not JSON
    headers: Mapping[str, str]
    message: str  # said when the body says nothing
    code: str | None = None
    param: str | None = None
    request_id: str | None = None

    @classmethod
    def from_sdk(cls, exc: Any) -> StatusAnswer:
        return cls(
            status_code=exc.status_code,
            body=exc.body,
            headers=exc.response.headers,
            message=exc.message,
            code=exc.code,
            param=exc.param,
            request_id=exc.request_id,
        )

    @classmethod
    def from_http(cls, status: int, text: str, headers: Mapping[str, str]) -> StatusAnswer:
        """As the SDK reads an error response: JSON if it parses, its ``error`` object
        if it has one."""
        import contextlib
        import json  # only on an error: kept out of start-up

        text = text[:MAX_ERROR_BODY].strip()
        body: object = text
        with contextlib.suppress(ValueError, RecursionError):
            body = json.loads(text)
        if isinstance(body, Mapping):
            body = body.get("error", body)
        code = body.get("code") if isinstance(body, Mapping) else None
        param = body.get("param") if isinstance(body, Mapping) else None
        return cls(
            status_code=status,
            body=body,
            headers=headers,
            message=f"Error code: {status}",
            code=str(code) if code is not None else None,
            param=param if isinstance(param, str) else None,
            request_id=headers.get("x-request-id"),
        )


# Gateways in front of Azure rewrap an upstream error: their `code` is the HTTP status as a
# string, and the upstream's error (with its real code, param and content-filter verdicts)
# is text inside their `message`, as JSON or as a Python dict's repr. Bounded: a few
# levels, the start of the text, a few candidate braces.
_MAX_NESTING = 4
_MAX_EMBEDDED_TEXT = 20_000
_MAX_CANDIDATES = 8
_NOT_FOUND_WORDS = ("not found", "does not exist", "no such")


def error_objects(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The error object and each one embedded as text in its `message`, outermost first."""
    found: list[Mapping[str, Any]] = []
    current: Mapping[str, Any] | None = body
    while current is not None and len(found) < _MAX_NESTING:
        found.append(current)
        message = current.get("message")
        current = _embedded_error(message) if isinstance(message, str) else None
    return found


def _embedded_error(text: str) -> Mapping[str, Any] | None:
    text = text[:_MAX_EMBEDDED_TEXT]
    start = text.find("{")
    for _ in range(_MAX_CANDIDATES):
        if start == -1:
            return None
        value = _object_at(text[start:])
        if isinstance(value, Mapping):
            inner = value.get("error")
            if isinstance(inner, Mapping):
                return inner
            if "message" in value or "code" in value:
                return value
        start = text.find("{", start + 1)
    return None


def _object_at(text: str) -> object:
    """The JSON object or Python dict literal that ``text`` starts with, or None."""
    import json  # only on an error: kept out of start-up

    try:
        return json.JSONDecoder().raw_decode(text)[0]
    except (ValueError, RecursionError):
        pass
    end = _closing_brace(text)
    if end is None:
        return None
    try:
        return ast.literal_eval(text[: end + 1])
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _closing_brace(text: str) -> int | None:
    """Index of the brace that closes the one ``text`` starts with (quotes respected)."""
    depth = 0
    quote: str | None = None
    escaped = False
    for index, char in enumerate(text):
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
            if depth > 32:
                return None
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return None


def _first_field(bodies: Sequence[Mapping[str, Any]], name: str) -> str | None:
    """The innermost meaningful value of ``name``: a gateway's "400" says less than the
    upstream's "previous_response_not_found"."""
    numeric: str | None = None
    for body in reversed(bodies):
        value = body.get(name)
        if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
            continue
        text = str(value)
        if len(text) == 3 and text.isdigit():
            numeric = numeric or text
            continue
        return text
    return numeric


def _messages(bodies: Sequence[Mapping[str, Any]]) -> list[str]:
    return [m for m in (body.get("message") for body in bodies) if isinstance(m, str)]


def _words(text: str) -> str:
    """Lower case, one space between words, `_` as a space: for phrase matching."""
    return " ".join(text.lower().replace("_", " ").split())


def _says_previous_not_found(bodies: Sequence[Mapping[str, Any]]) -> bool:
    for body in bodies:
        if body.get("code") == "previous_response_not_found":
            return True
        if body.get("param") == "previous_response_id":
            return True
    for message in map(_words, _messages(bodies)):
        at = message.find("previous response")
        if at != -1 and "not found" in message[at:]:
            return True
    return False


def _says_id_not_found(bodies: Sequence[Mapping[str, Any]], param: str | None) -> bool:
    """A 400 that means "no such response": a gateway's answer for an unknown id, or a
    server's "malformed identifier" for an id it cannot have issued (agentserver)."""
    about_id = (param or "").lower()
    if "responseid" in about_id or "response_id" in about_id or about_id == "id":
        return True
    codes = {str(body.get("code")) for body in bodies}
    if codes & {"not_found", "response_not_found", "404"}:
        return True
    return any(
        words in message for message in map(_words, _messages(bodies)) for words in _NOT_FOUND_WORDS
    )


def _server_message(exc: BaseException | StatusAnswer, secrets: Sequence[str]) -> str:
    bodies = error_objects(_body(exc))
    said = next((m for m in reversed(_messages(bodies)) if m.strip()), None)
    if said is None:
        raw = getattr(exc, "body", None)
        said = raw if isinstance(raw, str) and raw.strip() else getattr(exc, "message", "")
    return clean_text(said, secrets=secrets)


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


_FILTER_CODES = ("content_filter", "content_filtered", "ResponsibleAIPolicyViolation")


def _is_content_filter(code: str | None, bodies: Sequence[Mapping[str, Any]]) -> bool:
    if code in _FILTER_CODES:
        return True
    for body in bodies:
        inner = body.get("innererror")
        inner_code = inner.get("code") if isinstance(inner, Mapping) else None
        if body.get("code") in _FILTER_CODES or inner_code == "ResponsibleAIPolicyViolation":
            return True
    return False


def _content_filter_error(
    bodies: Sequence[Mapping[str, Any]], *, where: str, **fields: Any
) -> BackendError:
    categories: list[str] = []
    for body in bodies:
        categories += [name for name in _filtered_categories(body) if name not in categories]
    flagged = f"Categories flagged: {', '.join(categories)}. " if categories else ""
    return BackendError(
        ErrorKind.CONTENT_FILTER,
        f"The {where} was blocked by the content filter",
        f"{flagged}Rephrase and try again; the filter's settings are on the deployment in "
        "Azure AI Foundry.",
        **fields,
    )


def retry_after_seconds(headers: Any) -> float | None:
    """How long a server asked to wait, in seconds: ``retry-after-ms``, ``retry-after``
    (seconds or an HTTP date), or either under a gateway's own name for it
    (``llm_provider-retry-after``). None when none is given or it is unreadable."""
    try:
        items = [(str(k).lower(), str(v)) for k, v in headers.items()]
    except (AttributeError, TypeError):
        return None
    named = [(k, v) for k, v in items if "retry-after" in k]
    # The standard names first, then anything that carries the name.
    named.sort(key=lambda kv: kv[0] not in ("retry-after-ms", "retry-after"))
    for name, value in named:
        divisor = 1000.0 if name.endswith("-ms") else 1.0
        try:
            seconds = float(value) / divisor
        except ValueError:
            if divisor != 1.0:
                continue
            import email.utils  # rare (an HTTP date): kept out of start-up

            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            try:
                seconds = float(email.utils.mktime_tz(parsed)) - time.time()
            except (OverflowError, ValueError):
                continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
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
    bodies = error_objects(body if body else {"code": code, "message": message})
    code = _first_field(bodies, "code") or code
    code = clean_text(code, limit=80) or None if code else None
    fields: dict[str, Any] = {"code": code, "param": param, "request_id": request_id}
    if _is_content_filter(code, bodies):
        return _content_filter_error(bodies, where="reply", **fields)
    innermost = next((m for m in reversed(_messages(bodies)) if m.strip()), message)
    said = clean_text(innermost, secrets=secrets) or "no details"
    suffix = f" ({code})" if code else ""
    return BackendError(
        ErrorKind.STREAM,
        "The server reported an error while replying",
        f"{said}{suffix}. The text received so far is kept; press Ctrl+R to retry.",
        **fields,
    )


def error_frame(
    error: Mapping[str, Any],
    *,
    secrets: Sequence[str] = (),
    request_id: str | None = None,
) -> BackendError:
    """A stream frame carrying a nested ``error`` object (what live OpenAI and Azure send
    mid-stream), explained as `explain` explains the SDK's APIError for it."""
    code = error.get("code")
    param = error.get("param")
    bodies = error_objects(error)
    said = next((m for m in reversed(_messages(bodies)) if m.strip()), None)
    return stream_error(
        str(code) if code is not None else None,
        clean_text(said or "An error occurred during streaming", secrets=secrets),
        param=param if isinstance(param, str) else None,
        body=error,
        secrets=secrets,
        request_id=request_id,
    )


def timeout_error(base_url: str, operation: Operation, request_id: str | None) -> BackendError:
    what = "while the reply was streaming" if operation == "stream" else "for an answer"
    return BackendError(
        ErrorKind.CONNECTION,
        f"Timed out waiting for {base_url}",
        f"No data arrived {what} within the time limit. Check the network, or try again.",
        request_id=request_id,
    )


def connection_error(
    base_url: str,
    operation: Operation,
    cause: BaseException | None,
    *,
    secrets: Sequence[str] = (),
    request_id: str | None = None,
) -> BackendError:
    """No answer, or an answer cut off: ``cause`` is the transport's own exception."""
    reason = clean_text(cause, secrets=secrets, limit=200) if cause else ""
    if operation == "stream":
        return BackendError(
            ErrorKind.CONNECTION,
            "The connection closed before the reply finished",
            f"{base_url} stopped sending mid-reply"
            + (f" ({reason})" if reason else "")
            + ". The text received so far is kept.",
            request_id=request_id,
        )
    return BackendError(
        ErrorKind.CONNECTION,
        f"Could not connect to {base_url}",
        (f"{reason}. " if reason else "")
        + "Check the endpoint in the profile and the network (proxy, VPN, firewall).",
        request_id=request_id,
    )


def explain_answer(
    answer: StatusAnswer,
    *,
    profile: Profile,
    settings: GenerationSettings | None = None,
    operation: Operation = "create",
    secrets: Sequence[str] = (),
) -> BackendError:
    """Map an HTTP error answer to a `BackendError`."""
    return _explain_status(
        answer,
        profile=profile,
        base_url=base_url_for(profile),
        scope=entra_scope_for(profile),
        model=settings.model if settings is not None else None,
        operation=operation,
        secrets=secrets,
    )


def translatable() -> tuple[type[Exception], ...]:
    """What `explain` turns into words a user can act on: the SDK's errors, the transport's
    (httpx2, OSError: sockets, TLS, timeouts), azure-identity's, a body that is not JSON,
    and our own. The backend catches only these; anything else is a bug in this program
    and is let through, to be logged as one (foundry_tui.core.logs), not shown as the
    server's fault."""
    global _translatable
    if _translatable is None:
        import json

        import httpx2
        import openai

        kinds: list[type[Exception]] = [
            openai.OpenAIError,
            httpx2.HTTPError,
            httpx2.InvalidURL,
            OSError,
            json.JSONDecodeError,
            BackendError,
        ]
        try:
            from azure.core.exceptions import AzureError

            kinds.append(AzureError)
        except ImportError:  # azure-identity is a dependency; an embedder may lack it
            pass
        _translatable = tuple(kinds)
    return _translatable


_translatable: tuple[type[Exception], ...] | None = None


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
        return timeout_error(base_url, operation, request_id)

    if isinstance(exc, openai.APIConnectionError):
        return connection_error(
            base_url, operation, exc.__cause__, secrets=secrets, request_id=request_id
        )

    if isinstance(exc, openai.APIStatusError):
        return _explain_status(
            StatusAnswer.from_sdk(exc),
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

    return unexpected_error(base_url, operation, exc, secrets=secrets, request_id=request_id)


def unexpected_error(
    base_url: str,
    operation: Operation,
    exc: BaseException,
    *,
    secrets: Sequence[str] = (),
    request_id: str | None = None,
) -> BackendError:
    """A failure nothing above explains (a frame that is not JSON, a bug in a library)."""
    return BackendError(
        ErrorKind.STREAM if operation == "stream" else ErrorKind.CONNECTION,
        f"Unexpected failure talking to {base_url}",
        f"{type(exc).__name__}: {clean_text(exc, secrets=secrets)}",
        request_id=request_id,
    )


def _explain_status(
    exc: StatusAnswer,
    *,
    profile: Profile,
    base_url: str,
    scope: str,
    model: str | None,
    operation: Operation,
    secrets: Sequence[str],
) -> BackendError:
    status: int = exc.status_code
    bodies = error_objects(_body(exc))
    raw_code = _first_field(bodies, "code") or exc.code
    raw_param = _first_field(bodies, "param") or exc.param
    code: str | None = clean_text(raw_code, limit=80) or None if raw_code else None
    param: str | None = clean_text(raw_param, limit=80) or None if raw_param else None
    headers = exc.headers
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
        about_previous = _says_previous_not_found(bodies) or (
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
        if _says_previous_not_found(bodies):
            return _previous_not_found(fields, server_said)
        if operation in ("retrieve", "input_items", "delete") and _says_id_not_found(bodies, param):
            return BackendError(
                ErrorKind.NOT_FOUND,
                "Response not found on the server",
                "The server answered 400 for this response id: it expired, was deleted, or "
                "was never issued by this endpoint." + server_said,
                **fields,
            )
        if _is_content_filter(code, bodies):
            return _content_filter_error(bodies, where="prompt", **fields)
        refused = refused_parameter(bodies, code, param)
        if refused is not None:
            fields["param"] = refused
            title, advice = _REFUSAL_WORDS.get(refused, _REFUSAL_WORDS["reasoning"])
            if code == "unsupported_value":  # the parameter, but not this value of it
                title = f"the {title.removeprefix('a ')} sent"
            return BackendError(
                ErrorKind.UNSUPPORTED_PARAMETER,
                f"{what} does not accept {title}",
                advice + server_said,
                **fields,
            )
        unsupported = code in _REFUSAL_CODES or ("not supported" in said.lower() and param)
        if unsupported:
            name = f"'{param}'" if param else "a setting that was sent"
            return BackendError(
                ErrorKind.UNSUPPORTED_PARAMETER,
                f"{what} does not accept {name}",
                "Clear it in the sidebar and send again." + server_said,
                **fields,
            )
        refused_file = _attachment_refusal(code, param, said, what)
        if refused_file is not None:
            return BackendError(
                ErrorKind.BAD_REQUEST, ATTACHMENT_REFUSED, refused_file + server_said, **fields
            )
        return BackendError(
            ErrorKind.BAD_REQUEST,
            "The server rejected the request (400)",
            (said or "No reason given.") + (f" (parameter: {param})" if param else ""),
            **fields,
        )

    if status == 429:
        wait = retry_after_seconds(headers)
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


# The parameters this app sends that a deployment may refuse, by the API's name (a nested
# one dotted), with how the refusal reads: what was refused, and what to do about it.
_REFUSAL_WORDS: dict[str, tuple[str, str]] = {
    "temperature": (
        "temperature",
        "This model (a reasoning model) does not accept temperature/top_p; clear them "
        "in the sidebar, or resend without them.",
    ),
    "top_p": (
        "top_p",
        "This model (a reasoning model) does not accept temperature/top_p; clear them "
        "in the sidebar, or resend without them.",
    ),
    "reasoning": (
        "reasoning settings",
        "It is not a reasoning model: set Reasoning effort to server default and Reasoning "
        "summary to off, or resend without them.",
    ),
    "reasoning.effort": (
        "a reasoning effort",
        "It is not a reasoning model, or does not take this effort: set Reasoning effort to "
        "server default (or another value), or resend without it.",
    ),
    "reasoning.summary": (
        "a reasoning summary",
        "It does not give reasoning summaries (or not this kind): set Reasoning summary to "
        "off, or resend without it.",
    ),
    "text.verbosity": (
        "a verbosity",
        "Set Verbosity to server default, or resend without it.",
    ),
    "prompt_cache_key": (
        "a prompt cache key",
        "The app sends the conversation's id as a cache key by itself; it is left out for "
        "this deployment from now on.",
    ),
    "include": (
        "'include'",
        "The app asks for the model's encrypted reasoning by itself; it is left out for this "
        "deployment from now on.",
    ),
}
# Other names a server (or a gateway in front of it) gives the same parameters.
_ALIASES = {
    "reasoning_effort": "reasoning.effort",
    "reasoning_summary": "reasoning.summary",
    "reasoning.generate_summary": "reasoning.summary",
    "verbosity": "text.verbosity",
    "text": "text.verbosity",
}
_REFUSAL_CODES = frozenset(
    {"unsupported_parameter", "unsupported_value", "unknown_parameter", "unrecognized_parameter"}
)
_REFUSAL_WORDS_IN_TEXT = (
    "unsupported parameter",
    "unsupported value",
    "unknown parameter",
    "unrecognized request argument",
    "unrecognized parameter",
    "not supported",
    "does not support",
    "is not allowed",
)
# A parameter named in a message: quoted, or after "argument supplied:".
_NAMED = re.compile(
    r"""['"`](?P<quoted>[a-z_]+(?:\.[a-z_]+)?)(?:\[\d*\])?['"`]"""
    r"|argument supplied:\s*(?P<bare>[a-z_]+(?:\.[a-z_]+)?)",
    re.IGNORECASE,
)


def _known_parameter(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().lower()
    name = re.sub(r"\[\d*\]$", "", name)  # include[0]
    name = _ALIASES.get(name, name)
    return name if name in REFUSABLE else None


def refused_parameter(
    bodies: Sequence[Mapping[str, Any]], code: str | None, param: str | None
) -> str | None:
    """The parameter this app sends that a 400 refuses, by its API name, or None.

    Read from the error's ``param`` where a server gives it, else from its message: a
    gateway that rewraps the upstream error as text keeps only the words ("Unsupported
    parameter: 'reasoning.effort' is not supported with this model.")."""
    messages = [_words(m) for m in _messages(bodies)]
    refusing = code in _REFUSAL_CODES or any(
        words in message for message in messages for words in _REFUSAL_WORDS_IN_TEXT
    )
    if not refusing:
        return None
    named = _known_parameter(param)
    if named is not None:
        return named
    for body in reversed(bodies):
        for match in _NAMED.finditer(str(body.get("message") or "")[:_MAX_EMBEDDED_TEXT]):
            found = _known_parameter(match.group("quoted") or match.group("bare"))
            if found is not None:
                return found
    return None


#: The title of a 400 about an attached file; the session names the file when the
#: server's ``param`` points at it (``input[2].content[1].image_url``).
ATTACHMENT_REFUSED: Final = "The server refused an attached file"
_CONTENT_PARAM: Final = re.compile(r"input\[\d+\]\.content\[\d+\]")
_ATTACHMENT_CODES: Final = frozenset(
    {"invalid_image", "invalid_image_format", "image_too_large", "invalid_file", "file_too_large"}
)


def _attachment_refusal(code: str | None, param: str | None, said: str, what: str) -> str | None:
    """What to do about a 400 that refuses an image or a file; None when it is not one."""
    lowered = said.lower()
    about_file = (
        code in _ATTACHMENT_CODES
        or (param is not None and _CONTENT_PARAM.match(param) is not None)
        or any(word in lowered for word in ("image", "input_file", "file_data", "pdf"))
    )
    if not about_file:
        return None
    if (
        "only supported by certain models" in lowered
        or "vision" in lowered
        or ("support" in lowered and "image" in lowered and "model" in lowered)
    ):
        return (
            f"{what} does not read images or files. Pick a deployment that does (gpt-4o, "
            "gpt-4.1, gpt-5 and later), or send the prompt without the attachment."
        )
    if any(word in lowered for word in ("too large", "too big", "exceed", "maximum size")):
        return (
            "It is larger than this server takes (the API documents 20 MB an image and "
            "50 MB for a request's files). Send a smaller file."
        )
    if code in ("invalid_image", "invalid_image_format") or "image" in lowered:
        return (
            "The server could not read it as an image: it takes PNG, JPEG, WebP and "
            "non-animated GIF images that are not damaged."
        )
    return "The server could not read it (only PDF files go as files). Check the file."


def _previous_not_found(fields: dict[str, Any], server_said: str) -> BackendError:
    return BackendError(
        ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND,
        "The previous reply is no longer on the server",
        "It expired (stored responses are kept about 30 days) or was deleted; the conversation "
        "has to be sent again as a transcript." + server_said,
        **fields,
    )
