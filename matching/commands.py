"""Commands: what the engine is asked to do, as immutable msgspec structs.

Every command is applied with a sequence number and a timestamp that the
sequencer stamps on it (`matching.engine.Engine.apply`); commands carry neither.
Names are imperative. Amounts are integers: µcr for money, lots for quantities,
µcr per lot for prices, nanoseconds since the Unix epoch for times.

Commands are a tagged union on the field ``op``, so one decoder reads any of them
from a journal.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "AmendOrder",
    "CancelOrder",
    "CloseJob",
    "Command",
    "Deposit",
    "EndLease",
    "ListFuture",
    "OpenAccount",
    "OpenJob",
    "PlaceOrder",
    "RecordUsage",
    "ReleaseEscrow",
    "SchedulePhase",
    "SetCapacity",
    "SetPhase",
    "Tick",
    "Withdraw",
]

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["GTC", "IOC", "FOK", "GTD"]
SelfTradePrevention = Literal["cancel_taker", "cancel_maker", "cancel_both"]
Role = Literal["consumer", "provider", "operator"]
LeaseEnd = Literal["used_up", "failed", "cancelled"]
JobEnd = Literal["done", "failed", "cancelled"]
Phase = Literal["pre_open", "continuous", "batch", "closing", "halted", "closed"]


class _Command(
    msgspec.Struct, frozen=True, gc=False, tag_field="op", forbid_unknown_fields=True
):
    pass


class OpenAccount(_Command, tag="open_account", frozen=True):
    """Open an empty account.

    Attributes:
        account: its unique name.
        roles: what it may do; providers sell capacity, operators steer phases.
    """

    account: str
    roles: tuple[Role, ...] = ("consumer",)


class Deposit(_Command, tag="deposit", frozen=True):
    """Credit ``amount`` µcr to an account's available balance."""

    account: str
    amount: int


class Withdraw(_Command, tag="withdraw", frozen=True):
    """Debit ``amount`` µcr from an account's available balance."""

    account: str
    amount: int


class SetCapacity(_Command, tag="set_capacity", frozen=True):
    """Register how many lots of an instrument an account can deliver.

    The provider side feeds this from its nodes' measured throughput. Open sell
    orders plus delivery obligations never exceed it. Setting it below what is
    already committed is allowed: it stops new sells until enough is released.
    """

    account: str
    symbol: str
    lots: int


class PlaceOrder(_Command, tag="place", frozen=True):
    """Enter an order.

    Attributes:
        account: the owner.
        symbol: the instrument.
        side: ``buy`` or ``sell``.
        qty: lots, 1 or more.
        type: ``limit`` (needs ``price``) or ``market`` (takes no price; IOC or
            FOK only).
        price: µcr per lot, a multiple of the instrument's tick; None for market.
        tif: GTC rests until cancelled; IOC fills what it can now and cancels the
            rest; FOK fills completely now or has no effect; GTD rests until
            ``expire_at``. None means GTC for a limit order, IOC for a market one.
        expire_at: for GTD only, the expiry in ns since the epoch; None otherwise.
        post_only: rejected if it would trade on arrival (GTC or GTD only).
        stp: what self-trade prevention does when this order would trade with
            a resting order of its own account.
        client_order_id: the client's own label, echoed in its events.
        counterparties: when not empty, the only accounts whose resting orders
            it may trade with (up to `MAX_COUNTERPARTIES`); it then walks the
            book in price and time priority past every other order, leaving
            them untouched. An IOC limit order in continuous trading only.
    """

    account: str
    symbol: str
    side: Side
    qty: int
    type: OrderType = "limit"
    price: int | None = None
    tif: TimeInForce | None = None
    expire_at: int | None = None
    post_only: bool = False
    stp: SelfTradePrevention = "cancel_taker"
    client_order_id: str | None = None
    counterparties: tuple[str, ...] = ()


class CancelOrder(_Command, tag="cancel", frozen=True):
    """Cancel an open order of ``account``."""

    account: str
    order_id: int


class AmendOrder(_Command, tag="amend", frozen=True):
    """Change an open order's leaves quantity and/or price.

    Attributes:
        qty: the new open (leaves) quantity, 1 or more; None keeps it. A smaller
            quantity keeps the order's place in the queue; a larger one loses it.
        price: the new price; None keeps it. A new price always loses the place.
    """

    account: str
    order_id: int
    qty: int | None = None
    price: int | None = None


class ReleaseEscrow(_Command, tag="release_escrow", frozen=True):
    """Settle one trade's escrow: pay ``payout`` µcr to the seller, refund the rest.

    The exchange sends this when the work bought by the trade is metered (or
    its lease ends). ``payout`` is from 0 to the escrow's amount; the seller's
    fee is taken from it. An escrow is released once.
    """

    trade_id: int
    payout: int


class RecordUsage(_Command, tag="record_usage", frozen=True):
    """Record ``flops`` of metered work done on a lease (see `matching.leases`).

    The exchange sends it once a node's report has passed the metering check.
    A spot lease whose FLOPs reach what its lots cover ends ``used_up``.

    Attributes:
        symbol: the lease's instrument.
        lease_id: the lease (a spot lease's id is its trade's).
        flops: FLOPs of work, 1 or more.
    """

    symbol: str
    lease_id: int
    flops: int


class EndLease(_Command, tag="end_lease", frozen=True):
    """End a spot lease before it expires and settle it: its provider is paid
    for the FLOPs recorded, its buyer refunded the rest.

    ``state`` is ``used_up`` (its job finished), ``failed`` or ``cancelled``.
    """

    symbol: str
    lease_id: int
    state: LeaseEnd


class SetPhase(_Command, tag="set_phase", frozen=True):
    """Change an instrument's trading phase now.

    ``pre_open`` and ``closing`` are call phases: orders collect without
    trading and an indicative price is published. ``batch`` collects orders
    too and runs an auction every ``interval_ms``. ``continuous`` matches each
    order on arrival. ``halted`` and ``closed`` accept cancels only; ``closed``
    also cancels every open order.

    Entering ``continuous`` or ``batch`` from any phase but ``continuous``
    runs an auction first (the opening auction from ``pre_open``); entering
    ``closed`` from ``closing`` runs the closing auction. See `matching.phases`.

    Attributes:
        symbol: the instrument.
        phase: the new phase.
        interval_ms: for ``batch``, the time between auctions in ms; None takes
            the resource class's ``batch_interval_ms``. Other phases take None.
    """

    symbol: str
    phase: Phase
    interval_ms: int | None = None


class SchedulePhase(_Command, tag="schedule_phase", frozen=True):
    """Change an instrument's phase at a later time ``at`` (ns since the epoch).

    The change happens as if a `SetPhase` were applied at ``at``, before any
    command stamped later. A scheduled change that finds the instrument already
    in that phase does nothing.
    """

    symbol: str
    phase: Phase
    at: int
    interval_ms: int | None = None


class ListFuture(_Command, tag="list_future", frozen=True):
    """List the future of a resource class for the window starting at ``start``.

    Attributes:
        resource_class: a class with futures terms.
        start: the window's start in ns since the epoch, on a whole hour (UTC);
            the window's gate must still be ahead.
        hours: the window's length, 1 to 24 hours.
    """

    resource_class: str
    start: int
    hours: int = 1


class OpenJob(_Command, tag="open_job", frozen=True):
    """Record a consumer's new job; the engine numbers it (see `matching.jobs`).

    Attributes:
        account: the consumer.
        symbol: the instrument whose leases run it.
        tier: its quality tier, as the exchange checked it.
        inputs: how many inputs it has, 1 to `matching.jobs.MAX_INPUTS`.
        budget_flops: the most FLOPs it may use, 1 or more.
        full_flops: its inputs' cost at full depth, FLOPs.
    """

    account: str
    symbol: str
    tier: str
    inputs: int
    budget_flops: int
    full_flops: int


class CloseJob(_Command, tag="close_job", frozen=True):
    """Record how an open job ended: ``done``, ``failed`` or ``cancelled``,
    with the FLOPs it used and a short reason (empty when done)."""

    job_id: int
    status: JobEnd
    flops: int
    reason: str = ""


class Tick(_Command, tag="tick", frozen=True):
    """Advance the engine's clock to the command's timestamp and fire timers."""


Command = (
    OpenAccount
    | Deposit
    | Withdraw
    | SetCapacity
    | ReleaseEscrow
    | RecordUsage
    | EndLease
    | PlaceOrder
    | CancelOrder
    | AmendOrder
    | SetPhase
    | SchedulePhase
    | ListFuture
    | OpenJob
    | CloseJob
    | Tick
)
