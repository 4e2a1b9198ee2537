"""cux's matching core: pure, deterministic, free of I/O.

The core takes a command stamped with a sequence number and a timestamp and
returns events; it never reads a clock, a socket or a file. The exchange, the
provider nodes, the clients and the replay notebooks all drive this same core.

    engine = Engine(MarketConfig(classes=[ResourceClass("cpu", lot_cu=100, tick=1)]))
    engine.apply(1, ts, OpenAccount("alice"))
    engine.apply(2, ts, Deposit("alice", 1_000_000))
    events = engine.apply(3, ts, PlaceOrder("alice", "cpu-SPOT", "buy", 10, price=1200))
"""

from matching.book import Book
from matching.codes import CODES, CancelReason, Code
from matching.commands import (
    AmendOrder,
    CancelOrder,
    Command,
    Deposit,
    OpenAccount,
    PlaceOrder,
    ReleaseEscrow,
    SetCapacity,
    SetPhase,
    Tick,
    Withdraw,
)
from matching.config import (
    MAX_AMOUNT,
    MAX_LABEL,
    MAX_PRICE,
    MAX_QTY,
    MAX_TIME,
    MAX_TOTAL,
    InstrumentSpec,
    MarketConfig,
    ResourceClass,
    load_market,
)
from matching.engine import Engine, Instrument
from matching.errors import ConfigError, CuxError, InvariantViolation, SequenceError
from matching.events import (
    AccountOpened,
    CapacitySet,
    CommandRejected,
    Deposited,
    EscrowReleased,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    PhaseChanged,
    Trade,
    Withdrawn,
)
from matching.ledger import Escrow, Ledger, Release
from matching.state import EngineState

__all__ = [
    "CODES",
    "MAX_AMOUNT",
    "MAX_LABEL",
    "MAX_PRICE",
    "MAX_QTY",
    "MAX_TIME",
    "MAX_TOTAL",
    "AccountOpened",
    "AmendOrder",
    "Book",
    "CancelOrder",
    "CancelReason",
    "CapacitySet",
    "Code",
    "Command",
    "CommandRejected",
    "ConfigError",
    "CuxError",
    "Deposit",
    "Deposited",
    "Engine",
    "EngineState",
    "Escrow",
    "EscrowReleased",
    "Event",
    "Instrument",
    "InstrumentSpec",
    "InvariantViolation",
    "Ledger",
    "MarketConfig",
    "OpenAccount",
    "OrderAccepted",
    "OrderAmended",
    "OrderCancelled",
    "OrderExpired",
    "OrderRejected",
    "PhaseChanged",
    "PlaceOrder",
    "Release",
    "ReleaseEscrow",
    "ResourceClass",
    "SequenceError",
    "SetCapacity",
    "SetPhase",
    "Tick",
    "Trade",
    "Withdraw",
    "Withdrawn",
    "load_market",
]
