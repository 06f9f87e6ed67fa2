"""What a turn sends: the body of `POST /responses`, the same for every transport.

The SDK client (`client.Backend`) passes it to ``responses.create`` as keyword arguments;
the lean transport (`lean.LeanBackend`) posts it as JSON. A setting left to the server is
left out of the body, not sent as null; so is a parameter the deployment refused before
(``omit``: the API's names, dotted for a nested field, e.g. ``reasoning.summary``).
"""

from __future__ import annotations

from collections.abc import Collection

from foundry_tui.core.models import GenerationSettings, InputMessage, MessageRole

__all__ = ["ENCRYPTED_REASONING", "asks_for_reasoning", "create_body", "to_input_items"]

# What `include` asks for so a reply's reasoning items carry their encrypted content, the
# one form of them a request can send back without the server keeping them.
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def to_input_items(messages: list[InputMessage]) -> list[dict[str, object]]:
    """Input items for `responses.create` from the app's messages; an assistant message's
    reasoning items go just before it, where the model produced them."""
    items: list[dict[str, object]] = []
    for message in messages:
        items.extend(message.reasoning_items)
        items.append(
            {"type": "message", "role": MessageRole(message.role).value, "content": message.text}
        )
    return items


def asks_for_reasoning(settings: GenerationSettings, input: list[InputMessage]) -> bool:
    """Whether the turn goes to a model that reasons: asked to (an effort other than
    none, or a summary), or sending reasoning items back. Only such a request carries
    `include`, so a chat with a model that never reasoned is sent as before."""
    if any(message.reasoning_items for message in input):
        return True
    effort = settings.reasoning_effort
    return bool(settings.reasoning_summary) or (effort is not None and effort != "none")


def create_body(
    settings: GenerationSettings,
    input: list[InputMessage],
    previous_response_id: str | None,
    *,
    store: bool,
    prompt_cache_key: str | None = None,
    omit: Collection[str] = (),
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
    reasoning = _present(effort=settings.reasoning_effort, summary=settings.reasoning_summary)
    if reasoning:
        body["reasoning"] = reasoning
    if settings.verbosity is not None:
        body["text"] = {"verbosity": settings.verbosity}
    if prompt_cache_key:
        body["prompt_cache_key"] = prompt_cache_key
    if asks_for_reasoning(settings, input):
        # Every turn of a reasoning model, chained or not (store true): a replay after
        # the server forgot the chain can send back only what was asked for here.
        body["include"] = [ENCRYPTED_REASONING]
    body["store"] = store
    body["stream"] = True
    for name in omit:
        _leave_out(body, name)
    return body


def _present(**fields: str | None) -> dict[str, object]:
    return {name: value for name, value in fields.items() if value is not None}


def _leave_out(body: dict[str, object], name: str) -> None:
    """Removes ``name`` (``a.b`` for a nested field) and an object it leaves empty."""
    outer, _, inner = name.partition(".")
    if not inner:
        body.pop(outer, None)
        return
    nested = body.get(outer)
    if isinstance(nested, dict):
        nested.pop(inner, None)
        if not nested:
            del body[outer]
