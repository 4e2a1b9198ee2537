"""The failure scenarios of shared/cases/scenarios.md that concern the core.

Each test replays one scenario with exact trades, books and balances. The harness
checks the engine's invariants and that no level shows a quantity of 0 or less
after every command, so "never" in a scenario holds at every step.
"""

from dataclasses import dataclass

import msgspec
import pytest
from harness import (
    CREDIT,
    GPU,
    Balance,
    Market,
    accepted,
    amended,
    cancelled,
    rejected,
    trade,
)

from matching import (
    CancelReason,
    Code,
    Command,
    ConfigError,
    Engine,
    EngineState,
    Event,
    MarketConfig,
    PhaseChanged,
    ResourceClass,
)
from matching.order import SELL

UNFILLED = CancelReason.UNFILLED


def test_s01_larger_sell_fills_both_bids_in_time_order_and_rests_its_rest() -> None:
    m = Market()
    m.open("u1", deposit=12_000)
    m.open("u2", deposit=12_000)
    m.open("u3", capacity=309)
    b1 = m.buy("u1", 100, 120)
    b2 = m.buy("u2", 100, 120)

    s1 = m.sell("u3", 309, 120)

    assert s1.events == [
        accepted(s1.id, "u3", "sell", 309, 120),
        trade(
            1,
            price=120,
            qty=100,
            taker_side="sell",
            maker=(b1.id, "u1", 0),
            taker=(s1.id, "u3", 209),
        ),
        trade(
            2,
            price=120,
            qty=100,
            taker_side="sell",
            maker=(b2.id, "u2", 0),
            taker=(s1.id, "u3", 109),
        ),
    ]
    assert m.bids() == []
    assert m.asks() == [(120, 109)]
    assert m.queue(SELL, 120) == [(s1.id, 109)]
    assert m.balance("u1") == Balance(available=0, held=0, escrow=12_000)
    assert m.balance("u2") == Balance(available=0, held=0, escrow=12_000)
    assert m.committed("u3") == 309


def test_s02_only_crossing_orders_trade_and_they_trade_at_the_maker_price() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    m.open("u3", capacity=10)
    b1 = m.buy("u1", 10, 100)

    s1 = m.sell("u2", 5, 101)
    book_after_step_2 = (m.bids(), m.asks())
    s2 = m.sell("u3", 4, 99)

    assert s1.events == [accepted(s1.id, "u2", "sell", 5, 101)]
    assert book_after_step_2 == ([(100, 10)], [(101, 5)])
    assert s2.events[1:] == [
        trade(
            1,
            price=100,
            qty=4,
            taker_side="sell",
            maker=(b1.id, "u1", 6),
            taker=(s2.id, "u3", 0),
        ),
    ]
    assert m.bids() == [(100, 6)]
    assert m.asks() == [(101, 5)]


def test_s03_cancelled_last_order_of_a_level_leaves_no_empty_level() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", deposit=10_000)
    m.open("u3", capacity=10)
    b1 = m.buy("u1", 5, 100)
    b2 = m.buy("u2", 5, 99)

    m.cancel("u2", b2.id)
    book_after_cancel = m.bids()
    s1 = m.sell("u3", 10, 98)

    assert book_after_cancel == [(100, 5)]
    assert s1.events[1:] == [
        trade(
            1,
            price=100,
            qty=5,
            taker_side="sell",
            maker=(b1.id, "u1", 0),
            taker=(s1.id, "u3", 5),
        ),
    ]
    assert m.bids() == []
    assert m.asks() == [(98, 5)]
    assert m.balance("u2") == Balance(available=10_000, held=0, escrow=0)


def test_s04_amend_after_a_partial_fill_works_on_the_open_quantity() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 10, 100)
    b1 = m.buy("u2", 4, 100, tif="IOC")

    amend = m.amend("u1", a1.id, qty=4)
    book_after_amend = m.asks()
    cancel = m.cancel("u1", a1.id)

    assert b1.events[1:] == [
        trade(
            1,
            price=100,
            qty=4,
            taker_side="buy",
            maker=(a1.id, "u1", 6),
            taker=(b1.id, "u2", 0),
        ),
    ]
    assert amend == [
        amended(
            a1.id,
            "u1",
            "sell",
            price=(100, 100),
            leaves=(6, 4),
            filled=4,
            kept_priority=True,
        )
    ]
    assert book_after_amend == [(100, 4)]
    assert cancel == [
        cancelled(a1.id, "u1", "sell", 100, filled=4, reason=CancelReason.USER)
    ]
    assert m.asks() == []
    assert m.committed("u1") == 4


def test_s05_smaller_amend_keeps_its_place_and_larger_amend_goes_to_the_back() -> None:
    m = Market()
    for name in ("u1", "u2", "u3"):
        m.open(name, capacity=10)
    m.open("u4", deposit=10_000)
    a1 = m.sell("u1", 5, 100)
    a2 = m.sell("u2", 5, 100)
    a3 = m.sell("u3", 5, 100)
    m.amend("u1", a1.id, qty=3)
    m.amend("u2", a2.id, qty=8)
    queue_before = m.queue(SELL, 100)

    b1 = m.buy("u4", 6, 100, tif="IOC")

    assert queue_before == [(a1.id, 3), (a3.id, 5), (a2.id, 8)]
    assert b1.events[1:] == [
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(b1.id, "u4", 3),
        ),
        trade(
            2,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a3.id, "u3", 2),
            taker=(b1.id, "u4", 0),
        ),
    ]
    assert m.queue(SELL, 100) == [(a3.id, 2), (a2.id, 8)]
    assert m.asks() == [(100, 10)]


def test_s06_ioc_and_market_remainders_are_cancelled_and_never_match_again() -> None:
    m = Market()
    for name in ("u1", "u3", "u6"):
        m.open(name, capacity=10)
    for name in ("u2", "u4", "u5", "u7"):
        m.open(name, deposit=10_000)
    a1 = m.sell("u1", 3, 100)

    # Step 2: the IOC fills 3 and its rest is cancelled; no bid appears.
    x1 = m.buy("u2", 5, 101, tif="IOC")
    bids_after_ioc = m.bids()
    # Step 3: nothing is left to trade with the new ask.
    a2 = m.sell("u3", 2, 101)
    # Step 4: the market sell sweeps both bids; its last lot is cancelled.
    b9 = m.buy("u4", 4, 99)
    b8 = m.buy("u5", 5, 98)
    m1 = m.sell("u6", 10, market=True, tif="IOC")
    # Step 5: the market order is terminal and never trades again.
    b7 = m.buy("u7", 1, 97)
    cancel_m1 = m.cancel("u6", m1.id)

    assert x1.events == [
        accepted(x1.id, "u2", "buy", 5, 101, tif="IOC"),
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(x1.id, "u2", 2),
        ),
        cancelled(x1.id, "u2", "buy", 101, filled=3, reason=UNFILLED),
    ]
    assert bids_after_ioc == []
    assert a2.events == [accepted(a2.id, "u3", "sell", 2, 101)]
    assert m1.events == [
        accepted(m1.id, "u6", "sell", 10, None, order_type="market", tif="IOC"),
        trade(
            2,
            price=99,
            qty=4,
            taker_side="sell",
            maker=(b9.id, "u4", 0),
            taker=(m1.id, "u6", 6),
        ),
        trade(
            3,
            price=98,
            qty=5,
            taker_side="sell",
            maker=(b8.id, "u5", 0),
            taker=(m1.id, "u6", 1),
        ),
        cancelled(m1.id, "u6", "sell", None, filled=9, reason=UNFILLED),
    ]
    assert b7.events == [accepted(b7.id, "u7", "buy", 1, 97)]
    assert cancel_m1 == [rejected("u6", Code.ORDER_CLOSED, order_id=m1.id)]
    assert m.bids() == [(97, 1)]
    assert m.asks() == [(101, 2)]
    assert m.committed("u6") == 9


def test_s07_cancel_taker_after_a_partial_fill_leaves_no_bid_resting() -> None:
    m = Market()
    m.open("u2", capacity=10)
    m.open("u1", deposit=10_000, capacity=10)
    a1 = m.sell("u2", 3, 100)
    a2 = m.sell("u1", 5, 101)

    b1 = m.buy("u1", 10, 101)

    assert b1.events == [
        accepted(b1.id, "u1", "buy", 10, 101),
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u2", 0),
            taker=(b1.id, "u1", 7),
        ),
        cancelled(b1.id, "u1", "buy", 101, filled=3, reason=CancelReason.SELF_TRADE),
    ]
    assert m.bids() == []
    assert m.asks() == [(101, 5)]
    assert m.queue(SELL, 101) == [(a2.id, 5)]
    assert m.balance("u1") == Balance(available=9_700, held=0, escrow=300)


def test_s08_filled_order_is_not_matched_again() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    m.open("u3", capacity=10)
    b1 = m.buy("u1", 2, 150)
    m.sell("u2", 2, 150, tif="IOC")

    a1 = m.sell("u3", 9, 60)

    assert not m.is_open(b1.id)
    assert a1.events == [accepted(a1.id, "u3", "sell", 9, 60)]
    assert m.asks() == [(60, 9)]
    assert m.bids() == []


def race_market() -> tuple[Market, int]:
    """u4's bid 5@100, the order that a cancel and a sell race for."""
    m = Market()
    m.open("u4", deposit=10_000)
    m.open("u5", capacity=10)
    b2 = m.buy("u4", 5, 100)
    return m, b2.id


def test_s08_race_cancel_first_cancels_the_bid_and_the_sell_fills_nothing() -> None:
    m, b2 = race_market()
    instant = m.now + 1

    cancel = m.cancel("u4", b2, at=instant)
    s5 = m.sell("u5", 5, 100, tif="IOC", at=instant)

    assert cancel == [
        cancelled(b2, "u4", "buy", 100, filled=0, reason=CancelReason.USER)
    ]
    assert s5.events == [
        accepted(s5.id, "u5", "sell", 5, 100, tif="IOC"),
        cancelled(s5.id, "u5", "sell", 100, filled=0, reason=UNFILLED),
    ]
    assert m.balance("u4") == Balance(available=10_000, held=0, escrow=0)
    assert m.balance("u5") == Balance(available=0, held=0, escrow=0)
    assert m.committed("u5") == 0
    assert m.engine.ledger.escrows == {}


def test_s08_race_fill_first_trades_and_the_cancel_is_rejected_as_closed() -> None:
    m, b2 = race_market()
    instant = m.now + 1

    s5 = m.sell("u5", 5, 100, tif="IOC", at=instant)
    cancel = m.cancel("u4", b2, at=instant)

    assert s5.events == [
        accepted(s5.id, "u5", "sell", 5, 100, tif="IOC"),
        trade(
            1,
            price=100,
            qty=5,
            taker_side="sell",
            maker=(b2, "u4", 0),
            taker=(s5.id, "u5", 0),
        ),
    ]
    assert cancel == [rejected("u4", Code.ORDER_CLOSED, order_id=b2)]
    assert m.balance("u4") == Balance(available=9_500, held=0, escrow=500)
    assert m.committed("u5") == 5


def test_s12_ioc_and_fok_orders_never_rest_or_show_in_the_book() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    m.open("u3", deposit=10_000)
    a1 = m.sell("u1", 2, 100)

    x1 = m.buy("u2", 5, 100, tif="IOC")
    book_after_ioc = (m.bids(), m.asks())
    f1 = m.buy("u3", 5, 101, tif="FOK")

    assert x1.events == [
        accepted(x1.id, "u2", "buy", 5, 100, tif="IOC"),
        trade(
            1,
            price=100,
            qty=2,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(x1.id, "u2", 3),
        ),
        cancelled(x1.id, "u2", "buy", 100, filled=2, reason=UNFILLED),
    ]
    assert book_after_ioc == ([], [])
    assert f1.events == [
        accepted(f1.id, "u3", "buy", 5, 101, tif="FOK"),
        cancelled(f1.id, "u3", "buy", 101, filled=0, reason=CancelReason.FILL_OR_KILL),
    ]
    assert (m.bids(), m.asks()) == ([], [])
    snapshot = m.engine.snapshot()
    assert all(not i.bids and not i.asks for i in snapshot.instruments)


def test_s13_events_come_in_engine_order() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    m.open("u3", capacity=10)
    start = len(m.events)

    a1 = m.sell("u1", 5, 101)
    t1 = m.buy("u2", 5, 101, tif="IOC")
    a2 = m.sell("u3", 5, 100)

    assert m.events[start:] == [
        accepted(a1.id, "u1", "sell", 5, 101),
        accepted(t1.id, "u2", "buy", 5, 101, tif="IOC"),
        trade(
            1,
            price=101,
            qty=5,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(t1.id, "u2", 0),
        ),
        accepted(a2.id, "u3", "sell", 5, 100),
    ]
    assert m.asks() == [(100, 5)]


def test_s20_cancelling_one_buy_releases_only_its_own_hold() -> None:
    # Zero fees: each buy holds price x lots. 0.5 credit a lot.
    m = Market()
    m.open("u1", deposit=63 * CREDIT + CREDIT // 2)
    lot = CREDIT // 2
    o1 = m.buy("u1", 1, lot)
    o2 = m.buy("u1", 6, lot)
    o3 = m.buy("u1", 20, lot)
    after_placing = m.balance("u1")

    m.cancel("u1", o3.id)
    after_one_cancel = m.balance("u1")
    m.cancel("u1", o1.id)
    m.cancel("u1", o2.id)

    assert after_placing == Balance(
        available=50 * CREDIT, held=13 * CREDIT + CREDIT // 2, escrow=0
    )
    assert after_one_cancel == Balance(
        available=60 * CREDIT, held=3 * CREDIT + CREDIT // 2, escrow=0
    )
    assert m.balance("u1") == Balance(
        available=63 * CREDIT + CREDIT // 2, held=0, escrow=0
    )


def test_s20_the_other_orders_stay_open_with_their_holds() -> None:
    m = Market()
    m.open("u1", deposit=63 * CREDIT + CREDIT // 2)
    lot = CREDIT // 2
    o1 = m.buy("u1", 1, lot)
    o2 = m.buy("u1", 6, lot)
    o3 = m.buy("u1", 20, lot)

    m.cancel("u1", o3.id)

    assert m.queue(0, lot) == [(o1.id, 1), (o2.id, 6)]
    holds = {o.order_id: o.leaves * o.unit_hold for o in m.engine.orders.values()}
    assert holds == {o1.id: CREDIT // 2, o2.id: 3 * CREDIT}


def test_s18_order_costing_more_than_the_balance_is_rejected_with_no_hold() -> None:
    # 100 lots at 250,001 µcr cost 25.0001 credits; the buyer has 25.
    m = Market()
    m.open("u1", deposit=25 * CREDIT)

    too_dear = m.buy("u1", 100, 250_001)
    exact = m.buy("u1", 100, 250_000)

    assert too_dear.events == [rejected("u1", Code.INSUFFICIENT_FUNDS)]
    assert exact.events == [accepted(exact.id, "u1", "buy", 100, 250_000)]
    assert m.balance("u1") == Balance(available=0, held=25 * CREDIT, escrow=0)


def test_s19_amounts_are_exact_to_the_last_micro_credit() -> None:
    # 83,333,333 lots at 20 µcr; taker fee 25 bps of 1,666,666,660 is
    # 4,166,666.65, rounded up to 4,166,667.
    m = Market()
    m.open("u1", capacity=100_000_000, symbol=GPU)
    m.open("u2", deposit=2_000_000_000)
    a1 = m.sell("u1", 100_000_000, 20, symbol=GPU)

    b1 = m.buy("u2", 83_333_333, 20, tif="IOC", symbol=GPU)

    assert b1.events[1:] == [
        trade(
            1,
            price=20,
            qty=83_333_333,
            taker_side="buy",
            maker=(a1.id, "u1", 16_666_667),
            taker=(b1.id, "u2", 0),
            buyer_fee=4_166_667,
            symbol=GPU,
        ),
    ]
    assert m.balance("u2") == Balance(
        available=2_000_000_000 - 1_666_666_660 - 4_166_667,
        held=0,
        escrow=1_666_666_660,
    )
    assert m.fee_income == 4_166_667
    assert m.asks(GPU) == [(20, 16_666_667)]


def test_s23_provider_never_commits_more_than_its_capacity() -> None:
    m = Market()
    m.open("p1", capacity=1)
    m.open("u1", deposit=10_000)
    c1 = m.sell("p1", 1, 100)
    c2 = m.sell("p1", 1, 100)
    m.buy("u1", 1, 100)

    while_delivering = m.sell("p1", 1, 100)
    m.engine.ledger.release_escrow(1, 100)
    m.check()
    after_delivery = m.sell("p1", 1, 100)

    assert c1.events == [accepted(c1.id, "p1", "sell", 1, 100)]
    assert c2.events == [rejected("p1", Code.INSUFFICIENT_CAPACITY)]
    assert while_delivering.events == [rejected("p1", Code.INSUFFICIENT_CAPACITY)]
    assert after_delivery.events == [accepted(after_delivery.id, "p1", "sell", 1, 100)]
    assert m.committed("p1") == 1


# -- S21: replay ----------------------------------------------------------------------

S21_CLASS = ResourceClass("cpu", lot_cu=2, tick=5, taker_fee_bps=10)
S21_CONFIG = MarketConfig(classes=[S21_CLASS])


@dataclass(frozen=True)
class S21Run:
    """The S21 journal run live: the market, the order ids, each step's events."""

    market: Market
    a1: int
    b2: int
    b3: int
    steps: list[list[Event]]


def s21_run() -> S21Run:
    m = Market(S21_CONFIG)
    m.open("u1", deposit=100_000, capacity=10)
    m.open("u2", deposit=100_000)
    a1 = m.sell("u1", 4, 1005)
    halt = m.set_phase("halted")
    b1 = m.buy("u2", 2, 1005)  # rejected: halted
    resume = m.set_phase("continuous")
    b2 = m.buy("u1", 4, 1005)
    b3 = m.buy("u2", 3, market=True, tif="IOC")
    steps = [a1.events, halt, b1.events, resume, b2.events, b3.events]
    return S21Run(m, a1.id, b2.id, b3.id, steps)


def test_s21_live_run_gives_the_expected_events() -> None:
    run = s21_run()

    assert run.steps == [
        [accepted(run.a1, "u1", "sell", 4, 1005)],
        [PhaseChanged("cpu-SPOT", "continuous", "halted")],
        [rejected("u2", Code.NOT_TRADING)],
        [PhaseChanged("cpu-SPOT", "halted", "continuous")],
        [
            accepted(run.b2, "u1", "buy", 4, 1005),
            cancelled(
                run.b2, "u1", "buy", 1005, filled=0, reason=CancelReason.SELF_TRADE
            ),
        ],
        # 3 lots at 1005 = 3015 µcr; the taker fee of 10 bps is 3.015 → 4.
        [
            accepted(run.b3, "u2", "buy", 3, None, order_type="market", tif="IOC"),
            trade(
                1,
                price=1005,
                qty=3,
                taker_side="buy",
                maker=(run.a1, "u1", 1),
                taker=(run.b3, "u2", 0),
                buyer_fee=4,
            ),
        ],
    ]
    assert run.market.balance("u2") == Balance(
        available=100_000 - 3_019, held=0, escrow=3_015
    )


def test_s21_replaying_the_journal_gives_the_same_events_and_state_hash() -> None:
    live = s21_run().market
    journal = msgspec.json.encode(live.journal)

    engine = Engine(S21_CONFIG)
    replayed = []
    for seq, ts, command in msgspec.json.decode(
        journal, type=list[tuple[int, int, Command]]
    ):
        replayed.extend(engine.apply(seq, ts, command))

    assert replayed == live.events
    assert engine.state_hash() == live.state_hash()


def test_s21_snapshot_restored_under_another_config_is_refused() -> None:
    live = s21_run().market
    snapshot = msgspec.msgpack.decode(
        msgspec.msgpack.encode(live.engine.snapshot()), type=EngineState
    )
    other = MarketConfig(
        classes=[ResourceClass("cpu", lot_cu=2, tick=5, taker_fee_bps=20)]
    )

    with pytest.raises(ConfigError, match="another market configuration"):
        Engine.restore(other, snapshot)
