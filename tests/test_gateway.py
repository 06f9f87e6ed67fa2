"""Behind an OpenAI-compatible gateway (tests/gateway_server.py) in front of the test server:
rewrapped errors, a renamed Retry-After, input_items that ignore paging and order, raw
previous ids its own GET rejects, 400 for unknown ids, 429s it retries by itself.

The real AsyncOpenAI, through foundry_tui's Backend, over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from textual.message import Message as TextualMessage
from textual.notifications import Notify

import foundry_tui.backend.client
import foundry_tui.backend.sdk_stream
from foundry_tui.backend.client import Backend
from foundry_tui.core.models import (
    Answered,
    AuthMethod,
    BackendError,
    BackendEvent,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
    ResponseFinished,
    ServerState,
    TextDelta,
    Waiting,
)
from foundry_tui.core.session import ChatSession, SendMode, import_from_server
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.status import StatusLine
from tests.gateway_server import GatewayServer, decode_id
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    last_reply_done,
    replies,
    send,
    shown,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import Fault, ResponsesServer

SETTINGS = GenerationSettings(model="gpt-4o", instructions="Answer briefly.")


@pytest.fixture(autouse=True)
def no_trickle_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    # The gateway passes each frame on by itself, so every delta looks like a trickle;
    # the reader's pause after one (a CPU saving, tested elsewhere) only slows these tests.
    monkeypatch.setattr(foundry_tui.backend.sdk_stream, "TRICKLE_WAIT", 0.0)


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


@pytest.fixture
def gateway(upstream: ResponsesServer) -> Iterator[GatewayServer]:
    with GatewayServer(upstream) as running:
        yield running


def backend_for(gateway: GatewayServer, **options: Any) -> Backend:
    profile = Profile(
        name="gateway",
        kind=EndpointKind.COMPATIBLE,
        endpoint=gateway.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
    )
    return Backend(profile, env={KEY_VARIABLE: TEST_KEY}, **options)


def user(text: str) -> InputMessage:
    return InputMessage(MessageRole.USER, text)


async def turn(
    backend: Backend, messages: list[InputMessage], previous: str | None = None
) -> list[BackendEvent]:
    return [
        event
        async for event in backend.stream_reply(
            settings=SETTINGS, input=messages, previous_response_id=previous
        )
    ]


async def chain(backend: Backend, prompts: list[str], previous: str | None = None) -> list[str]:
    """Sends each prompt chained on the last reply; the gateway's response ids."""
    ids: list[str] = []
    for prompt in prompts:
        done = (await turn(backend, [user(prompt)], ids[-1] if ids else previous))[-1]
        assert isinstance(done, ResponseFinished) and done.status is MessageStatus.COMPLETED
        assert done.response_id is not None
        ids.append(done.response_id)
    return ids


async def rebuilt(
    tmp_path: Path, backend: Backend, response_id: str
) -> tuple[list[tuple[MessageRole, str]], list[str]]:
    """import_from_server (as --resume does); the saved transcript and the notes. A hang
    fails the test rather than the suite."""
    notes: list[str] = []
    with Store.open(tmp_path / "history.db") as store:
        conversation = await asyncio.wait_for(
            import_from_server(store, backend, response_id, profile="gateway", notes=notes), 15
        )
        transcript = store.transcript(conversation.id)
    return [(m.role, m.text) for m in transcript], notes


def said(prompts: list[str]) -> list[tuple[MessageRole, str]]:
    return [
        pair
        for prompt in prompts
        for pair in ((MessageRole.USER, prompt), (MessageRole.ASSISTANT, f"You said: {prompt}"))
    ]


def status_text(app: Any) -> str:
    return str(app.screen.query_one(StatusLine).render())


# --------------------------------------------------------------------------- --resume


async def test_resume_ends_and_keeps_order_when_paging_and_order_are_ignored(
    tmp_path: Path, gateway: GatewayServer
) -> None:
    gateway.raw_previous_ids = False  # the chain can be walked: paging alone is tested
    backend = backend_for(gateway, max_retries=0)
    earlier = [f"earlier {n}" for n in range(15)]  # a transcript replayed as one input
    root = (await turn(backend, [user(text) for text in earlier]))[-1]
    assert isinstance(root, ResponseFinished) and root.response_id is not None
    prompts = ["one", "two", "three"]  # the last input holds 22 items: over the page of 20
    ids = await chain(backend, prompts, root.response_id)
    transcript, notes = await rebuilt(tmp_path, backend, ids[-1])
    await backend.aclose()
    assert transcript == [
        *[(MessageRole.USER, text) for text in earlier],
        (MessageRole.ASSISTANT, "You said: earlier 14"),
        *said(prompts),
    ]
    assert notes == []  # the chain gave every turn
    # Bounded: per response, a page, the question about its order, and the repeated page.
    assert len(gateway.paths("/input_items")) <= 3 * 4


async def test_resume_order_comes_from_the_chain_when_the_server_ignores_order_oldest_first(
    tmp_path: Path, upstream: ResponsesServer
) -> None:
    """A server that ignores `order` but lists oldest first (not the API's default): the
    earlier turns that each input repeats show which way round it is."""
    with GatewayServer(upstream, raw_previous_ids=False, default_order="asc") as gateway:
        backend = backend_for(gateway, max_retries=0)
        prompts = ["one", "two", "three", "four"]
        ids = await chain(backend, prompts)
        transcript, notes = await rebuilt(tmp_path, backend, ids[-1])
        await backend.aclose()
    assert transcript == said(prompts)
    assert notes == []


async def test_resume_says_what_a_gateway_that_ignores_paging_left_out(
    tmp_path: Path, gateway: GatewayServer
) -> None:
    backend = backend_for(gateway, max_retries=0)
    long_input = [user(f"message {n}") for n in range(30)]  # a replayed transcript
    done = (await turn(backend, long_input))[-1]
    assert isinstance(done, ResponseFinished) and done.response_id is not None
    transcript, notes = await rebuilt(tmp_path, backend, done.response_id)
    await backend.aclose()
    # The gateway gives only the newest 20 items: those, oldest first, and the reply.
    assert transcript == [
        *[(MessageRole.USER, f"message {n}") for n in range(10, 30)],
        (MessageRole.ASSISTANT, "You said: message 29"),
    ]
    [note] = notes
    assert "only part of the input" in note and done.response_id[:40] in note


async def test_resume_keeps_what_it_fetched_when_an_older_link_is_rejected(
    tmp_path: Path, gateway: GatewayServer
) -> None:
    """The gateway hands out the upstream's raw previous_response_id, and its own GET
    answers 400 for it: the newest response and what its input holds are kept."""
    backend = backend_for(gateway, max_retries=0)
    prompts = ["one", "two", "three"]
    ids = await chain(backend, prompts)
    transcript, notes = await rebuilt(tmp_path, backend, ids[-1])
    await backend.aclose()
    assert transcript == said(prompts)
    [note] = notes
    assert note.startswith("Could not fetch response resp_") and "turns before it" in note


async def test_resume_in_the_app_tells_what_is_missing(
    tmp_path: Path, upstream: ResponsesServer, gateway: GatewayServer
) -> None:
    backend = backend_for(gateway, max_retries=0)
    ids = await chain(backend, ["one", "two"])
    await backend.aclose()
    upstream.expire(decode_id(ids[0]) or "")  # gone upstream, and so from later inputs
    gateway.raw_previous_ids = False  # the older link is asked for: a wrapped 400
    notified: list[str] = []

    def hook(message: TextualMessage) -> None:
        if isinstance(message, Notify):
            notified.append(f"{message.notification.title}: {message.notification.message}")

    app = make_app(write_config(tmp_path, gateway.base_url), resume=ids[-1])
    async with app.run_test(size=(160, 40), message_hook=hook) as pilot:
        await start_chat(app, pilot)
        await wait_until(pilot, lambda: len(replies(app)) == 1, what="rebuilt transcript")
        assert [block.message.text for block in shown(app)] == ["two", "You said: two"]
        await wait_until(pilot, lambda: any("Rebuilt in part" in n for n in notified))
    [note] = [n for n in notified if "Rebuilt in part" in n]
    assert "Could not fetch response" in note and "no longer has it" in note


# --------------------------------------------------------------------------- lost chains


async def test_chained_send_refused_inside_a_wrapped_error_replays_once(
    tmp_path: Path, upstream: ResponsesServer, gateway: GatewayServer
) -> None:
    app = make_app(write_config(tmp_path, gateway.base_url))
    async with app.run_test(size=(160, 40)) as pilot:
        await start_chat(app, pilot)
        await send(pilot, app, "alpha")
        upstream.expire_all()  # the gateway's 400 wraps the upstream's JSON in `message`
        second = await send(pilot, app, "beta")
        assert second.message.status == MessageStatus.COMPLETED, second.footer
        assert second.message.text == "You said: beta"
        # The line keeps every figure whole and cuts the notice's words if it must; the
        # notice is whole in the status's full text (its tooltip and "Show status").
        assert "the server had lost the chain" in status_text(app)
        assert "transcript was resent" in app.screen.query_one(StatusLine).full_text
        third = await send(pilot, app, "gamma")
        assert third.message.status == MessageStatus.COMPLETED, third.footer
    _alpha, refused, replayed, gamma = upstream.created()
    assert refused["previous_response_id"] and "previous_response_id" not in replayed
    assert [item["content"] for item in replayed["input"]] == ["alpha", "You said: alpha", "beta"]
    assert gamma["previous_response_id"] == decode_id(second.message.response_id or "")


@pytest.mark.parametrize("status", [400, 404])
async def test_previous_response_not_found_is_found_inside_a_wrapped_message(
    status: int,
) -> None:
    upstream = {
        "error": {
            "message": "Previous response with id 'resp_1' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }
    body = {
        "error": {
            "message": f"gateway.APIError: AzureException - Error code: {status} - {upstream!r}",
            "type": None,
            "param": None,
            "code": str(status),
        }
    }
    client = httpx2.AsyncClient(
        transport=httpx2.MockTransport(lambda request: httpx2.Response(status, json=body))
    )
    profile = Profile("mock", EndpointKind.COMPATIBLE, "http://127.0.0.1:9", AuthMethod.NONE)
    backend = Backend(profile, max_retries=0, http_client=client)
    with pytest.raises(BackendError) as caught:
        await backend.stream_reply(
            settings=SETTINGS, input=[user("hi")], previous_response_id="resp_1"
        ).__anext__()
    assert caught.value.kind is ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND
    assert caught.value.code == "previous_response_not_found"
    assert "Previous response with id 'resp_1' not found." in caught.value.detail
    await backend.aclose()


async def test_reopen_check_that_gets_a_400_for_the_head_means_expired(
    tmp_path: Path, upstream: ResponsesServer, gateway: GatewayServer
) -> None:
    backend = backend_for(gateway, max_retries=0)
    with Store.open(tmp_path / "history.db") as store:
        session = await ChatSession.start_new(store, backend, profile="gateway", settings=SETTINGS)
        async for _event in session.send("alpha"):
            pass
        assert await session.check_server_state() is ServerState.LIVE
        upstream.expire_all()
        assert await session.check_server_state() is ServerState.EXPIRED
        assert session.next_send_mode(await session.transcript()) is SendMode.REPLAY
    await backend.aclose()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("embed", ["json", "repr"])
async def test_content_filter_category_named_inside_a_wrapped_error(
    upstream: ResponsesServer, embed: str
) -> None:
    with GatewayServer(upstream, embed=embed) as gateway:
        backend = backend_for(gateway, max_retries=0)
        upstream.inject(Fault.CONTENT_FILTER)
        with pytest.raises(BackendError) as caught:
            await turn(backend, [user("something flagged")])
        await backend.aclose()
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert "Categories flagged: hate." in caught.value.detail


async def test_content_filter_mid_stream_arrives_as_response_failed(
    upstream: ResponsesServer, gateway: GatewayServer
) -> None:
    backend = backend_for(gateway, max_retries=0)
    upstream.inject(Fault.NESTED_ERROR, code="content_filter")
    done = (await turn(backend, [user("say something the filter stops")]))[-1]
    await backend.aclose()
    assert isinstance(done, ResponseFinished) and done.status is MessageStatus.FAILED
    assert done.error is not None and "blocked by the content filter" in done.error


async def test_renamed_retry_after_is_read(
    upstream: ResponsesServer, gateway: GatewayServer
) -> None:
    backend = backend_for(gateway, max_retries=0)
    upstream.inject(Fault.RATE_LIMIT, retry_after="7")
    with pytest.raises(BackendError) as caught:
        await turn(backend, [user("hi")])
    await backend.aclose()
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert "Try again in 7 seconds" in caught.value.detail


# --------------------------------------------------------------------------- waiting


async def test_retry_countdown_in_the_status_line(
    tmp_path: Path, upstream: ResponsesServer, gateway: GatewayServer
) -> None:
    app = make_app(write_config(tmp_path, gateway.base_url))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        upstream.inject(Fault.RATE_LIMIT, retry_after="1")  # the gateway renames the header
        screen.query_one("#prompt").text = "hello"
        await pilot.press("enter")
        countdown = re.compile(r"rate limited · retrying in 1 s \(2 of 3\)")
        await wait_until(pilot, lambda: bool(countdown.search(status_text(app))), what="countdown")
        await wait_until(pilot, lambda: last_reply_done(app), what="the retried reply")
        assert replies(app)[-1].message.status == MessageStatus.COMPLETED
        assert "retrying" not in status_text(app)
    assert len(upstream.created()) == 2


async def test_escape_cancels_the_wait_for_a_retry(
    tmp_path: Path, upstream: ResponsesServer, gateway: GatewayServer
) -> None:
    config = write_config(tmp_path, gateway.base_url)
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        upstream.inject(Fault.RATE_LIMIT, times=3, retry_after="2")
        screen.query_one("#prompt").text = "hello"
        await pilot.press("enter")
        await wait_until(pilot, lambda: "retrying in" in status_text(app), what="countdown")
        await pilot.press("escape")
        await wait_until(pilot, lambda: last_reply_done(app), what="cancelled turn")
        assert replies(app)[-1].message.status == MessageStatus.CANCELLED
        await wait_until(pilot, lambda: "retrying" not in status_text(app), what="cleared")
        assert not screen.streaming
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        prompt, reply = store.transcript(summary.id)
    assert prompt.text == "hello" and reply.status == MessageStatus.CANCELLED


async def test_a_request_the_gateway_holds_is_announced(
    upstream: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(foundry_tui.backend.client, "WAIT_NOTICE_SECONDS", 0.05)
    with GatewayServer(upstream, hold_429_seconds=30, retry_interval=0.05) as gateway:
        backend = backend_for(gateway)
        upstream.inject(Fault.RATE_LIMIT, times=4, retry_after="0")
        events = await turn(backend, [user("hello")])
        await backend.aclose()
    assert gateway.own_retries == 4 and len(upstream.created()) == 5
    assert isinstance(events[0], Waiting) and isinstance(events[1], Answered)
    assert isinstance(events[-1], ResponseFinished)
    assert events[-1].status is MessageStatus.COMPLETED


async def test_waiting_for_the_server_in_the_status_line(
    tmp_path: Path, upstream: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(foundry_tui.backend.client, "WAIT_NOTICE_SECONDS", 0.05)
    with GatewayServer(upstream, hold_429_seconds=30, retry_interval=0.05) as gateway:
        app = make_app(write_config(tmp_path, gateway.base_url))
        async with app.run_test(size=(160, 40)) as pilot:
            screen = await start_chat(app, pilot)
            upstream.inject(Fault.RATE_LIMIT, times=10, retry_after="0")
            screen.query_one("#prompt").text = "hello"
            await pilot.press("enter")
            waiting = re.compile(r"waiting for the server · \d+ s")
            await wait_until(
                pilot, lambda: bool(waiting.search(status_text(app))), what="waiting notice"
            )
            await wait_until(pilot, lambda: last_reply_done(app), what="the reply")
            assert replies(app)[-1].message.status == MessageStatus.COMPLETED
            assert "waiting for the server" not in status_text(app)


# --------------------------------------------------------------------------- the double


async def test_streams_pass_through_the_gateway_unbuffered(
    upstream: ResponsesServer, gateway: GatewayServer
) -> None:
    backend = backend_for(gateway, max_retries=0)
    # The upstream sends one delta, then nothing until its client goes away: the delta
    # reaches the app only if the gateway passes each frame on as it comes.
    upstream.inject(Fault.STALL, after_deltas=1)
    stream = backend.stream_reply(
        settings=SETTINGS, input=[user("one two three four")], previous_response_id=None
    )
    async with asyncio.timeout(10):  # a buffering gateway fails here rather than hangs
        async for event in stream:
            if isinstance(event, TextDelta):
                break
    assert event == TextDelta("You ")
    await stream.aclose()  # type: ignore[attr-defined]
    await backend.aclose()


async def test_dropped_upstream_arrives_as_response_failed(
    upstream: ResponsesServer, gateway: GatewayServer
) -> None:
    backend = backend_for(gateway, max_retries=0)
    upstream.inject(Fault.DROP_STREAM, after_deltas=2)
    events = await turn(backend, [user("one two three four")])
    await backend.aclose()
    done = events[-1]
    assert isinstance(done, ResponseFinished) and done.status is MessageStatus.FAILED
    assert "upstream connection closed" in (done.error or "")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "You said: "
