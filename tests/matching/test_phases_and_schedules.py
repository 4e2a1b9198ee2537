"""Trading phases: what each accepts, when auctions run, and the market's timers.

Call phases (``pre_open``, ``batch``, ``closing``) collect limit GTC, GTD and
IOC orders and refuse what would have to trade on arrival; ``halted`` and
``closed`` accept only cancels. IOC orders last until the next auction; GTD
orders expire before an auction at their time; the indicative price follows
every change of a call book. Batch auctions run on their interval's grid, and
scheduled phase changes fire in time order with the expiries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from harness import (
    CPU,
    STEP,
    T0,
    Balance,
    Market,
    accepted,
    amended,
    auction_trade,
    cancelled,
    command_rejected,
    expired,
    rejected,
)

from matching import (
    MAX_TIME,
    AmendOrder,
    AuctionCleared,
    CancelOrder,
    CancelReason,
    Code,
    Command,
    Engine,
    Event,
    IndicativePrice,
    MarketConfig,
    PhaseChanged,
    PhaseScheduled,
    PlaceOrder,
    ResourceClass,
    SchedulePhase,
    SetPhase,
)
from matching.commands import Phase, TimeInForce
from matching.config import MAX_BATCH_MS

MS = 1_000_000
"""One millisecond in ns (also the harness's `STEP`)."""
AUCTION_ENDED = CancelReason.AUCTION_ENDED
CLOSED = CancelReason.CLOSED


def market_in(phase: Phase) -> Market:
    """A market with buyer ``b`` and seller ``s``, cpu-SPOT in ``phase``.

    ``batch`` gets an interval of an hour, so that no batch auction runs in a
    test that does not wait for one.
    """
    m = Market()
    m.open("b", deposit=100_000)
    m.open("s", capacity=100)
    if phase == "batch":
        m.apply(SetPhase(CPU, "batch", MAX_BATCH_MS))
    elif phase != "continuous":
        m.set_phase(phase)
    return m


def indicative(
    price: int | None, volume: int, surplus: int, bid: int | None, ask: int | None
) -> IndicativePrice:
    return IndicativePrice(CPU, price, volume, surplus, bid, ask)


def apply_changing_nothing(m: Market, command: Command) -> list[Event]:
    """Apply ``command`` to ``m``, and a tick to a twin: the two must end in the
    same state. Returns the command's events."""
    twin = m.replay()
    events = m.apply(command)
    twin.tick()
    assert m.state_hash() == twin.state_hash()
    return events


def buy(**kw: Any) -> PlaceOrder:
    """A buy of 5 lots by ``b`` on cpu-SPOT, with ``kw`` as `PlaceOrder`'s."""
    return PlaceOrder("b", CPU, "buy", 5, **kw)


# -- what each phase accepts ---------------------------------------------------------

ON_ARRIVAL_ONLY = {
    "market IOC": buy(type="market", tif="IOC"),
    "market FOK": buy(type="market", tif="FOK"),
    "market sell": PlaceOrder("s", CPU, "sell", 5, type="market"),
    "limit FOK": buy(price=100, tif="FOK"),
    "post-only GTC": buy(price=100, post_only=True),
    "post-only GTD": buy(price=100, tif="GTD", expire_at=MAX_TIME, post_only=True),
}


@pytest.mark.parametrize("kind", ON_ARRIVAL_ONLY.keys())
@pytest.mark.parametrize("phase", ["pre_open", "batch", "closing"])
def test_orders_that_must_trade_on_arrival_are_refused_in_call_phases(
    phase: Phase, kind: str
) -> None:
    m = market_in(phase)
    m.buy("b", 5, 100)
    m.sell("s", 5, 100)
    command = ON_ARRIVAL_ONLY[kind]

    events = apply_changing_nothing(m, command)

    assert events == [rejected(command.account, Code.NOT_TRADING)]


@pytest.mark.parametrize("tif", ["GTC", "GTD", "IOC"])
@pytest.mark.parametrize("phase", ["pre_open", "batch", "closing"])
def test_limit_orders_rest_in_call_phases_without_trading(
    phase: Phase, tif: TimeInForce
) -> None:
    m = market_in(phase)
    m.sell("s", 5, 99)
    expire_at = m.now + 60 * STEP if tif == "GTD" else None

    b1 = m.buy("b", 5, 100, tif=tif, expire_at=expire_at)

    # 99 and 100 both trade 5 lots with no surplus; without a reference: 99.
    assert b1.events == [
        accepted(b1.id, "b", "buy", 5, 100, tif=tif, expire_at=expire_at),
        indicative(99, 5, 0, 100, 99),
    ]
    assert m.bids() == [(100, 5)]
    assert m.asks() == [(99, 5)]
    assert m.balance("b") == Balance(available=99_500, held=500, escrow=0)


ANY_ORDER = {
    "limit GTC": buy(price=100),
    "limit IOC": buy(price=100, tif="IOC"),
    "limit FOK": buy(price=100, tif="FOK"),
    "limit GTD": buy(price=100, tif="GTD", expire_at=MAX_TIME),
    "post-only": buy(price=100, post_only=True),
    "market": buy(type="market"),
    "sell": PlaceOrder("s", CPU, "sell", 5, price=100),
}


@pytest.mark.parametrize("kind", ANY_ORDER.keys())
@pytest.mark.parametrize("phase", ["halted", "closed"])
def test_no_order_is_accepted_while_halted_or_closed(phase: Phase, kind: str) -> None:
    m = market_in(phase)
    command = ANY_ORDER[kind]

    events = apply_changing_nothing(m, command)

    assert events == [rejected(command.account, Code.NOT_TRADING)]


def test_amend_is_refused_while_halted_but_cancel_is_accepted() -> None:
    m = market_in("continuous")
    b1 = m.buy("b", 5, 100)
    m.set_phase("halted")

    amend = apply_changing_nothing(m, AmendOrder("b", b1.id, qty=3))
    cancel = m.cancel("b", b1.id)

    assert amend == [rejected("b", Code.NOT_TRADING, b1.id)]
    assert cancel == [cancelled(b1.id, "b", "buy", 100, filled=0, reason="user")]


def test_closed_instrument_has_no_open_order_left_to_amend_or_cancel() -> None:
    m = market_in("continuous")
    b1 = m.buy("b", 5, 100)
    m.set_phase("closed")

    amend = apply_changing_nothing(m, AmendOrder("b", b1.id, qty=3))
    cancel = apply_changing_nothing(m, CancelOrder("b", b1.id))

    assert amend == [rejected("b", Code.ORDER_CLOSED, b1.id)]
    assert cancel == [rejected("b", Code.ORDER_CLOSED, b1.id)]


# -- IOC orders in call phases -------------------------------------------------------


def test_ioc_order_in_pre_open_trades_in_the_auction_then_its_rest_ends() -> None:
    m = market_in("pre_open")
    i1 = m.buy("b", 10, 100, tif="IOC")
    a1 = m.sell("s", 4, 100)

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "opening", 100, 4, 6, 100, 100),
        auction_trade(1, price=100, qty=4, buy=(i1.id, "b", 6), sell=(a1.id, "s", 0)),
        cancelled(i1.id, "b", "buy", 100, filled=4, reason=AUCTION_ENDED),
        PhaseChanged(CPU, "pre_open", "continuous"),
    ]
    assert m.bids() == []
    assert m.balance("b") == Balance(available=99_600, held=0, escrow=400)


def test_ioc_order_in_batch_is_cancelled_after_an_auction_that_trades_nothing() -> None:
    m = market_in("continuous")
    start = m.now + STEP
    m.apply(SetPhase(CPU, "batch", 100), at=start)
    i1 = m.buy("b", 5, 100, tif="IOC")
    m.sell("s", 5, 101)

    events = m.tick(at=start + 100 * MS)

    # The auction trades nothing, so it publishes nothing; the IOC still ends.
    assert events == [
        cancelled(i1.id, "b", "buy", 100, filled=0, reason=AUCTION_ENDED),
        indicative(None, 0, 0, None, 101),
    ]
    assert m.balance("b") == Balance(available=100_000, held=0, escrow=0)


def test_ioc_order_in_the_closing_call_ends_with_the_closing_auction() -> None:
    m = market_in("closing")
    i1 = m.buy("b", 5, 100, tif="IOC")
    a1 = m.sell("s", 3, 100)
    a2 = m.sell("s", 2, 101)

    events = m.set_phase("closed")

    assert events == [
        AuctionCleared(CPU, "closing", 100, 3, 2, 100, 100),
        auction_trade(1, price=100, qty=3, buy=(i1.id, "b", 2), sell=(a1.id, "s", 0)),
        cancelled(i1.id, "b", "buy", 100, filled=3, reason=AUCTION_ENDED),
        PhaseChanged(CPU, "closing", "closed"),
        cancelled(a2.id, "s", "sell", 101, filled=0, reason=CLOSED),
    ]


# -- GTD orders and auctions ---------------------------------------------------------


@pytest.mark.parametrize("late", [0, STEP], ids=["at", "before"])
def test_gtd_order_expiring_at_or_before_the_opening_auction_plays_no_part_in_it(
    late: int,
) -> None:
    m = market_in("pre_open")
    expiry = m.now + 10 * STEP
    g1 = m.buy("b", 5, 101, tif="GTD", expire_at=expiry)
    b2 = m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 99)

    events = m.apply(SetPhase(CPU, "continuous"), at=expiry + late)

    assert events == [
        expired(g1.id, "b", "buy", 101),
        AuctionCleared(CPU, "opening", 99, 5, 0, 100, 99),
        auction_trade(1, price=99, qty=5, buy=(b2.id, "b", 0), sell=(a1.id, "s", 0)),
        PhaseChanged(CPU, "pre_open", "continuous"),
    ]
    assert m.balance("b") == Balance(available=99_505, held=0, escrow=495)


def test_gtd_order_expiring_at_a_batch_auction_plays_no_part_in_it() -> None:
    m = market_in("continuous")
    start = m.now + STEP
    m.apply(SetPhase(CPU, "batch", 100), at=start)
    g1 = m.buy("b", 5, 100, tif="GTD", expire_at=start + 100 * MS)
    m.sell("s", 5, 99)

    events = m.tick(at=start + 100 * MS)

    assert events == [
        expired(g1.id, "b", "buy", 100),
        indicative(None, 0, 0, None, 99),
    ]


def test_gtd_order_expiring_in_a_call_phase_updates_the_indicative_price() -> None:
    m = market_in("pre_open")
    m.buy("b", 5, 100)
    g1 = m.sell("s", 3, 99, tif="GTD", expire_at=m.now + 10 * STEP)
    m.sell("s", 2, 100)

    events = m.tick(at=m.now + 10 * STEP)

    assert events == [
        expired(g1.id, "s", "sell", 99),
        indicative(100, 2, 3, 100, 100),
    ]


# -- the indicative price ------------------------------------------------------------


def test_cancel_and_amend_in_a_call_phase_update_the_indicative_price() -> None:
    m = market_in("pre_open")
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 99)

    smaller = m.amend("b", b1.id, qty=3)
    repriced = m.amend("s", a1.id, price=101)
    gone = m.cancel("b", b1.id)

    assert smaller == [
        amended(b1.id, "b", "buy", price=(100, 100), leaves=(5, 3), kept_priority=True),
        # 99 and 100 both trade 3 with 2 lots of sellers left: the lowest.
        indicative(99, 3, -2, 100, 99),
    ]
    assert repriced == [
        amended(
            a1.id, "s", "sell", price=(99, 101), leaves=(5, 5), kept_priority=False
        ),
        indicative(None, 0, 0, 100, 101),
    ]
    assert gone == [
        cancelled(b1.id, "b", "buy", 100, filled=0, reason="user"),
        indicative(None, 0, 0, None, 101),
    ]


def test_amend_in_a_call_phase_crosses_the_book_without_trading() -> None:
    m = market_in("pre_open")
    m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 101)

    events = m.amend("s", a1.id, price=100)

    assert events == [
        amended(
            a1.id, "s", "sell", price=(101, 100), leaves=(5, 5), kept_priority=False
        ),
        indicative(100, 5, 0, 100, 100),
    ]
    assert m.bids() == [(100, 5)]
    assert m.asks() == [(100, 5)]


def test_change_that_leaves_the_indicative_as_it_was_publishes_none() -> None:
    m = market_in("pre_open")
    m.buy("b", 5, 100)
    m.sell("s", 5, 99)

    b2 = m.buy("b", 1, 90)

    assert b2.events == [accepted(b2.id, "b", "buy", 1, 90)]


def test_entering_a_call_phase_publishes_the_indicative_of_the_kept_book() -> None:
    m = market_in("continuous")
    m.buy("b", 5, 100)
    m.sell("s", 5, 101)

    events = m.set_phase("closing")

    assert events == [
        PhaseChanged(CPU, "continuous", "closing"),
        indicative(None, 0, 0, 100, 101),
    ]


# -- auctions at phase changes -------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "kind"),
    [("pre_open", "opening"), ("batch", "batch"), ("closing", "closing")],
)
def test_entering_continuous_from_a_call_phase_runs_that_phase_s_auction(
    phase: Phase, kind: str
) -> None:
    m = market_in(phase)
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 100)

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, kind, 100, 5, 0, 100, 100),
        auction_trade(1, price=100, qty=5, buy=(b1.id, "b", 0), sell=(a1.id, "s", 0)),
        PhaseChanged(CPU, phase, "continuous"),
    ]


def test_pre_open_into_batch_runs_the_opening_auction_then_batch_auctions() -> None:
    m = market_in("pre_open")
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 3, 100)
    start = m.now + STEP

    opening = m.apply(SetPhase(CPU, "batch", 50), at=start)
    a2 = m.sell("s", 2, 100)
    batch = m.tick(at=start + 50 * MS)

    assert opening == [
        AuctionCleared(CPU, "opening", 100, 3, 2, 100, 100),
        auction_trade(1, price=100, qty=3, buy=(b1.id, "b", 2), sell=(a1.id, "s", 0)),
        PhaseChanged(CPU, "pre_open", "batch", 50),
        indicative(None, 0, 0, 100, None),
    ]
    assert batch == [
        AuctionCleared(CPU, "batch", 100, 2, 0, 100, 100),
        auction_trade(2, price=100, qty=2, buy=(b1.id, "b", 0), sell=(a2.id, "s", 0)),
        indicative(None, 0, 0, None, None),
    ]


def test_closing_call_into_closed_runs_the_auction_then_cancels_the_rest() -> None:
    m = market_in("closing")
    b1 = m.buy("b", 5, 100)
    b2 = m.buy("b", 2, 98)
    a1 = m.sell("s", 3, 99)

    events = m.set_phase("closed")

    assert events == [
        AuctionCleared(CPU, "closing", 100, 3, 2, 100, 99),
        auction_trade(1, price=100, qty=3, buy=(b1.id, "b", 2), sell=(a1.id, "s", 0)),
        PhaseChanged(CPU, "closing", "closed"),
        cancelled(b1.id, "b", "buy", 100, filled=3, reason=CLOSED),
        cancelled(b2.id, "b", "buy", 98, filled=0, reason=CLOSED),
    ]
    assert m.balance("b") == Balance(available=99_700, held=0, escrow=300)


@pytest.mark.parametrize(
    ("phase", "halt"),
    [("pre_open", False), ("batch", False), ("closing", True)],
    ids=["pre_open", "batch", "closing-halted"],
)
def test_other_ways_into_closed_trade_nothing_and_cancel_every_order(
    phase: Phase, halt: bool
) -> None:
    m = market_in(phase)
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 99)
    if halt:
        m.set_phase("halted")

    events = m.set_phase("closed")

    assert events == [
        PhaseChanged(CPU, "halted" if halt else phase, "closed"),
        cancelled(b1.id, "b", "buy", 100, filled=0, reason=CLOSED),
        cancelled(a1.id, "s", "sell", 99, filled=0, reason=CLOSED),
    ]
    assert m.balance("b") == Balance(available=100_000, held=0, escrow=0)
    assert m.committed("s") == 0


# -- halts ---------------------------------------------------------------------------


def test_leaving_a_halt_with_an_uncrossed_book_and_no_ioc_runs_no_auction() -> None:
    m = market_in("pre_open")
    m.buy("b", 5, 99)
    m.sell("s", 5, 101)
    m.set_phase("halted")

    events = m.set_phase("continuous")

    assert events == [PhaseChanged(CPU, "halted", "continuous")]
    assert m.bids() == [(99, 5)]
    assert m.asks() == [(101, 5)]


def test_leaving_a_halt_with_a_crossed_book_runs_a_reopening_auction() -> None:
    m = market_in("pre_open")
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 3, 99)
    m.set_phase("halted")

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "reopening", 100, 3, 2, 100, 99),
        auction_trade(1, price=100, qty=3, buy=(b1.id, "b", 2), sell=(a1.id, "s", 0)),
        PhaseChanged(CPU, "halted", "continuous"),
    ]


def test_leaving_a_halt_while_an_ioc_order_waits_runs_a_reopening_auction() -> None:
    m = market_in("pre_open")
    i1 = m.buy("b", 5, 99, tif="IOC")
    m.sell("s", 5, 101)
    m.set_phase("halted")

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "reopening", None, 0, 0, 99, 101),
        cancelled(i1.id, "b", "buy", 99, filled=0, reason=AUCTION_ENDED),
        PhaseChanged(CPU, "halted", "continuous"),
    ]


@pytest.mark.parametrize("end", ["cancel", "close"])
def test_leaving_a_halt_after_the_ioc_order_has_ended_runs_no_auction(
    end: str,
) -> None:
    m = market_in("pre_open")
    i1 = m.buy("b", 5, 99, tif="IOC")
    if end == "cancel":
        m.cancel("b", i1.id)
    else:
        m.set_phase("closed")
    m.set_phase("halted")

    events = m.set_phase("continuous")

    assert events == [PhaseChanged(CPU, "halted", "continuous")]


def test_restored_engine_leaves_a_halt_like_the_original_after_an_ioc_ended() -> None:
    m = market_in("pre_open")
    i1 = m.buy("b", 5, 99, tif="IOC")
    m.cancel("b", i1.id)
    m.set_phase("halted")
    restored = Engine.restore(m.config, m.engine.snapshot())
    seq, ts = m.engine.seq + 1, m.now + STEP

    events = m.apply(SetPhase(CPU, "continuous"), at=ts)

    assert restored.apply(seq, ts, SetPhase(CPU, "continuous")) == events


# -- batch auctions ------------------------------------------------------------------


def batch_market(interval_ms: int = 100) -> tuple[Market, int]:
    """A market whose cpu-SPOT entered ``batch`` at the returned time."""
    m = market_in("continuous")
    start = m.now + STEP
    m.apply(SetPhase(CPU, "batch", interval_ms), at=start)
    return m, start


def test_batch_auction_runs_when_its_interval_has_passed_and_not_before() -> None:
    m, start = batch_market(100)
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 3, 99)

    early = m.tick(at=start + 100 * MS - 1)
    due = m.tick(at=start + 100 * MS)

    assert early == []
    assert due == [
        AuctionCleared(CPU, "batch", 100, 3, 2, 100, 99),
        auction_trade(1, price=100, qty=3, buy=(b1.id, "b", 2), sell=(a1.id, "s", 0)),
        indicative(None, 0, 0, 100, None),
    ]
    assert m.engine.instruments[CPU].next_batch == start + 200 * MS


def test_batch_auction_runs_before_a_command_stamped_at_its_time() -> None:
    m, start = batch_market(100)
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 100)

    a2 = m.sell("s", 5, 90, at=start + 100 * MS)

    assert a2.events == [
        AuctionCleared(CPU, "batch", 100, 5, 0, 100, 100),
        auction_trade(1, price=100, qty=5, buy=(b1.id, "b", 0), sell=(a1.id, "s", 0)),
        accepted(a2.id, "s", "sell", 5, 90),
        indicative(None, 0, 0, None, 90),
    ]


def test_batch_auction_that_can_trade_nothing_publishes_nothing() -> None:
    m, start = batch_market(100)
    m.buy("b", 5, 99)
    m.sell("s", 5, 100)

    events = m.tick(at=start + 100 * MS)

    assert events == []
    assert m.engine.instruments[CPU].next_batch == start + 200 * MS


def test_late_tick_after_several_intervals_runs_one_auction_on_the_grid() -> None:
    m, start = batch_market(100)
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 3, 100)

    late = m.tick(at=start + 350 * MS)
    a2 = m.sell("s", 2, 100)
    before_next = m.tick(at=start + 400 * MS - 1)
    at_next = m.tick(at=start + 400 * MS)

    assert late == [
        AuctionCleared(CPU, "batch", 100, 3, 2, 100, 100),
        auction_trade(1, price=100, qty=3, buy=(b1.id, "b", 2), sell=(a1.id, "s", 0)),
        indicative(None, 0, 0, 100, None),
    ]
    assert before_next == []
    assert at_next == [
        AuctionCleared(CPU, "batch", 100, 2, 0, 100, 100),
        auction_trade(2, price=100, qty=2, buy=(b1.id, "b", 0), sell=(a2.id, "s", 0)),
        indicative(None, 0, 0, None, None),
    ]


def test_batch_phase_without_an_interval_takes_its_class_interval() -> None:
    m = market_in("continuous")
    start = m.now + STEP

    events = m.apply(SetPhase(CPU, "batch"), at=start)
    m.buy("b", 5, 100)
    m.sell("s", 5, 100)
    early = m.tick(at=start + 1000 * MS - 1)
    due = m.tick(at=start + 1000 * MS)

    assert events == [
        PhaseChanged(CPU, "continuous", "batch", 1000),
        indicative(None, 0, 0, None, None),
    ]
    assert early == []
    assert [type(e) for e in due[:1]] == [AuctionCleared]


def test_instrument_configured_in_batch_runs_auctions_from_the_start() -> None:
    config = MarketConfig(
        classes=[
            ResourceClass(
                "cpu", lot_cu=100, tick=1, spot_phase="batch", batch_interval_ms=500
            )
        ]
    )
    m = Market(config)
    m.open("b", deposit=100_000)
    m.open("s", capacity=100)
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 100)

    # T0 is on the 500 ms grid counted from the epoch.
    events = m.tick(at=T0 + 500 * MS)

    assert events == [
        AuctionCleared(CPU, "batch", 100, 5, 0, 100, 100),
        auction_trade(1, price=100, qty=5, buy=(b1.id, "b", 0), sell=(a1.id, "s", 0)),
        indicative(None, 0, 0, None, None),
    ]


def test_leaving_batch_for_continuous_runs_a_last_batch_auction() -> None:
    m, _ = batch_market(100)
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 99)

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "batch", 99, 5, 0, 100, 99),
        auction_trade(1, price=99, qty=5, buy=(b1.id, "b", 0), sell=(a1.id, "s", 0)),
        PhaseChanged(CPU, "batch", "continuous"),
    ]
    assert m.tick(at=m.now + 500 * MS) == []


# -- scheduled phase changes ---------------------------------------------------------


def test_scheduled_change_happens_before_a_command_at_or_after_its_time() -> None:
    m = market_in("continuous")
    at = m.now + 10 * STEP

    scheduled = m.apply(SchedulePhase(CPU, "pre_open", at))
    early = m.tick(at=at - 1)
    b1 = m.buy("b", 5, 100, at=at + STEP)

    assert scheduled == [PhaseScheduled(CPU, "pre_open", at, None)]
    assert early == []
    assert b1.events == [
        PhaseChanged(CPU, "continuous", "pre_open"),
        accepted(b1.id, "b", "buy", 5, 100),
        indicative(None, 0, 0, 100, None),
    ]


def test_scheduled_changes_and_expiries_fire_in_time_order_not_command_order() -> None:
    m = market_in("continuous")
    t = m.now + STEP
    m.apply(SchedulePhase(CPU, "continuous", t + 40 * STEP), at=t)
    m.apply(SchedulePhase(CPU, "halted", t + 20 * STEP), at=t)
    g1 = m.buy("b", 1, 100, tif="GTD", expire_at=t + 10 * STEP, at=t)
    g2 = m.buy("b", 1, 100, tif="GTD", expire_at=t + 30 * STEP, at=t)

    events = m.tick(at=t + 50 * STEP)

    assert events == [
        expired(g1.id, "b", "buy", 100),
        PhaseChanged(CPU, "continuous", "halted"),
        expired(g2.id, "b", "buy", 100),
        PhaseChanged(CPU, "halted", "continuous"),
    ]


def test_order_expiring_at_a_scheduled_opening_plays_no_part_in_it() -> None:
    m = market_in("pre_open")
    at = m.now + 10 * STEP
    g1 = m.buy("b", 5, 101, tif="GTD", expire_at=at)
    b2 = m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 99)
    m.apply(SchedulePhase(CPU, "continuous", at))

    events = m.tick(at=at)

    assert events == [
        expired(g1.id, "b", "buy", 101),
        AuctionCleared(CPU, "opening", 99, 5, 0, 100, 99),
        auction_trade(1, price=99, qty=5, buy=(b2.id, "b", 0), sell=(a1.id, "s", 0)),
        PhaseChanged(CPU, "pre_open", "continuous"),
    ]


def test_schedules_for_the_same_time_fire_in_the_order_they_were_made() -> None:
    m = market_in("continuous")
    at = m.now + 10 * STEP
    m.apply(SchedulePhase(CPU, "halted", at))
    m.apply(SchedulePhase(CPU, "pre_open", at))

    events = m.tick(at=at)

    assert events == [
        PhaseChanged(CPU, "continuous", "halted"),
        PhaseChanged(CPU, "halted", "pre_open"),
        indicative(None, 0, 0, None, None),
    ]


def test_scheduled_batch_phase_runs_auctions_at_its_own_interval() -> None:
    m = market_in("continuous")
    at = m.now + 10 * STEP

    scheduled = m.apply(SchedulePhase(CPU, "batch", at, 20))
    changed = m.tick(at=at)
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 5, 100)
    auction = m.tick(at=at + 20 * MS)

    assert scheduled == [PhaseScheduled(CPU, "batch", at, 20)]
    assert changed == [
        PhaseChanged(CPU, "continuous", "batch", 20),
        indicative(None, 0, 0, None, None),
    ]
    assert auction[:2] == [
        AuctionCleared(CPU, "batch", 100, 5, 0, 100, 100),
        auction_trade(1, price=100, qty=5, buy=(b1.id, "b", 0), sell=(a1.id, "s", 0)),
    ]


def test_scheduled_batch_phase_passed_by_a_late_command_runs_as_at_its_time() -> None:
    m = market_in("pre_open")
    at = m.now + 10 * STEP
    m.apply(SchedulePhase(CPU, "batch", at, 20))
    b1 = m.buy("b", 5, 100)
    a1 = m.sell("s", 3, 100)

    # The opening auction at ``at``, then one batch slot (at + 20 ms) that has
    # nothing new to trade; the next slot is at + 60 ms.
    events = m.tick(at=at + 45 * MS)

    assert events == [
        AuctionCleared(CPU, "opening", 100, 3, 2, 100, 100),
        auction_trade(1, price=100, qty=3, buy=(b1.id, "b", 2), sell=(a1.id, "s", 0)),
        PhaseChanged(CPU, "pre_open", "batch", 20),
        indicative(None, 0, 0, 100, None),
    ]
    assert m.engine.instruments[CPU].next_batch == at + 60 * MS


def test_scheduled_change_to_the_phase_already_reached_does_nothing() -> None:
    m = market_in("continuous")
    at = m.now + 10 * STEP
    m.apply(SchedulePhase(CPU, "halted", at))
    m.set_phase("halted")

    events = m.tick(at=at)

    assert events == []
    assert m.engine.instruments[CPU].phase == "halted"


# -- refused phase commands ------------------------------------------------------------

LATER = 1_000 * STEP
"""How far ahead a valid schedule is, from the time it is applied at."""

REFUSED: dict[str, tuple[Callable[[int], Command], Code]] = {
    "set the phase it is in": (
        lambda now: SetPhase(CPU, "continuous"),
        Code.INVALID_PHASE,
    ),
    "set an unknown phase": (
        lambda now: SetPhase(CPU, "auction"),  # type: ignore[arg-type]
        Code.INVALID_PHASE,
    ),
    "set an interval for a phase other than batch": (
        lambda now: SetPhase(CPU, "halted", 100),
        Code.INVALID_SCHEDULE,
    ),
    "set a batch interval of 0": (
        lambda now: SetPhase(CPU, "batch", 0),
        Code.INVALID_SCHEDULE,
    ),
    "set a batch interval over an hour": (
        lambda now: SetPhase(CPU, "batch", MAX_BATCH_MS + 1),
        Code.INVALID_SCHEDULE,
    ),
    "set a batch interval that is not an int": (
        lambda now: SetPhase(CPU, "batch", 1.5),  # type: ignore[arg-type]
        Code.INVALID_SCHEDULE,
    ),
    "set a phase of an unknown symbol": (
        lambda now: SetPhase("tpu-SPOT", "halted"),
        Code.UNKNOWN_SYMBOL,
    ),
    "schedule at the current time": (
        lambda now: SchedulePhase(CPU, "halted", now),
        Code.INVALID_SCHEDULE,
    ),
    "schedule in the past": (
        lambda now: SchedulePhase(CPU, "halted", now - 1),
        Code.INVALID_SCHEDULE,
    ),
    "schedule after the last time": (
        lambda now: SchedulePhase(CPU, "halted", MAX_TIME + 1),
        Code.INVALID_SCHEDULE,
    ),
    "schedule at a time that is not an int": (
        lambda now: SchedulePhase(CPU, "halted", float(now + LATER)),  # type: ignore[arg-type]
        Code.INVALID_SCHEDULE,
    ),
    "schedule an interval for a phase other than batch": (
        lambda now: SchedulePhase(CPU, "pre_open", now + LATER, 5),
        Code.INVALID_SCHEDULE,
    ),
    "schedule a batch interval of 0": (
        lambda now: SchedulePhase(CPU, "batch", now + LATER, 0),
        Code.INVALID_SCHEDULE,
    ),
    "schedule an unknown phase": (
        lambda now: SchedulePhase(CPU, "auction", now + LATER),  # type: ignore[arg-type]
        Code.INVALID_PHASE,
    ),
    "schedule for an unknown symbol": (
        lambda now: SchedulePhase("tpu-SPOT", "halted", now + LATER),
        Code.UNKNOWN_SYMBOL,
    ),
}


@pytest.mark.parametrize("case", REFUSED.keys())
def test_refused_phase_command_changes_nothing_now_or_later(case: str) -> None:
    m = market_in("continuous")
    m.buy("b", 5, 100)
    make, code = REFUSED[case]
    command = make(m.now + STEP)
    op = "set_phase" if isinstance(command, SetPhase) else "schedule_phase"

    events = apply_changing_nothing(m, command)
    twin = m.replay()
    later = m.tick(at=m.now + 2 * LATER)
    twin.tick(at=m.now)

    assert events == [command_rejected(op, code)]
    assert later == []
    assert m.state_hash() == twin.state_hash()
    assert m.engine.instruments[CPU].phase == "continuous"


@pytest.mark.parametrize("interval_ms", [1, MAX_BATCH_MS])
def test_batch_intervals_from_one_ms_to_an_hour_are_accepted(interval_ms: int) -> None:
    m = market_in("continuous")

    events = m.apply(SetPhase(CPU, "batch", interval_ms))

    assert events[0] == PhaseChanged(CPU, "continuous", "batch", interval_ms)
    assert m.engine.instruments[CPU].next_batch == m.now + interval_ms * MS
