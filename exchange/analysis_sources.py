"""What a replay starts from: which journal, and the state hashes it must give.

`default_journal` finds the journal the notebooks open when none is named: the
newest one ``cux demo`` wrote, else a fallback (the small one shipped in
``notebooks/data/``). `HashChecks` holds the state hashes a replay is checked
against, by sequence number: every snapshot's in the data folder (the server
wrote each from its own engine) and one given by the user, such as what
``cux replay`` or ``/health?state_hash=1`` printed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final, NamedTuple

import msgspec

from exchange.journal import JournalError
from exchange.journal.snapshots import SnapshotInvalid, list_snapshots, read_snapshot

__all__ = [
    "DEMO_DATA",
    "HashCheck",
    "HashChecks",
    "StateHashMismatch",
    "default_journal",
    "newest_journal",
]

DEMO_DATA: Final = Path("cux-demo")
"""Where ``cux demo`` keeps its data folders, relative to where it ran."""


class StateHashMismatch(JournalError):
    """The replayed engine's state hash differs from a snapshot's or the
    expected one: the journal and the state it should give disagree."""


class HashCheck(msgspec.Struct, frozen=True):
    """One comparison of the replayed state hash with a known one.

    Attributes:
        seq: the sequence number after which the hashes were compared.
        source: where the known hash came from: a snapshot file's name, or
            ``expected``.
        expected: the known hash; empty if the snapshot could not be read.
        actual: the replayed engine's hash at ``seq``; empty if the journal
            ends before ``seq`` or the snapshot could not be read.
        note: why the check failed, when it did not just differ.
    """

    seq: int
    source: str
    expected: str
    actual: str
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.actual) and self.actual == self.expected

    def describe(self) -> str:
        """The check in one line."""
        outcome = "ok" if self.ok else f"FAILED: got {self.actual or 'nothing'}"
        note = f" ({self.note})" if self.note else ""
        return f"seq {self.seq} ({self.source}): {self.expected} {outcome}{note}"


class _Due(NamedTuple):
    source: str
    hash: str
    note: str = ""


class HashChecks:
    """The hashes a replay must meet, by sequence number, and the results.

    Args:
        snapshots: a snapshots folder whose every snapshot is a check; a
            damaged one is a failed check.
        expected_hash: a hash the state must have, or None.
        expected_seq: the sequence number it belongs to; None for the last
            record (see `finish`).

    Attributes:
        done: the checks made so far, in order.
    """

    def __init__(
        self,
        snapshots: Path,
        expected_hash: str | None = None,
        expected_seq: int | None = None,
    ) -> None:
        self._due: dict[int, list[_Due]] = {}
        for seq, path in list_snapshots(snapshots):
            try:
                state = read_snapshot(path)
            except SnapshotInvalid as exc:
                self._due[seq] = [_Due(path.name, "", str(exc))]
                continue
            digest = hashlib.sha256(msgspec.msgpack.encode(state)).hexdigest()
            self._due[seq] = [_Due(path.name, digest)]
        self._at_end: list[_Due] = []
        if expected_hash is not None:
            due = _Due("expected", expected_hash)
            if expected_seq is None:
                self._at_end.append(due)
            else:
                self._due.setdefault(expected_seq, []).append(due)
        self.done: list[HashCheck] = []

    def after(self, seq: int, state_hash: Callable[[], str]) -> None:
        """Make the checks due after record ``seq``; ``state_hash`` gives the
        replayed engine's hash (it is computed only if a check is due)."""
        due = self._due.pop(seq, None)
        if due:
            self._compare(seq, due, state_hash())

    def finish(self, records: int, state_hash: str) -> None:
        """Make the checks of the end, after the last record ``records``; a
        check due beyond it fails."""
        self._compare(records, self._at_end, state_hash)
        note = f"the journal ends at record {records}"
        for seq, due in sorted(self._due.items()):
            self.done += [HashCheck(seq, d.source, d.hash, "", note) for d in due]
        self._due.clear()

    def _compare(self, seq: int, due: list[_Due], actual: str) -> None:
        for d in due:
            self.done.append(
                HashCheck(seq, d.source, d.hash, actual if d.hash else "", d.note)
            )

    def verify(self, journal: Path) -> None:
        """Raise `StateHashMismatch` naming every failed check."""
        failed = [check.describe() for check in self.done if not check.ok]
        if failed:
            raise StateHashMismatch(
                f"the replay of {journal} disagrees: " + "; ".join(failed)
            )


def newest_journal(roots: Iterable[Path | str]) -> Path | None:
    """The data folder, among ``roots`` and their subfolders, whose journal was
    written last; None if none holds one."""
    best: tuple[float, Path] | None = None
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        for folder in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
            written = _written_at(folder / "journal")
            if written is not None and (best is None or written > best[0]):
                best = (written, folder)
    return None if best is None else best[1]


def _written_at(journal: Path) -> float | None:
    """When the last file of ``journal`` changed; None without one."""
    if not journal.is_dir():
        return None
    with os.scandir(journal) as entries:
        times = [entry.stat().st_mtime for entry in entries if entry.is_file()]
    return max(times) if times else None


def default_journal(fallback: Path | str, demo: Iterable[Path | str] = ()) -> Path:
    """The journal to open when none is named: the newest one ``cux demo``
    wrote under ``demo`` (by default `DEMO_DATA` in the current folder and in
    its parent), else ``fallback``."""
    roots = list(demo) or [DEMO_DATA, Path("..") / DEMO_DATA]
    found = newest_journal(roots)
    return found if found is not None else Path(fallback)
