"""cux's client side: the async Python SDK for traders and consumers.

- `Client` (`clients.client`): one websocket connection; place, amend, cancel,
  wait for an order's fills (`clients.trading`), subscribe to channels as async
  iterators, submit jobs and wait for their results (`clients.jobs`);
  reconnects and restores subscriptions.
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
    AccountError,
    AuthError,
    BookOutOfSync,
    ClientClosed,
    ClientError,
    ConfigError,
    ConnectionLost,
    InsufficientCapacity,
    InsufficientFunds,
    InvalidOrder,
    JobError,
    LeaseError,
    NotTrading,
    OperatorError,
    OrderClosed,
    OrderNotFound,
    OrderRejected,
    ProtocolError,
    RateLimited,
    RequestTimeout,
    ServerError,
    ServerUnavailable,
)
from clients.live import LiveBook
from clients.messages import (
    Balance,
    Fill,
    Job,
    JobUpdate,
    OpenOrder,
    OrderResult,
    OrderUpdate,
    PlacedOrder,
    Resync,
)
from clients.rest import RestClient
from clients.subscriptions import Subscription

__all__ = [
    "AccountError",
    "Applied",
    "AuthError",
    "Backoff",
    "Balance",
    "BookMirror",
    "BookOutOfSync",
    "Client",
    "ClientClosed",
    "ClientError",
    "ConfigError",
    "ConnectionLost",
    "Fill",
    "InsufficientCapacity",
    "InsufficientFunds",
    "InvalidOrder",
    "Job",
    "JobError",
    "JobUpdate",
    "LeaseError",
    "LiveBook",
    "NotTrading",
    "OpenOrder",
    "OperatorError",
    "OrderClosed",
    "OrderNotFound",
    "OrderRejected",
    "OrderResult",
    "OrderUpdate",
    "PlacedOrder",
    "ProtocolError",
    "RateLimited",
    "RequestTimeout",
    "RestClient",
    "Resync",
    "ServerError",
    "ServerUnavailable",
    "Subscription",
]
