"""What the SDK hands back: typed results and market data messages.

Every type is a frozen msgspec struct. Money is integer µcr, prices µcr per
lot, quantities whole lots, times ns since the epoch; order and job ids are
strings of digits. Structs ignore fields they do not know, so a server that
adds fields (the protocol only ever adds) never breaks this SDK.

Messages a subscription yields, tagged by ``type`` as on the wire (see the
README's Market data): `BookMessage`, `TradeMessage`, `CandleMessage`,
`AuctionMessage`, `PhaseMessage`, `PhaseScheduledMessage`, `ListedMessage`,
`SettlementMessage`, `DeliveryMessage`, `OrderUpdate`, `Fill`,
`BalanceUpdate`, `LeaseUpdate`, `JobUpdate`, and `Resync`, which the SDK also
yields itself when a subscription may have missed messages (after a
reconnection, or when the reader fell behind).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

__all__ = [
    "TERMINAL_JOB_STATUSES",
    "TERMINAL_ORDER_STATUSES",
    "AuctionMessage",
    "Balance",
    "BalanceUpdate",
    "BookMessage",
    "CandleMessage",
    "DeliveryMessage",
    "Fill",
    "Job",
    "JobOutput",
    "JobUpdate",
    "LeaseUpdate",
    "ListedMessage",
    "Message",
    "OpenOrder",
    "OrderResult",
    "OrderUpdate",
    "PhaseMessage",
    "PhaseScheduledMessage",
    "PlacedOrder",
    "Resync",
    "SettlementMessage",
    "TradeMessage",
    "UnknownMessage",
    "decode_message",
]

TERMINAL_ORDER_STATUSES: Final = frozenset({"filled", "cancelled", "expired"})
"""Order statuses after which nothing more happens to the order."""

TERMINAL_JOB_STATUSES: Final = frozenset({"done", "failed", "cancelled"})
"""Job statuses after which the job changes no more."""


# -- results of requests -----------------------------------------------------------


class Balance(msgspec.Struct, frozen=True):
    """An account's balances in µcr: ``held`` backs open buy orders,
    ``escrow`` pays for leases not yet settled."""

    available: int
    held: int
    escrow: int


class OpenOrder(msgspec.Struct, frozen=True):
    """An open order as ``orders()`` lists it. ``price`` is None for a market
    order; ``qty`` is ``filled + leaves``."""

    order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    type: str
    tif: str
    price: int | None
    qty: int
    filled: int
    leaves: int
    expire_at: int | None


class PlacedOrder(msgspec.Struct, frozen=True):
    """An order the server accepted: its id and what was asked for."""

    order_id: str
    symbol: str
    side: str
    qty: int
    price: int | None
    type: str
    tif: str | None
    client_order_id: str | None


class JobOutput(msgspec.Struct, frozen=True):
    """One input's result: its normalised embedding, the tokens and layers it
    ran, how it exited (``full``, ``tier``, or ``budget`` when its share ran
    out) and the FLOPs it was billed for."""

    embedding: list[float]
    tokens: int
    layers: int
    exit: str
    flops: int


class Job(msgspec.Struct, frozen=True):
    """A job as ``get_job`` reports it.

    ``status`` is ``running``, then ``done``, ``failed`` or ``cancelled``.
    ``done_inputs`` and ``failed_inputs`` count the inputs finished so far;
    ``flops`` is what they were billed, ``budget_flops`` the job's budget and
    ``full_flops`` what all its inputs cost at full depth. ``cost`` is what the
    account paid so far (µcr, fees included), ``refund`` what came back from
    escrow. ``results`` has one entry per input, in input order (None for an
    input that did not run, or not yet); it is empty when asked for without
    results.
    """

    job_id: str
    status: str
    symbol: str = ""
    tier: str = ""
    inputs: int = 0
    done_inputs: int = 0
    failed_inputs: int = 0
    flops: int = 0
    budget_flops: int = 0
    full_flops: int = 0
    cost: int = 0
    refund: int = 0
    reason: str | None = None
    results: list[JobOutput | None] = []

    @property
    def done(self) -> bool:
        """Whether the job has ended (done, failed or cancelled)."""
        return self.status in TERMINAL_JOB_STATUSES


# -- market data and private messages ------------------------------------------


class _Message(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class BookMessage(_Message, tag="book", frozen=True):
    """A book snapshot (``snapshot`` true) or update. Levels are
    ``(price, qty)`` with absolute quantities, best first; qty 0 deletes the
    level. ``checksum`` is the CRC32 of the book after this message."""

    symbol: str
    seq: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    checksum: int
    snapshot: bool = False
    depth: int | None = None


class TradeMessage(_Message, tag="trade", frozen=True):
    """A public trade; ``taker_side`` is None for an auction trade."""

    symbol: str
    trade_id: int
    price: int
    qty: int
    taker_side: str | None
    ts: int


class CandleMessage(_Message, tag="candle", frozen=True):
    symbol: str
    interval: int
    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int


class AuctionMessage(_Message, tag="auction", frozen=True):
    symbol: str
    indicative: bool
    price: int | None
    volume: int
    surplus: int
    best_bid: int | None
    best_ask: int | None
    kind: str | None
    ts: int


class PhaseMessage(_Message, tag="phase", frozen=True):
    symbol: str
    phase: str
    old_phase: str
    ts: int
    interval_ms: int | None = None


class PhaseScheduledMessage(_Message, tag="phase_scheduled", frozen=True):
    symbol: str
    phase: str
    at: int
    interval_ms: int | None
    ts: int


class ListedMessage(_Message, tag="listed", frozen=True):
    symbol: str
    resource_class: str
    start: int
    end: int
    closing_call_at: int
    gate_at: int
    ts: int


class SettlementMessage(_Message, tag="settlement", frozen=True):
    symbol: str
    price: int | None
    ts: int


class DeliveryMessage(_Message, tag="delivery", frozen=True):
    symbol: str
    status: str
    lots: int | None
    ts: int


class OrderUpdate(_Message, tag="order", frozen=True):
    """A change of one of the account's orders (channel ``orders``):
    ``status`` is ``new``, ``partially_filled``, ``filled``, ``amended``,
    ``cancelled`` (with ``reason``) or ``expired``."""

    order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    status: str
    price: int | None
    filled: int
    leaves: int
    reason: str | None
    ts: int

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_ORDER_STATUSES


class Fill(_Message, tag="fill", frozen=True):
    """A fill of one of the account's orders (channel ``fills``); ``fee`` is
    what the order paid at this fill (0 for a sell: see the README)."""

    order_id: str
    client_order_id: str | None
    trade_id: int
    symbol: str
    side: str
    price: int
    qty: int
    fee: int
    liquidity: str
    ts: int


class BalanceUpdate(_Message, tag="balance", frozen=True):
    available: int
    held: int
    escrow: int
    ts: int


class LeaseUpdate(_Message, tag="lease", frozen=True):
    lease_id: int
    symbol: str
    status: str
    consumer: str
    provider: str
    lots: int
    price: int
    start: int
    end: int
    ts: int


class JobUpdate(_Message, tag="job", frozen=True):
    """A change of one of the account's jobs (channel ``jobs``); the fields
    are `Job`'s, without the results."""

    job_id: str
    status: str
    symbol: str = ""
    tier: str = ""
    inputs: int = 0
    done_inputs: int = 0
    failed_inputs: int = 0
    flops: int = 0
    budget_flops: int = 0
    full_flops: int = 0
    cost: int = 0
    refund: int = 0
    reason: str | None = None
    ts: int = 0

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES


class Resync(_Message, tag="resync", frozen=True):
    """Messages of ``channels`` may have been missed (``reason``: ``slow
    consumer`` from the server, ``reconnected`` or ``slow reader`` from the
    SDK). The SDK subscribes again by itself; a book channel's next message
    is then a fresh snapshot."""

    channels: list[str]
    reason: str


class Heartbeat(_Message, tag="heartbeat", frozen=True):
    server_time: int


class UnknownMessage(msgspec.Struct, frozen=True):
    """A message of a type this SDK does not know yet, as decoded JSON."""

    type: str
    data: dict[str, Any]


Message = (
    BookMessage
    | TradeMessage
    | CandleMessage
    | AuctionMessage
    | PhaseMessage
    | PhaseScheduledMessage
    | ListedMessage
    | SettlementMessage
    | DeliveryMessage
    | OrderUpdate
    | Fill
    | BalanceUpdate
    | LeaseUpdate
    | JobUpdate
    | Resync
    | Heartbeat
)

_decoder = msgspec.json.Decoder(Message)


def decode_message(frame: bytes | str) -> Message | UnknownMessage:
    """The typed message of a pushed frame; an `UnknownMessage` for a type
    (or a shape) this SDK does not know."""
    try:
        return _decoder.decode(frame)
    except msgspec.ValidationError:
        data = msgspec.json.decode(frame)
        kind = data.get("type") if isinstance(data, dict) else None
        return UnknownMessage(str(kind), data if isinstance(data, dict) else {})


# -- the result of waiting for an order ------------------------------------------


class OrderResult(msgspec.Struct, frozen=True):
    """What became of an order, once it is terminal (or the SDK lost track).

    Attributes:
        order_id: the order.
        status: ``filled``, ``cancelled`` or ``expired``; ``unknown`` when the
            connection dropped while the order was open and the order was
            gone from the open orders on reconnecting (it was filled or
            cancelled meanwhile; `filled` and `fills` may then be short).
        filled: lots filled in all.
        leaves: lots still open (0 once terminal).
        reason: why it was cancelled (``user``, ``unfilled``, ...), else None.
        fills: every fill the SDK saw, in order.
    """

    order_id: str
    status: str
    filled: int
    leaves: int
    reason: str | None
    fills: list[Fill]

    @property
    def notional(self) -> int:
        """µcr paid or received for the fills seen: sum of price × qty."""
        return sum(f.price * f.qty for f in self.fills)

    @property
    def fees(self) -> int:
        return sum(f.fee for f in self.fills)
