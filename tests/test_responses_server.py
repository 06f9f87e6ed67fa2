"""Tests for the loopback Responses API server (tests/responses_server.py).

They drive it with the real ``openai.AsyncOpenAI`` client and with raw HTTP, and validate
every payload against the official OpenAPI subset with a validator built here, independent
of the server's own ``validate`` flag.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.helpers import VirtualClockLoop, eventually
from tests.responses_server import (
    SCHEMA_PATH,
    Fault,
    ResponsesServer,
    SchemaNotFoundError,
    load_validator,
    make_text,
    split_tokens,
)

REPO = Path(__file__).resolve().parents[1]
EXPECTED_TYPES = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]

# --------------------------------------------------------------------------- independent validator


@cache
def _document() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator(name: str) -> Draft202012Validator:
    uri = "urn:test-openapi"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(_document(), default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"{uri}#/components/schemas/{name}"}, registry=registry)


@cache
def _event_schema_names() -> dict[str, str]:
    names = {}
    for name, schema in _document()["components"]["schemas"].items():
        enum = schema.get("properties", {}).get("type", {}).get("enum")
        if name.endswith("Event") and enum:
            names[enum[0]] = name
    return names


def assert_valid(name: str, payload: Any) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in _validator(name).iter_errors(payload)
    ]
    assert not errors, f"{name} invalid: {errors}"


def assert_valid_event(event: dict[str, Any]) -> None:
    assert_valid(_event_schema_names()[event["type"]], event)


# --------------------------------------------------------------------------- helpers / fixtures


def parse_sse(raw: bytes) -> list[tuple[str | None, str]]:
    frames = []
    for block in raw.decode("utf-8").split("\n\n"):
        if not block:
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        frames.append((event, "\n".join(data)))
    return frames


async def raw_request(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


async def raw_stream(server: ResponsesServer, **body: Any) -> list[dict[str, Any]]:
    status, headers, raw = await raw_request(
        "POST", f"{server.base_url}/responses", {"model": "gpt-4o", "stream": True, **body}
    )
    assert status == 200, raw
    assert headers["Content-Type"].startswith("text/event-stream")
    events = []
    for event_name, data in parse_sse(raw):
        payload = json.loads(data)
        assert event_name == payload["type"]
        events.append(payload)
    return events


@pytest.fixture
def server() -> Iterator[ResponsesServer]:
    with ResponsesServer() as srv:
        yield srv
    assert srv.schema_errors == []


@pytest.fixture
async def client(server: ResponsesServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as c:
        yield c


async def collect(stream: Any) -> list[Any]:
    return [event async for event in stream]


# --------------------------------------------------------------------------- streaming


async def test_sdk_stream_event_sequence(server: ResponsesServer, client: openai.AsyncOpenAI):
    stream = await client.responses.create(
        model="gpt-4o", input="hello big wide world", instructions="Be brief.", stream=True
    )
    events = await collect(stream)
    types = [e.type for e in events]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert types == EXPECTED_TYPES[:4] + [EXPECTED_TYPES[4]] * len(deltas) + EXPECTED_TYPES[5:]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    reply = "You said: hello big wide world"
    assert "".join(d.delta for d in deltas) == reply
    assert [d.delta for d in deltas] == split_tokens(reply)
    item_id = events[2].item.id
    assert item_id.startswith("msg_")
    assert all(
        d.item_id == item_id and d.output_index == 0 and d.content_index == 0 for d in deltas
    )
    assert all(d.logprobs == [] for d in deltas)
    final = events[-1].response
    assert final.id.startswith("resp_") and final.status == "completed"
    assert final.output_text == reply
    assert final.instructions == "Be brief."
    assert final.model == "gpt-4o"
    assert final.usage.output_tokens == len(deltas) == 6
    assert final.usage.input_tokens == 6  # 4 input words + 2 instruction words
    assert final.usage.total_tokens == 12
    assert events[0].response.status == "in_progress"
    assert server.created()[0]["input"] == "hello big wide world"


@pytest.mark.parametrize("validate", [True, False])
async def test_raw_stream_payloads_validate(validate: bool):
    reply = "  Line one\n\nline  two\twith tabs 🚀 café\r\n  indented\n"
    with ResponsesServer(validate=validate) as server:
        server.queue_reply(reply)
        events = await raw_stream(server, input=[{"role": "user", "content": "hi"}])
    for event in events:
        assert_valid_event(event)
    assert [e["type"] for e in events if e["type"] != "response.output_text.delta"] == [
        t for t in EXPECTED_TYPES if t != "response.output_text.delta"
    ]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == reply  # byte for byte, newlines and all
    assert len(deltas) == len(reply.split())
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == reply
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == reply
    assert_valid("Response", events[-1]["response"])


async def test_many_tokens_unpaced_all_arrive(server: ResponsesServer):
    server.queue_reply(make_text(4000))
    events = await raw_stream(server, input="go")
    assert sum(e["type"] == "response.output_text.delta" for e in events) == 4000


class _ClockedWrites:
    """Stands in for the stream response: notes when (on the loop's clock) each delta frame
    was written; ``then`` runs after each write, with the count so far."""

    def __init__(self, then: Callable[[int], None] = lambda count: None) -> None:
        self.at: list[float] = []
        self._then = then

    async def write(self, data: bytes) -> None:
        self.at.append(asyncio.get_running_loop().time())
        self._then(len(self.at))


def _write_deltas(server: ResponsesServer, count: int, writes: _ClockedWrites) -> None:
    """The server's delta writer on a virtual clock starting at 0 (no socket, no thread)."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        await server._write_deltas(writes, lambda i: f"w{i} ", 0, count, loop)  # type: ignore[arg-type]

    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        runner.run(run())


def test_unpaced_deltas_are_written_without_waiting():
    writes = _ClockedWrites()
    _write_deltas(ResponsesServer(validate=False), 4000, writes)
    assert writes.at == [0.0] * 4000


def test_pacing_holds_its_schedule_and_follows_a_change_at_once():
    server = ResponsesServer(tokens_per_second=128, validate=False)  # 1/128 s: exact in binary
    writes = _ClockedWrites()
    _write_deltas(server, 20, writes)
    assert writes.at == [i / 128 for i in range(20)]  # the first at once, then on schedule

    def unpace_after_ten(count: int) -> None:
        if count == 10:
            server.tokens_per_second = None  # settable at runtime, mid-stream

    writes = _ClockedWrites(unpace_after_ten)
    _write_deltas(server, 200, writes)
    assert writes.at == [i / 128 for i in range(10)] + [9 / 128] * 190


async def test_first_delta_delay():
    with ResponsesServer(first_delta_delay=0.2) as server:
        start = time.perf_counter()
        await raw_stream(server, input="x")
        assert time.perf_counter() - start >= 0.2


async def test_max_output_tokens_truncates(server: ResponsesServer, client: openai.AsyncOpenAI):
    server.queue_reply("one two three four five six seven")
    events = await collect(
        await client.responses.create(model="gpt-4o", input="x", max_output_tokens=4, stream=True)
    )
    assert events[-1].type == "response.incomplete"
    final = events[-1].response
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.output_text == "one two three four "
    assert final.usage.output_tokens == 4
    assert [e.type for e in events][-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    server.queue_reply("one two three four five six seven")
    resp = await client.responses.create(model="gpt-4o", input="x", max_output_tokens=2)
    assert resp.status == "incomplete" and resp.output_text == "one two "


# --------------------------------------------------------------------------- non-streaming + state


async def test_non_stream_create(server: ResponsesServer, client: openai.AsyncOpenAI):
    resp = await client.responses.create(
        model="gpt-4o-mini", input="ping", temperature=0.2, top_p=0.5, max_output_tokens=50
    )
    assert resp.output_text == "You said: ping"
    assert resp.status == "completed" and resp.model == "gpt-4o-mini"
    assert (resp.temperature, resp.top_p, resp.max_output_tokens) == (0.2, 0.5, 50)
    assert resp.output[0].id.startswith("msg_")
    assert resp.previous_response_id is None and resp.store is True
    status, _, raw = await raw_request(
        "POST", f"{server.base_url}/responses", {"model": "gpt-4o", "input": "raw"}
    )
    assert status == 200
    assert_valid("Response", json.loads(raw))


async def test_reply_callable():
    def reply(body: dict[str, Any]) -> str:
        return f"model={body['model']}"

    with ResponsesServer(reply=reply) as server:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c:
            server.queue_reply("queued first")
            assert (await c.responses.create(model="m", input="a")).output_text == "queued first"
            assert (await c.responses.create(model="m", input="a")).output_text == "model=m"


async def test_chaining(server: ResponsesServer, client: openai.AsyncOpenAI):
    r1 = await client.responses.create(model="gpt-4o", input="first message")
    r2 = await client.responses.create(
        model="gpt-4o", input="second", previous_response_id=r1.id, instructions="Sys"
    )
    r3 = await client.responses.create(model="gpt-4o", input="third", previous_response_id=r2.id)
    assert r2.previous_response_id == r1.id and r3.previous_response_id == r2.id
    assert r2.instructions == "Sys" and r3.instructions is None  # not carried over
    assert r3.output_text == "You said: third"
    # history = every earlier input and output word, reported as cached
    assert r1.usage.input_tokens == 2 and r1.usage.input_tokens_details.cached_tokens == 0
    assert r2.usage.input_tokens_details.cached_tokens == 2 + 4
    assert r3.usage.input_tokens_details.cached_tokens == 2 + 4 + 1 + 3
    assert r3.usage.input_tokens == 2 + 4 + 1 + 3 + 1
    assert set(server.stored) == {r1.id, r2.id, r3.id}
    assert [b["input"] for b in server.created()] == ["first message", "second", "third"]


async def test_retrieve_input_items_delete(server: ResponsesServer, client: openai.AsyncOpenAI):
    messages: list[Any] = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "a1"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "u2"}]},
        {"role": "developer", "content": "dev"},
    ]
    resp = await client.responses.create(model="gpt-4o", input=messages)
    assert resp.output_text == "You said: u2"

    got = await client.responses.retrieve(resp.id)
    assert got.id == resp.id and got.output_text == resp.output_text
    status, _, raw = await raw_request("GET", f"{server.base_url}/responses/{resp.id}")
    assert status == 200
    assert_valid("Response", json.loads(raw))
    assert "input_items" not in json.loads(raw)

    page = await client.responses.input_items.list(resp.id)  # default order desc, limit 20
    texts = [item.content[0].text for item in page.data]
    assert texts == ["dev", "u2", "a1", "u1", "sys"]
    assert all(item.id.startswith("msg_") for item in page.data)
    assert page.data[2].role == "assistant"

    asc = [
        i.content[0].text
        async for i in client.responses.input_items.list(resp.id, order="asc", limit=2)
    ]
    assert asc == ["sys", "u1", "a1", "u2", "dev"]  # auto-pagination through after/has_more

    url = f"{server.base_url}/responses/{resp.id}/input_items"
    status, _, raw = await raw_request("GET", f"{url}?order=asc&limit=2")
    first = json.loads(raw)
    assert_valid("ResponseItemList", first)
    assert first["has_more"] is True and len(first["data"]) == 2
    assert (
        first["first_id"] == first["data"][0]["id"] and first["last_id"] == first["data"][1]["id"]
    )
    status, _, raw = await raw_request("GET", f"{url}?order=asc&limit=2&after={first['last_id']}")
    second = json.loads(raw)
    assert_valid("ResponseItemList", second)
    assert [i["content"][0]["text"] for i in second["data"]] == ["a1", "u2"]
    status, _, raw = await raw_request("GET", f"{url}?order=asc&limit=10&after={second['last_id']}")
    third = json.loads(raw)
    assert third["has_more"] is False and [i["id"] for i in third["data"]] == [third["last_id"]]
    status, _, raw = await raw_request("GET", f"{url}?limit=101")
    assert status == 400
    assert_valid("ErrorResponse", json.loads(raw))

    deleted = await client.responses.delete(resp.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    status, _, raw = await raw_request("DELETE", f"{server.base_url}/responses/{resp.id}")
    assert status == 404
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.retrieve(resp.id)
    assert f"Response with id '{resp.id}' not found." in info.value.message
    status, _, raw = await raw_request("GET", f"{server.base_url}/responses/{resp.id}")
    body = json.loads(raw)
    assert_valid("ErrorResponse", body)
    assert body["error"]["type"] == "invalid_request_error"


async def test_raw_delete_payload(server: ResponsesServer, client: openai.AsyncOpenAI):
    resp = await client.responses.create(model="gpt-4o", input="x")
    status, _, raw = await raw_request("DELETE", f"{server.base_url}/responses/{resp.id}")
    assert status == 200
    assert json.loads(raw) == {"id": resp.id, "object": "response.deleted", "deleted": True}


async def test_store_false_is_not_retrievable(server: ResponsesServer, client: openai.AsyncOpenAI):
    resp = await client.responses.create(model="gpt-4o", input="x", store=False)
    assert resp.store is False
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(resp.id)


async def test_models(server: ResponsesServer, client: openai.AsyncOpenAI):
    models = [m.id async for m in client.models.list()]
    assert models == ["gpt-4o", "gpt-4o-mini", "o4-mini"]
    status, _, raw = await raw_request("GET", f"{server.base_url}/models")
    body = json.loads(raw)
    assert status == 200 and body["object"] == "list"
    assert all({"id", "object", "created", "owned_by"} <= set(m) for m in body["data"])


async def test_expire(server: ResponsesServer, client: openai.AsyncOpenAI):
    r1 = await client.responses.create(model="gpt-4o", input="a")
    r2 = await client.responses.create(model="gpt-4o", input="b")
    server.expire(r1.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(r1.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.input_items.list(r1.id)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-4o", input="c", previous_response_id=r1.id)
    err = info.value
    assert err.code == "previous_response_not_found" and err.param == "previous_response_id"
    assert err.type == "invalid_request_error"
    assert f"Previous response with id '{r1.id}' not found." in err.message
    assert (await client.responses.retrieve(r2.id)).id == r2.id
    server.expire_all()
    assert server.stored == {}
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(
            model="gpt-4o", input="c", previous_response_id=r2.id, stream=True
        )


# --------------------------------------------------------------------------- faults

HTTP_FAULTS = [
    (Fault.RATE_LIMIT, openai.RateLimitError, 429, "rate_limit_exceeded"),
    (Fault.RATE_LIMIT_NO_RETRY_AFTER, openai.RateLimitError, 429, "rate_limit_exceeded"),
    (Fault.SERVER_ERROR, openai.InternalServerError, 500, None),
    (Fault.UNAVAILABLE, openai.InternalServerError, 503, None),
    (Fault.CONTENT_FILTER, openai.BadRequestError, 400, "content_filter"),
    (Fault.UNAUTHORIZED, openai.AuthenticationError, 401, "invalid_api_key"),
    (Fault.FORBIDDEN, openai.PermissionDeniedError, 403, "PermissionDenied"),
]


@pytest.mark.parametrize(("fault", "exc", "status", "code"), HTTP_FAULTS)
@pytest.mark.parametrize("stream", [False, True])
async def test_http_faults(
    server: ResponsesServer,
    client: openai.AsyncOpenAI,
    fault: Fault,
    exc: type[openai.APIStatusError],
    status: int,
    code: str | None,
    stream: bool,
):
    server.inject(fault)
    with pytest.raises(exc) as info:
        await client.responses.create(model="gpt-4o", input="x", stream=stream)
    err = info.value
    assert err.status_code == status and err.code == code
    assert err.request_id and err.request_id.startswith("req_")
    headers = err.response.headers
    if fault is Fault.RATE_LIMIT:
        assert headers["retry-after"] == "0"
    else:
        assert "retry-after" not in headers and "retry-after-ms" not in headers
    body = err.response.json()
    if fault is Fault.CONTENT_FILTER:
        assert body["error"]["type"] is None and body["error"]["param"] == "prompt"
        assert body["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"
        assert body["error"]["innererror"]["content_filter_result"]["hate"]["filtered"] is True
    elif fault is Fault.FORBIDDEN:
        assert "lacks the required data action" in body["error"]["message"]
    else:
        assert_valid("ErrorResponse", body)
    if fault is Fault.UNAUTHORIZED:
        assert body["error"]["message"].startswith("Access denied due to invalid subscription key")
    # only the next request was affected
    assert (await client.responses.create(model="gpt-4o", input="ok")).output_text == "You said: ok"


async def test_fault_times_and_sdk_retries(server: ResponsesServer):
    server.inject(Fault.RATE_LIMIT, times=2, retry_after="0.01")
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=2) as c:
        resp = await c.responses.create(model="gpt-4o", input="retry me")
    assert resp.output_text == "You said: retry me"
    assert len(server.created()) == 3
    with pytest.raises(TypeError):
        server.inject(Fault.FAILED, after_delta=1)  # typo in option name


async def test_fault_failed(server: ResponsesServer, client: openai.AsyncOpenAI):
    server.queue_reply("a b c d e f g h")
    server.inject(Fault.FAILED)
    events = await collect(await client.responses.create(model="gpt-4o", input="x", stream=True))
    assert [e.type for e in events[4:]] == ["response.output_text.delta"] * 3 + ["response.failed"]
    failed = events[-1].response
    assert failed.status == "failed"
    assert failed.error.code == "server_error" and failed.error.message


async def test_fault_incomplete(server: ResponsesServer, client: openai.AsyncOpenAI):
    server.inject(Fault.INCOMPLETE, after_deltas=2)
    server.queue_reply("a b c d e f g h")
    events = await collect(await client.responses.create(model="gpt-4o", input="x", stream=True))
    assert sum(e.type == "response.output_text.delta" for e in events) == 2
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert events[-1].response.output_text == "a b "


async def test_fault_error_event(server: ResponsesServer, client: openai.AsyncOpenAI):
    server.queue_reply("a b c d e f g h")
    server.inject(Fault.ERROR_EVENT, code="server_error", message="boom")
    events = await collect(await client.responses.create(model="gpt-4o", input="x", stream=True))
    last = events[-1]
    assert isinstance(last, openai.types.responses.ResponseErrorEvent)
    assert (last.code, last.message, last.param) == ("server_error", "boom", None)
    assert last.sequence_number == events[-2].sequence_number + 1
    assert sum(e.type == "response.output_text.delta" for e in events) == 3


@pytest.mark.parametrize("with_failed", [False, True])
async def test_fault_nested_error(
    server: ResponsesServer, client: openai.AsyncOpenAI, with_failed: bool
):
    server.queue_reply("a b c d e f g h")
    server.inject(Fault.NESTED_ERROR, with_failed=with_failed)
    seen = []
    with pytest.raises(openai.APIError) as info:
        async for event in await client.responses.create(model="gpt-4o", input="x", stream=True):
            seen.append(event)
    assert info.value.code == "content_filter"
    assert "content management policy" in info.value.message
    assert sum(e.type == "response.output_text.delta" for e in seen) == 3
    if with_failed:  # Azure: response.failed with error null, then the frame
        assert seen[-1].type == "response.failed" and seen[-1].response.error is None
    # the raw frame is an ErrorResponse-shaped data line with no event name
    server.inject(Fault.NESTED_ERROR)
    _, _, raw = await raw_request(
        "POST", f"{server.base_url}/responses", {"model": "m", "input": "x", "stream": True}
    )
    event_name, data = parse_sse(raw)[-1]
    assert event_name is None
    assert_valid("ErrorResponse", json.loads(data))


async def test_fault_drop_stream(server: ResponsesServer, client: openai.AsyncOpenAI):
    server.queue_reply("a b c d e f g h")
    server.inject(Fault.DROP_STREAM, after_deltas=2)
    seen: list[Any] = []
    try:
        async for event in await client.responses.create(model="gpt-4o", input="x", stream=True):
            seen.append(event)
    except openai.APIConnectionError:
        pass
    types = [e.type for e in seen]
    assert types.count("response.output_text.delta") == 2
    assert not {"response.completed", "response.failed", "response.incomplete"} & set(types)
    # the server keeps working afterwards
    assert (await client.responses.create(model="gpt-4o", input="ok")).output_text.endswith("ok")


async def test_fault_stall(server: ResponsesServer, client: openai.AsyncOpenAI):
    server.inject(Fault.STALL, after_deltas=1, seconds=0.3)
    start = time.perf_counter()
    events = await collect(await client.responses.create(model="gpt-4o", input="x", stream=True))
    assert time.perf_counter() - start >= 0.3
    assert events[-1].type == "response.completed"
    # an endless stall ends when the client gives up
    server.inject(Fault.STALL)
    with pytest.raises(openai.APITimeoutError):
        async for _ in await client.responses.create(
            model="gpt-4o", input="x", stream=True, timeout=0.3
        ):
            pass


async def test_faults_fifo_and_non_stream(server: ResponsesServer, client: openai.AsyncOpenAI):
    server.inject(Fault.SERVER_ERROR)
    server.inject(Fault.FAILED)
    with pytest.raises(openai.InternalServerError):
        await client.responses.create(model="gpt-4o", input="x")
    resp = await client.responses.create(model="gpt-4o", input="one two three four")
    assert resp.status == "failed" and resp.error.code == "server_error"
    assert (await client.responses.create(model="gpt-4o", input="x")).status == "completed"


# --------------------------------------------------------------------------- Azure behaviour


async def test_deployments_and_azure_url():
    with ResponsesServer(deployments=["chat"]) as server:
        async with openai.AsyncOpenAI(
            base_url=server.azure_base_url, api_key="k", max_retries=0
        ) as c:
            assert (
                await c.responses.create(model="chat", input="hi")
            ).output_text == "You said: hi"
            with pytest.raises(openai.NotFoundError) as info:
                await c.responses.create(model="gpt-4o", input="hi")
            assert info.value.code == "DeploymentNotFound"
            assert "The API deployment for this resource does not exist" in info.value.message
        assert server.requests[0].path == "/openai/v1/responses"
        status, _, raw = await raw_request("GET", f"{server.url}/openai/deployments/x/nope")
        assert status == 404 and json.loads(raw)["error"]["code"] == "404"
        assert server.schema_errors == []


async def test_reasoning_models_reject_sampling_params():
    with ResponsesServer(reasoning_models=["o4-mini"]) as server:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c:
            for param in ("temperature", "top_p"):
                with pytest.raises(openai.BadRequestError) as info:
                    await c.responses.create(model="o4-mini", input="x", **{param: 0.5})
                err = info.value
                assert (err.code, err.param, err.type) == (
                    "unsupported_parameter",
                    param,
                    "invalid_request_error",
                )
                assert f"Unsupported parameter: '{param}'" in err.message
            assert (await c.responses.create(model="o4-mini", input="x")).status == "completed"
            assert (await c.responses.create(model="gpt-4o", input="x", temperature=0.1)).status


async def test_api_key_enforced():
    with ResponsesServer(api_key="secret") as server:
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="wrong", max_retries=0
        ) as c:
            with pytest.raises(openai.AuthenticationError) as info:
                await c.responses.create(model="gpt-4o", input="x")
            assert info.value.code == "invalid_api_key"
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="secret", max_retries=0
        ) as c:
            assert (await c.responses.create(model="gpt-4o", input="x")).status == "completed"
        status, _, _ = await raw_request("GET", f"{server.base_url}/models")
        assert status == 401
        status, _, _ = await raw_request(
            "GET", f"{server.base_url}/models", headers={"api-key": "secret"}
        )
        assert status == 200
        assert server.requests[0].headers["Authorization"] == "Bearer wrong"
        assert server.requests[0].headers["authorization"] == "Bearer wrong"


# --------------------------------------------------------------------------- validation


async def test_validation_catches_bad_payloads():
    good = {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "hi",
        "logprobs": [],
        "sequence_number": 4,
    }
    broken = {k: v for k, v in good.items() if k != "logprobs"}
    validator = load_validator()
    assert validator.event_errors(good) == []
    errors = validator.event_errors(broken)
    assert errors and "logprobs" in errors[0]
    assert validator.event_errors({**good, "type": "response.nonsense"})
    with pytest.raises(AssertionError):
        assert_valid_event(broken)  # the test's own validator agrees
    bad_part = {"type": "output_text", "text": "x", "annotations": []}  # missing logprobs
    errors = validator.errors("OutputContent", bad_part)
    assert errors and "logprobs" in " ".join(errors)

    # a payload the server would echo invalidly (instructions must be a string or a list)
    with ResponsesServer() as server:
        for stream in (False, True):
            status, _, raw = await raw_request(
                "POST",
                f"{server.base_url}/responses",
                {"model": "gpt-4o", "input": "x", "instructions": 123, "stream": stream},
            )
            assert status == 500
            assert json.loads(raw)["error"]["code"] == "schema_validation_failed"
        assert server.schema_errors and "instructions" in server.schema_errors[0]


def test_missing_schema_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FOUNDRY_TUI_RESPONSES_SCHEMA", str(tmp_path / "missing.json"))
    with pytest.raises(SchemaNotFoundError, match="schema not found"):
        ResponsesServer(validate=True)
    ResponsesServer(validate=False)  # fine without the schema


# --------------------------------------------------------------------------- plumbing


async def test_recorded_requests(server: ResponsesServer, client: openai.AsyncOpenAI):
    await client.responses.create(model="gpt-4o", input="x", metadata={"k": "v"})
    await client.models.list()
    first, second = server.requests
    assert (first.method, first.path) == ("POST", "/v1/responses")
    assert first.body is not None and first.body["metadata"] == {"k": "v"}
    assert first.headers["authorization"] == "Bearer test-key"
    assert (second.method, second.path, second.body) == ("GET", "/v1/models", None)


async def test_control_endpoint(server: ResponsesServer, client: openai.AsyncOpenAI):
    status, _, _ = await raw_request(
        "POST", f"{server.url}/_control/inject", {"fault": "server_error", "times": 1}
    )
    assert status == 200
    await raw_request("POST", f"{server.url}/_control/reply", {"text": "controlled"})
    before = time.monotonic()
    with pytest.raises(openai.InternalServerError):
        await client.responses.create(model="gpt-4o", input="x")
    assert (await client.responses.create(model="gpt-4o", input="x")).output_text == "controlled"
    after = time.monotonic()
    assert all(not r.path.startswith("/_control") for r in server.requests)
    # When each create's body had been read, on the system-wide monotonic clock.
    status, _, raw = await raw_request("POST", f"{server.url}/_control/received", {})
    assert status == 200
    first, second = json.loads(raw)["creates_read"]
    assert before <= first <= second <= after
    # A reply for each model named; the others keep the reply they had.
    await raw_request(
        "POST", f"{server.url}/_control/replies", {"by_model": {"gpt-4o-mini": "small one"}}
    )
    assert (await client.responses.create(model="gpt-4o-mini", input="x")).output_text == (
        "small one"
    )
    before_stream = time.monotonic()
    async with client.responses.stream(model="gpt-4o", input="y") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                last_delta_read = time.monotonic()
    assert (await stream.get_final_response()).output_text == "You said: y"
    # When each streamed answer's last delta had been written (not the unstreamed ones).
    _, _, raw = await raw_request("POST", f"{server.url}/_control/received", {})
    [[model, sent]] = json.loads(raw)["answers_sent"]
    assert model == "gpt-4o" and before_stream <= sent <= last_delta_read
    await raw_request("POST", f"{server.url}/_control/reset", {})
    _, _, raw = await raw_request("POST", f"{server.url}/_control/received", {})
    assert json.loads(raw)["creates_read"] == [] and json.loads(raw)["answers_sent"] == []


def test_cli_ready_line_and_sigterm():
    with subprocess.Popen(
        [sys.executable, "-m", "tests.responses_server", "--port", "0", "--tps", "1000"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("READY http://127.0.0.1:") and line.endswith("/v1"), line
            base_url = line.split(" ", 1)[1]
            with urllib.request.urlopen(f"{base_url}/models", timeout=5) as resp:
                assert json.load(resp)["object"] == "list"
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


async def test_stop_with_open_stream_is_prompt():
    """stop() ends a stream that is mid-reply at once: not one more delta is written after
    it begins (without that, the reply goes on until aiohttp's shutdown timeout)."""
    server = ResponsesServer(tokens_per_second=5).start()
    written = {"before stop": 0, "after stop": 0}
    write_deltas = server._write_deltas

    class Counted:
        def __init__(self, resp: Any) -> None:
            self._resp = resp

        async def write(self, data: bytes) -> None:
            await self._resp.write(data)
            assert server._stopping is not None
            written["after stop" if server._stopping.is_set() else "before stop"] += 1

    async def counted(resp: Any, *args: Any) -> None:
        await write_deltas(Counted(resp), *args)  # type: ignore[arg-type]

    server._write_deltas = counted  # type: ignore[method-assign]
    server.queue_reply(make_text(100))
    task = asyncio.create_task(raw_stream(server, input="x"))
    await eventually(lambda: written["before stop"] >= 1, what="the first delta")
    await asyncio.to_thread(server.stop)
    with pytest.raises((aiohttp.ClientError, AssertionError)):
        await task
    assert written["after stop"] == 0
    assert written["before stop"] < 100
