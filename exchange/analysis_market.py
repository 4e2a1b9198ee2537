"""The market's series from a replay: trades, volume, depth, spread, auctions.

Each function takes a `MarketReplay` (or a series made from one) and an
instrument's symbol and returns plain data: numpy arrays in a frozen dataclass,
or a list of msgspec structs. Times are ns since the epoch (``int64``; numpy's
``datetime64[ns]`` view of them is what the plots use), prices µcr per lot and
quantities lots, as integers. A price that may be missing (a side of the book
with no order, the spread of a one-sided book) is a ``float64`` with NaN where
it is missing; every price below 2^53 µcr is exact in one.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from exchange.analysis import MarketReplay
from matching import AuctionCleared, AuctionTrade, Trade

__all__ = [
    "AuctionResult",
    "Bars",
    "Depth",
    "Spread",
    "Trades",
    "auctions",
    "depth",
    "spread",
    "trades",
    "volume_bars",
]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]

SECOND = 1_000_000_000


@dataclass(frozen=True)
class Trades:
    """Every trade of one instrument, in engine order.

    Attributes:
        symbol: the instrument.
        seq, ts: the stamp of the command that caused the trade.
        trade_id: the trade's id (also its spot lease's).
        price: µcr per lot.
        qty: lots.
        auction: True for a call auction's trade, False for a continuous one.
    """

    symbol: str
    seq: Ints
    ts: Ints
    trade_id: Ints
    price: Ints
    qty: Ints
    auction: Flags

    def __len__(self) -> int:
        return len(self.seq)

    @property
    def notional(self) -> int:
        """µcr traded in all: the sum of price × lots."""
        return int(np.dot(self.price, self.qty))

    def vwap(self) -> float:
        """The volume-weighted average price; NaN with no trade."""
        volume = int(self.qty.sum())
        return self.notional / volume if volume else float("nan")


@dataclass(frozen=True)
class Bars:
    """Trades added up per interval of ``seconds``, aligned to the epoch; only
    intervals with a trade have a bar.

    Attributes:
        start: each interval's start, ns since the epoch.
        volume: lots traded.
        count: trades.
        notional: µcr traded (price × lots).
        low, high, last: the lowest, highest and last price, µcr per lot.
    """

    seconds: int
    start: Ints
    volume: Ints
    count: Ints
    notional: Ints
    low: Ints
    high: Ints
    last: Ints

    @property
    def vwap(self) -> Floats:
        """The volume-weighted average price of each bar."""
        return self.notional / self.volume


@dataclass(frozen=True)
class Depth:
    """One instrument's book after every command that changed it.

    Attributes:
        seq, ts: the stamp of the command after which the book was sampled.
        bid, ask: the best prices, NaN for an empty side.
        bid_qty, ask_qty: lots at the best prices (0 for an empty side).
        bid_depth, ask_depth: lots in the best levels (10 unless the replay
            was opened with another ``depth_levels``).
        bid_lots, ask_lots: lots on the whole side.
        phase: the trading phase at each sample.
    """

    symbol: str
    seq: Ints
    ts: Ints
    bid: Floats
    ask: Floats
    bid_qty: Ints
    ask_qty: Ints
    bid_depth: Ints
    ask_depth: Ints
    bid_lots: Ints
    ask_lots: Ints
    phase: list[str]

    def __len__(self) -> int:
        return len(self.seq)


@dataclass(frozen=True)
class Spread:
    """The best ask minus the best bid over time, NaN where a side is empty.

    In a call phase orders collect without trading, so the book may cross and
    the spread be negative.

    Attributes:
        ts: as in `Depth`.
        spread: µcr per lot.
        mid: the midpoint of the best prices.
        bps: the spread relative to the midpoint, in basis points.
    """

    symbol: str
    ts: Ints
    spread: Floats
    mid: Floats
    bps: Floats


class AuctionResult(msgspec.Struct, frozen=True):
    """A call auction's result beside the continuous prices around it.

    Attributes:
        seq, ts: the stamp of the command during which it ran.
        kind: ``opening``, ``reopening``, ``batch`` or ``closing``.
        price: the uniform price, None when nothing was executable.
        volume: lots traded.
        surplus: demand minus supply at the price.
        best_bid, best_ask: the book's best prices before it ran.
        trades: the auction's trades.
        price_before: the last continuous trade's price before it, or None.
        price_after: the first continuous trade's price after it, or None.
    """

    symbol: str
    seq: int
    ts: int
    kind: str
    price: int | None
    volume: int
    surplus: int
    best_bid: int | None
    best_ask: int | None
    trades: int
    price_before: int | None
    price_after: int | None


def trades(replay: MarketReplay, symbol: str) -> Trades:
    """Every trade of ``symbol``, continuous and auction."""
    rows: list[tuple[int, int, int, int, int, bool]] = []
    for timed in replay.events:
        event = timed.event
        if isinstance(event, Trade | AuctionTrade) and event.symbol == symbol:
            row = (timed.seq, timed.ts, event.trade_id, event.price, event.qty)
            rows.append((*row, isinstance(event, AuctionTrade)))
    columns = list(zip(*rows, strict=True)) if rows else [()] * 6

    def ints(i: int) -> Ints:
        return np.array(columns[i], dtype=np.int64)

    auction = np.array(columns[5], dtype=np.bool_)
    return Trades(symbol, ints(0), ints(1), ints(2), ints(3), ints(4), auction)


def volume_bars(series: Trades, seconds: int = 60) -> Bars:
    """``series`` added up per ``seconds`` (aligned to the epoch)."""
    if seconds < 1:
        raise ValueError(f"a bar lasts at least 1 second, not {seconds}")
    if len(series) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Bars(seconds, empty, empty, empty, empty, empty, empty, empty)
    width = seconds * SECOND
    starts, first = np.unique(series.ts // width, return_index=True)
    last_index = np.append(first[1:], len(series)) - 1
    return Bars(
        seconds,
        starts * width,
        np.add.reduceat(series.qty, first),
        np.diff(np.append(first, len(series))),
        np.add.reduceat(series.price * series.qty, first),
        np.minimum.reduceat(series.price, first),
        np.maximum.reduceat(series.price, first),
        series.price[last_index],
    )


def depth(replay: MarketReplay, symbol: str) -> Depth:
    """The book of ``symbol`` over time (see `exchange.analysis.BookSample`)."""
    samples = replay.books.get(symbol, [])
    columns = list(zip(*map(msgspec.structs.astuple, samples), strict=True))
    if not columns:
        columns = [()] * 11

    def ints(i: int) -> Ints:
        return np.array(columns[i], dtype=np.int64)

    def prices(i: int) -> Floats:
        values = np.array(columns[i], dtype=np.float64)
        values[values == 0] = np.nan
        return values

    return Depth(
        symbol,
        ints(0),
        ints(1),
        prices(2),
        prices(4),
        ints(3),
        ints(5),
        ints(6),
        ints(7),
        ints(8),
        ints(9),
        [str(phase) for phase in columns[10]],
    )


def spread(book: Depth) -> Spread:
    """The spread and midpoint of ``book`` at each sample."""
    width = book.ask - book.bid
    mid = (book.ask + book.bid) / 2
    return Spread(book.symbol, book.ts, width, mid, width / mid * 10_000)


def auctions(replay: MarketReplay, symbol: str) -> list[AuctionResult]:
    """Every call auction of ``symbol`` with the continuous prices around it."""
    found: list[tuple[int, int, AuctionCleared, int]] = []
    continuous: list[tuple[int, int]] = []  # (index in found, price)
    for timed in replay.events:
        event = timed.event
        if getattr(event, "symbol", None) != symbol:
            continue
        if isinstance(event, AuctionCleared):
            found.append((timed.seq, timed.ts, event, 0))
        elif isinstance(event, AuctionTrade) and found:
            seq, ts, cleared, count = found[-1]
            found[-1] = (seq, ts, cleared, count + 1)
        elif isinstance(event, Trade):
            continuous.append((len(found), event.price))
    # A continuous trade is tagged with the number of auctions before it.
    tags = [n for n, _ in continuous]
    results = []
    for i, (seq, ts, cleared, count) in enumerate(found):
        split = bisect_right(tags, i)
        results.append(
            AuctionResult(
                symbol,
                seq,
                ts,
                cleared.kind,
                cleared.price,
                cleared.volume,
                cleared.surplus,
                cleared.best_bid,
                cleared.best_ask,
                count,
                continuous[split - 1][1] if split else None,
                continuous[split][1] if split < len(continuous) else None,
            )
        )
    return results
