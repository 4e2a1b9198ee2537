"""Market data: the engine's events turned into channel messages, synchronously.

The server's sequencer calls `MarketData.apply` right after each
``engine.apply(seq, ts, command)``, with its events and timestamp, and fans the
returned publications out to the subscribers of each channel once the command
is durable. Each message is encoded once; every subscriber gets the same bytes.
Nothing here does I/O or reads a clock.

Public channels:

- ``book.<symbol>``: snapshots and updates with absolute quantities per level
  (see `exchange.marketdata_book`), one update per channel per command at most.
- ``trades.<symbol>``, ``candles.<symbol>``: each trade, and each candle a
  command's trades changed (see `exchange.marketdata_trades`).
- ``auction.<symbol>``: an `AuctionMessage` per indicative price in a call
  phase (``indicative`` true) and per auction that ran (false, with its kind).
- ``phases``: a `PhaseMessage` per phase change, a `PhaseScheduledMessage` per
  scheduled one, for every instrument.
- ``instruments``: futures listed (`ListedMessage`), settled
  (`SettlementMessage`), delivered (`DeliveryMessage`).

The private channels (``orders``, ``fills``, ``balance``, ``leases``) are in
`exchange.marketdata_private`.

Every message carries the command's timestamp, also for what timers did before
the command. A delisted future's book, trades and candles are forgotten with
its `DeliveryEnded`, so memory follows the listed instruments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exchange.marketdata_book import (
    BOOK_DEPTHS,
    CHECKSUM_LEVELS,
    BookFeed,
    Publication,
    checksum,
)
from exchange.marketdata_private import AccountFeed
from exchange.marketdata_trades import TradeFeed
from exchange.protocol import (
    AuctionMessage,
    CandleMessage,
    DeliveryMessage,
    ListedMessage,
    PhaseMessage,
    PhaseScheduledMessage,
    SettlementMessage,
    TradeMessage,
    encode,
)
from matching.engine import Engine
from matching.errors import CuxError
from matching.events import (
    AuctionCleared,
    AuctionTrade,
    DeliveryEnded,
    DeliveryStarted,
    Deposited,
    EscrowReleased,
    Event,
    FutureListed,
    IndicativePrice,
    LeaseCreated,
    LeaseEnded,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    PhaseChanged,
    PhaseScheduled,
    SettlementFixed,
    Trade,
    Withdrawn,
)
from matching.order import BUY, SELL

__all__ = [
    "BOOK_DEPTHS",
    "CHECKSUM_LEVELS",
    "MarketData",
    "Publication",
    "UnknownSymbol",
    "checksum",
]

Levels = list[tuple[int, int]]


class UnknownSymbol(CuxError, LookupError):
    """No listed instrument has this symbol (or it has been delisted)."""


class MarketData:
    """The market data of one engine, kept in step with it command by command.

    Args:
        engine: the engine whose events `apply` receives; its books, open
            orders, leases and balances now are the starting state.
        recent_trades: trades kept per instrument for `recent_trades`.
        candle_intervals: candle lengths in seconds (default 1 s and 1 min).
        candle_history: candles kept per instrument and interval (default a
            day of minutes).

    Raises:
        ValueError: a count or an interval is not positive.

    Attributes:
        accounts: the private channels and the open orders and leases they
            follow (see `exchange.marketdata_private`).
        listening: whether anyone listens to a public channel, as
            ``listening(channel, depth)`` (depth None but on book channels):
            a message nobody will receive is not built or encoded, though a
            book channel's sequence number still counts it. The server sets
            it; everyone by default.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        recent_trades: int = 1000,
        candle_intervals: tuple[int, ...] = (1, 60),
        candle_history: int = 1440,
    ) -> None:
        self._engine = engine
        self.candle_intervals = candle_intervals
        self._trades = TradeFeed(recent_trades, candle_intervals, candle_history)
        self.accounts = AccountFeed(engine)
        self._books: dict[str, BookFeed] = {}
        for symbol in engine.instruments:
            self._list(symbol)

        self._listening: Callable[[str, int | None], bool] = _everyone
        # What the current command changed, published at its end.
        self._ts = 0
        self._dirty: list[BookFeed] = []
        self._delisted: list[str] = []
        accounts = self.accounts
        self._handlers: dict[type, Callable[[Any, list[Publication]], None]] = {
            OrderAccepted: self._accepted,
            Trade: self._trade,
            OrderCancelled: self._cancelled,
            OrderExpired: self._expired,
            OrderAmended: self._amended,
            AuctionTrade: self._auction_trade,
            AuctionCleared: self._auction_cleared,
            IndicativePrice: self._indicative,
            PhaseChanged: self._phase_changed,
            PhaseScheduled: self._phase_scheduled,
            FutureListed: self._listed,
            SettlementFixed: self._settlement,
            DeliveryStarted: self._delivery_started,
            DeliveryEnded: self._delivery_ended,
            LeaseCreated: accounts.lease_created,
            LeaseEnded: accounts.lease_ended,
            Deposited: accounts.money_moved,
            Withdrawn: accounts.money_moved,
            EscrowReleased: accounts.escrow_released,
        }

    @property
    def listening(self) -> Callable[[str, int | None], bool]:
        return self._listening

    @listening.setter
    def listening(self, listening: Callable[[str, int | None], bool]) -> None:
        self._listening = listening
        self._trades.listening = listening

    # -- applying a command's events --------------------------------------------

    def apply(self, events: list[Event], ts: int) -> list[Publication]:
        """The publications of one command's ``events``, in order: those of each
        event as it happened, then the book updates, candles and balances the
        command changed. ``ts`` is the command's timestamp (ns)."""
        self._ts = self._trades.ts = self.accounts.ts = ts
        out: list[Publication] = []
        handlers = self._handlers
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event, out)

        if self._dirty:
            instruments = self._engine.instruments
            for feed in self._dirty:
                inst = instruments.get(feed.symbol)
                book = None if inst is None else inst.book
                out.extend(feed.flush(book, self._listening))
            self._dirty.clear()
        self._trades.publish_candles(out)
        self.accounts.publish_balances(out)
        if self._delisted:
            for symbol in self._delisted:
                del self._books[symbol]
                self._trades.drop(symbol)
            self._delisted.clear()
        return out

    def _touch(self, symbol: str, side: int, price: int) -> None:
        feed = self._books.get(symbol) or self._list(symbol)
        if not feed.dirty:
            self._dirty.append(feed)
        feed.touch(side, price)

    def _rescan(self, symbol: str, side: int) -> None:
        feed = self._books.get(symbol) or self._list(symbol)
        if not feed.dirty:
            self._dirty.append(feed)
        feed.rescan(side)

    def _list(self, symbol: str) -> BookFeed:
        """Start following an instrument that the engine lists now."""
        inst = self._engine.instruments.get(symbol)
        feed = BookFeed(symbol, None if inst is None else inst.book)
        self._books[symbol] = feed
        self._trades.add(symbol)
        return feed

    # -- orders and trades ------------------------------------------------------

    def _accepted(self, e: OrderAccepted, out: list[Publication]) -> None:
        if e.price is not None:
            self._touch(e.symbol, BUY if e.side == "buy" else SELL, e.price)
        self.accounts.accepted(e, out)

    def _cancelled(self, e: OrderCancelled, out: list[Publication]) -> None:
        if e.price is not None:
            self._touch(e.symbol, BUY if e.side == "buy" else SELL, e.price)
        self.accounts.cancelled(e, out)

    def _expired(self, e: OrderExpired, out: list[Publication]) -> None:
        self._touch(e.symbol, BUY if e.side == "buy" else SELL, e.price)
        self.accounts.expired(e, out)

    def _amended(self, e: OrderAmended, out: list[Publication]) -> None:
        side = BUY if e.side == "buy" else SELL
        self._touch(e.symbol, side, e.old_price)
        self._touch(e.symbol, side, e.price)
        self.accounts.amended(e, out)

    def _trade(self, e: Trade, out: list[Publication]) -> None:
        self._touch(e.symbol, SELL if e.taker_side == "buy" else BUY, e.price)
        self._trades.trade(e.symbol, e.trade_id, e.price, e.qty, e.taker_side, out)
        self.accounts.traded(e, out)

    def _auction_trade(self, e: AuctionTrade, out: list[Publication]) -> None:
        # The levels are those of the two orders, known while they are open.
        orders = self.accounts.orders
        for order_id, side in ((e.buy_order_id, BUY), (e.sell_order_id, SELL)):
            order = orders.get(order_id)
            if order is not None and order.price is not None:
                self._touch(e.symbol, side, order.price)
            else:
                self._rescan(e.symbol, side)
        self._trades.trade(e.symbol, e.trade_id, e.price, e.qty, None, out)
        self.accounts.auction_traded(e, out)

    # -- auctions, phases, instruments ------------------------------------------

    def _indicative(self, e: IndicativePrice, out: list[Publication]) -> None:
        message = AuctionMessage(
            e.symbol, True, e.price, e.volume, e.surplus, e.best_bid, e.best_ask,
            None, self._ts,
        )  # fmt: skip
        out.append(Publication("auction." + e.symbol, None, None, encode(message)))

    def _auction_cleared(self, e: AuctionCleared, out: list[Publication]) -> None:
        message = AuctionMessage(
            e.symbol, False, e.price, e.volume, e.surplus, e.best_bid, e.best_ask,
            e.kind, self._ts,
        )  # fmt: skip
        out.append(Publication("auction." + e.symbol, None, None, encode(message)))

    def _phase_changed(self, e: PhaseChanged, out: list[Publication]) -> None:
        message = PhaseMessage(e.symbol, e.phase, e.old_phase, self._ts, e.interval_ms)
        out.append(Publication("phases", None, None, encode(message)))

    def _phase_scheduled(self, e: PhaseScheduled, out: list[Publication]) -> None:
        message = PhaseScheduledMessage(
            e.symbol, e.phase, e.at, e.interval_ms, self._ts
        )
        out.append(Publication("phases", None, None, encode(message)))

    def _listed(self, e: FutureListed, out: list[Publication]) -> None:
        if e.symbol not in self._books:
            self._list(e.symbol)
        message = ListedMessage(
            e.symbol, e.resource_class, e.start, e.end, e.closing_call_at, e.gate_at,
            self._ts,
        )  # fmt: skip
        out.append(Publication("instruments", None, None, encode(message)))

    def _settlement(self, e: SettlementFixed, out: list[Publication]) -> None:
        message = SettlementMessage(e.symbol, e.price, self._ts)
        out.append(Publication("instruments", None, None, encode(message)))

    def _delivery_started(self, e: DeliveryStarted, out: list[Publication]) -> None:
        message = DeliveryMessage(e.symbol, "started", e.lots, self._ts)
        out.append(Publication("instruments", None, None, encode(message)))

    def _delivery_ended(self, e: DeliveryEnded, out: list[Publication]) -> None:
        message = DeliveryMessage(e.symbol, "ended", None, self._ts)
        out.append(Publication("instruments", None, None, encode(message)))
        if e.symbol in self._books:
            # Its book is empty since the gate; a level left would be deleted.
            self._rescan(e.symbol, BUY)
            self._rescan(e.symbol, SELL)
            self._delisted.append(e.symbol)

    # -- queries ----------------------------------------------------------------

    def book_snapshot(self, symbol: str, depth: int | None) -> bytes:
        """The encoded snapshot (a `BookMessage` with ``snapshot`` true) of the
        channel ``book.<symbol>`` at ``depth``, at its current sequence number;
        the channel is created, at sequence 0, if it is new.

        Raises:
            UnknownSymbol: no listed instrument has ``symbol``.
            ValueError: ``depth`` is neither None nor one of `BOOK_DEPTHS`.
        """
        if depth is not None and depth not in BOOK_DEPTHS:
            raise ValueError(f"book depth must be one of {BOOK_DEPTHS} or None")
        return self._feed(symbol).snapshot(depth)

    def book_levels(
        self, symbol: str, depth: int | None
    ) -> tuple[int, Levels, Levels, int]:
        """The book for REST: the sequence number of the full book channel, the
        best ``depth`` bids and asks (every level if None), best first, and the
        checksum of the book (of its top levels, whatever ``depth``).

        Raises:
            UnknownSymbol: no listed instrument has ``symbol``.
            ValueError: ``depth`` is neither None nor positive.
        """
        if depth is not None and depth < 1:
            raise ValueError("book depth must be positive or None")
        feed = self._feed(symbol)
        bids, asks = feed.levels(BUY, depth), feed.levels(SELL, depth)
        return feed.seqs[None], bids, asks, feed.checksum

    def start_history_from(self, older: MarketData) -> None:
        """Take the trade and candle history of ``older``, a market data that
        was fed the journal up to where this one starts (see
        `exchange.server.Exchange`)."""
        self._trades.start_from(older._trades)

    def recent_trades(self, symbol: str, limit: int) -> list[TradeMessage]:
        """The last ``limit`` trades of ``symbol``, oldest first (at most
        ``recent_trades`` are kept).

        Raises:
            UnknownSymbol: no listed instrument has ``symbol``.
        """
        trades = self._trades.recent(symbol, limit)
        if trades is None:
            raise UnknownSymbol(symbol)
        return trades

    def candles(self, symbol: str, interval: int, limit: int) -> list[CandleMessage]:
        """The last ``limit`` candles of ``interval`` seconds, oldest first (at
        most ``candle_history`` are kept).

        Raises:
            UnknownSymbol: no listed instrument has ``symbol``.
            ValueError: ``interval`` is not one of ``candle_intervals``.
        """
        candles = self._trades.candles(symbol, interval, limit)
        if candles is None:
            raise UnknownSymbol(symbol)
        return candles

    def _feed(self, symbol: str) -> BookFeed:
        feed = self._books.get(symbol)
        if feed is None:
            raise UnknownSymbol(symbol)
        return feed


def _everyone(channel: str, depth: int | None) -> bool:
    return True
