"""Events: what happened, as immutable msgspec structs, in engine order.

`Engine.apply` returns the events of one command in the order they happened; the
server publishes them in that order. Names are past tense. Amounts are integers
(µcr, lots, µcr per lot). Events are a tagged union on the field ``type``.

Order lifecycle: `OrderAccepted` first, then any `Trade` the order takes part in
and any `OrderAmended`, then at most one of `OrderCancelled` or `OrderExpired`,
after which the order is terminal. An order that is still open after a command
rests on the book with the leaves quantity of its last event.
"""

from __future__ import annotations

import msgspec

from matching.codes import CODES, Code
from matching.commands import Command, Role

__all__ = [
    "AccountOpened",
    "AuctionCleared",
    "AuctionTrade",
    "CapacitySet",
    "CommandRejected",
    "DeliveryEnded",
    "DeliveryStarted",
    "Deposited",
    "EscrowReleased",
    "Event",
    "FutureListed",
    "IndicativePrice",
    "JobClosed",
    "JobOpened",
    "LeaseCreated",
    "LeaseEnded",
    "OrderAccepted",
    "OrderAmended",
    "OrderCancelled",
    "OrderExpired",
    "OrderRejected",
    "PhaseChanged",
    "PhaseScheduled",
    "SettlementFixed",
    "Trade",
    "UsageRecorded",
    "Withdrawn",
    "command_rejected",
]


class _Event(msgspec.Struct, frozen=True, gc=False, tag_field="type"):
    pass


class OrderAccepted(_Event, tag="order_accepted", frozen=True):
    """An order passed every check; ``order_id`` is its id from now on.

    ``price`` is None for a market order.
    """

    order_id: int
    account: str
    symbol: str
    side: str
    order_type: str
    tif: str
    price: int | None
    qty: int
    post_only: bool
    expire_at: int | None
    client_order_id: str | None


class OrderRejected(_Event, tag="order_rejected", frozen=True):
    """A place, cancel or amend was refused with ``code``; nothing changed.

    ``order_id`` names the order a cancel or amend was about, else None.
    """

    account: str
    code: str
    message: str
    order_id: int | None
    client_order_id: str | None


class CommandRejected(_Event, tag="command_rejected", frozen=True):
    """Any other command was refused with ``code``; nothing changed."""

    op: str
    code: str
    message: str


class Trade(_Event, tag="trade", frozen=True):
    """A resting (maker) order and an incoming (taker) order traded.

    The price is the maker's. ``maker_leaves`` and ``taker_leaves`` are the open
    quantities after this fill. ``buyer_fee`` is what the buyer paid the venue
    for this fill; the seller's fee is taken from its proceeds when the escrow
    ``trade_id`` is released (see `matching.ledger`).
    """

    trade_id: int
    symbol: str
    price: int
    qty: int
    taker_side: str
    maker_order_id: int
    taker_order_id: int
    maker_account: str
    taker_account: str
    maker_leaves: int
    taker_leaves: int
    buyer_fee: int


class OrderCancelled(_Event, tag="order_cancelled", frozen=True):
    """An order left the book (or never reached it) without filling completely.

    ``side`` and ``price`` say where it was; ``filled`` is what it traded in all.
    """

    order_id: int
    account: str
    symbol: str
    side: str
    price: int | None
    filled: int
    reason: str
    client_order_id: str | None


class OrderExpired(_Event, tag="order_expired", frozen=True):
    """A GTD order reached its expiry time and left the book."""

    order_id: int
    account: str
    symbol: str
    side: str
    price: int
    filled: int
    client_order_id: str | None


class OrderAmended(_Event, tag="order_amended", frozen=True):
    """An open order got a new leaves quantity and/or price.

    ``kept_priority`` says whether it kept its place in the queue.
    """

    order_id: int
    account: str
    symbol: str
    side: str
    old_price: int
    price: int
    old_leaves: int
    leaves: int
    filled: int
    kept_priority: bool
    client_order_id: str | None


class EscrowReleased(_Event, tag="escrow_released", frozen=True):
    """A trade's escrow was settled: ``payout + refund`` is the escrow, and the
    seller received ``payout - seller_fee``."""

    trade_id: int
    symbol: str
    buyer: str
    seller: str
    payout: int
    seller_fee: int
    refund: int


class AccountOpened(_Event, tag="account_opened", frozen=True):
    account: str
    roles: tuple[Role, ...]


class Deposited(_Event, tag="deposited", frozen=True):
    account: str
    amount: int
    available: int


class Withdrawn(_Event, tag="withdrawn", frozen=True):
    account: str
    amount: int
    available: int


class CapacitySet(_Event, tag="capacity_set", frozen=True):
    account: str
    symbol: str
    lots: int


class PhaseChanged(_Event, tag="phase_changed", frozen=True):
    """An instrument entered ``phase``; ``interval_ms`` is set for ``batch``."""

    symbol: str
    old_phase: str
    phase: str
    interval_ms: int | None = None


class PhaseScheduled(_Event, tag="phase_scheduled", frozen=True):
    """A phase change will happen at ``at`` (ns since the epoch)."""

    symbol: str
    phase: str
    at: int
    interval_ms: int | None


class IndicativePrice(_Event, tag="indicative_price", frozen=True):
    """What an auction would give if it ran now, published in a call phase
    whenever it changes.

    ``price`` is None when nothing is executable; ``best_bid`` and ``best_ask``
    are the best limit prices on the book (None for an empty side).
    ``surplus`` is demand minus supply at the price.
    """

    symbol: str
    price: int | None
    volume: int
    surplus: int
    best_bid: int | None
    best_ask: int | None


class AuctionCleared(_Event, tag="auction_cleared", frozen=True):
    """A call auction ran: its `AuctionTrade` events follow, all at ``price``.

    ``kind`` is ``opening`` (from pre_open), ``reopening`` (from a halt),
    ``batch`` or ``closing``. ``price`` is None when nothing was executable;
    ``best_bid`` and ``best_ask`` are the book's best prices before it ran.
    """

    symbol: str
    kind: str
    price: int | None
    volume: int
    surplus: int
    best_bid: int | None
    best_ask: int | None


class AuctionTrade(_Event, tag="auction_trade", frozen=True):
    """A buy and a sell order traded in a call auction, at its uniform price.

    An auction has no maker and no taker: both sides pay the taker fee rate.
    ``buyer_fee`` is what the buyer paid the venue; the seller's fee is taken
    from its proceeds when the escrow ``trade_id`` is released.
    """

    trade_id: int
    symbol: str
    price: int
    qty: int
    buy_order_id: int
    sell_order_id: int
    buyer: str
    seller: str
    buy_leaves: int
    sell_leaves: int
    buyer_fee: int


class FutureListed(_Event, tag="future_listed", frozen=True):
    """A future was listed; it trades until ``gate_at`` and is delivered in
    ``[start, end)``. Times are ns since the epoch."""

    symbol: str
    resource_class: str
    start: int
    end: int
    closing_call_at: int
    gate_at: int


class SettlementFixed(_Event, tag="settlement_fixed", frozen=True):
    """A future's trading ended at its gate with this settlement price: the
    closing auction's price, else the last traded price, else None."""

    symbol: str
    price: int | None


class DeliveryStarted(_Event, tag="delivery_started", frozen=True):
    """A future's window began: its net positions became leases (`LeaseCreated`).

    ``lots`` is the total delivered.
    """

    symbol: str
    lots: int


class LeaseCreated(_Event, tag="lease_created", frozen=True):
    """``provider`` owes ``consumer`` ``lots`` of compute in ``[start, end)``,
    bought at ``price`` µcr per lot."""

    lease_id: int
    symbol: str
    consumer: str
    provider: str
    lots: int
    price: int
    start: int
    end: int


class LeaseEnded(_Event, tag="lease_ended", frozen=True):
    """A lease reached a terminal ``state``: ``used_up``, ``failed``,
    ``cancelled`` or ``expired`` (its time or window ran out). A spot lease's
    `EscrowReleased` follows at once."""

    lease_id: int
    symbol: str
    state: str


class UsageRecorded(_Event, tag="usage_recorded", frozen=True):
    """``flops`` of metered work were recorded on a lease; ``used`` is its
    total so far, ``capacity`` the most its lots cover."""

    symbol: str
    lease_id: int
    flops: int
    used: int
    capacity: int


class DeliveryEnded(_Event, tag="delivery_ended", frozen=True):
    """A future's window ended: its leases expired and its sellers were paid."""

    symbol: str


class JobOpened(_Event, tag="job_opened", frozen=True):
    """A consumer's job was recorded under ``job_id`` (see `matching.jobs`)."""

    job_id: int
    account: str
    symbol: str
    tier: str
    inputs: int
    budget_flops: int
    full_flops: int


class JobClosed(_Event, tag="job_closed", frozen=True):
    """A job ended ``done``, ``failed`` or ``cancelled`` having used ``flops``;
    ``full_flops − flops`` is what adaptive compute saved."""

    job_id: int
    account: str
    symbol: str
    status: str
    inputs: int
    budget_flops: int
    full_flops: int
    flops: int
    reason: str


Event = (
    OrderAccepted
    | OrderRejected
    | CommandRejected
    | Trade
    | OrderCancelled
    | OrderExpired
    | OrderAmended
    | EscrowReleased
    | AccountOpened
    | Deposited
    | Withdrawn
    | CapacitySet
    | PhaseChanged
    | PhaseScheduled
    | IndicativePrice
    | AuctionCleared
    | AuctionTrade
    | FutureListed
    | SettlementFixed
    | DeliveryStarted
    | LeaseCreated
    | LeaseEnded
    | UsageRecorded
    | DeliveryEnded
    | JobOpened
    | JobClosed
)


def command_rejected(cmd: Command, code: Code) -> CommandRejected:
    """The rejection of a command that is not an order's, with ``code``."""
    op = type(cmd).__struct_config__.tag
    return CommandRejected(str(op), code.value, CODES[code])
