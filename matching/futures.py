"""Futures: listing delivery windows, capacity for short sellers, and delivery.

A future is the capacity of a resource class delivered in a window ``[start,
end)`` of whole hours. Its life, driven by the engine's timers:

1. Listed: hourly windows ``list_ahead_hours`` ahead as the clock advances (or
   any window, of 1 to 24 hours, by `ListFuture`). It trades continuously.
2. Closing call, ``closing_call_seconds`` before the gate: orders collect.
3. Gate, ``gate_seconds`` before the start: the closing auction runs, its price
   (else the last traded price) becomes the settlement price, and the rest of
   the book is cancelled. No order is accepted after the gate.
4. Delivery, at the start: each account's net position (lots bought minus lots
   sold) is settled. Net long positions become leases against the net short
   sellers, at the prices of the purchases: a long takes delivery of its first
   purchases (in trade order) up to its net position; every long first gets
   them from their own sellers, as far as those sellers are net short, and
   what is left comes from the first net short seller (by account) that still
   owes lots. Sellers that
   are not net short (a consumer who sold back, a provider who bought back)
   are paid their proceeds now.
5. Window end: the leases expire and the net short sellers are paid in full:
   futures are firm, so the buyer paid for the capacity whether it used it or
   not. The instrument is then delisted.

Money: the buyer pays price × lots (and its fee) into escrow at the trade, as on
spot; the seller's proceeds stay there until step 4 or 5, and a `ReleaseEscrow`
command cannot release them early.

Capacity: a seller's short in a window is its open sells plus lots sold minus
lots bought there (from the delivery on: what it delivers). For every window,
the shorts in all the windows that overlap it (itself included) must fit in the
capacity the seller registered for it. Adjacent windows, ``[10:00, 11:00)`` and
``[11:00, 12:00)``, do not overlap; a window inside or around another counts
against both. A consumer registers no capacity, so it can sell what it bought
and nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from matching.codes import Code
from matching.commands import ListFuture
from matching.config import HOUR, MAX_TIME, ResourceClass, future_instrument
from matching.events import (
    DeliveryEnded,
    DeliveryStarted,
    Event,
    FutureListed,
    LeaseCreated,
    LeaseEnded,
    SettlementFixed,
    command_rejected,
)
from matching.ledger import Escrow
from matching.phases import (
    CLOSING_CALL,
    DELIVERY,
    GATE,
    LISTING,
    WINDOW_END,
    change_phase,
    run_auction,
    schedule,
)

if TYPE_CHECKING:
    from matching.engine import Engine, Instrument

__all__ = [
    "Lease",
    "Window",
    "commit_sell",
    "list_ahead",
    "list_future",
    "list_window",
    "on_timer",
    "relink_overlaps",
]

SECOND: Final = 1_000_000_000
MAX_HOURS: Final = 24


class Lease(msgspec.Struct, frozen=True, gc=False):
    """A provider owes a consumer ``lots`` of compute in ``[start, end)``.

    Attributes:
        lease_id: counts from 1.
        symbol: the future it was delivered from.
        consumer, provider: account numbers.
        lots: lots owed.
        price: µcr per lot the consumer paid.
        start, end: the window, in ns since the epoch.
    """

    lease_id: int
    symbol: str
    consumer: int
    provider: int
    lots: int
    price: int
    start: int
    end: int


class Window:
    """A future's delivery window and the positions in it.

    Attributes:
        start, end: the window, ns since the epoch.
        call_at, gate_at: when the closing call starts and trading ends.
        stage: ``trading`` until the gate, ``gated`` until the start,
            ``delivering`` until the end.
        long: lots bought per account whose escrow is not yet released.
        delivering: lots each net short seller delivers (from the start on).
        settlement: the settlement price, fixed at the gate.
        overlaps: the listed futures of the same class whose windows overlap
            this one, itself included.
    """

    __slots__ = (
        "call_at",
        "delivering",
        "end",
        "gate_at",
        "long",
        "overlaps",
        "settlement",
        "stage",
        "start",
    )

    def __init__(self, start: int, end: int, call_at: int, gate_at: int) -> None:
        self.start = start
        self.end = end
        self.call_at = call_at
        self.gate_at = gate_at
        self.stage = "trading"
        self.long: dict[int, int] = {}
        self.delivering: dict[int, int] = {}
        self.settlement: int | None = None
        self.overlaps: list[Instrument] = []

    def bought(self, account: int, lots: int) -> None:
        self.long[account] = self.long.get(account, 0) + lots

    def unbought(self, account: int, lots: int) -> None:
        left = self.long[account] - lots
        if left:
            self.long[account] = left
        else:
            del self.long[account]


def short_of(inst: Instrument, account: int, extra: int = 0) -> int:
    """``account``'s short in ``inst``'s window with ``extra`` more lots sold."""
    window = inst.window
    assert window is not None
    if window.stage == "delivering":
        return window.delivering.get(account, 0)
    sold = inst.committed.get(account, 0) + extra
    return max(0, sold - window.long.get(account, 0))


def commit_sell(inst: Instrument, account: int, lots: int) -> bool:
    """Reserve ``lots`` more of ``account``'s sells in a future, if every
    overlapping window's capacity allows the larger short."""
    window = inst.window
    assert window is not None
    if short_of(inst, account, lots) > short_of(inst, account):
        for other in window.overlaps:
            assert other.window is not None
            total = sum(
                short_of(x, account, lots if x is inst else 0)
                for x in other.window.overlaps
            )
            if total > other.capacity.get(account, 0):
                return False
    inst.committed[account] = inst.committed.get(account, 0) + lots
    return True


# -- listing ----------------------------------------------------------------------


def list_future(engine: Engine, cmd: ListFuture, events: list[Event]) -> None:
    rc = (
        engine.classes.get(cmd.resource_class)
        if type(cmd.resource_class) is str
        else None
    )
    if rc is None or rc.futures is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_CLASS))
        return
    start, hours = cmd.start, cmd.hours
    if (
        type(start) is not int
        or type(hours) is not int
        or not 1 <= hours <= MAX_HOURS
        or start % HOUR
        or start - rc.futures.gate_seconds * SECOND <= engine.now
        or start + hours * HOUR > 2**63 - 1
    ):
        events.append(command_rejected(cmd, Code.INVALID_WINDOW))
        return
    if future_instrument(rc, start, hours).symbol in engine.instruments:
        events.append(command_rejected(cmd, Code.INSTRUMENT_EXISTS))
        return
    list_window(engine, rc, start, hours, events)


def list_ahead(engine: Engine, events: list[Event]) -> None:
    """List every hourly window due by the classes' ``list_ahead_hours``, then
    set the timer for the next hour."""
    now = engine.now
    for rc in engine.config.classes:
        terms = rc.futures
        if terms is None or not terms.list_ahead_hours:
            continue
        gate = terms.gate_seconds * SECOND
        first = (now + gate) // HOUR * HOUR + HOUR
        last = min(now + terms.list_ahead_hours * HOUR, MAX_TIME - HOUR)
        for start in range(first, last + 1, HOUR):
            if future_instrument(rc, start, 1).symbol not in engine.instruments:
                list_window(engine, rc, start, 1, events)
    schedule(engine, now // HOUR * HOUR + HOUR, LISTING, "", None, None)


def list_window(
    engine: Engine, rc: ResourceClass, start: int, hours: int, events: list[Event]
) -> Instrument:
    """List the future of ``rc`` for ``[start, start + hours)`` and set its timers."""
    from matching.engine import Instrument

    terms = rc.futures
    assert terms is not None
    spec = future_instrument(rc, start, hours)
    gate_at = start - terms.gate_seconds * SECOND
    call_at = gate_at - terms.closing_call_seconds * SECOND
    phase = "continuous" if engine.now < call_at else "closing"
    inst = Instrument(spec, engine.book_factory(), phase, engine.ledger)
    inst.window = Window(start, spec.end, call_at, gate_at)
    engine.instruments[spec.symbol] = inst
    link_overlaps(engine, inst)

    if call_at < gate_at and engine.now < call_at:
        schedule(engine, call_at, CLOSING_CALL, spec.symbol, None, None)
    schedule(engine, gate_at, GATE, spec.symbol, None, None)
    schedule(engine, start, DELIVERY, spec.symbol, None, None)
    schedule(engine, spec.end, WINDOW_END, spec.symbol, None, None)
    events.append(FutureListed(spec.symbol, rc.name, start, spec.end, call_at, gate_at))
    if phase == "closing":
        engine._dirty[spec.symbol] = None
    return inst


def relink_overlaps(engine: Engine) -> None:
    """Build every future's overlap list afresh, each overlapping pair once (for
    an engine restored from a snapshot)."""
    listed = [inst for inst in engine.instruments.values() if inst.window is not None]
    for inst in listed:
        assert inst.window is not None
        inst.window.overlaps = [inst]
    for i, inst in enumerate(listed):
        for other in listed[i + 1 :]:
            if _overlap(inst, other):
                assert inst.window is not None
                assert other.window is not None
                inst.window.overlaps.append(other)
                other.window.overlaps.append(inst)


def _overlap(a: Instrument, b: Instrument) -> bool:
    wa, wb = a.window, b.window
    assert wa is not None
    assert wb is not None
    return (
        a.spec.resource_class == b.spec.resource_class
        and wa.start < wb.end
        and wb.start < wa.end
    )


def link_overlaps(engine: Engine, inst: Instrument) -> None:
    """Add ``inst`` to the overlap lists of its class's windows, and theirs to it."""
    window = inst.window
    assert window is not None
    window.overlaps = [inst]
    for other in engine.instruments.values():
        if other is inst or other.window is None or not _overlap(inst, other):
            continue
        window.overlaps.append(other)
        other.window.overlaps.append(inst)


# -- the lifecycle ----------------------------------------------------------------


def on_timer(
    engine: Engine, inst: Instrument, rank: int, at: int, events: list[Event]
) -> None:
    """A future's closing call, gate, delivery or window end has come."""
    window = inst.window
    assert window is not None
    if rank == CLOSING_CALL:
        if inst.phase in ("continuous", "batch", "pre_open"):
            change_phase(engine, inst, "closing", None, at, events)
    elif rank == GATE:
        # Trading ends with the closing auction from any call phase (an
        # operator may have moved the window to pre_open or batch); a halted
        # window closes without trading.
        if inst.phase in ("pre_open", "batch"):
            run_auction(engine, inst, "closing", events, at)
        if inst.phase != "closed":
            change_phase(engine, inst, "closed", None, at, events)
        window.stage = "gated"
        window.settlement = inst.last_price
        events.append(SettlementFixed(inst.symbol, window.settlement))
    elif rank == DELIVERY:
        _deliver(engine, inst, events)
    elif rank == WINDOW_END:
        _end(engine, inst, events)


def _deliver(engine: Engine, inst: Instrument, events: list[Event]) -> None:
    window = inst.window
    assert window is not None
    ledger = engine.ledger
    names = ledger.names
    trades = _escrows_of(engine, inst.symbol)

    # Net positions: after the gate nothing is open, so committed is lots sold.
    receive: dict[int, int] = {}
    owe: dict[int, int] = {}
    for account in sorted(window.long.keys() | inst.committed.keys()):
        net = window.long.get(account, 0) - inst.committed.get(account, 0)
        if net > 0:
            receive[account] = net
        elif net < 0:
            owe[account] = -net
    window.delivering = dict(owe)
    window.stage = "delivering"

    # The purchases each long takes delivery of: its first, in trade order,
    # up to its net position, as [seller, price, lots] pieces.
    pieces: list[tuple[int, list[list[int]]]] = []
    for consumer, need in receive.items():
        mine: list[list[int]] = []
        for entry in trades:
            if entry.buyer == consumer and need:
                lots = min(entry.lots, need)
                need -= lots
                mine.append([entry.seller, entry.amount // entry.lots, lots])
        pieces.append((consumer, mine))

    # Leases: first every piece from its own seller while that seller owes
    # lots, then what is left from the first net short seller that does.
    leases: dict[tuple[int, int, int], int] = {}

    def assign(consumer: int, provider: int, piece: list[int], lots: int) -> None:
        owe[provider] -= lots
        piece[2] -= lots
        key = (consumer, provider, piece[1])
        leases[key] = leases.get(key, 0) + lots

    for consumer, mine in pieces:
        for piece in mine:
            seller = piece[0]
            if owe.get(seller):
                assign(consumer, seller, piece, min(piece[2], owe[seller]))
    shorts = list(owe)
    for consumer, mine in pieces:
        for piece in mine:
            while piece[2]:
                provider = next(a for a in shorts if owe[a])
                assign(consumer, provider, piece, min(piece[2], owe[provider]))
    total = sum(window.delivering.values())
    events.append(DeliveryStarted(inst.symbol, total))
    for (consumer, provider, price), lots in sorted(
        leases.items(), key=lambda item: item[0][0]
    ):
        engine.lease_seq += 1
        lease = Lease(
            engine.lease_seq,
            inst.symbol,
            consumer,
            provider,
            lots,
            price,
            window.start,
            window.end,
        )
        engine.leases[lease.lease_id] = lease
        events.append(
            LeaseCreated(
                lease.lease_id,
                inst.symbol,
                names[consumer],
                names[provider],
                lots,
                price,
                window.start,
                window.end,
            )
        )

    # Sellers that deliver nothing are paid now.
    for entry in trades:
        if entry.seller not in window.delivering:
            _pay(engine, inst, entry, events)


def _end(engine: Engine, inst: Instrument, events: list[Event]) -> None:
    """The window ended: expire its leases, pay its sellers in full, delist it."""
    window = inst.window
    assert window is not None
    if window.stage != "delivering":
        # Cannot happen with the timers in order; kept so that a delisting
        # never strands an escrow.
        _deliver(engine, inst, events)
    for lease_id in [k for k, v in engine.leases.items() if v.symbol == inst.symbol]:
        engine.leases.pop(lease_id)
        engine.usage.pop((inst.symbol, lease_id), None)
        events.append(LeaseEnded(lease_id, inst.symbol, "expired"))
    for entry in _escrows_of(engine, inst.symbol):
        _pay(engine, inst, entry, events)
    events.append(DeliveryEnded(inst.symbol))

    del engine.instruments[inst.symbol]
    for other in window.overlaps:
        if other is not inst:
            assert other.window is not None
            other.window.overlaps.remove(inst)
    engine.ledger.capacity.pop(inst.symbol, None)
    engine.ledger.committed.pop(inst.symbol, None)


def _escrows_of(engine: Engine, symbol: str) -> list[Escrow]:
    return sorted(
        (e for e in engine.ledger.escrows.values() if e.symbol == symbol),
        key=lambda e: e.trade_id,
    )


def _pay(engine: Engine, inst: Instrument, entry: Escrow, events: list[Event]) -> None:
    """Release a futures escrow in full to its seller."""
    from matching.leases import pay_escrow

    window = inst.window
    assert window is not None
    events.append(pay_escrow(engine, entry, entry.amount))
    window.unbought(entry.buyer, entry.lots)
