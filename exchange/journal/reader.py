"""Reading a journal folder: its segments in order, every record checked.

`read_records` and `replay` read a journal without changing it, so they are safe
on the folder of a running server (they see what was written so far) and on a
copy. They read every segment from the first, unlike recovery, which starts at
the last snapshot; so ``cux replay`` is also the full check of a journal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from exchange.journal.errors import JournalCorrupt, JournalError
from exchange.journal.format import (
    JournalRecord,
    SegmentScan,
    TornHeader,
    parse_segment_name,
)
from matching import Engine, MarketConfig, SequenceError

__all__ = [
    "Segment",
    "Tail",
    "Walk",
    "find_journal",
    "list_segments",
    "read_records",
    "replay",
]

_log = logging.getLogger("cux.journal")

JOURNAL_DIR = "journal"
"""The journal's folder inside a data folder."""


@dataclass(frozen=True)
class Segment:
    """One segment file and the first sequence number its name stands for."""

    path: Path
    first_seq: int


@dataclass(frozen=True)
class Tail:
    """A torn tail found at the end of the last segment.

    Attributes:
        path: the segment.
        offset: where the torn bytes start; 0 if the header itself is torn.
        size: the file's size: the torn bytes are ``[offset, size)``.
        reason: what was found there, in words.
    """

    path: Path
    offset: int
    size: int
    reason: str


def find_journal(folder: Path | str) -> Path:
    """The journal folder of ``folder``: its ``journal/`` or ``folder`` itself.

    Raises:
        JournalError: ``folder`` holds no journal.
    """
    folder = Path(folder)
    inner = folder / JOURNAL_DIR
    if inner.is_dir():
        return inner
    if folder.is_dir() and (folder.name == JOURNAL_DIR or list_segments(folder)):
        return folder
    if not folder.exists():
        raise JournalError(f"no journal at {folder}: the folder does not exist")
    raise JournalError(
        f"no journal at {folder}: expected a data folder with {JOURNAL_DIR}/ "
        "or a folder of journal segments"
    )


def list_segments(journal: Path) -> list[Segment]:
    """The segment files in ``journal``, by first sequence number.

    Other files (such as the ``.torn-at-*`` copies of cut tails) are ignored.
    """
    found = []
    with os.scandir(journal) as entries:
        for entry in entries:
            first_seq = parse_segment_name(entry.name)
            if first_seq is not None and entry.is_file():
                found.append(Segment(Path(entry.path), first_seq))
    return sorted(found, key=lambda s: s.first_seq)


class Walk:
    """Reads consecutive segments and checks that their records follow on.

    Args:
        segments: the segments to read, in order; the last may have a torn tail.
        config: the configuration every segment must name; None takes the
            first segment's.

    Attributes:
        config: the journal's market configuration, once a header was read.
        last_seq: the sequence number of the last record read so far (the
            first segment's first sequence number - 1 before any).
        tail: after `records` is exhausted, the last segment's torn tail, if
            it has one.
    """

    def __init__(
        self, segments: Sequence[Segment], config: MarketConfig | None = None
    ) -> None:
        self.segments = segments
        self.config = config
        self.last_seq = segments[0].first_seq - 1 if segments else 0
        self.tail: Tail | None = None
        self.end = 0

    def records(self) -> Iterator[tuple[Path, int, JournalRecord]]:
        """Each record with its file and the offset of its frame.

        Raises:
            JournalCorrupt: a record, a header or the sequence is damaged.
        """
        for i, segment in enumerate(self.segments):
            last = i == len(self.segments) - 1
            data = segment.path.read_bytes()
            try:
                scan = SegmentScan(segment.path, data, segment.first_seq, last=last)
            except TornHeader as torn:
                self.tail = Tail(segment.path, 0, len(data), torn.reason)
                return
            self._check_segment(segment, scan)
            for offset, record in scan.records():
                yield segment.path, offset, record
            self.last_seq = scan.last_seq
            self.end = scan.end
            if scan.torn is not None:
                self.tail = Tail(segment.path, scan.end, len(data), scan.torn)

    def _check_segment(self, segment: Segment, scan: SegmentScan) -> None:
        if self.config is None:
            self.config = scan.header.config
        elif scan.header.config != self.config:
            raise JournalCorrupt(
                segment.path, 0, "written for another market configuration"
            )
        if segment.first_seq != self.last_seq + 1:
            raise JournalCorrupt(
                segment.path,
                0,
                f"records {self.last_seq + 1} to {segment.first_seq - 1} are "
                "missing: the previous segment ends before this one starts",
            )


def read_records(folder: Path | str) -> Iterator[JournalRecord]:
    """Every record of the journal in ``folder``, in order, each checked.

    ``folder`` is a data folder (holding ``journal/``) or the journal folder.
    A torn tail at the end is skipped with a WARNING; it is not cut.

    Raises:
        JournalError: there is no journal there.
        JournalCorrupt: a record or header is damaged, or records are missing.
    """
    walk = Walk(list_segments(find_journal(folder)))
    for _, _, record in walk.records():
        yield record
    _warn_tail(walk.tail)


def replay(folder: Path | str) -> Engine:
    """A new engine that applied every record of the journal in ``folder``.

    It uses no snapshot: it starts from an empty engine with the configuration
    in the journal's header and applies record 1 onwards, so its state hash is
    the one the server had after the last complete record. A torn tail is
    skipped with a WARNING.

    Raises:
        JournalError: there is no journal there, or it does not start at 1.
        JournalCorrupt: a record or header is damaged, records are missing,
            or the timestamps go backwards.
    """
    journal = find_journal(folder)
    segments = list_segments(journal)
    if not segments:
        raise JournalError(f"no journal at {journal}: it has no segment files")
    if segments[0].first_seq != 1:
        raise JournalError(
            f"the journal at {journal} starts at record {segments[0].first_seq}, "
            "not 1: its first segments are missing"
        )
    walk = Walk(segments)
    engine: Engine | None = None
    for path, offset, record in walk.records():
        if engine is None:
            assert walk.config is not None
            engine = Engine(walk.config)
        apply_record(engine, path, offset, record)
    if walk.config is None:
        # The only segment's header is torn: that is the whole story, in one
        # line, not a warning about the tail and then the error.
        why = f": {walk.tail.path.name}: {walk.tail.reason}" if walk.tail else ""
        raise JournalError(f"the journal at {journal} holds no complete segment{why}")
    _warn_tail(walk.tail)
    return engine if engine is not None else Engine(walk.config)


def apply_record(
    engine: Engine, path: Path, offset: int, record: JournalRecord
) -> None:
    """Apply ``record`` to ``engine``; a stamp it refuses is journal damage."""
    try:
        engine.apply(record.seq, record.ts, record.command)
    except (SequenceError, TypeError) as exc:
        raise JournalCorrupt(path, offset, f"the engine refused it: {exc}") from None


def _warn_tail(tail: Tail | None) -> None:
    if tail is not None:
        _log.warning(
            "journal %s: ignoring a torn tail of %d bytes at byte %d (%s)",
            tail.path,
            tail.size - tail.offset,
            tail.offset,
            tail.reason,
        )
