"""The engine: applies one stamped command at a time and returns its events.

The engine owns the books, the live orders, the ledger and the timers. It reads
time only from the commands' timestamps: before a command is applied, every timer
at or before the command's timestamp fires, in time order (GTD expiries, batch
auctions, scheduled phase changes, the futures lifecycle; see
`matching.phases`), so a `Tick` command is enough to drive them. The same
commands with the same stamps always give the same events and the same state
hash.

A client's mistake gives an `OrderRejected` or `CommandRejected` event and
changes nothing; exceptions are raised only for a sequencer that breaks its
contract (a gap in sequence numbers or time going backwards).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, Final, get_args

import msgspec

from matching import admin, futures, jobs, leases, phases, state
from matching.admin import is_count
from matching.book import (
    FILL,
    STOP_FUNDS,
    STOP_NONE,
    STOP_SELF_TRADE,
    Book,
    Happening,
)
from matching.codes import CODES, CancelReason, Code
from matching.commands import (
    AmendOrder,
    CancelOrder,
    CloseJob,
    Command,
    Deposit,
    EndLease,
    ListFuture,
    OpenAccount,
    OpenJob,
    OrderType,
    PlaceOrder,
    RecordUsage,
    ReleaseEscrow,
    SchedulePhase,
    SetCapacity,
    SetPhase,
    Tick,
    Withdraw,
)
from matching.config import (
    MAX_LABEL,
    MAX_PRICE,
    MAX_QTY,
    MAX_TIME,
    InstrumentSpec,
    MarketConfig,
    ResourceClass,
    load_market,
)
from matching.errors import SequenceError
from matching.events import (
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    Trade,
)
from matching.futures import Lease, Window
from matching.jobs import Job
from matching.ledger import Escrow, Ledger
from matching.order import (
    BUY,
    CANCEL_TAKER,
    FOK,
    GTC,
    GTD,
    IOC,
    MARKET_BUY_LIMIT,
    MARKET_SELL_LIMIT,
    SELL,
    SIDE_NAMES,
    STP_NAMES,
    STPS,
    TIF_NAMES,
    TIFS,
    UNLIMITED,
    Order,
    unit_hold,
)
from matching.phases import CALL_PHASES, LEASE_EXPIRY, LISTING, OPEN_PHASES
from matching.state import EngineState

__all__ = ["Engine", "Instrument"]

_NEVER: Final = 1 << 63
MAX_COUNTERPARTIES: Final = 64
"""The most accounts an order may name as its only counterparties."""
_TRADING: Final = "continuous"
_HEAP_SLACK: Final = 64
_ORDER_TYPES: Final = get_args(OrderType)


class Instrument:
    """One instrument's runtime state: its spec, book and trading phase.

    The fields the hot path reads (tick, fee rates) are copied out of the spec.

    Attributes:
        phase: the trading phase (see `matching.phases`).
        trading: whether orders match on arrival (``continuous``).
        accepting: whether new orders and amends are accepted.
        call: whether orders collect for an auction (a call phase).
        fast: whether the engine's fast path may place its plain orders.
        last_price: the last traded or auction price, the auctions' reference.
        batch_ms: the interval between batch auctions; 0 outside ``batch``.
        next_batch: when the next batch auction runs; 0 outside ``batch``.
        indicative: the last indicative (price, volume, surplus, bid, ask)
            published in this call phase, or None.
        ioc: ids of the IOC orders entered in a call phase, cancelled after the
            next auction.
        window: a future's delivery window and positions; None for spot.
        lease_ns: how long a spot trade's lease lasts, in ns; 0 for a future.
        expiring: (end, trade id) of the spot leases, in the order they end
            (some may have ended early: they are skipped).
    """

    __slots__ = (
        "accepting",
        "batch_ms",
        "book",
        "call",
        "capacity",
        "committed",
        "expiring",
        "fast",
        "hold_bps",
        "indicative",
        "ioc",
        "last_price",
        "lease_ns",
        "maker_bps",
        "next_batch",
        "phase",
        "spec",
        "symbol",
        "taker_bps",
        "tick",
        "trading",
        "window",
    )

    def __init__(
        self, spec: InstrumentSpec, book: Book, phase: str, ledger: Ledger
    ) -> None:
        self.spec = spec
        self.book = book
        self.capacity, self.committed = ledger.capacity_of(spec.symbol)
        self.symbol = spec.symbol
        self.tick = spec.tick
        self.taker_bps = spec.taker_fee_bps
        self.maker_bps = spec.maker_fee_bps
        self.hold_bps = spec.max_fee_bps
        self.last_price: int | None = None
        self.batch_ms = 0
        self.next_batch = 0
        self.indicative: tuple[int | None, int, int, int | None, int | None] | None = (
            None
        )
        self.ioc: list[int] = []
        self.window: Window | None = None
        self.lease_ns = spec.lease_seconds * 1_000_000_000
        self.expiring: deque[tuple[int, int]] = deque()
        self.set_phase(phase)

    def set_phase(self, phase: str) -> None:
        """Enter ``phase`` and set the flags that follow from it."""
        self.phase = phase
        self.trading = phase == _TRADING
        self.accepting = phase in OPEN_PHASES
        self.call = phase in CALL_PHASES
        self.fast = self.trading and self.spec.kind == "spot"


BookFactory = Callable[[], Any]


class Engine:
    """The deterministic matching engine for a whole market.

    Args:
        config: the market's resource classes; their spot instruments are listed
            in each class's ``spot_phase``.
        book_factory: makes an empty book per instrument; tests pass the simple
            reference book here to check the fast one.

    Raises:
        ConfigError: a value of ``config`` is out of range or of the wrong type
            (a configuration built in Python is checked like a decoded one).

    Attributes:
        seq: sequence number of the last command applied (0 before the first).
        now: timestamp of the last command applied, in ns since the epoch.
        config: the configuration it was built with.
        instruments: each instrument's spec, book and phase, by symbol.
        ledger: balances, escrows and capacity.
        orders: the open orders by id.
        closed: the owner's account number of every terminal order, by id, so
            that a cancel of one says ``ORDER_CLOSED``, not ``UNKNOWN_ORDER``.
        trade_seq: the id of the last trade (trades count from 1).
        leases: the futures leases being delivered, by id.
        lease_seq: the id of the last futures lease (they count from 1).
        usage: FLOPs recorded on each live lease, by (symbol, lease id).
        jobs: the open jobs, by id (see `matching.jobs`).
        job_seq: the id of the last job (they count from 1).
    """

    def __init__(self, config: MarketConfig, book_factory: BookFactory = Book) -> None:
        # A configuration built in Python has not been through the decoder:
        # check every value as `load_market` would, before anything uses it.
        load_market(msgspec.to_builtins(config))
        self.config = config
        self.classes: dict[str, ResourceClass] = {c.name: c for c in config.classes}
        self.book_factory = book_factory
        self.seq = 0
        self.now = 0
        self.ledger = Ledger()
        self._accounts = self.ledger.accounts
        self._available = self.ledger.available
        self._held = self.ledger.held
        self._names = self.ledger.names
        self.orders: dict[int, Order] = {}
        self.closed: dict[int, int] = {}
        self.trade_seq = 0
        self.leases: dict[int, Lease] = {}
        self.lease_seq = 0
        self.usage: dict[tuple[str, int], int] = {}
        self.jobs: dict[int, Job] = {}
        self.job_seq = 0
        self._expiries: list[tuple[int, int]] = []
        self._next_expiry = _NEVER
        self._timers: list[phases.Timer] = []
        self._timer_serial = 0
        self._next_timer = _NEVER
        # Instruments whose call book changed during the current command, in
        # the order they changed (a dict, so the order is deterministic).
        self._dirty: dict[str, None] = {}
        self.instruments: dict[str, Instrument] = {}
        for spec in config.instruments():
            phase = self.classes[spec.resource_class].spot_phase
            inst = Instrument(spec, book_factory(), phase, self.ledger)
            self.instruments[spec.symbol] = inst
            if phase == "batch":
                phases.start_batches(self, inst, None, 0)
        if any(c.futures and c.futures.list_ahead_hours for c in config.classes):
            phases.schedule(self, 0, LISTING, "", None, None)
        self._handlers: dict[type, Callable[[Any, list[Event]], None]] = {
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            AmendOrder: self._amend,
            Deposit: partial(admin.deposit, self),
            Withdraw: partial(admin.withdraw, self),
            OpenAccount: partial(admin.open_account, self),
            SetCapacity: partial(admin.set_capacity, self),
            SetPhase: partial(phases.set_phase, self),
            SchedulePhase: partial(phases.schedule_phase, self),
            ListFuture: partial(futures.list_future, self),
            ReleaseEscrow: partial(admin.release_escrow, self),
            RecordUsage: partial(leases.record_usage, self),
            EndLease: partial(leases.end_lease, self),
            OpenJob: partial(jobs.open_job, self),
            CloseJob: partial(jobs.close_job, self),
            Tick: _ignore,
        }

    # -- applying commands ------------------------------------------------------

    def apply(self, seq: int, ts: int, command: Command) -> list[Event]:
        """Apply ``command`` stamped with sequence number ``seq`` at time ``ts``.

        Returns the events it caused, in the order they happened: first those
        of the timers its timestamp passed, then its own, then the indicative
        prices of the call books it changed.

        Raises:
            SequenceError: ``seq`` is not the next number, or ``ts`` is not an
                int from the previous command's timestamp to `MAX_TIME`.
            TypeError: ``command`` is not one of the core's commands.
            In both cases the engine is unchanged.
        """
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"not a command of the core: {command!r}")
        # `_stamp`, inlined: this is every command's path.
        if (
            seq.__class__ is not int
            or ts.__class__ is not int
            or seq != self.seq + 1
            or not self.now <= ts <= MAX_TIME
        ):
            self._stamp(seq, ts)
        self.seq = seq
        self.now = ts
        events: list[Event] = []
        if ts >= self._next_expiry or ts >= self._next_timer:
            self._run_timers(ts, events)
        handler(command, events)
        if self._dirty:
            phases.publish_indicatives(self, events)
        return events

    def _stamp(self, seq: int, ts: int) -> list[Event]:
        """Take ``seq`` and ``ts`` as the current command's stamp, fire the
        timers it passes, and return the command's event list so far."""
        if (
            seq.__class__ is not int
            or ts.__class__ is not int
            or seq != self.seq + 1
            or not self.now <= ts <= MAX_TIME
        ):
            raise SequenceError(
                f"expected sequence {self.seq + 1} at or after {self.now}, "
                f"got {seq!r} at {ts!r}"
            )
        self.seq = seq
        self.now = ts
        events: list[Event] = []
        if ts >= self._next_expiry or ts >= self._next_timer:
            self._run_timers(ts, events)
        return events

    # -- the int-level entry points ---------------------------------------------
    #
    # A sequencer's hot path can skip the command objects: it resolves account
    # names once (`account_id`) and passes ints. Each entry point gives exactly
    # the events and the state that `apply` gives for the command it names, by
    # the same code (`apply` routes its orders and cancels here too), so a
    # journal records that command and replays it unchanged.

    def account_id(self, name: str) -> int | None:
        """The number of the account ``name`` for the int-level entry points,
        or None if there is none. A number never changes, and a restored
        snapshot gives every account the same number."""
        return self.ledger.index(name)

    def place_limit(
        self,
        seq: int,
        ts: int,
        account: int,
        symbol: str,
        side: int,
        price: int,
        qty: int,
        tif: int = GTC,
        expire_at: int | None = None,
        client_order_id: str | None = None,
    ) -> list[Event]:
        """Place a limit order: the same as `apply` of ``PlaceOrder(name,
        symbol, SIDE_NAMES[side], qty, "limit", price, TIF_NAMES[tif],
        expire_at, client_order_id=client_order_id)`` with the account's name.

        ``account`` comes from `account_id`; ``side`` is `BUY` or `SELL`;
        ``tif`` is `GTC`, `IOC`, `FOK` or `GTD` (GTD needs ``expire_at``, in ns
        since the epoch). A bad value is rejected exactly as in the command.

        Raises:
            SequenceError: as `apply`.
            ValueError: ``account`` is not an account number of this engine.
            In both cases the engine is unchanged.
        """
        # The hot path of a sequencer: `_check_account` and `_stamp` inlined.
        if account.__class__ is not int or not 0 <= account < len(self._names):
            self._check_account(account)
        if (
            seq.__class__ is not int
            or ts.__class__ is not int
            or seq != self.seq + 1
            or not self.now <= ts <= MAX_TIME
        ):
            self._stamp(seq, ts)
        self.seq = seq
        self.now = ts
        events: list[Event] = []
        if ts >= self._next_expiry or ts >= self._next_timer:
            self._run_timers(ts, events)

        inst = self.instruments.get(symbol) if symbol.__class__ is str else None
        # `(side | tif) >> 1` is 0 exactly when both are 0 or 1 (BUY or SELL,
        # GTC or IOC); `__class__ is int` refuses floats and bools.
        if (
            inst is None
            or not inst.fast
            or side.__class__ is not int
            or tif.__class__ is not int
            or (side | tif) >> 1
            or expire_at is not None
            or (
                client_order_id is not None
                and (
                    client_order_id.__class__ is not str
                    or len(client_order_id) > MAX_LABEL
                )
            )
            or qty.__class__ is not int
            or price.__class__ is not int
            or not 0 < qty <= MAX_QTY
            or not 0 < price <= MAX_PRICE
            or price % inst.tick
        ):
            command = PlaceOrder(
                self.ledger.names[account],
                symbol,
                _name(SIDE_NAMES, side),  # type: ignore[arg-type]
                qty,
                "limit",
                price,
                _name(TIF_NAMES, tif),  # type: ignore[arg-type]
                expire_at,
                client_order_id=client_order_id,
            )
            self._place_checked(command, inst, account, events)
        else:
            self._place_limit(
                inst, account, side, price, qty, tif, client_order_id, events
            )
        if self._dirty:
            phases.publish_indicatives(self, events)
        return events

    def place_market(
        self,
        seq: int,
        ts: int,
        account: int,
        symbol: str,
        side: int,
        qty: int,
        tif: int = IOC,
        client_order_id: str | None = None,
    ) -> list[Event]:
        """Place a market order: the same as `apply` of ``PlaceOrder(name,
        symbol, SIDE_NAMES[side], qty, "market", None, TIF_NAMES[tif],
        client_order_id=client_order_id)`` with the account's name.

        ``tif`` is `IOC` or `FOK`; the arguments are those of `place_limit`.

        Raises:
            SequenceError: as `apply`.
            ValueError: ``account`` is not an account number of this engine.
            In both cases the engine is unchanged.
        """
        self._check_account(account)
        events = self._stamp(seq, ts)
        inst = self.instruments.get(symbol) if symbol.__class__ is str else None
        if (
            inst is None
            or not inst.fast
            or tif != IOC
            or tif.__class__ is not int
            or side.__class__ is not int
            or (side != BUY and side != SELL)
            or (
                client_order_id is not None
                and (
                    client_order_id.__class__ is not str
                    or len(client_order_id) > MAX_LABEL
                )
            )
            or qty.__class__ is not int
            or not 0 < qty <= MAX_QTY
        ):
            command = PlaceOrder(
                self.ledger.names[account],
                symbol,
                _name(SIDE_NAMES, side),  # type: ignore[arg-type]
                qty,
                "market",
                None,
                _name(TIF_NAMES, tif),  # type: ignore[arg-type]
                client_order_id=client_order_id,
            )
            self._place_checked(command, inst, account, events)
        else:
            self._place_market(inst, account, side, qty, client_order_id, events)
        if self._dirty:
            phases.publish_indicatives(self, events)
        return events

    def cancel(self, seq: int, ts: int, account: int, order_id: int) -> list[Event]:
        """Cancel an open order: the same as `apply` of ``CancelOrder(name,
        order_id)`` with the account's name (from `account_id`).

        Raises:
            SequenceError: as `apply`.
            ValueError: ``account`` is not an account number of this engine.
            In both cases the engine is unchanged.
        """
        # The hot path of a sequencer: `_check_account` and `_stamp` inlined.
        if account.__class__ is not int or not 0 <= account < len(self._names):
            self._check_account(account)
        if (
            seq.__class__ is not int
            or ts.__class__ is not int
            or seq != self.seq + 1
            or not self.now <= ts <= MAX_TIME
        ):
            self._stamp(seq, ts)
        self.seq = seq
        self.now = ts
        events: list[Event] = []
        if ts >= self._next_expiry or ts >= self._next_timer:
            self._run_timers(ts, events)
        self._cancel_own(account, order_id, events)
        if self._dirty:
            phases.publish_indicatives(self, events)
        return events

    def _check_account(self, account: int) -> None:
        if account.__class__ is not int or not 0 <= account < len(self.ledger.names):
            raise ValueError(f"not an account number of this engine: {account!r}")

    def _run_timers(self, now: int, events: list[Event]) -> None:
        """Fire every timer due by ``now`` in time order, expiries first on ties."""
        timers = self._timers
        while True:
            at = timers[0][0] if timers else _NEVER
            if self._next_expiry <= at:
                if self._next_expiry > now:
                    break
                self._expire(min(at, now), events)
            else:
                if at > now:
                    break
                phases.fire(self, heapq.heappop(timers), events)
        self._next_timer = timers[0][0] if timers else _NEVER

    def next_timer(self) -> int:
        """When the engine's next timer is due, in ns since the epoch (2^63 if
        none): a `Tick` stamped then makes it fire."""
        return min(self._next_expiry, self._next_timer)

    # -- state ------------------------------------------------------------------

    def snapshot(self) -> EngineState:
        """The whole state as plain data (see `matching.state`)."""
        return state.snapshot(self)

    def state_hash(self) -> str:
        """A hex SHA-256 of the state: equal for engines that applied the same."""
        return state.state_hash(self)

    def check(self) -> None:
        """Raise `InvariantViolation` if any of the engine's invariants is broken."""
        state.check(self)

    @classmethod
    def restore(
        cls, config: MarketConfig, snap: EngineState, book_factory: BookFactory = Book
    ) -> Engine:
        """A new engine in the state of ``snap``, taken with the same ``config``."""
        return state.restore(config, snap, book_factory)

    # -- orders -----------------------------------------------------------------

    def _place(self, cmd: PlaceOrder, events: list[Event]) -> None:
        # The hot path of the whole exchange. A plain GTC or IOC limit order,
        # and a plain IOC market order, in continuous spot trading go to
        # `_place_limit` and `_place_market`; anything else, and anything that
        # may be invalid, goes through `_place_checked`, which applies every
        # rule and handles every kind of order.
        # Names are looked up only if they are strings: a command built in
        # Python may hold anything, and the engine must not fail on it.
        inst = self.instruments.get(cmd.symbol) if cmd.symbol.__class__ is str else None
        account = (
            self._accounts.get(cmd.account) if cmd.account.__class__ is str else None
        )
        side_name = cmd.side
        side = BUY if side_name == "buy" else SELL if side_name == "sell" else -1
        price = cmd.price
        qty = cmd.qty
        tif = cmd.tif
        coid = cmd.client_order_id
        # `__class__ is int` refuses floats and bools (and a missing price).
        if (
            inst is None
            or account is None
            or not inst.fast
            or side < 0
            or cmd.post_only is not False
            or cmd.expire_at is not None
            or cmd.stp != "cancel_taker"
            or (
                coid is not None
                and (coid.__class__ is not str or len(coid) > MAX_LABEL)
            )
            or qty.__class__ is not int
            or not 0 < qty <= MAX_QTY
            or cmd.counterparties
        ):
            self._place_checked(cmd, inst, account, events)
        elif cmd.type == "limit":
            if (
                (tif is None or tif == "GTC" or tif == "IOC")
                and price.__class__ is int
                and 0 < price <= MAX_PRICE
                and not price % inst.tick
            ):
                assert price is not None
                self._place_limit(
                    inst,
                    account,
                    side,
                    price,
                    qty,
                    IOC if tif == "IOC" else GTC,
                    coid,
                    events,
                )
            else:
                self._place_checked(cmd, inst, account, events)
        elif cmd.type == "market" and price is None and (tif is None or tif == "IOC"):
            self._place_market(inst, account, side, qty, coid, events)
        else:
            self._place_checked(cmd, inst, account, events)

    def _place_limit(
        self,
        inst: Instrument,
        account: int,
        side: int,
        price: int,
        qty: int,
        tif: int,
        coid: str | None,
        events: list[Event],
    ) -> None:
        """Place a limit order whose fields are all valid, `GTC` or `IOC`, with
        no flag and the default self-trade prevention, on an instrument whose
        ``fast`` is set: what `_place_checked` would do, with fewer steps."""
        book = inst.book
        if side == BUY:
            hold = price + (price * inst.hold_bps + 9_999) // 10_000
            need = hold * qty
            available = self._available
            if available[account] < need:
                events.append(
                    _order_rejected(
                        self._names[account], Code.INSUFFICIENT_FUNDS, None, coid
                    )
                )
                return
            available[account] -= need
            self._held[account] += need
            crosses = book.ask <= price
        else:
            committed = inst.committed
            used = committed.get(account, 0) + qty
            if used > inst.capacity.get(account, 0):
                events.append(
                    _order_rejected(
                        self._names[account], Code.INSUFFICIENT_CAPACITY, None, coid
                    )
                )
                return
            committed[account] = used
            hold = 0
            crosses = book.bid >= price
        order_id = self.seq
        symbol = inst.symbol
        order = Order(
            order_id,
            account,
            side,
            price,
            qty,
            0,
            hold,
            tif,
            0,
            CANCEL_TAKER,
            False,
            False,
            coid,
            symbol,
        )
        events.append(
            OrderAccepted(
                order_id,
                self._names[account],
                symbol,
                SIDE_NAMES[side],
                "limit",
                TIF_NAMES[tif],
                price,
                qty,
                False,
                None,
                coid,
            )
        )
        if crosses:
            self._take_and_rest(inst, order, UNLIMITED, events)
        elif tif == IOC:
            self._end_taker(order, CancelReason.UNFILLED, events)
        else:
            book.add(order)
            self.orders[order_id] = order

    def _place_market(
        self,
        inst: Instrument,
        account: int,
        side: int,
        qty: int,
        coid: str | None,
        events: list[Event],
    ) -> None:
        """Place an IOC market order whose fields are all valid, on an
        instrument whose ``fast`` is set: what `_place_checked` would do."""
        if side == BUY:
            budget = self._available[account]
            limit = MARKET_BUY_LIMIT
        else:
            committed = inst.committed
            used = committed.get(account, 0) + qty
            if used > inst.capacity.get(account, 0):
                events.append(
                    _order_rejected(
                        self._names[account], Code.INSUFFICIENT_CAPACITY, None, coid
                    )
                )
                return
            committed[account] = used
            budget = UNLIMITED
            limit = MARKET_SELL_LIMIT
        order_id = self.seq
        symbol = inst.symbol
        order = Order(
            order_id,
            account,
            side,
            limit,
            qty,
            0,
            0,
            IOC,
            0,
            CANCEL_TAKER,
            True,
            False,
            coid,
            symbol,
        )
        events.append(
            OrderAccepted(
                order_id,
                self._names[account],
                symbol,
                SIDE_NAMES[side],
                "market",
                "IOC",
                None,
                qty,
                False,
                None,
                coid,
            )
        )
        self._take_and_rest(inst, order, budget, events)

    def _place_checked(
        self,
        cmd: PlaceOrder,
        inst: Instrument | None,
        account: int | None,
        events: list[Event],
    ) -> None:
        """Place any order, checking every rule: the general path of `_place`."""
        code = self._check_place(cmd, inst, account)
        if code is not None:
            events.append(_order_rejected(cmd.account, code, None, cmd.client_order_id))
            return
        assert inst is not None
        assert account is not None
        book = inst.book
        side = BUY if cmd.side == "buy" else SELL
        is_market = cmd.type == "market"
        tif_name = _effective_tif(cmd)
        assert isinstance(tif_name, str)  # `_check_place` accepted it
        tif = TIFS[tif_name]
        if is_market:
            price = MARKET_BUY_LIMIT if side == BUY else MARKET_SELL_LIMIT
        else:
            assert cmd.price is not None
            price = cmd.price

        # Checks that depend on the book, then the reservation of money or
        # capacity, which must be the last check since it changes the ledger.
        if cmd.post_only and book.would_trade(side, price):
            events.append(
                _order_rejected(
                    cmd.account, Code.WOULD_TRADE, None, cmd.client_order_id
                )
            )
            return
        ledger = self.ledger
        hold = 0
        budget = UNLIMITED
        shortage: Code | None = None
        if side == SELL:
            if not self._commit_sell(inst, account, cmd.qty):
                shortage = Code.INSUFFICIENT_CAPACITY
        elif is_market:
            budget = ledger.available[account]
        else:
            hold = unit_hold(price, inst.hold_bps)
            if not ledger.hold(account, hold * cmd.qty):
                shortage = Code.INSUFFICIENT_FUNDS
        if shortage is not None:
            events.append(
                _order_rejected(cmd.account, shortage, None, cmd.client_order_id)
            )
            return

        order = Order(
            self.seq,
            account,
            side,
            price,
            cmd.qty,
            0,
            hold,
            tif,
            cmd.expire_at or 0,
            STPS[cmd.stp],
            is_market,
            cmd.post_only,
            cmd.client_order_id,
            inst.symbol,
        )
        events.append(
            OrderAccepted(
                self.seq,
                cmd.account,
                inst.symbol,
                cmd.side,
                cmd.type,
                tif_name,
                cmd.price,
                cmd.qty,
                cmd.post_only,
                cmd.expire_at,
                cmd.client_order_id,
            )
        )
        if inst.call:
            # A call phase: the order waits for the auction.
            book.add(order)
            self.orders[order.order_id] = order
            if tif == GTD:
                self._add_expiry(order)
            elif tif == IOC:
                inst.ioc.append(order.order_id)
            self._dirty[inst.symbol] = None
            return
        if tif == FOK and book.fillable(order, price, budget, inst.taker_bps) < cmd.qty:
            self._end_taker(order, CancelReason.FILL_OR_KILL, events)
            return
        if cmd.counterparties:
            self._take_from(inst, order, cmd.counterparties, events)
            return
        self._take_and_rest(inst, order, budget, events)
        if order.leaves and tif == GTD:
            self._add_expiry(order)

    def _check_place(
        self, cmd: PlaceOrder, inst: Instrument | None, account: int | None
    ) -> Code | None:
        """The first reason to reject ``cmd`` that needs neither book nor money.

        Every field is checked for its type as well as its value, because a
        command built in Python has not been through the decoder.
        """
        if inst is None:
            return Code.UNKNOWN_SYMBOL
        if account is None:
            return Code.UNKNOWN_ACCOUNT
        if not inst.accepting:
            return Code.NOT_TRADING
        if cmd.side not in SIDE_NAMES:
            return Code.INVALID_SIDE
        if not is_count(cmd.qty, MAX_QTY):
            return Code.INVALID_QUANTITY
        coid = cmd.client_order_id
        if coid is not None and (type(coid) is not str or len(coid) > MAX_LABEL):
            return Code.INVALID_CLIENT_ORDER_ID
        tif = _effective_tif(cmd)
        if (
            cmd.type not in _ORDER_TYPES
            or tif not in TIF_NAMES
            or cmd.stp not in STP_NAMES
            or type(cmd.post_only) is not bool
        ):
            return Code.INVALID_ORDER_TYPE
        if cmd.type == "market":
            if cmd.price is not None or cmd.post_only or tif not in ("IOC", "FOK"):
                return Code.INVALID_ORDER_TYPE
        else:
            if not is_count(cmd.price, MAX_PRICE):
                return Code.INVALID_PRICE
            if cmd.price % inst.tick:
                return Code.PRICE_NOT_ON_TICK
            if cmd.post_only and tif in ("IOC", "FOK"):
                return Code.INVALID_ORDER_TYPE
        if tif == "GTD":
            if not is_count(cmd.expire_at, MAX_TIME) or cmd.expire_at <= self.now:
                return Code.INVALID_EXPIRY
        elif cmd.expire_at is not None:
            return Code.INVALID_EXPIRY
        parties = cmd.counterparties
        if parties and (
            type(parties) is not tuple
            or len(parties) > MAX_COUNTERPARTIES
            or any(type(p) is not str or len(p) > MAX_LABEL for p in parties)
            or cmd.type != "limit"
            or tif != "IOC"
            or inst.call
        ):
            return Code.INVALID_COUNTERPARTIES
        # Nothing trades on arrival in a call phase, and a market buy's cost
        # cannot be held before its price is known.
        if inst.call and (cmd.type == "market" or tif == "FOK" or cmd.post_only):
            return Code.NOT_TRADING
        return None

    def _commit_sell(self, inst: Instrument, account: int, lots: int) -> bool:
        """Reserve capacity for ``lots`` more open sell lots, if it allows."""
        if inst.window is not None:
            return futures.commit_sell(inst, account, lots)
        return self.ledger.commit(inst.symbol, account, lots)

    def _take_from(
        self,
        inst: Instrument,
        order: Order,
        parties: tuple[str, ...],
        events: list[Event],
    ) -> None:
        """Match an IOC limit order only with the resting orders of
        ``parties``, in price and time priority; cancel what is left."""
        allowed = {
            number
            for name in parties
            if (number := self._accounts.get(name)) is not None
            and number != order.account
        }
        start = order.leaves
        out = inst.book.take_from(order, order.price, allowed)
        if out:
            self._settle(inst, order, start, out, events)
        if order.leaves:
            self._end_taker(order, CancelReason.UNFILLED, events)
        else:
            self.closed[order.order_id] = order.account
            self.orders.pop(order.order_id, None)

    def _take_and_rest(
        self, inst: Instrument, order: Order, budget: int, events: list[Event]
    ) -> None:
        """Match an incoming (or re-priced) order; rest or cancel what is left."""
        book = inst.book
        start = order.leaves
        stop = STOP_NONE
        price = order.price
        if (book.ask <= price) if order.side == BUY else (book.bid >= price):
            out: list[Happening] = []
            stop = book.match(order, price, budget, inst.taker_bps, out)
            self._settle(inst, order, start, out, events)

        if not order.leaves:
            self.closed[order.order_id] = order.account
            self.orders.pop(order.order_id, None)
        elif stop == STOP_SELF_TRADE:
            self._end_taker(order, CancelReason.SELF_TRADE, events)
        elif stop == STOP_FUNDS:
            self._end_taker(order, CancelReason.INSUFFICIENT_FUNDS, events)
        elif order.is_market or order.tif == IOC or order.tif == FOK:
            self._end_taker(order, CancelReason.UNFILLED, events)
        else:
            book.add(order)
            self.orders[order.order_id] = order

    def _settle(
        self,
        inst: Instrument,
        taker: Order,
        start: int,
        out: list[Happening],
        events: list[Event],
    ) -> None:
        """Turn the book's happenings into ledger moves and events, in order.

        Every trade takes this path, so the moves of `Ledger.settle_fill` and
        the lease start of `_lease_started` are inlined, and the counters the
        loop adds to (trade ids, fee income, the taker's filled lots) are
        written back once at the end.
        """
        ledger = self.ledger
        names = self._names
        available = self._available
        held = self._held
        escrow = ledger.escrow
        escrows = ledger.escrows
        orders = self.orders
        closed = self.closed
        symbol = inst.symbol
        taker_bps = inst.taker_bps
        maker_bps = inst.maker_bps
        taker_buys = taker.side == BUY
        taker_side = SIDE_NAMES[taker.side]
        taker_name = names[taker.account]
        taker_id = taker.order_id
        window = inst.window
        # A spot trade is a lease until then (see matching.leases).
        ends_at = self.now + inst.lease_ns if window is None else 0
        expiring = inst.expiring
        trade_id = self.trade_seq
        leaves = start
        filled = 0
        fees = 0
        for kind, maker, price, qty in out:
            if kind != FILL:
                event = _cancelled(self, maker, CancelReason.SELF_TRADE)
                self._close(maker, qty, event, events)
                continue
            leaves -= qty
            filled += qty
            maker.filled += qty
            trade_id += 1
            notional = price * qty
            if taker_buys:
                buyer, seller = taker, maker
                fee = (notional * taker_bps + 9_999) // 10_000
                seller_bps = maker_bps
            else:
                buyer, seller = maker, taker
                fee = (notional * maker_bps + 9_999) // 10_000
                seller_bps = taker_bps

            # The buyer pays the notional into this trade's escrow (out of its
            # order's hold, if it has one) and its fee to the venue.
            account = buyer.account
            from_hold = buyer.unit_hold * qty
            if from_hold:
                held[account] -= from_hold
                available[account] += from_hold - notional - fee
            else:
                available[account] -= notional + fee
            escrow[account] += notional
            fees += fee
            escrows[trade_id] = Escrow(
                trade_id,
                symbol,
                account,
                seller.account,
                qty,
                notional,
                seller_bps,
                ends_at,
            )
            inst.last_price = price
            if window is not None:
                window.bought(account, qty)
            else:
                if not expiring:
                    phases.schedule(self, ends_at, LEASE_EXPIRY, symbol, None, None)
                expiring.append((ends_at, trade_id))

            events.append(
                Trade(
                    trade_id,
                    symbol,
                    price,
                    qty,
                    taker_side,
                    maker.order_id,
                    taker_id,
                    names[maker.account],
                    taker_name,
                    maker.leaves,
                    leaves,
                    fee,
                )
            )
            if not maker.leaves:
                del orders[maker.order_id]
                closed[maker.order_id] = maker.account
        self.trade_seq = trade_id
        ledger.fee_income += fees
        taker.filled += filled

    def _lease_started(self, inst: Instrument, ends_at: int, trade_id: int) -> None:
        """Queue a spot lease's end; the first in the queue has a timer."""
        inst.expiring.append((ends_at, trade_id))
        if len(inst.expiring) == 1:
            phases.schedule(self, ends_at, LEASE_EXPIRY, inst.symbol, None, None)

    def _end_taker(self, order: Order, reason: str, events: list[Event]) -> None:
        """Cancel the remainder of an order that is not (or no longer) resting."""
        open_qty = order.leaves
        order.leaves = 0
        self._close(order, open_qty, _cancelled(self, order, reason), events)

    def _close(
        self, order: Order, open_qty: int, event: Event, events: list[Event]
    ) -> None:
        """Make an order terminal: give back what its ``open_qty`` lots reserved,
        forget it as open, remember it as closed, and report ``event``.

        The order must already be off the book (or never have rested).
        """
        self._release(order, open_qty)
        self.orders.pop(order.order_id, None)
        self.closed[order.order_id] = order.account
        events.append(event)

    def _release(self, order: Order, open_qty: int) -> None:
        """Give back what ``open_qty`` open lots of ``order`` reserved."""
        if order.side == BUY:
            self.ledger.release(order.account, order.unit_hold * open_qty)
        elif open_qty:
            self.ledger.uncommit(order.symbol, order.account, open_qty)

    def _find_own_order(
        self, account: int | None, order_id: int
    ) -> tuple[Order | None, Code | None]:
        """The open order ``order_id`` of ``account``, or why there is none."""
        if account is None:
            return None, Code.UNKNOWN_ACCOUNT
        if type(order_id) is not int:
            return None, Code.UNKNOWN_ORDER
        order = self.orders.get(order_id)
        if order is None:
            owner = self.closed.get(order_id)
            if owner is None:
                return None, Code.UNKNOWN_ORDER
            return None, Code.ORDER_CLOSED if owner == account else Code.ORDER_NOT_OWNED
        if order.account != account:
            return None, Code.ORDER_NOT_OWNED
        return order, None

    def _cancel(self, cmd: CancelOrder, events: list[Event]) -> None:
        account = self.ledger.index(cmd.account)
        if account is None:
            events.append(
                _order_rejected(cmd.account, Code.UNKNOWN_ACCOUNT, cmd.order_id, None)
            )
            return
        self._cancel_own(account, cmd.order_id, events)

    def _cancel_own(self, account: int, order_id: int, events: list[Event]) -> None:
        """Cancel the open order ``order_id`` of ``account``, or reject it."""
        order = self.orders.get(order_id) if order_id.__class__ is int else None
        if order is None or order.account != account:
            _, code = self._find_own_order(account, order_id)
            assert code is not None
            events.append(_order_rejected(self._names[account], code, order_id, None))
            return
        self._cancel_resting(order, CancelReason.USER, events)

    def _cancel_resting(self, order: Order, reason: str, events: list[Event]) -> None:
        """Take a resting order off its book, give back what it reserved, and
        report it cancelled: `_close` with its steps inlined, since every
        cancel takes this path."""
        open_qty = order.leaves
        inst = self.instruments[order.symbol]
        inst.book.remove(order)
        if inst.call:
            self._dirty[inst.symbol] = None

        account = order.account
        if order.side == BUY:
            amount = order.unit_hold * open_qty
            self._held[account] -= amount
            self._available[account] += amount
        elif open_qty:
            # `Ledger.uncommit`: ``inst.committed`` is the ledger's own dict.
            committed = inst.committed
            left = committed[account] - open_qty
            if left:
                committed[account] = left
            else:
                del committed[account]
        order_id = order.order_id
        self.orders.pop(order_id, None)
        self.closed[order_id] = account
        events.append(
            OrderCancelled(
                order_id,
                self._names[account],
                inst.symbol,
                SIDE_NAMES[order.side],
                None if order.is_market else order.price,
                order.filled,
                reason,
                order.client_order_id,
            )
        )

    def _amend(self, cmd: AmendOrder, events: list[Event]) -> None:
        order, code = self._find_own_order(self.ledger.index(cmd.account), cmd.order_id)
        if order is not None:
            code = self._check_amend(cmd, order)
        if code is not None:
            coid = order.client_order_id if order is not None else None
            events.append(_order_rejected(cmd.account, code, cmd.order_id, coid))
            return
        assert order is not None
        inst = self.instruments[order.symbol]
        old_leaves = order.leaves
        old_price = order.price
        leaves = old_leaves if cmd.qty is None else cmd.qty
        price = old_price if cmd.price is None else cmd.price

        # Reserve the difference first: if it is not there, nothing changes.
        if order.side == BUY:
            hold = unit_hold(price, inst.hold_bps)
            extra = hold * leaves - order.unit_hold * old_leaves
            if extra > 0 and not self.ledger.hold(order.account, extra):
                events.append(
                    _order_rejected(
                        cmd.account,
                        Code.INSUFFICIENT_FUNDS,
                        order.order_id,
                        order.client_order_id,
                    )
                )
                return
            if extra < 0:
                self.ledger.release(order.account, -extra)
        else:
            hold = 0
            extra = leaves - old_leaves
            if extra > 0 and not self._commit_sell(inst, order.account, extra):
                events.append(
                    _order_rejected(
                        cmd.account,
                        Code.INSUFFICIENT_CAPACITY,
                        order.order_id,
                        order.client_order_id,
                    )
                )
                return
            if extra < 0:
                self.ledger.uncommit(order.symbol, order.account, -extra)

        keeps_place = price == old_price and leaves < old_leaves
        events.append(
            OrderAmended(
                order.order_id,
                cmd.account,
                order.symbol,
                SIDE_NAMES[order.side],
                old_price,
                price,
                old_leaves,
                leaves,
                order.filled,
                keeps_place,
                order.client_order_id,
            )
        )
        if inst.call:
            self._dirty[inst.symbol] = None
        if keeps_place:
            inst.book.reduce(order, leaves)
            return

        # Losing priority: the old queue entry dies, a new record joins the back
        # of its (new) level, and a new price may trade like an incoming order.
        moved = order.copy()
        moved.price = price
        moved.leaves = leaves
        moved.unit_hold = hold
        inst.book.remove(order)
        self.orders[moved.order_id] = moved
        if inst.trading:
            self._take_and_rest(inst, moved, UNLIMITED, events)
        else:
            inst.book.add(moved)

    def _check_amend(self, cmd: AmendOrder, order: Order) -> Code | None:
        inst = self.instruments[order.symbol]
        if not inst.accepting:
            return Code.NOT_TRADING
        if cmd.qty is None and cmd.price is None:
            return Code.NOTHING_TO_AMEND
        if cmd.qty is not None and not is_count(cmd.qty, MAX_QTY):
            return Code.INVALID_QUANTITY
        if cmd.price is not None:
            if not is_count(cmd.price, MAX_PRICE):
                return Code.INVALID_PRICE
            if cmd.price % inst.tick:
                return Code.PRICE_NOT_ON_TICK
        leaves = order.leaves if cmd.qty is None else cmd.qty
        price = order.price if cmd.price is None else cmd.price
        if leaves == order.leaves and price == order.price:
            return Code.NOTHING_TO_AMEND
        # A post-only order stays post-only: it may not be re-priced into a trade.
        if (
            price != order.price
            and order.post_only
            and inst.trading
            and inst.book.would_trade(order.side, price)
        ):
            return Code.WOULD_TRADE
        return None

    # -- timers -----------------------------------------------------------------

    def _add_expiry(self, order: Order) -> None:
        """Start the timer of a resting GTD order."""
        heap = self._expiries
        heapq.heappush(heap, (order.expire_at, order.order_id))
        if order.expire_at < self._next_expiry:
            self._next_expiry = order.expire_at
        # Timers of orders that left early are dropped lazily; rebuild the heap
        # before they outnumber the open orders.
        if len(heap) > 2 * len(self.orders) + _HEAP_SLACK:
            heap[:] = [
                (o.expire_at, o.order_id) for o in self.orders.values() if o.tif == GTD
            ]
            heapq.heapify(heap)

    def _expire(self, now: int, events: list[Event]) -> None:
        heap = self._expiries
        while heap and heap[0][0] <= now:
            _, order_id = heapq.heappop(heap)
            order = self.orders.get(order_id)
            if order is None:
                continue
            open_qty = order.leaves
            inst = self.instruments[order.symbol]
            inst.book.remove(order)
            if inst.call:
                self._dirty[inst.symbol] = None
            expired = OrderExpired(
                order_id,
                self.ledger.names[order.account],
                order.symbol,
                SIDE_NAMES[order.side],
                order.price,
                order.filled,
                order.client_order_id,
            )
            self._close(order, open_qty, expired, events)
        self._next_expiry = heap[0][0] if heap else _NEVER


def _effective_tif(cmd: PlaceOrder) -> object:
    """The order's time in force: GTC for a limit and IOC for a market by default."""
    if cmd.tif is not None:
        return cmd.tif
    return "IOC" if cmd.type == "market" else "GTC"


def _name(names: tuple[str, ...], value: object) -> object:
    """The name of a side or time in force given as an int; any other value as
    it is, for the checks to reject."""
    if value.__class__ is int and 0 <= value < len(names):
        return names[value]
    return value


def _ignore(command: Tick, events: list[Event]) -> None:
    """A tick only moves the clock, which `Engine.apply` has already done."""


def _order_rejected(
    account: object, code: Code, order_id: object, client_order_id: object
) -> OrderRejected:
    """The rejection of an order command; it echoes only well-typed fields."""
    return OrderRejected(
        account if type(account) is str else "",
        code.value,
        CODES[code],
        order_id if type(order_id) is int else None,
        client_order_id if type(client_order_id) is str else None,
    )


def _cancelled(engine: Engine, order: Order, reason: str) -> OrderCancelled:
    return OrderCancelled(
        order.order_id,
        engine.ledger.names[order.account],
        order.symbol,
        SIDE_NAMES[order.side],
        None if order.is_market else order.price,
        order.filled,
        reason,
        order.client_order_id,
    )
