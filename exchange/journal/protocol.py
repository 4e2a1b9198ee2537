"""`Journal`: the small interface the server uses, whatever the backend."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from exchange.journal.format import JournalRecord
from matching import Engine, MarketConfig

__all__ = ["Journal"]


class Journal(Protocol):
    """What the server needs of a journal, whatever its backend.

    Attributes:
        config: the market configuration the journal is for.
    """

    config: MarketConfig

    def recover(self) -> Engine:
        """The engine after the last durable record; call once, before serving.

        Starts from the latest valid snapshot and replays the records after it;
        a torn tail is cut first.
        """
        ...

    def append(self, records: Sequence[JournalRecord]) -> Awaitable[None]:
        """Queue ``records``; the awaitable is done when they are durable.

        May be called again before an earlier one is done: records reach the
        journal in call order, and pending appends are written together.
        """
        ...

    def snapshot(self, engine: Engine) -> Awaitable[None]:
        """Take ``engine``'s state now; store it once the journal holds it.

        The state is taken before this returns; the awaitable (a task, which
        runs whether or not it is awaited) is done when the snapshot is stored.
        """
        ...

    async def close(self) -> None:
        """Make everything appended durable and release the journal."""
        ...
