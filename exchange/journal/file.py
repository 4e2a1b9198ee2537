"""`FileJournal`: the journal as local append-only files, with group commit.

The event loop side lives here: `FileJournal.append` encodes the records at
once, in call order, queues them and returns a future. When no group is on its
way to disk, everything queued so far becomes one group, handed to the writer
thread (`exchange.journal.writer`), which writes it with one ``write`` and,
under the ``batch`` policy, one fsync, and answers the loop once; the answer
completes the group's futures and sends the next group. Appends made while a
group is on its way to disk form the next group, so the more the disk lags,
the larger the groups: one fsync per group, not per append.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from exchange.journal.errors import JournalConfigMismatch, JournalError
from exchange.journal.forked import EncodedSnapshot
from exchange.journal.format import JournalRecord, encode_frames
from exchange.journal.protocol import Journal
from exchange.journal.reader import JOURNAL_DIR
from exchange.journal.recovery import recover_folder
from exchange.journal.snapshots import (
    SNAPSHOT_DIR,
    prune_snapshots,
    write_snapshot_bytes,
)
from exchange.journal.writer import FsyncPolicy, SegmentWriter, ThreadedWriter
from exchange.journal.writer_process import WriterProcess
from matching import Engine, MarketConfig, SequenceError

__all__ = ["FileJournal", "WriterKind"]

WriterKind = Literal["thread", "process"]
"""Where the journal writes and fsyncs: a thread, or a process of its own."""

_log = logging.getLogger("cux.journal")

_LOCK_FILE = "LOCK"
_LOCK_WAIT_S = 30.0


@dataclass(slots=True)
class _Entry:
    """One `append` (or flush) waiting for the disk."""

    data: bytes
    first_seq: int
    rotate: bool
    sync: bool
    done: asyncio.Future[None]
    records: int = 0


class FileJournal(Journal):
    """The journal as segment and snapshot files in one data folder.

    Call `recover` once before anything else; then `append` from the event
    loop, `snapshot` now and then, and `close` at the end. Only one journal
    may have a folder open at a time (a lock file refuses a second).

    Args:
        folder: the data folder; ``journal/`` and ``snapshots/`` are made in it.
        config: the market configuration; a folder whose journal was written
            for another one is refused.
        fsync: when an append counts as durable. ``batch`` (the default): its
            group was written and fsynced. ``interval``: it was written to the
            OS, which is fsynced at most every ``fsync_interval_ms``; a power
            loss or OS crash (not a crash of cux itself) can lose the
            acknowledged commands of the last interval. ``none``: it was
            written to the OS, which flushes it when it likes (Linux: within
            about 30 s); a power loss can lose that much.
        fsync_interval_ms: for ``interval``, the least time between two fsyncs,
            in ms (default 5).
        segment_bytes: a segment that has reached this size, in bytes, is
            followed by a new one (default 64 MiB).
        keep_snapshots: how many snapshot files to keep, newest first
            (default 3; older ones are deleted).
        fsync_fd: the function that flushes a file descriptor to disk (default
            `os.fsync`); tests pass one that counts.
        fork_snapshots: take each snapshot's state in a forked child (default
            True, where the OS can fork), so the event loop does not stop for
            the copy; False takes it on the loop.
        writer: where the segments are written and fsynced: ``thread`` (the
            default), a thread of this process; ``process``, a process of its
            own that does not share this one's GIL (see
            `exchange.journal.writer_process`; it always fsyncs with
            `os.fsync`, so ``fsync_fd`` applies only to snapshots and
            recovery there; `recover` must then run on the main thread).
    """

    def __init__(
        self,
        folder: Path,
        config: MarketConfig,
        *,
        fsync: FsyncPolicy = "batch",
        fsync_interval_ms: int = 5,
        segment_bytes: int = 64 * 2**20,
        keep_snapshots: int = 3,
        fsync_fd: Callable[[int], None] = os.fsync,
        fork_snapshots: bool = True,
        writer: WriterKind = "thread",
    ) -> None:
        if fsync not in get_args(FsyncPolicy):
            raise ValueError(f"fsync must be batch, interval or none, not {fsync!r}")
        if writer not in get_args(WriterKind):
            raise ValueError(f"writer must be thread or process, not {writer!r}")
        if fsync_interval_ms < 1 or segment_bytes < 1 or keep_snapshots < 1:
            raise ValueError(
                "fsync_interval_ms, segment_bytes and keep_snapshots must be >= 1"
            )
        self.folder = Path(folder)
        self.config = config
        self.fsync = fsync
        self.keep_snapshots = keep_snapshots
        self._fsync_fd = fsync_fd
        self._fork = fork_snapshots and hasattr(os, "fork")
        self._writer = SegmentWriter(
            self.folder / JOURNAL_DIR,
            config,
            fsync,
            fsync_interval_ms / 1000,
            segment_bytes,
            fsync_fd,
        )
        self._writer_kind = writer
        self._io: ThreadedWriter | WriterProcess = ThreadedWriter(self._writer)
        self._snapshot_io = ThreadPoolExecutor(1, thread_name_prefix="cux-snapshot")
        self._lock_fd: int | None = None
        self._open = False
        self._closed = False
        self._failure: JournalError | None = None
        self._next_seq = 1
        # The last record written (and, under ``batch``, fsynced).
        self._written_seq = 0
        self._queue: list[_Entry] = []
        # The group the writer thread is writing, if any.
        self._writing: list[_Entry] | None = None
        self._sync_timer: asyncio.TimerHandle | None = None
        self._rotate = False
        self._snapshot_seq = 0
        self._snapshot_lock: asyncio.Lock | None = None
        self._snapshots: set[asyncio.Future[None]] = set()

    @property
    def written_seq(self) -> int:
        """The last record written (under ``batch``, also fsynced)."""
        return self._written_seq

    # -- start-up ---------------------------------------------------------------

    def recover(self) -> Engine:
        """The engine after the last complete record; cuts a torn tail first.

        Blocking: call it once, before serving. See `exchange.journal.recovery`.

        Raises:
            JournalError: the folder is in use by another journal, or this one
                was recovered already.
            JournalConfigMismatch: the journal was written for another config.
            JournalCorrupt: a record, a header or the sequence is damaged.
        """
        if self._open or self._closed:
            raise JournalError("recover() may be called once, before anything else")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            found = recover_folder(self.folder, self.config, self._fsync_fd)
        except BaseException:
            self._unlock()
            raise
        if found.last is not None:
            self._writer.open_tail(
                found.last.path, found.last.first_seq, found.last_empty
            )
        if self._writer_kind == "process":
            assert self._lock_fd is not None
            self._io = WriterProcess(self._writer, self._lock_fd)
            try:
                self._io.start()
            except BaseException:
                self._writer.close()
                self._unlock()
                raise
        engine = found.engine
        self._next_seq = engine.seq + 1
        self._written_seq = engine.seq
        self._snapshot_seq = found.snapshot_seq
        self._open = True
        _log.info(
            "journal %s open: snapshot at %d, %d records replayed, next record %d, "
            "fsync %s",
            self.folder,
            found.snapshot_seq,
            found.replayed,
            self._next_seq,
            self.fsync,
        )
        return engine

    def _lock(self) -> None:
        """Take the folder's lock and write this process's pid into it.

        A lock held for a server that is gone is waited for, up to
        `_LOCK_WAIT_S`: it is its journal writer process, which the kernel
        is killing (after the fsync it may be in, which a stalled disk can
        make last seconds). A lock held for a live process is refused at once.
        """
        path = self.folder / _LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(
                f"cannot open the lock file {path}: {exc.strerror}"
            ) from exc
        deadline: float | None = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                owner = _lock_owner(fd)
                now = time.monotonic()
                if deadline is None and owner is not None and not _alive(owner):
                    deadline = now + _LOCK_WAIT_S
                    _log.warning(
                        "journal %s: waiting for the journal writer of stopped "
                        "process %d to exit",
                        self.folder,
                        owner,
                    )
                if deadline is None:
                    os.close(fd)
                    raise JournalError(
                        f"{self.folder} is in use by another cux journal"
                        + (f" (process {owner})" if owner is not None else "")
                    ) from None
                if now >= deadline:
                    os.close(fd)
                    raise JournalError(
                        f"{self.folder} is still locked {_LOCK_WAIT_S:.0f} s "
                        f"after process {owner}, which locked it, stopped: "
                        f"another process holds {path} (`fuser {path}` names "
                        "it; a journal writer shows as `# cux journal writer`)"
                    ) from None
                time.sleep(0.01)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise JournalError(
                f"cannot write the lock file {path}: {exc.strerror}"
            ) from exc
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- appending --------------------------------------------------------------

    def append(self, records: Sequence[JournalRecord]) -> asyncio.Future[None]:
        """Queue ``records`` and return a future done when they are durable.

        Call it from the event loop. The records are encoded at once, so later
        changes to them are not journaled; appends reach the disk in call
        order, and those queued while an earlier group is being written share
        one write and one fsync. An empty append completes once everything
        appended before it is durable.

        Raises:
            SequenceError: the records do not continue the journal (the first
                must be the next sequence number, and each the one after).
            JournalError: the journal is not open (see `recover`), is closing,
                or a write failed earlier; or a record is over 1 MiB.
        """
        self._check_open()
        for i, record in enumerate(records):
            if record.seq != self._next_seq + i or record.seq.__class__ is not int:
                raise SequenceError(
                    f"the journal expects record {self._next_seq + i}, "
                    f"got {record.seq!r}"
                )
        data = encode_frames(records)
        loop = asyncio.get_running_loop()
        rotate = self._rotate and bool(records)
        if rotate:
            self._rotate = False
        entry = _Entry(
            data, self._next_seq, rotate, False, loop.create_future(), len(records)
        )
        self._next_seq += len(records)
        self._enqueue(entry)
        return entry.done

    def _check_open(self) -> None:
        if self._failure is not None:
            raise self._failure
        if not self._open:
            raise JournalError("the journal is not open: call recover() first")
        if self._closed:
            raise JournalError("the journal is closed")

    def _enqueue(self, entry: _Entry) -> None:
        if self._failure is not None:
            # After a failed write or fsync nothing more is written or synced
            # (a snapshot's flush included): the disk's state is unknown.
            entry.done.set_exception(self._failure)
            return
        self._queue.append(entry)
        if self._writing is None:
            self._write_next(asyncio.get_running_loop())

    def _write_next(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand the next group to the writer thread; `_written` answers."""
        group = self._writing = self._take_group()
        data = b"".join(e.data for e in group)
        sync = any(e.sync for e in group)
        first = group[0]
        self._io.write(loop, self._written, data, first.first_seq, first.rotate, sync)

    def _written(self, due: float | None, error: BaseException | None) -> None:
        """The writer thread's answer for the group it was given."""
        group = self._writing
        assert group is not None
        self._writing = None
        if error is not None:
            self._fail(error, group)
            return
        last = group[-1]
        self._written_seq = last.first_seq + last.records - 1
        for entry in group:
            if not entry.done.done():
                entry.done.set_result(None)
        loop = asyncio.get_running_loop()
        if due is not None and self.fsync == "interval":
            self._arm_sync_timer(loop, due)
        if self._queue:
            self._write_next(loop)

    def _take_group(self) -> list[_Entry]:
        """The queued entries up to (not including) the next that rotates."""
        queue = self._queue
        end = 1
        while end < len(queue) and not queue[end].rotate:
            end += 1
        group, self._queue = queue[:end], queue[end:]
        return group

    def _arm_sync_timer(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if self._sync_timer is None:
            delay = max(0.0, due - time.monotonic())
            self._sync_timer = loop.call_later(delay, self._timed_sync)

    def _timed_sync(self) -> None:
        self._sync_timer = None
        if self._failure is None and not self._closed:
            self._flush().add_done_callback(_retrieve)

    def _flush(self) -> asyncio.Future[None]:
        """A future done when everything appended so far is written and fsynced."""
        loop = asyncio.get_running_loop()
        entry = _Entry(b"", self._next_seq, False, True, loop.create_future())
        self._enqueue(entry)
        return entry.done

    def _fail(self, exc: BaseException, group: list[_Entry]) -> None:
        """A write or fsync failed: fail what waits, refuse every later append.

        After a failed fsync the file's state on disk is unknown, so the
        journal never retries; the server must stop, and recovery on restart
        decides what the disk holds.
        """
        failure = JournalError(f"writing the journal failed, it is closed: {exc}")
        failure.__cause__ = exc
        self._failure = failure
        _log.warning("journal %s failed: %s", self.folder, exc)
        for entry in group + self._queue:
            if not entry.done.done():
                entry.done.set_exception(failure)
        self._queue = []

    # -- snapshots and close ----------------------------------------------------

    def snapshot(self, engine: Engine) -> asyncio.Future[None]:
        """Take ``engine``'s state now; write it once the journal holds it.

        The state is taken before this returns, so it is consistent whatever
        the engine does next: in a forked child where the OS can fork, so the
        event loop does not wait for the copy (see `exchange.journal.forked`).
        It is written (in a thread, by the task this returns) only after every
        record up to its sequence number is fsynced, whatever the policy, and
        the next append starts a new segment. A snapshot at or before the last
        one is skipped. Call it from the event loop; awaiting the task is
        optional (`close` waits for it).

        Raises:
            JournalError: at once, if the journal is not open or the engine is
                ahead of the records appended; from the task, if taking or
                writing the snapshot failed.
            JournalConfigMismatch: the engine has another configuration.
        """
        self._check_open()
        if engine.config is not self.config and (
            engine.config.digest() != self.config.digest()
        ):
            raise JournalConfigMismatch(
                "the engine has another market configuration than the journal"
            )
        if engine.seq >= self._next_seq:
            raise JournalError(
                f"cannot snapshot the engine at record {engine.seq}: the journal "
                f"holds records up to {self._next_seq - 1}; append them first"
            )
        loop = asyncio.get_running_loop()
        if engine.seq <= self._snapshot_seq:
            skipped = loop.create_future()
            skipped.set_result(None)
            return skipped
        taken = EncodedSnapshot.start(engine, fork=self._fork)
        self._rotate = True
        task = loop.create_task(self._write_snapshot(taken))
        self._snapshots.add(task)
        task.add_done_callback(self._snapshots.discard)
        return task

    async def _write_snapshot(self, taken: EncodedSnapshot) -> None:
        loop = asyncio.get_running_loop()
        # Read the child's pipe at once, so that it never waits for the lock.
        encoded = loop.run_in_executor(self._snapshot_io, taken.result)
        if self._snapshot_lock is None:
            self._snapshot_lock = asyncio.Lock()
        async with self._snapshot_lock:
            try:
                data = await encoded
            except JournalError as exc:
                _log.warning("journal: taking a snapshot failed: %s", exc)
                raise
            if taken.seq <= self._snapshot_seq:
                return
            await self._flush()
            folder = self.folder / SNAPSHOT_DIR
            try:
                path = await loop.run_in_executor(
                    self._snapshot_io,
                    write_snapshot_bytes,
                    folder,
                    taken.seq,
                    data,
                    self._fsync_fd,
                )
                await loop.run_in_executor(
                    self._snapshot_io, prune_snapshots, folder, self.keep_snapshots
                )
            except OSError as exc:
                _log.warning("journal: writing a snapshot failed: %s", exc)
                raise JournalError(f"writing a snapshot failed: {exc}") from exc
            self._snapshot_seq = taken.seq
        _log.info("journal: snapshot %s written", path.name)

    async def close(self) -> None:
        """Write and fsync everything appended, then close the files.

        Appends are refused from the moment it is called. It waits for the
        snapshots being written. Closing twice does nothing.

        Raises:
            JournalError: the last writes failed (the files are closed anyway).
        """
        if self._closed:
            return
        self._closed = True
        if not self._open:
            self._shutdown()
            return
        loop = asyncio.get_running_loop()
        try:
            if self._failure is None:
                entry = _Entry(b"", self._next_seq, False, True, loop.create_future())
                self._enqueue(entry)
                await entry.done
        finally:
            if self._sync_timer is not None:
                self._sync_timer.cancel()
                self._sync_timer = None
            if self._snapshots:
                await asyncio.gather(*self._snapshots, return_exceptions=True)
            closed = loop.create_future()
            self._io.close(loop, _answer(closed))
            try:
                await closed
            finally:
                self._shutdown()
        if self._failure is None:
            _log.info("journal %s closed at record %d", self.folder, self._written_seq)
        else:
            _log.warning(
                "journal %s closed after a failure: it holds records up to %d; "
                "the %d after them were never written nor acknowledged",
                self.folder,
                self._written_seq,
                self._next_seq - 1 - self._written_seq,
            )

    def _shutdown(self) -> None:
        self._io.stop()
        self._snapshot_io.shutdown(wait=False)
        self._unlock()


def _lock_owner(fd: int) -> int | None:
    """The pid written into the lock file by its holder, if any."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True  # no /proc: it exists
    return stat.rsplit(b")", 1)[1].split()[0] != b"Z"


def _answer(future: asyncio.Future[Any]) -> Callable[[Any, BaseException | None], None]:
    """A writer's answer that completes ``future``."""

    def answer(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    return answer


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a background flush's failure as seen: `_fail` already logged it."""
    if not future.cancelled():
        future.exception()
