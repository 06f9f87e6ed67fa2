"""Backend against Microsoft's independent Responses host, azure-ai-agentserver-responses.

The host runs our small handler in a subprocess bound to 127.0.0.1 (never 0.0.0.0) with its
state under a temporary AGENTSERVER_STATE_ROOT and its telemetry switched off. Its routes have
no /v1 prefix, ids start with ``caresp_``, a malformed id gives 400 and it sends no usage.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.core.models import (
    Attachment,
    AuthMethod,
    BackendError,
    BackendEvent,
    EncodedFile,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
    ReasoningDelta,
    ReasoningStarted,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
    Usage,
)

HANDLER = """
import sys

from azure.ai.agentserver.responses import ResponsesAgentServerHost, TextResponse
from azure.ai.agentserver.responses.streaming import ResponseEventStream

app = ResponsesAgentServerHost(configure_observability=None, graceful_shutdown_timeout=1)


def message_text(item):
    content = item.get("content")
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


async def reasoned(request, context, text):
    # The host's own reasoning item: a summary part, then the answer.
    stream = ResponseEventStream(response_id=context.response_id, request=request)
    yield stream.emit_created()
    yield stream.emit_in_progress()
    for event in stream.output_item_reasoning_item(f"**Thinking** about '{text}'."):
        yield event
    message = stream.add_output_item_message()
    yield message.emit_added()
    content = message.add_text_content()
    yield content.emit_added()
    yield content.emit_delta("Thought ")
    yield content.emit_delta("it over.")
    yield content.emit_text_done("Thought it over.")
    yield content.emit_done()
    yield message.emit_done()
    yield stream.emit_completed()


@app.response_handler
async def handler(request, context, cancellation_signal):
    text = await context.get_input_text()
    if request.get("model") == "reasoner":
        return reasoned(request, context, text)
    history = [dict(item) for item in await context.get_history()]
    users = [message_text(item) for item in history if item.get("role") == "user"]
    reply = f"Turn {len(users) + 1}: you said '{text}'"
    if users:
        reply += f" (before that: '{users[-1]}')"
    if request.get("instructions"):
        reply += f" [instructions: {request.get('instructions')}]"
    reply += "."
    parts = [
        part
        for item in await context.get_input_items()
        if item.get("role") == "user" and isinstance(item.get("content"), list)
        for part in item.get("content")
    ]
    for part in parts:
        if part.get("type") == "input_image":
            reply += f" [image: {part.get('image_url', '')[:22]}… detail {part.get('detail')}]"
        elif part.get("type") == "input_file":
            reply += f" [file: {part.get('filename')}, {part.get('file_data', '')[:28]}…]"
    words = reply.split(" ")

    async def tokens():
        for index, word in enumerate(words):
            yield word if index == len(words) - 1 else word + " "

    return TextResponse(context, request, text=tokens())


app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""

SETTINGS = GenerationSettings(model="local-agent", instructions="Answer briefly.")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def agentserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("agentserver")
    script = root / "app.py"
    script.write_text(HANDLER, encoding="utf-8")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "AGENTSERVER_STATE_ROOT": str(root / "state"),
        "PYTHONUNBUFFERED": "1",
    }
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(script), str(port)], env=env, cwd=root, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"agentserver exited: {(root / 'server.log').read_text()[-2000:]}"
                )
            try:
                if httpx2.get(f"{url}/readiness", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("agentserver did not become ready in 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
async def backend(agentserver: str) -> AsyncIterator[Backend]:
    profile = Profile(
        name="agentserver",
        kind=EndpointKind.COMPATIBLE,
        endpoint=agentserver,
        auth=AuthMethod.NONE,
    )
    made = Backend(profile, max_retries=0, timeout=30)
    assert made.base_url == agentserver
    yield made
    await made.aclose()


async def turn(backend: Backend, text: str, previous: str | None = None) -> list[BackendEvent]:
    return [
        event
        async for event in backend.stream_reply(
            settings=SETTINGS,
            input=[InputMessage(MessageRole.USER, text)],
            previous_response_id=previous,
        )
    ]


def reply_text(events: list[BackendEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def done(events: list[BackendEvent]) -> ResponseFinished:
    last = events[-1]
    assert isinstance(last, ResponseFinished)
    return last


async def test_stream_a_reply(backend: Backend) -> None:
    events = await turn(backend, "hello agent")
    started = events[0]
    assert isinstance(started, ResponseStarted)
    assert started.response_id.startswith("caresp_") and started.model == "local-agent"
    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) > 3  # streamed word by word
    assert reply_text(events) == ("Turn 1: you said 'hello agent' [instructions: Answer briefly.].")
    finished = done(events)
    assert finished.status is MessageStatus.COMPLETED
    assert finished.response_id == started.response_id
    assert finished.usage == Usage()  # TextResponse sends no usage


async def test_chain_with_previous_response_id(backend: Backend) -> None:
    first = done(await turn(backend, "first question"))
    events = await turn(backend, "second question", previous=first.response_id)
    assert reply_text(events) == (
        "Turn 2: you said 'second question' (before that: 'first question') "
        "[instructions: Answer briefly.]."
    )
    second = done(events)
    assert second.status is MessageStatus.COMPLETED and second.response_id != first.response_id


async def test_retrieve_and_input_messages(backend: Backend) -> None:
    first = done(await turn(backend, "remember this"))
    second_events = await turn(backend, "and this", previous=first.response_id)
    second = done(second_events)
    assert second.response_id is not None
    stored = await backend.retrieve(second.response_id)
    assert stored is not None
    assert stored.id == second.response_id
    assert stored.status == "completed"
    assert stored.output_text == reply_text(second_events)
    assert stored.previous_response_id == first.response_id
    assert stored.model == "local-agent"
    # like OpenAI, the input of a chained response includes the conversation before it
    assert await backend.input_messages(second.response_id) == [
        InputMessage(MessageRole.USER, "remember this"),
        InputMessage(
            MessageRole.ASSISTANT,
            "Turn 1: you said 'remember this' [instructions: Answer briefly.].",
        ),
        InputMessage(MessageRole.USER, "and this"),
    ]


async def test_missing_responses(agentserver: str, backend: Backend) -> None:
    from azure.ai.agentserver.responses._id_generator import IdGenerator

    # a malformed id: agentserver answers 400, which retrieve treats as "not there"
    assert await backend.retrieve("caresp_not-a-real-id") is None
    # a well-formed id it never issued: 404
    unknown = IdGenerator.new_response_id()
    assert await backend.retrieve(unknown) is None
    # a deleted response: 404
    gone = done(await turn(backend, "soon deleted")).response_id
    assert gone is not None
    deleted = httpx2.delete(f"{agentserver}/responses/{gone}", timeout=10)
    assert deleted.status_code == 200
    assert await backend.retrieve(gone) is None
    # chaining from an id it does not hold is accepted (a fresh turn), unlike OpenAI and
    # Azure, so the session's retrieve() check is what finds an expired chain here
    events = await turn(backend, "continue", previous=unknown)
    assert reply_text(events).startswith("Turn 1: you said 'continue'")
    # a malformed previous_response_id is refused with 400
    with pytest.raises(BackendError) as caught:
        await turn(backend, "continue", previous="resp_from_elsewhere")
    assert caught.value.kind is ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND
    assert (caught.value.status_code, caught.value.param) == (400, "previous_response_id")


async def test_unreachable_after_stop_is_a_connection_error(tmp_path: Path) -> None:
    port = free_port()
    profile = Profile(
        name="gone",
        kind=EndpointKind.COMPATIBLE,
        endpoint=f"http://127.0.0.1:{port}",
        auth=AuthMethod.NONE,
    )
    backend = Backend(profile, max_retries=0)
    with pytest.raises(BackendError) as caught:
        await turn(backend, "anyone there?")
    assert caught.value.kind is ErrorKind.CONNECTION
    await backend.aclose()


async def test_a_reasoning_summary_from_the_host(backend: Backend) -> None:
    """The host builds reasoning items with a summary (no reasoning text, no encrypted
    content): the summary reads as the local server's does."""
    events = [
        event
        async for event in backend.stream_reply(
            settings=GenerationSettings(model="reasoner"),
            input=[InputMessage(MessageRole.USER, "the sky")],
            previous_response_id=None,
        )
    ]
    kinds = [type(event) for event in events]
    assert kinds.index(ReasoningStarted) < kinds.index(ReasoningDelta) < kinds.index(TextDelta)
    thought = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert thought == "**Thinking** about 'the sky'."
    assert reply_text(events) == "Thought it over."
    assert done(events).status is MessageStatus.COMPLETED
    assert done(events).reasoning_items == ()  # the host hands out no encrypted content


async def test_images_and_files_reach_the_handler_as_sent(backend: Backend) -> None:
    """agentserver takes input_image and input_file parts (its request validator knows
    both types) and hands them to the handler as the client sent them; it does not decode
    or check the data URLs, nor the image's type."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    pdf = b"%PDF-1.7\n" + bytes(64)
    attachments = (
        Attachment("a" * 64, "chart.png", "image/png", len(png)),
        Attachment("b" * 64, "report.pdf", "application/pdf", len(pdf)),
    )
    message = InputMessage(
        MessageRole.USER,
        "what is this?",
        attachments=attachments,
        attachment_data=(
            EncodedFile("data:image/png;base64,", (base64.b64encode(png),)),
            EncodedFile("data:application/pdf;base64,", (base64.b64encode(pdf),)),
        ),
    )
    events = [
        event
        async for event in backend.stream_reply(
            settings=SETTINGS, input=[message], previous_response_id=None
        )
    ]
    assert reply_text(events) == (
        "Turn 1: you said 'what is this?' [instructions: Answer briefly.]. "
        "[image: data:image/png;base64,… detail auto] "
        "[file: report.pdf, data:application/pdf;base64,…]"
    )
    assert done(events).status is MessageStatus.COMPLETED


def test_what_agentserver_refuses_of_image_and_file_parts(agentserver: str) -> None:
    """It checks the parts' types and enums against its schema (400, the JSON path in
    details) but not what the API checks beyond them: an input_image without the
    schema's required `detail`, base64 that does not decode and an input_file without
    its filename all pass."""

    def create(part: dict[str, object]) -> httpx2.Response:
        content = [{"type": "input_text", "text": "hi"}, part]
        return httpx2.post(
            f"{agentserver}/responses",
            json={"model": "m", "input": [{"role": "user", "content": content}]},
            timeout=30,
        )

    refused = create({"type": "input_image", "image_url": 5, "detail": "auto"})
    assert refused.status_code == 400
    [detail] = refused.json()["error"]["details"]
    assert detail["param"] == "$.input[0].content[1].image_url"
    bad_detail = create({"type": "input_image", "image_url": "data:,", "detail": "bogus"})
    assert bad_detail.status_code == 400
    for lenient in (
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
        {"type": "input_image", "image_url": "data:image/png;base64,@@@", "detail": "auto"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0="},
    ):
        assert create(lenient).status_code == 200, lenient
