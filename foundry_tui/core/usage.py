"""What a turn cost and how fast it came: the figures the status line, the usage table and
`foundry-tui ask --json` show, computed once here from the saved replies.

Speed is output tokens over the time the output took to come (the whole stream less the
time to its first token), so a slow start does not read as slow generation. Without the
server's count of output tokens (a cancelled reply), it is estimated from the text at
four characters a token, and marked as an estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from foundry_tui.core.models import Message, MessageRole, MessageStatus, Usage

__all__ = [
    "CHARS_PER_TOKEN",
    "Speed",
    "TurnFigures",
    "compact_count",
    "speed_of",
    "turn_figures",
]

# OpenAI's rule of thumb for English text; an estimate is shown as one ("~").
CHARS_PER_TOKEN: Final = 4
# Below this the division says more about the clock than about the model.
_SHORTEST_MS: Final = 1


@dataclass(frozen=True)
class Speed:
    tokens_per_second: float
    estimated: bool  # from the text's length, not the server's count


@dataclass(frozen=True)
class TurnFigures:
    """One reply's row of the usage table."""

    number: int  # the turn's place in the transcript, from 1
    model: str | None  # as the server named it (untrusted text), else the deployment asked
    usage: Usage
    first_token_ms: int | None
    duration_ms: int | None
    speed: Speed | None
    status: MessageStatus


def speed_of(reply: Message) -> Speed | None:
    """Tokens per second while the reply's output came, or None when its timing is unknown
    or too short to divide by."""
    first, whole = reply.first_token_ms, reply.duration_ms
    if first is None or whole is None or whole - first < _SHORTEST_MS:
        return None
    seconds = (whole - first) / 1000
    counted = reply.usage.output_tokens
    if counted is not None:
        return Speed(counted / seconds, estimated=False)
    # Reasoning text came in the same window as the answer: both are output.
    characters = len(reply.text) + len(reply.reasoning)
    if not characters:
        return None
    return Speed(characters / CHARS_PER_TOKEN / seconds, estimated=True)


def turn_figures(transcript: Sequence[Message]) -> list[TurnFigures]:
    """A row per reply on the transcript's path, numbered by its prompt, oldest first."""
    rows: list[TurnFigures] = []
    number = 0
    for message in transcript:
        if message.role == MessageRole.USER:
            number += 1
            continue
        rows.append(
            TurnFigures(
                number=max(number, 1),
                model=message.response_model or message.model,
                usage=message.usage,
                first_token_ms=message.first_token_ms,
                duration_ms=message.duration_ms,
                speed=speed_of(message),
                status=message.status,
            )
        )
    return rows


def compact_count(value: int) -> str:
    """A token count in at most four characters and a unit: 940, 1.2k, 12k, 3.4M."""
    if value < 1000:
        return str(value)
    scaled = float(value)
    for unit in "kMGTPE":
        scaled /= 1000
        shown = f"{scaled:.1f}" if scaled < 9.95 else f"{scaled:.0f}"
        if float(shown) < 1000:
            return shown + unit
    return f"{scaled:.0f}E"
