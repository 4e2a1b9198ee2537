"""Trades, candles, auctions, phases, instruments and the private channels: exact
messages for known scenarios, and properties over random flows."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest
from harness import CPU, GPU, STEP, random_flow
from marketdata_harness import FedMarket

from exchange.marketdata import MarketData, UnknownSymbol
from exchange.protocol import CandleMessage, TradeMessage
from matching import (
    AuctionTrade,
    Deposit,
    FuturesTerms,
    ListFuture,
    MarketConfig,
    ReleaseEscrow,
    ResourceClass,
    SchedulePhase,
    SetCapacity,
    SetPhase,
    Trade,
)

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
T1 = 1_700_000_100 * SECOND
"""A whole minute (ns since the epoch), after the harness's first commands."""


def order(
    order_id: int,
    symbol: str,
    side: str,
    status: str,
    price: int | None,
    filled: int,
    leaves: int,
    ts: int,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "order",
        "order_id": str(order_id),
        "client_order_id": None,
        "symbol": symbol,
        "side": side,
        "status": status,
        "price": price,
        "filled": filled,
        "leaves": leaves,
        "reason": reason,
        "ts": ts,
    }


def fill(
    order_id: int,
    trade_id: int,
    symbol: str,
    side: str,
    price: int,
    qty: int,
    fee: int,
    liquidity: str,
    ts: int,
) -> dict[str, Any]:
    return {
        "type": "fill",
        "order_id": str(order_id),
        "client_order_id": None,
        "trade_id": trade_id,
        "symbol": symbol,
        "side": side,
        "price": price,
        "qty": qty,
        "fee": fee,
        "liquidity": liquidity,
        "ts": ts,
    }


def balance(available: int, held: int, escrow: int, ts: int) -> dict[str, Any]:
    return {
        "type": "balance",
        "available": available,
        "held": held,
        "escrow": escrow,
        "ts": ts,
    }


def candle(
    symbol: str, interval: int, start: int, ohlc: tuple[int, int, int, int], volume: int
) -> dict[str, Any]:
    o, h, low, c = ohlc
    return {
        "type": "candle",
        "symbol": symbol,
        "interval": interval,
        "start": start,
        "open": o,
        "high": h,
        "low": low,
        "close": c,
        "volume": volume,
    }


LEASE = 300 * SECOND
"""The harness's spot lease: 300 s from the trade."""


def spot_lease(
    lease_id: int,
    symbol: str,
    consumer: str,
    provider: str,
    lots: int,
    price: int,
    start: int,
    *,
    status: str = "active",
    ts: int | None = None,
) -> dict[str, Any]:
    return {
        "type": "lease",
        "lease_id": lease_id,
        "symbol": symbol,
        "status": status,
        "consumer": consumer,
        "provider": provider,
        "lots": lots,
        "price": price,
        "start": start,
        "end": start + LEASE,
        "ts": start if ts is None else ts,
    }


def channels(m: FedMarket) -> list[str]:
    return [channel for channel, _, _ in m.messages()]


# -- the private channels -----------------------------------------------------------


def test_a_taker_buy_sends_orders_fills_and_balance_with_exact_fees() -> None:
    m = FedMarket()
    m.open("alice", deposit=1_000_000)
    m.open("bob", capacity=100, symbol=GPU)
    sell = m.sell("bob", 10, 1000, symbol=GPU)

    buy = m.buy("alice", 4, 1010, symbol=GPU)
    ts = m.engine.now

    # alice holds 4 x (1010 + 3) = 4052; the fill costs 4000 and a 10 µcr taker
    # fee (25 bps of 4000); the rest of the hold goes back.
    book = "book." + GPU
    assert m.messages() == [
        ("orders", "alice", order(buy.id, GPU, "buy", "new", 1010, 0, 4, ts)),
        (
            "trades." + GPU,
            None,
            {
                "type": "trade",
                "symbol": GPU,
                "trade_id": 1,
                "price": 1000,
                "qty": 4,
                "taker_side": "buy",
                "ts": ts,
            },
        ),
        (
            "orders",
            "bob",
            order(sell.id, GPU, "sell", "partially_filled", 1000, 4, 6, ts),
        ),
        ("fills", "bob", fill(sell.id, 1, GPU, "sell", 1000, 4, 0, "maker", ts)),
        ("orders", "alice", order(buy.id, GPU, "buy", "filled", 1010, 4, 0, ts)),
        ("fills", "alice", fill(buy.id, 1, GPU, "buy", 1000, 4, 10, "taker", ts)),
        ("leases", "alice", spot_lease(1, GPU, "alice", "bob", 4, 1000, ts)),
        ("leases", "bob", spot_lease(1, GPU, "alice", "bob", 4, 1000, ts)),
        (
            book,
            None,
            {
                "type": "book",
                "symbol": GPU,
                "seq": 2,
                "bids": [],
                "asks": [[1000, 6]],
                "checksum": m.md.book_levels(GPU, None)[3],
            },
        ),
        ("candles." + GPU, None, candle(GPU, 1, ts - ts % SECOND, (1000,) * 4, 4)),
        ("candles." + GPU, None, candle(GPU, 60, ts - ts % MINUTE, (1000,) * 4, 4)),
        ("balance", "alice", balance(995_990, 0, 4000, ts)),
    ]


def test_private_messages_are_built_only_for_accounts_someone_listens_to() -> None:
    m = FedMarket()
    m.md.accounts.listening = lambda channel, account: account == "alice"
    m.open("alice", deposit=1_000_000)
    m.open("bob", capacity=100, symbol=GPU)
    sell = m.sell("bob", 10, 1000, symbol=GPU)

    buy = m.buy("alice", 4, 1010, symbol=GPU)
    ts = m.engine.now

    private = [(c, a, msg) for c, a, msg in m.messages() if a is not None]
    assert private == [
        ("orders", "alice", order(buy.id, GPU, "buy", "new", 1010, 0, 4, ts)),
        ("orders", "alice", order(buy.id, GPU, "buy", "filled", 1010, 4, 0, ts)),
        ("fills", "alice", fill(buy.id, 1, GPU, "buy", 1000, 4, 10, "taker", ts)),
        ("leases", "alice", spot_lease(1, GPU, "alice", "bob", 4, 1000, ts)),
        ("balance", "alice", balance(995_990, 0, 4000, ts)),
    ]
    # bob's order is still tracked, though nothing was sent for it.
    assert m.md.accounts.orders[sell.id].leaves == 6


def test_a_maker_buy_pays_the_maker_fee_and_a_seller_pays_nothing_at_the_fill() -> None:
    m = FedMarket()
    m.open("alice", deposit=1_000_000)
    m.open("bob", capacity=100, symbol=GPU)
    bid = m.buy("alice", 2, 990, symbol=GPU)
    assert m.messages("balance") == [
        ("balance", "alice", balance(1_000_000 - 1986, 1986, 0, m.engine.now))
    ]

    sell = m.sell("bob", 3, 990, symbol=GPU)
    ts = m.engine.now

    # 2 lots at 990: notional 1980, maker fee 2 (10 bps, rounded up).
    assert [(c, a, msg) for c, a, msg in m.messages() if c in ("orders", "fills")] == [
        ("orders", "bob", order(sell.id, GPU, "sell", "new", 990, 0, 3, ts)),
        ("orders", "alice", order(bid.id, GPU, "buy", "filled", 990, 2, 0, ts)),
        ("fills", "alice", fill(bid.id, 1, GPU, "buy", 990, 2, 2, "maker", ts)),
        (
            "orders",
            "bob",
            order(sell.id, GPU, "sell", "partially_filled", 990, 2, 1, ts),
        ),
        ("fills", "bob", fill(sell.id, 1, GPU, "sell", 990, 2, 0, "taker", ts)),
    ]
    assert m.messages("balance") == [
        ("balance", "alice", balance(1_000_000 - 1982, 0, 1980, ts))
    ]
    (_, _, update) = m.messages("book." + GPU)[0]
    assert (update["bids"], update["asks"]) == ([[990, 0]], [[990, 1]])


def test_amends_cancels_and_escrow_releases_reach_their_accounts() -> None:
    m = FedMarket()
    m.open("alice", deposit=1_000_000)
    m.open("bob", capacity=100, symbol=GPU)
    sell = m.sell("bob", 10, 1000, symbol=GPU)
    m.buy("alice", 4, 1000, symbol=GPU)

    m.amend("bob", sell.id, qty=3)
    amended = m.messages()
    m.cancel("bob", sell.id)
    cancelled = m.messages()
    m.apply(ReleaseEscrow(1, 3000))
    released = m.messages()
    ts = m.engine.now

    assert amended[0] == (
        "orders",
        "bob",
        order(sell.id, GPU, "sell", "amended", 1000, 4, 3, ts - 2 * STEP),
    )
    assert cancelled[0] == (
        "orders",
        "bob",
        order(sell.id, GPU, "sell", "cancelled", 1000, 4, 0, ts - STEP, "user"),
    )
    assert [c for c, _, _ in amended + cancelled] == ["orders", "book." + GPU] * 2
    # bob was the maker: his fee is 10 bps of the 3000 paid out, 3 µcr.
    traded_at = ts - 3 * STEP
    ended = spot_lease(
        1, GPU, "alice", "bob", 4, 1000, traded_at, status="used_up", ts=ts
    )
    assert released == [
        ("leases", "alice", ended),
        ("leases", "bob", ended),
        ("balance", "alice", balance(1_000_000 - 4010 + 1000, 0, 0, ts)),
        ("balance", "bob", balance(2997, 0, 0, ts)),
    ]


def test_deposits_and_withdrawals_send_only_the_balance() -> None:
    m = FedMarket()
    m.open("alice", deposit=500)
    assert m.messages() == [("balance", "alice", balance(500, 0, 0, m.engine.now))]

    m.apply(Deposit("alice", 0))  # rejected: changes nothing
    assert m.last == []


def test_an_unfilled_ioc_is_new_then_cancelled_and_never_on_the_book() -> None:
    m = FedMarket()
    m.open("alice", deposit=1_000_000)

    placed = m.buy("alice", 5, 100, tif="IOC")
    ts = m.engine.now

    assert channels(m) == ["orders", "orders"]
    assert m.messages()[1][2] == order(
        placed.id, CPU, "buy", "cancelled", 100, 0, 0, ts, "unfilled"
    )


def test_a_market_order_reports_no_price() -> None:
    m = FedMarket()
    m.open("alice", deposit=1_000_000)
    m.open("bob", capacity=100)
    m.sell("bob", 2, 100)

    placed = m.buy("alice", 5, market=True, tif="IOC")

    statuses = [(msg["status"], msg["price"]) for _, _, msg in m.messages("orders")]
    assert statuses == [
        ("new", None),
        ("filled", 100),
        ("partially_filled", None),
        ("cancelled", None),
    ]
    assert m.messages("orders")[-1][2]["order_id"] == str(placed.id)


# -- trades and candles ---------------------------------------------------------------


def _trade_at(m: FedMarket, price: int, qty: int, at: int) -> None:
    """bob rests a sell just before ``at``; alice takes all of it at ``at``."""
    m.sell("bob", qty, price, at=at - 1)
    m.buy("alice", qty, price, at=at)


def test_candles_hold_exact_ohlcv_per_interval_aligned_to_the_epoch() -> None:
    m = FedMarket()
    m.open("alice", deposit=10**9)
    m.open("bob", capacity=100)

    _trade_at(m, 100, 2, T1 + SECOND // 5)
    _trade_at(m, 103, 1, T1 + SECOND // 2)
    assert m.messages("candles." + CPU) == [
        ("candles." + CPU, None, candle(CPU, 1, T1, (100, 103, 100, 103), 3)),
        ("candles." + CPU, None, candle(CPU, 60, T1, (100, 103, 100, 103), 3)),
    ]
    _trade_at(m, 99, 3, T1 + 1200 * SECOND // 1000)
    _trade_at(m, 101, 4, T1 + 61 * SECOND)

    seconds = [msgspec.structs.astuple(c) for c in m.md.candles(CPU, 1, 10)]
    minutes = [msgspec.structs.astuple(c) for c in m.md.candles(CPU, 60, 10)]
    assert seconds == [
        (CPU, 1, T1, 100, 103, 100, 103, 3),
        (CPU, 1, T1 + SECOND, 99, 99, 99, 99, 3),
        (CPU, 1, T1 + 61 * SECOND, 101, 101, 101, 101, 4),
    ]
    assert minutes == [
        (CPU, 60, T1, 100, 103, 99, 99, 6),
        (CPU, 60, T1 + MINUTE, 101, 101, 101, 101, 4),
    ]
    assert m.md.candles(CPU, 1, 1) == [
        CandleMessage(CPU, 1, T1 + 61 * SECOND, 101, 101, 101, 101, 4)
    ]
    with pytest.raises(ValueError, match="interval"):
        m.md.candles(CPU, 5, 10)


def test_a_sweep_sends_each_trade_and_each_changed_candle_once() -> None:
    m = FedMarket()
    m.open("alice", deposit=10**9)
    m.open("bob", capacity=100)
    for price in (100, 101, 102):
        m.sell("bob", 1, price, at=T1 + price)

    m.buy("alice", 3, 102, at=T1 + SECOND)
    ts = m.engine.now

    assert channels(m).count("trades." + CPU) == 3
    assert m.messages("candles." + CPU) == [
        ("candles." + CPU, None, candle(CPU, 1, ts, (100, 102, 100, 102), 3)),
        ("candles." + CPU, None, candle(CPU, 60, T1, (100, 102, 100, 102), 3)),
    ]
    assert [t.price for t in m.md.recent_trades(CPU, 2)] == [101, 102]
    assert m.md.recent_trades(CPU, 0) == []
    assert m.md.recent_trades(CPU, 10)[0] == TradeMessage(CPU, 1, 100, 1, "buy", ts)


def test_history_is_bounded_by_the_options() -> None:
    m = FedMarket(recent_trades=2, candle_intervals=(1,), candle_history=2)
    m.open("alice", deposit=10**9)
    m.open("bob", capacity=100)
    for i in range(5):
        _trade_at(m, 100 + i, 1, T1 + i * SECOND)

    assert [t.price for t in m.md.recent_trades(CPU, 100)] == [103, 104]
    assert [c.open for c in m.md.candles(CPU, 1, 100)] == [103, 104]
    with pytest.raises(UnknownSymbol):
        m.md.recent_trades("nope", 1)
    with pytest.raises(ValueError, match="positive"):
        MarketData(m.engine, recent_trades=0)
    with pytest.raises(ValueError, match="interval"):
        MarketData(m.engine, candle_intervals=(0,))


# -- auctions and phases --------------------------------------------------------------


def test_a_call_phase_publishes_indicative_prices_then_the_opening_auction() -> None:
    m = FedMarket()
    m.open("alice", deposit=1_000_000)
    m.open("bob", capacity=100)
    m.set_phase("pre_open")
    assert m.messages() == [
        (
            "phases",
            None,
            {
                "type": "phase",
                "symbol": CPU,
                "phase": "pre_open",
                "old_phase": "continuous",
                "ts": m.engine.now,
                "interval_ms": None,
            },
        ),
        (
            "auction." + CPU,
            None,
            {
                "type": "auction",
                "symbol": CPU,
                "indicative": True,
                "price": None,
                "volume": 0,
                "surplus": 0,
                "best_bid": None,
                "best_ask": None,
                "kind": None,
                "ts": m.engine.now,
            },
        ),
    ]
    buy = m.buy("alice", 5, 101)
    sell = m.sell("bob", 3, 99)
    indicative = m.messages("auction." + CPU)

    m.set_phase("continuous")
    ts = m.engine.now

    assert indicative == [
        (
            "auction." + CPU,
            None,
            {
                "type": "auction",
                "symbol": CPU,
                "indicative": True,
                "price": 101,
                "volume": 3,
                "surplus": 2,
                "best_bid": 101,
                "best_ask": 99,
                "kind": None,
                "ts": ts - STEP,
            },
        )
    ]
    assert channels(m) == [
        "auction." + CPU,
        "trades." + CPU,
        "orders",
        "fills",
        "orders",
        "fills",
        "leases",
        "leases",
        "phases",
        "book." + CPU,
        "candles." + CPU,
        "candles." + CPU,
        "balance",
    ]
    messages = [msg for _, _, msg in m.messages()]
    assert messages[0]["indicative"] is False
    assert (messages[0]["kind"], messages[0]["price"]) == ("opening", 101)
    assert messages[1]["taker_side"] is None
    assert messages[2] == order(buy.id, CPU, "buy", "partially_filled", 101, 3, 2, ts)
    assert messages[3] == fill(buy.id, 1, CPU, "buy", 101, 3, 0, "auction", ts)
    assert messages[4] == order(sell.id, CPU, "sell", "filled", 99, 3, 0, ts)
    assert messages[5] == fill(sell.id, 1, CPU, "sell", 101, 3, 0, "auction", ts)
    assert messages[6] == spot_lease(1, CPU, "alice", "bob", 3, 101, ts)
    assert (messages[9]["bids"], messages[9]["asks"]) == ([[101, 2]], [[99, 0]])
    assert messages[12] == balance(1_000_000 - 505, 202, 303, ts)


def test_a_scheduled_phase_change_is_announced_on_the_phases_channel() -> None:
    m = FedMarket()
    at = m.now + HOUR

    m.apply(SchedulePhase(GPU, "batch", at, 250))

    assert m.messages() == [
        (
            "phases",
            None,
            {
                "type": "phase_scheduled",
                "symbol": GPU,
                "phase": "batch",
                "at": at,
                "interval_ms": 250,
                "ts": m.engine.now,
            },
        )
    ]


# -- futures: instruments and leases ----------------------------------------------

FUTURES = MarketConfig(
    classes=[
        ResourceClass(
            "cpu",
            lot_cu=100,
            tick=1,
            futures=FuturesTerms(
                list_ahead_hours=0, gate_seconds=300, closing_call_seconds=60
            ),
        )
    ]
)


def test_a_future_is_listed_settled_delivered_as_leases_and_forgotten() -> None:
    m = FedMarket(FUTURES)
    start = (m.now // HOUR + 2) * HOUR
    m.apply(ListFuture("cpu", start))
    ((_, _, listed),) = m.messages()
    symbol = listed["symbol"]
    m.open("carol", deposit=10_000, roles=("consumer",))
    m.open("pete", roles=("provider",))
    m.apply(SetCapacity("pete", symbol, 10))
    m.sell("pete", 5, 100, symbol=symbol)
    m.buy("carol", 5, 100, symbol=symbol)
    m.subscribe(symbol, None)

    m.tick(at=start)
    delivered = m.messages()
    m.tick(at=start + HOUR)
    ended = m.messages()

    assert listed == {
        "type": "listed",
        "symbol": symbol,
        "resource_class": "cpu",
        "start": start,
        "end": start + HOUR,
        "closing_call_at": start - 6 * MINUTE,
        "gate_at": start - 5 * MINUTE,
        "ts": listed["ts"],
    }
    instruments = [msg for c, _, msg in delivered + ended if c == "instruments"]
    assert instruments == [
        {"type": "settlement", "symbol": symbol, "price": 100, "ts": start},
        {
            "type": "delivery",
            "symbol": symbol,
            "status": "started",
            "lots": 5,
            "ts": start,
        },
        {
            "type": "delivery",
            "symbol": symbol,
            "status": "ended",
            "lots": None,
            "ts": start + HOUR,
        },
    ]
    lease = {
        "type": "lease",
        "lease_id": 1,
        "symbol": symbol,
        "status": "active",
        "consumer": "carol",
        "provider": "pete",
        "lots": 5,
        "price": 100,
        "start": start,
        "end": start + HOUR,
        "ts": start,
    }
    expired = {**lease, "status": "expired", "ts": start + HOUR}
    assert [(a, msg) for c, a, msg in delivered + ended if c == "leases"] == [
        ("carol", lease),
        ("pete", lease),
        ("carol", expired),
        ("pete", expired),
    ]
    assert ("balance", "pete", balance(500, 0, 0, start + HOUR)) in ended
    assert [msg["phase"] for c, _, msg in delivered if c == "phases"] == [
        "closing",
        "closed",
    ]
    with pytest.raises(UnknownSymbol):
        m.md.book_snapshot(symbol, None)
    with pytest.raises(UnknownSymbol):
        m.md.candles(symbol, 60, 1)


# -- properties over random flows -------------------------------------------------


class Client:
    """What a client following every account's private channels knows."""

    def __init__(self, m: FedMarket) -> None:
        ledger = m.engine.ledger
        self.balances = {
            name: (ledger.available[i], ledger.held[i], ledger.escrow[i])
            for i, name in enumerate(ledger.names)
        }
        self.orders: dict[int, tuple[str, int | None, int, int]] = {}
        self.filled: dict[int, int] = {}
        self.read = 0

    def follow(self, m: FedMarket) -> None:
        """Read the publications that came since the last call."""
        for p in m.publications[self.read :]:
            msg = msgspec.json.decode(p.data)
            account = p.account
            if p.channel == "balance":
                assert account is not None
                self.balances[account] = (msg["available"], msg["held"], msg["escrow"])
            elif p.channel == "orders":
                assert account is not None
                order_id = int(msg["order_id"])
                if msg["leaves"]:
                    self.orders[order_id] = (
                        account,
                        msg["price"],
                        msg["filled"],
                        msg["leaves"],
                    )
                else:
                    self.orders.pop(order_id, None)
            elif p.channel == "fills":
                order_id = int(msg["order_id"])
                self.filled[order_id] = self.filled.get(order_id, 0) + msg["qty"]
        self.read = len(m.publications)

    def check(self, m: FedMarket) -> None:
        ledger = m.engine.ledger
        for i, name in enumerate(ledger.names):
            assert self.balances.get(name, (0, 0, 0)) == (
                ledger.available[i],
                ledger.held[i],
                ledger.escrow[i],
            ), name
        engine_orders = {
            o.order_id: (ledger.names[o.account], o.price, o.filled, o.leaves)
            for o in m.engine.orders.values()
        }
        assert self.orders == engine_orders
        assert m.md.accounts.orders.keys() == m.engine.orders.keys()
        for order_id, (_, _, filled, _) in self.orders.items():
            assert self.filled.get(order_id, 0) == filled


@pytest.mark.parametrize("seed", range(5))
def test_private_channels_tell_each_account_all_its_orders_fills_and_balances(
    seed: int,
) -> None:
    rng = random.Random(seed)
    m = FedMarket()
    client = Client(m)

    for _ in range(800):
        random_flow(m, rng, 1, releases=True, call_phases=True)
        client.follow(m)
        client.check(m)

    published = sum(p.channel.startswith("trades.") for p in m.publications)
    happened = sum(isinstance(e, Trade | AuctionTrade) for e in m.events)
    assert published == happened > 0


def test_order_tracking_shrinks_back_when_the_orders_end() -> None:
    m = FedMarket()
    random_flow(m, random.Random(3), 400, call_phases=True)
    assert m.md.accounts.orders  # something is open

    for symbol in (CPU, GPU):
        if m.engine.instruments[symbol].phase != "closed":
            m.apply(SetPhase(symbol, "closed"))

    assert m.engine.orders == {}
    assert m.md.accounts.orders == {}
    # Spot leases live until they end; then nothing of them is kept either.
    m.tick(at=m.engine.now + LEASE)
    assert m.engine.ledger.escrows == {}
    assert m.md.accounts.leases == {}
