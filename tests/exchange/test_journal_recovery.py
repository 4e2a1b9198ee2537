"""Recovery: torn tails are cut, damage is refused, snapshots shorten the replay.

Each test writes a real journal, damages its files the way a crash or a bad disk
would, and checks what `FileJournal.recover` and `replay` make of it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from pathlib import Path

import pytest
from journal_flow import (
    CONFIG,
    Flow,
    engine_after,
    flip_byte,
    frame_offsets,
    segments,
    write_journal,
)

from exchange.journal import (
    FileJournal,
    JournalCorrupt,
    JournalError,
    read_records,
    replay,
)
from exchange.journal.forked import EncodedSnapshot
from exchange.journal.format import FRAME_BYTES
from exchange.journal.snapshots import encode_snapshot, list_snapshots


def recover(folder: Path, **options: object) -> tuple[int, str]:
    """Recover ``folder`` in a journal that is closed at once: (seq, hash)."""
    journal = FileJournal(folder, CONFIG, **options)  # type: ignore[arg-type]
    engine = journal.recover()
    asyncio.run(journal.close())
    return engine.seq, engine.state_hash()


def small_journal(folder: Path, seed: int = 1) -> Flow:
    """A one-segment journal of about 150 records, one append per 10."""
    flow = Flow(seed)
    batches = [flow.opening(), *(flow.take(10) for _ in range(14))]
    write_journal(folder, batches)
    return flow


# -- torn tails ---------------------------------------------------------------


@pytest.mark.parametrize(
    "cut",
    [1, 4, FRAME_BYTES - 1, FRAME_BYTES, FRAME_BYTES + 1, -1],
    ids=lambda cut: f"cut-{cut}",
)
def test_a_torn_last_record_is_cut_and_the_journal_recovers_to_the_record_before(
    tmp_path: Path, cut: int, caplog: pytest.LogCaptureFixture
) -> None:
    flow = small_journal(tmp_path)
    segment = segments(tmp_path)[-1]
    *_, last_start, end = frame_offsets(segment)
    torn_at = last_start + cut if cut > 0 else end + cut
    with segment.open("r+b") as file:
        file.truncate(torn_at)

    with caplog.at_level(logging.WARNING, logger="cux.journal"):
        seq, state_hash = recover(tmp_path)

    assert seq == len(flow.records) - 1
    assert state_hash == engine_after(flow.records[:-1]).state_hash()
    assert segment.stat().st_size == last_start
    kept = segment.with_name(f"{segment.name}.torn-at-{last_start}")
    assert kept.stat().st_size == torn_at - last_start
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert f"cut a torn tail of {torn_at - last_start} bytes" in caplog.text

    # The cut record and more append after it as if nothing had happened.
    write_journal(tmp_path, [flow.records[-1:], flow.take(20)])
    assert recover(tmp_path) == (flow.engine.seq, flow.engine.state_hash())
    assert replay(tmp_path).state_hash() == flow.engine.state_hash()


def test_a_torn_tail_that_cannot_be_kept_aside_is_left_whole_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = small_journal(tmp_path)
    segment = segments(tmp_path)[-1]
    *_, last_start, end = frame_offsets(segment)
    with segment.open("r+b") as file:
        file.truncate(end - 1)
    original = Path.write_bytes

    def disk_full(path: Path, data: bytes) -> int:
        original(path, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError, match="No space left"):
        recover(tmp_path)
    monkeypatch.undo()

    # Nothing was cut and no half copy is left; the next start cuts it.
    assert segment.stat().st_size == end - 1
    assert list(tmp_path.glob("journal/*.torn-at-*")) == []
    assert recover(tmp_path)[0] == len(flow.records) - 1
    kept = segment.with_name(f"{segment.name}.torn-at-{last_start}")
    assert kept.stat().st_size == end - 1 - last_start


def test_a_tail_of_zero_bytes_left_by_a_crash_is_cut_as_torn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flow = small_journal(tmp_path)
    segment = segments(tmp_path)[-1]
    size = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(bytes(4096))

    with caplog.at_level(logging.WARNING, logger="cux.journal"):
        assert recover(tmp_path) == (flow.engine.seq, flow.engine.state_hash())

    assert segment.stat().st_size == size
    assert "4096 zero bytes" in caplog.text


def test_a_segment_whose_header_was_torn_while_it_was_created_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flow = small_journal(tmp_path)
    torn = tmp_path / "journal" / f"{flow.engine.seq + 1:020d}.seg"
    torn.write_bytes(b"CUXJRN")

    with caplog.at_level(logging.WARNING, logger="cux.journal"):
        assert recover(tmp_path) == (flow.engine.seq, flow.engine.state_hash())

    assert not torn.exists()
    assert torn.with_name(f"{torn.name}.torn-at-0").read_bytes() == b"CUXJRN"
    write_journal(tmp_path, [flow.take(5)])
    assert replay(tmp_path).state_hash() == flow.engine.state_hash()


def test_replay_skips_a_torn_tail_without_changing_the_file(tmp_path: Path) -> None:
    flow = small_journal(tmp_path)
    segment = segments(tmp_path)[-1]
    with segment.open("r+b") as file:
        file.truncate(segment.stat().st_size - 3)
    data = segment.read_bytes()

    assert replay(tmp_path).state_hash() == engine_after(flow.records[:-1]).state_hash()
    assert segment.read_bytes() == data


# -- damage -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "at"),
    [("length", 0), ("length", 1), ("length", 3), ("crc", 2), ("payload", 20)],
    ids=lambda value: str(value),
)
def test_a_flipped_byte_in_a_middle_record_refuses_to_start_naming_file_and_offset(
    tmp_path: Path, where: str, at: int
) -> None:
    small_journal(tmp_path)
    segment = segments(tmp_path)[-1]
    offsets = frame_offsets(segment)
    frame = offsets[len(offsets) // 2]
    shift = {"length": 0, "crc": 4, "payload": FRAME_BYTES}[where]
    flip_byte(segment, frame + shift + at)
    damaged = segment.read_bytes()

    with pytest.raises(JournalCorrupt) as refused:
        recover(tmp_path)

    assert refused.value.path == segment
    assert refused.value.offset == frame
    assert f"{segment} at byte {frame}: " in str(refused.value)
    assert segment.read_bytes() == damaged  # nothing was cut
    with pytest.raises(JournalCorrupt, match=f"at byte {frame}:"):
        replay(tmp_path)
    # The folder stays closed to appends: the journal released its lock.
    with pytest.raises(JournalCorrupt):
        recover(tmp_path)


def test_a_bad_crc_in_the_last_complete_record_refuses_to_start(
    tmp_path: Path,
) -> None:
    small_journal(tmp_path)
    segment = segments(tmp_path)[-1]
    *_, last_start, end = frame_offsets(segment)
    flip_byte(segment, end - 1)

    with pytest.raises(JournalCorrupt, match="CRC does not match") as refused:
        recover(tmp_path)
    assert refused.value.offset == last_start


def test_damage_in_an_earlier_segment_refuses_to_start(tmp_path: Path) -> None:
    flow = Flow(seed=2)
    write_journal(
        tmp_path,
        [flow.opening(), *(flow.take(10) for _ in range(20))],
        segment_bytes=3000,
    )
    first, *_ = segments(tmp_path)
    offsets = frame_offsets(first)
    flip_byte(first, offsets[3] + FRAME_BYTES + 1)

    with pytest.raises(JournalCorrupt, match="CRC does not match") as refused:
        recover(tmp_path, segment_bytes=3000)
    assert refused.value.path == first
    assert refused.value.offset == offsets[3]


def test_a_missing_middle_segment_is_a_gap_that_refuses_to_start(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=3)
    write_journal(
        tmp_path,
        [flow.opening(), *(flow.take(10) for _ in range(20))],
        segment_bytes=3000,
    )
    files = segments(tmp_path)
    files[1].unlink()

    with pytest.raises(JournalCorrupt, match="missing") as refused:
        recover(tmp_path, segment_bytes=3000)
    assert refused.value.path == files[2]
    with pytest.raises(JournalCorrupt, match="missing"):
        list(read_records(tmp_path))


# -- snapshots ----------------------------------------------------------------


async def journal_with_snapshots(
    folder: Path, snapshots: int, *, fork_snapshots: bool = True
) -> tuple[Flow, list[int]]:
    """A journal with ``snapshots`` snapshots, each followed by 60 records."""
    flow = Flow(seed=4)
    journal = FileJournal(folder, CONFIG, fork_snapshots=fork_snapshots)
    journal.recover()
    await journal.append(flow.opening())
    taken = []
    for _ in range(snapshots):
        await journal.append(flow.take(60))
        await journal.snapshot(flow.engine)
        taken.append(flow.engine.seq)
    await journal.append(flow.take(60))
    await journal.close()
    return flow, taken


async def test_recovery_from_a_snapshot_equals_the_full_replay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flow, [taken] = await journal_with_snapshots(tmp_path, 1)

    journal = FileJournal(tmp_path, CONFIG)
    with caplog.at_level(logging.INFO, logger="cux.journal"):
        engine = journal.recover()
    await journal.close()

    assert engine.state_hash() == flow.engine.state_hash()
    assert replay(tmp_path).state_hash() == flow.engine.state_hash()
    assert f"snapshot at {taken}, 60 records replayed" in caplog.text
    assert [seq for seq, _ in list_snapshots(tmp_path / "snapshots")] == [taken]
    assert [int(p.stem) for p in segments(tmp_path)] == [1, taken + 1]


def test_a_snapshot_encoded_in_a_forked_child_equals_one_taken_on_the_spot() -> None:
    flow = Flow(seed=8)
    flow.opening()
    flow.take(200)
    engine = flow.engine

    forked = EncodedSnapshot.start(engine, fork=True).result()
    on_the_spot = EncodedSnapshot.start(engine, fork=False).result()

    assert forked == on_the_spot == encode_snapshot(engine.snapshot())


def test_a_child_that_fails_to_encode_the_snapshot_is_a_journal_error() -> None:
    class Broken:
        seq = 7

        def snapshot(self) -> None:
            raise RuntimeError("broken")

    taken = EncodedSnapshot.start(Broken(), fork=True)  # type: ignore[arg-type]

    with pytest.raises(JournalError, match="encoding the snapshot at 7 failed"):
        taken.result()


async def test_snapshots_taken_on_the_loop_recover_the_same_engine(
    tmp_path: Path,
) -> None:
    flow, [taken] = await journal_with_snapshots(tmp_path, 1, fork_snapshots=False)

    journal = FileJournal(tmp_path, CONFIG)
    engine = journal.recover()
    await journal.close()

    assert engine.state_hash() == flow.engine.state_hash()
    assert [seq for seq, _ in list_snapshots(tmp_path / "snapshots")] == [taken]


async def test_a_corrupt_newest_snapshot_falls_back_to_the_one_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flow, [older, newest] = await journal_with_snapshots(tmp_path, 2)
    snapshots = dict(list_snapshots(tmp_path / "snapshots"))
    flip_byte(snapshots[newest], 100)

    journal = FileJournal(tmp_path, CONFIG)
    with caplog.at_level(logging.INFO, logger="cux.journal"):
        engine = journal.recover()
    await journal.close()

    assert engine.state_hash() == flow.engine.state_hash()
    assert f"skipping snapshot {snapshots[newest].name}" in caplog.text
    assert "checksum does not match" in caplog.text
    assert f"snapshot at {older}, 120 records replayed" in caplog.text


async def test_with_every_snapshot_corrupt_recovery_replays_the_whole_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flow, _ = await journal_with_snapshots(tmp_path, 2)
    for _, path in list_snapshots(tmp_path / "snapshots"):
        with path.open("r+b") as file:
            file.truncate(10)

    journal = FileJournal(tmp_path, CONFIG)
    with caplog.at_level(logging.INFO, logger="cux.journal"):
        engine = journal.recover()
    await journal.close()

    assert engine.state_hash() == flow.engine.state_hash()
    assert f"snapshot at 0, {flow.engine.seq} records replayed" in caplog.text


async def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    flow = Flow(seed=5)
    journal = FileJournal(tmp_path, CONFIG, keep_snapshots=2)
    journal.recover()
    await journal.append(flow.opening())
    taken = []
    for _ in range(4):
        await journal.append(flow.take(10))
        await journal.snapshot(flow.engine)
        taken.append(flow.engine.seq)
    await journal.close()

    assert [seq for seq, _ in list_snapshots(tmp_path / "snapshots")] == taken[-2:]


async def test_a_snapshot_of_an_engine_ahead_of_the_journal_is_refused(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=6)
    journal = FileJournal(tmp_path, CONFIG)
    journal.recover()
    await journal.append(flow.opening())
    flow.take(1)  # applied, never appended

    with pytest.raises(JournalError, match="append them first"):
        journal.snapshot(flow.engine)
    await journal.close()
    assert list_snapshots(tmp_path / "snapshots") == []


async def test_a_journal_that_ends_before_its_snapshot_refuses_to_start(
    tmp_path: Path,
) -> None:
    _, [taken] = await journal_with_snapshots(tmp_path, 1)
    first, after = segments(tmp_path)
    after.unlink()
    with first.open("r+b") as file:
        file.truncate(frame_offsets(first)[taken - 10])

    journal = FileJournal(tmp_path, CONFIG)
    with pytest.raises(JournalCorrupt, match=f"the snapshot is at {taken}"):
        journal.recover()
