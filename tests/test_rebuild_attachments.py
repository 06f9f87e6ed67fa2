"""A conversation rebuilt from the server (`--resume RESPONSE_ID` where only the server has
it) keeps its prompts' images and files: the bytes the server lists back in
`input_items` are kept beside the database and linked to their prompts, through the real
SDK against the local server. What the server names but does not give back (a link, a
file id) is said in the prompt and in the notes, never dropped silently."""

from __future__ import annotations

import base64

import openai

from foundry_tui.backend.client import Backend
from foundry_tui.core.models import MessageRole
from foundry_tui.core.session import import_from_server
from foundry_tui.store import Store
from tests.helpers import TEST_KEY
from tests.responses_server import ResponsesServer
from tests.test_attachments import PDF, PNG, backend, server, store

__all__ = ["backend", "server", "store"]  # the fixtures, shared with test_attachments


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def image(url: str) -> dict[str, str]:
    return {"type": "input_image", "image_url": url, "detail": "auto"}


async def prompt_with_parts(
    client: openai.AsyncOpenAI, text: str, *parts: dict[str, str]
) -> openai.types.responses.Response:
    """A response to one prompt made of ``text`` and ``parts`` (images, files)."""
    return await client.responses.create(
        model="gpt-4o",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": text}, *parts]}  # type: ignore[list-item]
        ],
    )


async def test_images_and_files_come_back_with_their_prompts(
    server: ResponsesServer, store: Store, backend: Backend
) -> None:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0)
    first = await prompt_with_parts(
        client,
        "look at these",
        image(data_url("image/png", PNG)),
        {
            "type": "input_file",
            "filename": "report.pdf",
            "file_data": data_url("application/pdf", PDF),
        },
    )
    second = await client.responses.create(
        model="gpt-4o", input="and now?", previous_response_id=first.id
    )
    await client.close()
    notes: list[str] = []

    conversation = await import_from_server(store, backend, second.id, profile="test", notes=notes)

    prompts = [m for m in store.transcript(conversation.id) if m.role == MessageRole.USER]
    assert [p.text for p in prompts] == ["look at these", "and now?"]
    image_kept, pdf = prompts[0].attachments
    assert (image_kept.name, image_kept.media_type, image_kept.size) == (
        "image-1.png",
        "image/png",
        len(PNG),
    )
    assert (pdf.name, pdf.media_type, pdf.size) == ("report.pdf", "application/pdf", len(PDF))
    assert store.files.read(image_kept.sha256) == PNG
    assert store.files.read(pdf.sha256) == PDF
    assert prompts[1].attachments == ()
    assert notes == []


async def test_what_the_server_does_not_give_back_is_said(
    server: ResponsesServer, store: Store, backend: Backend
) -> None:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0)
    only = await prompt_with_parts(
        client, "what is this?", image("https://example.invalid/cat.png")
    )
    await client.close()
    notes: list[str] = []

    conversation = await import_from_server(store, backend, only.id, profile="test", notes=notes)

    [prompt] = [m for m in store.transcript(conversation.id) if m.role == MessageRole.USER]
    assert prompt.text == ("what is this?\n\n[Attached on the server, not rebuilt here: image-1]")
    assert prompt.attachments == ()
    assert len(notes) == 1 and "did not give back 1 of the attached images" in notes[0]
