"""What a turn sends: the body of `POST /responses`, the same for every transport.

The SDK client (`client.Backend`) passes it to ``responses.create`` as keyword arguments;
the lean transport (`lean.LeanBackend`) posts it as JSON. A setting left to the server is
left out of the body, not sent as null.
"""

from __future__ import annotations

from foundry_tui.core.models import GenerationSettings, InputMessage, MessageRole

__all__ = ["create_body", "to_input_items"]


def to_input_items(messages: list[InputMessage]) -> list[dict[str, object]]:
    """Input items for `responses.create` from the app's messages."""
    return [
        {
            "type": "message",
            "role": MessageRole(message.role).value,
            "content": _content_parts(message) if message.attachments else message.text,
        }
        for message in messages
    ]


def _content_parts(message: InputMessage) -> list[dict[str, object]]:
    """A prompt with files: its text, then each file, as the schema's InputTextContent,
    InputImageContent (image_url: a data URL; detail: auto) and InputFileContent
    (filename and file_data: a data URL)."""
    parts: list[dict[str, object]] = []
    if message.text:
        parts.append({"type": "input_text", "text": message.text})
    data = message.attachment_data
    for index, attachment in enumerate(message.attachments):
        # Without its bytes (a request shown, not sent: "View code"), a placeholder that
        # says so and that no server takes for a file.
        url = (
            data[index]
            if index < len(data)
            else f"data:{attachment.media_type};base64,<{attachment.name}: {attachment.size} bytes>"
        )
        if attachment.media_type.startswith("image/"):
            parts.append({"type": "input_image", "image_url": url, "detail": "auto"})
        else:
            parts.append({"type": "input_file", "filename": attachment.name, "file_data": url})
    return parts


def create_body(
    settings: GenerationSettings,
    input: list[InputMessage],
    previous_response_id: str | None,
    *,
    store: bool,
) -> dict[str, object]:
    """The streamed create request for one turn."""
    body: dict[str, object] = {"model": settings.model, "input": to_input_items(input)}
    if settings.instructions:
        body["instructions"] = settings.instructions
    if previous_response_id:
        body["previous_response_id"] = previous_response_id
    if settings.temperature is not None:
        body["temperature"] = settings.temperature
    if settings.top_p is not None:
        body["top_p"] = settings.top_p
    if settings.max_output_tokens is not None:
        body["max_output_tokens"] = settings.max_output_tokens
    body["store"] = store
    body["stream"] = True
    return body
