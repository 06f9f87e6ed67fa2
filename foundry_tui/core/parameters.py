"""The request parameters a deployment may refuse, and what leaving one out changes.

Named as the API names them (a nested field dotted: ``reasoning.effort``). The user sets
most of them in the sidebar (a ``GenerationSettings`` field each); ``prompt_cache_key`` and
``include`` the app sends by itself, so a refusal of those is dropped without asking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from foundry_tui.core.models import GenerationSettings

__all__ = [
    "AUTOMATIC",
    "REASONING_EFFORTS",
    "REASONING_SUMMARIES",
    "REFUSABLE",
    "SETTING_FIELDS",
    "VERBOSITIES",
    "family",
    "named",
    "set_in",
    "without",
]

# The values the API schema gives ReasoningEffort, Reasoning.summary and Verbosity.
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
REASONING_SUMMARIES = ("auto", "concise", "detailed")
VERBOSITIES = ("low", "medium", "high")

# The settings fields each parameter comes from.
SETTING_FIELDS: dict[str, tuple[str, ...]] = {
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "reasoning": ("reasoning_effort", "reasoning_summary"),
    "reasoning.effort": ("reasoning_effort",),
    "reasoning.summary": ("reasoning_summary",),
    "text.verbosity": ("verbosity",),
}
AUTOMATIC = frozenset({"prompt_cache_key", "include"})
REFUSABLE = frozenset(SETTING_FIELDS) | AUTOMATIC

_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "reasoning": "reasoning effort and summary",
    "reasoning.effort": "reasoning effort",
    "reasoning.summary": "reasoning summary",
    "text.verbosity": "verbosity",
    "prompt_cache_key": "the prompt cache key",
    "include": "the encrypted reasoning it asks for (include)",
}
# A model that refuses one of these refuses the other too (a reasoning model sampling).
_FAMILIES = (frozenset({"temperature", "top_p"}),)


def family(parameter: str) -> tuple[str, ...]:
    """``parameter`` and those refused with it, in a fixed order."""
    for members in _FAMILIES:
        if parameter in members:
            return tuple(sorted(members))
    return (parameter,)


def set_in(settings: GenerationSettings, parameters: Iterable[str]) -> list[str]:
    """Those of ``parameters`` that ``settings`` would send."""
    return [
        parameter
        for parameter in parameters
        if any(getattr(settings, name) is not None for name in SETTING_FIELDS.get(parameter, ()))
    ]


def without(settings: GenerationSettings, parameters: Iterable[str]) -> GenerationSettings:
    """``settings`` with the fields of ``parameters`` left to the server."""
    cleared: dict[str, Any] = {name: None for p in parameters for name in SETTING_FIELDS.get(p, ())}
    return replace(settings, **cleared) if cleared else settings


def named(parameters: Iterable[str]) -> str:
    """ "temperature and top_p", for a sentence."""
    names = [_NAMES.get(parameter, parameter) for parameter in parameters]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
