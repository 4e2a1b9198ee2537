"""Public trades and candles: the channels ``trades.<symbol>`` and
``candles.<symbol>``, and the recent history that REST serves.

Every trade, continuous or auction, is one `TradeMessage` (``taker_side`` None
for an auction trade) and updates one candle per interval. A candle covers
``interval`` seconds aligned to the epoch, starting at the first trade in it:
intervals without trades have no candle. Open, high, low and close are µcr per
lot and volume is lots, all integers. A command publishes each candle it
changed once, after its trades.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from exchange.marketdata_book import Publication
from exchange.protocol import CandleMessage, TradeMessage, encode

__all__ = ["SECOND", "TradeFeed"]

SECOND: Final = 1_000_000_000
"""One second in ns."""

Candle = list[int]
"""[start (ns), open, high, low, close, volume], updated in place."""


class TradeFeed:
    """The trades and candles of every instrument, and their recent history.

    Args:
        recent_trades: trades kept per instrument.
        intervals: candle lengths in seconds.
        history: candles kept per instrument and interval.

    Attributes:
        ts: the timestamp (ns) of the command whose trades are being applied.
        intervals: the candle lengths, in seconds, ascending.
    """

    __slots__ = (
        "_candles",
        "_changed",
        "_history",
        "_kept",
        "_trades",
        "intervals",
        "listening",
        "ts",
    )

    def __init__(
        self, recent_trades: int, intervals: tuple[int, ...], history: int
    ) -> None:
        if recent_trades < 1 or history < 1:
            raise ValueError("recent_trades and candle_history must be positive")
        if not intervals or any(i < 1 for i in intervals):
            raise ValueError(f"candle intervals must be whole seconds: {intervals}")
        self._kept = recent_trades
        self._history = history
        self.intervals = tuple(sorted(set(intervals)))
        self._trades: dict[str, deque[TradeMessage]] = {}
        self._candles: dict[str, dict[int, deque[Candle]]] = {}
        self._changed: dict[tuple[str, int], Candle] = {}
        self.ts = 0
        # Whether anyone listens to a public channel: a message nobody will
        # receive is not encoded. The server sets it; everyone by default.
        self.listening: Callable[[str, int | None], bool] = _everyone

    def add(self, symbol: str) -> None:
        """Start keeping the history of ``symbol``."""
        self._trades[symbol] = deque(maxlen=self._kept)
        self._candles[symbol] = {i: deque(maxlen=self._history) for i in self.intervals}

    def drop(self, symbol: str) -> None:
        """Forget the history of ``symbol`` (a delisted instrument)."""
        self._trades.pop(symbol, None)
        self._candles.pop(symbol, None)

    def trade(
        self,
        symbol: str,
        trade_id: int,
        price: int,
        qty: int,
        taker_side: str | None,
        out: list[Publication],
    ) -> None:
        """Publish a trade and update its candles."""
        ts = self.ts
        message = TradeMessage(symbol, trade_id, price, qty, taker_side, ts)
        if symbol not in self._trades:
            self.add(symbol)
        self._trades[symbol].append(message)
        channel = "trades." + symbol
        if self.listening(channel, None):
            out.append(Publication(channel, None, None, encode(message)))

        for interval, candles in self._candles[symbol].items():
            start = ts - ts % (interval * SECOND)
            if candles and candles[-1][0] == start:
                candle = candles[-1]
                if price > candle[2]:
                    candle[2] = price
                if price < candle[3]:
                    candle[3] = price
                candle[4] = price
                candle[5] += qty
            else:
                candle = [start, price, price, price, price, qty]
                candles.append(candle)
            self._changed[symbol, interval] = candle

    def start_from(self, older: TradeFeed) -> None:
        """Take ``older``'s history (rebuilt from the journal at start-up, before
        this feed has seen a trade) for the symbols this feed keeps."""
        for symbol in self._trades:
            trades = older._trades.get(symbol)
            if trades:
                self._trades[symbol] = deque(trades, maxlen=self._kept)
            for interval, candles in older._candles.get(symbol, {}).items():
                if interval in self._candles[symbol]:
                    self._candles[symbol][interval] = deque(
                        candles, maxlen=self._history
                    )

    def publish_candles(self, out: list[Publication]) -> None:
        """Publish each candle the command's trades changed, once."""
        for (symbol, interval), candle in self._changed.items():
            channel = "candles." + symbol
            if self.listening(channel, None):
                message = CandleMessage(symbol, interval, *candle)
                out.append(Publication(channel, None, None, encode(message)))
        self._changed.clear()

    def recent(self, symbol: str, limit: int) -> list[TradeMessage] | None:
        """The last ``limit`` trades of ``symbol``, oldest first; None if its
        history is not kept."""
        trades = self._trades.get(symbol)
        if trades is None:
            return None
        return list(trades)[-limit:] if limit > 0 else []

    def candles(
        self, symbol: str, interval: int, limit: int
    ) -> list[CandleMessage] | None:
        """The last ``limit`` candles of ``interval`` seconds, oldest first;
        None if the history of ``symbol`` is not kept.

        Raises:
            ValueError: ``interval`` is not one of `intervals`.
        """
        by_interval = self._candles.get(symbol)
        if by_interval is None:
            return None
        candles = by_interval.get(interval)
        if candles is None:
            raise ValueError(f"candle interval must be one of {self.intervals}")
        if limit <= 0:
            return []
        return [CandleMessage(symbol, interval, *c) for c in list(candles)[-limit:]]


def _everyone(channel: str, depth: int | None) -> bool:
    return True
