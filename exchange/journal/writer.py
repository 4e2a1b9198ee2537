"""The journal's open segment: appends, rotation and fsync, in one worker thread.

`SegmentWriter` is touched only from the journal's single writer thread
(`WriterThread`), one call at a time, so it needs no lock and its calls happen
in the order the event loop submitted them. It never decides what to write,
only how: the event loop side (`exchange.journal.file`) forms the groups.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from exchange.journal.format import encode_header, segment_name
from exchange.journal.snapshots import sync_folder
from matching import MarketConfig

__all__ = ["FsyncPolicy", "SegmentWriter", "ThreadedWriter", "WriterThread"]

_log = logging.getLogger("cux.journal")

FsyncPolicy = Literal["batch", "interval", "none"]


class SegmentWriter:
    """Appends groups of framed records to the journal's last segment.

    Args:
        folder: the journal folder holding the segments.
        config: written into the header of every new segment.
        policy: when to fsync (see `exchange.journal.FileJournal`).
        interval_s: for ``interval``, the least time between two fsyncs.
        segment_bytes: a group that finds the segment at this size or more
            starts a new one.
        fsync_fd: the function that flushes a file descriptor to disk.
    """

    def __init__(
        self,
        folder: Path,
        config: MarketConfig,
        policy: FsyncPolicy,
        interval_s: float,
        segment_bytes: int,
        fsync_fd: Callable[[int], None],
    ) -> None:
        self.folder = folder
        self.config = config
        self.policy = policy
        self.interval_s = interval_s
        self.segment_bytes = segment_bytes
        self.fsync_fd = fsync_fd
        self.fd: int | None = None
        self.first_seq = 0
        self.size = 0
        self.empty = True
        self.unsynced = False
        self.folder_unsynced = False
        self.last_sync = time.monotonic()

    def open_tail(self, path: Path, first_seq: int, empty: bool) -> None:
        """Continue the existing segment ``path`` (its torn tail already cut)."""
        self.adopt_tail(os.open(path, os.O_WRONLY | os.O_APPEND), first_seq, empty)

    def adopt_tail(self, fd: int, first_seq: int, empty: bool) -> None:
        """Continue the segment open as ``fd`` (opened by `open_tail`)."""
        self.fd = fd
        self.first_seq = first_seq
        self.size = os.fstat(fd).st_size
        self.empty = empty

    def write(
        self, data: bytes, first_seq: int, rotate: bool, sync: bool
    ) -> float | None:
        """Append ``data`` (frames from record ``first_seq`` on), then fsync as
        the policy or ``sync`` asks.

        ``rotate`` starts a new segment first, as after a snapshot. Returns None
        if everything written is on disk, else the monotonic time at which the
        ``interval`` policy allows the next fsync.
        """
        if data:
            if self._needs_segment(first_seq, rotate):
                self._start_segment(first_seq)
            assert self.fd is not None
            _write_all(self.fd, data)
            self.size += len(data)
            self.empty = False
            self.unsynced = True
        due = self.last_sync + self.interval_s
        if (
            sync
            or self.policy == "batch"
            or (self.policy == "interval" and time.monotonic() >= due)
        ):
            self.sync()
        if not (self.unsynced or self.folder_unsynced):
            return None
        return due

    def sync(self) -> None:
        """Flush the segment and, if a segment was created, the folder."""
        if self.fd is not None and self.unsynced:
            self.fsync_fd(self.fd)
            self.unsynced = False
        if self.folder_unsynced:
            sync_folder(self.folder, self.fsync_fd)
            self.folder_unsynced = False
        self.last_sync = time.monotonic()

    def close(self) -> None:
        """Close the segment; call `sync` first for what must be durable."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _needs_segment(self, first_seq: int, rotate: bool) -> bool:
        if self.fd is None:
            return True
        if self.empty and self.first_seq == first_seq:
            # A segment without records (one just started, or whose only
            # records were a torn tail) is already the right one.
            return False
        return rotate or self.size >= self.segment_bytes

    def _start_segment(self, first_seq: int) -> None:
        if self.fd is not None:
            # Whatever the policy: `sync` flushes only the open segment, so one
            # left behind must be complete on disk (one fsync per segment).
            if self.unsynced:
                self.fsync_fd(self.fd)
                self.unsynced = False
            self.close()
        path = self.folder / segment_name(first_seq)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        self.fd = os.open(path, flags, 0o644)
        header = encode_header(first_seq, self.config)
        _write_all(self.fd, header)
        self.first_seq = first_seq
        self.size = len(header)
        self.empty = True
        self.unsynced = True
        self.folder_unsynced = True
        _log.info("journal: new segment %s", path.name)


Answer = Callable[[Any, BaseException | None], None]
"""Called on the event loop with a call's result, or None and its exception."""


class WriterThread:
    """One thread that makes blocking calls in order and answers the event loop.

    A call costs one hand-off each way: the thread takes it from a queue, and
    its answer is one `call_soon_threadsafe` (no executor futures, locks or
    extra callbacks, as `run_in_executor` has). The thread starts with the
    first call and is a daemon: a call it was making at exit was never
    answered, so nothing it wrote had been acknowledged.

    Args:
        name: the thread's name.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def call(
        self,
        loop: asyncio.AbstractEventLoop,
        answer: Answer,
        function: Callable[..., Any],
        *args: Any,
    ) -> None:
        """Run ``function(*args)`` in the thread after the calls before it;
        then ``answer`` runs on ``loop``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=self.name, daemon=True
            )
            self._thread.start()
        self._calls.put((loop, answer, function, args))

    def stop(self) -> None:
        """End the thread once the calls before this are made."""
        if self._thread is not None:
            self._calls.put(None)
            self._thread = None

    def _run(self) -> None:
        calls = self._calls
        while True:
            item = calls.get()
            if item is None:
                return
            loop, answer, function, args = item
            error: BaseException | None = None
            result = None
            try:
                result = function(*args)
            except BaseException as exc:  # the loop decides; the thread goes on
                error = exc
            try:
                loop.call_soon_threadsafe(answer, result, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return


class ThreadedWriter:
    """A `SegmentWriter` driven from the event loop through a `WriterThread`.

    It has the interface of `exchange.journal.writer_process.WriterProcess`,
    which runs the writer in a process of its own instead.
    """

    def __init__(self, writer: SegmentWriter) -> None:
        self._writer = writer
        self._thread = WriterThread("cux-journal")

    def start(self) -> None:
        """Nothing to do: the thread starts with the first call."""

    def write(
        self,
        loop: asyncio.AbstractEventLoop,
        answer: Answer,
        data: bytes,
        first_seq: int,
        rotate: bool,
        sync: bool,
    ) -> None:
        """Run `SegmentWriter.write` in the thread; ``answer`` gets its result."""
        self._thread.call(
            loop, answer, self._writer.write, data, first_seq, rotate, sync
        )

    def close(self, loop: asyncio.AbstractEventLoop, answer: Answer) -> None:
        """Close the segment in the thread."""
        self._thread.call(loop, answer, self._writer.close)

    def stop(self) -> None:
        """End the thread once its calls are made."""
        self._thread.stop()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
