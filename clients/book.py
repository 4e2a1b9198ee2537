"""A local mirror of one book channel: snapshot, deltas, sequence and checksum.

`BookMirror` is pure: feed it every ``book`` message of one channel, in the
order they arrive, and it keeps the levels. It never applies a stale update:

- Before its first snapshot (and after every reset) it keeps the updates that
  arrive; the snapshot replaces the book, the kept updates at or below its
  ``seq`` are dropped (the snapshot holds them) and the newer ones are applied
  in order.
- Once in sync, an update must carry ``seq`` one more than the last: one at or
  below it is stale and ignored; one further ahead is a gap.
- After each message the top 10 levels of each side must give the message's
  ``checksum`` (DESIGN section 8, `checksum`).
- On a gap, a wrong checksum, or a ``resync`` notice (`resync`), the mirror
  drops its levels and says so (`Applied.RESYNC`): its owner asks the server
  for a fresh snapshot (the SDK's `clients.live.LiveBook` does it by itself).

```python
from clients.book import Applied, BookMirror
from clients.messages import BookMessage

mirror = BookMirror("cpu-SPOT")
snapshot = BookMessage("cpu-SPOT", 41, [(1200, 10)], [], 2317884252, snapshot=True)
assert mirror.apply(snapshot) is Applied.SNAPSHOT
print(mirror.bids(), mirror.asks())  # [(1200, 10)] []
```
"""

from __future__ import annotations

import enum
import logging
import zlib
from collections.abc import Iterable
from itertools import islice

from sortedcontainers import SortedDict

from clients.errors import BookOutOfSync
from clients.messages import BookMessage

__all__ = ["CHECKSUM_LEVELS", "Applied", "BookMirror", "checksum"]

log = logging.getLogger("cux.clients.book")

CHECKSUM_LEVELS = 10
"""Levels per side that the checksum covers."""

Level = tuple[int, int]


def checksum(bids: Iterable[Level], asks: Iterable[Level]) -> int:
    """The CRC32 of the top 10 bids and asks (each best first), written
    ``price:qty``, levels joined by ``,`` and the sides by ``|``."""
    text = "|".join(
        ",".join(f"{p}:{q}" for p, q in islice(side, CHECKSUM_LEVELS))
        for side in (bids, asks)
    )
    return zlib.crc32(text.encode())


class Applied(enum.Enum):
    """What `BookMirror.apply` did with a message."""

    SNAPSHOT = "snapshot"
    """A snapshot replaced the book (kept newer updates were applied after it)."""
    APPLIED = "applied"
    """The next update in sequence was applied."""
    STALE = "stale"
    """An update at or below the mirror's ``seq`` was ignored."""
    BUFFERED = "buffered"
    """The mirror waits for a snapshot; the update was kept for after it."""
    RESYNC = "resync"
    """A gap or a wrong checksum: the book was dropped; get a fresh snapshot."""


class BookMirror:
    """The levels of one book channel (one symbol, one depth).

    Args:
        symbol: the instrument.
        depth: the channel's depth (None: the full book).
        max_pending: the most updates kept while waiting for a snapshot; past
            it the oldest are dropped (a snapshot newer than them is needed
            anyway, else the mirror resyncs again).
    """

    def __init__(
        self, symbol: str, depth: int | None = None, *, max_pending: int = 10_000
    ) -> None:
        self.symbol = symbol
        self.depth = depth
        self.max_pending = max_pending
        self.seq: int | None = None
        """The seq of the last message applied; None while out of sync."""
        self.resyncs = 0
        """How many times the mirror dropped its book (gaps, checksums, notices)."""
        self.last_reset_reason: str | None = None
        # Bids keyed by -price, so both sides iterate best first.
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self._pending: dict[int, BookMessage] = {}

    # -- reading ------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Whether the mirror holds a book (it had a snapshot and no reset since)."""
        return self.seq is not None

    def bids(self, depth: int | None = None) -> list[Level]:
        """The best ``depth`` bids (all if None), best first.

        Raises:
            BookOutOfSync: the mirror waits for a snapshot.
        """
        self._check_synced()
        return [(-k, self._bids[k]) for k in islice(self._bids, depth)]

    def asks(self, depth: int | None = None) -> list[Level]:
        """The best ``depth`` asks (all if None), best first.

        Raises:
            BookOutOfSync: the mirror waits for a snapshot.
        """
        self._check_synced()
        return [(k, self._asks[k]) for k in islice(self._asks, depth)]

    @property
    def best_bid(self) -> int | None:
        self._check_synced()
        return -self._bids.peekitem(0)[0] if self._bids else None

    @property
    def best_ask(self) -> int | None:
        self._check_synced()
        return self._asks.peekitem(0)[0] if self._asks else None

    @property
    def spread(self) -> int | None:
        """Best ask less best bid (µcr per lot); None if a side is empty."""
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else ask - bid

    def checksum(self) -> int:
        """The checksum of the mirror's book now."""
        return checksum(self.bids(CHECKSUM_LEVELS), self.asks(CHECKSUM_LEVELS))

    def _check_synced(self) -> None:
        if self.seq is None:
            raise BookOutOfSync(f"book {self.symbol} waits for a snapshot")

    # -- applying -----------------------------------------------------------------

    def apply(self, message: BookMessage) -> Applied:
        """Apply one ``book`` message of this channel; what was done with it."""
        if message.snapshot:
            return self._snapshot(message)
        if self.seq is None:
            self._keep(message)
            return Applied.BUFFERED
        if message.seq <= self.seq:
            return Applied.STALE
        if message.seq != self.seq + 1:
            self._keep(message)
            self.reset(f"gap: seq {message.seq} after {self.seq}")
            return Applied.RESYNC
        return self._update(message)

    def resync(self, reason: str = "resync notice") -> None:
        """A ``resync`` notice for this channel: drop the book and wait for a
        new snapshot."""
        self.reset(reason)

    def reset(self, reason: str) -> None:
        """Drop the book (updates kept for after the next snapshot stay)."""
        if self.seq is not None:
            log.warning("book %s out of sync (%s); resyncing", self.symbol, reason)
        self.seq = None
        self.resyncs += 1
        self.last_reset_reason = reason
        self._bids.clear()
        self._asks.clear()

    def _snapshot(self, message: BookMessage) -> Applied:
        self._bids.clear()
        self._asks.clear()
        self._set_levels(message)
        self.seq = message.seq
        if self.checksum() != message.checksum:
            self.reset(f"bad checksum in snapshot {message.seq}")
            return Applied.RESYNC
        pending = sorted(s for s in self._pending if s > message.seq)
        kept = self._pending
        self._pending = {}
        for seq in pending:
            if self._update(kept[seq]) is Applied.RESYNC:
                # A gap among the kept updates: keep the rest for next time.
                self._pending = {s: kept[s] for s in pending if s >= seq}
                return Applied.RESYNC
        return Applied.SNAPSHOT

    def _update(self, message: BookMessage) -> Applied:
        assert self.seq is not None
        if message.seq != self.seq + 1:
            self._keep(message)
            self.reset(f"gap: seq {message.seq} after {self.seq}")
            return Applied.RESYNC
        self._set_levels(message)
        self.seq = message.seq
        if self.checksum() != message.checksum:
            self.reset(f"bad checksum at seq {message.seq}")
            return Applied.RESYNC
        return Applied.APPLIED

    def _set_levels(self, message: BookMessage) -> None:
        for price, qty in message.bids:
            if qty:
                self._bids[-price] = qty
            else:
                self._bids.pop(-price, None)
        for price, qty in message.asks:
            if qty:
                self._asks[price] = qty
            else:
                self._asks.pop(price, None)

    def _keep(self, message: BookMessage) -> None:
        self._pending[message.seq] = message
        if len(self._pending) > self.max_pending:
            del self._pending[min(self._pending)]
