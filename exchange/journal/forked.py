"""Encoding an engine's snapshot without stopping the event loop.

Taking a snapshot on the event loop stops the market while the whole state is
copied and sorted (`matching.Engine.snapshot`): at 200,000 closed orders that
was 70 ms of the loop, and encoding it in a thread held the GIL for another
25 ms; the copies then made the garbage collector walk them all. The state
keeps growing (the engine remembers every closed order), so the pause did too.

Where the OS can fork, `EncodedSnapshot.start` forks instead: the child is a
copy-on-write image of the process at this instant, so it sees the engine
exactly between two commands, whatever the parent does next. It builds and
encodes the snapshot and writes the bytes to a pipe, then exits; it touches no
file, socket or lock of the parent (it closes every descriptor but the pipe).
The parent reads the pipe in a worker thread, without the GIL, and writes the
file as before (`exchange.journal.snapshots`). Without `os.fork` the state is
taken on the loop and encoded in the thread, as it always was.

The bytes are the same either way: the child runs the same code on the same
state.
"""

from __future__ import annotations

import gc
import os
import signal
from typing import Final

from exchange.journal.errors import JournalError
from exchange.journal.snapshots import encode_snapshot
from matching import Engine, EngineState

__all__ = ["EncodedSnapshot"]

_CHUNK: Final = 1 << 20
_FORK: Final = hasattr(os, "fork")


class EncodedSnapshot:
    """The encoded snapshot of one engine at one instant, being made.

    Call `start` on the event loop (it returns at once), then `result` in a
    worker thread: it blocks until the bytes are complete.
    """

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self._pid = 0
        self._read_fd = -1
        self._state: EngineState | None = None

    @classmethod
    def start(cls, engine: Engine, *, fork: bool = _FORK) -> EncodedSnapshot:
        """Take ``engine``'s state now: in a forked child, or on the spot."""
        taken = cls(engine.seq)
        if not fork:
            taken._state = engine.snapshot()
            return taken
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _encode_in_child(engine, write_fd)
        os.close(write_fd)
        taken._pid = pid
        taken._read_fd = read_fd
        return taken

    def result(self) -> bytes:
        """The snapshot file's bytes; blocking: call it in a worker thread.

        Raises:
            JournalError: the child failed or was killed.
        """
        if self._state is not None:
            return encode_snapshot(self._state)
        chunks = []
        try:
            while chunk := os.read(self._read_fd, _CHUNK):
                chunks.append(chunk)
        finally:
            os.close(self._read_fd)
            _, status = os.waitpid(self._pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            raise JournalError(
                f"the process encoding the snapshot at {self.seq} failed "
                f"(wait status {status})"
            )
        return b"".join(chunks)


def _encode_in_child(engine: Engine, write_fd: int) -> None:
    """Encode ``engine``'s snapshot into ``write_fd`` and exit (in the child)."""
    status = 1
    try:
        # The parent stops gracefully on SIGINT and waits for this snapshot;
        # SIGTERM keeps its default, so killing the process group kills it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # Nothing the parent holds open is the child's business: not the
        # journal's lock (a restarted server must get it at once), not the
        # sockets, not the event loop's descriptors.
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, 1 << 20)
        gc.disable()
        view = memoryview(encode_snapshot(engine.snapshot()))
        while view:
            view = view[os.write(write_fd, view) :]
        status = 0
    finally:
        os._exit(status)
