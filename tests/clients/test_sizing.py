"""Sizing from a budget: quantities round down, so the cost the engine holds
(or a market buy pays) never exceeds the budget, and one lot more would not
fit. Checked against the matching core itself."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.sizing import (
    buy_cost,
    format_credits,
    max_buy_qty,
    max_market_buy_qty,
    parse_credits,
    price_on_tick,
    unit_cost,
)
from matching import (
    Deposit,
    Engine,
    MarketConfig,
    OpenAccount,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    ResourceClass,
    SetCapacity,
    Trade,
)
from matching.config import MAX_QTY
from matching.order import unit_hold

prices = st.integers(1, 10**9)
fees = st.integers(0, 1_000)
budgets = st.integers(0, 10**13)


def engine_with(budget: int, taker_bps: int, maker_bps: int = 0) -> Engine:
    engine = Engine(
        MarketConfig(
            classes=[
                ResourceClass(
                    "cpu",
                    lot_cu=100,
                    tick=1,
                    taker_fee_bps=taker_bps,
                    maker_fee_bps=maker_bps,
                )
            ]
        )
    )
    engine.apply(1, 1, OpenAccount("buyer"))
    if budget:
        engine.apply(2, 2, Deposit("buyer", budget))
    engine.apply(3, 3, OpenAccount("seller", ("provider",)))
    engine.apply(4, 4, SetCapacity("seller", "cpu-SPOT", 10**9))
    return engine


@given(price=prices, bps=fees)
def test_unit_cost_is_what_the_engine_holds_per_lot(price: int, bps: int) -> None:
    assert unit_cost(price, bps) == unit_hold(price, bps)


@given(budget=budgets, price=prices, bps=fees)
def test_max_buy_qty_fits_the_budget_and_one_lot_more_does_not(
    budget: int, price: int, bps: int
) -> None:
    qty = max_buy_qty(budget, price, bps)
    assert buy_cost(qty, price, bps) <= budget
    assert buy_cost(qty + 1, price, bps) > budget


@settings(max_examples=50, deadline=None)
@given(
    budget=st.integers(1, 10**9),
    price=st.integers(1, 10**7),
    taker=st.integers(0, 500),
    maker=st.integers(0, 500),
)
def test_the_engine_accepts_the_sized_buy_and_refuses_one_lot_more(
    budget: int, price: int, taker: int, maker: int
) -> None:
    qty = max_buy_qty(budget, price, max(taker, maker))
    if qty == 0:
        return
    engine = engine_with(budget, taker, maker)

    more = engine.apply(
        5, 5, PlaceOrder("buyer", "cpu-SPOT", "buy", qty + 1, price=price)
    )
    [rejected] = more
    assert isinstance(rejected, OrderRejected)
    # One lot more costs more than the budget, unless it passes the most
    # lots an order may have.
    too_many = qty + 1 > MAX_QTY
    assert rejected.code == ("INVALID_QUANTITY" if too_many else "INSUFFICIENT_FUNDS")
    assert engine.ledger.held[0] == 0

    placed = engine.apply(
        6, 6, PlaceOrder("buyer", "cpu-SPOT", "buy", qty, price=price)
    )
    assert type(placed[0]) is OrderAccepted
    assert engine.ledger.available[0] >= 0
    engine.check()


def test_s18_budget_24_01_at_2_credits_with_a_10_bps_fee_buys_11_lots() -> None:
    budget = parse_credits("24.01")
    assert budget == 24_010_000
    assert budget // 2_000_000 == 12  # the price alone would say 12
    assert max_buy_qty(budget, 2_000_000, 10) == 11
    assert buy_cost(11, 2_000_000, 10) == 22_022_000
    assert buy_cost(12, 2_000_000, 10) == 24_024_000 > budget


@settings(max_examples=50, deadline=None)
@given(
    budget=st.integers(1, 10**8),
    levels=st.lists(
        st.tuples(st.integers(100, 100_000), st.integers(1, 50)),
        min_size=1,
        max_size=6,
        unique_by=lambda level: level[0],
    ),
    bps=st.integers(0, 300),
)
def test_a_market_buy_of_the_sized_qty_fills_completely_within_the_budget(
    budget: int, levels: list[tuple[int, int]], bps: int
) -> None:
    asks = sorted(levels)
    qty = max_market_buy_qty(budget, asks, bps)
    if qty == 0:
        return
    engine = engine_with(budget, bps)
    seq = 5
    for price, size in asks:
        engine.apply(
            seq, seq, PlaceOrder("seller", "cpu-SPOT", "sell", size, price=price)
        )
        seq += 1

    events = engine.apply(
        seq, seq, PlaceOrder("buyer", "cpu-SPOT", "buy", qty, "market")
    )

    assert sum(e.qty for e in events if isinstance(e, Trade)) == qty
    assert not any(type(e) is OrderCancelled for e in events)
    assert engine.ledger.available[0] >= 0
    engine.check()


def test_max_market_buy_qty_walks_levels_until_the_money_runs_out() -> None:
    asks = [(1000, 3), (2000, 5)]
    # 3 lots at 1001 (fee 1 each), then 2 at 2002: 3003 + 4004 = 7007.
    assert max_market_buy_qty(7007, asks, 10) == 5
    assert max_market_buy_qty(7006, asks, 10) == 4
    assert max_market_buy_qty(10**9, asks, 10) == 8


@pytest.mark.parametrize(
    ("price", "side", "expected"), [(1003, "buy", 1000), (1003, "sell", 1005)]
)
def test_price_on_tick_never_moves_to_a_worse_price(
    price: int, side: str, expected: int
) -> None:
    assert price_on_tick(price, 5, side) == expected
    assert price_on_tick(expected, 5, side) == expected


@pytest.mark.parametrize(
    ("text", "micro"),
    [
        ("25.00", 25_000_000),
        ("0.000001", 1),
        ("1_000", 1_000_000_000),
        ("7", 7_000_000),
    ],
)
def test_parse_credits_is_exact(text: str, micro: int) -> None:
    assert parse_credits(text) == micro


@pytest.mark.parametrize("text", ["1.0000001", "-1", "abc", "nan", "inf", ""])
def test_parse_credits_refuses_what_is_not_whole_ucr(text: str) -> None:
    with pytest.raises(ValueError, match=r"credits|µcr"):
        parse_credits(text)


def test_format_credits_shows_six_decimals() -> None:
    assert format_credits(24_880_350) == "24.880350"
    assert format_credits(-1) == "-0.000001"
    assert format_credits(1_000_000_000) == "1,000.000000"
