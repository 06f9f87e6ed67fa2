"""A reply's thinking in the Markdown export: folded in a <details> block above the
answer, which nothing in the model's text can close early."""

from __future__ import annotations

from foundry_tui.core.markdown_export import markdown
from foundry_tui.core.models import (
    Conversation,
    GenerationSettings,
    Message,
    MessageRole,
    MessageStatus,
)
from foundry_tui.core.transfer import Exported

NOW = "2026-12-06T07:00:00Z"


def _message(role: MessageRole, text: str, reasoning: str = "") -> Message:
    return Message(
        id=f"m-{role}",
        conversation_id="c",
        parent_id=None,
        role=role,
        text=text,
        status=MessageStatus.COMPLETED,
        created_at=NOW,
        model="o4-mini",
        reasoning=reasoning,
    )


def _exported(*messages: Message) -> Exported:
    conversation = Conversation(
        id="c",
        title="Sky",
        profile="p",
        settings=GenerationSettings(model="o4-mini"),
        created_at=NOW,
        updated_at=NOW,
    )
    return Exported(conversation, list(messages))


def test_the_thinking_is_exported_folded_above_the_answer() -> None:
    thought = "**Weighing it**\n\nA look </details> first.\n\n```python\nopen fence"
    document = markdown(
        _exported(
            _message(MessageRole.USER, "Why blue?"),
            _message(MessageRole.ASSISTANT, "Rayleigh scattering.", thought),
        )
    )
    section = document.split("## Assistant (o4-mini)\n\n", 1)[1]
    assert section == (
        "<details>\n<summary>Thinking</summary>\n\n"
        "**Weighing it**\n\nA look &lt;/details> first.\n\n```python\nopen fence\n```\n"
        "\n</details>\n\nRayleigh scattering.\n"
    )


def test_a_reply_without_thinking_is_exported_as_before() -> None:
    document = markdown(
        _exported(_message(MessageRole.USER, "Hi"), _message(MessageRole.ASSISTANT, "Hello."))
    )
    assert "<details>" not in document and "Thinking" not in document
    assert document.endswith("## Assistant (o4-mini)\n\nHello.\n")
