"""The journal's writer in a process of its own (``writer="process"``).

The same segments as the writer thread, byte for byte; the child holds the
journal's lock and dies with its server; a child that fails or is killed fails
the appends that wait and every later one, and never loses an acknowledged one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from journal_flow import CONFIG, Flow, segments

from exchange.journal import FileJournal, JournalError, read_records, replay
from exchange.journal.file import WriterKind
from exchange.journal.format import segment_name
from exchange.journal.writer_process import WriterProcess

HERE = Path(__file__).resolve().parent


def child_pid(journal: FileJournal) -> int:
    """The pid of ``journal``'s writer process."""
    io = journal._io
    assert isinstance(io, WriterProcess)
    assert io._process is not None
    return io._process.pid


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.01)
    return False


async def write_flow(folder: Path, writer: WriterKind, seed: int) -> Flow:
    """Journal a flow with rotations, pipelined appends and one snapshot."""
    flow = Flow(seed=seed)
    journal = FileJournal(
        folder, CONFIG, writer=writer, segment_bytes=3000, fsync="none"
    )
    journal.recover()
    await journal.append(flow.opening())
    for _ in range(10):
        await journal.append(flow.take(7))
    await journal.snapshot(flow.engine)
    pending = [journal.append(flow.take(5)) for _ in range(20)]
    await asyncio.gather(*pending)
    await journal.close()
    return flow


async def test_the_writer_process_writes_the_same_segments_as_the_writer_thread(
    tmp_path: Path,
) -> None:
    threaded = await write_flow(tmp_path / "thread", "thread", seed=31)
    forked = await write_flow(tmp_path / "process", "process", seed=31)

    names = [path.name for path in segments(tmp_path / "thread")]
    assert len(names) > 3
    assert names == [path.name for path in segments(tmp_path / "process")]
    for name in names:
        a = (tmp_path / "thread" / "journal" / name).read_bytes()
        b = (tmp_path / "process" / "journal" / name).read_bytes()
        assert a == b, name
    assert forked.engine.state_hash() == threaded.engine.state_hash()
    assert replay(tmp_path / "process").state_hash() == forked.engine.state_hash()


async def test_a_recovered_journal_continues_its_last_segment_in_the_writer_process(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=32)
    first = FileJournal(tmp_path, CONFIG, writer="process")
    first.recover()
    await first.append(flow.opening())
    await first.close()

    again = FileJournal(tmp_path, CONFIG, writer="process")
    assert again.recover().seq == len(flow.records)
    await again.append(flow.take(40))
    await again.close()

    assert len(segments(tmp_path)) == 1
    assert list(read_records(tmp_path)) == flow.records
    assert replay(tmp_path).state_hash() == flow.engine.state_hash()


async def test_a_killed_writer_process_fails_the_waiting_append_and_every_later_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flow = Flow(seed=33)
    journal = FileJournal(tmp_path, CONFIG, writer="process")
    journal.recover()
    await journal.append(flow.opening())
    acknowledged = list(flow.records)
    os.kill(child_pid(journal), signal.SIGKILL)
    assert wait_gone(child_pid(journal))

    with pytest.raises(JournalError, match=r"writing the journal failed.*signal 9"):
        await journal.append(flow.take(3))
    with pytest.raises(JournalError, match="writing the journal failed"):
        journal.append(flow.take(1))
    await journal.close()  # the child is gone: its files are closed already

    assert list(read_records(tmp_path)) == acknowledged
    assert journal.written_seq == len(acknowledged)
    assert (
        f"closed after a failure: it holds records up to {len(acknowledged)}; "
        "the 3 after them were never written nor acknowledged"
    ) in caplog.text


async def test_an_os_error_in_the_writer_process_reaches_the_append_with_its_errno(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=34)
    journal = FileJournal(tmp_path, CONFIG, writer="process", segment_bytes=1)
    journal.recover()
    opening = flow.opening()
    await journal.append(opening)
    # The next group starts a segment (the last is over 1 byte); its name is
    # taken, so the child's exclusive create fails.
    taken = tmp_path / "journal" / segment_name(len(opening) + 1)
    taken.write_bytes(b"")

    with pytest.raises(JournalError, match="File exists") as caught:
        await journal.append(flow.take(1))
    assert isinstance(caught.value.__cause__, FileExistsError)
    await journal.close()


async def test_the_writer_process_ignores_sigint_and_sigterm_meant_for_its_server(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=35)
    journal = FileJournal(tmp_path, CONFIG, writer="process")
    journal.recover()
    await journal.append(flow.opening())  # the child has started
    pid = child_pid(journal)
    assert os.getpgid(pid) != os.getpgid(0)  # a Ctrl-C is not sent to it
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    await asyncio.sleep(0.05)

    await journal.append(flow.take(5))
    await journal.close()
    assert wait_gone(pid)
    assert list(read_records(tmp_path)) == flow.records


async def test_a_second_journal_is_refused_while_the_writer_process_holds_the_lock(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path, CONFIG, writer="process")
    journal.recover()
    started = time.monotonic()
    with pytest.raises(JournalError, match="in use by another cux journal"):
        FileJournal(tmp_path, CONFIG).recover()
    assert time.monotonic() - started < 1  # its holder lives: refused at once
    await journal.close()
    again = FileJournal(tmp_path, CONFIG)
    again.recover()
    await again.close()


SERVER = """
import asyncio, os, sys, time
sys.path.insert(0, {here!r})
from pathlib import Path
from journal_flow import CONFIG, Flow
from exchange.journal import FileJournal

async def main():
    flow = Flow(seed=36)
    journal = FileJournal(Path({folder!r}), CONFIG, writer="process")
    journal.recover()
    await journal.append(flow.opening())
    # A forked copy keeps the writer's request pipe open, so the writer
    # never reads its end: only the kernel's SIGKILL can stop it.
    keeper = os.fork()
    if keeper == 0:
        time.sleep(60)
        os._exit(0)
    print(journal._io._process.pid, keeper, len(flow.records), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_the_writer_process_dies_with_a_killed_server_and_frees_the_journal(
    tmp_path: Path,
) -> None:
    script = SERVER.format(here=str(HERE), folder=str(tmp_path))
    server = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        pid, keeper, acknowledged = (int(word) for word in line)
        try:
            assert alive(pid)
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            assert wait_gone(pid, timeout_s=2.0)
        finally:
            os.kill(keeper, signal.SIGKILL)
    finally:
        server.kill()
        server.wait()

    async def reopen() -> int:
        journal = FileJournal(tmp_path, CONFIG, writer="process")
        seq = journal.recover().seq
        await journal.close()
        return seq

    assert asyncio.run(reopen()) == acknowledged


async def test_a_writer_process_that_fails_to_start_fails_the_first_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "exchange.journal.writer_process._CHILD_MAIN", "import sys; sys.exit(3)"
    )
    flow = Flow(seed=37)
    journal = FileJournal(tmp_path, CONFIG, writer="process")
    journal.recover()

    with pytest.raises(JournalError, match=r"writer process exited \(exit status 3"):
        await journal.append(flow.opening())
    await journal.close()
    assert list(read_records(tmp_path)) == []


async def test_the_interval_policy_arms_its_fsync_from_the_writer_processes_answer(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=38)
    journal = FileJournal(
        tmp_path, CONFIG, writer="process", fsync="interval", fsync_interval_ms=1000
    )
    journal.recover()
    await journal.append(flow.opening())
    await journal.append(flow.take(3))  # within 1 s of the last fsync
    assert journal._sync_timer is not None  # the child said when one is due
    await asyncio.sleep(1.5)
    assert journal._sync_timer is None  # the timed fsync was sent and answered
    await journal.close()
    assert list(read_records(tmp_path)) == flow.records


async def test_the_writer_process_imports_cux_from_the_servers_path_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "exchange").mkdir(parents=True)
    (elsewhere / "exchange" / "__init__.py").write_text("raise SystemExit(7)\n")
    monkeypatch.chdir(elsewhere)
    flow = Flow(seed=39)
    journal = FileJournal(tmp_path / "data", CONFIG, writer="process")
    journal.recover()
    await journal.append(flow.opening())
    await journal.close()
    assert list(read_records(tmp_path / "data")) == flow.records


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
owner = str(os.getpid()) if sys.argv[2] == "self" else sys.argv[2]
os.pwrite(fd, (owner + "\\n").encode(), 0)
print("locked", flush=True)
time.sleep(float(sys.argv[3]))
"""


def hold_lock(folder: Path, owner: str, seconds: float) -> subprocess.Popen[str]:
    """A process holding ``folder``'s journal lock for ``seconds``, with
    ``owner`` written in it as the holder's pid."""
    folder.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder / "LOCK"), owner, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    return holder


async def test_a_lock_left_by_a_stopped_servers_writer_is_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    holder = hold_lock(tmp_path, gone.stdout.strip(), seconds=0.5)
    try:
        journal = FileJournal(tmp_path, CONFIG)
        journal.recover()  # waits until the holder exits
        assert holder.poll() is not None
        await journal.close()
    finally:
        holder.kill()
        holder.wait()
    assert "waiting for the journal writer of stopped process" in caplog.text


async def test_a_lock_held_for_a_live_process_is_refused_at_once(
    tmp_path: Path,
) -> None:
    holder = hold_lock(tmp_path, "self", seconds=30)
    try:
        holder_pid = str(holder.pid)
        started = time.monotonic()
        with pytest.raises(JournalError, match=f"in use.*process {holder_pid}"):
            FileJournal(tmp_path, CONFIG).recover()
        assert time.monotonic() - started < 1
    finally:
        holder.kill()
        holder.wait()


async def test_a_lock_still_held_long_after_its_server_stopped_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("exchange.journal.file._LOCK_WAIT_S", 0.3)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    owner = gone.stdout.strip()
    holder = hold_lock(tmp_path, owner, seconds=30)
    try:
        with pytest.raises(JournalError) as refused:
            FileJournal(tmp_path, CONFIG).recover()
    finally:
        holder.kill()
        holder.wait()
    message = str(refused.value)
    assert f"still locked 0 s after process {owner}, which locked it, stopped" in (
        message
    )
    assert f"fuser {tmp_path / 'LOCK'}" in message


def test_a_lock_file_that_cannot_be_opened_is_a_journal_error_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "LOCK").mkdir()
    with pytest.raises(JournalError, match=r"cannot open the lock file .*LOCK: Is a"):
        FileJournal(tmp_path, CONFIG).recover()
