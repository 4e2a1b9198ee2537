"""`FileJournal` appends: round trips, group commit, order, fsync policies, misuse.

Every test journals real files in its own ``tmp_path`` and counts fsyncs through
the journal's ``fsync_fd`` seam.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from journal_flow import (
    CONFIG,
    OTHER_CONFIG,
    CountingFsync,
    Flow,
    segments,
)

from exchange.journal import (
    FileJournal,
    JournalConfigMismatch,
    JournalError,
    JournalRecord,
    read_records,
    replay,
)
from exchange.journal.format import read_header
from matching import SequenceError, Tick


async def recovered(folder: Path, **options: object) -> tuple[FileJournal, str]:
    """Open ``folder`` again; the journal and its recovered state hash."""
    journal = FileJournal(folder, CONFIG, **options)  # type: ignore[arg-type]
    return journal, journal.recover().state_hash()


async def test_appended_records_recover_to_the_state_hash_of_the_engine_that_made_them(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=1)
    journal = FileJournal(tmp_path, CONFIG)
    assert journal.recover().seq == 0

    await journal.append(flow.opening())
    for _ in range(20):
        await journal.append(flow.take(25))
    await journal.close()

    again, state_hash = await recovered(tmp_path)
    await again.close()
    assert state_hash == flow.engine.state_hash()
    assert replay(tmp_path).state_hash() == flow.engine.state_hash()
    assert list(read_records(tmp_path)) == flow.records


async def test_recovered_journal_takes_further_appends_after_its_last_record(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=2)
    opening = flow.opening()
    first = FileJournal(tmp_path, CONFIG)
    first.recover()
    await first.append(opening)
    await first.close()

    journal = FileJournal(tmp_path, CONFIG)
    engine = journal.recover()
    await journal.append(flow.take(50))
    await journal.close()

    assert engine.seq == len(opening)
    assert replay(tmp_path).state_hash() == flow.engine.state_hash()


async def test_concurrent_appends_are_group_committed_with_fewer_fsyncs_than_appends(
    tmp_path: Path,
) -> None:
    fsyncs = CountingFsync(delay_s=0.002)
    journal = FileJournal(tmp_path, CONFIG, fsync_fd=fsyncs)
    journal.recover()
    flow = Flow(seed=3)
    await journal.append(flow.opening())
    before = fsyncs.calls

    async def client(appends: int) -> None:
        for _ in range(appends):
            await journal.append([flow.step()])

    await asyncio.gather(*(client(20) for _ in range(10)))
    await journal.close()

    assert fsyncs.calls - before < 200 / 4
    assert list(read_records(tmp_path)) == flow.records


async def test_pipelined_appends_reach_the_disk_and_complete_in_call_order(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path, CONFIG, fsync_fd=CountingFsync(delay_s=0.001))
    journal.recover()
    flow = Flow(seed=4)
    completed: list[int] = []
    pending = []

    def on_done(last_seq: int) -> Callable[[object], None]:
        return lambda _: completed.append(last_seq)

    for batch in [flow.opening(), *(flow.take(n) for n in [1, 5, 1, 30, 2] * 20)]:
        done = journal.append(batch)
        done.add_done_callback(on_done(batch[-1].seq))
        pending.append(done)
        if len(pending) % 7 == 0:
            await asyncio.sleep(0)  # let some groups start while others queue
    await asyncio.gather(*pending)
    await journal.close()

    assert completed == sorted(completed)
    assert list(read_records(tmp_path)) == flow.records


async def test_concurrent_producers_keep_the_sequencers_order(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path, CONFIG, fsync_fd=CountingFsync(delay_s=0.001))
    journal.recover()
    flow = Flow(seed=5)
    await journal.append(flow.opening())

    async def producer(rounds: int) -> None:
        for i in range(rounds):
            # Stamping and appending happen in one step, as in the sequencer.
            await journal.append(flow.take(1 + i % 3))
            await asyncio.sleep(0)

    await asyncio.gather(*(producer(15) for _ in range(8)))
    await journal.close()

    records = list(read_records(tmp_path))
    assert [r.seq for r in records] == list(range(1, len(flow.records) + 1))
    assert records == flow.records


async def test_under_batch_an_append_completes_only_after_its_bytes_are_fsynced(
    tmp_path: Path,
) -> None:
    fsyncs = CountingFsync()
    journal = FileJournal(tmp_path, CONFIG, fsync_fd=fsyncs)
    journal.recover()
    flow = Flow(seed=6)
    await journal.append(flow.opening())
    segment = segments(tmp_path)[0]

    for _ in range(10):
        await journal.append(flow.take(3))
        assert fsyncs.synced_size(segment) == segment.stat().st_size
    await journal.close()


async def test_under_none_appends_fsync_only_segments_left_behind_until_close(
    tmp_path: Path,
) -> None:
    fsyncs = CountingFsync()
    journal = FileJournal(
        tmp_path, CONFIG, fsync="none", segment_bytes=3000, fsync_fd=fsyncs
    )
    journal.recover()
    flow = Flow(seed=7)
    start = fsyncs.calls  # recovery made the folders durable
    await journal.append(flow.opening())
    for _ in range(20):
        await journal.append(flow.take(5))
    files = segments(tmp_path)
    assert len(files) > 2
    assert fsyncs.calls - start == len(files) - 1
    assert fsyncs.synced_size(files[-1]) == 0

    await journal.close()
    for segment in files:
        assert fsyncs.synced_size(segment) == segment.stat().st_size


async def test_under_interval_appends_complete_at_once_and_an_fsync_follows_soon(
    tmp_path: Path,
) -> None:
    fsyncs = CountingFsync()
    journal = FileJournal(
        tmp_path, CONFIG, fsync="interval", fsync_interval_ms=50, fsync_fd=fsyncs
    )
    journal.recover()
    flow = Flow(seed=8)
    await journal.append(flow.opening())
    segment = segments(tmp_path)[0]
    start = fsyncs.calls
    for _ in range(100):
        await journal.append(flow.take(1))
    burst = fsyncs.calls - start

    await asyncio.sleep(0.3)
    assert burst < 20
    assert fsyncs.synced_size(segment) == segment.stat().st_size
    await journal.close()


async def test_a_slow_disk_does_not_block_the_event_loop(tmp_path: Path) -> None:
    fsyncs = CountingFsync(delay_s=0.2)
    journal = FileJournal(tmp_path, CONFIG, fsync_fd=fsyncs)
    journal.recover()  # start-up may block: it runs before serving
    fsyncs.threads.clear()
    flow = Flow(seed=9)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    running = asyncio.create_task(ticker())
    await journal.append(flow.opening())
    running.cancel()
    await journal.close()

    assert ticks >= 10
    assert "MainThread" not in fsyncs.threads


async def test_a_full_segment_is_followed_by_one_named_by_its_first_record(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path, CONFIG, segment_bytes=2000)
    journal.recover()
    flow = Flow(seed=10)
    await journal.append(flow.opening())
    for _ in range(30):
        await journal.append(flow.take(10))
    await journal.close()

    files = segments(tmp_path)
    assert len(files) > 3
    firsts = [int(path.stem) for path in files]
    for path, first in zip(files, firsts, strict=True):
        header, _ = read_header(path, path.read_bytes(), last=False)
        assert header.first_seq == first
        assert header.config == CONFIG
    for path in files[:-1]:
        assert path.stat().st_size >= 2000
    by_seq = {r.seq: r for r in read_records(tmp_path)}
    assert all(first in by_seq for first in firsts)
    _, state_hash = await recovered(tmp_path, segment_bytes=2000)
    assert state_hash == flow.engine.state_hash()


async def test_an_append_that_skips_a_sequence_number_is_refused_and_writes_nothing(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path, CONFIG)
    journal.recover()
    flow = Flow(seed=11)
    opening = flow.opening()
    await journal.append(opening)

    skipping = JournalRecord(len(opening) + 2, flow.now, Tick())
    with pytest.raises(SequenceError, match=f"expects record {len(opening) + 1}"):
        journal.append([skipping])
    await journal.append(flow.take(1))
    await journal.close()

    assert list(read_records(tmp_path)) == flow.records


async def test_a_folder_written_for_another_market_configuration_is_refused(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=12)
    journal = FileJournal(tmp_path, CONFIG)
    journal.recover()
    await journal.append(flow.opening())
    await journal.close()
    before = {p: p.read_bytes() for p in segments(tmp_path)}

    other = FileJournal(tmp_path, OTHER_CONFIG)
    with pytest.raises(JournalConfigMismatch, match="another market configuration"):
        other.recover()

    assert {p: p.read_bytes() for p in segments(tmp_path)} == before
    again, state_hash = await recovered(tmp_path)  # the lock was released
    await again.close()
    assert state_hash == flow.engine.state_hash()


async def test_a_folder_open_in_one_journal_is_refused_to_a_second(
    tmp_path: Path,
) -> None:
    first = FileJournal(tmp_path, CONFIG)
    first.recover()

    with pytest.raises(JournalError, match="in use by another cux journal"):
        FileJournal(tmp_path, CONFIG).recover()
    await first.close()
    second = FileJournal(tmp_path, CONFIG)
    second.recover()
    await second.close()


async def test_appending_before_recover_or_after_close_is_refused(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path, CONFIG)
    flow = Flow(seed=13)
    with pytest.raises(JournalError, match="call recover"):
        journal.append(flow.opening())

    journal.recover()
    await journal.close()
    await journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.append([])


async def test_a_failed_fsync_fails_the_pending_append_and_every_later_one(
    tmp_path: Path,
) -> None:
    fsyncs = CountingFsync()
    journal = FileJournal(tmp_path, CONFIG, fsync_fd=fsyncs)
    journal.recover()
    fsyncs.fail_at = fsyncs.calls + 1
    flow = Flow(seed=14)

    with pytest.raises(JournalError, match="writing the journal failed"):
        await journal.append(flow.opening())
    with pytest.raises(JournalError, match="writing the journal failed"):
        journal.append(flow.take(1))
    await journal.close()
