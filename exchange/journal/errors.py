"""Exceptions of the journal: a journal that cannot be used as asked.

Every one is a `matching.CuxError`, so a caller that stops on any of cux's own
errors stops on these too. The server refuses to start on any of them; ``cux
replay`` turns them into a one-line message and exit code 2.
"""

from __future__ import annotations

from pathlib import Path

from matching import CuxError

__all__ = ["JournalConfigMismatch", "JournalCorrupt", "JournalError"]


class JournalError(CuxError):
    """The journal cannot be used: missing, in use, closed, failed or misused."""


class JournalCorrupt(JournalError):
    """A journal or snapshot file holds bytes that cux did not write.

    Attributes:
        path: the damaged file (or the journal folder when a whole file is
            missing).
        offset: the byte offset in ``path`` where the bad record or header
            starts.
        reason: what is wrong there, in words.
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"journal corrupt: {path} at byte {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason

    def __reduce__(self) -> tuple[type[JournalCorrupt], tuple[Path, int, str]]:
        return (type(self), (self.path, self.offset, self.reason))


class JournalConfigMismatch(JournalError):
    """The folder's journal was written for another market configuration.

    Replaying it against this configuration would give another market, so the
    journal refuses to open it; start with the configuration it was written
    with, or with another data folder.
    """
