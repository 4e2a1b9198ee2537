"""Book channels: checksums, depth windows, and client mirrors that stay equal to
the engine's book through random flows."""

from __future__ import annotations

import random
import zlib
from typing import Any

import msgspec
import pytest
from harness import CPU, GPU, STEP, random_flow
from marketdata_harness import FedMarket

from exchange.marketdata import BOOK_DEPTHS, MarketData, UnknownSymbol, checksum
from exchange.marketdata_book import BookFeed
from matching import AmendOrder, CancelOrder, PlaceOrder, Tick
from matching.book import Book
from matching.commands import Side, TimeInForce
from matching.order import BUY, SELL, Order

DEPTHS: tuple[int | None, ...] = (None, *BOOK_DEPTHS)


def decode(data: bytes) -> Any:
    return msgspec.json.decode(data)


# -- checksum -----------------------------------------------------------------------


def test_checksum_is_the_crc32_of_the_design_example() -> None:
    bids = [(1200, 10), (1199, 3)]
    asks = [(1210, 5)]

    assert checksum(bids, asks) == zlib.crc32(b"1200:10,1199:3|1210:5")


def test_checksum_covers_only_the_top_ten_levels_of_each_side() -> None:
    bids = [(100 - i, 1) for i in range(15)]
    asks = [(200 + i, 2) for i in range(12)]
    text = ",".join(f"{100 - i}:1" for i in range(10)) + "|"
    text += ",".join(f"{200 + i}:2" for i in range(10))

    assert checksum(bids, asks) == zlib.crc32(text.encode())
    assert checksum([], []) == zlib.crc32(b"|")


# -- snapshots and updates ------------------------------------------------------------


def test_a_snapshot_starts_at_seq_0_and_updates_carry_absolute_quantities() -> None:
    m = FedMarket()
    m.open("mm", deposit=10**9, capacity=1000)
    m.buy("mm", 5, 100)
    assert decode(m.md.book_snapshot(CPU, None)) == {
        "type": "book",
        "symbol": CPU,
        "seq": 1,
        "bids": [[100, 5]],
        "asks": [],
        "checksum": zlib.crc32(b"100:5|"),
        "snapshot": True,
    }

    m.buy("mm", 3, 100)

    assert m.messages("book." + CPU) == [
        (
            "book." + CPU,
            None,
            {
                "type": "book",
                "symbol": CPU,
                "seq": 2,
                "bids": [[100, 8]],
                "asks": [],
                "checksum": zlib.crc32(b"100:8|"),
            },
        )
    ]


def test_a_level_emptied_by_a_trade_is_deleted_like_a_cancelled_one() -> None:
    m = FedMarket()
    m.open("mm", deposit=10**9, capacity=1000)
    m.open("taker", deposit=10**9, capacity=1000)
    m.sell("mm", 4, 101)
    m.sell("mm", 2, 102)
    m.buy("mm", 3, 99)

    m.buy("taker", 4, 101)
    (_, _, taken) = m.messages("book." + CPU)[0]
    m.cancel("mm", m.engine.seq - 1)
    (_, _, cancelled) = m.messages("book." + CPU)[0]

    assert (taken["bids"], taken["asks"]) == ([], [[101, 0]])
    assert (cancelled["bids"], cancelled["asks"]) == ([[99, 0]], [])


def test_nothing_is_sent_when_no_level_changed() -> None:
    m = FedMarket()
    m.open("mm", deposit=10**9, capacity=1000)
    m.open("other", deposit=10**9, capacity=1000)
    m.sell("mm", 4, 101)

    m.buy("other", 2, 100, tif="IOC")  # does not cross: cancelled, never rests
    ioc = m.messages("book." + CPU)
    m.buy("other", 5, 101, tif="FOK")  # cannot fill completely: no effect at all
    fok = m.messages("book." + CPU)
    m.amend("mm", m.engine.seq - 2, qty=4, price=101)  # rejected: nothing to amend
    rejected = m.messages("book." + CPU)
    m.tick()

    assert (ioc, fok, rejected, m.messages("book." + CPU)) == ([], [], [], [])


def test_an_amend_moves_quantity_between_two_levels_in_one_update() -> None:
    m = FedMarket()
    m.open("mm", deposit=10**9, capacity=1000)
    placed = m.sell("mm", 4, 105)
    m.sell("mm", 1, 106)

    m.amend("mm", placed.id, price=106)
    (_, _, update) = m.messages("book." + CPU)[0]

    assert update["asks"] == [[105, 0], [106, 5]]


def test_a_depth_channel_deletes_a_level_pushed_out_and_restores_it_later() -> None:
    m = FedMarket()
    m.open("mm", deposit=10**9, capacity=1000)
    for price in range(91, 101):  # ten bids: 100 down to 91
        m.buy("mm", price - 90, price)
    mirror = m.subscribe(CPU, 10)

    better = m.buy("mm", 7, 101)
    entered = m.messages("book." + CPU, 10)
    m.cancel("mm", better.id)
    left = m.messages("book." + CPU, 10)
    m.buy("mm", 2, 50)  # below the window: only the full channel hears of it
    below = m.messages("book." + CPU, 10)

    assert [msg["bids"] for _, _, msg in entered] == [[[101, 7], [91, 0]]]
    assert [msg["bids"] for _, _, msg in left] == [[[101, 0], [91, 1]]]
    assert below == []
    assert m.messages("book." + CPU)[0][2]["bids"] == [[50, 2]]
    assert [msg["seq"] for _, _, msg in entered + left] == [1, 2]
    m.check_mirrors()
    assert mirror.messages == 2


def test_a_depth_channel_refills_its_window_when_a_sweep_takes_levels() -> None:
    m = FedMarket()
    m.open("mm", deposit=10**9, capacity=1000)
    m.open("taker", deposit=10**9, capacity=1000)
    for price in range(101, 116):  # fifteen asks of 1 lot: 101 up to 115
        m.sell("mm", 1, price)
    m.subscribe(CPU, 10)

    m.buy("taker", 3, 103)  # takes 101, 102 and 103: 111 to 113 come in

    (_, _, update) = m.messages("book." + CPU, 10)[0]
    assert update["asks"] == [
        [101, 0],
        [102, 0],
        [103, 0],
        [111, 1],
        [112, 1],
        [113, 1],
    ]
    m.check_mirrors()


# -- queries --------------------------------------------------------------------------


def test_book_levels_give_rest_the_full_channels_seq_and_the_best_levels() -> None:
    m = FedMarket()
    m.open("mm", deposit=10**9, capacity=1000)
    for price in (97, 98, 99):
        m.buy("mm", 1, price)
    m.sell("mm", 2, 101)

    seq, bids, asks, crc = m.md.book_levels(CPU, 2)

    assert (seq, bids, asks) == (4, [(99, 1), (98, 1)], [(101, 2)])
    assert crc == zlib.crc32(b"99:1,98:1,97:1|101:2")
    assert m.md.book_levels(CPU, None)[1] == [(99, 1), (98, 1), (97, 1)]


def test_unknown_symbols_and_depths_are_refused() -> None:
    md = MarketData(FedMarket().engine)

    with pytest.raises(UnknownSymbol):
        md.book_snapshot("nope-SPOT", None)
    with pytest.raises(UnknownSymbol):
        md.book_levels("nope-SPOT", 10)
    with pytest.raises(ValueError, match="depth"):
        md.book_snapshot(CPU, 7)
    with pytest.raises(ValueError, match="depth"):
        md.book_levels(CPU, 0)


def test_a_market_data_started_late_copies_the_books_it_finds() -> None:
    m = FedMarket()
    m.open("mm", deposit=10**9, capacity=1000)
    m.buy("mm", 5, 100)
    m.sell("mm", 2, 103)

    late = MarketData(m.engine)

    assert late.book_snapshot(CPU, None) == m.md.book_snapshot(CPU, None).replace(
        b'"seq":2', b'"seq":0'
    )


def test_a_flush_reads_only_the_touched_levels_from_a_deep_book() -> None:
    book = Book()
    for i in range(5000):
        for side, price in ((BUY, 10_000 - i), (SELL, 10_001 + i)):
            order_id = i * 2 + side
            book.add(
                Order(
                    order_id, 0, side, price, 1, 0, 0, 0, 0, 0, False, False, None, CPU
                )
            )
    feed = BookFeed(CPU, book)
    for depth in BOOK_DEPTHS:
        feed.open_channel(depth)
    reads: list[tuple[int, int]] = []

    class Spy:
        def level_qty(self, side: int, price: int) -> int:
            reads.append((side, price))
            return 0

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"flush read the whole book: {name}")

    feed.touch(BUY, 10_000)  # the best bid leaves: every window moves by one
    published = feed.flush(Spy())  # type: ignore[arg-type]

    assert reads == [(BUY, 10_000)]
    assert [p.depth for p in published] == [None, *BOOK_DEPTHS]
    bids = [decode(p.data)["bids"] for p in published]
    assert bids[0] == [[10_000, 0]]
    assert bids[1:] == [[[10_000, 0], [10_000 - d, 1]] for d in BOOK_DEPTHS]


# -- mirrors through random flows -------------------------------------------------

TRADERS = ("w1", "w2", "w3")


def _wide_flow(m: FedMarket, rng: random.Random, n: int) -> None:
    """Random commands over a book some 60 levels deep a side, so that depth
    windows fill, move and refill: limits, sweeps, market orders, cancels,
    amends and GTD expiries."""
    for name in TRADERS:
        if m.engine.ledger.index(name) is None:
            m.open(name, deposit=10**12, capacity=10**6)
    for _ in range(n):
        account = rng.choice(TRADERS)
        buy = rng.random() < 0.5
        side: Side = "buy" if buy else "sell"
        roll = rng.random()
        orders = sorted(m.engine.orders)
        command: Any
        if roll < 0.5:
            offset = rng.randint(1, 60)
            price = 500 - offset if buy else 500 + offset
            tif: TimeInForce = rng.choice(("GTC", "GTC", "GTC", "GTD"))
            expire = m.now + rng.randint(1, 300) * STEP if tif == "GTD" else None
            command = PlaceOrder(
                account,
                CPU,
                side,
                rng.randint(1, 5),
                price=price,
                tif=tif,
                expire_at=expire,
            )
        elif roll < 0.58:
            price = 500 + rng.randint(-20, 20)
            command = PlaceOrder(account, CPU, side, rng.randint(5, 40), price=price)
        elif roll < 0.62:
            command = PlaceOrder(account, CPU, side, rng.randint(1, 30), type="market")
        elif roll < 0.82 and orders:
            order = m.engine.orders[rng.choice(orders)]
            owner = m.engine.ledger.names[order.account]
            command = CancelOrder(owner, order.order_id)
        elif roll < 0.95 and orders:
            order = m.engine.orders[rng.choice(orders)]
            owner = m.engine.ledger.names[order.account]
            qty = rng.choice((None, rng.randint(1, 8)))
            new_price = rng.choice((None, order.price + rng.randint(-5, 5)))
            command = AmendOrder(owner, order.order_id, qty=qty, price=new_price)
        else:
            command = Tick()
        m.apply(command, at=m.now + rng.choice((STEP, 20 * STEP)))


@pytest.mark.parametrize("seed", range(4))
def test_mirrors_of_every_depth_equal_the_engine_book_through_a_deep_random_flow(
    seed: int,
) -> None:
    rng = random.Random(seed)
    m = FedMarket()
    mirrors = [m.subscribe(CPU, depth) for depth in DEPTHS]

    _wide_flow(m, rng, 300)
    late = [m.subscribe(CPU, depth) for depth in (None, 10)]  # join mid-flow
    _wide_flow(m, rng, 900)

    assert all(mirror.messages for mirror in mirrors + late)
    assert len(m.md.book_levels(CPU, None)[1]) > 25  # the windows were full


@pytest.mark.parametrize("seed", range(6))
def test_mirrors_equal_the_engine_books_through_random_flows_with_auctions(
    seed: int,
) -> None:
    rng = random.Random(seed)
    m = FedMarket()
    for symbol in (CPU, GPU):
        for depth in DEPTHS:
            m.subscribe(symbol, depth)

    random_flow(m, rng, 300, releases=True, call_phases=True)
    m.subscribe(GPU, None)  # a subscriber joins mid-flow
    random_flow(m, rng, 300, releases=True, call_phases=True)

    assert any(p.channel.startswith("auction.") for p in m.publications)
    seqs = [
        decode(p.data)["seq"]
        for p in m.publications
        if p.channel == "book." + CPU and p.depth is None
    ]
    assert seqs == list(range(1, len(seqs) + 1))


def test_every_book_message_of_a_command_carries_the_checksum_of_the_book() -> None:
    m = FedMarket()
    for depth in DEPTHS:
        m.subscribe(CPU, depth)
    rng = random.Random(11)

    for _ in range(100):
        _wide_flow(m, rng, 1)
        book = m.engine.instruments[CPU].book
        expected = checksum(book.depth(BUY, 10), book.depth(SELL, 10))
        sums = {
            decode(p.data)["checksum"] for p in m.last if p.channel == "book." + CPU
        }
        assert sums <= {expected}
