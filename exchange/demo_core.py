"""A small, seeded market scenario run through the matching core alone.

Until the whole-market demo exists (server, provider nodes, consumer agents and
dashboard; DESIGN.md section 10), ``cux demo`` runs this scenario instead. It
drives one `Engine` on the ``cpu`` class the way a market day would: accounts
and deposits, provider capacity, market makers quoting a ladder around a mid
price, consumers sending limit, IOC and market orders, a cancel, an amend, a
GTD order that a `Tick` expires, a withdrawal, and then ``steps`` random orders.

Every command is stamped with the next sequence number and a timestamp 1 ms
after the last (2 s for the `Tick`), and the engine checks its own invariants
after each one. The seed picks the mid price, the sizes and the random orders,
so the same seed and steps always give the same events and the same state hash.

Metering does not exist yet, so the scenario stands in for it: every ten random
orders, and at the end, each open escrow is released with a payout of a seeded
50–100% of its amount, as if that share of the bought work had been used. The
seller is paid that less its fee, the buyer gets the rest back, and the lots
stop counting against the seller's capacity.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final, TypeVar

from matching import (
    AmendOrder,
    CancelOrder,
    Command,
    CuxError,
    Deposit,
    Engine,
    EscrowReleased,
    Event,
    MarketConfig,
    OpenAccount,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    PlaceOrder,
    ReleaseEscrow,
    ResourceClass,
    SetCapacity,
    Tick,
    Trade,
    Withdraw,
    Withdrawn,
)
from matching.commands import Role, Side, TimeInForce
from matching.order import SELL

__all__ = ["CONFIG", "CREDIT", "SYMBOL", "DemoRun", "ScenarioError", "run_demo"]

CREDIT: Final = 1_000_000
"""µcr in one credit."""
CONFIG: Final = MarketConfig(
    classes=[
        ResourceClass("cpu", lot_cu=100, tick=1, taker_fee_bps=10, maker_fee_bps=5)
    ]
)
SYMBOL: Final = "cpu-SPOT"

START_NS: Final = 1_735_689_600_000_000_000
"""2025-01-01T00:00:00Z: the scenario's clock starts here, not at the wall clock."""
MS: Final = 1_000_000
SECOND: Final = 1_000 * MS

STEP: Final = 500
"""µcr per lot between two price levels of the makers' ladder."""
LEVELS: Final = 4
"""Price levels each maker quotes on its side."""

ACCOUNTS: Final[tuple[tuple[str, tuple[Role, ...], int, int], ...]] = (
    # name, roles, deposit in credits, capacity in lots
    ("prov-a", ("provider",), 0, 400),
    ("prov-b", ("provider",), 0, 250),
    ("mm", ("consumer",), 500, 0),
    ("alice", ("consumer",), 200, 0),
    ("bob", ("consumer",), 150, 0),
    ("carol", ("consumer",), 100, 0),
)
BUYERS: Final = ("mm", "alice", "bob", "carol")
SELLERS: Final = ("prov-a", "prov-b")
SIDES: Final[tuple[Side, ...]] = ("buy", "sell")
KINDS: Final[tuple[TimeInForce | None, ...]] = ("GTC", "GTC", "IOC", None)
"""The random orders' kinds: a time in force for a limit order, None for market."""

_T = TypeVar("_T")


class ScenarioError(CuxError):
    """A scripted step did not have the effect the scenario relies on."""


@dataclass(frozen=True)
class DemoRun:
    """What a run of the scenario left behind.

    Attributes:
        seed: the seed of its random choices.
        steps: how many random orders followed the scripted part.
        engine: the engine, in its final state.
        events: every event, in engine order.
    """

    seed: int
    steps: int
    engine: Engine
    events: tuple[Event, ...]

    @property
    def commands(self) -> int:
        """How many commands were applied."""
        return self.engine.seq

    @property
    def trades(self) -> list[Trade]:
        """The trades, in the order they happened."""
        return [e for e in self.events if isinstance(e, Trade)]


def run_demo(seed: int = 1, steps: int = 20) -> DemoRun:
    """Run the whole scenario on a new engine and return what it left.

    Raises:
        ScenarioError: a scripted order did not trade, rest, cancel or expire
            as the scenario expects (the core changed its behaviour).
        InvariantViolation: the engine's self-check failed: a bug in the core.
    """
    market = _Market(seed)
    _open_accounts(market)
    _quote_ladder(market)
    _take_liquidity(market)
    _cancel_and_amend(market)
    _expire_good_till_date(market)
    _withdraw(market)
    _random_flow(market, steps)
    _settle_escrows(market)
    return DemoRun(seed, steps, market.engine, tuple(market.events))


class _Market:
    """One engine fed by a sequencer stand-in that stamps and checks commands."""

    def __init__(self, seed: int) -> None:
        self.engine = Engine(CONFIG)
        self.rng = random.Random(seed)
        self.mid = 250_000 + STEP * self.rng.randint(-10, 10)
        self.now = START_NS
        self.events: list[Event] = []

    def send(self, command: Command, after_ns: int = MS) -> list[Event]:
        """Apply ``command`` ``after_ns`` after the last one; self-check after."""
        self.now += after_ns
        events = self.engine.apply(self.engine.seq + 1, self.now, command)
        self.engine.check()
        self.events.extend(events)
        return events

    def expect(self, kind: type[_T], command: Command, after_ns: int = MS) -> _T:
        """Send ``command`` and return its first event of type ``kind``."""
        return _first(kind, self.send(command, after_ns), command)

    def place(
        self,
        account: str,
        side: Side,
        qty: int,
        price: int,
        tif: TimeInForce = "GTC",
        expire_at: int | None = None,
    ) -> int:
        """Send a limit order that must be accepted; return its order id."""
        order = PlaceOrder(
            account, SYMBOL, side, qty, price=price, tif=tif, expire_at=expire_at
        )
        return self.expect(OrderAccepted, order).order_id

    def best(self) -> tuple[int, int]:
        """The best bid and the best ask, in µcr per lot."""
        book = self.engine.instruments[SYMBOL].book
        return book.bid, book.ask

    def ask_levels(self) -> list[tuple[int, int]]:
        """The ask side as (price, lots), best first."""
        book = self.engine.instruments[SYMBOL].book
        return book.depth(SELL)


def _open_accounts(m: _Market) -> None:
    for name, roles, deposit, capacity in ACCOUNTS:
        m.send(OpenAccount(name, roles))
        if deposit:
            m.send(Deposit(name, deposit * CREDIT))
        if capacity:
            m.send(SetCapacity(name, SYMBOL, capacity))


def _quote_ladder(m: _Market) -> None:
    # Both providers ask on the same levels, prov-a first, so its lots fill
    # first at each price; the market maker bids below the mid.
    for level in range(LEVELS):
        offset = STEP // 2 + level * STEP
        for seller in SELLERS:
            m.place(seller, "sell", m.rng.randint(5, 20), m.mid + offset)
        m.place("mm", "buy", m.rng.randint(10, 30), m.mid - offset)


def _take_liquidity(m: _Market) -> None:
    (best_ask, best_qty), (second_ask, second_qty), *_ = m.ask_levels()

    # A limit buy for 5 lots more than the best level: it takes the whole level
    # and rests the rest, so it becomes the new best bid.
    m.expect(Trade, PlaceOrder("alice", SYMBOL, "buy", best_qty + 5, price=best_ask))
    # An IOC buy for more than the next level holds: the rest is cancelled.
    ioc = PlaceOrder("bob", SYMBOL, "buy", second_qty + 50, price=second_ask, tif="IOC")
    events = m.send(ioc)
    _first(Trade, events, ioc)
    _first(OrderCancelled, events, ioc)
    # A market buy walks the asks that are left.
    m.expect(Trade, PlaceOrder("carol", SYMBOL, "buy", 10, type="market", tif="IOC"))

    # Providers take the other side: an IOC sell into the bids, then a market sell.
    best_bid, _ = m.best()
    sell = PlaceOrder("prov-b", SYMBOL, "sell", 8, price=best_bid - STEP, tif="IOC")
    m.expect(Trade, sell)
    m.expect(Trade, PlaceOrder("prov-a", SYMBOL, "sell", 5, type="market", tif="IOC"))


def _cancel_and_amend(m: _Market) -> None:
    best_bid, _ = m.best()
    low = best_bid - LEVELS * STEP

    order_id = m.place("bob", "buy", 12, low)
    m.expect(OrderCancelled, CancelOrder("bob", order_id))

    # Fewer lots at a better price: the order loses its place in the queue.
    order_id = m.place("carol", "buy", 10, low)
    m.expect(OrderAmended, AmendOrder("carol", order_id, qty=6, price=low + STEP))


def _expire_good_till_date(m: _Market) -> None:
    best_bid, _ = m.best()
    expire_at = m.now + MS + SECOND
    m.place("alice", "buy", 7, best_bid - STEP, tif="GTD", expire_at=expire_at)
    m.expect(OrderExpired, Tick(), after_ns=2 * SECOND)


def _withdraw(m: _Market) -> None:
    m.expect(Withdrawn, Withdraw("bob", 5 * CREDIT))


def _random_flow(m: _Market, steps: int) -> None:
    # Buyers buy, providers sell; a quarter of the orders are IOC and a quarter
    # market orders. A rejection (say, for capacity) is data, not a failure.
    for _ in range(steps):
        side = m.rng.choice(SIDES)
        account = m.rng.choice(BUYERS if side == "buy" else SELLERS)
        qty = m.rng.randint(1, 15)
        tif = m.rng.choice(KINDS)
        if tif is None:
            order = PlaceOrder(account, SYMBOL, side, qty, type="market", tif="IOC")
        else:
            lean = 1 if side == "buy" else -1
            price = m.mid + lean * STEP * m.rng.randint(-3, 2)
            order = PlaceOrder(account, SYMBOL, side, qty, price=price, tif=tif)
        m.send(order)
        if m.engine.seq % 10 == 0:
            _settle_escrows(m)


def _settle_escrows(m: _Market) -> None:
    # The stand-in for metering: pay out a seeded share of each open escrow.
    for trade_id, escrow in sorted(m.engine.ledger.escrows.items()):
        payout = escrow.amount * m.rng.randint(50, 100) // 100
        m.expect(EscrowReleased, ReleaseEscrow(trade_id, payout))


def _first(kind: type[_T], events: list[Event], command: Command) -> _T:
    """The first event of type ``kind`` in ``events``, which ``command`` caused."""
    for event in events:
        if isinstance(event, kind):
            return event
    raise ScenarioError(f"{command} gave {events}, not a {kind.__name__}")
