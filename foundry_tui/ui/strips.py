"""Lines drawn on screen that are freed as soon as they are dropped.

Textual's ``Strip`` keeps a cache of what each operation made of it. Two operations, when
nothing needs to change, return the strip itself and cache it too: ``divide`` at the
strip's own length (the compositor does this to every full-width line it draws) and
``crop_extend`` to the strip's own span. The strip then refers to itself: reference
counting never frees it, and it waits, with its segments and seven caches, for a full
collection of the garbage collector. Streaming three Compare columns left ~110,000 such
objects: the full collection that freed them held the UI for 110-150 ms, at random,
under the user's typing.

``keep_lines_acyclic`` answers those two cases before the cache is consulted, with the
result the original gives (the strip itself), so nothing is cached and no cycle forms.
Everything else goes to Textual's own code. Applied once, when the app starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.style import Style
from textual.strip import Strip

_original_divide = Strip.divide
_original_crop_extend = Strip.crop_extend


def _divide(self: Strip, cuts: Iterable[int]) -> Sequence[Strip]:
    cell_length = self.cell_length
    wanted = [cut for cut in cuts if cut <= cell_length]
    if wanted == [cell_length]:
        return [self]
    return _original_divide(self, wanted)


def _crop_extend(self: Strip, start: int, end: int, style: Style | None) -> Strip:
    if start <= 0 and end == self.cell_length:
        return self
    return _original_crop_extend(self, start, end, style)


def keep_lines_acyclic() -> None:
    """Makes ``Strip.divide`` and ``Strip.crop_extend`` leave out the cases that would
    cache the strip in itself (idempotent)."""
    Strip.divide = _divide  # type: ignore[method-assign]
    Strip.crop_extend = _crop_extend  # type: ignore[method-assign]
