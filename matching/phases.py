"""Trading phases, the call auctions that join them, and the market's timers.

An instrument is in one phase at a time:

- ``pre_open``, ``closing``: call phases. Limit orders (GTC, GTD, and IOC,
  which lasts until the next auction) collect without trading; market, FOK
  and post-only orders are refused, since nothing can trade on arrival. The
  indicative price, volume and surplus are published whenever they change.
- ``batch``: a call phase that runs an auction every ``interval_ms``.
- ``continuous``: every order matches on arrival.
- ``halted``, ``closed``: cancels only. ``closed`` cancels every open order.

Auctions run at phase changes: entering ``continuous`` or ``batch`` from a call
phase runs one first (``opening`` from ``pre_open``, ``batch`` from ``batch``,
``closing`` from ``closing``), and so does leaving a halt that interrupted a
call phase (``reopening``: when the book is crossed or IOC orders wait for an
auction), so a continuous book is never crossed; ``closing`` → ``closed`` runs
the closing auction. Every other way into ``closed`` trades nothing. After
an auction the rest of every IOC order it was entered for is cancelled.

An auction trades at one price for all (`matching.auction.clearing_price`, with
the last traded or auction price as reference), computed over the crossed part
of the book only (`Book.crossing_levels`): nothing else can trade, so the price
is the same, and the cost follows the crossed levels, not the whole book. The
buy orders that fill are taken best price first, then oldest first, and so are
the sells; the trades pair them up in that order. Both sides pay the taker fee
rate. Self-trade prevention does not apply: an account's buy and sell both
priced through the uniform price may trade with each other.

Timers: scheduled phase changes, batch auctions and the futures lifecycle are
entries in one heap ordered by (time, rank, serial). The engine fires them, and
the GTD expiries, in time order before the command whose timestamp passes them;
at equal times expiries go first, so an order that expires at an auction's time
plays no part in it.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Final, get_args

from matching.auction import Clearing, clearing_price
from matching.codes import CancelReason, Code
from matching.commands import Phase, SchedulePhase, SetPhase
from matching.config import MAX_BATCH_MS, MAX_TIME
from matching.events import (
    AuctionCleared,
    AuctionTrade,
    Event,
    IndicativePrice,
    PhaseChanged,
    PhaseScheduled,
    command_rejected,
)
from matching.ledger import Escrow
from matching.order import BUY, NO_ASK, NO_BID, SELL, Order

if TYPE_CHECKING:
    from matching.engine import Engine, Instrument

__all__ = [
    "CALL_PHASES",
    "OPEN_PHASES",
    "Timer",
    "change_phase",
    "fire",
    "publish_indicatives",
    "run_auction",
    "schedule",
    "schedule_phase",
    "set_phase",
    "start_batches",
]

PHASES: Final = get_args(Phase)
CALL_PHASES: Final = frozenset({"pre_open", "batch", "closing"})
"""Phases in which orders rest without trading until an auction."""
OPEN_PHASES: Final = CALL_PHASES | {"continuous"}
"""Phases that accept new orders and amends."""
MS: Final = 1_000_000
"""One millisecond in ns."""

_AUCTION_KIND: Final = {
    "pre_open": "opening",
    "halted": "reopening",
    "batch": "batch",
    "closing": "closing",
}

# Timer kinds, by rank: at equal times a lower rank fires first.
BATCH: Final = 0
SCHEDULED: Final = 1
CLOSING_CALL: Final = 2
GATE: Final = 3
DELIVERY: Final = 4
WINDOW_END: Final = 5
LISTING: Final = 6
LEASE_EXPIRY: Final = 7

Timer = tuple[int, int, int, str, str | None, int | None]
"""(time, rank, serial, symbol, phase, interval_ms): serial makes each unique."""


# -- commands ---------------------------------------------------------------------


def set_phase(engine: Engine, cmd: SetPhase, events: list[Event]) -> None:
    inst = engine.instruments.get(cmd.symbol) if type(cmd.symbol) is str else None
    if inst is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_SYMBOL))
        return
    code = _check_change(inst, cmd.phase, cmd.interval_ms)
    if code is None and cmd.phase == inst.phase:
        code = Code.INVALID_PHASE
    if code is not None:
        events.append(command_rejected(cmd, code))
        return
    change_phase(engine, inst, cmd.phase, cmd.interval_ms, engine.now, events)


def schedule_phase(engine: Engine, cmd: SchedulePhase, events: list[Event]) -> None:
    inst = engine.instruments.get(cmd.symbol) if type(cmd.symbol) is str else None
    if inst is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_SYMBOL))
        return
    code = _check_change(inst, cmd.phase, cmd.interval_ms)
    at = cmd.at
    if code is None and (
        type(at) is not int
        or not engine.now < at <= MAX_TIME
        or (inst.window is not None and at >= inst.window.gate_at)
    ):
        code = Code.INVALID_SCHEDULE
    if code is not None:
        events.append(command_rejected(cmd, code))
        return
    schedule(engine, at, SCHEDULED, inst.symbol, cmd.phase, cmd.interval_ms)
    events.append(PhaseScheduled(inst.symbol, cmd.phase, at, cmd.interval_ms))


def _check_change(inst: Instrument, phase: object, interval_ms: object) -> Code | None:
    """Why ``inst`` cannot be given ``phase``, or None; the current phase is
    not checked (a schedule may name it)."""
    if phase not in PHASES:
        return Code.INVALID_PHASE
    if inst.window is not None and inst.window.stage != "trading":
        return Code.INVALID_PHASE
    if interval_ms is not None and (
        phase != "batch"
        or type(interval_ms) is not int
        or not 1 <= interval_ms <= MAX_BATCH_MS
    ):
        return Code.INVALID_SCHEDULE
    return None


# -- phase changes ----------------------------------------------------------------


def change_phase(
    engine: Engine,
    inst: Instrument,
    phase: str,
    interval_ms: int | None,
    at: int,
    events: list[Event],
) -> None:
    """Move ``inst`` into ``phase`` at time ``at``, running the auction the
    change calls for (see the module's docstring)."""
    old = inst.phase
    # Forget IOC orders that ended otherwise (cancelled, closed) since entry.
    inst.ioc = [i for i in inst.ioc if i in engine.orders]
    if phase in ("continuous", "batch"):
        uncross = old in CALL_PHASES or (
            old == "halted" and (inst.book.bid >= inst.book.ask or bool(inst.ioc))
        )
    else:
        uncross = phase == "closed" and old == "closing"
    if uncross:
        run_auction(engine, inst, _AUCTION_KIND[old], events, at)

    inst.set_phase(phase)
    if phase == "batch":
        start_batches(engine, inst, interval_ms, at)
    else:
        inst.batch_ms = 0
        inst.next_batch = 0
    events.append(PhaseChanged(inst.symbol, old, phase, inst.batch_ms or None))

    if phase == "closed":
        for side in (BUY, SELL):
            for order in list(inst.book.resting(side)):
                engine._cancel_resting(order, CancelReason.CLOSED, events)
    inst.indicative = None
    if inst.call:
        engine._dirty[inst.symbol] = None


def start_batches(
    engine: Engine, inst: Instrument, interval_ms: int | None, at: int
) -> None:
    """Run ``inst``'s batch auctions every ``interval_ms`` (the class's
    ``batch_interval_ms`` if None) from time ``at``."""
    interval = interval_ms or engine.classes[inst.spec.resource_class].batch_interval_ms
    inst.batch_ms = interval
    inst.next_batch = at + interval * MS
    schedule(engine, inst.next_batch, BATCH, inst.symbol, None, None)


# -- auctions ---------------------------------------------------------------------


def run_auction(
    engine: Engine, inst: Instrument, kind: str, events: list[Event], at: int
) -> int | None:
    """Uncross ``inst``'s book at one price; return the price, or None.

    ``at`` is the auction's time (ns): its spot trades' leases run from then.
    A batch auction that trades nothing publishes nothing; the others always
    publish their `AuctionCleared`.
    """
    book = inst.book
    clearing = _clearing(inst)
    price = clearing.price
    if price is not None or kind != "batch":
        events.append(
            AuctionCleared(
                inst.symbol,
                kind,
                price,
                clearing.volume,
                clearing.surplus,
                _best_bid(inst),
                _best_ask(inst),
            )
        )
    if price is not None:
        buys = book.take(BUY, clearing.volume)
        sells = book.take(SELL, clearing.volume)
        _settle_auction(engine, inst, price, buys, sells, events, at)
        inst.last_price = price

    # IOC orders entered in a call phase last until the auction after them.
    for order_id in inst.ioc:
        order = engine.orders.get(order_id)
        if order is not None:
            engine._cancel_resting(order, CancelReason.AUCTION_ENDED, events)
    inst.ioc.clear()
    if inst.call:
        engine._dirty[inst.symbol] = None
    return price


def _settle_auction(
    engine: Engine,
    inst: Instrument,
    price: int,
    buys: tuple[list[Order], list[int]],
    sells: tuple[list[Order], list[int]],
    events: list[Event],
    at: int,
) -> None:
    """Pair the taken buys and sells in priority order into trades at ``price``.

    Each trade gets its escrow and its event; the buyers' balances, the orders'
    filled lots and the fee income move once per order, which is the same sum
    as moving them per trade. An auction can fill a whole book, so this loop
    is kept lean.
    """
    ledger = engine.ledger
    names = ledger.names
    held = ledger.held
    available = ledger.available
    escrow = ledger.escrow
    escrows = ledger.escrows
    orders = engine.orders
    closed = engine.closed
    symbol = inst.symbol
    bps = inst.taker_bps
    window = inst.window
    # The trades happen at the auction's time (a timer may fire late).
    ends_at = at + inst.lease_ns if window is None else 0
    append = events.append
    trade_id = engine.trade_seq
    fees = 0

    sell_orders, sell_lots = sells
    s = 0
    sell = sell_orders[0]
    sell_taken = sell_left = sell_lots[0]
    seller = sell.account
    for buy, buy_taken in zip(*buys, strict=True):
        buyer = buy.account
        buyer_name = names[buyer]
        buy_left = buy_taken
        cost = 0
        while buy_left:
            qty = buy_left if buy_left < sell_left else sell_left
            buy_left -= qty
            sell_left -= qty
            trade_id += 1
            notional = price * qty
            fee = (notional * bps + 9_999) // 10_000
            cost += notional + fee
            escrows[trade_id] = Escrow(
                trade_id, symbol, buyer, seller, qty, notional, bps, ends_at
            )
            if window is None:
                engine._lease_started(inst, ends_at, trade_id)
            append(
                AuctionTrade(
                    trade_id,
                    symbol,
                    price,
                    qty,
                    buy.order_id,
                    sell.order_id,
                    buyer_name,
                    names[seller],
                    buy.leaves + buy_left,
                    sell.leaves + sell_left,
                    fee,
                )
            )
            if not sell_left:
                sell.filled += sell_taken
                if not sell.leaves:
                    del orders[sell.order_id]
                    closed[sell.order_id] = seller
                s += 1
                if s == len(sell_orders):
                    break
                sell = sell_orders[s]
                sell_taken = sell_left = sell_lots[s]
                seller = sell.account

        # The buyer's hold for the lots taken pays the trades and their fees.
        notional = price * buy_taken
        released = buy.unit_hold * buy_taken
        held[buyer] -= released
        available[buyer] += released - cost
        escrow[buyer] += notional
        fees += cost - notional
        buy.filled += buy_taken
        if window is not None:
            window.bought(buyer, buy_taken)
        if not buy.leaves:
            del orders[buy.order_id]
            closed[buy.order_id] = buyer
    ledger.fee_income += fees
    engine.trade_seq = trade_id


def publish_indicatives(engine: Engine, events: list[Event]) -> None:
    """Publish the indicative price of each instrument whose call book changed,
    if it differs from the last one published."""
    for symbol in engine._dirty:
        inst = engine.instruments.get(symbol)
        if inst is None or not inst.call:
            continue
        clearing = _clearing(inst)
        shown = (
            clearing.price,
            clearing.volume,
            clearing.surplus,
            _best_bid(inst),
            _best_ask(inst),
        )
        if shown != inst.indicative:
            inst.indicative = shown
            events.append(IndicativePrice(symbol, *shown))
    engine._dirty.clear()


def _clearing(inst: Instrument) -> Clearing:
    """What an auction of ``inst``'s book would give now (crossed levels only)."""
    return clearing_price(*inst.book.crossing_levels(), reference=inst.last_price)


def _best_bid(inst: Instrument) -> int | None:
    bid = inst.book.bid
    return None if bid == NO_BID else bid


def _best_ask(inst: Instrument) -> int | None:
    ask = inst.book.ask
    return None if ask == NO_ASK else ask


# -- timers -----------------------------------------------------------------------


def schedule(
    engine: Engine,
    at: int,
    rank: int,
    symbol: str,
    phase: str | None,
    interval_ms: int | None,
) -> None:
    """Add a timer firing at ``at``."""
    engine._timer_serial += 1
    timer: Timer = (at, rank, engine._timer_serial, symbol, phase, interval_ms)
    heapq.heappush(engine._timers, timer)
    if at < engine._next_timer:
        engine._next_timer = at


def fire(engine: Engine, timer: Timer, events: list[Event]) -> None:
    """Do what ``timer`` was set for, as at its time."""
    from matching import futures

    at, rank, _, symbol, phase, interval_ms = timer
    from matching import leases

    if rank == LISTING:
        futures.list_ahead(engine, events)
        return
    inst = engine.instruments.get(symbol)
    if inst is None:
        return
    if rank == BATCH:
        if inst.phase == "batch" and inst.next_batch == at:
            run_auction(engine, inst, "batch", events, at)
            # Later slots up to now could trade nothing new: skip to the next.
            step = inst.batch_ms * MS
            inst.next_batch = at + step * ((engine.now - at) // step + 1)
            schedule(engine, inst.next_batch, BATCH, symbol, None, None)
    elif rank == LEASE_EXPIRY:
        leases.expire(engine, inst, at, events)
    elif rank == SCHEDULED:
        assert phase is not None
        window = inst.window
        if phase != inst.phase and (window is None or window.stage == "trading"):
            change_phase(engine, inst, phase, interval_ms, at, events)
    else:
        futures.on_timer(engine, inst, rank, at, events)
