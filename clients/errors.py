"""The SDK's exceptions: one tree, rooted at `ClientError`.

A request the server refuses raises a `ServerError` subclass chosen by the
``code`` of the ``error`` message; the exception carries that ``code`` and the
server's ``message``. The codes are the server's (`exchange.protocol.WireCode`)
and the engine's (`matching.codes.Code`); a code this SDK does not know yet
still raises a plain `ServerError` carrying it, so a newer server never breaks
an older client.

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
    │                      INVALID_FIELD, UNKNOWN_CHANNEL
    ├── ServerUnavailable  SHUTTING_DOWN, INTERNAL_ERROR
    ├── OrderNotFound      UNKNOWN_ORDER, ORDER_NOT_OWNED
    ├── OrderClosed        ORDER_CLOSED
    ├── InsufficientFunds  INSUFFICIENT_FUNDS
    ├── InsufficientCapacity INSUFFICIENT_CAPACITY
    ├── NotTrading         NOT_TRADING
    ├── InvalidOrder       INVALID_*, PRICE_NOT_ON_TICK, NOTHING_TO_AMEND,
    │                      WOULD_TRADE, UNKNOWN_SYMBOL
    └── JobError           UNKNOWN_JOB, INVALID_JOB, UNKNOWN_TIER,
                           JOB_UNFILLED, JOBS_UNAVAILABLE, JOB_ENDED,
                           UNKNOWN_SHARD, REPORT_REJECTED
```
"""

from __future__ import annotations

from typing import Final

__all__ = [
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
    "NotTrading",
    "OrderClosed",
    "OrderNotFound",
    "ProtocolError",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "ServerUnavailable",
    "error_for",
]


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
        code: the stable code of the ``error`` message (`matching.codes.Code`
            or `exchange.protocol.WireCode`).
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
    """The request was malformed: a bug in the caller or in the SDK."""


class ServerUnavailable(ServerError):
    """The server is shutting down or failed; try again later."""


class OrderNotFound(ServerError):
    """No order of this account has this id."""


class OrderClosed(ServerError):
    """The order is already filled, cancelled or expired."""


class InsufficientFunds(ServerError):
    """The available balance does not cover the order (price × qty + fee)."""


class InsufficientCapacity(ServerError):
    """The account's registered capacity does not cover the sell."""


class NotTrading(ServerError):
    """The instrument does not take this request in its current phase."""


class InvalidOrder(ServerError):
    """The order's fields break the instrument's rules (tick, quantity, type)."""


class JobError(ServerError):
    """A job request was refused: an unknown job or tier, a job that cannot
    run (nothing on offer at its ``max_price``, no jobs on this exchange), or
    one that has already ended; for nodes, an unknown shard or a report that
    differs from the metering plan."""


_CLASSES: Final[dict[str, type[ServerError]]] = {
    "AUTH_FAILED": AuthError,
    "NOT_LOGGED_IN": AuthError,
    "ALREADY_LOGGED_IN": AuthError,
    "ROLE_NOT_ALLOWED": AuthError,
    "RATE_LIMITED": RateLimited,
    "BAD_FRAME": ProtocolError,
    "FRAME_TOO_LARGE": ProtocolError,
    "UNKNOWN_OP": ProtocolError,
    "INVALID_FIELD": ProtocolError,
    "UNKNOWN_CHANNEL": ProtocolError,
    "SHUTTING_DOWN": ServerUnavailable,
    "INTERNAL_ERROR": ServerUnavailable,
    "UNKNOWN_ORDER": OrderNotFound,
    "ORDER_NOT_OWNED": OrderNotFound,
    "ORDER_CLOSED": OrderClosed,
    "INSUFFICIENT_FUNDS": InsufficientFunds,
    "INSUFFICIENT_CAPACITY": InsufficientCapacity,
    "NOT_TRADING": NotTrading,
    "UNKNOWN_SYMBOL": InvalidOrder,
    "INVALID_SIDE": InvalidOrder,
    "INVALID_QUANTITY": InvalidOrder,
    "INVALID_PRICE": InvalidOrder,
    "PRICE_NOT_ON_TICK": InvalidOrder,
    "INVALID_ORDER_TYPE": InvalidOrder,
    "INVALID_EXPIRY": InvalidOrder,
    "INVALID_CLIENT_ORDER_ID": InvalidOrder,
    "NOTHING_TO_AMEND": InvalidOrder,
    "WOULD_TRADE": InvalidOrder,
    "UNKNOWN_JOB": JobError,
    "INVALID_JOB": JobError,
    "UNKNOWN_TIER": JobError,
    "JOB_UNFILLED": JobError,
    "JOBS_UNAVAILABLE": JobError,
    "JOB_ENDED": JobError,
    "UNKNOWN_SHARD": JobError,
    "REPORT_REJECTED": JobError,
}
"""The exception class of each code; any other code raises `ServerError`."""


def error_for(code: str, message: str, request_id: int | None = None) -> ServerError:
    """The exception for an ``error`` message with ``code`` and ``message``."""
    return _CLASSES.get(code, ServerError)(code, message, request_id)
