"""A redirect to another host is not followed: the prompt, the transcript and the key stay
where the user sent them, and the turn names where the server pointed. A redirect within
the same origin (scheme, host and port) is followed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.core.models import (
    BackendError,
    EndpointKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
    TextDelta,
)
from foundry_tui.ui.app import make_app
from tests.helpers import TEST_KEY, send, shown, start_chat, write_config
from tests.responses_server import Fault, ResponsesServer

PROMPT = "where"


@pytest.fixture
def elsewhere() -> Iterator[ResponsesServer]:
    """Another host: 127.0.0.2 is this machine too, but not the host the user named."""
    with ResponsesServer(host="127.0.0.2") as running:
        yield running


def backend_for(server: ResponsesServer) -> Backend:
    profile = Profile(
        name="p", kind=EndpointKind.COMPATIBLE, endpoint=server.base_url, api_key_env="K"
    )
    return Backend(profile, env={"K": TEST_KEY}, max_retries=0, timeout=5)


async def reply_text(backend: Backend) -> str:
    parts = []
    async for event in backend.stream_reply(
        settings=GenerationSettings(model="gpt-4o"),
        input=[InputMessage(MessageRole.USER, PROMPT)],
        previous_response_id=None,
    ):
        if isinstance(event, TextDelta):
            parts.append(event.text)
    return "".join(parts)


@pytest.mark.parametrize("status", [307, 308])
async def test_redirect_to_another_host_or_port_is_refused(
    server: ResponsesServer, elsewhere: ResponsesServer, status: int
) -> None:
    other_port = ResponsesServer().start()
    try:
        for target, named in (
            (f"{elsewhere.base_url}/responses", f"127.0.0.2:{elsewhere.port}"),
            (f"{other_port.base_url}/responses", f"127.0.0.1:{other_port.port}"),
        ):
            server.inject(Fault.REDIRECT, location=target, status=status)
            backend = backend_for(server)
            with pytest.raises(BackendError) as caught:
                await reply_text(backend)
            await backend.aclose()
            assert named in caught.value.title, caught.value.user_message
            assert str(status) in caught.value.detail
        assert elsewhere.requests == [] and other_port.requests == []
    finally:
        other_port.stop()
    # Within the same origin, the redirect is followed and the reply arrives.
    server.inject(Fault.REDIRECT, location=f"{server.url}/openai/v1/responses", status=status)
    backend = backend_for(server)
    assert await reply_text(backend) == "You said: " + PROMPT
    await backend.aclose()
    assert [request.path for request in server.requests[-2:]] == [
        "/v1/responses",
        "/openai/v1/responses",
    ]


async def test_the_turn_says_where_the_server_pointed(
    tmp_path: Path, server: ResponsesServer, elsewhere: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    app = make_app(config, backend_factory=lambda p: Backend(p, max_retries=0, timeout=5))
    async with app.run_test(size=(150, 40)) as pilot:
        screen = await start_chat(app, pilot)
        server.inject(Fault.REDIRECT, location=f"{elsewhere.base_url}/responses")
        failed = await send(pilot, app, PROMPT)
        assert failed.message.status == MessageStatus.FAILED
        assert f"127.0.0.2:{elsewhere.port}" in failed.footer
        # The prompt is kept once, in the transcript above its failed reply (Ctrl+R
        # resends it), and not also put back in the box to be sent twice.
        prompts = [b.message.text for b in shown(app) if b.message.role == MessageRole.USER]
        assert prompts == [PROMPT]
        assert screen.query_one("#prompt").text == ""
    assert elsewhere.requests == []
