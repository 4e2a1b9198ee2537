"""The published order book of one instrument: its mirror, channels and checksum.

A `BookFeed` keeps its own copy of an instrument's price levels, the one that
subscribers have been sent, and turns the engine's changes into book messages.
The market data layer tells it which levels a command may have changed
(`BookFeed.touch`, or `BookFeed.rescan` for a whole side when it cannot say);
`BookFeed.flush` then reads their absolute quantities from the engine's book,
updates the mirror and returns one message per channel that saw a change.

Channels: the full book (``depth`` None), which always exists, and the depth
limited ones (`BOOK_DEPTHS`), created by their first snapshot. Each has its own
sequence number, 0 at creation and one more per message. A depth-limited
channel shows the best ``depth`` levels of each side: it sends a delete when a
level leaves that window because better ones arrived, and the full level when
one comes back into it.

Cost. Each side keeps its prices in a sorted list (bids negated, so the best
level of either side comes first). A flush costs O(changed levels × log levels)
for the full channel and for every depth channel: a depth window's edge moves
by at most one rank per level added or deleted, so only that many unchanged
levels can cross it, and they are found between the old and the new edge.
The checksum's text is kept per level, and the top levels' text and the
checksum are rebuilt only when a change reaches them and a message (or a
reader) needs the checksum: with nobody subscribed to the book, not at all.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Final, NamedTuple

from sortedcontainers import SortedList

from exchange.protocol import BookMessage, encode
from matching.book import Book
from matching.order import BUY, SELL

__all__ = ["BOOK_DEPTHS", "CHECKSUM_LEVELS", "BookFeed", "Publication", "checksum"]

BOOK_DEPTHS: Final = (10, 25, 50, 100, 500)
"""The depths a book channel may be limited to, besides None (every level)."""
CHECKSUM_LEVELS: Final = 10
"""Levels of each side that the checksum covers."""

_BEYOND: Final = 1 << 63
"""A sort key past every level's (prices are below 2^40)."""

Level = tuple[int, int]
"""A price level as (price, qty): µcr per lot and open lots."""


class Publication(NamedTuple):
    """One message for one channel, encoded once for every subscriber.

    Attributes:
        channel: ``book.<symbol>``, ``trades.<symbol>``, ``auction.<symbol>``,
            ``candles.<symbol>``, ``phases``, ``instruments`` (public), or
            ``orders``, ``fills``, ``balance``, ``leases`` (private).
        depth: the depth a book message is for (None: the full book); None on
            every other channel.
        account: the account a private message is for; None if public.
        data: the JSON message (`exchange.protocol.encode`).
    """

    channel: str
    depth: int | None
    account: str | None
    data: bytes


def checksum(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """The CRC32 of a book's top levels, as DESIGN section 8 defines it.

    ``bids`` and ``asks`` are (price, qty) pairs, best first; only the first
    `CHECKSUM_LEVELS` of each count. The text is each level as ``price:qty``,
    levels joined by ``,`` and the two sides by ``|``: ``1200:10,1199:3|1210:5``.
    """
    top = CHECKSUM_LEVELS
    text = (
        ",".join(f"{p}:{q}" for p, q in islice(bids, top))
        + "|"
        + ",".join(f"{p}:{q}" for p, q in islice(asks, top))
    )
    return zlib.crc32(text.encode())


class BookFeed:
    """The book channels of one instrument.

    Args:
        symbol: the instrument.
        book: its book now, copied as the starting state (None: empty).

    Attributes:
        symbol: the instrument.
        seqs: each channel's last sequence number, by depth (None: full).
        checksum: the checksum of the mirrored book (a property).
        dirty: whether a level was touched since the last flush.
    """

    __slots__ = (
        "_checksum",
        "_depths",
        "_keys",
        "_labels",
        "_qty",
        "_rescan",
        "_signs",
        "_tops",
        "_touched",
        "dirty",
        "seqs",
        "symbol",
    )

    def __init__(self, symbol: str, book: Book | None) -> None:
        self.symbol = symbol
        self.seqs: dict[int | None, int] = {None: 0}
        self._depths: list[int] = []
        # Per side (BUY, SELL): qty by price, sort keys (best first), each
        # level's checksum text by key, the checksum text of the top levels,
        # and the prices touched since the last flush.
        self._qty: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._keys = (SortedList(), SortedList())
        self._labels: tuple[dict[int, str], dict[int, str]] = ({}, {})
        # None: the top levels changed since the text was built.
        self._tops: list[str | None] = ["", ""]
        self._checksum: int | None = None
        self._touched: tuple[set[int], set[int]] = (set(), set())
        self._signs = (-1, 1)
        self._rescan = [False, False]
        self.dirty = False
        for side in (BUY, SELL):
            sign = self._signs[side]
            for price, qty in [] if book is None else book.levels(side):
                self._qty[side][price] = qty
                self._keys[side].add(sign * price)
                self._labels[side][sign * price] = f"{price}:{qty}"
            self._tops[side] = None

    @property
    def checksum(self) -> int:
        """The checksum of the mirrored book's top levels (see `checksum`)."""
        crc = self._checksum
        if crc is None:
            tops = self._tops
            for side in (BUY, SELL):
                if tops[side] is None:
                    tops[side] = self._top_text(side)
            crc = self._checksum = zlib.crc32(f"{tops[BUY]}|{tops[SELL]}".encode())
        return crc

    # -- what changed -----------------------------------------------------------

    def touch(self, side: int, price: int) -> None:
        """The level at ``price`` on ``side`` may have changed."""
        self._touched[side].add(price)
        self.dirty = True

    def rescan(self, side: int) -> None:
        """Any level of ``side`` may have changed: compare them all."""
        self._rescan[side] = True
        self.dirty = True

    # -- channels ---------------------------------------------------------------

    def open_channel(self, depth: int | None) -> None:
        """Create the channel of ``depth`` if it does not exist yet."""
        if depth not in self.seqs:
            self.seqs[depth] = 0
            self._depths = sorted(d for d in self.seqs if d is not None)

    def levels(self, side: int, depth: int | None) -> list[Level]:
        """The best ``depth`` levels of ``side`` (all if None), best first."""
        qty = self._qty[side]
        sign = self._signs[side]
        return [(sign * k, qty[sign * k]) for k in islice(self._keys[side], depth)]

    def snapshot(self, depth: int | None) -> bytes:
        """The encoded snapshot of the channel of ``depth`` at its sequence."""
        self.open_channel(depth)
        message = BookMessage(
            self.symbol,
            self.seqs[depth],
            self.levels(BUY, depth),
            self.levels(SELL, depth),
            self.checksum,
            snapshot=True,
            depth=depth,
        )
        return encode(message)

    # -- publishing -------------------------------------------------------------

    def flush(
        self,
        book: Book | None,
        listening: Callable[[str, int | None], bool] | None = None,
    ) -> list[Publication]:
        """Bring the mirror up to ``book`` (None: the instrument is gone, every
        level is empty) and return the update of each channel that changed.

        A channel that changed counts its update (its sequence number goes
        up) whether or not anyone listens; the update is built and encoded
        only if ``listening(channel, depth)`` (None: always)."""
        self.dirty = False
        depths = self._depths
        # Per channel (full first, then each depth), per side: (price, qty),
        # best first; None until a level changed.
        updates: list[tuple[list[Level], list[Level]]] | None = None
        top_changed = False
        for side in (BUY, SELL):
            touched = self._touched[side]
            if self._rescan[side]:
                self._rescan[side] = False
                touched.update(self._qty[side])
                if book is not None:
                    touched.update(p for p, _ in book.levels(side))
            if not touched:
                continue
            changes = self._changes(side, touched, book)
            touched.clear()
            if changes:
                if updates is None:
                    updates = [([], []) for _ in range(len(depths) + 1)]
                top_changed |= self._apply(side, changes, depths, updates)
        if updates is None:
            return []

        if top_changed:
            self._checksum = None
        channel = "book." + self.symbol
        out = []
        seqs = self.seqs
        for depth, (bids, asks) in zip((None, *depths), updates, strict=True):
            if bids or asks:
                seq = seqs[depth] + 1
                seqs[depth] = seq
                if listening is None or listening(channel, depth):
                    message = BookMessage(
                        self.symbol, seq, bids, asks, self.checksum, depth=depth
                    )
                    out.append(Publication(channel, depth, None, encode(message)))
        return out

    def _changes(
        self, side: int, touched: set[int], book: Book | None
    ) -> list[tuple[int, int, int, int]]:
        """The touched levels of ``side`` whose quantity differs from the
        mirror's, as (key, price, old qty, new qty), best first."""
        qty = self._qty[side]
        sign = self._signs[side]
        changes = []
        for price in touched:
            old = qty.get(price, 0)
            new = 0 if book is None else book.level_qty(side, price)
            if old != new:
                changes.append((sign * price, price, old, new))
        if len(changes) > 1:
            changes.sort()
        return changes

    def _apply(
        self,
        side: int,
        changes: list[tuple[int, int, int, int]],
        depths: list[int],
        updates: list[tuple[list[Level], list[Level]]],
    ) -> bool:
        """Apply one side's changes to the mirror and add them to the update of
        every channel that shows them; return whether the checksum's levels
        changed."""
        qty = self._qty[side]
        keys = self._keys[side]
        labels = self._labels[side]
        # The edge of each window (the key of the last level it shows) before
        # the change, and of the levels the checksum covers.
        old_edges = [_edge(keys, d) for d in depths]
        old_top = _edge(keys, CHECKSUM_LEVELS)
        for key, price, old, new in changes:
            if not new:
                del qty[price], labels[key]
                keys.remove(key)
            else:
                qty[price] = new
                labels[key] = f"{price}:{new}"
                if not old:
                    keys.add(key)
        updates[0][side].extend([(price, new) for _, price, _, new in changes])

        # Levels beyond a window's edge neither show in it nor move the edge.
        best = changes[0][0]
        for i, depth in enumerate(depths):
            if best <= old_edges[i]:
                self._window(side, changes, old_edges[i], depth, updates[i + 1][side])
        if best > old_top:
            return False
        self._tops[side] = None
        return True

    def _window(
        self,
        side: int,
        changes: list[tuple[int, int, int, int]],
        old_edge: int,
        depth: int,
        out: list[Level],
    ) -> None:
        """Add to ``out`` what a channel of ``depth`` must send for ``changes``,
        its window's edge having been ``old_edge`` before them."""
        keys = self._keys[side]
        new_edge = _edge(keys, depth)
        shown: list[tuple[int, int, int]] = []
        for key, price, old, new in changes:
            if new and key <= new_edge:
                shown.append((key, price, new))
            elif old and key <= old_edge:
                shown.append((key, price, 0))
        if new_edge != old_edge:
            # Unchanged levels between the two edges entered or left the window.
            qty = self._qty[side]
            sign = self._signs[side]
            entered = new_edge > old_edge
            changed = {key for key, *_ in changes}
            low, high = min(old_edge, new_edge), max(old_edge, new_edge)
            for key in keys.irange(low, high, inclusive=(False, True)):
                if key not in changed:
                    price = sign * key
                    shown.append((key, price, qty[price] if entered else 0))
            shown.sort()
        out.extend([(price, q) for _, price, q in shown])

    def _top_text(self, side: int) -> str:
        """The checksum text of the top levels of ``side``."""
        labels = self._labels[side]
        return ",".join([labels[k] for k in islice(self._keys[side], CHECKSUM_LEVELS)])


def _edge(keys: SortedList, depth: int) -> int:
    """The sort key of the ``depth``-th best level, or `_BEYOND` if fewer."""
    return int(keys[depth - 1]) if len(keys) >= depth else _BEYOND
