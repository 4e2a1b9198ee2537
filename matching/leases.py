"""Leases: what a trade entitles its buyer to, metered and settled.

A spot trade is a lease of the traded lots from the seller (the provider) to the
buyer (the consumer), valid for the class's ``lease_seconds`` from the trade.
Its id is the trade's id, and its escrow is the trade's. A future's delivery
creates leases for its window (`matching.futures`), numbered on their own. A
lease is named by its instrument's symbol and its id.

The exchange meters the work a lease runs and reports it with `RecordUsage`
(exact FLOPs, checked against the metering formula before it gets here). A
spot lease ends, and is settled, in one of these terminal states:

- ``used_up``: its job finished (`EndLease`), its FLOPs reached what its lots
  cover, or `ReleaseEscrow` paid it explicitly;
- ``failed`` or ``cancelled``: `EndLease` with that state;
- ``expired``: its time ran out (a timer, like GTD expiry).

Settlement pays the provider ``price × CU used / lot_cu``, rounded down, which
is ``amount × FLOPs / (lots × lot_cu × 10^9)`` in integers, less the seller's
fee; the buyer gets the rest of the escrow back. FLOPs become money once, at
the end, with one rounding. A failed or cancelled lease pays for the FLOPs
recorded before it ended (work that was delivered and checked).

A future's lease is firm: the consumer paid for the capacity, and the provider
is paid in full at the window's end whatever was used. Usage is still recorded
on it (for the provider's record), and `EndLease` on it is refused with
``LEASE_FIRM``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, get_args

from matching.codes import Code
from matching.commands import EndLease, LeaseEnd, RecordUsage
from matching.events import (
    EscrowReleased,
    Event,
    LeaseEnded,
    UsageRecorded,
    command_rejected,
)
from matching.ledger import Escrow

if TYPE_CHECKING:
    from matching.engine import Engine, Instrument

__all__ = [
    "FLOPS_PER_CU",
    "end_lease",
    "expire",
    "flops_capacity",
    "pay_escrow",
    "record_usage",
    "settle_spot",
]

FLOPS_PER_CU: Final = 10**9
MAX_FLOPS: Final = 2**62
_ENDS: Final = get_args(LeaseEnd)


def flops_capacity(lots: int, lot_cu: int) -> int:
    """The FLOPs ``lots`` lots of ``lot_cu`` CU each cover."""
    return lots * lot_cu * FLOPS_PER_CU


def record_usage(engine: Engine, cmd: RecordUsage, events: list[Event]) -> None:
    symbol, lease_id, flops = cmd.symbol, cmd.lease_id, cmd.flops
    lots = _lots(engine, symbol, lease_id)
    if lots is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_LEASE))
        return
    if type(flops) is not int or not 1 <= flops <= MAX_FLOPS:
        events.append(command_rejected(cmd, Code.INVALID_AMOUNT))
        return
    capacity = flops_capacity(lots, engine.instruments[symbol].spec.lot_cu)
    key = (symbol, lease_id)
    used = engine.usage.get(key, 0) + flops
    if used > capacity:
        events.append(command_rejected(cmd, Code.LEASE_EXHAUSTED))
        return
    engine.usage[key] = used
    events.append(UsageRecorded(symbol, lease_id, flops, used, capacity))
    entry = engine.ledger.escrows.get(lease_id)
    if used == capacity and entry is not None and entry.ends_at:
        settle_spot(engine, entry, "used_up", events)


def end_lease(engine: Engine, cmd: EndLease, events: list[Event]) -> None:
    if _lots(engine, cmd.symbol, cmd.lease_id) is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_LEASE))
        return
    if cmd.state not in _ENDS:
        events.append(command_rejected(cmd, Code.INVALID_LEASE_END))
        return
    if engine.instruments[cmd.symbol].window is not None:
        events.append(command_rejected(cmd, Code.LEASE_FIRM))
        return
    settle_spot(engine, engine.ledger.escrows[cmd.lease_id], cmd.state, events)


def settle_spot(engine: Engine, entry: Escrow, state: str, events: list[Event]) -> None:
    """End a spot lease in ``state`` and pay for the FLOPs recorded on it."""
    used = engine.usage.pop((entry.symbol, entry.trade_id), 0)
    lot_cu = engine.instruments[entry.symbol].spec.lot_cu
    payout = entry.amount * used // flops_capacity(entry.lots, lot_cu)
    release(engine, entry, payout, state, events)


def release(
    engine: Engine, entry: Escrow, payout: int, state: str, events: list[Event]
) -> None:
    """End a spot lease in ``state``, paying ``payout`` of its escrow."""
    engine.usage.pop((entry.symbol, entry.trade_id), None)
    events.append(LeaseEnded(entry.trade_id, entry.symbol, state))
    events.append(pay_escrow(engine, entry, payout))


def pay_escrow(engine: Engine, entry: Escrow, payout: int) -> EscrowReleased:
    """Release ``entry`` paying ``payout`` to its seller; the event saying so."""
    ledger = engine.ledger
    settled = ledger.release_escrow(entry.trade_id, payout)
    assert settled is not None
    return EscrowReleased(
        entry.trade_id,
        entry.symbol,
        ledger.names[entry.buyer],
        ledger.names[entry.seller],
        settled.payout,
        settled.seller_fee,
        settled.refund,
    )


def expire(engine: Engine, inst: Instrument, at: int, events: list[Event]) -> None:
    """Expire the spot leases of ``inst`` that end at or before ``at``; then
    set the timer for the next one."""
    from matching.phases import LEASE_EXPIRY, schedule

    expiring = inst.expiring
    escrows = engine.ledger.escrows
    while expiring and expiring[0][0] <= at:
        _, trade_id = expiring.popleft()
        entry = escrows.get(trade_id)
        if entry is not None:  # not ended already
            settle_spot(engine, entry, "expired", events)
    if expiring:
        schedule(engine, expiring[0][0], LEASE_EXPIRY, inst.symbol, None, None)


def _lots(engine: Engine, symbol: object, lease_id: object) -> int | None:
    """The lots of the live lease ``lease_id`` of ``symbol``, or None."""
    if type(symbol) is not str or type(lease_id) is not int:
        return None
    inst = engine.instruments.get(symbol)
    if inst is None:
        return None
    if inst.window is None:
        entry = engine.ledger.escrows.get(lease_id)
        if entry is None or entry.symbol != symbol:
            return None
        return entry.lots
    lease = engine.leases.get(lease_id)
    if lease is None or lease.symbol != symbol:
        return None
    return lease.lots
