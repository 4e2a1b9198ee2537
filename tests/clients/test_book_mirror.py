"""BookMirror: snapshots and deltas of a real market data stream, delivered in
order, with gaps, out of order, duplicated and with bad checksums; whenever the
mirror holds a book it is the true book at its seq, so no stale update is ever
applied."""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.book import Applied, BookMirror, checksum
from clients.errors import BookOutOfSync
from clients.messages import BookMessage
from exchange.marketdata import MarketData
from exchange.marketdata import checksum as server_checksum
from matching import (
    CancelOrder,
    Command,
    Deposit,
    Engine,
    MarketConfig,
    OpenAccount,
    OrderAccepted,
    PlaceOrder,
    ResourceClass,
    SetCapacity,
)

SYMBOL = "cpu-SPOT"

Levels = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]


@dataclass(frozen=True)
class Stream:
    """A book channel's true messages: ``updates[i]`` carries seq i + 1;
    ``books[seq]`` is the book after seq (``books[0]`` the start)."""

    depth: int | None
    updates: list[BookMessage]
    books: list[Levels]

    def snapshot(self, seq: int) -> BookMessage:
        """The snapshot a server would send at ``seq``."""
        bids, asks = self.books[seq]
        return BookMessage(
            SYMBOL,
            seq,
            list(bids),
            list(asks),
            server_checksum(list(bids), list(asks)),
            snapshot=True,
            depth=self.depth,
        )


def make_stream(seed: int, commands: int, depth: int | None) -> Stream:
    """The book messages of a seeded random market, from the server's own
    market data code."""
    engine = Engine(MarketConfig(classes=[ResourceClass("cpu", lot_cu=100, tick=1)]))
    md = MarketData(engine)
    md.book_snapshot(SYMBOL, depth)  # opens the channel, as a subscriber would
    setup: list[Command] = [
        OpenAccount("buyer"),
        Deposit("buyer", 10**12),
        OpenAccount("seller", ("provider",)),
        SetCapacity("seller", SYMBOL, 10**6),
    ]
    rng = random.Random(seed)
    raw: list[dict[str, object]] = []
    open_ids: list[tuple[str, int]] = []
    for seq, step in enumerate(range(len(setup) + commands), start=1):
        command: Command
        if step < len(setup):
            command = setup[step]
        elif open_ids and rng.random() < 0.25:
            account, order_id = open_ids.pop(rng.randrange(len(open_ids)))
            command = CancelOrder(account, order_id)
        else:
            buy = rng.random() < 0.5
            account = "buyer" if buy else "seller"
            price = rng.randint(990, 1010) - (5 if buy else 0)
            qty = rng.randint(1, 9)
            command = PlaceOrder(
                account, SYMBOL, "buy" if buy else "sell", qty, price=price
            )
        ts = seq * 1_000_000
        events = engine.apply(seq, ts, command)
        for event in events:
            if type(event) is OrderAccepted:
                open_ids.append((event.account, event.order_id))
        for pub in md.apply(events, ts):
            if pub.channel == f"book.{SYMBOL}" and pub.depth == depth:
                raw.append(json.loads(pub.data))
    updates = [msgspec.convert(m, BookMessage) for m in raw]
    books: list[Levels] = [((), ())]
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for update in updates:
        for levels, book_side in ((update.bids, bids), (update.asks, asks)):
            for level_price, level_qty in levels:
                if level_qty:
                    book_side[level_price] = level_qty
                else:
                    book_side.pop(level_price, None)
        book = (
            tuple(sorted(bids.items(), reverse=True)),
            tuple(sorted(asks.items())),
        )
        assert server_checksum(list(book[0]), list(book[1])) == update.checksum
        books.append(book)
    assert [u.seq for u in updates] == list(range(1, len(updates) + 1))
    return Stream(depth, updates, books)


STREAM = make_stream(seed=7, commands=300, depth=None)


def assert_true_book(mirror: BookMirror, stream: Stream) -> None:
    """A mirror in sync holds exactly the true book at its seq."""
    assert mirror.seq is not None
    bids, asks = stream.books[mirror.seq]
    assert tuple(mirror.bids()) == bids
    assert tuple(mirror.asks()) == asks


class Checked:
    """Feeds a mirror and checks, after every message, that an applied update
    was the next in sequence and that the book is the true one."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.mirror = BookMirror(SYMBOL, stream.depth)

    def feed(self, message: BookMessage) -> Applied:
        before = self.mirror.seq
        result = self.mirror.apply(message)
        if result is Applied.APPLIED:
            assert before is not None
            assert message.seq == before + 1
        if result is Applied.STALE:
            assert before is not None
            assert message.seq <= before
            assert self.mirror.seq == before
        if self.mirror.synced:
            assert_true_book(self.mirror, self.stream)
        else:
            with pytest.raises(BookOutOfSync):
                self.mirror.bids()
        return result


def test_checksum_matches_the_servers_on_the_design_example() -> None:
    bids, asks = [(1200, 10), (1199, 3)], [(1210, 5)]
    assert checksum(bids, asks) == zlib.crc32(b"1200:10,1199:3|1210:5")
    assert checksum(bids, asks) == server_checksum(bids, asks)


def test_mirror_in_order_stream_applies_every_update_and_ends_on_the_true_book() -> (
    None
):
    checked = Checked(STREAM)
    assert checked.feed(STREAM.snapshot(0)) is Applied.SNAPSHOT
    for update in STREAM.updates:
        assert checked.feed(update) is Applied.APPLIED
    assert checked.mirror.seq == len(STREAM.updates)
    assert checked.mirror.resyncs == 0


def test_mirror_updates_before_snapshot_are_kept_and_only_newer_ones_applied() -> None:
    checked = Checked(STREAM)
    # Subscribed: updates 1..30 arrive before a snapshot taken at seq 20.
    for update in STREAM.updates[:30]:
        assert checked.feed(update) is Applied.BUFFERED
    assert checked.feed(STREAM.snapshot(20)) is Applied.SNAPSHOT
    assert checked.mirror.seq == 30
    for update in STREAM.updates[:30]:
        assert checked.feed(update) is Applied.STALE
    assert checked.feed(STREAM.updates[30]) is Applied.APPLIED


def test_mirror_gap_and_out_of_order_updates_drop_the_book_and_never_apply_stale() -> (
    None
):
    checked = Checked(STREAM)
    u = STREAM.updates
    checked.feed(STREAM.snapshot(0))
    for update in u[:10]:  # seqs 1..10
        checked.feed(update)
    # Seq 11 is late: 12 arrives first (a gap), then 13, then 11, then 14.
    assert checked.feed(u[11]) is Applied.RESYNC
    assert not checked.mirror.synced
    assert checked.feed(u[12]) is Applied.BUFFERED
    assert checked.feed(u[10]) is Applied.BUFFERED
    assert checked.feed(u[13]) is Applied.BUFFERED
    # The fresh snapshot is at seq 12: 11 and 12 are older, 13 and 14 newer.
    assert checked.feed(STREAM.snapshot(12)) is Applied.SNAPSHOT
    assert checked.mirror.seq == 14
    assert checked.feed(u[10]) is Applied.STALE
    assert checked.feed(u[14]) is Applied.APPLIED
    assert checked.mirror.resyncs == 1
    assert checked.mirror.last_reset_reason == "gap: seq 12 after 10"


def test_mirror_kept_updates_with_a_gap_after_the_snapshot_resync_again() -> None:
    checked = Checked(STREAM)
    u = STREAM.updates
    checked.feed(u[5])  # seq 6
    checked.feed(u[7])  # seq 8: 7 never comes
    assert checked.feed(STREAM.snapshot(5)) is Applied.RESYNC
    assert not checked.mirror.synced
    assert checked.feed(STREAM.snapshot(9)) is Applied.SNAPSHOT
    assert checked.mirror.seq == 9


def test_mirror_bad_checksum_drops_the_book_until_a_new_snapshot() -> None:
    checked = Checked(STREAM)
    checked.feed(STREAM.snapshot(0))
    for update in STREAM.updates[:5]:
        checked.feed(update)
    wrong = msgspec.structs.replace(STREAM.updates[5], checksum=12345)
    assert checked.feed(wrong) is Applied.RESYNC
    assert checked.mirror.last_reset_reason == "bad checksum at seq 6"
    assert checked.feed(STREAM.updates[6]) is Applied.BUFFERED
    assert checked.feed(STREAM.snapshot(6)) is Applied.SNAPSHOT
    assert checked.mirror.seq == 7


def test_mirror_bad_snapshot_checksum_is_refused() -> None:
    bad = msgspec.structs.replace(STREAM.snapshot(3), checksum=1)
    mirror = BookMirror(SYMBOL)
    assert mirror.apply(bad) is Applied.RESYNC
    assert not mirror.synced


def test_mirror_resync_notice_drops_the_book() -> None:
    checked = Checked(STREAM)
    checked.feed(STREAM.snapshot(0))
    checked.feed(STREAM.updates[0])
    checked.mirror.resync("slow consumer")
    assert not checked.mirror.synced
    assert checked.feed(STREAM.updates[1]) is Applied.BUFFERED
    assert checked.feed(STREAM.snapshot(1)) is Applied.SNAPSHOT
    assert checked.mirror.seq == 2


def test_mirror_depth_10_stream_with_window_edges_tracks_the_true_window() -> None:
    stream = make_stream(seed=3, commands=300, depth=10)
    checked = Checked(stream)
    checked.feed(stream.snapshot(0))
    for update in stream.updates:
        assert checked.feed(update) is Applied.APPLIED
        assert len(checked.mirror.bids()) <= 10


def test_mirror_best_prices_and_spread_follow_the_book() -> None:
    mirror = BookMirror(SYMBOL)
    bids, asks = [(1000, 4), (999, 1)], [(1003, 2)]
    snap = BookMessage(SYMBOL, 5, bids, asks, checksum(bids, asks), snapshot=True)
    mirror.apply(snap)
    assert (mirror.best_bid, mirror.best_ask, mirror.spread) == (1000, 1003, 3)


# One delivery step: what the network does to the next message.
Step = st.sampled_from(["next", "next", "next", "skip", "swap", "repeat", "old"])


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(Step, min_size=1, max_size=200), snap_delay=st.integers(0, 6))
def test_mirror_under_any_delivery_never_holds_a_book_other_than_the_truth(
    steps: list[str], snap_delay: int
) -> None:
    """Updates skipped, swapped, repeated or replayed from the past, and a
    fresh snapshot some messages after each resync: whenever the mirror holds
    a book, it is the true book at its seq."""
    stream = STREAM
    u = stream.updates
    checked = Checked(stream)
    checked.feed(stream.snapshot(0))
    position = 0  # the next true update to send: u[position] has seq position+1
    waiting: int | None = None  # messages until the server's fresh snapshot
    for step in steps:
        if position >= len(u):
            break
        if step == "next":
            checked.feed(u[position])
            position += 1
        elif step == "skip":
            position += 1
        elif step == "swap" and position + 1 < len(u):
            checked.feed(u[position + 1])
            checked.feed(u[position])
            position += 2
        elif step == "repeat" and position > 0:
            checked.feed(u[position - 1])
        elif step == "old" and position > 3:
            checked.feed(u[position // 2])
        if not checked.mirror.synced:
            waiting = snap_delay if waiting is None else waiting - 1
            if waiting <= 0:
                checked.feed(stream.snapshot(position))
                waiting = None
        else:
            waiting = None
