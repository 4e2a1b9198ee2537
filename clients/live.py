"""`LiveBook`: a book mirror the client keeps up to date by itself.

```python
async with Client(url) as cux:
    async with await LiveBook.open(cux, "cpu-SPOT") as book:
        await book.wait_synced()
        print(book.mirror.bids(5), book.mirror.asks(5))
```

It subscribes to the book channel, feeds every message to a
`clients.book.BookMirror`, and asks for a fresh snapshot whenever the mirror
resyncs after a gap or a bad checksum. A ``resync`` from the server, a
reconnection or a reader that fell behind also drop the mirror's book; the
client then subscribes again by itself, and the next snapshot restores it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from clients.book import Applied, BookMirror
from clients.messages import BookMessage, Resync
from clients.subscriptions import Subscription

if TYPE_CHECKING:
    from clients.client import Client

__all__ = ["LiveBook"]


class LiveBook:
    """A `BookMirror` of ``book.<symbol>`` at ``depth``, fed by a task.

    Use `open` to create one; `mirror` holds the levels (check
    ``mirror.synced`` before reading, or `wait_synced`).
    """

    def __init__(self, client: Client, symbol: str, depth: int | None) -> None:
        self.client = client
        self.symbol = symbol
        self.depth = depth
        self.mirror = BookMirror(symbol, depth)
        self.messages = 0
        """Book messages received."""
        self._changed = asyncio.Event()
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, client: Client, symbol: str, depth: int | None = None
    ) -> LiveBook:
        """Subscribe to the book of ``symbol`` (``depth`` levels a side; None:
        all) and start mirroring it."""
        book = cls(client, symbol, depth)
        book._sub = await client.subscribe(f"book.{symbol}", depth=depth)
        book._task = asyncio.create_task(book._run(book._sub))
        return book

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            await self._sub.close()

    async def __aenter__(self) -> LiveBook:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def changed(self, timeout: float | None = None) -> None:
        """Wait for the next change of the mirror (a message applied or a reset)."""
        self._changed.clear()
        await asyncio.wait_for(self._changed.wait(), timeout)

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait until the mirror holds a book."""
        async with asyncio.timeout(timeout):
            while not self.mirror.synced:
                await self.changed()

    async def wait_seq(self, seq: int, timeout: float | None = None) -> None:
        """Wait until the mirror is in sync at ``seq`` or later (the channel's
        sequence number, as the REST book's ``seq`` for the full book)."""
        async with asyncio.timeout(timeout):
            while self.mirror.seq is None or self.mirror.seq < seq:
                await self.changed()

    async def _run(self, sub: Subscription) -> None:
        async for message in sub:
            if isinstance(message, Resync):
                self.mirror.resync(f"resync: {message.reason}")
            elif isinstance(message, BookMessage):
                self.messages += 1
                if self.mirror.apply(message) is Applied.RESYNC:
                    await self._refresh()
            self._changed.set()

    async def _refresh(self) -> None:
        try:
            await self.client.refresh(self._sub.keys if self._sub else [])
        except Exception as exc:  # the client reconnects and resubscribes anyway
            self.mirror.last_reset_reason = f"refresh failed: {exc}"
