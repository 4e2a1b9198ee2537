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
    ListFuture,
    OpenAccount,
    PlaceOrder,
    ReleaseEscrow,
    SchedulePhase,
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
    FuturesTerms,
    InstrumentSpec,
    MarketConfig,
    ResourceClass,
    load_market,
)
from matching.engine import Engine, Instrument
from matching.errors import ConfigError, CuxError, InvariantViolation, SequenceError
from matching.events import (
    AccountOpened,
    AuctionCleared,
    AuctionTrade,
    CapacitySet,
    CommandRejected,
    DeliveryEnded,
    DeliveryStarted,
    Deposited,
    EscrowReleased,
    Event,
    FutureListed,
    IndicativePrice,
    LeaseCreated,
    LeaseEnded,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    PhaseChanged,
    PhaseScheduled,
    SettlementFixed,
    Trade,
    Withdrawn,
)
from matching.futures import Lease
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
    "AuctionCleared",
    "AuctionTrade",
    "Book",
    "CancelOrder",
    "CancelReason",
    "CapacitySet",
    "Code",
    "Command",
    "CommandRejected",
    "ConfigError",
    "CuxError",
    "DeliveryEnded",
    "DeliveryStarted",
    "Deposit",
    "Deposited",
    "Engine",
    "EngineState",
    "Escrow",
    "EscrowReleased",
    "Event",
    "FutureListed",
    "FuturesTerms",
    "IndicativePrice",
    "Instrument",
    "InstrumentSpec",
    "InvariantViolation",
    "Lease",
    "LeaseCreated",
    "LeaseEnded",
    "Ledger",
    "ListFuture",
    "MarketConfig",
    "OpenAccount",
    "OrderAccepted",
    "OrderAmended",
    "OrderCancelled",
    "OrderExpired",
    "OrderRejected",
    "PhaseChanged",
    "PhaseScheduled",
    "PlaceOrder",
    "Release",
    "ReleaseEscrow",
    "ResourceClass",
    "SchedulePhase",
    "SequenceError",
    "SetCapacity",
    "SetPhase",
    "SettlementFixed",
    "Tick",
    "Trade",
    "Withdraw",
    "Withdrawn",
    "load_market",
]
