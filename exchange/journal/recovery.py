"""Start-up: rebuild the engine from the newest good snapshot and the journal.

Recovery reads the newest snapshot whose checksum is good (an older one if the
newest is damaged, none if none is good), then applies the records after it,
checking that they follow on with no gap. It reads only the segments from the
one holding the first record after the snapshot, and the header of every
segment (so a folder of another market is refused before anything is read).

A torn tail of the last segment is cut off (the file truncated, the cut bytes
kept beside it as ``<segment>.torn-at-<offset>``) with a WARNING; every other
damage raises `JournalCorrupt` before anything is changed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exchange.journal.errors import JournalConfigMismatch, JournalCorrupt
from exchange.journal.format import TornHeader, read_header
from exchange.journal.reader import (
    JOURNAL_DIR,
    Segment,
    Tail,
    Walk,
    apply_record,
    list_segments,
)
from exchange.journal.snapshots import (
    SNAPSHOT_DIR,
    SnapshotInvalid,
    list_snapshots,
    read_snapshot,
    remove_temporary,
    sync_folder,
)
from matching import ConfigError, Engine, InvariantViolation, MarketConfig

__all__ = ["Recovered", "recover_folder"]

_log = logging.getLogger("cux.journal")

_HEADER_PREFIX = 20  # magic, version, body length, CRC: enough to find the body


@dataclass(frozen=True)
class Recovered:
    """What recovery found and rebuilt.

    Attributes:
        engine: the engine after the last complete record.
        snapshot_seq: the sequence number of the snapshot it started from; 0
            for none.
        replayed: how many records it applied after the snapshot.
        last: the segment that new records go on, or None if there is none.
        last_empty: whether that segment holds no record yet.
    """

    engine: Engine
    snapshot_seq: int
    replayed: int
    last: Segment | None
    last_empty: bool


def recover_folder(
    folder: Path, config: MarketConfig, fsync_fd: Callable[[int], None]
) -> Recovered:
    """Rebuild the engine from the data folder ``folder``; cut a torn tail.

    Creates ``journal/`` and ``snapshots/`` if they are missing.

    Raises:
        JournalConfigMismatch: the journal was written for another config.
        JournalCorrupt: a record, header or the sequence is damaged.
    """
    journal = folder / JOURNAL_DIR
    snapshots = folder / SNAPSHOT_DIR
    _make_folders(folder, (journal, snapshots), fsync_fd)
    remove_temporary(snapshots)

    segments = list_segments(journal)
    torn_header = _check_headers(segments, config)
    if torn_header is not None:
        segments = segments[:-1]
    engine, snapshot_seq = _load_snapshot(snapshots, config)

    walk = Walk(_from(segments, engine.seq + 1), config)
    replayed = 0
    for path, offset, record in walk.records():
        if record.seq > engine.seq:
            apply_record(engine, path, offset, record)
            replayed += 1
    if walk.last_seq < snapshot_seq:
        where = segments[-1].path if segments else journal
        raise JournalCorrupt(
            where,
            walk.end,
            f"the journal ends at record {walk.last_seq}, but the snapshot is at "
            f"{snapshot_seq}: records it holds are lost",
        )

    # Only now that everything checked out may the files change.
    for tail in (torn_header, walk.tail):
        if tail is not None:
            _cut(tail, fsync_fd)
    engine.check()
    last = segments[-1] if segments else None
    return Recovered(
        engine,
        snapshot_seq,
        replayed,
        last,
        last_empty=last is not None and walk.last_seq < last.first_seq,
    )


def _make_folders(
    folder: Path, wanted: tuple[Path, ...], fsync_fd: Callable[[int], None]
) -> None:
    missing = [path for path in wanted if not path.is_dir()]
    if missing:
        for path in missing:
            path.mkdir(parents=True, exist_ok=True)
        sync_folder(folder, fsync_fd)


def _check_headers(segments: list[Segment], config: MarketConfig) -> Tail | None:
    """Refuse a journal of another config; the last segment's torn header."""
    digest = config.digest()
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        prefix = _read_prefix(segment.path)
        try:
            header, _ = read_header(segment.path, prefix, last=last)
        except TornHeader as torn:
            return Tail(segment.path, 0, len(prefix), torn.reason)
        if header.config.digest() != digest:
            raise JournalConfigMismatch(
                f"{segment.path} was written for another market configuration "
                f"(digest {header.config.digest()[:12]}…, this one is "
                f"{digest[:12]}…): start with the configuration it was written "
                "with, or with another data folder"
            )
    return None


def _read_prefix(path: Path) -> bytes:
    with path.open("rb") as file:
        prefix = file.read(_HEADER_PREFIX)
        if len(prefix) == _HEADER_PREFIX:
            length = int.from_bytes(prefix[12:16], "little")
            prefix += file.read(min(length, 1 << 24))
    return prefix


def _load_snapshot(snapshots: Path, config: MarketConfig) -> tuple[Engine, int]:
    """The engine of the newest good snapshot and its seq; a new one if none."""
    for seq, path in reversed(list_snapshots(snapshots)):
        try:
            engine = Engine.restore(config, read_snapshot(path))
            engine.check()
        except (SnapshotInvalid, ConfigError, InvariantViolation) as exc:
            _log.warning("journal: skipping snapshot %s: %s", path.name, exc)
            continue
        return engine, seq
    return Engine(config), 0


def _from(segments: list[Segment], seq: int) -> list[Segment]:
    """The segments from the one that holds record ``seq`` on."""
    if not segments:
        return []
    if segments[0].first_seq > seq:
        raise JournalCorrupt(
            segments[0].path,
            0,
            f"the journal starts at record {segments[0].first_seq}, but recovery "
            f"needs record {seq} on (from the snapshot, or from 1 with none)",
        )
    start = max(i for i, s in enumerate(segments) if s.first_seq <= seq)
    return segments[start:]


def _cut(tail: Tail, fsync_fd: Callable[[int], None]) -> None:
    """Cut a torn tail off, keeping the cut bytes beside the segment."""
    aside = tail.path.with_name(f"{tail.path.name}.torn-at-{tail.offset}")
    if tail.offset == 0:
        os.replace(tail.path, aside)
    else:
        with tail.path.open("r+b") as file:
            file.seek(tail.offset)
            try:
                aside.write_bytes(file.read())
            except OSError:
                # Nothing is cut: the next start cuts and keeps it again.
                aside.unlink(missing_ok=True)
                raise
            file.truncate(tail.offset)
            file.flush()
            fsync_fd(file.fileno())
    sync_folder(tail.path.parent, fsync_fd)
    _log.warning(
        "journal %s: cut a torn tail of %d bytes at byte %d (%s); kept as %s",
        tail.path,
        tail.size - tail.offset,
        tail.offset,
        tail.reason,
        aside.name,
    )
