"""Market replay for analysis: rebuild a market from its journal, keep what happened.

`open_market` reads a journal (a data folder written by ``cux serve`` or ``cux
demo``, or its ``journal/`` folder), applies every record to a fresh engine as
``cux replay`` does, and keeps, for each command, the events it caused and a
sample of every book it touched. It checks the state hash on the way: at the
sequence number of every snapshot in the data folder, the replayed engine's
hash must equal the snapshot's, and at the end (or at ``expected_seq``) an
expected hash, such as the one ``cux replay`` or ``/health?state_hash=1``
printed, if one is given. `MarketReplay.verify` raises if any check failed.

What comes out is plain data for the replay notebooks: the series in
`exchange.analysis_market` (trades, volume, depth, spread, auctions),
`exchange.analysis_compute` (leases, providers) and `exchange.analysis_jobs`
(CU per job and what adaptive compute saved) are numpy arrays or lists of
small msgspec structs, and `exchange.analysis_plots` draws them.

    replay = open_market("cux-data")
    replay.verify()
    print(replay.summary())

Known limitations: the whole journal is replayed and its events kept in
memory (a few hundred bytes per command), so a journal of millions of commands
needs gigabytes; nodes are not in the journal (only the capacity their
accounts registered), so utilisation is per provider account, not per node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec

from exchange.analysis_sources import (
    HashCheck,
    HashChecks,
    StateHashMismatch,
    default_journal,
    newest_journal,
)
from exchange.journal import (
    JournalCorrupt,
    JournalError,
    JournalRecord,
    find_journal,
    list_segments,
)
from exchange.journal.reader import Tail, Walk
from exchange.journal.snapshots import SNAPSHOT_DIR
from matching import (
    AuctionTrade,
    Engine,
    Event,
    InstrumentSpec,
    MarketConfig,
    SequenceError,
    Trade,
)
from matching.order import BUY, SELL

__all__ = [
    "BookSample",
    "HashCheck",
    "MarketReplay",
    "StateHashMismatch",
    "TimedEvent",
    "default_journal",
    "newest_journal",
    "open_market",
]

DEPTH_LEVELS: Final = 10
"""The best levels per side that `BookSample` adds up by default."""

E = TypeVar("E")


class TimedEvent(msgspec.Struct, frozen=True, gc=False):
    """An engine event with the stamp of the command that caused it."""

    seq: int
    ts: int
    event: Event


class BookSample(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One instrument's book after a command that touched it.

    Prices in µcr per lot, quantities in lots; 0 for a side with no order.

    Attributes:
        bid, bid_qty, ask, ask_qty: the best level of each side.
        bid_depth, ask_depth: lots in the best `DEPTH_LEVELS` levels.
        bid_lots, ask_lots: lots on the whole side.
        phase: the instrument's trading phase.
    """

    seq: int
    ts: int
    bid: int
    bid_qty: int
    ask: int
    ask_qty: int
    bid_depth: int
    ask_depth: int
    bid_lots: int
    ask_lots: int
    phase: str


class MarketReplay:
    """A market rebuilt from its journal, with everything that happened in it.

    Attributes:
        journal: the journal folder read.
        config: the market configuration in the journal's header.
        engine: the engine after the last record.
        records: the number of records applied.
        first_ts, last_ts: the first and last record's timestamps (ns since
            the epoch; 0 for an empty journal).
        events: every event, in engine order.
        books: each instrument's `BookSample`s, in order; a sample is kept
            only when the book or phase changed.
        specs: each instrument that existed in the market, by symbol, also
            futures delisted since.
        commands: how many commands of each ``op`` the journal holds.
        hash_checks: the state hash comparisons made (see `verify`).
        torn_tail: a last write cut short at the journal's end (skipped, as
            recovery cuts it), or None.
    """

    def __init__(self, journal: Path, config: MarketConfig, checks: HashChecks) -> None:
        self.journal = journal
        self.config = config
        self.engine = Engine(config)
        self.records = 0
        self.first_ts = 0
        self.last_ts = 0
        self.events: list[TimedEvent] = []
        self.books: dict[str, list[BookSample]] = {}
        self.specs: dict[str, InstrumentSpec] = {
            symbol: inst.spec for symbol, inst in self.engine.instruments.items()
        }
        self.commands: Counter[str] = Counter()
        self._checks = checks
        self.hash_checks: list[HashCheck] = checks.done
        self.torn_tail: Tail | None = None

    @property
    def state_hash(self) -> str:
        """The replayed engine's state hash (``cux replay`` prints the same)."""
        return self.engine.state_hash()

    @property
    def verified(self) -> bool:
        """Whether every hash check passed (True when there was none)."""
        return all(check.ok for check in self.hash_checks)

    def verify(self) -> None:
        """Raise `StateHashMismatch` naming every failed hash check."""
        self._checks.verify(self.journal)

    def of_type(self, kind: type[E]) -> Iterator[tuple[int, int, E]]:
        """``(seq, ts, event)`` for every event of type ``kind``, in order."""
        for timed in self.events:
            if isinstance(timed.event, kind):
                yield timed.seq, timed.ts, timed.event

    def named(self, *names: str) -> Iterator[TimedEvent]:
        """Every event whose class is called one of ``names``; for events that
        this version of the engine may not have (so no class to import)."""
        for timed in self.events:
            if type(timed.event).__name__ in names:
                yield timed

    def symbols(self) -> list[str]:
        """Every instrument that ever existed, spot first, then by symbol."""
        return sorted(self.specs, key=lambda s: (self.specs[s].kind != "spot", s))

    def busiest_symbol(self) -> str:
        """The instrument with the most lots traded (the first spot if none)."""
        symbols = self.symbols()
        volume = dict.fromkeys(symbols, 0)
        for timed in self.events:
            if isinstance(timed.event, Trade | AuctionTrade):
                volume[timed.event.symbol] += timed.event.qty
        return max(symbols, key=lambda s: (volume[s], -symbols.index(s)))

    def summary(self) -> dict[str, Any]:
        """Counts and checks at a glance, as plain values."""
        kinds = Counter(type(t.event).__name__ for t in self.events)
        return {
            "journal": str(self.journal),
            "records": self.records,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "seconds": (self.last_ts - self.first_ts) / 1e9,
            "state_hash": self.state_hash,
            "hash_checks": len(self.hash_checks),
            "verified": self.verified,
            "instruments": self.symbols(),
            "accounts": len(self.engine.ledger.names),
            "trades": kinds["Trade"] + kinds["AuctionTrade"],
            "auctions": kinds["AuctionCleared"],
            "rejections": kinds["OrderRejected"] + kinds["CommandRejected"],
            "commands": dict(sorted(self.commands.items())),
        }


def open_market(
    path: Path | str,
    *,
    expected_hash: str | None = None,
    expected_seq: int | None = None,
    depth_levels: int = DEPTH_LEVELS,
) -> MarketReplay:
    """Replay the journal at ``path`` and keep what happened (see the module).

    Args:
        path: a data folder (holding ``journal/``) or a journal folder.
        expected_hash: a state hash the market must have, or None.
        expected_seq: the sequence number ``expected_hash`` belongs to; None
            for the last record.
        depth_levels: the best levels per side summed in `BookSample`.

    Raises:
        JournalError: there is no journal at ``path``, or it does not start at
            record 1.
        JournalCorrupt: a record or header is damaged, or records are missing.

    A hash that differs is not raised here: it is a failed `HashCheck`, which
    `MarketReplay.verify` raises. A torn tail (a last write cut short) is
    skipped, as recovery would cut it, and kept in `MarketReplay.torn_tail`.
    """
    journal = find_journal(path).resolve()
    segments = list_segments(journal)
    if not segments:
        raise JournalError(f"no journal at {journal}: it has no segment files")
    if segments[0].first_seq != 1:
        raise JournalError(
            f"the journal at {journal} starts at record {segments[0].first_seq}, "
            "not 1: its first segments are missing"
        )
    checks = HashChecks(journal.parent / SNAPSHOT_DIR, expected_hash, expected_seq)
    walk = Walk(segments)
    replay: MarketReplay | None = None
    for file, offset, record in walk.records():
        if replay is None:
            assert walk.config is not None
            replay = MarketReplay(journal, walk.config, checks)
            replay.first_ts = record.ts
        events = _apply(replay.engine, file, offset, record)
        replay.records = record.seq
        replay.last_ts = record.ts
        replay.commands[str(type(record.command).__struct_config__.tag)] += 1
        _keep(replay, record.seq, record.ts, events, depth_levels)
        checks.after(record.seq, replay.engine.state_hash)
    if replay is None:
        if walk.config is None:
            raise JournalError(f"the journal at {journal} holds no complete segment")
        replay = MarketReplay(journal, walk.config, checks)
    replay.torn_tail = walk.tail
    checks.finish(replay.records, replay.state_hash)
    return replay


def _apply(
    engine: Engine, file: Path, offset: int, record: JournalRecord
) -> list[Event]:
    """Apply ``record``; a stamp the engine refuses is journal damage."""
    try:
        return engine.apply(record.seq, record.ts, record.command)
    except (SequenceError, TypeError) as exc:
        raise JournalCorrupt(file, offset, f"the engine refused it: {exc}") from None


def _keep(
    replay: MarketReplay, seq: int, ts: int, events: list[Event], levels: int
) -> None:
    touched: dict[str, None] = {}
    for event in events:
        replay.events.append(TimedEvent(seq, ts, event))
        symbol = getattr(event, "symbol", None)
        if isinstance(symbol, str):
            touched[symbol] = None
    instruments = replay.engine.instruments
    for symbol in touched:
        inst = instruments.get(symbol)
        if inst is None:
            continue
        replay.specs.setdefault(symbol, inst.spec)
        book = inst.book
        bids, asks = book.depth(BUY, levels), book.depth(SELL, levels)
        sample = BookSample(
            seq,
            ts,
            *(bids[0] if bids else (0, 0)),
            *(asks[0] if asks else (0, 0)),
            sum(q for _, q in bids),
            sum(q for _, q in asks),
            book.volume(BUY),
            book.volume(SELL),
            inst.phase,
        )
        kept = replay.books.setdefault(symbol, [])
        if not kept or _changed(kept[-1], sample):
            kept.append(sample)


def _changed(last: BookSample, new: BookSample) -> bool:
    return msgspec.structs.astuple(last)[2:] != msgspec.structs.astuple(new)[2:]
