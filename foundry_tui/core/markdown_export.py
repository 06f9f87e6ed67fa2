"""A conversation as a Markdown document to read: a front-matter block with the model, the
settings and the response ids, then each turn as a section, the replies' Markdown as the
model wrote it.

Everything in it came from the user, a model or a server, and it may be printed to a
terminal or pasted into one: every text goes through `sanitize` (no escape sequence, no
control character), and the front matter's values are JSON strings, which YAML reads as
they are (no value can end the block or start a key of its own).
"""

from __future__ import annotations

import json
import re
from typing import Final

from foundry_tui import __version__
from foundry_tui.core.attachments import describe
from foundry_tui.core.branches import Tree
from foundry_tui.core.models import Message, MessageRole, MessageStatus
from foundry_tui.core.text import one_line, sanitize
from foundry_tui.core.transfer import Exported

__all__ = ["markdown"]

# What a reply that did not complete says under its heading.
_STATUS_NOTES: Final = {
    MessageStatus.PENDING: "Still streaming when this was exported: the text so far.",
    MessageStatus.INCOMPLETE: "Incomplete: the reply stopped early.",
    MessageStatus.FAILED: "Failed.",
    MessageStatus.CANCELLED: "Cancelled: stopped before the end; the text so far is kept.",
    MessageStatus.INTERRUPTED: "Interrupted: the app stopped while this reply streamed.",
}
# A code fence's opening or closing line (CommonMark: up to 3 spaces, 3+ ` or ~).
_FENCE: Final = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
# What would end the thinking's <details> block early, in the model's text.
_DETAILS_END: Final = re.compile(r"</(details|summary)", re.IGNORECASE)


def _value(value: str | float | int | None) -> str:
    """A front-matter value: a JSON scalar (YAML reads it the same)."""
    if isinstance(value, str):
        value = sanitize(value)
    return json.dumps(value, ensure_ascii=False)


def _front_matter(exported: Exported, path: list[Message]) -> list[str]:
    conversation = exported.conversation
    settings = conversation.settings
    response_ids = [m.response_id for m in path if m.response_id is not None]
    lines = [
        "---",
        f"title: {_value(conversation.title)}",
        f"conversation_id: {_value(conversation.id)}",
        f"model: {_value(settings.model)}",
        f"instructions: {_value(settings.instructions)}",
        f"temperature: {_value(settings.temperature)}",
        f"top_p: {_value(settings.top_p)}",
        f"max_output_tokens: {_value(settings.max_output_tokens)}",
        f"created_at: {_value(conversation.created_at)}",
        f"updated_at: {_value(conversation.updated_at)}",
    ]
    if response_ids:
        lines.append("response_ids:")
        lines += [f"  - {_value(response_id)}" for response_id in response_ids]
    else:
        lines.append("response_ids: []")
    lines += [f"exported_by: {_value(f'foundry-tui {__version__}')}", "---"]
    return lines


def close_fences(text: str) -> str:
    """``text`` with a code block it leaves open closed: a reply cut off inside one would
    otherwise swallow the rest of the document."""
    opened: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if match is None:
            continue
        fence, rest = match.groups()
        if opened is None:
            if not (fence[0] == "`" and "`" in rest):
                opened = fence
        elif fence[0] == opened[0] and len(fence) >= len(opened) and not rest.strip():
            opened = None
    return text if opened is None else f"{text.rstrip(chr(10))}\n{opened}"


def _heading(message: Message) -> str:
    if message.role == MessageRole.USER:
        return "## User"
    model = message.response_model or message.model
    return f"## Assistant ({one_line(model, 80)})" if model else "## Assistant"


def _note(message: Message) -> str | None:
    note = _STATUS_NOTES.get(message.status)
    if note is None or message.role == MessageRole.USER:
        return None
    if message.error:
        note = f"{note} {one_line(message.error, 500)}"
    return f"> *{note}*"


def _thinking(message: Message) -> list[str]:
    """A reply's reasoning, folded as the app shows it: a <details> block, which GitHub
    and most Markdown viewers fold, so the answer is still what is read first, while the
    summary's own Markdown (its bold titles) renders inside it; a plain viewer shows it
    as a labelled section. Nothing in the model's text can close the block early."""
    text = sanitize(message.reasoning).strip("\n")
    if message.role != MessageRole.ASSISTANT or not text.strip():
        return []
    text = _DETAILS_END.sub(lambda found: "&lt;/" + found.group(1), close_fences(text))
    return ["<details>", "<summary>Thinking</summary>", "", text, "", "</details>", ""]


_MARKDOWN_PUNCTUATION: Final = re.compile(r"([\\`*_\[\]<>#|!~])")


def _attachment_lines(message: Message) -> list[str]:
    """A prompt's files, one list item each: name (untrusted: one line, its Markdown
    punctuation escaped), type and size."""
    lines = []
    for attachment in message.attachments:
        name = _MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line(attachment.name, 200))
        lines.append(f"- *Attached:* {name} ({describe(attachment.media_type, attachment.size)})")
    return lines


def markdown(exported: Exported, *, all_branches: bool = False) -> str:
    """The conversation as a Markdown document (ends in a newline): the branch shown in
    the app; with ``all_branches``, each other branch after it, from where it branches
    off (what it shares with a branch above is not repeated)."""
    title = one_line(exported.conversation.title, None) or "Untitled conversation"
    path = exported.path()
    lines = [*_front_matter(exported, path), "", f"# {title}"]
    for message in path:
        lines += _message_lines(message)
    if all_branches:
        lines += _other_branches(exported, path)
    return "\n".join(lines).rstrip("\n") + "\n"


def _message_lines(message: Message) -> list[str]:
    lines = ["", _heading(message), ""]
    note = _note(message)
    if note is not None:
        lines += [note, ""]
    lines += _thinking(message)
    if message.attachments:
        lines += [*_attachment_lines(message), ""]
    text = sanitize(message.text).strip("\n")
    if text:
        lines.append(close_fences(text))
    elif note is None and not message.attachments:
        lines.append("*(empty)*")
    return lines


def _other_branches(exported: Exported, path: list[Message]) -> list[str]:
    by_id = {message.id: message for message in exported.messages}
    tree = Tree((message.id, message.parent_id) for message in exported.messages)
    shown = {message.id for message in path}
    others = [leaf for leaf in tree.leaves() if leaf not in shown]
    lines: list[str] = []
    for number, leaf in enumerate(others, start=2):
        ids = tree.path_to(leaf)
        fork = next((i for i, message_id in enumerate(ids) if message_id not in shown), 0)
        after = by_id[ids[fork - 1]] if fork > 0 else None
        where = "at the start"
        if after is not None:
            quoted = _MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line(sanitize(after.text), 80))
            kind = "prompt" if after.role == MessageRole.USER else "reply"
            where = f"after this {kind}: *{quoted}*"
        lines += ["", "---", "", f"**Branch {number} of {len(others) + 1}**, branching off {where}"]
        for message_id in ids[fork:]:
            lines += _message_lines(by_id[message_id])
            shown.add(message_id)
    return lines
