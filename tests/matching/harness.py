"""A small market around one `Engine`, for tests of the matching core.

`Market` opens accounts, deposits, sets capacity and applies commands with
increasing sequence numbers and timestamps. After every command it runs the
engine's own self-check (conservation of money, holds, capacity, book structure,
no crossed book in continuous trading) and checks that no price level shows a
quantity of 0 or less, so every test checks those invariants at every step
without saying so.

The builders below (`accepted`, `trade`, `cancelled`, ...) make the exact events
a test expects, with the defaults most tests share.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

from matching import (
    CODES,
    AmendOrder,
    AuctionTrade,
    Book,
    CancelOrder,
    Code,
    Command,
    CommandRejected,
    Deposit,
    Engine,
    Event,
    MarketConfig,
    OpenAccount,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    PlaceOrder,
    ReleaseEscrow,
    ResourceClass,
    SchedulePhase,
    SetCapacity,
    SetPhase,
    Tick,
    Trade,
    Withdraw,
)
from matching.commands import Phase, Role, SelfTradePrevention, TimeInForce
from matching.order import BUY, SELL

CPU: Final = "cpu-SPOT"
"""A fee-free instrument with a tick of 1 µcr: holds equal price x lots."""
GPU: Final = "gpu-SPOT"
"""An instrument with fees (taker 25 bps, maker 10 bps) and a tick of 10 µcr."""

CPU_CLASS: Final = ResourceClass("cpu", lot_cu=100, tick=1)
GPU_CLASS: Final = ResourceClass(
    "gpu", lot_cu=1000, tick=10, taker_fee_bps=25, maker_fee_bps=10
)
CONFIG: Final = MarketConfig(classes=[CPU_CLASS, GPU_CLASS])

CREDIT: Final = 1_000_000
"""µcr in one credit."""
T0: Final = 1_700_000_000_000_000_000
"""The timestamp of the first command, in ns since the epoch."""
STEP: Final = 1_000_000
"""How far the clock moves between two commands unless a test says otherwise."""

BOTH: Final[tuple[Role, ...]] = ("consumer", "provider")


class Balance(NamedTuple):
    """An account's three balances, in µcr."""

    available: int
    held: int
    escrow: int


@dataclass(frozen=True)
class Placed:
    """What a place command gave: its order id (its sequence number) and events."""

    id: int
    events: list[Event]


class Market:
    """One engine, fed commands in sequence and checked after each of them."""

    def __init__(
        self,
        config: MarketConfig = CONFIG,
        book_factory: Callable[[], Any] = Book,
    ) -> None:
        self.config = config
        self.book_factory = book_factory
        self.engine = Engine(config, book_factory)
        self.journal: list[tuple[int, int, Command]] = []
        self.events: list[Event] = []

    @property
    def now(self) -> int:
        """The timestamp of the last command, or just before `T0` at the start."""
        return self.engine.now if self.journal else T0 - STEP

    # -- applying commands ------------------------------------------------------

    def apply(self, command: Command, *, at: int | None = None) -> list[Event]:
        """Apply ``command`` as the next one, `STEP` ns later unless ``at``."""
        seq = self.engine.seq + 1
        ts = self.now + STEP if at is None else at
        events = self.engine.apply(seq, ts, command)
        self.journal.append((seq, ts, command))
        self.events.extend(events)
        self.check()
        return events

    def check(self) -> None:
        """The engine's self-check, plus the invariants tests care most about.

        Conservation and an uncrossed book with no empty level are checked here
        from the public state too, so that they hold whatever ``check`` does.
        """
        self.engine.check()
        ledger = self.engine.ledger
        balances = ledger.available + ledger.held + ledger.escrow
        assert min(balances, default=0) >= 0, "a balance went negative"
        assert sum(balances) + ledger.fee_income == (
            ledger.deposits - ledger.withdrawals
        ), "money was created or lost"
        for symbol, inst in self.engine.instruments.items():
            bids, asks = self.bids(symbol), self.asks(symbol)
            for price, qty in bids + asks:
                assert qty > 0, f"{symbol} shows level {price} with qty {qty}"
            if bids and asks and inst.trading:
                assert bids[0][0] < asks[0][0], f"{symbol} is crossed or locked"

    def tick(self, *, at: int | None = None) -> list[Event]:
        return self.apply(Tick(), at=at)

    def open(
        self,
        name: str,
        *,
        deposit: int = 0,
        capacity: int = 0,
        symbol: str = CPU,
        roles: tuple[Role, ...] = BOTH,
    ) -> None:
        """Open an account, fund it and register sell capacity on ``symbol``."""
        self.apply(OpenAccount(name, roles))
        if deposit:
            self.apply(Deposit(name, deposit))
        if capacity:
            self.apply(SetCapacity(name, symbol, capacity))

    def place(
        self,
        account: str,
        side: Literal["buy", "sell"],
        qty: int,
        price: int | None = None,
        *,
        symbol: str = CPU,
        market: bool = False,
        tif: TimeInForce = "GTC",
        expire_at: int | None = None,
        post_only: bool = False,
        stp: SelfTradePrevention = "cancel_taker",
        coid: str | None = None,
        at: int | None = None,
    ) -> Placed:
        command = PlaceOrder(
            account,
            symbol,
            side,
            qty,
            type="market" if market else "limit",
            price=price,
            tif=tif,
            expire_at=expire_at,
            post_only=post_only,
            stp=stp,
            client_order_id=coid,
        )
        events = self.apply(command, at=at)
        return Placed(self.engine.seq, events)

    def buy(
        self, account: str, qty: int, price: int | None = None, **kw: Any
    ) -> Placed:
        return self.place(account, "buy", qty, price, **kw)

    def sell(
        self, account: str, qty: int, price: int | None = None, **kw: Any
    ) -> Placed:
        return self.place(account, "sell", qty, price, **kw)

    def cancel(
        self, account: str, order_id: int, *, at: int | None = None
    ) -> list[Event]:
        return self.apply(CancelOrder(account, order_id), at=at)

    def amend(
        self,
        account: str,
        order_id: int,
        *,
        qty: int | None = None,
        price: int | None = None,
    ) -> list[Event]:
        return self.apply(AmendOrder(account, order_id, qty=qty, price=price))

    def set_phase(self, phase: Phase, symbol: str = CPU) -> list[Event]:
        return self.apply(SetPhase(symbol, phase))

    # -- reading ----------------------------------------------------------------

    def bids(self, symbol: str = CPU) -> list[tuple[int, int]]:
        return self.engine.instruments[symbol].book.depth(BUY)

    def asks(self, symbol: str = CPU) -> list[tuple[int, int]]:
        return self.engine.instruments[symbol].book.depth(SELL)

    def balance(self, name: str) -> Balance:
        ledger = self.engine.ledger
        i = ledger.index(name)
        assert i is not None, f"no account {name}"
        return Balance(ledger.available[i], ledger.held[i], ledger.escrow[i])

    def committed(self, name: str, symbol: str = CPU) -> int:
        """Lots of ``name``'s capacity reserved by open sells and obligations."""
        i = self.engine.ledger.index(name)
        assert i is not None, f"no account {name}"
        committed = self.engine.snapshot().committed
        return sum(n for s, a, n in committed if (s, a) == (symbol, i))

    @property
    def fee_income(self) -> int:
        return self.engine.ledger.fee_income

    def is_open(self, order_id: int) -> bool:
        return order_id in self.engine.orders

    def queue(self, side: int, price: int, symbol: str = CPU) -> list[tuple[int, int]]:
        """The open orders at one price level as (order id, leaves), in queue order."""
        book = self.engine.instruments[symbol].book
        return [(o.order_id, o.leaves) for o in book.resting(side) if o.price == price]

    def state_hash(self) -> str:
        return self.engine.state_hash()

    def replay(self) -> Market:
        """A fresh market that applied this one's journal, stamps included."""
        twin = Market(self.config, self.book_factory)
        for seq, ts, command in self.journal:
            twin.engine.apply(seq, ts, command)
            twin.journal.append((seq, ts, command))
        twin.check()
        return twin


# -- expected events ------------------------------------------------------------


def accepted(
    order_id: int,
    account: str,
    side: str,
    qty: int,
    price: int | None,
    *,
    symbol: str = CPU,
    order_type: str = "limit",
    tif: str = "GTC",
    post_only: bool = False,
    expire_at: int | None = None,
    coid: str | None = None,
) -> OrderAccepted:
    return OrderAccepted(
        order_id=order_id,
        account=account,
        symbol=symbol,
        side=side,
        order_type=order_type,
        tif=tif,
        price=price,
        qty=qty,
        post_only=post_only,
        expire_at=expire_at,
        client_order_id=coid,
    )


def trade(
    trade_id: int,
    *,
    price: int,
    qty: int,
    taker_side: str,
    maker: tuple[int, str, int],
    taker: tuple[int, str, int],
    buyer_fee: int = 0,
    symbol: str = CPU,
) -> Trade:
    """A trade; ``maker`` and ``taker`` are (order id, account, leaves after)."""
    return Trade(
        trade_id=trade_id,
        symbol=symbol,
        price=price,
        qty=qty,
        taker_side=taker_side,
        maker_order_id=maker[0],
        taker_order_id=taker[0],
        maker_account=maker[1],
        taker_account=taker[1],
        maker_leaves=maker[2],
        taker_leaves=taker[2],
        buyer_fee=buyer_fee,
    )


def auction_trade(
    trade_id: int,
    *,
    price: int,
    qty: int,
    buy: tuple[int, str, int],
    sell: tuple[int, str, int],
    buyer_fee: int = 0,
    symbol: str = CPU,
) -> AuctionTrade:
    """An auction trade; ``buy`` and ``sell`` are (order id, account, leaves
    after)."""
    return AuctionTrade(
        trade_id=trade_id,
        symbol=symbol,
        price=price,
        qty=qty,
        buy_order_id=buy[0],
        sell_order_id=sell[0],
        buyer=buy[1],
        seller=sell[1],
        buy_leaves=buy[2],
        sell_leaves=sell[2],
        buyer_fee=buyer_fee,
    )


def cancelled(
    order_id: int,
    account: str,
    side: str,
    price: int | None,
    *,
    filled: int,
    reason: str,
    symbol: str = CPU,
    coid: str | None = None,
) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id,
        account=account,
        symbol=symbol,
        side=side,
        price=price,
        filled=filled,
        reason=reason,
        client_order_id=coid,
    )


def expired(
    order_id: int,
    account: str,
    side: str,
    price: int,
    *,
    filled: int = 0,
    symbol: str = CPU,
    coid: str | None = None,
) -> OrderExpired:
    return OrderExpired(
        order_id=order_id,
        account=account,
        symbol=symbol,
        side=side,
        price=price,
        filled=filled,
        client_order_id=coid,
    )


def amended(
    order_id: int,
    account: str,
    side: str,
    *,
    price: tuple[int, int],
    leaves: tuple[int, int],
    filled: int = 0,
    kept_priority: bool,
    symbol: str = CPU,
    coid: str | None = None,
) -> OrderAmended:
    """An amend; ``price`` and ``leaves`` are (old, new)."""
    return OrderAmended(
        order_id=order_id,
        account=account,
        symbol=symbol,
        side=side,
        old_price=price[0],
        price=price[1],
        old_leaves=leaves[0],
        leaves=leaves[1],
        filled=filled,
        kept_priority=kept_priority,
        client_order_id=coid,
    )


def rejected(
    account: str, code: Code, order_id: int | None = None, coid: str | None = None
) -> OrderRejected:
    return OrderRejected(
        account=account,
        code=code.value,
        message=CODES[code],
        order_id=order_id,
        client_order_id=coid,
    )


def command_rejected(op: str, code: Code) -> CommandRejected:
    return CommandRejected(op=op, code=code.value, message=CODES[code])


# -- random flows ------------------------------------------------------------------

TRADERS: Final = ("t1", "t2", "t3", "t4")


def random_flow(
    m: Market,
    rng: random.Random,
    n: int,
    *,
    releases: bool = False,
    call_phases: bool = False,
) -> None:
    """Apply ``n`` random commands of every kind to ``m``, trading on both symbols.

    Opens four traders (consumer and provider) on first use. With ``releases``,
    an escrow is sometimes released with a random payout between commands, as
    the settlement glue would, with a `ReleaseEscrow` command. With
    ``call_phases``, about one command in twelve changes or schedules a phase,
    the call phases (``pre_open``, ``batch``, ``closing``) included, so that
    orders collect for auctions; without it the flow only halts and closes.
    """
    if m.engine.ledger.index(TRADERS[0]) is None:
        for name in TRADERS:
            m.open(name, deposit=5_000_000, capacity=200)
            m.apply(SetCapacity(name, GPU, 200))
    for _ in range(n):
        # The extra draw is made only with ``call_phases``, so that the flows of
        # the other callers stay what they were.
        if call_phases and rng.random() < 0.08:
            command = _random_phase_command(m, rng)
        else:
            command = _random_command(m, rng)
        m.apply(command, at=m.now + rng.choice((0, STEP, 50 * STEP)))
        if releases and m.engine.ledger.escrows and rng.random() < 0.2:
            trade_id = rng.choice(sorted(m.engine.ledger.escrows))
            amount = m.engine.ledger.escrows[trade_id].amount
            m.apply(ReleaseEscrow(trade_id, rng.randint(0, amount)))


# The phases a random phase command names, by weight: mostly call phases, and
# rarely ``closed``, which empties the book.
_PHASE_DRAWS: Final[tuple[Phase, ...]] = (
    ("pre_open",) * 3
    + ("batch",) * 2
    + ("closing",) * 2
    + ("continuous", "halted", "halted", "closed")
)


def _random_phase_command(m: Market, rng: random.Random) -> Command:
    """A phase change now or later, to any phase; batch intervals are short so
    that batch auctions fire within a flow. Some schedules are not after the
    time they are applied at, and some intervals are 0: both are rejected."""
    symbol = rng.choice((CPU, GPU))
    phase: Phase = rng.choice(_PHASE_DRAWS)
    interval: int | None = None
    if phase == "batch":
        interval = rng.choice((None, 1, 20, 100, 0))
    if rng.random() < 0.6:
        return SetPhase(symbol, phase, interval)
    at = m.now + rng.randint(-1, 120) * STEP
    return SchedulePhase(symbol, phase, at, interval)


def _random_command(m: Market, rng: random.Random) -> Command:
    account = rng.choice(TRADERS)
    symbol = rng.choice((CPU, GPU))
    tick = 1 if symbol == CPU else 10
    roll = rng.random()
    open_orders = sorted(m.engine.orders)
    if m.engine.instruments[symbol].phase != "continuous" and roll < 0.15:
        return SetPhase(symbol, "continuous")
    if roll < 0.55:
        market = rng.random() < 0.1
        tif: TimeInForce = rng.choice(("GTC", "GTC", "IOC", "FOK", "GTD"))
        if market:
            tif = rng.choice(("IOC", "FOK"))
        post_only = tif in ("GTC", "GTD") and not market and rng.random() < 0.15
        return PlaceOrder(
            account,
            symbol,
            rng.choice(("buy", "sell")),
            rng.randint(1, 12),
            type="market" if market else "limit",
            price=None if market else tick * rng.randint(95, 105),
            tif=tif,
            expire_at=m.now + rng.randint(1, 200) * STEP if tif == "GTD" else None,
            post_only=post_only,
            stp=rng.choice(("cancel_taker", "cancel_maker", "cancel_both")),
        )
    if roll < 0.7 and open_orders:
        order = m.engine.orders[rng.choice(open_orders)]
        owner = m.engine.ledger.names[order.account]
        return CancelOrder(owner if rng.random() < 0.9 else account, order.order_id)
    if roll < 0.85 and open_orders:
        order = m.engine.orders[rng.choice(open_orders)]
        owner = m.engine.ledger.names[order.account]
        tick = 1 if order.symbol == CPU else 10
        qty = rng.choice((None, rng.randint(0, 15)))
        price = rng.choice((None, tick * rng.randint(95, 105)))
        return AmendOrder(owner, order.order_id, qty=qty, price=price)
    if roll < 0.9:
        return Tick()
    if roll < 0.94:
        return Deposit(account, rng.randint(-10, 100_000))
    if roll < 0.985:
        return Withdraw(account, rng.randint(1, 100_000))
    phase: Phase = rng.choice(("halted", "closed"))
    return SetPhase(symbol, phase)
