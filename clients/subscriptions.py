"""Subscriptions: channels as async iterators.

A `Subscription` is what `Client.subscribe` returns: iterate it with ``async
for`` to get the typed messages of its channels, in arrival order. Several
subscriptions may share a channel; each gets every message. The iteration ends
when the subscription or the client is closed, and raises
`clients.errors.ClientClosed` if the client gave up reconnecting.

Each subscription buffers at most ``max_queue`` messages for a reader that
falls behind. Past that it drops what it buffered and yields a `Resync` naming
its channels (reason ``slow reader``); a book channel is subscribed again, so a
fresh snapshot follows. After a reconnection every subscription yields a
`Resync` (reason ``reconnected``) before the messages of the new connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final

from clients.errors import ClientClosed
from clients.messages import Message, Resync

__all__ = ["ChannelKey", "Subscription", "channel_key", "channel_of"]

ChannelKey = tuple[str, int | None]
"""A channel as the server keys it: (name, depth); depth only for book channels."""

_TOPIC_PREFIX: Final = {
    "book": "book.",
    "trade": "trades.",
    "candle": "candles.",
    "auction": "auction.",
}
_TOPIC_CHANNEL: Final = {
    "phase": "phases",
    "phase_scheduled": "phases",
    "listed": "instruments",
    "settlement": "instruments",
    "delivery": "instruments",
    "order": "orders",
    "fill": "fills",
    "balance": "balance",
    "lease": "leases",
    "job": "jobs",
}


def channel_key(name: str, depth: int | None) -> ChannelKey:
    """The key of channel ``name`` subscribed with ``depth``."""
    return (name, depth if name.startswith("book.") else None)


def channel_of(message: Message) -> ChannelKey | None:
    """The channel a pushed message belongs to (None: none, e.g. a heartbeat)."""
    kind = message.__struct_config__.tag
    prefix = _TOPIC_PREFIX.get(str(kind))
    if prefix is not None:
        symbol: str = message.symbol  # type: ignore[union-attr]
        depth = message.depth if kind == "book" else None  # type: ignore[union-attr]
        return (prefix + symbol, depth)
    channel = _TOPIC_CHANNEL.get(str(kind))
    return None if channel is None else (channel, None)


_END: Final = object()


class Subscription:
    """The messages of some channels, as an async iterator.

    Args:
        keys: the channels.
        max_queue: the most messages buffered for a slow reader.
        on_close: called once when the subscription closes (the client then
            unsubscribes channels nobody else reads).
        on_overflow: called with the subscription when its buffer overflowed
            (the client then asks for fresh book snapshots).
    """

    def __init__(
        self,
        keys: list[ChannelKey],
        *,
        max_queue: int,
        on_close: Callable[[Subscription], object],
        on_overflow: Callable[[Subscription], None],
    ) -> None:
        self.keys = keys
        self.max_queue = max_queue
        self.closed = False
        self._on_close = on_close
        self._on_overflow = on_overflow
        self._queue: deque[object] = deque()
        self._ready = asyncio.Event()
        self._error: BaseException | None = None

    @property
    def channels(self) -> list[str]:
        return [name for name, _ in self.keys]

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        while not self._queue:
            if self.closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        item = self._queue.popleft()
        if item is _END:
            self._queue.appendleft(_END)
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    async def next(self, timeout: float | None = None) -> Message:
        """The next message, waiting at most ``timeout`` seconds.

        Raises:
            TimeoutError: none came in time.
            StopAsyncIteration: the subscription is closed.
        """
        return await asyncio.wait_for(self.__anext__(), timeout)

    def pending(self) -> int:
        """Messages received and not read yet."""
        return sum(item is not _END for item in self._queue)

    def drain(self) -> list[Message]:
        """Every message received and not read yet, without waiting."""
        out: list[Message] = []
        while self._queue and self._queue[0] is not _END:
            out.append(self._queue.popleft())  # type: ignore[arg-type]
        return out

    async def close(self) -> None:
        """Stop the subscription; the client unsubscribes the channels nobody
        else reads. Messages already buffered can still be read."""
        if self.closed:
            return
        self._finish(None)
        result = self._on_close(self)
        if asyncio.iscoroutine(result):
            await result

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- fed by the client --------------------------------------------------------

    def deliver(self, message: Message) -> None:
        if self.closed:
            return
        if len(self._queue) >= self.max_queue:
            self._queue.clear()
            self._queue.append(Resync(self.channels, "slow reader"))
            self._on_overflow(self)
        self._queue.append(message)
        self._ready.set()

    def _finish(self, error: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._error = error
        self._queue.append(_END)
        self._ready.set()

    def end(self, error: ClientClosed | None = None) -> None:
        """The client closed (or the channel is gone): end the iteration,
        raising ``error`` once the buffered messages are read, if given."""
        self._finish(error)
