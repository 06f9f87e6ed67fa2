"""The shape of a conversation's branches: which messages are alternatives to each other,
and where a branch ends.

Every message has one parent (a root has none); an edited prompt is a sibling of the
prompt it rewrites, a regenerated reply a sibling of the reply. The conversation shows one
path, from a root to its head; these are the pure calculations over (id, parent_id) pairs
read in the order written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from foundry_tui.core.models import Message, Siblings


class Tree:
    def __init__(self, pairs: Iterable[tuple[str, str | None]]) -> None:
        self.parent: dict[str, str | None] = {}
        self.children: dict[str | None, list[str]] = {}
        self.order: dict[str, int] = {}
        for position, (message_id, parent_id) in enumerate(pairs):
            self.parent[message_id] = parent_id
            self.children.setdefault(parent_id, []).append(message_id)
            self.order[message_id] = position

    def __contains__(self, message_id: str) -> bool:
        return message_id in self.parent

    def siblings_on(self, path: Sequence[Message]) -> dict[str, Siblings]:
        """For each message of ``path`` that has alternatives, its siblings."""
        found: dict[str, Siblings] = {}
        for message in path:
            ids = self.children.get(self.parent.get(message.id), [])
            if len(ids) > 1 and message.id in ids:
                found[message.id] = Siblings(tuple(ids), ids.index(message.id))
        return found

    def newest_leaf_under(self, message_id: str) -> str:
        """The branch under ``message_id`` written to last: its newest descendant (which
        has no children of its own), or the message itself."""
        newest, position = message_id, self.order.get(message_id, -1)
        stack = list(self.children.get(message_id, ()))
        while stack:
            current = stack.pop()
            if self.order[current] > position:
                newest, position = current, self.order[current]
            stack.extend(self.children.get(current, ()))
        return newest

    def path_to(self, message_id: str) -> list[str]:
        """The ids from the root to ``message_id``, oldest first."""
        ids: list[str] = []
        current: str | None = message_id
        while current is not None and current in self.parent:
            ids.append(current)
            current = self.parent[current]
        ids.reverse()
        return ids

    def leaves(self) -> list[str]:
        """Every branch's end, in the order written."""
        return sorted(
            (message_id for message_id in self.parent if not self.children.get(message_id)),
            key=self.order.__getitem__,
        )


def shared_prefix(first: Sequence[str], second: Sequence[str]) -> int:
    """How many ids the two paths share from their roots (where the branches part)."""
    common = 0
    while common < min(len(first), len(second)) and first[common] == second[common]:
        common += 1
    return common
