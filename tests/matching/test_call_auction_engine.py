"""Call auctions through the engine: price, allocation, money and determinism.

Orders collect in ``pre_open`` and the opening auction runs when the instrument
enters ``continuous``. The examples give the price, the volume and who fills,
event by event; the properties check, over random books, that the auction
trades the most it can, leaves no order better than its price, does not care
about arrival order and leaves an uncrossed book. Over random flows with every
phase: each auction fills exactly the orders that priority picks, paired in
order, the last indicative price published always matches the call book, the
fast book and the reference book give the same events, and replays and
restores give the same state.
"""

from __future__ import annotations

import random
from collections import Counter

import msgspec
import pytest
from harness import (
    CONFIG,
    CPU,
    CREDIT,
    GPU,
    Balance,
    Market,
    auction_trade,
    cancelled,
    random_flow,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_book import ReferenceBook

from matching import (
    AuctionCleared,
    AuctionTrade,
    CancelReason,
    Engine,
    EngineState,
    EscrowReleased,
    Event,
    IndicativePrice,
    LeaseEnded,
    PhaseChanged,
    PlaceOrder,
    ReleaseEscrow,
)
from matching.auction import clearing_price
from matching.commands import Side
from matching.order import BUY, SELL

OPENED = PhaseChanged(CPU, "pre_open", "continuous")


def pre_open(reference: int | None = None) -> Market:
    """A market with buyer ``b`` and seller ``s`` and cpu-SPOT in ``pre_open``.

    With ``reference``, one lot trades at that price in continuous trading
    first, so the auction has it as its reference price.
    """
    m = Market()
    m.open("b", deposit=10 * CREDIT)
    m.open("s", capacity=10_000)
    if reference is not None:
        m.buy("b", 1, reference)
        m.sell("s", 1, reference)
    m.set_phase("pre_open")
    return m


# -- the price, the volume and who fills --------------------------------------------


def test_opening_auction_trades_at_the_price_with_the_largest_volume() -> None:
    m = pre_open()
    b1 = m.buy("b", 200, 202)
    b2 = m.buy("b", 200, 201)
    b3 = m.buy("b", 300, 200)
    a1 = m.sell("s", 400, 197)
    a2 = m.sell("s", 200, 198)
    a3 = m.sell("s", 100, 200)

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "opening", 200, 700, 0, 202, 197),
        auction_trade(
            1, price=200, qty=200, buy=(b1.id, "b", 0), sell=(a1.id, "s", 200)
        ),
        auction_trade(2, price=200, qty=200, buy=(b2.id, "b", 0), sell=(a1.id, "s", 0)),
        auction_trade(
            3, price=200, qty=200, buy=(b3.id, "b", 100), sell=(a2.id, "s", 0)
        ),
        auction_trade(4, price=200, qty=100, buy=(b3.id, "b", 0), sell=(a3.id, "s", 0)),
        OPENED,
    ]
    assert m.bids() == []
    assert m.asks() == []
    assert m.balance("b") == Balance(10 * CREDIT - 140_000, held=0, escrow=140_000)


def test_tie_with_buyers_left_over_everywhere_takes_the_highest_price() -> None:
    m = pre_open()
    b1 = m.buy("b", 400, 202)
    b2 = m.buy("b", 200, 201)
    a1 = m.sell("s", 200, 198)
    a2 = m.sell("s", 300, 199)

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "opening", 201, 500, 100, 202, 198),
        auction_trade(
            1, price=201, qty=200, buy=(b1.id, "b", 200), sell=(a1.id, "s", 0)
        ),
        auction_trade(
            2, price=201, qty=200, buy=(b1.id, "b", 0), sell=(a2.id, "s", 100)
        ),
        auction_trade(
            3, price=201, qty=100, buy=(b2.id, "b", 100), sell=(a2.id, "s", 0)
        ),
        OPENED,
    ]
    assert m.bids() == [(201, 100)]
    assert m.asks() == []


def test_tie_with_sellers_left_over_everywhere_takes_the_lowest_price() -> None:
    m = pre_open()
    b1 = m.buy("b", 300, 202)
    b2 = m.buy("b", 200, 201)
    a1 = m.sell("s", 200, 198)
    a2 = m.sell("s", 400, 199)

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "opening", 199, 500, -100, 202, 198),
        auction_trade(
            1, price=199, qty=200, buy=(b1.id, "b", 100), sell=(a1.id, "s", 0)
        ),
        auction_trade(
            2, price=199, qty=100, buy=(b1.id, "b", 0), sell=(a2.id, "s", 300)
        ),
        auction_trade(
            3, price=199, qty=200, buy=(b2.id, "b", 0), sell=(a2.id, "s", 100)
        ),
        OPENED,
    ]
    assert m.bids() == []
    assert m.asks() == [(199, 100)]


@pytest.mark.parametrize(
    ("reference", "price"),
    [
        # Strictly between 199 and 201, exactly in the middle: the higher.
        (200, 201),
        # At or below the lowest tied candidate: the lowest.
        (198, 199),
    ],
)
def test_tie_without_surplus_is_decided_by_the_last_traded_price(
    reference: int, price: int
) -> None:
    m = pre_open(reference)
    b1 = m.buy("b", 300, 202)
    b2 = m.buy("b", 200, 201)
    a1 = m.sell("s", 200, 198)
    a2 = m.sell("s", 300, 199)

    events = m.set_phase("continuous")

    # Trade 1 was the continuous trade that set the reference price.
    assert events == [
        AuctionCleared(CPU, "opening", price, 500, 0, 202, 198),
        auction_trade(
            2, price=price, qty=200, buy=(b1.id, "b", 100), sell=(a1.id, "s", 0)
        ),
        auction_trade(
            3, price=price, qty=100, buy=(b1.id, "b", 0), sell=(a2.id, "s", 200)
        ),
        auction_trade(
            4, price=price, qty=200, buy=(b2.id, "b", 0), sell=(a2.id, "s", 0)
        ),
        OPENED,
    ]
    assert m.engine.instruments[CPU].last_price == price


def test_rationed_bids_at_the_price_fill_in_time_priority() -> None:
    m = pre_open()
    b1 = m.buy("b", 5, 12)
    b2 = m.buy("b", 5, 12)
    a1 = m.sell("s", 5, 10)
    m.sell("s", 5, 14)

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "opening", 12, 5, 5, 12, 10),
        auction_trade(1, price=12, qty=5, buy=(b1.id, "b", 0), sell=(a1.id, "s", 0)),
        OPENED,
    ]
    assert m.queue(BUY, 12) == [(b2.id, 5)]
    assert m.asks() == [(14, 5)]


def test_oldest_bid_at_the_price_fills_first_and_the_next_gets_the_rest() -> None:
    m = pre_open()
    b1 = m.buy("b", 300, 200)
    b2 = m.buy("b", 300, 200)
    a1 = m.sell("s", 400, 200)

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "opening", 200, 400, 200, 200, 200),
        auction_trade(
            1, price=200, qty=300, buy=(b1.id, "b", 0), sell=(a1.id, "s", 100)
        ),
        auction_trade(
            2, price=200, qty=100, buy=(b2.id, "b", 200), sell=(a1.id, "s", 0)
        ),
        OPENED,
    ]
    assert m.queue(BUY, 200) == [(b2.id, 200)]
    assert m.asks() == []


def test_amend_to_a_larger_quantity_in_pre_open_loses_the_auction_priority() -> None:
    m = pre_open()
    b1 = m.buy("b", 3, 100)
    b2 = m.buy("b", 3, 100)
    a1 = m.sell("s", 3, 100)
    m.amend("b", b1.id, qty=4)

    events = m.set_phase("continuous")

    assert events[1:] == [
        auction_trade(1, price=100, qty=3, buy=(b2.id, "b", 0), sell=(a1.id, "s", 0)),
        OPENED,
    ]
    assert m.queue(BUY, 100) == [(b1.id, 4)]


def test_auction_without_crossing_orders_reports_no_price_and_the_best_prices() -> None:
    m = pre_open()
    m.buy("b", 5, 99)
    m.sell("s", 5, 101)

    events = m.set_phase("continuous")

    assert events == [AuctionCleared(CPU, "opening", None, 0, 0, 99, 101), OPENED]
    assert m.bids() == [(99, 5)]
    assert m.asks() == [(101, 5)]


def test_auction_trades_an_account_with_itself_since_it_has_no_taker() -> None:
    m = pre_open()
    m.open("bs", deposit=10_000, capacity=10)
    b1 = m.buy("bs", 5, 101)
    a1 = m.sell("bs", 5, 100)

    events = m.set_phase("continuous")

    assert events == [
        AuctionCleared(CPU, "opening", 100, 5, 0, 101, 100),
        auction_trade(1, price=100, qty=5, buy=(b1.id, "bs", 0), sell=(a1.id, "bs", 0)),
        OPENED,
    ]
    assert m.balance("bs") == Balance(available=9_500, held=0, escrow=500)


# -- money ---------------------------------------------------------------------------


def test_auction_buyer_pays_price_and_taker_fee_and_gets_the_rest_of_its_hold() -> None:
    # gpu-SPOT: tick 10, taker 25 bps, maker 10 bps. A buy holds, per lot, its
    # limit plus the 25 bps fee of one lot rounded up: 1020 + 3 and 1010 + 3.
    m = Market()
    m.open("b", deposit=10_000)
    m.open("s", capacity=10, symbol=GPU)
    m.set_phase("pre_open", symbol=GPU)
    b1 = m.buy("b", 3, 1020, symbol=GPU)
    b2 = m.buy("b", 2, 1010, symbol=GPU)
    a1 = m.sell("s", 4, 1000, symbol=GPU)
    assert m.balance("b") == Balance(available=10_000 - 5_095, held=5_095, escrow=0)

    events = m.set_phase("continuous", symbol=GPU)

    # 1000 and 1010 both trade 4 lots with 1 lot of buyers left: the highest.
    assert events == [
        AuctionCleared(GPU, "opening", 1010, 4, 1, 1020, 1000),
        # 3 x 1010 = 3030, fee 7.575 rounded up to 8.
        auction_trade(
            1,
            price=1010,
            qty=3,
            buy=(b1.id, "b", 0),
            sell=(a1.id, "s", 1),
            buyer_fee=8,
            symbol=GPU,
        ),
        # 1 x 1010, fee 2.525 rounded up to 3.
        auction_trade(
            2,
            price=1010,
            qty=1,
            buy=(b2.id, "b", 1),
            sell=(a1.id, "s", 0),
            buyer_fee=3,
            symbol=GPU,
        ),
        PhaseChanged(GPU, "pre_open", "continuous"),
    ]
    # b1's hold of 3 x 1023 goes, 3030 + 8 is paid; b2's hold for its filled
    # lot (1013) pays exactly 1010 + 3; its open lot keeps its hold of 1013.
    assert m.balance("b") == Balance(available=4_936, held=1_013, escrow=4_040)
    assert m.fee_income == 11
    assert m.committed("s", GPU) == 4
    assert m.bids(GPU) == [(1010, 1)]


def test_auction_seller_pays_the_taker_rate_when_its_escrow_is_released() -> None:
    m = Market()
    m.open("b", deposit=10_000)
    m.open("s", capacity=10, symbol=GPU)
    m.set_phase("pre_open", symbol=GPU)
    m.buy("b", 3, 1010, symbol=GPU)
    m.sell("s", 3, 1010, symbol=GPU)
    m.set_phase("continuous", symbol=GPU)

    events = m.apply(ReleaseEscrow(1, 3030))

    # 25 bps of 3030 is 7.575: 8, where the maker rate would have charged 4.
    assert events == [
        LeaseEnded(1, GPU, "used_up"),
        EscrowReleased(1, GPU, "b", "s", 3030, 8, 0),
    ]
    assert m.balance("s") == Balance(available=3_022, held=0, escrow=0)
    assert m.committed("s", GPU) == 0


def test_unfilled_buy_keeps_its_whole_hold_through_the_auction() -> None:
    m = pre_open()
    m.buy("b", 5, 12)
    b2 = m.buy("b", 5, 12)
    m.sell("s", 5, 10)
    m.set_phase("continuous")

    events = m.cancel("b", b2.id)

    assert events == [
        cancelled(b2.id, "b", "buy", 12, filled=0, reason=CancelReason.USER)
    ]
    assert m.balance("b") == Balance(10 * CREDIT - 60, held=0, escrow=60)


# -- properties over random call books ---------------------------------------------

Placement = tuple[Side, int, int]
"""(side, price, lots) of one limit order."""

placements = st.lists(
    st.tuples(
        st.sampled_from(("buy", "sell")), st.integers(95, 105), st.integers(1, 20)
    ),
    min_size=1,
    max_size=24,
)


def _auction(orders: list[Placement], reference: int | None = None) -> Market:
    """A pre_open market with ``orders`` placed in order (ids from its journal)."""
    m = pre_open(reference)
    for side, price, qty in orders:
        m.place("b" if side == "buy" else "s", side, qty, price)
    return m


def _most_executable(orders: list[Placement]) -> int:
    """The largest min(demand, supply) over every limit price, by brute force."""
    best = 0
    for p in {price for _, price, _ in orders}:
        demand = sum(q for side, price, q in orders if side == "buy" and price >= p)
        supply = sum(q for side, price, q in orders if side == "sell" and price <= p)
        best = max(best, min(demand, supply))
    return best


def _filled_by_level(m: Market, events: list[Event]) -> Counter[tuple[str, int]]:
    """Lots traded per (side, limit price) in ``events``."""
    limits = {
        seq: command.price
        for seq, _, command in m.journal
        if isinstance(command, PlaceOrder) and command.price is not None
    }
    filled: Counter[tuple[str, int]] = Counter()
    for event in events:
        if isinstance(event, AuctionTrade):
            filled["buy", limits[event.buy_order_id]] += event.qty
            filled["sell", limits[event.sell_order_id]] += event.qty
    return filled


@settings(max_examples=100, deadline=None)
@given(orders=placements, reference=st.one_of(st.none(), st.integers(90, 110)))
def test_opening_auction_trades_the_most_and_leaves_nothing_better_open(
    orders: list[Placement], reference: int | None
) -> None:
    m = _auction(orders, reference)
    first_trade = m.engine.trade_seq + 1

    events = m.set_phase("continuous")

    cleared = events[0]
    assert isinstance(cleared, AuctionCleared)
    assert cleared.volume == _most_executable(orders)
    trades = [e for e in events if isinstance(e, AuctionTrade)]
    assert [t.trade_id for t in trades] == list(
        range(first_trade, first_trade + len(trades))
    )
    assert sum(t.qty for t in trades) == cleared.volume
    assert all(t.price == cleared.price for t in trades)
    assert events[-1] == OPENED
    if cleared.price is not None:
        book = m.engine.instruments[CPU].book
        assert all(o.price <= cleared.price for o in book.resting(BUY))
        assert all(o.price >= cleared.price for o in book.resting(SELL))
    # The continuous book afterwards is not crossed, nor locked.
    bids, asks = m.bids(), m.asks()
    assert not bids or not asks or bids[0][0] < asks[0][0]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), orders=placements)
def test_arrival_order_changes_neither_the_price_nor_the_volume(
    data: st.DataObject, orders: list[Placement]
) -> None:
    shuffled = data.draw(st.permutations(orders), label="shuffled")
    m1 = _auction(orders)
    m2 = _auction(shuffled)

    events1 = m1.set_phase("continuous")
    events2 = m2.set_phase("continuous")

    assert events1[0] == events2[0]
    # Who fills at the price may differ; how much each price level fills may not.
    assert _filled_by_level(m1, events1) == _filled_by_level(m2, events2)
    assert (m1.bids(), m1.asks()) == (m2.bids(), m2.asks())


# -- random flows through every phase -----------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_fast_and_reference_books_give_the_same_events_through_every_phase(
    seed: int,
) -> None:
    m = Market()
    random_flow(m, random.Random(seed), 300, call_phases=True)
    fast = Engine(CONFIG)
    reference = Engine(CONFIG, book_factory=ReferenceBook)

    for seq, ts, command in m.journal:
        fast_events = fast.apply(seq, ts, command)
        reference_events = reference.apply(seq, ts, command)

        assert fast_events == reference_events, f"command {seq}: {command}"
        reference.check()
        for symbol in (CPU, GPU):
            fast_book = fast.instruments[symbol].book
            reference_book = reference.instruments[symbol].book
            for side in (BUY, SELL):
                assert fast_book.depth(side) == reference_book.depth(side)

    assert reference.state_hash() == fast.state_hash()


def test_random_flows_through_every_phase_run_every_kind_of_auction() -> None:
    # Guards the flows above: they must reach what they are meant to check.
    kinds: Counter[str] = Counter()
    for seed in range(8):
        m = Market()
        random_flow(m, random.Random(seed), 300, call_phases=True)
        kinds.update(e.kind for e in m.events if isinstance(e, AuctionCleared))
        kinds.update("trade" for e in m.events if isinstance(e, AuctionTrade))

    assert kinds.keys() == {"opening", "batch", "closing", "reopening", "trade"}


@pytest.mark.parametrize("seed", range(12))
def test_replay_and_restore_mid_way_through_every_phase_give_the_same_state(
    seed: int,
) -> None:
    rng = random.Random(seed)
    m = Market()
    random_flow(m, rng, 150, call_phases=True)
    snap = msgspec.msgpack.encode(m.engine.snapshot())
    restored = Engine.restore(CONFIG, msgspec.msgpack.decode(snap, type=EngineState))
    done, seen = len(m.journal), len(m.events)
    random_flow(m, rng, 150, call_phases=True)

    replayed = Engine(CONFIG)
    replayed_events = [
        e for seq, ts, cmd in m.journal for e in replayed.apply(seq, ts, cmd)
    ]
    restored_events = [
        e for seq, ts, cmd in m.journal[done:] for e in restored.apply(seq, ts, cmd)
    ]

    assert replayed_events == m.events
    assert replayed.state_hash() == m.state_hash()
    assert restored_events == m.events[seen:]
    assert restored.state_hash() == m.state_hash()


Queue = list[tuple[int, int, int]]
"""One side of a book as (order id, price, leaves), in priority order."""


def _queue(m: Market, symbol: str, side: int) -> Queue:
    book = m.engine.instruments[symbol].book
    return [(o.order_id, o.price, o.leaves) for o in book.resting(side)]


def _pairs(queue: Queue, volume: int) -> list[tuple[int, int]]:
    """The (order id, lots) that fill ``volume`` lots from the front of ``queue``."""
    taken = []
    for order_id, _, leaves in queue:
        if not volume:
            break
        lots = min(leaves, volume)
        taken.append((order_id, lots))
        volume -= lots
    return taken


def _expected_trades(
    bids: Queue, asks: Queue, volume: int
) -> list[tuple[int, int, int]]:
    """(buy id, sell id, lots) of an auction of ``volume`` lots: both sides taken
    in priority order and paired up in that order."""
    buys, sells = _pairs(bids, volume), _pairs(asks, volume)
    trades = []
    b = s = 0
    buy_left, sell_left = buys[0][1], sells[0][1]
    while b < len(buys):
        lots = min(buy_left, sell_left)
        trades.append((buys[b][0], sells[s][0], lots))
        buy_left -= lots
        sell_left -= lots
        if not buy_left:
            b += 1
            buy_left = buys[b][1] if b < len(buys) else 0
        if not sell_left:
            s += 1
            sell_left = sells[s][1] if s < len(sells) else 0
    return trades


def _assert_auction_follows_the_rules(
    m: Market, events: list[Event], bids: Queue, asks: Queue
) -> None:
    """``events`` start with an auction run on the book ``bids`` and ``asks``."""
    cleared = events[0]
    assert isinstance(cleared, AuctionCleared)
    orders: list[Placement] = [("buy", p, q) for _, p, q in bids]
    orders += [("sell", p, q) for _, p, q in asks]
    assert cleared.volume == (_most_executable(orders) if orders else 0)
    trades = [e for e in events if isinstance(e, AuctionTrade)]
    if cleared.price is None:
        assert trades == []
        return

    # Every order strictly better than the price fills: the volume reaches past
    # them, and the front of each queue is what fills.
    assert sum(q for _, p, q in bids if p > cleared.price) <= cleared.volume
    assert sum(q for _, p, q in asks if p < cleared.price) <= cleared.volume
    assert [(t.buy_order_id, t.sell_order_id, t.qty) for t in trades] == (
        _expected_trades(bids, asks, cleared.volume)
    )
    bps = m.engine.instruments[cleared.symbol].taker_bps
    for t in trades:
        assert t.price == cleared.price
        assert t.buyer_fee == (t.price * t.qty * bps + 9_999) // 10_000


@pytest.mark.parametrize("seed", range(12))
def test_every_auction_in_random_flows_fills_the_orders_that_priority_picks(
    seed: int,
) -> None:
    rng = random.Random(seed)
    m = Market()
    auctions = 0

    for _ in range(300):
        books = {s: (_queue(m, s, BUY), _queue(m, s, SELL)) for s in (CPU, GPU)}
        seen = len(m.events)
        random_flow(m, rng, 1, call_phases=True)
        events = m.events[seen:]

        # Timers fire first: an auction that comes first ran on the book as it
        # was before the command.
        if events and isinstance(events[0], AuctionCleared):
            auctions += 1
            _assert_auction_follows_the_rules(m, events, *books[events[0].symbol])

    assert auctions > 0


@pytest.mark.parametrize("seed", range(12))
def test_last_indicative_price_published_always_matches_the_call_book(
    seed: int,
) -> None:
    rng = random.Random(seed)
    m = Market()
    published: dict[str, IndicativePrice] = {}

    for _ in range(300):
        seen = len(m.events)
        random_flow(m, rng, 1, call_phases=True)

        for event in m.events[seen:]:
            if isinstance(event, IndicativePrice):
                # Published only when it differs from the last one.
                assert published.get(event.symbol) != event
                published[event.symbol] = event
            elif isinstance(event, PhaseChanged):
                published.pop(event.symbol, None)
        for symbol, inst in m.engine.instruments.items():
            if not inst.call:
                continue
            book = inst.book
            clearing = clearing_price(
                book.levels(BUY), book.levels(SELL), reference=inst.last_price
            )
            bids, asks = m.bids(symbol), m.asks(symbol)
            assert published.get(symbol) == IndicativePrice(
                symbol,
                clearing.price,
                clearing.volume,
                clearing.surplus,
                bids[0][0] if bids else None,
                asks[0][0] if asks else None,
            )
