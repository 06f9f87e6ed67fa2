"""Authentication (the key's variable, or an Entra ID token) and the deployment answering
one minimal request, explained in the backend's own words (backend/errors.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from foundry_tui.backend.client import Backend
from foundry_tui.backend.errors import clean_text, explain
from foundry_tui.commands.checks import CheckResult, Context, fail, in_thread, passed, warn
from foundry_tui.config.endpoints import base_url_for, entra_scope_for
from foundry_tui.core.guards import key_problem
from foundry_tui.core.models import (
    AuthMethod,
    BackendError,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
    ResponseFinished,
)

__all__ = ["PROBE_PROMPT", "PROBE_TOKENS", "check_auth", "check_deployment", "model_of"]

PROBE_PROMPT = "Reply with the word OK."
PROBE_TOKENS = 16  # the smallest max_output_tokens Azure accepts
_SIGN_IN = (
    "Sign in with `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
    "AZURE_CLIENT_SECRET), or switch the profile to an API key."
)
_AZURE_KEY = re.compile(r"[0-9a-fA-F]{32}|[A-Za-z0-9]{84}")


def model_of(profile: Profile) -> str:
    """The deployment a new conversation would use."""
    model = profile.defaults.model if profile.defaults is not None else ""
    return model or (profile.deployments[0] if profile.deployments else "")


def _azure(profile: Profile) -> bool:
    return profile.kind in (EndpointKind.AZURE_OPENAI, EndpointKind.FOUNDRY_PROJECT)


async def check_auth(ctx: Context) -> list[CheckResult]:
    profile = ctx.profile
    if profile is None or profile.kind is EndpointKind.LOCAL:
        return []
    if profile.auth is AuthMethod.ENTRA_ID:
        return [await _entra_token(ctx, profile)]
    if profile.auth is AuthMethod.NONE:
        if _azure(profile):
            return [
                warn(
                    "auth",
                    "auth",
                    "the profile sends no key, and Azure endpoints want one (or Entra ID)",
                    'Set auth = "api_key" and api_key_env, or auth = "entra_id", in the profile.',
                )
            ]
        return [passed("auth", "auth", "none: the profile sends no key")]
    return [_api_key(ctx, profile)]


def _api_key(ctx: Context, profile: Profile) -> CheckResult:
    """The key's variable and the key's shape; the key itself is never shown."""
    name = profile.api_key_env
    key = ctx.seams.env.get(name, "").strip()
    if not key:
        where = "Keys and Endpoint in the Azure portal" if _azure(profile) else "your provider"
        also = ' or switch the profile to Entra ID (auth = "entra_id")' if _azure(profile) else ""
        return fail(
            "auth",
            "auth",
            f"${name} is not set",
            f"Set {name} to the key for {base_url_for(profile)} (from {where}){also}.",
        )
    problem = key_problem(key)
    if problem is not None:
        return fail(
            "auth",
            "auth",
            f"the key in ${name} {problem}",
            f"Set {name} again: a key is one line of printable characters.",
        )
    odd = _odd_key(profile, key)
    if odd is not None:
        return warn("auth", "auth", f"the key in ${name} {odd[0]}", odd[1])
    return passed("auth", "auth", f"key in ${name} (not shown)")


def _odd_key(profile: Profile, key: str) -> tuple[str, str] | None:
    """What about the key's shape would make a server refuse it: (what, fix)."""
    name = profile.api_key_env
    if key[0] in "'\"" and key[-1] == key[0]:
        return "is wrapped in quotes", f"Set {name} to the key without the quotes."
    if key.lower().startswith("bearer "):
        return "starts with 'Bearer '", f"Set {name} to the key alone; the client adds Bearer."
    if any(ch.isspace() for ch in key):
        return "holds a space", f"Set {name} again: keys hold no spaces."
    if _azure(profile) and key.startswith("sk-"):
        return (
            "reads like an OpenAI key (sk-…), and the endpoint is Azure",
            f"Set {name} to the resource's key (Azure portal → Keys and Endpoint).",
        )
    if profile.kind is EndpointKind.OPENAI and _AZURE_KEY.fullmatch(key):
        return (
            "reads like an Azure key, and the endpoint is OpenAI",
            f"Set {name} to an OpenAI key (sk-…), or point the profile at the Azure resource.",
        )
    return None


async def _entra_token(ctx: Context, profile: Profile) -> CheckResult:
    scope = entra_scope_for(profile)
    timeout = ctx.seams.timeouts.token
    try:
        ctx.credential = ctx.seams.credential()
        async with asyncio.timeout(timeout):
            token = await ctx.credential.get_token(scope)
    except TimeoutError:
        return fail("auth", "auth", f"no Entra ID token for {scope} within {timeout:g} s", _SIGN_IN)
    except Exception as exc:
        error = explain(exc, profile=profile)
        if error.kind is ErrorKind.AUTH:
            return fail("auth", "auth", f"{error.title} for {scope}", error.detail)
        said = clean_text(exc, limit=200)
        return fail(
            "auth",
            "auth",
            f"could not get an Entra ID token for {scope} ({type(exc).__name__}: {said})",
            _SIGN_IN,
        )
    minutes = int((float(token.expires_on) - ctx.seams.wall_clock()) // 60)
    return passed("auth", "auth", f"Entra ID token for {scope} (valid {minutes} more minutes)")


async def check_deployment(ctx: Context) -> list[CheckResult]:
    """One minimal request, as the app makes it: a 16-token reply, not stored; with no
    deployment named, the model list instead."""
    profile = ctx.profile
    if profile is None or profile.kind is EndpointKind.LOCAL:
        return []
    timeout = ctx.seams.timeouts.deployment
    model = model_of(profile)
    base = base_url_for(profile)
    backend = Backend(
        profile, env=ctx.seams.env, max_retries=0, timeout=timeout, credential=ctx.credential
    )
    started = ctx.seams.monotonic()
    try:
        async with asyncio.timeout(timeout):
            # The client first (importing openai takes a second or more): the time shown
            # is the server's.
            await in_thread(backend.warm_up, timeout)
            started = ctx.seams.monotonic()
            if not model:
                names = await backend.list_models()
                listed = f"{len(names)} models" if names else "no models"
                return [passed("deployment", "deployment", f"{base} answers ({listed} listed)")]
            finished = await _ask(backend, model)
    except TimeoutError:
        return [
            fail(
                "deployment",
                "deployment",
                f"{base} did not answer within {timeout:g} s",
                "Check the network (proxy, VPN, firewall); a busy server: try again.",
            )
        ]
    except BackendError as error:
        return [_explained(error, model)]
    finally:
        await backend.aclose()
    seconds = ctx.seams.monotonic() - started
    if finished is not None and finished.status is MessageStatus.FAILED:
        return [
            warn(
                "deployment",
                "deployment",
                f"'{model}' answered, but the reply failed: {finished.error or 'no reason given'}",
                "Try the deployment in the Azure AI Foundry playground; check its status there.",
            )
        ]
    return [passed("deployment", "deployment", f"'{model}' answered in {seconds:.1f} s")]


async def _ask(backend: Backend, model: str) -> ResponseFinished | None:
    finished: ResponseFinished | None = None
    events = backend.stream_reply(
        settings=GenerationSettings(model=model, max_output_tokens=PROBE_TOKENS),
        input=[InputMessage(MessageRole.USER, PROBE_PROMPT)],
        previous_response_id=None,
        store=False,
    )
    try:
        async for event in events:
            if isinstance(event, ResponseFinished):
                finished = event
    finally:  # a timeout ends the request, not only the wait for it
        close: Callable[[], Awaitable[None]] | None = getattr(events, "aclose", None)
        if close is not None:
            await close()
    return finished


def _explained(error: BackendError, model: str) -> CheckResult:
    code = f" [{error.code}]" if error.code and error.code not in error.title else ""
    detail = f"{error.title}{code}"
    if error.kind is ErrorKind.DEPLOYMENT_NOT_FOUND:
        said = error.detail.partition(" Server said: ")[2]
        fix = (
            f"Check the name '{model}' among the deployments (Azure portal or Foundry → "
            "Deployments; the provider's model list elsewhere), then set it in the profile's "
            "deployments and [defaults] model."
        )
        return fail(
            "deployment", "deployment", detail, fix + (f"\nServer said: {said}" if said else "")
        )
    if error.kind is ErrorKind.RATE_LIMITED:
        return warn("deployment", "deployment", f"'{model}' answered: {detail}", error.detail)
    if error.kind is ErrorKind.NOT_FOUND:  # no model list: the deployment is typed instead
        return warn("deployment", "deployment", detail, error.detail)
    return fail("deployment", "deployment", detail, error.detail)
