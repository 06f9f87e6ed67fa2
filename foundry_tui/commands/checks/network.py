"""DNS and TLS for the configured endpoint's host, and nothing else."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from foundry_tui.commands.checks import CheckResult, Context, fail, in_thread, passed, warn
from foundry_tui.config.endpoints import base_url_for
from foundry_tui.core.guards import is_loopback
from foundry_tui.core.models import AuthMethod, EndpointKind

__all__ = ["Target", "check_dns", "check_tls", "target_of"]

# A certificate that ends sooner than this is worth a warning.
CERTIFICATE_NOTICE = timedelta(days=14)


@dataclass(frozen=True)
class Target:
    """Where the client's requests go: scheme, host, port, and a proxy if one is used."""

    scheme: str
    host: str
    port: int
    proxy: str | None  # host:port, never the user and password it may carry


def target_of(ctx: Context) -> Target | None:
    profile = ctx.profile
    if profile is None or profile.kind is EndpointKind.LOCAL:
        return None
    parts = urlsplit(base_url_for(profile))
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Target(parts.scheme, host, port, _proxy_for(ctx, parts.scheme, host))


def _proxy_for(ctx: Context, scheme: str, host: str) -> str | None:
    """The proxy the client (which trusts the environment) sends this host's requests to."""
    env = {k.lower(): v for k, v in ctx.seams.env.items() if k.lower().endswith("_proxy")}
    proxies = {name.removesuffix("_proxy"): value for name, value in env.items() if value}
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy:
        return None
    if is_loopback(host) or _bypassed(host, env.get("no_proxy", "")):
        return None
    try:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        port = parts.port
    except ValueError:
        return "(a proxy URL that cannot be read)"
    return f"{parts.hostname or '?'}" + (f":{port}" if port else "")


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY (comma-separated hosts and domain suffixes, or *) covers ``host``."""
    host = host.lower().rstrip(".")
    for entry in (item.strip().lower().lstrip(".") for item in no_proxy.split(",")):
        entry = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def check_dns(ctx: Context) -> list[CheckResult]:
    target = target_of(ctx)
    if target is None:
        return []
    host = target.host
    if target.proxy is not None:
        return [passed("dns", "DNS", f"n/a: requests go through the proxy {target.proxy}")]
    if _is_address(host):
        return [passed("dns", "DNS", f"n/a: {host} is an address")]
    timeout = ctx.seams.timeouts.dns
    try:
        addresses = await in_thread(lambda: ctx.seams.resolve(host, target.port), timeout)
    except TimeoutError:
        return [
            fail(
                "dns",
                "DNS",
                f"no answer for {host} within {timeout:g} s",
                "Check the network: the DNS server, a VPN that should be on, or set "
                "HTTPS_PROXY if this network needs a proxy.",
            )
        ]
    except OSError as error:
        reason = error.strerror or str(error)
        return [
            fail(
                "dns",
                "DNS",
                f"{host} does not resolve ({reason})",
                "Check the host name in the endpoint (a typo in the resource or account "
                "name?), then the network: VPN, DNS, or HTTPS_PROXY if a proxy is needed.",
            )
        ]
    if not addresses:
        return [fail("dns", "DNS", f"{host} resolves to no address", "Check the host name.")]
    shown = ", ".join(addresses[:3]) + (" …" if len(addresses) > 3 else "")
    return [passed("dns", "DNS", f"{host} → {shown}")]


async def check_tls(ctx: Context) -> list[CheckResult]:
    target = target_of(ctx)
    profile = ctx.profile
    if target is None or profile is None:
        return []
    where = f"{target.host}:{target.port}"
    if target.scheme == "http":
        if is_loopback(target.host):
            return [passed("tls", "TLS", f"n/a: plain http to {where} on this machine")]
        what = {
            AuthMethod.API_KEY: "the API key, prompts and replies",
            AuthMethod.ENTRA_ID: "the Entra ID token, prompts and replies",
            AuthMethod.NONE: "prompts and replies",
        }[profile.auth]
        return [
            warn(
                "tls",
                "TLS",
                f"none: plain http to {where}, so {what} travel unencrypted",
                "Use https:// if the server offers it.",
            )
        ]
    if target.proxy is not None:
        return [passed("tls", "TLS", f"n/a: requests go through the proxy {target.proxy}")]
    timeout = ctx.seams.timeouts.tls
    handshake = ctx.seams.tls_handshake
    try:
        session = await in_thread(lambda: handshake(target.host, target.port, timeout), timeout)
    except ssl.SSLCertVerificationError as error:
        reason = error.verify_message or error.reason or str(error)
        return [
            fail(
                "tls",
                "TLS",
                f"the certificate of {where} is not accepted ({reason})",
                "Check the host name in the endpoint. If a company proxy inspects TLS, set "
                "SSL_CERT_FILE to its CA bundle (PEM).",
            )
        ]
    except ssl.SSLError as error:
        reason = error.reason or str(error)
        plain = any(
            word in str(reason).upper()
            for word in ("WRONG_VERSION_NUMBER", "RECORD_LAYER", "PACKET_LENGTH", "HTTP_REQUEST")
        )
        fix = (
            "The port answered without TLS: for a server on this machine use http://, "
            "or check the port in the endpoint."
            if plain
            else "Check the port in the endpoint and that the server speaks HTTPS there."
        )
        return [fail("tls", "TLS", f"the TLS handshake with {where} failed ({reason})", fix)]
    except TimeoutError:
        return [
            fail(
                "tls",
                "TLS",
                f"no TLS handshake with {where} within {timeout:g} s",
                "Check the network (firewall, VPN) and the port in the endpoint.",
            )
        ]
    except ConnectionRefusedError:
        return [
            fail(
                "tls",
                "TLS",
                f"{where} refused the connection",
                "Check the port in the endpoint and that the server is running.",
            )
        ]
    except OSError as error:
        reason = error.strerror or str(error)
        return [
            fail(
                "tls",
                "TLS",
                f"could not connect to {where} ({reason})",
                "Check the network (firewall, VPN, proxy) and the endpoint.",
            )
        ]
    detail = f"{session.version} with {where}, certificate valid for {target.host}"
    if session.not_after is not None:
        now = datetime.fromtimestamp(ctx.seams.wall_clock(), UTC)
        until = session.not_after.strftime("%Y-%m-%d")
        if session.not_after - now < CERTIFICATE_NOTICE:
            return [
                warn(
                    "tls",
                    "TLS",
                    f"{detail}, but only until {until}",
                    "The server's certificate ends soon: tell whoever runs it.",
                )
            ]
        detail += f" until {until}"
    return [passed("tls", "TLS", detail)]
