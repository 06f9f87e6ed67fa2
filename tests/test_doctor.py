"""`foundry-tui doctor`, in-process: every FAIL a check can give, and the PASS paths.

Everything stays on 127.0.0.1: the deployment answers from tests/responses_server.py, a
failed TLS handshake comes from an https:// URL at a plain-HTTP port, a bad certificate
from a TLS server started here, and DNS failures from an injected resolver (no real name is
ever resolved). The local model's discovery, the disk's free space and file permissions
are injected too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import io
import json
import socket
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from foundry_tui.commands import doctor
from foundry_tui.commands.checks import (
    CheckResult,
    Context,
    LocalProbe,
    Options,
    Seams,
    Status,
    Timeouts,
)
from foundry_tui.commands.checks.network import check_tls
from foundry_tui.commands.checks.setup import check_endpoint
from foundry_tui.core.models import AuthMethod, EndpointKind, Profile
from foundry_tui.store import Store
from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import Fault, ResponsesServer

NO_LOCAL = LocalProbe(runtime_installed=lambda: False, bundled_model=lambda: None)
PLENTY = 50_000_000_000
NOW = 1_900_000_000.0  # the wall clock the Entra ID tests see
AZURE_KEY = "0123456789abcdef" * 2  # the shape of an Azure resource's key


def never_resolve(host: str, port: int) -> list[str]:
    raise AssertionError(f"the test resolved {host}: no real name may be looked up")


def seams(**changes: Any) -> Seams:
    """Seams that never leave 127.0.0.1: the key in the environment, no local model, a
    resolver that refuses, plenty of disk."""
    base = Seams(
        env={KEY_VARIABLE: TEST_KEY},
        resolve=never_resolve,
        local=NO_LOCAL,
        free_bytes=lambda path: PLENTY,
        timeouts=Timeouts(dns=1, tls=2, token=1, deployment=5, database=5),
    )
    return dataclasses.replace(base, **changes)


def offline(**changes: Any) -> Seams:
    """Seams with no key in the environment: the auth check fails, so no request is sent
    (for tests about something else)."""
    return seams(env={}, **changes)


def write_config(
    tmp_path: Path,
    endpoint: str,
    *,
    kind: str = "compatible",
    auth: str = "api_key",
    model: str = "gpt-4o",
    extra: str = "",
) -> Path:
    path = tmp_path / "config.toml"
    lines = [
        "[profiles.work]",
        f'kind = "{kind}"',
        f'endpoint = "{endpoint}"',
        f'auth = "{auth}"',
        f'api_key_env = "{KEY_VARIABLE}"',
        f'deployments = ["{model}"]' if model else "",
        extra,
        "[ui]",
        f'db_path = "{tmp_path / "history.db"}"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def check(
    config: Path, the_seams: Seams | None = None, **options: Any
) -> dict[str, CheckResult]:
    results = [
        r async for r in doctor.run_checks(Options(config=config, **options), the_seams or seams())
    ]
    found = {result.check: result for result in results}
    assert len(found) == len(results), "a check reported twice"
    return found


def report(config: Path, *flags: str, the_seams: Seams | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = doctor.main(["--config", str(config), *flags], seams=the_seams or seams(), out=out)
    return code, out.getvalue()


def statuses(found: dict[str, CheckResult]) -> dict[str, str]:
    return {name: result.status.value for name, result in found.items()}


@pytest.fixture
def server() -> Iterator[ResponsesServer]:
    with ResponsesServer(api_key=TEST_KEY, deployments={"gpt-4o"}) as running:
        yield running


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------------------
# The whole run, against the local server


async def test_a_working_setup_passes_every_check(tmp_path: Path, server: ResponsesServer) -> None:
    found = await check(write_config(tmp_path, server.base_url))
    assert statuses(found) == {
        "config": "PASS",
        "profile": "PASS",
        "endpoint": "PASS",
        "dns": "PASS",
        "tls": "PASS",
        "auth": "PASS",
        "deployment": "PASS",
        "database": "PASS",
        "disk": "PASS",
    }
    assert "'gpt-4o' answered" in found["deployment"].detail
    assert "n/a" in found["tls"].detail and "this machine" in found["tls"].detail
    assert found["auth"].detail == f"key in ${KEY_VARIABLE} (not shown)"
    # One minimal request, stored nowhere.
    (body,) = server.created()
    assert body["max_output_tokens"] == 16 and body["store"] is False
    assert body["model"] == "gpt-4o"
    assert "temperature" not in body and "top_p" not in body  # reasoning models refuse them


def test_exit_status_and_lines(tmp_path: Path, server: ResponsesServer) -> None:
    code, text = report(write_config(tmp_path, server.base_url))
    assert code == 0
    lines = text.splitlines()
    assert [line.split()[0] for line in lines] == ["PASS"] * 9
    assert lines[0].startswith("PASS  config         ")
    assert TEST_KEY not in text


def test_json_prints_one_object_per_check(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    code, text = report(config, "--json", the_seams=seams(env={}))
    assert code == 1
    objects = [json.loads(line) for line in text.splitlines()]
    assert [o["check"] for o in objects] == [
        "config",
        "profile",
        "endpoint",
        "dns",
        "tls",
        "auth",
        "database",
        "disk",
    ]
    auth = objects[5]
    assert auth["status"] == "FAIL" and auth["detail"] == f"${KEY_VARIABLE} is not set"
    assert KEY_VARIABLE in auth["fix"]
    assert set(objects[0]) == {"check", "status", "title", "detail", "fix"}


# ---------------------------------------------------------------------------
# config and profile


async def test_config_that_is_not_toml_fails_with_the_loaders_words(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[profiles.work\nkind = 1\n", encoding="utf-8")
    found = await check(config)
    assert list(found) == ["config"]  # everything else needs it
    result = found["config"]
    assert result.status is Status.FAIL
    assert "not valid TOML" in result.detail and str(config) in result.detail
    assert "line 1" in result.detail and "Edit" in result.fix


async def test_config_with_an_unknown_key_fails_with_the_hint(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", extra="deployment = 'x'")
    found = await check(config)
    assert found["config"].status is Status.FAIL
    assert "unknown key 'deployment'" in found["config"].detail
    assert "did you mean 'deployments'" in found["config"].detail


async def test_missing_config_file_warns_with_the_setup_hint(tmp_path: Path) -> None:
    found = await check(tmp_path / "nowhere.toml")
    assert found["config"].status is Status.WARN
    assert "setup screen" in found["config"].fix
    assert found["profile"].status is Status.WARN
    assert "endpoint" not in found and "deployment" not in found


async def test_unknown_profile_fails_and_names_the_known_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    found = await check(config, profile="play")
    assert found["config"].status is Status.PASS  # the file itself is fine
    profile = found["profile"]
    assert profile.status is Status.FAIL
    assert "'play'" in profile.detail and "(work)" in profile.fix
    assert "endpoint" not in found and "auth" not in found


async def test_profile_says_which_one_and_why(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    found = await check(
        config, seams(env={KEY_VARIABLE: TEST_KEY}, resolve=never_resolve), profile="work"
    )
    assert found["profile"].detail.startswith("'work' (compatible, key from $")
    assert found["profile"].detail.endswith("--profile)")


# ---------------------------------------------------------------------------
# the endpoint URL's shape (no network)


def endpoint_result(endpoint: str, kind: EndpointKind, **fields: Any) -> CheckResult:
    profile = Profile(name="p", kind=kind, endpoint=endpoint, **fields)
    ctx = Context(options=Options(), seams=seams())
    ctx.profile = profile
    (result,) = asyncio.run(check_endpoint(ctx))
    return result


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("https://gateway.example.test/v1/responses", "operation's URL (it ends in /responses)"),
        ("https://gateway.example.test/v1/chat/completions", "ends in /chat/completions"),
        ("https://gateway.example.test/v1?api-version=2024-10-21", "carries a query"),
        ("https://gateway.example.test:port/v1", "not a usable URL"),
        ("ftp://gateway.example.test/v1", "not an http(s) URL"),
    ],
)
def test_endpoint_shapes_that_cannot_work_fail(endpoint: str, words: str) -> None:
    result = endpoint_result(endpoint, EndpointKind.COMPATIBLE)
    assert result.status is Status.FAIL, result
    assert words in result.detail
    assert result.fix


def test_an_azure_host_under_another_kind_fails() -> None:
    result = endpoint_result("https://myres.openai.azure.com", EndpointKind.COMPATIBLE)
    assert result.status is Status.FAIL
    assert 'kind = "azure"' in result.fix


def test_azure_portal_url_with_api_version_warns_what_is_ignored() -> None:
    url = (
        "https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21"
    )
    result = endpoint_result(url, EndpointKind.AZURE_OPENAI)
    assert result.status is Status.WARN
    assert "api-version=2024-10-21 is ignored" in result.detail
    assert "/openai/deployments/gpt-4o/chat/completions is ignored" in result.detail
    assert "https://myres.openai.azure.com/openai/v1/" in result.detail


def test_endpoint_kinds_pass_and_say_where_requests_go() -> None:
    azure = endpoint_result("https://myres.cognitiveservices.azure.com/", EndpointKind.AZURE_OPENAI)
    assert azure.status is Status.PASS
    assert (
        azure.detail
        == "Azure OpenAI resource: requests go to https://myres.openai.azure.com/openai/v1/"
    )
    project = "https://acct.services.ai.azure.com/api/projects/proj"
    foundry = endpoint_result(project, EndpointKind.FOUNDRY_PROJECT)
    assert foundry.status is Status.PASS
    assert foundry.detail == f"Foundry project: requests go to {project}/openai/v1"


def test_a_scope_for_the_other_kind_of_endpoint_warns() -> None:
    result = endpoint_result(
        "https://acct.services.ai.azure.com/api/projects/proj",
        EndpointKind.FOUNDRY_PROJECT,
        auth=AuthMethod.ENTRA_ID,
        scope="https://cognitiveservices.azure.com/.default",
    )
    assert result.status is Status.WARN
    assert 'scope = "https://ai.azure.com/.default"' in result.fix


async def test_plain_http_to_another_machine_fails_with_the_guards_words(tmp_path: Path) -> None:
    found = await check(write_config(tmp_path, "http://10.1.2.3/v1"), offline())
    assert list(found) == ["config"]
    assert "plain http:// to 10.1.2.3" in found["config"].detail
    assert "allow_plain_http = true" in found["config"].detail


async def test_plain_http_to_another_machine_when_allowed_warns(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://10.1.2.3/v1", extra="allow_plain_http = true")
    found = await check(config, offline())  # no key: no request leaves
    assert found["tls"].status is Status.WARN
    assert found["tls"].detail == (
        "none: plain http to 10.1.2.3:80, so the API key, prompts and replies travel unencrypted"
    )


# ---------------------------------------------------------------------------
# DNS


async def test_a_name_that_does_not_resolve_fails_and_stops_the_network_checks(
    tmp_path: Path,
) -> None:
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    config = write_config(tmp_path, "https://myres.openai.azure.com", kind="azure")
    found = await check(config, seams(env={KEY_VARIABLE: AZURE_KEY}, resolve=resolve))
    assert asked == [("myres.openai.azure.com", 443)]
    dns = found["dns"]
    assert dns.status is Status.FAIL
    assert dns.detail == "myres.openai.azure.com does not resolve (Name or service not known)"
    assert "typo" in dns.fix
    assert "tls" not in found and "deployment" not in found
    assert found["auth"].status is Status.PASS  # independent of the network


async def test_a_resolver_that_never_answers_fails_within_its_timeout(tmp_path: Path) -> None:
    released = threading.Event()

    def resolve(host: str, port: int) -> list[str]:
        released.wait(30)
        return ["10.0.0.1"]

    config = write_config(tmp_path, "https://myres.openai.azure.com", kind="azure")
    the_seams = seams(resolve=resolve, timeouts=Timeouts(dns=0.05))
    try:
        found = await check(config, the_seams)
    finally:
        released.set()
    assert found["dns"].status is Status.FAIL
    assert found["dns"].detail == "no answer for myres.openai.azure.com within 0.05 s"


async def test_a_proxy_takes_dns_and_tls_out_of_doctors_hands(tmp_path: Path) -> None:
    config = write_config(tmp_path, "https://myres.openai.azure.com", kind="azure")
    # No key: the deployment check, which would reach the proxy, is left out.
    proxy = "http://me:secret@proxy.corp.test:8080"
    found = await check(config, seams(env={"HTTPS_PROXY": proxy}))
    assert "deployment" not in found
    assert found["dns"].detail == "n/a: requests go through the proxy proxy.corp.test:8080"
    assert found["tls"].status is Status.PASS and "proxy" in found["tls"].detail
    assert "secret" not in "".join(result.detail for result in found.values())


async def test_a_check_that_breaks_fails_alone_and_the_others_still_run(tmp_path: Path) -> None:
    def resolve(host: str, port: int) -> list[str]:
        raise ValueError("a resolver bug")

    config = write_config(tmp_path, "https://myres.openai.azure.com", kind="azure")
    found = await check(config, offline(resolve=resolve))
    assert found["dns"].status is Status.FAIL
    assert found["dns"].detail == "the check could not run (ValueError: a resolver bug)"
    assert "tls" not in found
    assert found["database"].status is Status.PASS


# ---------------------------------------------------------------------------
# TLS


async def test_https_to_a_plain_http_port_fails_the_handshake(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, f"https://127.0.0.1:{server.port}/v1")
    found = await check(config)
    tls = found["tls"]
    assert tls.status is Status.FAIL
    assert tls.detail.startswith(f"the TLS handshake with 127.0.0.1:{server.port} failed")
    assert "without TLS" in tls.fix and "http://" in tls.fix
    assert "deployment" not in found
    assert not server.created()


async def test_https_to_a_closed_port_fails(tmp_path: Path) -> None:
    port = free_port()
    found = await check(write_config(tmp_path, f"https://127.0.0.1:{port}/v1"))
    assert found["tls"].status is Status.FAIL
    assert found["tls"].detail == f"127.0.0.1:{port} refused the connection"


def make_certificate(tmp_path: Path, days: int) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key) valid for ``days``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Any]:
    """Starts a TLS server on 127.0.0.1 that completes handshakes and hangs up."""
    listeners: list[socket.socket] = []

    def start(days: int = 90) -> tuple[int, Path]:
        cert_file, key_file = make_certificate(tmp_path, days)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                try:
                    with context.wrap_socket(connection, server_side=True):
                        pass
                except (OSError, ssl.SSLError):
                    connection.close()

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1]), cert_file

    yield start
    for listener in listeners:
        listener.close()


def tls_result(port: int, the_seams: Seams | None = None) -> CheckResult:
    ctx = Context(options=Options(), seams=the_seams or seams())
    ctx.profile = Profile(
        name="p", kind=EndpointKind.COMPATIBLE, endpoint=f"https://127.0.0.1:{port}/v1"
    )
    (result,) = asyncio.run(check_tls(ctx))
    return result


def test_a_certificate_nobody_vouches_for_fails(tls_server: Any) -> None:
    port, _cert = tls_server()
    result = tls_result(port)
    assert result.status is Status.FAIL
    assert "is not accepted" in result.detail and "self-signed" in result.detail
    assert "SSL_CERT_FILE" in result.fix


def test_a_trusted_certificate_passes_and_one_about_to_end_warns(
    tls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert = tls_server(days=90)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted as the client would trust it
    result = tls_result(port)
    assert result.status is Status.PASS, result
    assert "certificate valid for 127.0.0.1 until" in result.detail
    soon, soon_cert = tls_server(days=3)
    monkeypatch.setenv("SSL_CERT_FILE", str(soon_cert))
    ending = tls_result(soon)
    assert ending.status is Status.WARN and "but only until" in ending.detail


# ---------------------------------------------------------------------------
# authentication


async def test_missing_key_variable_fails_without_a_request(
    tmp_path: Path, server: ResponsesServer
) -> None:
    found = await check(write_config(tmp_path, server.base_url), seams(env={}))
    auth = found["auth"]
    assert auth.status is Status.FAIL
    assert auth.detail == f"${KEY_VARIABLE} is not set"
    assert f"Set {KEY_VARIABLE} to the key for {server.base_url}" in auth.fix
    assert "deployment" not in found
    assert not server.requests


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (f'"{TEST_KEY}"', "is wrapped in quotes"),
        (f"Bearer {TEST_KEY}", "starts with 'Bearer '"),
        ("abc def", "holds a space"),
    ],
)
async def test_a_key_of_the_wrong_shape_warns_and_is_never_shown(
    tmp_path: Path, key: str, words: str
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    found = await check(config, seams(env={KEY_VARIABLE: key}, timeouts=Timeouts(deployment=0.01)))
    auth = found["auth"]
    assert auth.status is Status.WARN
    assert auth.detail == f"the key in ${KEY_VARIABLE} {words}"
    assert all(TEST_KEY not in text for r in found.values() for text in (r.detail, r.fix))


async def test_a_key_with_a_line_break_fails_the_auth_check_unshown(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    found = await check(config, seams(env={KEY_VARIABLE: "abc\ndef-0123456789"}))
    assert found["config"].status is Status.PASS
    auth = found["auth"]
    assert auth.status is Status.FAIL
    assert auth.detail == f"the key in ${KEY_VARIABLE} holds a line break (character 4 of 18)"
    assert "deployment" not in found
    assert "abc" not in auth.detail + auth.fix


def test_an_openai_key_for_an_azure_endpoint_warns() -> None:
    from foundry_tui.commands.checks.service import _api_key

    profile = Profile(
        name="p",
        kind=EndpointKind.AZURE_OPENAI,
        endpoint="https://r.openai.azure.com",
        api_key_env="K",
    )
    ctx = Context(options=Options(), seams=seams(env={"K": "sk-proj-0123456789abcdef"}))
    result = _api_key(ctx, profile)
    assert result.status is Status.WARN and "reads like an OpenAI key" in result.detail
    assert "sk-proj" not in result.detail + result.fix


class FakeCredential:
    """An azure.identity.aio credential: answers, raises, or never answers."""

    def __init__(self, outcome: str, token: str = TEST_KEY) -> None:
        self.outcome = outcome
        self.token = token
        self.scopes: list[str] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        if self.outcome == "raise":
            raise ClientAuthenticationError(
                "DefaultAzureCredential failed to retrieve a token from the included "
                "credentials.\nAzureCliCredential: Please run 'az login' to set up an account"
            )
        if self.outcome == "hang":
            await asyncio.sleep(3600)
        return AccessToken(self.token, int(NOW) + 3600)

    async def close(self) -> None:
        self.closed = True


async def test_entra_id_without_a_sign_in_fails_with_the_sources(tmp_path: Path) -> None:
    credential = FakeCredential("raise")
    config = write_config(tmp_path, "http://127.0.0.1:9/openai/v1", auth="entra_id")
    found = await check(config, seams(credential=lambda: credential))
    auth = found["auth"]
    assert auth.status is Status.FAIL
    assert (
        auth.detail
        == "Could not get an Entra ID token for https://cognitiveservices.azure.com/.default"
    )
    assert "az login" in auth.fix and "AzureCliCredential" in auth.fix
    assert "deployment" not in found
    assert credential.closed


async def test_entra_id_that_never_answers_fails_within_its_timeout(tmp_path: Path) -> None:
    credential = FakeCredential("hang")
    config = write_config(tmp_path, "http://127.0.0.1:9/openai/v1", auth="entra_id")
    found = await check(config, seams(credential=lambda: credential, timeouts=Timeouts(token=0.05)))
    assert found["auth"].status is Status.FAIL
    assert found["auth"].detail.startswith("no Entra ID token for")
    assert "az login" in found["auth"].fix


async def test_entra_id_token_is_used_for_the_deployment_check(
    tmp_path: Path, server: ResponsesServer
) -> None:
    credential = FakeCredential("answer", token=TEST_KEY)  # the server takes it as a bearer
    config = write_config(tmp_path, server.base_url, auth="entra_id")
    the_seams = seams(env={}, credential=lambda: credential, wall_clock=lambda: NOW)
    found = await check(config, the_seams)
    assert found["auth"].status is Status.PASS
    assert found["auth"].detail == (
        "Entra ID token for https://cognitiveservices.azure.com/.default (valid 60 more minutes)"
    )
    assert found["deployment"].status is Status.PASS
    assert credential.scopes[0] == "https://cognitiveservices.azure.com/.default"
    assert TEST_KEY not in "".join(r.detail + r.fix for r in found.values())


# ---------------------------------------------------------------------------
# the deployment answering


async def test_unknown_deployment_fails_with_deployment_not_found(
    tmp_path: Path, server: ResponsesServer
) -> None:
    found = await check(write_config(tmp_path, server.base_url, model="gtp-4o"))
    result = found["deployment"]
    assert result.status is Status.FAIL
    assert result.detail == "Deployment 'gtp-4o' not found [DeploymentNotFound]"
    assert "Check the name 'gtp-4o'" in result.fix
    assert "The API deployment for this resource does not exist" in result.fix


async def test_a_refused_key_fails_with_401(tmp_path: Path, server: ResponsesServer) -> None:
    server.inject(Fault.UNAUTHORIZED)
    found = await check(write_config(tmp_path, server.base_url))
    result = found["deployment"]
    assert result.status is Status.FAIL
    assert result.detail.startswith("Not authorized (401)")
    assert f"refused the key in ${KEY_VARIABLE}" in result.fix


async def test_a_forbidden_identity_fails_with_403(tmp_path: Path, server: ResponsesServer) -> None:
    server.inject(Fault.FORBIDDEN)
    found = await check(write_config(tmp_path, server.base_url))
    assert found["deployment"].status is Status.FAIL
    assert found["deployment"].detail.startswith("Access denied (403)")


async def test_a_server_error_fails(tmp_path: Path, server: ResponsesServer) -> None:
    server.inject(Fault.SERVER_ERROR)
    found = await check(write_config(tmp_path, server.base_url))
    assert found["deployment"].status is Status.FAIL
    assert found["deployment"].detail.startswith("Server error (500)")


async def test_rate_limited_warns_and_says_when(tmp_path: Path, server: ResponsesServer) -> None:
    server.inject(Fault.RATE_LIMIT, retry_after="7")
    found = await check(write_config(tmp_path, server.base_url))
    result = found["deployment"]
    assert result.status is Status.WARN
    assert result.detail.startswith("'gpt-4o' answered: Rate limited (429)")
    assert "Try again in 7 seconds" in result.fix


async def test_a_deployment_that_stops_answering_fails_within_its_timeout(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.inject(Fault.STALL, seconds=30)
    the_seams = seams(timeouts=Timeouts(deployment=0.3))
    found = await check(write_config(tmp_path, server.base_url), the_seams)
    assert found["deployment"].status is Status.FAIL
    assert found["deployment"].detail == f"{server.base_url} did not answer within 0.3 s"


async def test_no_deployment_named_asks_the_model_list(
    tmp_path: Path, server: ResponsesServer
) -> None:
    found = await check(write_config(tmp_path, server.base_url, model=""))
    assert found["deployment"].status is Status.PASS
    assert found["deployment"].detail == f"{server.base_url} answers (3 models listed)"
    assert not server.created()


# ---------------------------------------------------------------------------
# the history database


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_db_flag_that_cannot_name_a_database_fails_only_the_database(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    found = await check(config, offline(), db=tmp_path)  # a folder
    assert found["config"].status is Status.PASS
    assert found["profile"].status is Status.PASS
    result = found["database"]
    assert result.status is Status.FAIL
    assert result.detail.startswith("--db cannot name the history database")
    assert result.fix.startswith("Use another path with --db, or leave it out")


async def test_a_damaged_database_fails_and_is_left_untouched(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    db = tmp_path / "history.db"
    db.write_bytes(b"these bytes are not a database " * 200)
    before = digest(db)
    found = await check(config, offline())
    result = found["database"]
    assert result.status is Status.FAIL
    assert "is damaged or is not a SQLite database" in result.detail
    assert "press F" in result.fix
    assert "schema" not in found
    assert digest(db) == before


def make_store(path: Path) -> None:
    Store.open(path).close()


async def test_a_database_from_a_newer_foundry_tui_fails_with_the_fix(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    db = tmp_path / "history.db"
    make_store(db)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO _foundry_migrations VALUES ('m999_future', '2030-01-01')")
        conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = digest(db)
    found = await check(config, offline())
    assert found["database"].status is Status.PASS
    schema = found["schema"]
    assert schema.status is Status.FAIL
    assert "written by a newer version of foundry-tui (schema version 999" in schema.detail
    assert "Upgrade foundry-tui" in schema.fix
    assert digest(db) == before


async def test_a_healthy_database_passes_every_database_check(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    make_store(tmp_path / "history.db")
    found = await check(config, offline())
    assert {
        k: found[k].status.value for k in ("database", "schema", "journal", "disk", "permissions")
    } == {
        "database": "PASS",
        "schema": "PASS",
        "journal": "PASS",
        "disk": "PASS",
        "permissions": "PASS",
    }
    assert found["journal"].detail == "WAL"
    assert found["database"].detail.endswith("(integrity ok)")


async def test_a_database_not_in_wal_mode_warns(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    db = tmp_path / "history.db"
    make_store(db)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    found = await check(config, offline())
    assert found["journal"].status is Status.WARN
    assert found["journal"].detail == "journal mode delete, not WAL"


async def test_an_integrity_check_past_its_time_warns(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    db = tmp_path / "history.db"
    make_store(db)
    with sqlite3.connect(db) as conn:  # enough pages for the check to be timed at all
        conn.execute("CREATE TABLE filler (text TEXT)")
        conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 200,)] * 2000)
    conn.close()
    found = await check(config, offline(timeouts=Timeouts(database=0)))
    assert found["database"].status is Status.WARN
    assert "did not finish within 0 s" in found["database"].detail
    assert "PRAGMA integrity_check" in found["database"].fix


@pytest.mark.parametrize(
    ("free", "status", "words"),
    [(5_000_000, Status.FAIL, "only 5 MB free"), (150_000_000, Status.WARN, "150 MB free")],
)
async def test_little_free_disk_space_warns_then_fails(
    tmp_path: Path, free: int, status: Status, words: str
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    make_store(tmp_path / "history.db")
    found = await check(config, offline(free_bytes=lambda path: free))
    assert found["disk"].status is status
    assert words in found["disk"].detail


async def test_a_database_others_can_read_warns(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    db = tmp_path / "history.db"
    make_store(db)
    db.chmod(0o644)
    found = await check(config, offline())
    assert found["permissions"].status is Status.WARN
    assert "history.db is 0644" in found["permissions"].detail
    assert "chmod 600" in found["permissions"].fix


async def test_a_read_only_database_fails(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    db = tmp_path / "history.db"
    make_store(db)
    the_seams = offline(writable=lambda path: path != db)
    found = await check(config, the_seams)
    assert found["permissions"].status is Status.FAIL
    assert "read-only for you" in found["permissions"].detail


async def test_a_database_that_cannot_be_made_fails(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    the_seams = offline(writable=lambda path: False)
    found = await check(config, the_seams)
    assert found["database"].status is Status.FAIL
    assert "does not exist and cannot be made" in found["database"].detail
    assert not (tmp_path / "history.db").exists()


# ---------------------------------------------------------------------------
# the local model


def local_config(tmp_path: Path, model: str = "") -> Path:
    path = tmp_path / "config.toml"
    endpoint = f'endpoint = "{model}"\n' if model else ""
    path.write_text(
        f'[profiles.mine]\nkind = "local"\n{endpoint}[ui]\ndb_path = "{tmp_path / "h.db"}"\n',
        encoding="utf-8",
    )
    return path


def gguf(tmp_path: Path) -> Path:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + bytes(100))
    return model


def ready_probe(model: Path) -> LocalProbe:
    return LocalProbe(
        runtime_installed=lambda: True,
        runtime_version=lambda: "1.0",
        bundled_model=lambda: model,
        cpu_has_avx2=lambda: True,
        libgomp_found=lambda: True,
    )


async def test_a_ready_local_model_passes(tmp_path: Path) -> None:
    model = gguf(tmp_path)
    found = await check(local_config(tmp_path), seams(local=ready_probe(model)))
    assert {k: found[k].status for k in ("local-runtime", "cpu", "libgomp", "local-model")} == {
        k: Status.PASS for k in ("local-runtime", "cpu", "libgomp", "local-model")
    }
    assert found["local-model"].detail.startswith(str(model))
    assert "dns" not in found and "deployment" not in found  # nothing on the network


@pytest.mark.parametrize(
    ("change", "check_id", "words"),
    [
        (
            {"runtime_installed": lambda: False},
            "local-runtime",
            "xllamacpp (llama.cpp) is not installed",
        ),
        ({"cpu_has_avx2": lambda: False}, "cpu", "no AVX2"),
        ({"libgomp_found": lambda: False}, "libgomp", "libgomp.so.1) is missing"),
        ({"bundled_model": lambda: None}, "local-model", "the bundled model is not installed"),
    ],
)
async def test_each_local_model_problem_fails_for_a_local_profile(
    tmp_path: Path, change: dict[str, Any], check_id: str, words: str
) -> None:
    probe = dataclasses.replace(ready_probe(gguf(tmp_path)), **change)
    found = await check(local_config(tmp_path), seams(local=probe))
    assert found[check_id].status is Status.FAIL
    assert words in found[check_id].detail
    assert found[check_id].fix
    failed = [name for name, result in found.items() if result.status is Status.FAIL]
    assert failed == [check_id]


async def test_a_model_file_that_is_not_gguf_fails(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("hello", encoding="utf-8")
    probe = ready_probe(gguf(tmp_path))
    found = await check(local_config(tmp_path, str(bogus)), seams(local=probe))
    assert found["local-model"].status is Status.FAIL
    assert "is not a GGUF model file" in found["local-model"].detail


async def test_local_model_problems_only_warn_for_a_cloud_profile(
    tmp_path: Path, server: ResponsesServer
) -> None:
    probe = dataclasses.replace(ready_probe(gguf(tmp_path)), libgomp_found=lambda: False)
    found = await check(write_config(tmp_path, server.base_url), seams(local=probe))
    assert found["libgomp"].status is Status.WARN
    assert all(result.status is Status.PASS for name, result in found.items() if name != "libgomp")


# ---------------------------------------------------------------------------
# what is printed


def test_escape_sequences_in_what_is_reported_are_not_printed(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('"\\u001b]52;c;ZXZpbA==\\u0007\\u001b[2J" = 1\n', encoding="utf-8")
    code, text = report(config)
    assert code == 1
    assert "FAIL  config" in text and "unknown key" in text
    assert "\x1b" not in text and "\x07" not in text


def test_a_bad_flag_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as raised:
        doctor.main(["--no-such-flag"], out=io.StringIO())
    assert raised.value.code == 2
