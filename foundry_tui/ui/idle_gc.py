"""Full garbage collections at moments nobody waits on.

Python runs a full collection once enough objects have outlived the young collections:
while a reply streams or the user types, that is. A full collection walks every live
object and every reference cycle left since the last one, with the UI frozen meanwhile.
Textual leaves such cycles behind each screen it opens and closes (a style node per
component class, among others): after a Compare of three long replies, ~150,000 objects,
and the collection that found them held the UI 50-150 ms, under the user's typing.

So the automatic full collection is made rare (``app.GEN2_THRESHOLD``, a safety net for
an app that is never idle), and ``IdleCollector`` runs one when it is due and the app is
idle: no key, click or paste for QUIET_SECONDS and no reply streaming.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

# Without a key, a click or a paste for this long, the user is reading, not typing.
QUIET_SECONDS = 2.0
# How often the app looks whether a collection is due and it is idle.
CHECK_EVERY = 0.5
# Young (generation 1) collections since the last full one, before an idle one is due:
# Python's own default for running a full collection.
DUE_AFTER = 10


class IdleCollector:
    """Decides when to run a full collection; ``tick`` every CHECK_EVERY seconds."""

    def __init__(
        self, busy: Callable[[], bool], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._busy = busy
        self._clock = clock
        self._last_input = clock()
        self.collections = 0  # run so far (for tests and the debug log)

    def input_seen(self) -> None:
        self._last_input = self._clock()

    def due(self) -> bool:
        return gc.get_count()[2] >= DUE_AFTER

    def tick(self) -> bool:
        """Runs a full collection if one is due and the app idle; True if it ran. Not
        while the collector is off (the CLI turns it off for start-up)."""
        if not gc.isenabled() or not self.due():
            return False
        if self._clock() - self._last_input < QUIET_SECONDS or self._busy():
            return False
        gc.collect()
        self.collections += 1
        return True
