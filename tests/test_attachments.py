"""Files and images with a prompt, below the UI: kept once per content beside the database,
linked to the prompt before the request leaves, sent as the schema's input_image and
input_file parts by the real AsyncOpenAI client, sent again by a retry and by a replay
after expiry, explained when refused, and deleted with the last conversation using them."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from foundry_tui.backend.client import Backend
from foundry_tui.core.attachments import AttachmentRejected, FileToAttach, check_file
from foundry_tui.core.models import (
    AuthMethod,
    EncodedFile,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    MessageStatus,
    Profile,
)
from foundry_tui.core.session import ChatSession, SendMode, TurnEnded, TurnEvent
from foundry_tui.core.turns import Turns
from foundry_tui.store import Store
from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import Fault, ResponsesServer

SETTINGS = GenerationSettings(model="gpt-4o")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.7\n" + b"report body " * 100
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "foundry_tui/core/export_schema.json").read_text()
)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, text_only_models=["gpt-35-turbo"]) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "history.db") as opened:
        yield opened


@pytest.fixture
async def backend(server: ResponsesServer) -> AsyncIterator[Backend]:
    profile = Profile(
        name="test",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
    )
    made = Backend(profile, max_retries=0, timeout=5)
    yield made
    await made.aclose()


async def new_turns(store: Store, backend: Backend, model: str = "gpt-4o") -> Turns:
    session = await ChatSession.start_new(
        store, backend, profile="test", settings=GenerationSettings(model=model)
    )
    return Turns(session)


def attach(folder: Path, name: str, data: bytes) -> FileToAttach:
    path = folder / name
    path.write_bytes(data)
    return check_file(path)


async def play(events: AsyncIterator[TurnEvent]) -> TurnEnded:
    [end] = [event async for event in events if isinstance(event, TurnEnded)]
    return end


def user_content(body: dict[str, Any], index: int = -1) -> Any:
    users = [item for item in body["input"] if item["role"] == "user"]
    return users[index]["content"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_an_image_and_a_pdf_arrive_as_the_schema_says(
    tmp_path: Path, store: Store, backend: Backend, server: ResponsesServer
) -> None:
    turns = await new_turns(store, backend)
    files = [attach(tmp_path, "chart.png", PNG), attach(tmp_path, "report.pdf", PDF)]
    end = await play(turns.send("What is in these?", attachments=files))

    assert end.error is None and end.reply.status == MessageStatus.COMPLETED
    assert user_content(server.created()[-1]) == [
        {"type": "input_text", "text": "What is in these?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{b64(PNG)}", "detail": "auto"},
        {
            "type": "input_file",
            "filename": "report.pdf",
            "file_data": f"data:application/pdf;base64,{b64(PDF)}",
        },
    ]
    assert end.reply.text == (
        f"You said: What is in these? I see 1 image (png, {len(PNG)} bytes) and "
        f"1 file (report.pdf, {len(PDF)} bytes)."
    )
    assert server.schema_errors == []
    # The prompt is saved with its files (name, type, size), and reads back with them.
    [prompt, _reply] = await turns.session.transcript()
    assert [(a.name, a.media_type, a.size) for a in prompt.attachments] == [
        ("chart.png", "image/png", len(PNG)),
        ("report.pdf", "application/pdf", len(PDF)),
    ]


async def test_files_are_kept_once_per_content_privately_beside_the_database(
    tmp_path: Path, store: Store, backend: Backend
) -> None:
    turns = await new_turns(store, backend)
    first = attach(tmp_path, "a.png", PNG)
    same = attach(tmp_path, "b.png", PNG)  # the same bytes under another name
    await play(turns.send("one", attachments=[first]))
    await play(turns.send("two", attachments=[same, first]))

    folder = tmp_path / "history-attachments"
    kept = [path for path in folder.rglob("*") if path.is_file()]
    assert [path.read_bytes() for path in kept] == [PNG]
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    prompts = [m for m in await turns.session.transcript() if m.attachments]
    assert [[a.name for a in m.attachments] for m in prompts] == [["a.png"], ["b.png", "a.png"]]
    # The original may go: the conversation carries its own copy.
    (tmp_path / "a.png").unlink()
    (tmp_path / "b.png").unlink()
    end = await play(turns.send("three"))
    assert end.error is None


async def test_a_replay_after_expiry_sends_the_files_again(
    tmp_path: Path, store: Store, backend: Backend, server: ResponsesServer
) -> None:
    turns = await new_turns(store, backend)
    await play(turns.send("look", attachments=[attach(tmp_path, "chart.png", PNG)]))
    server.expire_all()
    await turns.check_server()
    assert turns.next_mode == SendMode.REPLAY
    end = await play(turns.send("and now?"))

    assert end.error is None
    body = server.created()[-1]
    assert "previous_response_id" not in body
    assert user_content(body, 0) == [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{b64(PNG)}", "detail": "auto"},
    ]
    assert user_content(body, -1) == "and now?"


async def test_a_retry_resends_the_files(
    tmp_path: Path, store: Store, backend: Backend, server: ResponsesServer
) -> None:
    turns = await new_turns(store, backend)
    server.inject(Fault.SERVER_ERROR)
    failed = await play(turns.send("read", attachments=[attach(tmp_path, "r.pdf", PDF)]))
    assert failed.reply.status == MessageStatus.FAILED
    end = await play(turns.retry())
    assert end.reply.text == f"You said: read I see 1 file (r.pdf, {len(PDF)} bytes)."


async def test_deleting_a_conversation_deletes_the_files_no_other_uses(
    tmp_path: Path, store: Store, backend: Backend
) -> None:
    shared = attach(tmp_path, "shared.png", PNG)
    own = attach(tmp_path, "own.pdf", PDF)
    first = await new_turns(store, backend)
    await play(first.send("both", attachments=[shared, own]))
    second = await new_turns(store, backend)
    await play(second.send("one", attachments=[shared]))
    folder = tmp_path / "history-attachments"

    def kept() -> set[bytes]:
        return {path.read_bytes() for path in folder.rglob("*") if path.is_file()}

    assert kept() == {PNG, PDF}
    store.delete_conversation(first.session.conversation.id)
    assert kept() == {PNG}
    [prompt, _] = store.transcript(second.session.conversation.id)
    assert store.read_attachment(prompt.attachments[0].sha256) == PNG
    store.delete_conversation(second.session.conversation.id)
    assert kept() == set()
    assert list(folder.iterdir()) == []  # no empty ab/ folders left behind


async def test_a_model_without_vision_is_explained_naming_the_file(
    tmp_path: Path, store: Store, backend: Backend, server: ResponsesServer
) -> None:
    turns = await new_turns(store, backend, model="gpt-35-turbo")
    end = await play(turns.send("see", attachments=[attach(tmp_path, "cat.png", PNG)]))

    assert end.error is not None and end.error.kind == ErrorKind.BAD_REQUEST
    assert end.error.title == "The server refused the attached file cat.png (PNG image, 1.0 kB)"
    assert "does not read images or files" in end.error.detail
    assert end.reply.status == MessageStatus.FAILED
    assert "cat.png" in (end.reply.error or "")


async def test_a_damaged_image_is_explained(
    tmp_path: Path, store: Store, backend: Backend, server: ResponsesServer
) -> None:
    """The kept copy damaged on disk, then replayed after expiry: the server's refusal of
    an image it cannot read names the file, in the earlier prompt that carried it."""
    turns = await new_turns(store, backend)
    first = await play(turns.send("see", attachments=[attach(tmp_path, "broken.png", PNG)]))
    assert first.error is None
    [prompt, _] = await turns.session.transcript()
    store.attachment_path(prompt.attachments[0].sha256).write_bytes(b"\x00not an image")
    server.expire_all()
    await turns.check_server()
    end = await play(turns.send("and now?"))
    assert end.error is not None
    assert end.error.title == "The server refused the attached file broken.png (PNG image, 1.0 kB)"
    assert "could not read it as an image" in end.error.detail


async def test_the_server_refuses_a_malformed_part_like_the_api(server: ResponsesServer) -> None:
    from openai import AsyncOpenAI, BadRequestError

    client = AsyncOpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0)
    malformed: list[dict[str, Any]] = [
        {"type": "input_image", "image_url": f"data:image/png;base64,{b64(PNG)}"},  # no detail
        {"type": "input_image", "image_url": "data:image/png;base64,@@@", "detail": "auto"},
        {"type": "input_file", "file_data": f"data:application/pdf;base64,{b64(PDF)}"},
    ]
    params = []
    for part in malformed:
        with pytest.raises(BadRequestError) as refused:
            await client.responses.create(
                model="gpt-4o", input=[{"role": "user", "content": [part]}]
            )
        params.append(refused.value.param)
    await client.close()
    assert params == [
        "input[0].content[0]",
        "input[0].content[0].image_url",
        "input[0].content[0].filename",
    ]


async def test_the_local_model_takes_no_files(tmp_path: Path, store: Store) -> None:
    class TextOnly:
        stateless = True

    session = ChatSession(
        store,
        TextOnly(),  # type: ignore[arg-type]
        store.create_conversation(profile="local", settings=SETTINGS),
    )
    with pytest.raises(AttachmentRejected, match="The local model reads text only"):
        await play(Turns(session).send("see", attachments=[attach(tmp_path, "a.png", PNG)]))
    assert store.transcript(session.conversation.id) == []
    assert not (tmp_path / "history-attachments").exists()


# -- export and import ---------------------------------------------------------------------


def export_json(store: Store, conversation_id: str) -> dict[str, Any]:
    from foundry_tui.core import transfer

    exported = transfer.find(store, conversation_id)
    assert exported is not None
    data: dict[str, Any] = json.loads(transfer.dumps(transfer.document(exported)))
    return data


async def test_export_import_export_carries_files_reasoning_usage_and_timings(
    tmp_path: Path, store: Store, backend: Backend
) -> None:
    from foundry_tui.core import transfer
    from foundry_tui.core.models import Usage

    turns = await new_turns(store, backend)
    image, pdf = attach(tmp_path, "chart.png", PNG), attach(tmp_path, "report.pdf", PDF)
    await play(turns.send("first", attachments=[image, pdf]))
    end = await play(turns.send("again", attachments=[image]))
    store.update_message(
        end.reply.id,
        reasoning="Thinking about the chart.",
        usage=Usage(10, 5, 15, cached_input_tokens=8, reasoning_tokens=3),
        first_token_ms=120,
        duration_ms=900,
    )
    cid = turns.session.conversation.id
    first = export_json(store, cid)
    Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(first)
    assert first["version"] == 2
    # Each content once, as base64 of exactly its bytes; prompts name them by hash.
    assert [(a["media_type"], base64.b64decode(a["data"])) for a in first["attachments"]] == [
        ("image/png", PNG),
        ("application/pdf", PDF),
    ]
    png_hash = first["attachments"][0]["sha256"]
    assert first["messages"][2]["attachments"] == [{"sha256": png_hash, "name": "chart.png"}]
    last = first["messages"][3]
    assert last["reasoning"] == "Thinking about the chart."
    assert last["usage"]["cached_input_tokens"] == 8 and last["usage"]["reasoning_tokens"] == 3
    assert (last["first_token_ms"], last["duration_ms"]) == (120, 900)

    with Store.open(tmp_path / "elsewhere" / "other.db") as other:
        saved = transfer.save_imported(other, transfer.parse(json.dumps(first).encode()))
        again = export_json(other, saved.id)
        [prompt, *_] = other.transcript(saved.id)
        assert other.read_attachment(prompt.attachments[1].sha256) == PDF
    ids = [first["conversation"]["id"], *(m["id"] for m in first["messages"])]
    new_ids = [again["conversation"]["id"], *(m["id"] for m in again["messages"])]
    text = json.dumps(again)
    for old, new in zip(ids, new_ids, strict=True):
        text = text.replace(new, old)
    assert json.loads(text) == first


def test_a_version_1_document_still_imports(tmp_path: Path, store: Store) -> None:
    from foundry_tui.core import transfer

    version_1 = {
        "format": "foundry-tui.conversation",
        "version": 1,
        "exported_by": "foundry-tui 0.1.0",
        "conversation": {
            "id": "c1", "title": "Old", "profile": "work",
            "created_at": "2026-12-01T05:01:10+00:00", "updated_at": "2026-12-01T05:01:11+00:00",
            "server_state": "unknown", "head_message_id": "m2",
            "settings": {"model": "gpt-4o", "instructions": None, "temperature": None,
                         "top_p": None, "max_output_tokens": None},
        },
        "messages": [
            {"id": mid, "parent_id": parent, "role": role, "status": "completed",
             "created_at": "2026-12-01T05:01:10+00:00", "model": "gpt-4o",
             "response_model": None, "response_id": response_id, "previous_response_id": None,
             "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
             "error": None, "text": text}
            for mid, parent, role, response_id, text in (
                ("m1", None, "user", None, "Hello"),
                ("m2", "m1", "assistant", "resp_1", "Hi"),
            )
        ],
    }  # fmt: skip
    saved = transfer.save_imported(store, transfer.parse(json.dumps(version_1).encode()))
    user, reply = store.transcript(saved.id)
    assert (user.text, user.attachments, reply.text, reply.reasoning) == ("Hello", (), "Hi", "")
    assert reply.usage.total_tokens == 7 and reply.usage.cached_input_tokens is None
    assert export_json(store, saved.id)["version"] == 2


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d["attachments"][0].update(data=b64(PDF)), "does not match its sha256"),
        (lambda d: d["attachments"][0].update(media_type="image/gif"), "is not a GIF image"),
        (lambda d: d["attachments"][0].update(size=1), "is not the size of its data"),
        (lambda d: d["attachments"][0].update(sha256="../" * 21 + "x"), "SHA-256"),
        (lambda d: d["messages"][0]["attachments"][0].update(sha256="0" * 64), "names none"),
        (lambda d: d["messages"][1].update(attachments=d["messages"][0]["attachments"]), "prompt"),
    ],
)
async def test_import_refuses_attachments_that_are_not_what_they_say(
    tmp_path: Path, store: Store, backend: Backend, change: Any, said: str
) -> None:
    from foundry_tui.core import transfer

    turns = await new_turns(store, backend)
    await play(turns.send("see", attachments=[attach(tmp_path, "a.png", PNG)]))
    data = export_json(store, turns.session.conversation.id)
    change(data)
    with pytest.raises(transfer.TransferError, match=said):
        transfer.parse(json.dumps(data).encode())


async def test_the_markdown_export_lists_a_prompts_files(
    tmp_path: Path, store: Store, backend: Backend
) -> None:
    from foundry_tui.core import transfer
    from foundry_tui.core.markdown_export import markdown

    turns = await new_turns(store, backend)
    files = [attach(tmp_path, "chart_*1*.png", PNG), attach(tmp_path, "report.pdf", PDF)]
    await play(turns.send("What is in these?", attachments=files))
    exported = transfer.find(store, turns.session.conversation.id)
    assert exported is not None
    text = markdown(exported)
    assert (
        "## User\n\n"
        "- *Attached:* chart\\_\\*1\\*.png (PNG image, 1.0 kB)\n"
        "- *Attached:* report.pdf (PDF document, 1.2 kB)\n\n"
        "What is in these?\n"
    ) in text


def test_the_body_with_files_is_the_json_the_sdk_would_write() -> None:
    """body_bytes splices the data URLs in instead of encoding them (0.24 s of JSON for a
    20 MB image, in a thread); the bytes decode to the same body, whatever the text holds."""
    from foundry_tui.backend.request import body_bytes

    url = f"data:image/png;base64,{b64(PNG * 100)}"
    # A file encoded in three pieces, as hashed_data_url leaves it.
    encoded = EncodedFile(
        "data:image/png;base64,", tuple(b64(PNG * n).encode() for n in (30, 60, 90))
    )
    hostile = 'a \x00 "\\u0000" \\ é \u2028 ' + url[:40]
    body = {
        "model": "gpt-4o",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": hostile},
                    {"type": "input_image", "image_url": url, "detail": "auto"},
                    {"type": "input_file", "filename": "x.pdf", "file_data": '"' + url},
                    {"type": "input_image", "image_url": encoded, "detail": "auto"},
                ],
            },
            {"type": "message", "role": "assistant", "content": hostile},
        ],
        "stream": True,
    }
    written = body_bytes(body)
    # An encoded file's pieces go in as they are, never joined into one buffer first.
    assert all(chunk in written.pieces for chunk in encoded.chunks)
    whole = bytes(written)
    assert len(written) == len(whole)
    expected = json.loads(json.dumps(body, default=lambda file: file.text()))
    assert json.loads(whole) == expected
    assert url.encode() in whole  # spliced as it is


async def test_the_local_model_reads_earlier_files_as_a_line_of_text(
    tmp_path: Path, store: Store
) -> None:
    """A conversation that had files, continued on the local model (text only): they are
    not sent, and the prompt says what was attached, so the model knows it cannot see it."""
    from foundry_tui.core.models import (
        InputMessage,
        MessageRole,
        ResponseFinished,
        ResponseStarted,
        Usage,
    )

    sent: list[list[InputMessage]] = []

    class TextOnly:
        stateless = True

        async def stream_reply(self, *, input: list[InputMessage], **_: object) -> Any:
            sent.append(input)
            yield ResponseStarted(response_id="", model="local")
            yield ResponseFinished(MessageStatus.COMPLETED, None, "local", Usage())

    conversation = store.create_conversation(profile="local", settings=SETTINGS)
    kept = store.keep_attachment(attach(tmp_path, "chart.png", PNG))
    store.add_message(
        conversation_id=conversation.id,
        role=MessageRole.USER,
        text="look",
        status=MessageStatus.COMPLETED,
        attachments=[kept],
    )
    store.add_message(
        conversation_id=conversation.id,
        role=MessageRole.ASSISTANT,
        text="A chart.",
        status=MessageStatus.COMPLETED,
    )
    session = ChatSession(store, TextOnly(), conversation)  # type: ignore[arg-type]
    end = await play(Turns(session).send("and now?"))
    assert end.error is None
    [messages] = sent
    assert [(m.text, m.attachments, m.attachment_data) for m in messages] == [
        ("look\n\n[Attached, not readable here: chart.png (PNG image, 1.0 kB)]", (), ()),
        ("A chart.", (), ()),
        ("and now?", (), ()),
    ]
