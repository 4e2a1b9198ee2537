"""A test market whose every command also goes through `MarketData`, and a
client's mirror of one book channel.

`FedMarket` is the matching tests' `Market` with a `MarketData` beside its
engine: every command's events are applied to it, its publications are kept
(``last`` for the latest command, ``publications`` for all), and every book
mirror that a test subscribed is fed and checked against the engine's book
after each command.
"""

from __future__ import annotations

from typing import Any

import msgspec
from harness import CONFIG, Market

from exchange.marketdata import MarketData, Publication, checksum
from exchange.protocol import BookMessage
from matching import Command, MarketConfig
from matching.order import BUY, SELL

_book_decoder = msgspec.json.Decoder(BookMessage)


class Mirror:
    """A client's copy of one book channel, built from a snapshot and updates.

    It checks what a client relies on: contiguous sequence numbers, updates
    that change every level they name, no more levels than the depth, and the
    checksum after every message.
    """

    def __init__(self, snapshot: bytes) -> None:
        message = _book_decoder.decode(snapshot)
        assert message.snapshot
        self.symbol = message.symbol
        self.depth = message.depth
        self.seq = message.seq
        self.sides: tuple[dict[int, int], dict[int, int]] = (
            dict(message.bids),
            dict(message.asks),
        )
        self.messages = 0
        assert self.checksum() == message.checksum

    def update(self, data: bytes) -> None:
        message = _book_decoder.decode(data)
        assert not message.snapshot
        assert (message.symbol, message.depth) == (self.symbol, self.depth)
        assert message.seq == self.seq + 1, f"gap: {self.seq} then {message.seq}"
        assert message.bids or message.asks, "an update that changes nothing"
        for levels, side in (
            (message.bids, self.sides[BUY]),
            (message.asks, self.sides[SELL]),
        ):
            for price, qty in levels:
                assert side.get(price, 0) != qty, f"level {price} sent unchanged"
                if qty:
                    side[price] = qty
                else:
                    del side[price]
            if self.depth is not None:
                assert len(side) <= self.depth
        self.seq = message.seq
        self.messages += 1
        assert self.checksum() == message.checksum

    def bids(self) -> list[tuple[int, int]]:
        return sorted(self.sides[BUY].items(), reverse=True)

    def asks(self) -> list[tuple[int, int]]:
        return sorted(self.sides[SELL].items())

    def checksum(self) -> int:
        return checksum(self.bids(), self.asks())


class FedMarket(Market):
    """A `Market` whose commands also feed a `MarketData` and its mirrors."""

    def __init__(self, config: MarketConfig = CONFIG, **options: Any) -> None:
        super().__init__(config)
        self.md = MarketData(self.engine, **options)
        self.publications: list[Publication] = []
        self.last: list[Publication] = []
        self.mirrors: list[Mirror] = []

    def apply(self, command: Command, *, at: int | None = None) -> list[Any]:
        events = super().apply(command, at=at)
        self.last = self.md.apply(events, self.engine.now)
        self.publications.extend(self.last)
        for p in self.last:
            if p.channel.startswith("book."):
                for mirror in self.mirrors:
                    if (p.channel[5:], p.depth) == (mirror.symbol, mirror.depth):
                        mirror.update(p.data)
        self.check_mirrors()
        return events

    def subscribe(self, symbol: str, depth: int | None) -> Mirror:
        """A mirror of ``book.<symbol>`` at ``depth``, fed from now on."""
        mirror = Mirror(self.md.book_snapshot(symbol, depth))
        self.mirrors.append(mirror)
        return mirror

    def messages(
        self, channel: str | None = None, depth: int | None = None
    ) -> list[tuple[str, str | None, Any]]:
        """The last command's publications as (channel, account, decoded JSON),
        of one channel or of all; of book channels, those of ``depth`` only."""
        return [
            (p.channel, p.account, msgspec.json.decode(p.data))
            for p in self.last
            if p.depth == depth and channel in (None, p.channel)
        ]

    def check_mirrors(self) -> None:
        """Every mirror shows what the engine's book shows to its depth, and
        every book message of the last command carries the book's checksum."""
        for mirror in self.mirrors:
            assert mirror.bids() == self._depth(mirror.symbol, BUY, mirror.depth)
            assert mirror.asks() == self._depth(mirror.symbol, SELL, mirror.depth)
        for p in self.last:
            if p.channel.startswith("book."):
                symbol = p.channel[5:]
                top = checksum(
                    self._depth(symbol, BUY, 10), self._depth(symbol, SELL, 10)
                )
                assert _book_decoder.decode(p.data).checksum == top

    def _depth(
        self, symbol: str, side: int, depth: int | None
    ) -> list[tuple[int, int]]:
        """The engine's best levels; none for a delisted instrument."""
        inst = self.engine.instruments.get(symbol)
        return [] if inst is None else inst.book.depth(side, depth)
