"""The key bar at the bottom: the keys that apply now, drawn as one line by one widget.

Textual's Footer is a container with a widget per key, rebuilt (unmounted, composed and
styled again) whenever the screen's bindings may have changed: on every focus change and
several times while the app starts. At start-up its eight widgets cost about as much as the
transcript and the prompt together. This bar is a single widget that keeps a list of keys
and repaints its one line when that list changes; clicking a key presses it.

When the line is too narrow for every key, keys go in the order the screen names them
(``drop_first``), then from the right; Quit and the command palette key always stay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import ActiveBinding
from textual.dom import NoScreen
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

# Drawn left of the command-palette key, which sits at the right end.
SEPARATOR = "▏"
# Kept whatever the width: the way out.
KEPT_BINDINGS = frozenset({"app.quit"})


def _in_screen_order(
    bindings: dict[str, ActiveBinding], screen: Screen[Any]
) -> list[tuple[str, ActiveBinding]]:
    """The active bindings in the order the bar shows them: the focused widget's first, then
    its containers', the screen's, the app's. A priority binding of the screen (Ctrl+E,
    which a text box would take for "end of line") takes the dictionary place of the key
    it overrides, where the focused widget has it: it is put back among the screen's own
    keys, so the bar does not change as the focus moves between text boxes."""
    items = list(bindings.items())
    moved = [item for item in items if item[1].binding.priority and item[1].node is screen]
    if not moved:
        return items
    items = [item for item in items if item not in moved]
    last = max((i for i, item in enumerate(items) if item[1].node is screen), default=None)
    at = len(items) if last is None else last + 1
    return items[:at] + moved + items[at:]


class ShownKey(NamedTuple):
    key: str
    display: str
    description: str
    enabled: bool
    tooltip: str
    binding_id: str | None = None

    @property
    def width(self) -> int:
        return len(f" {self.display} ") + (len(self.description) + 1 if self.description else 0)


class _Placed(NamedTuple):
    start: int
    end: int
    shown: ShownKey


class KeyFooter(Widget, can_focus=False):
    """One line: `key description` for every binding shown, the palette key at the right."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {
        "key-footer--key",
        "key-footer--description",
        "key-footer--separator",
        "key-footer--hover",
        "key-footer--disabled",
    }

    def __init__(self, *, drop_first: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Binding ids, least useful first: what goes when the line is too narrow.
        self.drop_first = tuple(drop_first)
        self.keys: tuple[ShownKey, ...] = ()
        self.palette_key: ShownKey | None = None
        self._placed: list[_Placed] = []
        self._hover: ShownKey | None = None
        self._update_pending = False

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._update_keys()

    def on_unmount(self) -> None:
        with contextlib.suppress(NoScreen):
            self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[Any]) -> None:
        # The screen signals this several times in a row (focus moves, start-up): one
        # update after the next refresh covers them all.
        if not self.is_attached or screen is not self.screen or self._update_pending:
            return
        self._update_pending = True
        self.call_after_refresh(self._update_keys)

    def _update_keys(self) -> None:
        self._update_pending = False
        try:
            bindings = self.screen.active_bindings
        except NoScreen:  # its screen closed meanwhile
            return
        palette_binding = self.app.COMMAND_PALETTE_BINDING
        keys: list[ShownKey] = []
        palette: ShownKey | None = None
        seen_actions: set[str] = set()
        for key, (_node, binding, enabled, tooltip) in _in_screen_order(bindings, self.screen):
            if key == palette_binding and self.app.ENABLE_COMMAND_PALETTE:
                palette = ShownKey(
                    key,
                    self.app.get_key_display(binding),
                    binding.description,
                    enabled,
                    binding.tooltip or binding.description,
                )
                continue
            # Several keys for one action (Textual's Footer shows the first): one entry.
            if not binding.show or binding.action in seen_actions:
                continue
            seen_actions.add(binding.action)
            keys.append(
                ShownKey(
                    key,
                    self.app.get_key_display(binding),
                    binding.description,
                    enabled,
                    tooltip or binding.tooltip,
                    binding.id,
                )
            )
        if tuple(keys) != self.keys or palette != self.palette_key:
            self.keys = tuple(keys)
            self.palette_key = palette
            self.refresh()

    # -- drawing ------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The bar as plain text (what a screen reader or a test sees)."""
        return "".join(segment.text for segment in self._line(self.size.width or 200))

    def render_line(self, y: int) -> Strip:
        if y != 0:
            return Strip.blank(self.size.width, self.rich_style)
        return Strip(self._line(self.size.width), self.size.width)

    def _line(self, width: int) -> list[Segment]:
        base = self.rich_style
        key_style = base + self.get_component_rich_style("key-footer--key")
        description_style = base + self.get_component_rich_style("key-footer--description")
        hover = self.get_component_rich_style("key-footer--hover")
        disabled = self.get_component_rich_style("key-footer--disabled")

        def styled(shown: ShownKey, style: Style) -> Style:
            if not shown.enabled:
                style += disabled
            if shown == self._hover:
                style += hover
            return style

        segments: list[Segment] = []
        placed: list[_Placed] = []
        x = 0
        palette = self.palette_key
        palette_room = len(f"{SEPARATOR}{palette.display} {palette.description} ") if palette else 0
        for shown in self._fitting(width - palette_room):
            key_text = f" {shown.display} "
            description_text = f"{shown.description} " if shown.description else ""
            end = x + len(key_text) + len(description_text)
            if end > width:
                break
            segments.append(Segment(key_text, styled(shown, key_style)))
            if description_text:
                segments.append(Segment(description_text, styled(shown, description_style)))
            placed.append(_Placed(x, end, shown))
            x = end
        tail: list[Segment] = []
        if palette is not None:
            palette_text = f"{palette.display} {palette.description} "
            tail_start = width - 1 - len(palette_text)
            if tail_start >= x:
                separator = base + self.get_component_rich_style("key-footer--separator")
                tail = [
                    Segment(SEPARATOR, separator),
                    Segment(palette.display, styled(palette, key_style)),
                    Segment(f" {palette.description} ", styled(palette, description_style)),
                ]
                placed.append(_Placed(tail_start + 1, width, palette))
                segments.append(Segment(" " * (tail_start - x), base))
                x = width
        if x < width:
            segments.append(Segment(" " * (width - x), base))
        segments.extend(tail)
        self._placed = placed
        return segments

    def _fitting(self, room: int) -> list[ShownKey]:
        """The keys that fit in ``room`` columns, in their order."""
        keys = list(self.keys)
        used = sum(shown.width for shown in keys)
        order = {binding_id: rank for rank, binding_id in enumerate(self.drop_first)}
        # Named keys first (in the order named), then the others from the right end.
        candidates = sorted(
            (shown for shown in keys if shown.binding_id not in KEPT_BINDINGS),
            key=lambda shown: (
                order.get(shown.binding_id or "", len(order)),
                -keys.index(shown),
            ),
        )
        for shown in candidates:
            if used <= room:
                break
            keys.remove(shown)
            used -= shown.width
        return keys

    # -- mouse --------------------------------------------------------------------

    def _key_at(self, x: int) -> ShownKey | None:
        for placed in self._placed:
            if placed.start <= x < placed.end:
                return placed.shown
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        shown = self._key_at(event.x)
        if shown != self._hover:
            self._hover = shown
            self.tooltip = shown.tooltip if shown is not None and shown.tooltip else None
            self.refresh()

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.tooltip = None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        shown = self._key_at(event.x)
        if shown is None:
            return
        if shown.enabled:
            self.app.simulate_key(shown.key)
        else:
            self.app.bell()
