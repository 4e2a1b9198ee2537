"""The wire protocol: every message on the websocket, as msgspec structs.

Clients send JSON text frames, one request each, tagged by ``op``; every request
carries an ``id`` that its response echoes. The server sends JSON text frames
tagged by ``type``. Shapes follow DESIGN section 8; fields may be added to them,
never renamed. Order and job ids travel as strings of digits (the engine's
integer id, written without leading zeros); a JSON number or another spelling
of the number is refused.

Requests are decoded in two steps, so that every bad frame gets an answer that
echoes its id: `peek` reads only ``op`` and ``id`` (any other field is ignored),
then `decode_request` reads the whole request as the struct its ``op`` names,
refusing unknown fields, wrong types, missing fields and floats where integers
belong. Every integer field is a signed 64-bit integer: a larger one is refused
here, since the journal could not record the command (the engine then checks
the value's own range and rejects it with its code).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import msgspec

from exchange.protocol_base import (
    Int64,
    Label,
    Name,
    OrderId,
    Symbol,
    _Message,
    _Request,
)
from exchange.protocol_jobs import JOB_REQUESTS
from matching.commands import Phase, SelfTradePrevention, TimeInForce

__all__ = [
    "MAX_FRAME",
    "MAX_NODE_FRAME",
    "MAX_SOCKET_FRAME",
    "REQUESTS",
    "WIRE_CODES",
    "Ack",
    "ErrorMessage",
    "Request",
    "WireCode",
    "decode_request",
    "encode",
    "peek",
]

MAX_FRAME: Final = 64 * 1024
"""The largest request frame, in bytes."""

MAX_NODE_FRAME: Final = 4 * 1024 * 1024
"""The largest frame from a connection that registered a node (its results)."""

MAX_SOCKET_FRAME: Final = MAX_NODE_FRAME
"""The largest frame the websocket layer reads at all, in bytes. A larger one
is not buffered: the connection is closed with code 1009 and the reason
``frame over 4,194,304 bytes``. Frames from ``MAX_FRAME`` up to this size get
``FRAME_TOO_LARGE`` (unless from a node) and the connection stays open."""


class WireCode(StrEnum):
    """Why the server refused a request before it reached the engine. The
    engine's own codes (`matching.codes.Code`) come in the same ``error``
    message; no code is in both tables."""

    BAD_FRAME = "BAD_FRAME"
    FRAME_TOO_LARGE = "FRAME_TOO_LARGE"
    UNKNOWN_OP = "UNKNOWN_OP"
    INVALID_FIELD = "INVALID_FIELD"
    NOT_LOGGED_IN = "NOT_LOGGED_IN"
    ALREADY_LOGGED_IN = "ALREADY_LOGGED_IN"
    AUTH_FAILED = "AUTH_FAILED"
    UNKNOWN_CHANNEL = "UNKNOWN_CHANNEL"
    RATE_LIMITED = "RATE_LIMITED"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    INTERNAL_ERROR = "INTERNAL_ERROR"


WIRE_CODES: Final[dict[WireCode, str]] = {
    WireCode.BAD_FRAME: "a request is one JSON object in a text frame",
    WireCode.FRAME_TOO_LARGE: "a request frame is at most 65,536 bytes",
    WireCode.UNKNOWN_OP: "no request has this op",
    WireCode.INVALID_FIELD: "a field is missing, unknown, or of the wrong type or "
    "range",
    WireCode.NOT_LOGGED_IN: "log in first",
    WireCode.ALREADY_LOGGED_IN: "this connection is already logged in",
    WireCode.AUTH_FAILED: "unknown key or bad signature",
    WireCode.UNKNOWN_CHANNEL: "no channel has this name",
    WireCode.RATE_LIMITED: "too many requests on this connection, or failed logins "
    "from this address; slow down",
    WireCode.SHUTTING_DOWN: "the server is shutting down",
    WireCode.INTERNAL_ERROR: "the server failed; the request may not have been applied",
}

Channels = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=80)]], msgspec.Meta(max_length=64)
]


class Login(_Request, tag="login", frozen=True):
    """Log in: ``signature`` is the hex HMAC-SHA256 of the server's nonce under
    the account's secret. With ``cancel_on_disconnect`` the account's open
    orders are cancelled when this connection drops."""

    key: Annotated[str, msgspec.Meta(max_length=256)]
    signature: Annotated[str, msgspec.Meta(max_length=256)]
    cancel_on_disconnect: bool = False


class Subscribe(_Request, tag="subscribe", frozen=True):
    """Subscribe to channels: ``book.<symbol>``, ``trades.<symbol>``,
    ``auction.<symbol>``, ``candles.<symbol>``, ``phases`` (public), and
    ``orders``, ``fills``, ``balance`` (private, after login).

    ``depth`` limits book channels to the best N levels of each side (10, 25,
    50, 100 or 500); None sends every level.
    """

    channels: Channels
    depth: Literal[10, 25, 50, 100, 500] | None = None


class Unsubscribe(_Request, tag="unsubscribe", frozen=True):
    channels: Channels


class Place(_Request, tag="place", frozen=True):
    """Enter an order; see `matching.commands.PlaceOrder` for the fields."""

    symbol: Symbol
    side: Literal["buy", "sell"]
    qty: Int64
    type: Literal["limit", "market"] = "limit"
    price: Int64 | None = None
    tif: TimeInForce | None = None
    expire_at: Int64 | None = None
    post_only: bool = False
    stp: SelfTradePrevention = "cancel_taker"
    client_order_id: Label | None = None
    # None (or absent): anyone; a list names 1 to 64 accounts, never none.
    counterparties: (
        Annotated[list[Label], msgspec.Meta(min_length=1, max_length=64)] | None
    ) = None


class Cancel(_Request, tag="cancel", frozen=True):
    order_id: OrderId


class CancelAll(_Request, tag="cancel_all", frozen=True):
    """Cancel every open order of the account, or of one instrument."""

    symbol: Symbol | None = None


class Amend(_Request, tag="amend", frozen=True):
    order_id: OrderId
    qty: Int64 | None = None
    price: Int64 | None = None


class Balance(_Request, tag="balance", frozen=True):
    pass


class Orders(_Request, tag="orders", frozen=True):
    """List the account's open orders, of one instrument or all."""

    symbol: Symbol | None = None


class Ping(_Request, tag="ping", frozen=True):
    pass


class SetPhaseRequest(_Request, tag="set_phase", frozen=True):
    """Operators only: see `matching.commands.SetPhase`."""

    symbol: Symbol
    phase: Phase
    interval_ms: Int64 | None = None


class SchedulePhaseRequest(_Request, tag="schedule_phase", frozen=True):
    """Operators only: see `matching.commands.SchedulePhase`."""

    symbol: Symbol
    phase: Phase
    at: Int64
    interval_ms: Int64 | None = None


class ListFutureRequest(_Request, tag="list_future", frozen=True):
    """Operators only: see `matching.commands.ListFuture`."""

    resource_class: Annotated[str, msgspec.Meta(max_length=64)]
    start: Int64
    hours: Int64 = 1


class RegisterNode(_Request, tag="register_node", frozen=True):
    """Providers only: a node of the account serves ``resource_class`` and can
    deliver ``cu_per_second_milli`` thousandths of a CU per second.

    The server registers the account's capacity from the sum over its
    connected nodes: for spot, the CU its nodes deliver in one lease
    (``lease_seconds``), in lots; for each listed future of the class, the CU
    they deliver over the window. Registering the same ``node_id`` again
    replaces it; a node's capacity leaves with its connection. ``model`` and
    ``tiers`` (the node's quality profile) are published as given.
    """

    node_id: Name
    resource_class: Annotated[str, msgspec.Meta(max_length=64)]
    cu_per_second_milli: Annotated[int, msgspec.Meta(ge=1, le=10**12)]
    model: Annotated[str, msgspec.Meta(max_length=128)] = ""
    tiers: Annotated[
        dict[Name, dict[Name, float | int]], msgspec.Meta(max_length=16)
    ] = msgspec.field(default_factory=dict)


Request = (
    Login
    | Subscribe
    | Unsubscribe
    | Place
    | Cancel
    | CancelAll
    | Amend
    | Balance
    | Orders
    | Ping
    | SetPhaseRequest
    | SchedulePhaseRequest
    | ListFutureRequest
    | RegisterNode
)

_REQUEST_TYPES: Final[tuple[type[Any], ...]] = (
    Login,
    Subscribe,
    Unsubscribe,
    Place,
    Cancel,
    CancelAll,
    Amend,
    Balance,
    Orders,
    Ping,
    SetPhaseRequest,
    SchedulePhaseRequest,
    ListFutureRequest,
    RegisterNode,
    *JOB_REQUESTS,
)

REQUESTS: Final[dict[str, type[Any]]] = {
    str(cls.__struct_config__.tag): cls for cls in _REQUEST_TYPES
}
"""Every request struct by its ``op``."""


class Envelope(msgspec.Struct, frozen=True):
    """What `peek` reads of any request: its op and id, when they are there."""

    op: Any = None
    id: Any = None


_peek_decoder = msgspec.json.Decoder(Envelope)
_request_decoders = {op: msgspec.json.Decoder(cls) for op, cls in REQUESTS.items()}


def peek(frame: bytes | str) -> Envelope:
    """The op and id of a frame that is a JSON object.

    Raises:
        msgspec.DecodeError: the frame is not JSON, or not an object.
    """
    return _peek_decoder.decode(frame)


def decode_request(op: str, frame: bytes | str) -> Any:
    """The request struct of a frame whose op is ``op`` (a key of `REQUESTS`).

    Raises:
        msgspec.ValidationError: a field is missing, unknown, or of the wrong
            type or range; the message names it.
    """
    return _request_decoders[op].decode(frame)


# -- server messages --------------------------------------------------------------


class Hello(_Message, tag="hello", frozen=True):
    """Sent on connect: sign ``nonce`` to log in. ``server_time`` is ns."""

    nonce: str
    server_time: int


class Ack(_Message, tag="ack", frozen=True, omit_defaults=True):
    """A request was accepted (and is durable). ``capacity`` answers a
    ``register_node``: the lots registered per instrument for the account (all
    its nodes); ``node_capacity`` the lots of this node alone; ``spot_leases``
    the account's live spot leases of the class as provider, lots by lease id
    (what of the spot capacity is sold already; absent: none)."""

    id: int | None
    order_id: str | None = None
    account: str | None = None
    cancelled: int | None = None
    capacity: dict[str, int] | None = None
    node_capacity: dict[str, int] | None = None
    spot_leases: dict[str, int] | None = None
    job_id: str | None = None


class ErrorMessage(_Message, tag="error", frozen=True):
    """A request was refused; nothing changed."""

    id: int | None
    code: str
    message: str


class Pong(_Message, tag="pong", frozen=True):
    id: int | None
    server_time: int


class BalanceResult(_Message, tag="result", frozen=True):
    id: int | None
    available: int
    held: int
    escrow: int


class OrderInfo(msgspec.Struct, frozen=True):
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


class OrdersResult(_Message, tag="result", frozen=True):
    id: int | None
    orders: list[OrderInfo]


class Subscribed(_Message, tag="subscribed", frozen=True):
    id: int | None
    channels: list[str]


class BookMessage(_Message, tag="book", frozen=True, omit_defaults=True):
    """A book snapshot (``snapshot`` true) or update of one channel.

    ``bids`` and ``asks`` are [price, qty] pairs with absolute quantities; a
    qty of 0 deletes the level. ``checksum`` is the CRC32 of the book after
    this message (see `exchange.marketdata.checksum`).
    """

    symbol: str
    seq: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    checksum: int
    snapshot: bool = False
    depth: int | None = None


class TradeMessage(_Message, tag="trade", frozen=True):
    """A public trade. ``taker_side`` is None for an auction trade."""

    symbol: str
    trade_id: int
    price: int
    qty: int
    taker_side: str | None
    ts: int


class OrderMessage(_Message, tag="order", frozen=True):
    """A private order update (channel ``orders``).

    ``status`` is ``new``, ``partially_filled``, ``filled``, ``cancelled``
    (with ``reason``), ``expired`` or ``amended``; ``filled`` and ``leaves``
    are the order's totals after the change. ``price`` is None for a market
    order. Rejections are error responses, not order messages.
    """

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


class FillMessage(_Message, tag="fill", frozen=True):
    """A private fill of one of the account's orders."""

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


class BalanceMessage(_Message, tag="balance", frozen=True):
    """The account's balances after a change (private)."""

    available: int
    held: int
    escrow: int
    ts: int


class AuctionMessage(_Message, tag="auction", frozen=True):
    """An auction's indicative result during a call phase (``indicative``
    true), or its final result."""

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
    """An instrument entered ``phase``; ``interval_ms`` is set for ``batch``."""

    symbol: str
    phase: str
    old_phase: str
    ts: int
    interval_ms: int | None = None


class PhaseScheduledMessage(_Message, tag="phase_scheduled", frozen=True):
    """A phase change will happen at ``at`` (ns since the epoch)."""

    symbol: str
    phase: str
    at: int
    interval_ms: int | None
    ts: int


class CandleMessage(_Message, tag="candle", frozen=True):
    """One candle of ``interval`` seconds starting at ``start`` (ns)."""

    symbol: str
    interval: int
    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int


class ListedMessage(_Message, tag="listed", frozen=True):
    """A future was listed (channel ``instruments``). It trades until
    ``gate_at`` and is delivered in ``[start, end)``; times are ns."""

    symbol: str
    resource_class: str
    start: int
    end: int
    closing_call_at: int
    gate_at: int
    ts: int


class SettlementMessage(_Message, tag="settlement", frozen=True):
    """A future's trading ended with this settlement price (None: it never
    traded)."""

    symbol: str
    price: int | None
    ts: int


class DeliveryMessage(_Message, tag="delivery", frozen=True):
    """A future's delivery window ``started`` (``lots`` delivered in all) or
    ``ended`` (``lots`` None; the instrument is delisted)."""

    symbol: str
    status: str
    lots: int | None
    ts: int


class LeaseMessage(_Message, tag="lease", frozen=True):
    """A lease of the account, as consumer or provider (channel ``leases``):
    ``status`` is ``active`` when it is created, then the state it ended in
    (``expired``)."""

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


class Heartbeat(_Message, tag="heartbeat", frozen=True):
    server_time: int


class Resync(_Message, tag="resync", frozen=True):
    """The connection fell behind: updates of ``channels`` were dropped.
    Subscribe again to get fresh snapshots."""

    channels: list[str]
    reason: str


_encoder = msgspec.json.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    """The JSON bytes of a server message."""
    return _encoder.encode(message)
