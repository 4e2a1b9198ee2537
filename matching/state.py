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
from matching.errors import ConfigError, InvariantViolation
from matching.ledger import Escrow
from matching.order import BUY, GTD, SELL, Order

if TYPE_CHECKING:
    from matching.config import MarketConfig
    from matching.engine import BookFactory, Engine

__all__ = ["EngineState", "check", "restore", "snapshot", "state_hash"]


class AccountState(msgspec.Struct, array_like=True):
    name: str
    roles: tuple[Role, ...]
    available: int
    held: int
    escrow: int


class InstrumentState(msgspec.Struct, array_like=True):
    symbol: str
    phase: str
    bids: list[Order]
    asks: list[Order]


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
    for inst_state in state.instruments:
        inst = engine.instruments[inst_state.symbol]
        inst.set_phase(inst_state.phase)
        for order in inst_state.bids + inst_state.asks:
            live = order.copy()
            inst.book.add(live)
            engine.orders[live.order_id] = live
            if live.tif == GTD:
                engine._add_expiry(live)
    return engine


def check(engine: Engine) -> None:
    """Raise `InvariantViolation` if any invariant of the engine is broken.

    Checked: each book's structure and that it is not crossed; conservation of
    money and no negative balance; every account's held balance equals the holds
    of its open buy orders; committed capacity equals open sells plus delivery
    obligations; the open-order table and the books agree; no open order is
    also closed; no GTD order is open past its expiry.
    """
    ledger = engine.ledger
    ledger.check()
    held = [0] * len(ledger.names)
    committed: Counter[tuple[str, int]] = Counter()
    resting: dict[int, Order] = {}
    for symbol, inst in engine.instruments.items():
        inst.book.check()
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
    for entry in ledger.escrows.values():
        committed[entry.symbol, entry.seller] += entry.lots

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


def _flatten(by_symbol: dict[str, dict[int, int]]) -> list[tuple[str, int, int]]:
    """``{symbol: {account: lots}}`` as sorted triples, without zero entries."""
    return sorted(
        (symbol, account, lots)
        for symbol, by_account in by_symbol.items()
        for account, lots in by_account.items()
        if lots
    )
