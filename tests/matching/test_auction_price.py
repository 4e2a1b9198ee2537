"""The uniform clearing price of a call auction: volume, surplus and tie rules."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.auction import Clearing, clearing_price
from matching.book import Book
from matching.order import BUY, SELL, Order

Levels = list[tuple[int, int]]


@pytest.mark.parametrize(
    ("bids", "asks", "reference", "expected"),
    [
        # The largest executable volume decides.
        (
            [(202, 200), (201, 200), (200, 300)],
            [(197, 400), (198, 200), (200, 100)],
            None,
            Clearing(200, 700, 0),
        ),
        # Equal volume and surplus, all on the buy side: the highest price.
        (
            [(202, 400), (201, 200)],
            [(198, 200), (199, 300)],
            None,
            Clearing(201, 500, 100),
        ),
        # All on the sell side: the lowest price.
        (
            [(202, 300), (201, 200)],
            [(198, 200), (199, 400)],
            None,
            Clearing(199, 500, -100),
        ),
        # No surplus: the reference price decides.
        (
            [(202, 300), (201, 200)],
            [(198, 200), (199, 300)],
            200,
            Clearing(201, 500, 0),
        ),
        (
            [(202, 300), (201, 200)],
            [(198, 200), (199, 300)],
            198,
            Clearing(199, 500, 0),
        ),
        # Rationed buyers at 12: the price is 12, never above.
        ([(12, 5), (12, 5)], [(10, 5), (14, 5)], None, Clearing(12, 5, 5)),
        ([(200, 300), (200, 300)], [(200, 400)], None, Clearing(200, 400, 200)),
    ],
)
def test_clearing_price_follows_volume_surplus_and_tie_rules(
    bids: Levels, asks: Levels, reference: int | None, expected: Clearing
) -> None:
    assert clearing_price(bids, asks, reference=reference) == expected


@pytest.mark.parametrize(
    ("reference", "price"),
    [(None, 10), (5, 10), (10, 10), (11, 12), (13, 14), (14, 14), (99, 14)],
)
def test_reference_price_picks_among_candidates_with_no_surplus(
    reference: int | None, price: int
) -> None:
    # Candidates 10, 12 and 14 all trade 5 lots with no surplus.
    bids = [(14, 5)]
    asks = [(10, 5)]
    extra_bid = [(12, 0)]

    result = clearing_price(bids + extra_bid, asks, reference=reference)

    assert result == Clearing(price, 5, 0)


def test_exact_middle_between_candidates_takes_the_higher() -> None:
    assert clearing_price([(12, 5)], [(10, 5)], reference=11) == Clearing(12, 5, 0)


def test_nothing_executable_gives_no_price() -> None:
    assert clearing_price([(99, 5)], [(101, 5)]) == Clearing(None, 0, 0)
    assert clearing_price([], []) == Clearing(None, 0, 0)
    assert clearing_price([(99, 5)], [], market_buy=3) == Clearing(None, 0, 0)


def test_only_market_orders_trade_at_the_reference_price() -> None:
    assert clearing_price([], [], 7, 4, reference=150) == Clearing(150, 4, 3)
    assert clearing_price([], [], 7, 4) == Clearing(None, 0, 0)


def test_only_market_orders_executable_beside_limits_trade_at_the_reference() -> None:
    # Bid 100 and ask 110 do not cross; 5 market lots of each side do.
    assert clearing_price([(100, 3)], [(110, 3)], 5, 5, reference=104) == Clearing(
        104, 5, 0
    )


def test_market_only_price_is_kept_between_the_best_limit_bid_and_ask() -> None:
    # A reference above the ask would leave that better ask unfilled; the
    # price moves to the ask, where it may trade as well.
    assert clearing_price([(100, 3)], [(110, 3)], 5, 5, reference=120) == Clearing(
        110, 5, -3
    )
    assert clearing_price([(100, 3)], [(110, 3)], 5, 5, reference=90) == Clearing(
        100, 5, 3
    )
    assert clearing_price([(100, 3)], [(110, 3)], 5, 5) == Clearing(None, 0, 0)


def test_market_orders_are_executable_at_every_price() -> None:
    result = clearing_price([], [(100, 3), (105, 4)], market_buy=5)

    assert result == Clearing(105, 5, -2)


# -- properties ---------------------------------------------------------------------

levels = st.lists(
    st.tuples(st.integers(90, 110), st.integers(1, 50)), min_size=0, max_size=12
)


def _executable(bids: Levels, asks: Levels, mb: int, ms: int, p: int) -> int:
    demand = mb + sum(q for price, q in bids if price >= p)
    supply = ms + sum(q for price, q in asks if price <= p)
    return min(demand, supply)


@settings(max_examples=400, deadline=None)
@given(
    levels,
    levels,
    st.integers(0, 30),
    st.integers(0, 30),
    st.none() | st.integers(85, 115),
)
def test_clearing_volume_is_the_most_any_price_can_trade(
    bids: Levels, asks: Levels, mb: int, ms: int, reference: int | None
) -> None:
    result = clearing_price(bids, asks, mb, ms, reference)

    prices = {p for p, _ in bids + asks}
    most = max((_executable(bids, asks, mb, ms, p) for p in prices), default=0)
    if prices and most <= min(mb, ms) and reference is None:
        # Only market orders would trade, and there is no price to trade at.
        assert result == Clearing(None, 0, 0)
    elif prices:
        assert result.volume == most
    if result.price is not None and prices:
        assert result.volume == _executable(bids, asks, mb, ms, result.price)
        # Every order strictly better than the price fits in the volume, unless
        # the market orders of a side are more than the volume on their own.
        if mb <= result.volume and ms <= result.volume:
            assert mb + sum(q for p, q in bids if p > result.price) <= result.volume
            assert ms + sum(q for p, q in asks if p < result.price) <= result.volume


@settings(max_examples=300, deadline=None)
@given(
    levels,
    levels,
    st.integers(0, 30),
    st.integers(0, 30),
    st.none() | st.integers(85, 115),
    st.randoms(),
)
def test_arrival_order_does_not_change_price_or_volume(
    bids: Levels,
    asks: Levels,
    mb: int,
    ms: int,
    reference: int | None,
    rnd: random.Random,
) -> None:
    shuffled_bids = bids[:]
    shuffled_asks = asks[:]
    rnd.shuffle(shuffled_bids)
    rnd.shuffle(shuffled_asks)

    assert clearing_price(bids, asks, mb, ms, reference) == clearing_price(
        shuffled_bids, shuffled_asks, mb, ms, reference
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from((0, 1)), st.integers(90, 110), st.integers(1, 9))
    ),
    st.lists(st.integers(0, 1000)),
    st.none() | st.integers(85, 115),
)
def test_clearing_over_the_crossed_levels_equals_clearing_over_the_whole_book(
    orders: list[tuple[int, int, int]], removals: list[int], reference: int | None
) -> None:
    book = Book()
    resting = []
    for i, (side, price, qty) in enumerate(orders):
        order = Order(i, 0, side, price, qty, 0, 0, 0, 0, 0, False, False, None, "X")
        book.add(order)
        resting.append(order)
    # Removals leave stale prices in the heaps, which the walk must skip.
    for k in removals:
        if resting:
            book.remove(resting.pop(k % len(resting)))

    whole = clearing_price(book.levels(BUY), book.levels(SELL), reference=reference)

    assert clearing_price(*book.crossing_levels(), reference=reference) == whole
