"""Every fault while talking to the server: a specific message at the failed turn, the
prompt and any partial reply saved, and Ctrl+R resends it without retyping.

The fault matrix in the README is this file's FAULTS table.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.config import AppConfig
from foundry_tui.core.models import MessageRole, MessageStatus, Profile
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    replies,
    send,
    set_field,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import Fault, ResponsesServer

PROMPT = "tell me about faults"
REPLY = "You said: " + PROMPT


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(
        api_key=TEST_KEY, deployments=["gpt-4o", "o4-mini"], reasoning_models=["o4-mini"]
    ) as running:
        yield running


def quick_backend(profile: Profile) -> Backend:
    # No SDK retries and a short timeout, so each fault reaches the UI at once.
    return Backend(profile, max_retries=0, timeout=1.5)


@dataclass
class Case:
    name: str
    fault: Fault | None
    expected_status: MessageStatus
    message: tuple[str, ...]  # fragments the message at the failed turn must contain
    partial: bool = False  # part of the reply arrived before the fault, and is kept
    options: dict[str, Any] = field(default_factory=dict)


FAULTS = [
    Case(
        "429 with retry-after",
        Fault.RATE_LIMIT,
        MessageStatus.FAILED,
        ("Rate limited (429)", "Try again in 7 seconds"),
        options={"retry_after": "7"},
    ),
    Case(
        "429 without retry-after",
        Fault.RATE_LIMIT_NO_RETRY_AFTER,
        MessageStatus.FAILED,
        ("Rate limited (429)", "Try again shortly"),
    ),
    Case("500", Fault.SERVER_ERROR, MessageStatus.FAILED, ("Server error (500)",)),
    Case("503", Fault.UNAVAILABLE, MessageStatus.FAILED, ("Server error (503)",)),
    Case(
        "stream cut off mid-reply",
        Fault.DROP_STREAM,
        MessageStatus.FAILED,
        ("connection closed before the reply finished", "text received so far is kept"),
        partial=True,
    ),
    Case(
        "read timeout mid-stream",
        Fault.STALL,
        MessageStatus.FAILED,
        ("Timed out waiting for", "while the reply was streaming"),
        partial=True,
        options={"seconds": 5},
    ),
    Case(
        "response.failed",
        Fault.FAILED,
        MessageStatus.FAILED,
        ("reported an error while replying", "text received so far is kept"),
        partial=True,
    ),
    Case(
        "error event",
        Fault.ERROR_EVENT,
        MessageStatus.FAILED,
        ("reported an error while replying", "text received so far is kept"),
        partial=True,
    ),
    Case(
        "nested error frame (Azure content filter)",
        Fault.NESTED_ERROR,
        MessageStatus.FAILED,
        ("content filter",),
        partial=True,
        options={"code": "content_filter"},
    ),
    Case(
        "response.incomplete at max_output_tokens",
        Fault.INCOMPLETE,
        MessageStatus.INCOMPLETE,
        ("max output tokens",),
        partial=True,
    ),
    Case("400 content_filter", Fault.CONTENT_FILTER, MessageStatus.FAILED, ("hate",)),
    Case(
        "401 with an API key",
        Fault.UNAUTHORIZED,
        MessageStatus.FAILED,
        ("Not authorized (401)", f"${KEY_VARIABLE}"),
    ),
    Case("403", Fault.FORBIDDEN, MessageStatus.FAILED, ("Access denied (403)",)),
]


async def run_fault(config: AppConfig, server: ResponsesServer, case: Case) -> None:
    app = make_app(config, backend_factory=quick_backend)
    async with app.run_test(size=(150, 40)) as pilot:
        screen = await start_chat(app, pilot)
        if case.fault is not None:
            server.inject(case.fault, **case.options)
        failed = await send(pilot, app, PROMPT)
        assert failed.message.status == case.expected_status, failed.message
        shown = failed.footer
        for fragment in case.message:
            assert fragment.lower() in shown.lower(), (fragment, shown)
        if case.partial:
            assert failed.message.text and REPLY.startswith(failed.message.text.strip())
        # What was saved: the prompt, and the reply as far as it came.
        with Store.open(config.db_path) as store:
            [summary] = store.list_conversations()
            user, reply = store.transcript(summary.id)
        assert (user.role, user.text) == (MessageRole.USER, PROMPT)
        assert reply.status == case.expected_status
        assert reply.text == failed.message.text
        assert reply.error
        # Retry without retyping.
        screen.query_one("#prompt").text = ""
        await pilot.press("ctrl+r")
        await wait_until(
            pilot,
            lambda: replies(app)[-1].message.status == MessageStatus.COMPLETED,
            what="retried reply",
        )
        assert replies(app)[-1].message.text == REPLY
        assert len(replies(app)) == 1  # the failed reply was replaced on screen
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        path = store.transcript(summary.id)
    assert [m.text for m in path] == [PROMPT, REPLY]


@pytest.mark.parametrize("case", FAULTS, ids=[case.name for case in FAULTS])
async def test_server_fault(tmp_path: Path, server: ResponsesServer, case: Case) -> None:
    await run_fault(write_config(tmp_path, server.base_url), server, case)


async def test_incomplete_reply_can_be_continued(tmp_path: Path, server: ResponsesServer) -> None:
    app = make_app(write_config(tmp_path, server.base_url), backend_factory=quick_backend)
    async with app.run_test(size=(150, 40)) as pilot:
        await start_chat(app, pilot)
        server.inject(Fault.INCOMPLETE)
        cut = await send(pilot, app, PROMPT)
        assert cut.message.status == MessageStatus.INCOMPLETE
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(replies(app)) == 2, what="continued")
        await wait_until(pilot, lambda: replies(app)[-1].message.status == MessageStatus.COMPLETED)
    body = server.created()[-1]
    assert body["previous_response_id"] == cut.message.response_id
    assert body["input"][-1]["content"].startswith("Continue")


async def test_unknown_deployment_names_it_and_the_endpoint(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url), backend_factory=quick_backend)
    async with app.run_test(size=(150, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await set_field(pilot, app, "#model-input", "gpt-5-typo")
        screen.query_one("#prompt").focus()
        failed = await send(pilot, app, PROMPT)
        shown = failed.footer
        assert "gpt-5-typo" in shown and server.base_url in shown
        assert "not found" in shown


async def test_reasoning_model_resend_without_sampling_settings(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url, deployments=("o4-mini",)))
    async with app.run_test(size=(150, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await set_field(pilot, app, "#temperature-input", "0.4")
        await set_field(pilot, app, "#top-p-input", "0.5")
        screen.query_one("#prompt").focus()
        failed = await send(pilot, app, PROMPT)
        assert "temperature" in failed.footer
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: replies(app)[-1].message.status == MessageStatus.COMPLETED)
        assert screen.query_one("#temperature-input").value == ""
    body = server.created()[-1]
    assert "temperature" not in body and "top_p" not in body


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def connection_case(
    tmp_path: Path, server: ResponsesServer, endpoint: str, fragments: tuple[str, ...]
) -> None:
    config = write_config(tmp_path, endpoint)
    app = make_app(config, backend_factory=quick_backend)
    async with app.run_test(size=(150, 40)) as pilot:
        screen = await start_chat(app, pilot)
        failed = await send(pilot, app, PROMPT)
        shown = failed.footer
        for fragment in fragments:
            assert fragment in shown, shown
        # Nothing arrived: the prompt stays in the transcript for Ctrl+R, not in the box too.
        assert screen.query_one("#prompt").text == ""
        assert screen.current_messages()[0].text == PROMPT
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        assert store.transcript(summary.id)[0].text == PROMPT


async def test_connection_refused(tmp_path: Path, server: ResponsesServer) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    await connection_case(tmp_path, server, url, ("Could not connect to", "Check the endpoint"))


async def test_dns_failure(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def no_such_host(host: Any, *args: Any, **kwargs: Any) -> Any:
        # Resolved here, never by a real DNS server: no packet leaves the machine.
        if host == "foundry.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    await connection_case(
        tmp_path, server, "https://foundry.invalid/v1", ("Could not connect to", "foundry.invalid")
    )


async def test_connect_timeout(tmp_path: Path, server: ResponsesServer) -> None:
    # A listener whose accept queue is full drops further SYNs: connect() hangs until the
    # client's timeout, as with a firewall that drops packets.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        await connection_case(
            tmp_path, server, f"http://127.0.0.1:{port}/v1", ("Timed out waiting for",)
        )
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def entra_config(tmp_path: Path, base_url: str) -> AppConfig:
    from foundry_tui.config import load_config

    path = tmp_path / "config.toml"
    path.write_text(
        f'[profiles.entra]\nkind = "compatible"\nendpoint = "{base_url}"\n'
        'auth = "entra_id"\ndeployments = ["gpt-4o"]\n',
        encoding="utf-8",
    )
    from foundry_tui.config import Overrides

    return load_config(path, overrides=Overrides(db=tmp_path / "history.db"))


def backend_with(credential_factory: Callable[[], Any]) -> Callable[[Profile], Backend]:
    def factory(profile: Profile) -> Backend:
        return Backend(profile, max_retries=0, timeout=2.0, credential=credential_factory())

    return factory


async def test_entra_credential_that_cannot_get_a_token(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.identity.aio import DefaultAzureCredential

    for variable in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `az` to ask

    def credential() -> Any:
        # The real chain, minus the sources that would call off this machine (IMDS).
        return DefaultAzureCredential(
            exclude_managed_identity_credential=True,
            exclude_workload_identity_credential=True,
            exclude_visual_studio_code_credential=True,
            exclude_shared_token_cache_credential=True,
            exclude_powershell_credential=True,
            exclude_developer_cli_credential=True,
            exclude_interactive_browser_credential=True,
        )

    config = entra_config(tmp_path, server.base_url)
    app = make_app(config, backend_factory=backend_with(credential))
    async with app.run_test(size=(150, 40)) as pilot:
        await start_chat(app, pilot)
        failed = await send(pilot, app, PROMPT)
        shown = failed.footer
    assert "Could not get an Entra ID token" in shown
    assert "EnvironmentCredential" in shown and "AzureCliCredential" in shown
    assert server.created() == []


async def test_entra_token_refused_names_scope_and_role(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from azure.core.credentials import AccessToken

    class StaticCredential:
        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("eyJ0eXAiOiJKV1QifQ.not-valid-for-this-server.sig", 2**31)

        async def close(self) -> None:
            return None

    config = entra_config(tmp_path, server.base_url)
    app = make_app(config, backend_factory=backend_with(StaticCredential))
    async with app.run_test(size=(150, 40)) as pilot:
        await start_chat(app, pilot)
        failed = await send(pilot, app, PROMPT)
        shown = failed.footer
    assert "Not authorized (401)" in shown
    assert "Cognitive Services OpenAI User" in shown
    assert "scope" in shown
    assert "not-valid-for-this-server" not in shown  # never echo a token


async def test_429_is_retried_by_the_client_before_the_user_sees_it(
    tmp_path: Path, server: ResponsesServer
) -> None:
    """With the default retries, one throttled answer costs the user nothing."""
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        await start_chat(app, pilot)
        server.inject(Fault.RATE_LIMIT, retry_after="0")
        reply = await send(pilot, app, PROMPT)
        assert reply.message.status == MessageStatus.COMPLETED
    assert len(server.created()) == 2


async def test_retry_from_the_command_palette(tmp_path: Path, server: ResponsesServer) -> None:
    from textual.command import CommandList, CommandPalette

    app = make_app(write_config(tmp_path, server.base_url), backend_factory=quick_backend)
    async with app.run_test(size=(150, 40)) as pilot:
        screen = await start_chat(app, pilot)
        server.inject(Fault.SERVER_ERROR)
        failed = await send(pilot, app, PROMPT)
        assert failed.message.status == MessageStatus.FAILED
        screen.query_one("#prompt").text = ""
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
        await pilot.press(*"Retry")
        commands = app.screen.query_one(CommandList)
        await wait_until(
            pilot,
            lambda: (
                commands.highlighted is not None
                and "Retry" in str(commands.get_option_at_index(commands.highlighted).prompt)
            ),
            what="the Retry command highlighted",
        )
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: replies(app)[-1].message.status == MessageStatus.COMPLETED,
            what="retried from the palette",
        )
        assert replies(app)[-1].message.text == REPLY
