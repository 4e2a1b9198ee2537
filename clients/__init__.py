"""cux's client side: the async Python SDK for traders and consumers.

- `Client` (`clients.client`): one websocket connection; place, amend, cancel,
  wait for an order's fills, subscribe to channels as async iterators, submit
  jobs and wait for their results; reconnects and restores subscriptions.
- `LiveBook` (`clients.live`) and `BookMirror` (`clients.book`): a local copy of
  a book, checked by sequence and checksum, resynced by itself.
- `clients.sizing`: order sizes from a budget, rounded down.
- `clients.errors`: the exceptions, one tree with the server's codes.
- `clients.rest`: the REST API; `clients.config`: url and credentials from
  flags, environment or a config file; `clients.cli`: the client commands.

It never imports `providers`, so a trader never installs the model runtime.
"""

from clients.book import Applied, BookMirror
from clients.client import Backoff, Client
from clients.errors import (
    AuthError,
    ClientClosed,
    ClientError,
    ConnectionLost,
    InsufficientFunds,
    InvalidOrder,
    OrderClosed,
    OrderNotFound,
    RateLimited,
    ServerError,
)
from clients.live import LiveBook
from clients.messages import Balance, Job, OpenOrder, OrderResult, PlacedOrder

__all__ = [
    "Applied",
    "AuthError",
    "Backoff",
    "Balance",
    "BookMirror",
    "Client",
    "ClientClosed",
    "ClientError",
    "ConnectionLost",
    "InsufficientFunds",
    "InvalidOrder",
    "Job",
    "LiveBook",
    "OpenOrder",
    "OrderClosed",
    "OrderNotFound",
    "OrderResult",
    "PlacedOrder",
    "RateLimited",
    "ServerError",
]
