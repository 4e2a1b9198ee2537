"""The sequencer: the one task that feeds the engine, in order.

Everything that touches the engine goes through `Sequencer`: commands (stamped
here with the next sequence number and a timestamp, then applied and journaled)
and reads (a book snapshot, a balance, an order list), which see the engine
exactly between two commands. Work is taken in batches: the batch's commands
are applied, their journal records appended in one write (group commit), and
the next batch is applied while the disk works. Replies and market data are
delivered strictly in engine order, and only once the journal is durable
through the commands they follow: a client never hears of anything that a crash
could undo.

Both run as plain callbacks of the event loop, not tasks: the first `submit`
of a turn schedules one batch for the end of what the loop already has ready
(so the requests read in the same turn share it), and a batch's durability
delivers every batch that is then complete, oldest first. At a few thousand
orders a second batches are small, and a task's wake-up for each would cost
more than applying the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exchange.journal.format import JournalRecord
from matching import Command, Engine, Event
from matching.commands import Tick

__all__ = ["Sequencer", "Work"]

log = logging.getLogger("cux.sequencer")

LAST_SNAPSHOT_SECONDS = 30
"""How long a stop waits for its last snapshot."""

Reply = Callable[[Any], None]
Expand = Callable[[Engine], Sequence[Command]]


@dataclass(slots=True)
class Work:
    """One item of the sequencer's inbox: exactly one of the three forms.

    Attributes:
        command: a command to apply; ``reply`` gets its events.
        expand: a function of the engine giving the commands to apply, for
            requests such as cancel-all whose commands depend on the state;
            ``reply`` gets all their events together.
        read: a function of the engine; ``reply`` gets its result.
        reply: called on the event loop, in engine order, after durability;
            None for work nobody waits for.
        applied: called with the events as soon as the commands are applied,
            before they are durable: for work that may start early (sending
            a job's shards to nodes), never for answering a client.
    """

    command: Command | None = None
    expand: Expand | None = None
    read: Callable[[Engine], Any] | None = None
    reply: Reply | None = None
    applied: Reply | None = None


@dataclass(slots=True)
class _Batch:
    durable: asyncio.Future[None] | None
    outputs: list[tuple[Work, Any, list[Any]]] = field(default_factory=list)


class Sequencer:
    """Feeds one engine from an inbox, journals, and delivers results in order.

    Args:
        engine: the engine, already recovered from the journal.
        journal: where every applied command is appended (see
            `exchange.journal`).
        marketdata: turns each command's events into publications.
        publish: delivers a batch of publications to the subscribers.
        clock: ns since the epoch; the sequencer never lets it go backwards.
        max_batch: the most inbox items applied before journaling.
        snapshot_every: commands between two snapshots; one that comes due
            while the last is still being written is taken once it is written.
        on_commands: called with each applied command and its events, for
            metrics.
    """

    def __init__(
        self,
        engine: Engine,
        journal: Any,
        marketdata: Any,
        publish: Callable[[list[Any]], None],
        *,
        clock: Callable[[], int] = time.time_ns,
        max_batch: int = 2048,
        snapshot_every: int = 100_000,
        on_commands: Callable[[Command, list[Event]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.marketdata = marketdata
        self.publish = publish
        self.clock = clock
        self.max_batch = max_batch
        self.snapshot_every = snapshot_every
        self.on_commands = on_commands
        self.failed: BaseException | None = None
        self._inbox: deque[Work] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        # True while a batch is scheduled with the loop.
        self._scheduled = False
        # Batches applied but not delivered yet, oldest first.
        self._pending: deque[_Batch] = deque()
        self._since_snapshot = 0
        self._snapshots: set[asyncio.Future[None]] = set()
        self._stopping = False
        self._applying = True
        self._drained: asyncio.Future[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    # -- the inbox --------------------------------------------------------------

    def submit(self, work: Work) -> None:
        """Queue ``work``; its reply comes in engine order."""
        self._inbox.append(work)
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._run)

    @property
    def backlog(self) -> int:
        return len(self._inbox)

    # -- running ----------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ticker = asyncio.create_task(self._tick_loop(), name="cux-ticker")
        if self._inbox and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    async def stop(self) -> None:
        """Apply what is queued, wait until it is durable and delivered, take
        a last snapshot if anything was applied since the latest, stop."""
        self._stopping = True
        if self._ticker is not None:
            self._ticker.cancel()
        self._drained = asyncio.get_running_loop().create_future()
        self._check_drained()
        await self._drained
        if self._snapshots:
            await asyncio.gather(*self._snapshots, return_exceptions=True)
        if self._since_snapshot and self.failed is None:
            # The next start reads this snapshot, not the records since the
            # last one; and the snapshot's state hash is the server's own.
            # Bounded: the journal is whole without it.
            try:
                await asyncio.wait_for(
                    self.journal.snapshot(self.engine), LAST_SNAPSHOT_SECONDS
                )
            except TimeoutError:
                log.warning(
                    "the last snapshot was not written within %d s: the next "
                    "start replays the records since the one before",
                    LAST_SNAPSHOT_SECONDS,
                )
            except Exception:
                log.exception("the last snapshot could not be written")

    def _run(self) -> None:
        """Apply one batch; schedule the next if more work waits."""
        self._scheduled = False
        if not self._applying:
            return
        try:
            if self._inbox:
                self._pending.append(self._apply_batch())
                self._maybe_snapshot()
                self._deliver()
        except BaseException as exc:  # a bug or a journal failure: stop serving
            self.failed = exc
            self._applying = False
            log.exception("the sequencer stopped")
            self._check_drained()
            if not isinstance(exc, Exception):
                raise
            return
        if self._inbox:
            # Let the deliveries and the connections run between batches.
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._run)
        else:
            self._check_drained()

    def _check_drained(self) -> None:
        """Finish `stop` once nothing is left to apply or deliver."""
        drained = self._drained
        if drained is None or drained.done():
            return
        if (not self._inbox or not self._applying) and not self._pending:
            # Work submitted from now on (cancels on disconnect while the
            # connections close) is not applied, as the journal is closing.
            self._applying = False
            drained.set_result(None)

    def _apply_batch(self) -> _Batch:
        engine = self.engine
        marketdata = self.marketdata
        records: list[Any] = []
        outputs: list[tuple[Work, Any, list[Any]]] = []
        inbox = self._inbox
        for _ in range(min(len(inbox), self.max_batch)):
            work = inbox.popleft()
            if work.read is not None:
                outputs.append((work, work.read(engine), []))
                continue
            commands = (
                [work.command]
                if work.command is not None
                else list(work.expand(engine))  # type: ignore[misc]
            )
            events: list[Event] = []
            publications: list[Any] = []
            for command in commands:
                seq = engine.seq + 1
                ts = max(self.clock(), engine.now)
                applied = engine.apply(seq, ts, command)
                records.append(self._record(seq, ts, command))
                events.extend(applied)
                publications.extend(marketdata.apply(applied, ts))
                if self.on_commands is not None:
                    self.on_commands(command, applied)
            self._since_snapshot += len(commands)
            outputs.append((work, events, publications))
            if work.applied is not None:
                try:
                    work.applied(events)
                except Exception:
                    log.exception("an applied hook failed")
        if not records:
            return _Batch(None, outputs)
        durable = asyncio.ensure_future(self.journal.append(records))
        durable.add_done_callback(self._durable)
        return _Batch(durable, outputs)

    def _record(self, seq: int, ts: int, command: Command) -> Any:
        return JournalRecord(seq, ts, command)

    def _maybe_snapshot(self) -> None:
        # One snapshot at a time: while the disk is still writing one, the
        # next waits for it, rather than queueing copies of the whole state.
        if self._since_snapshot < self.snapshot_every or self._snapshots:
            return
        self._since_snapshot = 0
        task = asyncio.ensure_future(self.journal.snapshot(self.engine))
        self._snapshots.add(task)
        task.add_done_callback(self._snapshot_done)

    def _snapshot_done(self, task: asyncio.Future[None]) -> None:
        """Take the snapshot that came due while ``task`` was being written."""
        self._snapshots.discard(task)
        if not self._stopping:
            self._maybe_snapshot()

    def _durable(self, _: asyncio.Future[None]) -> None:
        self._deliver()
        self._check_drained()

    def _deliver(self) -> None:
        """Deliver the batches whose records are durable, oldest first, up to
        the first that is not."""
        pending = self._pending
        while pending:
            batch = pending[0]
            durable = batch.durable
            if durable is not None:
                if not durable.done():
                    return
                # A cancelled write is a failed one: `exception()` would raise.
                error = (
                    asyncio.CancelledError("the journal write was cancelled")
                    if durable.cancelled()
                    else durable.exception()
                )
                if error is not None:
                    self._journal_failed(error)
                    return
            pending.popleft()
            for work, result, publications in batch.outputs:
                if work.reply is not None:
                    try:
                        work.reply(result)
                    except Exception:
                        log.exception("a reply failed")
                if publications:
                    self.publish(publications)

    def _journal_failed(self, error: BaseException) -> None:
        """Nothing more is delivered, nor applied: the server must stop."""
        if self.failed is None:
            self.failed = error
            log.critical("the journal failed; nothing more is acknowledged")
        self._applying = False
        for batch in self._pending:
            if batch.durable is not None and batch.durable.done():
                batch.durable.exception()  # seen: this is its report
        self._pending.clear()

    async def _tick_loop(self) -> None:
        """Send a `Tick` when a timer of the engine is due (at least once a
        second), so expiries, batch auctions and futures happen on time."""
        while True:
            due = self.engine.next_timer()
            now = self.clock()
            speed = getattr(self.clock, "speed", 1.0)
            wait = min(max(due - now, 0) / 1e9 / speed, 1.0)
            await asyncio.sleep(max(wait, 0.001))
            if self.engine.next_timer() <= self.clock() and not self._inbox:
                self.submit(Work(command=Tick()))
