"""Realistic, seeded command streams for the journal's tests.

`Flow` plays the sequencer: it stamps each command with the next sequence number
and a timestamp, applies it to its own in-memory `Engine` and keeps the
`JournalRecord`, so a test can journal the records and compare what the journal
rebuilds with the engine that applied them. The commands are a small market
day: accounts, deposits and capacity, then limit, IOC, GTD and market orders,
cancels (some of closed orders: rejected, and journaled all the same), amends,
ticks, escrow releases, a withdrawal, and a spot class in batch auctions.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from exchange.journal import FileJournal, JournalRecord, list_segments
from exchange.journal.format import FRAME_BYTES, read_header
from matching import (
    AmendOrder,
    CancelOrder,
    Command,
    Deposit,
    Engine,
    MarketConfig,
    OpenAccount,
    OrderAccepted,
    PlaceOrder,
    ReleaseEscrow,
    ResourceClass,
    SetCapacity,
    Tick,
    Withdraw,
)
from matching.commands import Side

CONFIG: Final = MarketConfig(
    classes=[
        ResourceClass("cpu", lot_cu=100, tick=1, taker_fee_bps=10, maker_fee_bps=5),
        ResourceClass(
            "gpu",
            lot_cu=1000,
            tick=10,
            taker_fee_bps=25,
            maker_fee_bps=10,
            spot_phase="batch",
            batch_interval_ms=20,
        ),
    ]
)
OTHER_CONFIG: Final = MarketConfig(
    classes=[ResourceClass("cpu", lot_cu=100, tick=2, taker_fee_bps=10)]
)
SYMBOLS: Final = ("cpu-SPOT", "gpu-SPOT")
START_NS: Final = 1_735_689_600_000_000_000
MS: Final = 1_000_000
CREDIT: Final = 1_000_000
CONSUMERS: Final = ("alice", "bob", "carol")
PROVIDERS: Final = ("prov-a", "prov-b")


class Flow:
    """A seeded market fed like the sequencer feeds one; it keeps the records."""

    def __init__(self, seed: int = 1, config: MarketConfig = CONFIG) -> None:
        self.engine = Engine(config)
        self.rng = random.Random(seed)
        self.now = START_NS
        self.records: list[JournalRecord] = []
        self.orders: list[tuple[str, int]] = []

    def send(self, command: Command, after_ns: int = MS) -> JournalRecord:
        """Stamp, apply and keep ``command``; its record."""
        self.now += after_ns
        seq = self.engine.seq + 1
        events = self.engine.apply(seq, self.now, command)
        self.engine.check()
        for event in events:
            if isinstance(event, OrderAccepted):
                self.orders.append((event.account, event.order_id))
        record = JournalRecord(seq, self.now, command)
        self.records.append(record)
        return record

    def opening(self) -> list[JournalRecord]:
        """Accounts, deposits and capacity: the start of a market day."""
        first = len(self.records)
        for name in CONSUMERS:
            self.send(OpenAccount(name))
            self.send(Deposit(name, 10_000 * CREDIT))
        for name in PROVIDERS:
            self.send(OpenAccount(name, ("provider",)))
            for symbol in SYMBOLS:
                self.send(SetCapacity(name, symbol, 100_000))
        return self.records[first:]

    def take(self, n: int) -> list[JournalRecord]:
        """``n`` more records of random market activity (after `opening`)."""
        return [self.step() for _ in range(n)]

    def step(self) -> JournalRecord:
        """One random command, stamped and applied."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.55:
            return self.send(self._order())
        if roll < 0.70 and self.orders:
            account, order_id = rng.choice(self.orders)
            return self.send(CancelOrder(account, order_id))
        if roll < 0.80 and self.orders:
            account, order_id = rng.choice(self.orders)
            return self.send(AmendOrder(account, order_id, qty=rng.randint(1, 20)))
        if roll < 0.90 and self.engine.ledger.escrows:
            escrow = self.engine.ledger.escrows[
                rng.choice(list(self.engine.ledger.escrows))
            ]
            payout = escrow.amount * rng.randint(50, 100) // 100
            return self.send(ReleaseEscrow(escrow.trade_id, payout))
        if roll < 0.95:
            return self.send(Tick(), after_ns=rng.randint(1, 50) * MS)
        return self.send(Withdraw(rng.choice(CONSUMERS), rng.randint(1, 5) * CREDIT))

    def _order(self) -> PlaceOrder:
        rng = self.rng
        symbol = rng.choice(SYMBOLS)
        side: Side = rng.choice(("buy", "sell"))
        account = rng.choice(CONSUMERS if side == "buy" else PROVIDERS)
        tick = 1 if symbol == "cpu-SPOT" else 10
        price = (1000 + rng.randint(-20, 20) * 5) * tick
        qty = rng.randint(1, 30)
        kind = rng.random()
        if kind < 0.1 and symbol == "cpu-SPOT":
            return PlaceOrder(account, symbol, side, qty, type="market")
        if kind < 0.25:
            return PlaceOrder(account, symbol, side, qty, price=price, tif="IOC")
        if kind < 0.35:
            expire_at = self.now + rng.randint(1, 100) * MS
            return PlaceOrder(
                account, symbol, side, qty, price=price, tif="GTD", expire_at=expire_at
            )
        return PlaceOrder(account, symbol, side, qty, price=price)


def frame_offsets(segment: Path) -> list[int]:
    """The byte offsets of every record frame in ``segment``, plus its end."""
    data = segment.read_bytes()
    _, offset = read_header(segment, data, last=True)
    offsets = []
    while offset < len(data):
        offsets.append(offset)
        offset += FRAME_BYTES + int.from_bytes(data[offset : offset + 4], "little")
    offsets.append(offset)
    return offsets


def engine_after(
    records: Sequence[JournalRecord], config: MarketConfig = CONFIG
) -> Engine:
    """A fresh engine that applied ``records``: what the journal must rebuild."""
    engine = Engine(config)
    for record in records:
        engine.apply(record.seq, record.ts, record.command)
    return engine


def write_journal(
    folder: Path,
    batches: Sequence[Sequence[JournalRecord]],
    config: MarketConfig = CONFIG,
    **options: Any,
) -> None:
    """Journal ``batches`` (one append each, awaited) into ``folder`` and close.

    For synchronous tests; async tests use `FileJournal` directly.
    """

    async def run() -> None:
        journal = FileJournal(folder, config, **options)
        journal.recover()
        for batch in batches:
            await journal.append(batch)
        await journal.close()

    asyncio.run(run())


def segments(folder: Path) -> list[Path]:
    """The segment files of the data folder ``folder``, in order."""
    return [segment.path for segment in list_segments(folder / "journal")]


def flip_byte(path: Path, offset: int) -> None:
    """Invert every bit of the byte at ``offset`` in ``path``."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


class CountingFsync:
    """An ``fsync_fd`` seam that counts calls, optionally slows them down and
    records the size of each file it flushed.

    Attributes:
        calls: how many fsyncs were asked for.
        synced: (inode, size) of the file at each fsync, in order.
        fail_at: the call (counting from 1) that raises an I/O error; 0 never.
    """

    def __init__(self, delay_s: float = 0.0, fail_at: int = 0) -> None:
        self.delay_s = delay_s
        self.fail_at = fail_at
        self.calls = 0
        self.synced: list[tuple[int, int]] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        with self._lock:
            self.calls += 1
            call = self.calls
            self.threads.add(threading.current_thread().name)
        if call == self.fail_at:
            raise OSError(5, "Input/output error (injected)")
        if self.delay_s:
            time.sleep(self.delay_s)
        os.fsync(fd)
        stat = os.fstat(fd)
        with self._lock:
            self.synced.append((stat.st_ino, stat.st_size))

    def synced_size(self, path: Path) -> int:
        """The largest size of ``path`` that an fsync covered (0 if none)."""
        inode = path.stat().st_ino
        return max((size for ino, size in self.synced if ino == inode), default=0)
