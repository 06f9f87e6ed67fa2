"""Events that repeat the whole reply (output_text.done, content_part.done,
output_item.done) are skipped by their SSE name before their data is decoded: a 50 MB reply
comes back in each, and decoding one holds the UI loop. A frame whose data says otherwise
is still read."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from foundry_tui.core.models import MessageStatus, ResponseFinished, TextDelta
from tests.test_backend import collect, mock_backend, response_obj


def frame(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


def stream_of(*frames: str) -> Any:
    body = "".join(frames)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=body.encode(), headers={"content-type": "text/event-stream"}
        )

    return handler


def event(kind: str, **fields: Any) -> str:
    return frame(kind, json.dumps({"type": kind, "sequence_number": 0, **fields}))


DELTA = {"item_id": "msg_1", "output_index": 0, "content_index": 0, "logprobs": []}


async def test_repeating_events_are_not_decoded() -> None:
    # Their data is not even JSON: were it decoded, the turn would fail.
    unreadable = '{"type":"%s", "text": "the whole reply again...'
    backend = mock_backend(
        stream_of(
            event("response.created", response=response_obj("in_progress")),
            event("response.output_text.delta", delta="hello", **DELTA),
            frame("response.output_text.done", unreadable % "response.output_text.done"),
            frame("response.content_part.done", unreadable % "response.content_part.done"),
            frame("response.output_item.done", unreadable % "response.output_item.done"),
            event("response.completed", response=response_obj("completed")),
        )
    )
    events = await collect(backend)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["hello"]
    last = events[-1]
    assert isinstance(last, ResponseFinished) and last.status == MessageStatus.COMPLETED


async def test_a_frame_named_as_a_repeat_but_carrying_a_delta_is_read() -> None:
    mislabelled = json.dumps(
        {"type": "response.output_text.delta", "sequence_number": 0, "delta": " world", **DELTA}
    )
    backend = mock_backend(
        stream_of(
            event("response.created", response=response_obj("in_progress")),
            event("response.output_text.delta", delta="hello", **DELTA),
            frame("response.output_text.done", mislabelled),
            event("response.completed", response=response_obj("completed")),
        )
    )
    events = await collect(backend)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hello world"
