"""The reopen check asks whether the server still holds a conversation's head response
without reading that response: a stored reply can be megabytes, which the SDK would
decode on the UI loop only to learn that it exists."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from foundry_tui.core.models import BackendError, ErrorKind
from tests.test_backend import mock_backend


class UnreadBody(httpx2.AsyncByteStream):
    """A body that must not be read."""

    read = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        UnreadBody.read = True
        yield b'{"id": "resp_1", "object": "response", "output": []}'

    async def aclose(self) -> None:
        return None


async def test_a_held_response_is_not_read() -> None:
    UnreadBody.read = False
    backend = mock_backend(
        lambda request: httpx2.Response(
            200, stream=UnreadBody(), headers={"content-type": "application/json"}
        )
    )
    assert await backend.holds("resp_1") is True
    assert UnreadBody.read is False


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, {"message": "No response found with id 'resp_1'.", "code": None}),
        # A gateway's answer to an unknown id: 400, the upstream's 404 inside its message.
        (
            400,
            {
                "message": 'upstream said - {"error": {"message": "Response with id '
                '\'resp_1\' not found.", "code": "not_found"}}',
                "code": "400",
                "param": None,
                "type": None,
            },
        ),
    ],
    ids=["404", "gateway-400"],
)
async def test_a_forgotten_response_is_not_held(status: int, error: dict[str, object]) -> None:
    backend = mock_backend(lambda request: httpx2.Response(status, json={"error": error}))
    assert await backend.holds("resp_1") is False


async def test_a_server_that_cannot_answer_is_an_error() -> None:
    backend = mock_backend(
        lambda request: httpx2.Response(401, json={"error": {"message": "bad key"}})
    )
    with pytest.raises(BackendError) as caught:
        await backend.holds("resp_1")
    assert caught.value.kind is ErrorKind.AUTH


async def test_the_first_request_builds_the_client_off_the_ui_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Importing openai and building the client take most of a second: a request made
    before the warm-up (the check of a conversation resumed at start) must not do that
    on the loop that draws the screen."""
    import threading

    from foundry_tui.backend.client import Backend

    backend = mock_backend(lambda request: httpx2.Response(404, json={"error": {}}))
    built_on: list[int] = []
    build = Backend._get_client

    def recording(self: Backend) -> object:
        built_on.append(threading.get_ident())
        return build(self)

    monkeypatch.setattr(Backend, "_get_client", recording)
    assert await backend.holds("resp_1") is False
    assert built_on and built_on[0] != threading.get_ident()
