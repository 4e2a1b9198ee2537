"""The sequencer with a journal of the test's own, on the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from exchange.marketdata import MarketData
from exchange.sequencer import Sequencer, Work
from matching import Command, Engine, MarketConfig, OpenAccount, ResourceClass

CONFIG = MarketConfig(classes=[ResourceClass("cpu", lot_cu=100, tick=1)])


class SlowSnapshots:
    """A journal whose appends are durable at once and whose snapshots are
    written only once `release` is set.

    Attributes:
        taken: the sequence number of each snapshot asked for.
    """

    def __init__(self) -> None:
        self.taken: list[int] = []
        self.release = asyncio.Event()
        self.writing: list[asyncio.Task[Any]] = []

    def append(self, records: Sequence[Any]) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def snapshot(self, engine: Engine) -> asyncio.Task[Any]:
        self.taken.append(engine.seq)
        task = asyncio.ensure_future(self.release.wait())
        self.writing.append(task)
        return task


async def apply(sequencer: Sequencer, command: Command) -> None:
    done = asyncio.get_running_loop().create_future()
    sequencer.submit(Work(command=command, reply=done.set_result))
    await done


async def test_a_snapshot_being_written_holds_the_next_back_until_it_is_done() -> None:
    engine = Engine(CONFIG)
    journal = SlowSnapshots()
    sequencer = Sequencer(
        engine, journal, MarketData(engine), lambda _: None, snapshot_every=2
    )
    sequencer.start()
    try:
        for name in "abcdef":
            await apply(sequencer, OpenAccount(name))
        assert journal.taken == [2]

        # The one due since record 4 is taken as soon as the first is written.
        journal.release.set()
        await asyncio.gather(*journal.writing)
        await asyncio.sleep(0)
        assert journal.taken == [2, 6]
    finally:
        journal.release.set()
        await sequencer.stop()


class HeldAppends:
    """A journal whose appends are durable only when the test says so, in
    any order."""

    def __init__(self) -> None:
        self.appends: list[asyncio.Future[None]] = []

    def append(self, records: Sequence[Any]) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        self.appends.append(done)
        return done

    async def snapshot(self, engine: Engine) -> None:
        pass


async def test_replies_come_in_engine_order_when_a_later_batch_is_durable_first() -> (
    None
):
    engine = Engine(CONFIG)
    journal = HeldAppends()
    sequencer = Sequencer(engine, journal, MarketData(engine), lambda _: None)
    sequencer.start()
    replies: list[str] = []

    def replier(name: str) -> Callable[[Any], None]:
        return lambda _: replies.append(name)

    for name in "ab":
        sequencer.submit(Work(command=OpenAccount(name), reply=replier(name)))
        await asyncio.sleep(0)
    sequencer.submit(Work(read=lambda e: e.seq, reply=replier("read")))
    await asyncio.sleep(0)
    assert len(journal.appends) == 2

    journal.appends[1].set_result(None)
    await asyncio.sleep(0)
    assert replies == []

    journal.appends[0].set_result(None)
    await asyncio.sleep(0)
    assert replies == ["a", "b", "read"]
    await sequencer.stop()


async def test_a_journal_failure_stops_the_replies_and_stop_still_returns() -> None:
    engine = Engine(CONFIG)
    journal = HeldAppends()
    sequencer = Sequencer(engine, journal, MarketData(engine), lambda _: None)
    sequencer.start()
    replies: list[Any] = []
    for name in "ab":
        sequencer.submit(Work(command=OpenAccount(name), reply=replies.append))
        await asyncio.sleep(0)
    failure = OSError("disk full")

    journal.appends[0].set_exception(failure)
    journal.appends[1].set_result(None)
    await asyncio.wait_for(sequencer.stop(), 5)

    assert replies == []
    assert sequencer.failed is failure


async def test_a_stop_takes_a_last_snapshot_only_if_something_came_after_the_last() -> (
    None
):
    engine = Engine(CONFIG)
    journal = SlowSnapshots()
    journal.release.set()
    sequencer = Sequencer(
        engine, journal, MarketData(engine), lambda _: None, snapshot_every=2
    )
    sequencer.start()
    for name in "abc":
        await apply(sequencer, OpenAccount(name))
    await sequencer.stop()
    assert journal.taken == [2, 3]

    quiet = Sequencer(
        engine, journal, MarketData(engine), lambda _: None, snapshot_every=2
    )
    quiet.start()
    await quiet.stop()
    assert journal.taken == [2, 3]  # nothing applied since: no snapshot


async def test_a_last_snapshot_that_never_ends_does_not_hold_the_stop_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("exchange.sequencer.LAST_SNAPSHOT_SECONDS", 0.05)
    engine = Engine(CONFIG)
    journal = SlowSnapshots()  # never released
    sequencer = Sequencer(engine, journal, MarketData(engine), lambda _: None)
    sequencer.start()
    await apply(sequencer, OpenAccount("a"))
    await asyncio.wait_for(sequencer.stop(), 5)
    assert journal.taken == [1]


async def test_work_submitted_after_stop_is_not_applied() -> None:
    engine = Engine(CONFIG)
    journal = SlowSnapshots()
    sequencer = Sequencer(engine, journal, MarketData(engine), lambda _: None)
    sequencer.start()
    await apply(sequencer, OpenAccount("a"))
    journal.release.set()  # the stop's last snapshot is written at once
    await sequencer.stop()

    sequencer.submit(Work(command=OpenAccount("b")))
    await asyncio.sleep(0)
    assert engine.seq == 1
