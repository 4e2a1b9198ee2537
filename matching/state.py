"""The engine's whole state as plain data: snapshot, restore, hash and self-check.

A snapshot lists every piece of state that can change what the engine does next,
in a canonical order (resting orders in queue order, everything else sorted), so
that two engines that applied the same commands give byte-identical encodings
and the same `state_hash`. Restoring a snapshot and applying the rest of the
journal gives the same state as applying the whole journal.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import TYPE_CHECKING

import msgspec

from matching.commands import Role
from matching.config import HOUR, future_instrument
from matching.errors import ConfigError, InvariantViolation
from matching.futures import Lease, Window, relink_overlaps
from matching.jobs import Job
from matching.ledger import Escrow
from matching.order import BUY, GTD, IOC, SELL, Order
from matching.phases import Timer

if TYPE_CHECKING:
    from matching.config import MarketConfig
    from matching.engine import BookFactory, Engine, Instrument

__all__ = ["EngineState", "check", "restore", "snapshot", "state_hash"]


class AccountState(msgspec.Struct, array_like=True):
    name: str
    roles: tuple[Role, ...]
    available: int
    held: int
    escrow: int


class WindowState(msgspec.Struct, array_like=True):
    resource_class: str
    start: int
    end: int
    call_at: int
    gate_at: int
    stage: str
    settlement: int | None
    long: list[tuple[int, int]]
    delivering: list[tuple[int, int]]


class InstrumentState(msgspec.Struct, array_like=True):
    symbol: str
    phase: str
    bids: list[Order]
    asks: list[Order]
    last_price: int | None
    batch_ms: int
    next_batch: int
    indicative: tuple[int | None, int, int, int | None, int | None] | None
    ioc: list[int]
    window: WindowState | None
    expiring: list[tuple[int, int]]


class EngineState(msgspec.Struct):
    """Everything an engine needs to carry on exactly where it was."""

    config_digest: str
    seq: int
    now: int
    trade_seq: int
    instruments: list[InstrumentState]
    accounts: list[AccountState]
    fee_income: int
    deposits: int
    withdrawals: int
    escrows: list[Escrow]
    capacity: list[tuple[str, int, int]]
    committed: list[tuple[str, int, int]]
    closed: list[tuple[int, int]]
    leases: list[Lease]
    lease_seq: int
    timers: list[Timer]
    timer_serial: int
    usage: list[tuple[str, int, int]]
    jobs: list[Job] = []
    job_seq: int = 0


def snapshot(engine: Engine) -> EngineState:
    """The engine's state as plain, canonically ordered data."""
    ledger = engine.ledger
    return EngineState(
        config_digest=engine.config.digest(),
        seq=engine.seq,
        now=engine.now,
        trade_seq=engine.trade_seq,
        instruments=[
            InstrumentState(
                symbol,
                inst.phase,
                [o.copy() for o in inst.book.resting(BUY)],
                [o.copy() for o in inst.book.resting(SELL)],
                inst.last_price,
                inst.batch_ms,
                inst.next_batch,
                inst.indicative,
                [i for i in inst.ioc if i in engine.orders],
                _window_state(inst.spec.resource_class, inst.window),
                list(inst.expiring),
            )
            for symbol, inst in sorted(engine.instruments.items())
        ],
        accounts=[
            AccountState(
                name,
                ledger.roles[i],
                ledger.available[i],
                ledger.held[i],
                ledger.escrow[i],
            )
            for i, name in enumerate(ledger.names)
        ],
        fee_income=ledger.fee_income,
        deposits=ledger.deposits,
        withdrawals=ledger.withdrawals,
        escrows=[ledger.escrows[k] for k in sorted(ledger.escrows)],
        capacity=_flatten(ledger.capacity),
        committed=_flatten(ledger.committed),
        closed=sorted(engine.closed.items()),
        leases=[engine.leases[k] for k in sorted(engine.leases)],
        lease_seq=engine.lease_seq,
        timers=sorted(engine._timers),
        timer_serial=engine._timer_serial,
        usage=sorted((s, i, n) for (s, i), n in engine.usage.items()),
        jobs=[engine.jobs[k] for k in sorted(engine.jobs)],
        job_seq=engine.job_seq,
    )


def _window_state(resource_class: str, window: Window | None) -> WindowState | None:
    if window is None:
        return None
    return WindowState(
        resource_class,
        window.start,
        window.end,
        window.call_at,
        window.gate_at,
        window.stage,
        window.settlement,
        sorted(window.long.items()),
        sorted(window.delivering.items()),
    )


def state_hash(engine: Engine) -> str:
    """A hex SHA-256 of the canonical encoding of the engine's state."""
    encoded = msgspec.msgpack.encode(snapshot(engine))
    return hashlib.sha256(encoded).hexdigest()


def restore(
    config: MarketConfig, state: EngineState, book_factory: BookFactory
) -> Engine:
    """A new engine in exactly the state of ``state``.

    Raises:
        ConfigError: ``state`` was taken from an engine with another
            configuration; running it against this one would diverge.
    """
    from matching.engine import Engine

    if state.config_digest != config.digest():
        raise ConfigError(
            "the snapshot was taken with another market configuration "
            f"({state.config_digest[:12]}…, this one is {config.digest()[:12]}…)"
        )
    engine = Engine(config, book_factory)
    engine.seq = state.seq
    engine.now = state.now
    engine.trade_seq = state.trade_seq
    ledger = engine.ledger
    for acc in state.accounts:
        number = ledger.open(acc.name, acc.roles)
        ledger.available[number] = acc.available
        ledger.held[number] = acc.held
        ledger.escrow[number] = acc.escrow
    ledger.fee_income = state.fee_income
    ledger.deposits = state.deposits
    ledger.withdrawals = state.withdrawals
    ledger.escrows = {e.trade_id: e for e in state.escrows}
    for symbol, account, lots in state.capacity:
        ledger.capacity_of(symbol)[0][account] = lots
    for symbol, account, lots in state.committed:
        ledger.capacity_of(symbol)[1][account] = lots
    engine.closed = dict(state.closed)
    engine.leases = {lease.lease_id: lease for lease in state.leases}
    engine.lease_seq = state.lease_seq
    engine._timers = list(state.timers)
    engine._timer_serial = state.timer_serial
    engine.usage = {(s, i): n for s, i, n in state.usage}
    engine.jobs = {job.job_id: job for job in state.jobs}
    engine.job_seq = state.job_seq
    engine._next_timer = min((t[0] for t in state.timers), default=1 << 63)
    for inst_state in state.instruments:
        inst = _instrument(engine, inst_state)
        inst.set_phase(inst_state.phase)
        inst.last_price = inst_state.last_price
        inst.batch_ms = inst_state.batch_ms
        inst.next_batch = inst_state.next_batch
        inst.indicative = inst_state.indicative
        inst.ioc = list(inst_state.ioc)
        inst.expiring.extend(inst_state.expiring)
        for order in inst_state.bids + inst_state.asks:
            live = order.copy()
            inst.book.add(live)
            engine.orders[live.order_id] = live
            if live.tif == GTD:
                engine._add_expiry(live)
    relink_overlaps(engine)
    return engine


def _instrument(engine: Engine, inst_state: InstrumentState) -> Instrument:
    """The engine's instrument for ``inst_state``, listing a future if need be."""
    from matching.engine import Instrument

    saved = inst_state.window
    if saved is None:
        return engine.instruments[inst_state.symbol]
    rc = engine.classes[saved.resource_class]
    spec = future_instrument(rc, saved.start, (saved.end - saved.start) // HOUR)
    inst = Instrument(spec, engine.book_factory(), inst_state.phase, engine.ledger)
    window = Window(saved.start, saved.end, saved.call_at, saved.gate_at)
    window.stage = saved.stage
    window.settlement = saved.settlement
    window.long = dict(saved.long)
    window.delivering = dict(saved.delivering)
    inst.window = window
    engine.instruments[spec.symbol] = inst
    return inst


def check(engine: Engine) -> None:
    """Raise `InvariantViolation` if any invariant of the engine is broken.

    Checked: each book's structure, and that it is not crossed in continuous
    trading; conservation of money and no negative balance; every account's
    held balance equals the holds of its open buy orders; committed capacity
    equals open sells plus delivery obligations; a future's long positions
    equal its unreleased purchases; the open-order table and the books agree;
    no open order is also closed; no GTD order is open past its expiry; no IOC
    order rests in continuous trading.
    """
    ledger = engine.ledger
    ledger.check()
    held = [0] * len(ledger.names)
    committed: Counter[tuple[str, int]] = Counter()
    resting: dict[int, Order] = {}
    for symbol, inst in engine.instruments.items():
        inst.book.check(crossed_ok=not inst.trading)
        for side in (BUY, SELL):
            for order in inst.book.resting(side):
                if order.symbol != symbol or order.side != side:
                    raise InvariantViolation(f"order {order.order_id} misplaced")
                if order.order_id in resting:
                    raise InvariantViolation(f"order {order.order_id} rests twice")
                resting[order.order_id] = order
                if side == BUY:
                    held[order.account] += order.leaves * order.unit_hold
                else:
                    committed[symbol, order.account] += order.leaves
                if order.tif == GTD and order.expire_at <= engine.now:
                    raise InvariantViolation(f"order {order.order_id} outlived expiry")
                if order.tif == IOC and inst.trading:
                    raise InvariantViolation(f"IOC order {order.order_id} rests")
    bought: Counter[tuple[str, int]] = Counter()
    for entry in ledger.escrows.values():
        committed[entry.symbol, entry.seller] += entry.lots
        bought[entry.symbol, entry.buyer] += entry.lots
    for lease in engine.leases.values():
        listed = engine.instruments.get(lease.symbol)
        if listed is None or listed.window is None:
            raise InvariantViolation(f"lease {lease.lease_id} of no listed future")
    for (symbol, lease_id), used in engine.usage.items():
        _check_usage(engine, symbol, lease_id, used)
    for symbol, inst in engine.instruments.items():
        window = inst.window
        if window is None:
            continue
        want = {a: n for (s, a), n in bought.items() if s == symbol}
        if window.long != want:
            raise InvariantViolation(
                f"{symbol}: long positions {window.long} != purchases {want}"
            )

    if held != ledger.held:
        raise InvariantViolation(f"held balances {ledger.held} != order holds {held}")
    recorded = {(s, a): n for s, a, n in _flatten(ledger.committed)}
    if dict(committed) != recorded:
        raise InvariantViolation(
            f"committed capacity {recorded} != open sells and "
            f"obligations {dict(committed)}"
        )
    if resting.keys() != engine.orders.keys() or any(
        engine.orders[k] is not v for k, v in resting.items()
    ):
        raise InvariantViolation("the open-order table and the books disagree")
    both = resting.keys() & engine.closed.keys()
    if both:
        raise InvariantViolation(f"orders both open and closed: {sorted(both)[:5]}")


def _check_usage(engine: Engine, symbol: str, lease_id: int, used: int) -> None:
    """Usage is recorded only on live leases, within what their lots cover."""
    from matching.leases import flops_capacity

    inst = engine.instruments.get(symbol)
    lots = None
    if inst is not None and inst.window is None:
        entry = engine.ledger.escrows.get(lease_id)
        lots = entry.lots if entry is not None and entry.ends_at else None
    elif inst is not None:
        lease = engine.leases.get(lease_id)
        lots = lease.lots if lease is not None else None
    if lots is None:
        raise InvariantViolation(
            f"usage recorded on no live lease: {symbol} {lease_id}"
        )
    if not 0 < used <= flops_capacity(lots, inst.spec.lot_cu):  # type: ignore[union-attr]
        raise InvariantViolation(f"usage {used} of lease {symbol} {lease_id}")


def _flatten(by_symbol: dict[str, dict[int, int]]) -> list[tuple[str, int, int]]:
    """``{symbol: {account: lots}}`` as sorted triples, without zero entries."""
    return sorted(
        (symbol, account, lots)
        for symbol, by_account in by_symbol.items()
        for account, lots in by_account.items()
        if lots
    )
