"""What `foundry-tui doctor` needs from the HTTP side, seen exactly as the client sees it:
the TLS trust the OpenAI client's connections use, and the Entra ID credential it signs
in with. `httpx2` and `azure.identity` are imported inside the functions, as elsewhere in
the backend."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["TlsSession", "default_credential", "ssl_context", "tls_handshake"]


@dataclass(frozen=True)
class TlsSession:
    """What a completed handshake showed: the protocol and the certificate's end of life."""

    version: str
    not_after: datetime | None


def ssl_context() -> Any:
    """The context the client's connections verify with (honours SSL_CERT_FILE and
    SSL_CERT_DIR like the client does), so a pass here means a pass there."""
    import httpx2

    return httpx2.create_ssl_context()


def tls_handshake(host: str, port: int, timeout: float) -> TlsSession:
    """Connects to ``host:port``, completes a TLS handshake that checks the certificate
    against the host name, and hangs up. Raises OSError (ssl.SSLError among them)."""
    import ssl

    context = ssl_context()
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        certificate = tls.getpeercert() or {}
        version = tls.version() or "TLS"
    not_after = certificate.get("notAfter")
    expires = (
        datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
        if isinstance(not_after, str)
        else None
    )
    return TlsSession(version=version, not_after=expires)


def default_credential() -> Any:
    """The credential the backend signs in with when none is given."""
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()
