"""Where a redirect may lead: the same origin only, for every transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from foundry_tui.backend.errors import clean_text
from foundry_tui.core.models import BackendError, ErrorKind

__all__ = ["redirect_guard"]


def _origin(url: Any) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def redirect_guard(base_url: str) -> Callable[[Any], Awaitable[None]]:
    """A response hook that stops a redirect to another origin (scheme, host or port):
    followed, it would post the prompt, the transcript and the key there. A redirect
    within the origin (a path moved on the same server) is followed, as before."""

    async def guard(response: Any) -> None:
        if not response.has_redirect_location:
            return
        import httpx2  # loaded with the transport already

        here = response.request.url
        try:
            target = here.join(response.headers["location"])
            if _origin(target) == _origin(here):
                return
            where = clean_text(f"{target.scheme}://{target.netloc.decode('ascii')}", limit=120)
        except (KeyError, ValueError, UnicodeError, httpx2.InvalidURL):
            # an address httpx cannot read: not followed either
            where = "an address that is not a valid URL"
        raise BackendError(
            ErrorKind.CONFIG,
            f"The server redirected the request to {where}",
            f"{base_url} answered {response.status_code} pointing to another host; the "
            "request was not sent there. If the service has moved, set the profile's "
            "endpoint to its new address.",
            status_code=response.status_code,
        )

    return guard
