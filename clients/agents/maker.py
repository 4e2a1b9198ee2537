"""A market maker: quotes the spot book on both sides around a reference price.

A `MarketMaker` keeps one bid and one ask on its instrument, ``size`` lots
each, ``spread_bps`` apart around a reference price (half on each side, at
least one tick each, on the tick). The reference is a function of the replayed
time, usually a `clients.agents.prices.LotPricer`'s price: the maker's k-th
refresh (every ``refresh_seconds``) reads it at ``start_offset + k ×
refresh_seconds × speed`` seconds into the series, so the prices it quotes
depend only on how many refreshes it has made, not on the clock.

It re-quotes:

- after a fill: the side that traded is brought back to ``size`` lots (an
  amend, or a new order if the old one is gone);
- when the reference moves: both sides are amended to the new prices.

`MarketMaker.stop` ends `MarketMaker.run`: it stops re-quoting first, then
cancels its two quotes, so no quote outlives it. Its client order ids are
``<name>.<n>``. Before it quotes, and whenever it may have missed an update of
its orders (a ``resync``, a request that got no answer), it cancels every open
order of its account on the instrument and quotes anew, so give each maker an
account (or at least an instrument) of its own.

Selling needs a provider account with capacity on the instrument; quoting does
not look at inventory: a maker buys and sells whatever comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from clients.agents.venue import Venue
from clients.errors import ClientError, ServerError

__all__ = ["MakerConfig", "MakerStats", "MarketMaker", "quote_prices"]

log = logging.getLogger("cux.agents.maker")

_GONE = frozenset({"ORDER_CLOSED", "UNKNOWN_ORDER"})


@dataclass(frozen=True, slots=True)
class MakerConfig:
    """A market maker's settings.

    Attributes:
        name: the maker's name, the prefix of its client order ids.
        symbol: the instrument it quotes.
        tick: the instrument's tick, µcr.
        size: lots on each side.
        spread_bps: the distance between bid and ask, basis points of the
            reference (at least two ticks in all).
        refresh_seconds: seconds between two readings of the reference.
        speed: seconds of the price series that pass in one second.
        start_offset: where in the price series to start, seconds.
    """

    name: str = "mm"
    symbol: str = "cpu-SPOT"
    tick: int = 1
    size: int = 10
    spread_bps: int = 200
    refresh_seconds: float = 1.0
    speed: float = 1800.0
    start_offset: float = 0.0

    def __post_init__(self) -> None:
        if self.size < 1 or self.tick < 1 or self.spread_bps < 0:
            raise ValueError("size and tick must be at least 1, spread >= 0")
        if self.refresh_seconds <= 0 or self.speed < 0 or self.start_offset < 0:
            raise ValueError("refresh must be positive; speed and offset >= 0")

    def offset(self, refresh: int) -> float:
        """Seconds into the price series at the ``refresh``-th refresh."""
        return self.start_offset + refresh * self.refresh_seconds * self.speed


def quote_prices(reference: int, spread_bps: int, tick: int) -> tuple[int, int]:
    """The bid and ask around ``reference``: half the spread below (rounded
    down to the tick) and above (rounded up), at least a tick from it each,
    and a bid of at least one tick."""
    half = reference * spread_bps // 20_000
    bid = (reference - half) // tick * tick
    ask = -(-(reference + half) // tick) * tick
    if bid >= reference:
        bid -= tick
    if ask <= reference:
        ask += tick
    return max(tick, bid), max(ask, 2 * tick)


@dataclass(slots=True)
class _Quote:
    tag: str
    order_id: str | None
    price: int
    leaves: int


@dataclass(slots=True)
class MakerStats:
    """What a maker did: requests answered, lots it bought and sold."""

    placed: int = 0
    amended: int = 0
    bought: int = 0
    sold: int = 0
    refused: dict[str, int] = field(default_factory=dict)


class MarketMaker:
    """Two-sided quotes on one instrument (see the module doc).

    Args:
        venue: the maker's account on the exchange.
        config: its settings.
        reference: the reference price, µcr per lot, at a number of seconds
            into the price series.
    """

    def __init__(
        self, venue: Venue, config: MakerConfig, reference: Callable[[float], int]
    ) -> None:
        self.venue = venue
        self.config = config
        self.reference = reference
        self.stats = MakerStats()
        self.quotes: dict[str, _Quote | None] = {"buy": None, "sell": None}
        self.refreshes = 0
        self._tags = itertools.count(1)
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self._resync = False
        self.ready = asyncio.Event()
        """Set once both sides are quoted for the first time."""

    def stop(self) -> None:
        """End `run`: stop re-quoting and cancel the quotes."""
        self._stopping.set()

    def prices(self) -> tuple[int, int]:
        """The bid and ask at the current refresh."""
        c = self.config
        return quote_prices(
            self.reference(c.offset(self.refreshes)), c.spread_bps, c.tick
        )

    async def run(self) -> None:
        """Quote until `stop`, then cancel the quotes."""
        c = self.config
        listener = asyncio.create_task(self._listen(await self.venue.private()))
        clock = asyncio.create_task(self._clock())
        # Start from a clean slate: no order of a previous run stays.
        self._resync = True
        try:
            while not self._stopping.is_set():
                self._dirty.clear()
                try:
                    if self._resync:
                        await self._forget_quotes()
                    await self._requote()
                    if all(self.quotes.values()):
                        self.ready.set()
                except ClientError as exc:
                    # No answer (the connection dropped, or the server is
                    # going away): whatever is open is unknown, so clear it
                    # and quote again once the connection is back.
                    log.warning("%s: %s; quoting again shortly", c.name, exc)
                    self._resync = True
                    await self._wait_stop(c.refresh_seconds)
                    continue
                await self._wait_dirty()
        finally:
            for task in (listener, clock):
                task.cancel()
            await asyncio.gather(listener, clock, return_exceptions=True)
            await self._cancel_quotes()

    # -- quoting -----------------------------------------------------------------

    async def _requote(self) -> None:
        bid, ask = self.prices()
        sides = [("buy", bid), ("sell", ask)]
        old_bid = self.quotes["buy"]
        if old_bid is not None and bid > old_bid.price:
            # Moving up, the ask moves first, so the new bid never meets the
            # old ask (self-trade prevention would cancel it); moving down,
            # the bid first.
            sides.reverse()
        for side, price in sides:
            if self._stopping.is_set():
                return
            await self._requote_side(side, price)

    async def _requote_side(self, side: str, price: int) -> None:
        c = self.config
        quote = self.quotes[side]
        try:
            if quote is None:
                # Known by its tag before the ack: its messages may come first.
                quote = _Quote(f"{c.name}.{next(self._tags)}", None, price, c.size)
                self.quotes[side] = quote
                quote.order_id = await self.venue.place(
                    symbol=c.symbol,
                    side=side,
                    qty=c.size,
                    price=price,
                    client_order_id=quote.tag,
                )
                self.stats.placed += 1
                log.info("%s quoted %s %d at %d", c.name, side, c.size, price)
            elif quote.order_id is None:
                return
            elif (quote.price, quote.leaves) != (price, c.size):
                await self.venue.amend(quote.order_id, qty=c.size, price=price)
                self.stats.amended += 1
                quote.price, quote.leaves = price, c.size
                log.info("%s re-quoted %s %d at %d", c.name, side, c.size, price)
        except ServerError as exc:
            self.stats.refused[exc.code] = self.stats.refused.get(exc.code, 0) + 1
            if quote is not None and quote.order_id is None:
                self.quotes[side] = None  # the place itself was refused
            if exc.code in _GONE:
                # It filled or was cancelled meanwhile: quote anew next time.
                if self.quotes[side] is quote:
                    self.quotes[side] = None
                self._dirty.set()
            else:
                log.warning("%s: %s quote refused: %s", c.name, side, exc)

    async def _forget_quotes(self) -> None:
        self.quotes = {"buy": None, "sell": None}
        await self.venue.cancel_all(self.config.symbol)
        self._resync = False

    async def _cancel_quotes(self) -> None:
        try:
            await self.venue.cancel_all(self.config.symbol)
        except ClientError as exc:
            log.warning("%s: could not cancel its quotes: %s", self.config.name, exc)
        else:
            log.info("%s stopped: quotes cancelled", self.config.name)
        self.quotes = {"buy": None, "sell": None}

    # -- what moves the quotes ---------------------------------------------------

    async def _wait_dirty(self) -> None:
        dirty = asyncio.create_task(self._dirty.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait((dirty, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            dirty.cancel()
            stopping.cancel()

    async def _wait_stop(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.config.refresh_seconds)
            before = self.prices()
            self.refreshes += 1
            if self.prices() != before:
                self._dirty.set()

    async def _listen(self, messages: AsyncIterator[dict[str, Any]]) -> None:
        async for message in messages:
            kind = message.get("type")
            if kind == "order":
                self._on_order(message)
            elif kind == "fill":
                self._on_fill(message)
            elif kind == "resync":
                # Updates may be lost: the quotes' state is unknown.
                self._resync = True
                self._dirty.set()

    def _on_order(self, message: dict[str, Any]) -> None:
        """Follow the server's view of a quote: its leaves and price after
        each change, or its end."""
        tag = message.get("client_order_id")
        for side, quote in self.quotes.items():
            if quote is None or quote.tag != tag:
                continue
            if message.get("status") in ("filled", "cancelled", "expired"):
                self.quotes[side] = None
            else:
                quote.leaves = int(message["leaves"])
                if message.get("price") is not None:
                    quote.price = int(message["price"])
            self._dirty.set()

    def _on_fill(self, message: dict[str, Any]) -> None:
        tag = str(message.get("client_order_id") or "")
        if not tag.startswith(f"{self.config.name}."):
            return
        if message.get("side") == "buy":
            self.stats.bought += int(message["qty"])
        else:
            self.stats.sold += int(message["qty"])
        self._dirty.set()
