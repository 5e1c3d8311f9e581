"""Polling loops that can be woken early, so work written in this process starts at once."""

import asyncio
import contextlib


class Wakeup:
    """A loop sleeps on this between polls; `set()` ends the sleep early."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Wake the loop now."""
        self._event.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, or until woken."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()
