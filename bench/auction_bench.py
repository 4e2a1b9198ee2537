"""Call auctions over a deep book: the price determination and the full uncross.

The issue's target: "Clearing a call auction over 1 M resting orders on 10,000
price levels: target under 200 ms on this machine". Run it by hand, never as a
test:

    .venv/bin/python -m bench.auction_bench                 # 1 M orders, 10,000 levels
    .venv/bin/python -m bench.auction_bench --orders 100000 --runs 3
    .venv/bin/python -m bench.auction_bench --orders 200000 --runs 1 --profile

The orders are seeded: bids uniformly over the lowest 55% of the levels, asks
over the highest 55%, so the book is crossed on the middle 10% of the levels,
with lots from 1 to 100 an order, from 100 buyers and 100 sellers. Two things
are timed, each ``--runs`` times (median and best):

(a) the price determination from the live book: ``clearing_price(book.levels(BUY),
    book.levels(SELL), reference=...)`` on a `Book` that holds the orders, added
    directly as `Order` records; also split into its two parts.
(b) the full uncross through the engine: an `Engine` in ``pre_open`` holding
    the orders, placed as `PlaceOrder` commands (not timed, but reported), then
    the timed ``SetPhase(symbol, "continuous")`` that runs the opening auction:
    price, takes, every trade settled in the ledger and reported as an
    `AuctionTrade` event.

While the orders are placed, the indicative price is published once at the end
instead of after every order (see `_deferred_indicatives`): the engine
recomputes it after each command in a call phase, which costs about as much as
(a) and would make the set-up take hours at the default size. The state the
auction starts from is the same either way; ``--indicatives`` places them the
engine's own way, for small books.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from matching import (
    MAX_AMOUNT,
    AuctionCleared,
    AuctionTrade,
    Book,
    Command,
    Deposit,
    Engine,
    Event,
    MarketConfig,
    OpenAccount,
    PlaceOrder,
    ResourceClass,
    SetCapacity,
    SetPhase,
    phases,
)
from matching.auction import Clearing, clearing_price
from matching.commands import Side
from matching.config import MAX_QTY
from matching.order import BUY, CANCEL_TAKER, GTC, SELL, Order, unit_hold

SYMBOL = "bench-SPOT"
BASE_PRICE = 1_000_000
"""µcr per lot of the lowest level (one credit); the tick is 1."""
TAKER_BPS, MAKER_BPS = 10, 5
ACCOUNTS = 100
"""Buyers, and as many sellers: few, so the ledger is not what is measured."""
SHARE = 55
"""Each side spans this percentage of the levels: bids the lowest, asks the
highest, so ``2 * SHARE - 100`` percent of the levels are crossed."""
_SIDE_NAMES: tuple[Side, Side] = ("buy", "sell")


@dataclass(frozen=True)
class Orders:
    """The seeded orders, as parallel lists of plain ints."""

    sides: list[int]
    prices: list[int]
    qtys: list[int]
    owners: list[int]
    bid_levels: range
    ask_levels: range


def make_orders(n: int, levels: int, seed: int) -> Orders:
    if levels < 2:
        raise ValueError("at least 2 price levels")
    width = -(-levels * SHARE // 100)  # ceil: the levels each side spans
    rng = np.random.default_rng(seed)
    sides = rng.integers(0, 2, n)
    offsets = rng.integers(0, width, n)
    prices = BASE_PRICE + np.where(sides == BUY, offsets, levels - width + offsets)
    qtys = rng.integers(1, 101, n)
    owners = rng.integers(0, ACCOUNTS, n)
    return Orders(
        sides.tolist(),
        prices.tolist(),
        qtys.tolist(),
        owners.tolist(),
        range(width),
        range(levels - width, levels),
    )


# -- (a) the price determination ---------------------------------------------------


def build_book(orders: Orders) -> Book:
    """A book holding every order, added directly (no engine, no ledger)."""
    book = Book()
    add = book.add
    hold_bps = max(TAKER_BPS, MAKER_BPS)
    rows = zip(orders.sides, orders.prices, orders.qtys, orders.owners, strict=True)
    for order_id, (side, price, qty, owner) in enumerate(rows, 1):
        hold = unit_hold(price, hold_bps) if side == BUY else 0
        add(
            Order(
                order_id,
                owner if side == BUY else ACCOUNTS + owner,
                side,
                price,
                qty,
                0,
                hold,
                GTC,
                0,
                CANCEL_TAKER,
                False,
                False,
                None,
                SYMBOL,
            )
        )
    return book


@dataclass(frozen=True)
class PriceTimes:
    total: list[float]
    levels: list[float]
    clearing: list[float]
    crossing: list[float]
    result: Clearing


def time_price(book: Book, reference: int | None, runs: int) -> PriceTimes:
    clock = time.perf_counter
    # One untimed call first: numpy's first use of each function costs extra.
    clearing_price(book.levels(BUY), book.levels(SELL), reference=reference)
    gc.collect()
    total, levels, clearing = [], [], []
    result = None
    for _ in range(runs):
        t0 = clock()
        result = clearing_price(
            book.levels(BUY), book.levels(SELL), reference=reference
        )
        total.append(clock() - t0)
    for _ in range(runs):
        t0 = clock()
        bids, asks = book.levels(BUY), book.levels(SELL)
        t1 = clock()
        clearing_price(bids, asks, reference=reference)
        t2 = clock()
        levels.append(t1 - t0)
        clearing.append(t2 - t1)
    # The engine's own way: only the crossed levels can trade.
    crossing = []
    for _ in range(runs):
        t0 = clock()
        again = clearing_price(*book.crossing_levels(), reference=reference)
        crossing.append(clock() - t0)
    assert result is not None
    if again != result:
        raise RuntimeError(f"crossed levels gave {again}, the whole book {result}")
    return PriceTimes(total, levels, clearing, crossing, result)


# -- (b) the full uncross through the engine ---------------------------------------


@contextmanager
def _deferred_indicatives() -> Iterator[None]:
    """Publish the indicative price once, at the end, not after every command.

    The engine marks a call book dirty on every order and publishes its
    indicative price (`matching.phases.publish_indicatives`: the price
    determination of (a), and an event if it changed) at the end of the
    command; this skips the publication while the block runs, then publishes
    once for everything still marked.
    """
    publish = phases.publish_indicatives
    seen: list[Engine] = []

    def skip(engine: Engine, events: list[Event]) -> None:
        if not seen:
            seen.append(engine)

    phases.publish_indicatives = skip
    try:
        yield
    finally:
        phases.publish_indicatives = publish
    if seen:
        publish(seen[0], [])


@dataclass
class Market:
    engine: Engine
    setup_s: float
    seq: int

    def apply(self, command: Command) -> list[Event]:
        self.seq += 1
        return self.engine.apply(self.seq, 0, command)


def build_market(orders: Orders, indicatives: bool) -> Market:
    """An engine in ``pre_open`` holding every order, placed as commands."""
    rc = ResourceClass(
        "bench",
        lot_cu=100,
        tick=1,
        taker_fee_bps=TAKER_BPS,
        maker_fee_bps=MAKER_BPS,
        spot_phase="pre_open",
    )
    market = Market(Engine(MarketConfig(classes=[rc])), 0.0, 0)
    buyers = [f"buyer-{i:03d}" for i in range(ACCOUNTS)]
    sellers = [f"seller-{i:03d}" for i in range(ACCOUNTS)]
    for name in buyers:
        market.apply(OpenAccount(name, ("consumer",)))
        market.apply(Deposit(name, MAX_AMOUNT))
    for name in sellers:
        market.apply(OpenAccount(name, ("provider",)))
        market.apply(SetCapacity(name, SYMBOL, MAX_QTY))

    engine = market.engine
    apply = engine.apply
    owners = (buyers, sellers)
    seq = market.seq
    t0 = time.perf_counter()
    with _deferred_or_not(indicatives):
        for side, price, qty, owner in zip(
            orders.sides, orders.prices, orders.qtys, orders.owners, strict=True
        ):
            seq += 1
            apply(
                seq,
                0,
                PlaceOrder(
                    owners[side][owner], SYMBOL, _SIDE_NAMES[side], qty, "limit", price
                ),
            )
    market.setup_s = time.perf_counter() - t0
    market.seq = seq
    if len(engine.orders) != len(orders.sides):
        raise RuntimeError(
            f"{len(orders.sides) - len(engine.orders)} orders were not accepted"
        )
    return market


@contextmanager
def _deferred_or_not(indicatives: bool) -> Iterator[None]:
    if indicatives:
        yield
        return
    with _deferred_indicatives():
        yield


@dataclass(frozen=True)
class Uncross:
    seconds: float
    setup_s: float
    cleared: AuctionCleared
    trades: int
    gc_runs: int


def time_uncross(
    orders: Orders,
    indicatives: bool,
    check: bool,
    profile: Callable[[Callable[[], list[Event]]], list[Event]] | None = None,
) -> Uncross:
    market = build_market(orders, indicatives)
    gc.collect()
    collections = [0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[0] += 1

    command = SetPhase(SYMBOL, "continuous")
    gc.callbacks.append(count)
    try:
        t0 = time.perf_counter()
        if profile is None:
            events = market.apply(command)
        else:
            events = profile(lambda: market.apply(command))
        seconds = time.perf_counter() - t0
    finally:
        gc.callbacks.remove(count)

    cleared = [e for e in events if type(e) is AuctionCleared]
    trades = sum(1 for e in events if type(e) is AuctionTrade)
    if len(cleared) != 1:
        raise RuntimeError(f"expected one AuctionCleared, got {len(cleared)}")
    if check:
        market.engine.check()
    return Uncross(seconds, market.setup_s, cleared[0], trades, collections[0])


# -- reporting ---------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def _peak_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _profile(call: Callable[[], list[Event]]) -> list[Event]:
    profiler = cProfile.Profile()
    events = profiler.runcall(call)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print()
    print("profile of one uncross (cProfile; its overhead inflates the total):")
    stats.sort_stats("tottime").print_stats(12)
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--levels", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--indicatives",
        action="store_true",
        help="publish the indicative price after every order placed, as the "
        "engine does (about the cost of (a) per order: small books only)",
    )
    parser.add_argument(
        "--check", action="store_true", help="check the engine's invariants after"
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile one more uncross (cProfile)"
    )
    args = parser.parse_args(argv)
    if args.orders < 1 or args.runs < 1:
        parser.error("--orders and --runs must be at least 1")

    orders = make_orders(args.orders, args.levels, args.seed)
    bids, asks = orders.bid_levels, orders.ask_levels
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}: "
        f"{args.orders:,} orders on {args.levels:,} price levels "
        f"(bids on levels {bids.start:,}–{bids.stop - 1:,}, "
        f"asks on {asks.start:,}–{asks.stop - 1:,}), "
        f"seed {args.seed}, {args.runs} runs"
    )

    # (a) on a bare book; freed before (b) so the peak memory is (b)'s.
    t0 = time.perf_counter()
    book = build_book(orders)
    built_s = time.perf_counter() - t0
    levels = len(book.levels(BUY)) + len(book.levels(SELL))
    # The reference is the instrument's last price: None before its opening
    # auction, as in (b), so that the two can be checked against each other.
    price = time_price(book, None, args.runs)
    del book
    gc.collect()
    peak_a = _peak_mib()

    runs = [time_uncross(orders, args.indicatives, args.check)]
    peak_b = _peak_mib()
    for _ in range(args.runs - 1):
        gc.collect()
        runs.append(time_uncross(orders, args.indicatives, False))
    peak = _peak_mib()
    uncross = [r.seconds for r in runs]
    first = runs[0]
    cleared = first.cleared
    if any(r.cleared != cleared or r.trades != first.trades for r in runs):
        raise RuntimeError("the runs disagree")
    if (cleared.price, cleared.volume) != (price.result.price, price.result.volume):
        raise RuntimeError(f"(a) gave {price.result}, the engine {cleared}")
    median_uncross = statistics.median(uncross)
    setup = statistics.median(r.setup_s for r in runs)

    print()
    print("| what | median ms | best ms | note |")
    print("|---|---:|---:|---|")
    print(
        f"| (a) price determination: `clearing_price(book.levels(…))` | "
        f"{_ms(statistics.median(price.total))} | {_ms(min(price.total))} | "
        f"{levels:,} levels (book built directly in {built_s:.1f} s) |"
    )
    print(
        f"| (a) of which `Book.levels`, both sides | "
        f"{_ms(statistics.median(price.levels))} | {_ms(min(price.levels))} | |"
    )
    print(
        f"| (a) of which `clearing_price` | "
        f"{_ms(statistics.median(price.clearing))} | {_ms(min(price.clearing))} | |"
    )
    print(
        f"| (a) the engine's way: `clearing_price(*book.crossing_levels())` | "
        f"{_ms(statistics.median(price.crossing))} | {_ms(min(price.crossing))} | "
        "the crossed levels only |"
    )
    print(
        f'| (b) full uncross: `SetPhase(…, "continuous")` | '
        f"{_ms(median_uncross)} | {_ms(min(uncross))} | "
        f"{first.trades:,} fills, {median_uncross / first.trades * 1e6:.2f} µs "
        f"a fill; {first.gc_runs} gc collections |"
    )
    how = "indicative after each" if args.indicatives else "indicative once"
    print(
        f"| (b) set-up, not timed: {args.orders:,} `PlaceOrder` in pre_open | "
        f"{setup * 1e3:,.0f} | {min(r.setup_s for r in runs) * 1e3:,.0f} | "
        f"{setup / args.orders * 1e6:.2f} µs an order, {how} |"
    )
    print()
    print(
        f"clearing: price {cleared.price}, volume {cleared.volume:,} lots, "
        f"surplus {cleared.surplus:,}; {first.trades:,} AuctionTrade events"
    )
    if not args.indicatives:
        each = statistics.median(price.total)
        print(
            f"the engine's own way, an indicative price after each order, would "
            f"add about (a) an order: {args.orders:,} x {_ms(each)} ms = "
            f"{_duration(each * args.orders)} at full depth (--indicatives)"
        )
    print(
        f"peak memory (maxrss): {peak_a:,.0f} MiB after (a), {peak_b:,.0f} MiB "
        f"after the first run of (b), {peak:,.0f} MiB after all (freed engines' "
        f"memory is not all reused)"
    )

    if args.profile:
        time_uncross(orders, args.indicatives, False, _profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
