"""Recent reads of reference data that every request reads and an administrator rarely changes.

Institutions and programmes are read on every expression of interest, registration and message,
and change a few times a year. A process keeps what it read for a few seconds and forgets it the
moment it changes it itself; another replica's change reaches it when that time runs out.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")

# How long a process may act on reference data it read: another replica's change (a suspension, a
# programme's new name) reaches it within this time.
REFERENCE_SECONDS = 2.0


class RecentReads(Generic[V]):
    """Values loaded by key, reused for `seconds`; what was not found is not kept (it may appear)."""

    def __init__(self, seconds: float = REFERENCE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, V]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The value read within the last `seconds`, else `load()`'s."""
        kept = self._entries.get(key)
        if kept is not None and kept[0] > self._clock():
            return kept[1]
        value = await load()
        if value is not None:
            self._entries[key] = (self._clock() + self._seconds, value)
        return value

    def forget(self, key: str) -> None:
        """This process changed it: read it afresh next time."""
        self._entries.pop(key, None)
