"""The SDK's exceptions: one tree, rooted at `ClientError`.

A request the server refuses raises a `ServerError` subclass chosen by the
``code`` of the ``error`` message (or of the REST API's error answer); the
exception carries that ``code`` and the server's ``message``. Every code the
server can send has a class chosen for it: the websocket layer's
(`exchange.protocol.WireCode`), the engine's (`matching.codes.Code`), those of
job requests (`exchange.gateway_jobs.JOB_CODES`), of node registration
(`exchange.nodes.NODE_CODES`) and of the HTTP layer under ``/api/``
(`exchange.rest.HTTP_CODES`). A code this SDK does not know yet still raises a
plain `ServerError` carrying it, so a newer server never breaks an older client.

Catch a group (`OrderRejected`, `JobError`, ...) to handle every code of it
alike, a leaf (`InsufficientFunds`) for one case, or `ServerError` for any
refusal. Nothing changed on the server when one is raised.

```
ClientError
├── ConfigError            missing or bad url, key or secret
├── ConnectionLost         the connection dropped; a request in flight may or
│                          may not have been applied
├── ClientClosed           the client was closed (or gave up reconnecting)
├── RequestTimeout         no response within the request's timeout
├── BookOutOfSync          a book mirror was used before it had a snapshot
└── ServerError            the server refused a request (code, message)
    ├── AuthError          AUTH_FAILED, NOT_LOGGED_IN, ALREADY_LOGGED_IN,
    │                      ROLE_NOT_ALLOWED
    ├── RateLimited        RATE_LIMITED
    ├── ProtocolError      BAD_FRAME, FRAME_TOO_LARGE, UNKNOWN_OP,
    │                      INVALID_FIELD, UNKNOWN_CHANNEL; over REST:
    │                      NOT_FOUND, METHOD_NOT_ALLOWED, REQUEST_TOO_LARGE,
    │                      BAD_REQUEST
    ├── ServerUnavailable  SHUTTING_DOWN, INTERNAL_ERROR
    ├── OrderRejected      an order, amend or cancel refused:
    │   ├── OrderNotFound      UNKNOWN_ORDER, ORDER_NOT_OWNED
    │   ├── OrderClosed        ORDER_CLOSED
    │   ├── InsufficientFunds  INSUFFICIENT_FUNDS
    │   ├── InsufficientCapacity INSUFFICIENT_CAPACITY
    │   ├── NotTrading         NOT_TRADING
    │   └── InvalidOrder       UNKNOWN_SYMBOL, INVALID_SIDE, INVALID_QUANTITY,
    │                          INVALID_PRICE, PRICE_NOT_ON_TICK,
    │                          INVALID_ORDER_TYPE, INVALID_EXPIRY,
    │                          INVALID_CLIENT_ORDER_ID, INVALID_COUNTERPARTIES,
    │                          NOTHING_TO_AMEND, WOULD_TRADE
    ├── OperatorError      INVALID_PHASE, INVALID_SCHEDULE, UNKNOWN_CLASS,
    │                      INVALID_WINDOW, INSTRUMENT_EXISTS
    ├── AccountError       UNKNOWN_ACCOUNT, INVALID_ACCOUNT_NAME, INVALID_ROLE,
    │                      ACCOUNT_EXISTS, INVALID_AMOUNT, UNKNOWN_ESCROW,
    │                      ESCROW_LOCKED
    └── JobError           UNKNOWN_JOB, INVALID_JOB, UNKNOWN_TIER,
        │                  JOB_UNFILLED, BUDGET_TOO_SMALL, JOBS_UNAVAILABLE,
        │                  JOB_ENDED; for nodes: NODE_ID_IN_USE,
        │                  UNKNOWN_SHARD, REPORT_REJECTED
        └── LeaseError     UNKNOWN_LEASE, LEASE_IN_USE, LEASE_EXHAUSTED,
                           LEASE_FIRM, INVALID_LEASE_END
```

`AccountError` and some `LeaseError` codes (``LEASE_EXHAUSTED``, ``LEASE_FIRM``,
``INVALID_LEASE_END``) answer commands the exchange itself applies (accounts
opened from its configuration, metered usage, leases ended by dispatch): a
client rarely sees them, but they are the server's codes all the same.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_FRAME",
    "AccountError",
    "AuthError",
    "BookOutOfSync",
    "ClientClosed",
    "ClientError",
    "ConfigError",
    "ConnectionLost",
    "InsufficientCapacity",
    "InsufficientFunds",
    "InvalidOrder",
    "JobError",
    "LeaseError",
    "NotTrading",
    "OperatorError",
    "OrderClosed",
    "OrderNotFound",
    "OrderRejected",
    "ProtocolError",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "ServerUnavailable",
    "error_for",
]

MAX_FRAME: Final = 65_536
"""The largest request frame the server takes, in bytes of UTF-8 (the server's
``exchange.protocol.MAX_FRAME``). The server answers a larger one with a
``FRAME_TOO_LARGE`` error that cannot name the request (it did not read its
id), so the client refuses to send it and raises that error itself."""


class ClientError(Exception):
    """The root of every exception the SDK raises on purpose."""


class ConfigError(ClientError):
    """The client's settings are missing or wrong (url, key, secret, file)."""


class ConnectionLost(ClientError):
    """The connection dropped while a request waited for its response.

    The request may or may not have been applied: look (``orders()``,
    ``balance()``) before sending it again.
    """


class ClientClosed(ClientError):
    """The client is closed, or stopped reconnecting after its last attempt."""


class RequestTimeout(ClientError):
    """No response came within the request's timeout; it may still be applied."""


class BookOutOfSync(ClientError):
    """A book mirror was read while it had no snapshot (it is resyncing)."""


class ServerError(ClientError):
    """The server refused a request; nothing changed on the server.

    Attributes:
        code: the stable code of the ``error`` message (one of the server's
            tables named in the module doc, or a newer server's).
        message: the server's explanation, for people; it may change.
        request_id: the id of the refused request, if the error echoed one.
    """

    def __init__(self, code: str, message: str, request_id: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class AuthError(ServerError):
    """Login failed, or the request needs a login or a role the account lacks."""


class RateLimited(ServerError):
    """Too many requests on this connection: slow down and send it again."""


class ProtocolError(ServerError):
    """The request was malformed: a bug in the caller or in the SDK (over
    REST also a path, method or body size the API does not take)."""


class ServerUnavailable(ServerError):
    """The server is shutting down or failed; try again later."""


class OrderRejected(ServerError):
    """An order, amend or cancel was refused: one of the classes below."""


class OrderNotFound(OrderRejected):
    """No order of this account has this id."""


class OrderClosed(OrderRejected):
    """The order is already filled, cancelled or expired."""


class InsufficientFunds(OrderRejected):
    """The available balance does not cover the order (price × qty + fee)."""


class InsufficientCapacity(OrderRejected):
    """The account's registered capacity does not cover the sell."""


class NotTrading(OrderRejected):
    """The instrument does not take this request in its current phase (halted,
    closed, or a call phase for a market, FOK or post-only order)."""


class InvalidOrder(OrderRejected):
    """The order's fields break the instrument's rules (tick, quantity, type,
    counterparties)."""


class OperatorError(ServerError):
    """An operator's request (a phase change, a schedule, a listing) was
    refused: an unknown or current phase, a bad time or window."""


class AccountError(ServerError):
    """A command on accounts, money or escrows was refused (the exchange's
    own administration: accounts opened from its configuration, deposits,
    escrow releases)."""


class JobError(ServerError):
    """A job request was refused: an unknown job or tier, a job that cannot
    run (nothing on offer at its ``max_price``, a budget that affords no
    layer, no jobs on this exchange), or one that has already ended; for
    nodes, a node id another live connection of the account has registered,
    an unknown shard or a report that differs from the metering plan."""


class LeaseError(JobError):
    """A lease cannot be used: no live lease of the account has this id, it
    runs another job, or its usage or end is refused."""


def _codes(cls: type[ServerError], *codes: str) -> dict[str, type[ServerError]]:
    return dict.fromkeys(codes, cls)


_CLASSES: Final[dict[str, type[ServerError]]] = {
    **_codes(
        AuthError,
        "AUTH_FAILED",
        "NOT_LOGGED_IN",
        "ALREADY_LOGGED_IN",
        "ROLE_NOT_ALLOWED",
    ),
    **_codes(RateLimited, "RATE_LIMITED"),
    **_codes(
        ProtocolError,
        "BAD_FRAME",
        "FRAME_TOO_LARGE",
        "UNKNOWN_OP",
        "INVALID_FIELD",
        "UNKNOWN_CHANNEL",
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
        "REQUEST_TOO_LARGE",
        "BAD_REQUEST",
    ),
    **_codes(ServerUnavailable, "SHUTTING_DOWN", "INTERNAL_ERROR"),
    **_codes(OrderNotFound, "UNKNOWN_ORDER", "ORDER_NOT_OWNED"),
    **_codes(OrderClosed, "ORDER_CLOSED"),
    **_codes(InsufficientFunds, "INSUFFICIENT_FUNDS"),
    **_codes(InsufficientCapacity, "INSUFFICIENT_CAPACITY"),
    **_codes(NotTrading, "NOT_TRADING"),
    **_codes(
        InvalidOrder,
        "UNKNOWN_SYMBOL",
        "INVALID_SIDE",
        "INVALID_QUANTITY",
        "INVALID_PRICE",
        "PRICE_NOT_ON_TICK",
        "INVALID_ORDER_TYPE",
        "INVALID_EXPIRY",
        "INVALID_CLIENT_ORDER_ID",
        "INVALID_COUNTERPARTIES",
        "NOTHING_TO_AMEND",
        "WOULD_TRADE",
    ),
    **_codes(
        OperatorError,
        "INVALID_PHASE",
        "INVALID_SCHEDULE",
        "UNKNOWN_CLASS",
        "INVALID_WINDOW",
        "INSTRUMENT_EXISTS",
    ),
    **_codes(
        AccountError,
        "UNKNOWN_ACCOUNT",
        "INVALID_ACCOUNT_NAME",
        "INVALID_ROLE",
        "ACCOUNT_EXISTS",
        "INVALID_AMOUNT",
        "UNKNOWN_ESCROW",
        "ESCROW_LOCKED",
    ),
    **_codes(
        JobError,
        "UNKNOWN_JOB",
        "INVALID_JOB",
        "UNKNOWN_TIER",
        "JOB_UNFILLED",
        "BUDGET_TOO_SMALL",
        "JOBS_UNAVAILABLE",
        "JOB_ENDED",
        "NODE_ID_IN_USE",
        "UNKNOWN_SHARD",
        "REPORT_REJECTED",
    ),
    **_codes(
        LeaseError,
        "UNKNOWN_LEASE",
        "LEASE_IN_USE",
        "LEASE_EXHAUSTED",
        "LEASE_FIRM",
        "INVALID_LEASE_END",
    ),
}
"""The exception class of each code; any other code raises `ServerError`."""


def error_for(code: str, message: str, request_id: int | None = None) -> ServerError:
    """The exception for an ``error`` message with ``code`` and ``message``."""
    return _CLASSES.get(code, ServerError)(code, message, request_id)
