"""Deterministic, realistic-looking text for the benchmarks: Markdown replies (headings,
paragraphs, lists, code blocks), prompts, and a word list that never starts with "z" (the
search benchmark plants its own "z" words)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

_SYLLABLES = [
    "ba",
    "be",
    "bi",
    "bo",
    "bu",
    "ca",
    "ce",
    "ci",
    "co",
    "cu",
    "da",
    "de",
    "di",
    "do",
    "du",
    "fa",
    "fe",
    "fi",
    "fo",
    "fu",
    "ga",
    "ge",
    "gi",
    "go",
    "gu",
    "ha",
    "he",
    "hi",
    "ho",
    "hu",
    "ja",
    "je",
    "jo",
    "ka",
    "ke",
    "ki",
    "ko",
    "ku",
    "la",
    "le",
    "li",
    "lo",
    "lu",
    "ma",
    "me",
    "mi",
    "mo",
    "mu",
    "na",
    "ne",
    "ni",
    "no",
    "nu",
    "pa",
    "pe",
    "pi",
    "po",
    "pu",
    "ra",
    "re",
    "ri",
    "ro",
    "ru",
    "sa",
    "se",
    "si",
    "so",
    "su",
    "ta",
    "te",
    "ti",
    "to",
    "tu",
    "va",
    "ve",
    "vi",
    "vo",
    "wa",
    "we",
    "wi",
    "wo",
    "ya",
    "yo",
]
_COMMON = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "it",
    "that",
    "for",
    "you",
    "with",
    "this",
    "on",
    "as",
    "be",
    "are",
    "can",
    "use",
    "your",
    "an",
    "by",
    "or",
    "if",
    "from",
    "not",
    "we",
    "have",
    "will",
    "function",
    "data",
    "value",
    "file",
    "server",
    "client",
    "request",
    "response",
    "error",
    "list",
    "table",
    "query",
    "index",
    "build",
    "test",
    "deploy",
    "config",
    "token",
    "stream",
    "model",
    "api",
    "cache",
    "python",
    "rust",
    "go",
    "type",
    "return",
    "object",
    "string",
    "number",
    "array",
    "thread",
    "async",
    "await",
    "process",
]


def vocabulary(size: int = 3000, seed: int = 7) -> list[str]:
    """Common English-ish words first, then pseudo-words; none starts with "z"."""
    rng = random.Random(seed)
    words = list(_COMMON)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


_VOCAB = vocabulary()
# Zipf-like weights: a few words are very common, most are rare.
_CUM_WEIGHTS = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(_VOCAB))))


class _Words:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def take(self, n: int) -> list[str]:
        return self.rng.choices(_VOCAB, cum_weights=_CUM_WEIGHTS, k=n)


@dataclass
class Reply:
    text: str
    #: index -> token for every token (``split_tokens(text)`` gives the same list)
    tokens: list[str]
    #: indices of tokens that are plain words of a paragraph (safe to replace by a marker)
    plain: list[int]


def _paragraph_tokens(words: list[str], line_words: int = 14) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for i, word in enumerate(words):
        sep = "\n" if (i + 1) % line_words == 0 else " "
        out.append((word + sep, True))
    return out


def markdown_tokens(n_tokens: int, seed: int = 0) -> Reply:
    """A Markdown reply of exactly ``n_tokens`` whitespace-separated tokens."""
    w = _Words(seed)
    rng = w.rng
    toks: list[tuple[str, bool]] = []  # (token with trailing whitespace, is plain word)

    def end_block() -> None:
        if toks:
            word, plain = toks[-1]
            toks[-1] = (word.rstrip() + "\n\n", plain)

    block = 0
    while len(toks) < n_tokens:
        kind = ("para", "heading", "list", "para", "code", "para")[block % 6]
        block += 1
        if kind == "heading":
            toks.append(("## ", False))
            toks += [(word + " ", False) for word in w.take(rng.randint(2, 5))]
        elif kind == "para":
            words = w.take(rng.randint(25, 70))
            words[0] = words[0].capitalize()
            toks += _paragraph_tokens(words)
        elif kind == "list":
            for _ in range(rng.randint(3, 6)):
                toks.append(("- ", False))
                item = w.take(rng.randint(4, 12))
                toks += [(word + " ", True) for word in item[:-1]]
                toks.append((item[-1] + "\n", True))
        else:
            toks.append(("```python\n", False))
            for _ in range(rng.randint(3, 8)):
                a, b, c = w.take(3)
                toks += [
                    ("def ", False),
                    (f"{a}_{b}({c}):\n    ", False),
                    ("return ", False),
                    (f"{c}\n", False),
                ]
            toks.append(("```\n", False))
        end_block()
    # Cut to size, then make sure the reply ends in a closed block with a plain paragraph.
    toks = toks[: max(0, n_tokens - 12)]
    opened = sum(1 for t, _ in toks if t.startswith("```"))
    if opened % 2:
        toks.append(("```\n\n", False))
    end_block()
    tail = w.take(n_tokens - len(toks))
    toks += [(word + " ", True) for word in tail]
    last, plain = toks[-1]
    toks[-1] = (last.rstrip(), plain)
    tokens = [t for t, _ in toks]
    assert len(tokens) == n_tokens, (len(tokens), n_tokens)
    return Reply("".join(tokens), tokens, [i for i, (_, p) in enumerate(toks) if p])


def with_markers(reply: Reply, markers: dict[int, str]) -> tuple[str, dict[str, int]]:
    """Replaces the plain word at (or next after) each wanted index by its marker word.

    Returns the new text and where each marker actually went (its delta index).
    """
    tokens = list(reply.tokens)
    plain = reply.plain
    placed: dict[str, int] = {}
    used: set[int] = set()
    for wanted, marker in sorted(markers.items()):
        index = next((i for i in plain if i >= wanted and i not in used), None)
        if index is None:
            index = next(i for i in reversed(plain) if i not in used)
        used.add(index)
        old = tokens[index]
        tokens[index] = marker + old[len(old.rstrip()) :]
        placed[marker] = index
    return "".join(tokens), placed


def prose(words: int, seed: int) -> str:
    """Plain prompt-like text of ``words`` words."""
    w = _Words(seed)
    out = w.take(words)
    out[0] = out[0].capitalize()
    return " ".join(out)


def markdown_text(words: int, seed: int) -> str:
    return markdown_tokens(words, seed).text
