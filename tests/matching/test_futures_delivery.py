"""A future's life after listing: closing call, gate, delivery and window end.

The buyer pays into escrow at the trade. At the gate the closing auction fixes
the settlement price and the rest of the book is cancelled. At the window's
start each net long becomes leases: its purchases in trade order, from their
own seller while it still owes lots, else from the first net short seller by
account number, at the purchase price; sellers that are not net short are paid
at once. At the window's end the leases expire, the net short sellers are paid
in full and the future is delisted.
"""

import msgspec
import pytest
from futures_harness import (
    AUTO_CONFIG,
    CALL,
    CONFIG,
    END,
    G10,
    GATE,
    MINUTE,
    START,
    W10,
    at,
    auction_trade,
    consumer,
    futures_market,
    provider,
)
from harness import (
    Balance,
    Market,
    accepted,
    cancelled,
    command_rejected,
    rejected,
)

from matching import (
    AuctionCleared,
    CancelReason,
    Code,
    Command,
    DeliveryEnded,
    DeliveryStarted,
    Engine,
    EngineState,
    EscrowReleased,
    Event,
    FutureListed,
    FuturesTerms,
    IndicativePrice,
    Lease,
    LeaseCreated,
    LeaseEnded,
    ListFuture,
    MarketConfig,
    PhaseChanged,
    ReleaseEscrow,
    ResourceClass,
    SetCapacity,
    SetPhase,
    SettlementFixed,
    Tick,
)

CLOSED = CancelReason.CLOSED


def lease(lease_id: int, consumer: str, provider: str, lots: int, price: int) -> Event:
    """A lease of the 10:00 cpu window."""
    return LeaseCreated(lease_id, W10, consumer, provider, lots, price, START, END)


def w10_market() -> Market:
    """The 10:00 cpu window listed; providers p and q (5 lots each, 10,000 µcr),
    consumers c, d and e (10,000 µcr each), opened in that order."""
    m = futures_market(("cpu", START, 1))
    provider(m, "p", {W10: 5}, deposit=10_000)
    provider(m, "q", {W10: 5}, deposit=10_000)
    for name in ("c", "d", "e"):
        consumer(m, name, 10_000)
    return m


def cross(m: Market, seller: str, buyer: str, qty: int, price: int) -> None:
    """``seller`` rests a sell of W10 that ``buyer`` takes in full."""
    m.sell(seller, qty, price, symbol=W10)
    m.buy(buyer, qty, price, symbol=W10)


def to_start(m: Market) -> list[Event]:
    """Pass the gate, then return the events of the window's start."""
    m.tick(at=GATE)
    return m.tick(at=START)


# -- closing call and gate ----------------------------------------------------------


def in_closing_call() -> tuple[Market, dict[str, int]]:
    """W10 in its closing call: c bids 2 @ 100, p offers 3 @ 110 from before the
    call; in the call d bids 2 @ 115 and q offers 1 @ 105."""
    m = w10_market()
    ids = {
        "c": m.buy("c", 2, 100, symbol=W10).id,
        "p": m.sell("p", 3, 110, symbol=W10).id,
    }
    m.tick(at=CALL)
    ids["d"] = m.buy("d", 2, 115, symbol=W10).id
    ids["q"] = m.sell("q", 1, 105, symbol=W10).id
    return m, ids


def test_closing_call_starts_one_minute_before_the_gate() -> None:
    m = w10_market()
    m.buy("c", 2, 100, symbol=W10)
    m.sell("p", 3, 110, symbol=W10)

    before = m.tick(at=CALL - 1)
    events = m.tick(at=CALL)

    assert before == []
    assert events == [
        PhaseChanged(W10, "continuous", "closing"),
        IndicativePrice(W10, None, 0, 0, 100, 110),
    ]


def test_orders_in_the_closing_call_collect_without_trading() -> None:
    m = w10_market()
    m.buy("c", 2, 100, symbol=W10)
    m.sell("p", 3, 110, symbol=W10)
    m.tick(at=CALL)

    d = m.buy("d", 2, 115, symbol=W10)
    q = m.sell("q", 1, 105, symbol=W10)

    assert d.events == [
        accepted(d.id, "d", "buy", 2, 115, symbol=W10),
        IndicativePrice(W10, 110, 2, -1, 115, 110),
    ]
    assert q.events == [
        accepted(q.id, "q", "sell", 1, 105, symbol=W10),
        IndicativePrice(W10, 110, 2, -2, 115, 105),
    ]
    assert m.bids(W10) == [(115, 2), (100, 2)]
    assert m.asks(W10) == [(105, 1), (110, 3)]


def test_gate_runs_the_closing_auction_fixes_its_price_and_cancels_the_rest() -> None:
    m, ids = in_closing_call()

    events = m.tick(at=GATE)

    # At 110 the bid at 115 and the offer at 105 fill completely; the offers
    # at 110 fill in time order.
    assert events == [
        AuctionCleared(W10, "closing", 110, 2, -2, 115, 105),
        auction_trade(
            1, W10, price=110, qty=1, buy=(ids["d"], "d", 1), sell=(ids["q"], "q", 0)
        ),
        auction_trade(
            2, W10, price=110, qty=1, buy=(ids["d"], "d", 0), sell=(ids["p"], "p", 2)
        ),
        PhaseChanged(W10, "closing", "closed"),
        cancelled(ids["c"], "c", "buy", 100, filled=0, reason=CLOSED, symbol=W10),
        cancelled(ids["p"], "p", "sell", 110, filled=1, reason=CLOSED, symbol=W10),
        SettlementFixed(W10, 110),
    ]
    assert m.bids(W10) == []
    assert m.asks(W10) == []
    assert m.balance("c") == Balance(available=10_000, held=0, escrow=0)
    assert m.balance("d") == Balance(available=10_000 - 220, held=0, escrow=220)
    assert (m.committed("p", W10), m.committed("q", W10)) == (1, 1)


def test_closing_auction_trades_are_delivered_at_the_auction_price() -> None:
    m, _ = in_closing_call()
    m.tick(at=GATE)

    events = m.tick(at=START)

    assert events == [
        DeliveryStarted(W10, 2),
        lease(1, "d", "q", 1, 110),
        lease(2, "d", "p", 1, 110),
    ]


def test_settlement_price_is_the_last_trade_when_the_closing_auction_cannot_trade() -> (
    None
):
    m = w10_market()
    cross(m, "p", "c", 1, 105)
    b = m.buy("d", 2, 100, symbol=W10)
    s = m.sell("q", 1, 110, symbol=W10)
    m.tick(at=CALL)

    events = m.tick(at=GATE)

    assert events == [
        AuctionCleared(W10, "closing", None, 0, 0, 100, 110),
        PhaseChanged(W10, "closing", "closed"),
        cancelled(b.id, "d", "buy", 100, filled=0, reason=CLOSED, symbol=W10),
        cancelled(s.id, "q", "sell", 110, filled=0, reason=CLOSED, symbol=W10),
        SettlementFixed(W10, 105),
    ]


def test_window_that_never_traded_has_no_settlement_price() -> None:
    m = w10_market()
    m.tick(at=CALL)

    events = m.tick(at=GATE)

    assert events == [
        AuctionCleared(W10, "closing", None, 0, 0, None, None),
        PhaseChanged(W10, "closing", "closed"),
        SettlementFixed(W10, None),
    ]


def test_gate_ends_trading_without_an_auction_when_there_is_no_closing_call() -> None:
    terms = FuturesTerms(list_ahead_hours=0, gate_seconds=300, closing_call_seconds=0)
    gpu = ResourceClass("gpu", lot_cu=1000, tick=10, futures=terms)
    m = Market(MarketConfig(classes=[gpu]))
    m.tick(at=at(8))
    listed = m.apply(ListFuture("gpu", START))
    m.open("p", roles=("provider",))
    m.apply(SetCapacity("p", G10, 1))
    s = m.sell("p", 1, 100, symbol=G10)

    before = m.tick(at=GATE - 1)
    events = m.tick(at=GATE)

    assert listed == [FutureListed(G10, "gpu", START, END, GATE, GATE)]
    assert before == []
    assert events == [
        PhaseChanged(G10, "continuous", "closed"),
        cancelled(s.id, "p", "sell", 100, filled=0, reason=CLOSED, symbol=G10),
        SettlementFixed(G10, None),
    ]


def test_no_order_is_accepted_after_the_gate() -> None:
    m = w10_market()
    m.tick(at=GATE)

    buy = m.buy("c", 1, 100, symbol=W10)
    sell = m.sell("p", 1, 100, symbol=W10)

    assert buy.events == [rejected("c", Code.NOT_TRADING)]
    assert sell.events == [rejected("p", Code.NOT_TRADING)]
    assert m.balance("c") == Balance(available=10_000, held=0, escrow=0)


def test_phase_of_a_future_can_change_before_its_gate_but_not_after() -> None:
    m = w10_market()

    halted = m.apply(SetPhase(W10, "halted"))
    resumed = m.apply(SetPhase(W10, "continuous"))
    m.tick(at=GATE)
    after_gate = m.apply(SetPhase(W10, "continuous"))
    m.tick(at=START)
    in_delivery = m.apply(SetPhase(W10, "halted"))

    assert halted == [PhaseChanged(W10, "continuous", "halted")]
    assert resumed == [PhaseChanged(W10, "halted", "continuous")]
    assert after_gate == [command_rejected("set_phase", Code.INVALID_PHASE)]
    assert in_delivery == [command_rejected("set_phase", Code.INVALID_PHASE)]
    assert m.engine.instruments[W10].phase == "closed"


def test_halted_future_is_closed_at_its_gate_without_an_auction() -> None:
    m = w10_market()
    b = m.buy("c", 1, 100, symbol=W10)
    m.apply(SetPhase(W10, "halted"))

    events = m.tick(at=GATE)

    assert events == [
        PhaseChanged(W10, "halted", "closed"),
        cancelled(b.id, "c", "buy", 100, filled=0, reason=CLOSED, symbol=W10),
        SettlementFixed(W10, None),
    ]


@pytest.mark.parametrize("phase", ["pre_open", "batch"])
def test_a_future_in_another_call_phase_is_closed_at_its_gate_by_its_closing_auction(
    phase: str,
) -> None:
    m = w10_market()
    m.tick(at=CALL)  # the closing call has begun; an operator moves it on
    interval = 3_600_000 if phase == "batch" else None
    m.apply(SetPhase(W10, phase, interval))  # type: ignore[arg-type]
    m.sell("p", 2, 100, symbol=W10)
    m.buy("c", 2, 110, symbol=W10)

    events = m.tick(at=GATE)

    assert events[0] == AuctionCleared(W10, "closing", 100, 2, 0, 110, 100)
    assert PhaseChanged(W10, phase, "closed") in events
    assert events[-1] == SettlementFixed(W10, 100)


# -- money at the trade -------------------------------------------------------------


def test_buyer_pays_into_escrow_at_the_trade_and_the_seller_waits() -> None:
    m = w10_market()

    cross(m, "p", "c", 3, 100)

    assert m.balance("c") == Balance(available=10_000 - 300, held=0, escrow=300)
    assert m.balance("p") == Balance(available=10_000, held=0, escrow=0)


def test_escrow_of_a_future_cannot_be_released_by_command() -> None:
    m = w10_market()
    cross(m, "p", "c", 3, 100)
    balances = (m.balance("p"), m.balance("c"))

    full = m.apply(ReleaseEscrow(1, 300))
    none = m.apply(ReleaseEscrow(1, 0))
    m.tick(at=START + 30 * MINUTE)
    in_delivery = m.apply(ReleaseEscrow(1, 300))

    locked = [command_rejected("release_escrow", Code.ESCROW_LOCKED)]
    assert full == none == in_delivery == locked
    assert (m.balance("p"), m.balance("c")) == balances
    assert 1 in m.engine.ledger.escrows


# -- delivery -----------------------------------------------------------------------


def test_at_the_start_a_net_long_becomes_a_lease_from_its_seller() -> None:
    m = w10_market()
    cross(m, "p", "c", 3, 100)

    events = to_start(m)

    assert events == [DeliveryStarted(W10, 3), lease(1, "c", "p", 3, 100)]
    assert m.engine.leases == {1: Lease(1, W10, 2, 0, 3, 100, START, END)}
    assert m.balance("c") == Balance(available=10_000 - 300, held=0, escrow=300)
    assert m.balance("p") == Balance(available=10_000, held=0, escrow=0)


def test_window_without_positions_delivers_nothing() -> None:
    m = w10_market()
    m.sell("p", 1, 100, symbol=W10)

    events = to_start(m)

    assert events == [DeliveryStarted(W10, 0)]
    assert m.engine.leases == {}


def test_purchases_from_one_seller_at_one_price_make_one_lease() -> None:
    m = w10_market()
    cross(m, "p", "c", 1, 100)
    cross(m, "p", "c", 2, 100)

    events = to_start(m)

    assert events == [DeliveryStarted(W10, 3), lease(1, "c", "p", 3, 100)]


def test_each_purchase_is_delivered_at_its_own_price() -> None:
    m = w10_market()
    cross(m, "p", "c", 1, 100)
    cross(m, "p", "c", 2, 104)

    events = to_start(m)

    assert events == [
        DeliveryStarted(W10, 3),
        lease(1, "c", "p", 1, 100),
        lease(2, "c", "p", 2, 104),
    ]


def test_consumer_who_resold_keeps_its_first_purchases_and_is_paid_at_once() -> None:
    m = w10_market()
    cross(m, "p", "c", 3, 100)
    cross(m, "c", "d", 2, 120)

    events = to_start(m)

    assert events == [
        DeliveryStarted(W10, 3),
        lease(1, "c", "p", 1, 100),
        lease(2, "d", "p", 2, 120),
        EscrowReleased(2, W10, "d", "c", 240, 0, 0),
    ]
    assert m.balance("c") == Balance(available=10_000 - 300 + 240, held=0, escrow=300)
    assert m.balance("d") == Balance(available=10_000 - 240, held=0, escrow=0)
    assert m.balance("p") == Balance(available=10_000, held=0, escrow=0)


def test_consumer_who_resold_everything_gets_no_lease() -> None:
    m = w10_market()
    cross(m, "p", "c", 3, 100)
    cross(m, "c", "d", 3, 120)

    events = to_start(m)

    assert events == [
        DeliveryStarted(W10, 3),
        lease(1, "d", "p", 3, 120),
        EscrowReleased(2, W10, "d", "c", 360, 0, 0),
    ]


def test_long_purchases_are_taken_in_trade_order() -> None:
    m = w10_market()
    cross(m, "q", "c", 2, 90)
    cross(m, "p", "c", 3, 100)
    cross(m, "c", "d", 2, 120)

    events = to_start(m)

    # c keeps 3 of its 5: the 2 from q, then 1 of the 3 from p. d's purchase
    # from c (not short) comes from the short with lots left, p.
    assert events == [
        DeliveryStarted(W10, 5),
        lease(1, "c", "q", 2, 90),
        lease(2, "c", "p", 1, 100),
        lease(3, "d", "p", 2, 120),
        EscrowReleased(3, W10, "d", "c", 240, 0, 0),
    ]


def test_resold_lots_come_from_the_first_net_short_seller_by_account_number() -> None:
    m = w10_market()
    cross(m, "q", "e", 2, 100)
    cross(m, "p", "c", 2, 100)
    cross(m, "c", "d", 2, 110)

    events = to_start(m)

    # p was opened before q: d's lots come from p although q sold first, and
    # e still gets its own seller q.
    assert events == [
        DeliveryStarted(W10, 4),
        lease(1, "d", "p", 2, 110),
        lease(2, "e", "q", 2, 100),
        EscrowReleased(3, W10, "d", "c", 220, 0, 0),
    ]


def test_a_direct_buyer_keeps_its_own_seller_before_resold_lots_are_placed() -> None:
    m = w10_market()
    cross(m, "p", "e", 2, 100)
    cross(m, "q", "c", 2, 100)
    cross(m, "c", "d", 2, 110)

    events = to_start(m)

    # d comes before e and p before q, but e bought from p directly: e keeps
    # p, and d's resold lots come from the seller left, q.
    assert events == [
        DeliveryStarted(W10, 4),
        lease(1, "d", "q", 2, 110),
        lease(2, "e", "p", 2, 100),
        EscrowReleased(3, W10, "d", "c", 220, 0, 0),
    ]


def test_provider_who_bought_back_delivers_only_its_net_short() -> None:
    m = w10_market()
    cross(m, "p", "c", 5, 100)
    cross(m, "q", "p", 2, 90)

    events = to_start(m)

    # c's 5 lots come from p while p owes (3), then from q.
    assert events == [
        DeliveryStarted(W10, 5),
        lease(1, "c", "p", 3, 100),
        lease(2, "c", "q", 2, 100),
    ]
    assert m.balance("p") == Balance(available=10_000 - 180, held=0, escrow=180)


def test_provider_who_bought_everything_back_is_paid_at_the_start() -> None:
    m = w10_market()
    cross(m, "p", "c", 3, 100)
    cross(m, "q", "p", 3, 90)

    events = to_start(m)

    assert events == [
        DeliveryStarted(W10, 3),
        lease(1, "c", "q", 3, 100),
        EscrowReleased(1, W10, "c", "p", 300, 0, 0),
    ]
    assert m.balance("p") == Balance(available=10_000 - 270 + 300, held=0, escrow=270)
    assert m.balance("c") == Balance(available=10_000 - 300, held=0, escrow=0)


# -- window end ---------------------------------------------------------------------


def test_window_end_expires_leases_pays_net_short_sellers_and_delists() -> None:
    m = w10_market()
    cross(m, "p", "c", 3, 100)
    to_start(m)

    before = m.tick(at=END - 1)
    events = m.tick(at=END)

    assert before == []
    assert events == [
        LeaseEnded(1, W10, "expired"),
        EscrowReleased(1, W10, "c", "p", 300, 0, 0),
        DeliveryEnded(W10),
    ]
    assert m.balance("p") == Balance(available=10_000 + 300, held=0, escrow=0)
    assert m.balance("c") == Balance(available=10_000 - 300, held=0, escrow=0)
    assert m.engine.leases == {}
    assert m.engine.ledger.escrows == {}


def test_delisted_future_is_gone_with_its_capacity() -> None:
    m = w10_market()
    cross(m, "p", "c", 3, 100)
    m.tick(at=END)

    snap = m.engine.snapshot()
    order = m.buy("c", 1, 100, symbol=W10)
    capacity = m.apply(SetCapacity("p", W10, 5))

    assert W10 not in m.engine.instruments
    assert [s for s, _, _ in snap.capacity + snap.committed if s == W10] == []
    assert W10 not in m.engine.ledger.capacity
    assert W10 not in m.engine.ledger.committed
    assert order.events == [rejected("c", Code.UNKNOWN_SYMBOL)]
    assert capacity == [command_rejected("set_capacity", Code.UNKNOWN_SYMBOL)]


def test_window_end_pays_every_net_short_seller_in_trade_order() -> None:
    m = w10_market()
    cross(m, "p", "c", 5, 100)
    cross(m, "q", "p", 2, 90)
    to_start(m)

    events = m.tick(at=END)

    assert events == [
        LeaseEnded(1, W10, "expired"),
        LeaseEnded(2, W10, "expired"),
        EscrowReleased(1, W10, "c", "p", 500, 0, 0),
        EscrowReleased(2, W10, "p", "q", 180, 0, 0),
        DeliveryEnded(W10),
    ]
    assert m.balance("p") == Balance(available=10_000 + 500 - 180, held=0, escrow=0)
    assert m.balance("q") == Balance(available=10_000 + 180, held=0, escrow=0)
    assert m.balance("c") == Balance(available=10_000 - 500, held=0, escrow=0)


def test_one_tick_past_the_whole_window_runs_every_step_in_order() -> None:
    m = w10_market()
    cross(m, "p", "c", 3, 100)

    events = m.tick(at=END)

    assert events == [
        PhaseChanged(W10, "continuous", "closing"),
        AuctionCleared(W10, "closing", None, 0, 0, None, None),
        PhaseChanged(W10, "closing", "closed"),
        SettlementFixed(W10, 100),
        DeliveryStarted(W10, 3),
        lease(1, "c", "p", 3, 100),
        LeaseEnded(1, W10, "expired"),
        EscrowReleased(1, W10, "c", "p", 300, 0, 0),
        DeliveryEnded(W10),
    ]


def test_block_is_delivered_at_its_start_and_ends_after_its_last_hour() -> None:
    m = futures_market(("cpu", START, 4))
    b10 = "cpu-20260302T10-4H"
    provider(m, "p", {b10: 2})
    consumer(m, "c", 10_000)
    m.sell("p", 2, 400, symbol=b10)
    m.buy("c", 2, 400, symbol=b10)
    m.tick(at=GATE)

    started = m.tick(at=START)
    before_end = m.tick(at=at(13, 59))
    ended = m.tick(at=at(14))

    assert started == [
        DeliveryStarted(b10, 2),
        LeaseCreated(1, b10, "c", "p", 2, 400, START, at(14)),
    ]
    assert before_end == []
    assert ended == [
        LeaseEnded(1, b10, "expired"),
        EscrowReleased(1, b10, "c", "p", 800, 0, 0),
        DeliveryEnded(b10),
    ]


# -- fees ---------------------------------------------------------------------------


def test_fees_are_paid_by_the_buyer_at_the_trade_and_by_the_seller_when_paid() -> None:
    m = futures_market(("gpu", START, 1))
    provider(m, "p", {G10: 5})
    consumer(m, "c", 10_000)
    consumer(m, "d", 10_000)
    m.sell("p", 4, 1_000, symbol=G10)
    taken = m.buy("c", 4, 1_000, symbol=G10)
    m.sell("c", 1, 1_200, symbol=G10)
    resold = m.buy("d", 1, 1_200, symbol=G10)
    m.tick(at=GATE)

    started = m.tick(at=START)
    ended = m.tick(at=END)

    # Buyers pay the taker rate (25 bps) at the trade: 10 on 4,000 and 3 on
    # 1,200. Sellers pay the maker rate (10 bps) when paid: 2 on 1,200 at the
    # start (c is not short) and 4 on 4,000 at the end.
    assert taken.events[-1].buyer_fee == 10  # type: ignore[union-attr]
    assert resold.events[-1].buyer_fee == 3  # type: ignore[union-attr]
    assert started == [
        DeliveryStarted(G10, 4),
        LeaseCreated(1, G10, "c", "p", 3, 1_000, START, END),
        LeaseCreated(2, G10, "d", "p", 1, 1_200, START, END),
        EscrowReleased(2, G10, "d", "c", 1_200, 2, 0),
    ]
    assert ended[-2:] == [
        EscrowReleased(1, G10, "c", "p", 4_000, 4, 0),
        DeliveryEnded(G10),
    ]
    assert m.balance("p") == Balance(available=3_996, held=0, escrow=0)
    assert m.balance("c") == Balance(available=10_000 - 4_010 + 1_198, held=0, escrow=0)
    assert m.balance("d") == Balance(available=10_000 - 1_203, held=0, escrow=0)
    assert m.fee_income == 10 + 3 + 2 + 4


def test_closing_auction_trades_pay_the_taker_rate_on_both_sides() -> None:
    m = futures_market(("gpu", START, 1))
    provider(m, "p", {G10: 5})
    consumer(m, "c", 10_000)
    m.tick(at=CALL)
    b = m.buy("c", 2, 1_000, symbol=G10)
    s = m.sell("p", 2, 1_000, symbol=G10)

    gate = m.tick(at=GATE)
    m.tick(at=END)

    # 25 bps of 2,000 is 5, for the buyer at the auction and the seller at
    # the window's end.
    assert gate[:2] == [
        AuctionCleared(G10, "closing", 1_000, 2, 0, 1_000, 1_000),
        auction_trade(
            1,
            G10,
            price=1_000,
            qty=2,
            buy=(b.id, "c", 0),
            sell=(s.id, "p", 0),
            buyer_fee=5,
        ),
    ]
    assert m.balance("c") == Balance(available=10_000 - 2_005, held=0, escrow=0)
    assert m.balance("p") == Balance(available=2_000 - 5, held=0, escrow=0)
    assert m.fee_income == 10


# -- restore ----------------------------------------------------------------------


def test_restored_engine_ends_an_hourly_window_inside_a_block_like_the_original() -> (
    None
):
    m = futures_market(("cpu", START, 4), ("cpu", START, 1))
    restored = Engine.restore(CONFIG, m.engine.snapshot())
    seq = m.engine.seq + 1

    live = m.tick(at=END)
    again = restored.apply(seq, END, Tick())

    assert DeliveryEnded(W10) in live
    assert again == live
    assert restored.state_hash() == m.state_hash()


# -- a whole day --------------------------------------------------------------------

D10, D11 = "gpu-20260302T10", "gpu-20260302T11"
D12 = "gpu-20260302T12-2H"
"""The 2-hour block [12:00, 14:00), listed by command beside the hourly windows."""


def a_futures_day() -> Market:
    """A day of gpu futures listed 24 h ahead, traded, auctioned and delivered.

    In the 10:00 window: p sells c 4 @ 1,000; c resells d 1 @ 1,100; p buys 1
    back from q @ 1,050; in the closing call c offers 1 @ 990 and q 1 @ 1,000
    against d's bid of 2 @ 1,000, which the closing auction fills at 1,000. In
    the 11:00 window p sells d 2 @ 900, and in the 12:00 block c 1 @ 1,500.
    The clock then runs in 10-minute ticks to 09:46 the next day.
    """
    m = Market(AUTO_CONFIG)
    m.tick(at=at(8))
    m.apply(ListFuture("gpu", at(12), 2))
    m.open("p", deposit=10_000, roles=("consumer", "provider"))
    m.open("q", roles=("provider",))
    m.open("c", deposit=10_000, roles=("consumer",))
    m.open("d", deposit=10_000, roles=("consumer",))
    capacity = {
        "p": [D10, D11, D12, "gpu-20260302T12", "gpu-20260302T13"],
        "q": [D10],
    }
    for name, symbols in capacity.items():
        for symbol in symbols:
            m.apply(SetCapacity(name, symbol, 5))

    m.sell("p", 4, 1_000, symbol=D10, at=at(8, 10))
    m.buy("c", 4, 1_000, symbol=D10)
    m.sell("c", 1, 1_100, symbol=D10, at=at(8, 20))
    m.buy("d", 1, 1_100, symbol=D10)
    m.sell("q", 2, 1_050, symbol=D10, at=at(8, 30))
    m.buy("p", 1, 1_050, symbol=D10)
    m.sell("p", 2, 900, symbol=D11, at=at(8, 40))
    m.buy("d", 2, 900, symbol=D11)
    m.sell("q", 1, 900, symbol=D11, at=at(8, 45))  # q has no capacity there
    m.sell("p", 1, 1_500, symbol=D12, at=at(8, 50))
    m.buy("c", 1, 1_500, symbol=D12)
    m.buy("d", 2, 1_000, symbol=D10, at=at(9, 50))
    m.sell("c", 1, 990, symbol=D10, at=at(9, 54, 30))
    m.sell("q", 1, 1_000, symbol=D10, at=at(9, 54, 40))
    for minutes in range(0, 24 * 60, 10):
        m.tick(at=at(9, 56) + minutes * MINUTE)
    return m


def test_whole_futures_day_lists_trades_auctions_delivers_and_settles() -> None:
    m = a_futures_day()

    def of(symbol: str, *kinds: type) -> list[Event]:
        return [
            e
            for e in m.events
            if isinstance(e, kinds) and getattr(e, "symbol", None) == symbol
        ]

    listed = [e for e in m.events if isinstance(e, FutureListed)]
    # 24 at 08:00 and the block, then one an hour from 09:00 to 09:00.
    assert len(listed) == 24 + 1 + 25
    assert listed[-1].symbol == "gpu-20260304T09"
    assert of(D10, AuctionCleared) == [
        AuctionCleared(D10, "closing", 1_000, 2, 0, 1_000, 990)
    ]
    assert [e for e in m.events if isinstance(e, SettlementFixed)][:5] == [
        SettlementFixed("gpu-20260302T09", None),
        SettlementFixed(D10, 1_000),
        SettlementFixed(D11, 900),
        SettlementFixed("gpu-20260302T12", None),
        SettlementFixed(D12, 1_500),
    ]
    # In the 10:00 window p is short 3 (sold 4, bought 1), q short 2 (sold 1
    # and 1); c is long 2 (bought 4, sold 2) and d long 3.
    assert of(D10, DeliveryStarted, LeaseCreated) == [
        DeliveryStarted(D10, 5),
        LeaseCreated(1, D10, "c", "p", 2, 1_000, at(10), at(11)),
        # d's own seller q first (d bought 1 from it in the auction), then the
        # rest: 1 more from q and 1 from p, at d's purchase prices.
        LeaseCreated(2, D10, "d", "q", 2, 1_000, at(10), at(11)),
        LeaseCreated(3, D10, "d", "p", 1, 1_100, at(10), at(11)),
    ]
    assert of(D11, LeaseCreated) == [
        LeaseCreated(4, D11, "d", "p", 2, 900, at(11), at(12))
    ]
    assert of(D12, LeaseCreated, LeaseEnded, DeliveryEnded) == [
        LeaseCreated(5, D12, "c", "p", 1, 1_500, at(12), at(14)),
        LeaseEnded(5, D12, "expired"),
        DeliveryEnded(D12),
    ]
    assert [
        (e.trade_id, e.seller, e.payout)
        for e in m.events
        if isinstance(e, EscrowReleased)
    ] == [
        (2, "c", 1_100),  # at 10:00: c is not short
        (6, "c", 1_000),
        (1, "p", 4_000),  # at 11:00, the end of the 10:00 window
        (3, "q", 1_050),
        (7, "q", 1_000),
        (4, "p", 1_800),  # at 12:00, the end of the 11:00 window
        (5, "p", 1_500),  # at 14:00, the end of the block
    ]
    assert m.balance("p") == Balance(available=16_250, held=0, escrow=0)
    assert m.balance("q") == Balance(available=2_050, held=0, escrow=0)
    assert m.balance("c") == Balance(available=6_600, held=0, escrow=0)
    assert m.balance("d") == Balance(available=5_100, held=0, escrow=0)
    assert m.engine.leases == {}
    assert m.engine.ledger.escrows == {}
    assert {D10, D11, D12} & m.engine.instruments.keys() == set()


def test_whole_futures_day_replays_to_the_same_events_and_state_hash() -> None:
    m = a_futures_day()

    events, final = replay_with_restore(m.journal, None)

    assert [e for step in events for e in step] == m.events
    assert final == m.state_hash()
    assert m.replay().state_hash() == m.state_hash()


def test_restore_mid_day_carries_on_to_the_same_events_and_state() -> None:
    m = a_futures_day()
    stamps = [ts for _, ts, _ in m.journal]
    reference, _ = replay_with_restore(m.journal, None)

    # Before the 10:00 window's gate, between its gate and its delivery, and
    # during its delivery.
    for moment in (at(9, 52), at(9, 57), at(10, 30)):
        split = next(i for i, ts in enumerate(stamps) if ts >= moment)
        events, final = replay_with_restore(m.journal, split)

        assert events[split:] == reference[split:], moment
        assert final == m.state_hash(), moment


def replay_with_restore(
    journal: list[tuple[int, int, Command]], split: int | None
) -> tuple[list[list[Event]], str]:
    """Apply ``journal`` to a new engine, restoring it from an encoded snapshot
    before command ``split``; return each command's events and the final hash."""
    engine = Engine(AUTO_CONFIG)
    events: list[list[Event]] = []
    for i, (seq, ts, command) in enumerate(journal):
        if i == split:
            raw = msgspec.msgpack.encode(engine.snapshot())
            snap = msgspec.msgpack.decode(raw, type=EngineState)
            engine = Engine.restore(AUTO_CONFIG, snap)
        events.append(engine.apply(seq, ts, command))
        engine.check()
    return events, engine.state_hash()
