"""``cux demo`` as a user runs it: real server and node processes, real jobs.

Each test starts ``python -m exchange demo`` with a data folder of its own
and a free port, reads its output (not a terminal, so events and status come
as plain lines), stops it, and then checks what it left: the report, a journal
that ``cux replay`` accepts, and no process of its own still alive.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class DemoProcess:
    """``cux demo`` with ``args``; a thread collects its output lines."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exchange", "demo", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            self._new.put(line)
        self._new.put(None)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first output line matching ``pattern``, waiting up to ``timeout``."""
        for seen in list(self.lines):
            if found := re.search(pattern, seen):
                return found
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matched {pattern!r}:\n{self.text}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def alive_mentioning(*needles: str) -> list[str]:
    """Command lines of live processes (not zombies) that mention any of
    ``needles``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and any(needle in cmdline for needle in needles):
            found.append(f"{entry.name}: {cmdline}")
    return found


def figure(pattern: str, text: str) -> int:
    """The number the first line matching ``pattern`` captures."""
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"no line matches {pattern!r}:\n{text}"
    return int(found.group(1))


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, already dead, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def started_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"\(pid (\d+)", output)]


def test_demo_runs_jobs_and_a_futures_window_and_on_sigint_leaves_no_process(
    tmp_path: Path,
) -> None:
    data = tmp_path / "demo"
    demo = DemoProcess(
        "--duration", "170", "--nodes", "3", "--port", "0", "--data", str(data)
    )
    try:
        port = demo.wait_for(r"dashboard at http://127\.0\.0\.1:(\d+)/", 60).group(1)
        # The futures buyer's first job on its delivered leases (the window
        # starts 50 simulated minutes, 50 real seconds, after the start).
        demo.wait_for(r"dave's job \d+ on its emb-\S+ leases: done", 150)
        demo.wait_for(r"jobs [1-9]\d* done", 30)
    finally:
        status = demo.stop(signal.SIGINT)
    out = demo.text

    assert status == 0, out
    assert "stopping: SIGINT received" in out
    report = out[out.index("cux demo report") :]

    # A market with trades on both instruments, and jobs done on it.
    assert figure(r"^trades: (\d+)$", report) > 0
    assert figure(r"^  emb-SPOT: (\d+) trades", report) > 0
    assert figure(r"^  emb-\d{8}T\d\d: (\d+) trades.*, settled [\d,]+$", report) > 0
    assert figure(r"^jobs (\d+) done", report) > 0
    assert figure(r"^CU spent (\d+)\.\d, saved", report) > 0
    assert re.search(r"^  emb-\d{8}T\d\d: delivery started", report, re.M)

    # Every node is in the report; the cheaper ones get the work, so at least
    # two of them ran shards.
    shards = re.findall(r"^  prov-\d node-\d .*: (\d+) shards done", report, re.M)
    assert len(shards) == 3, report
    assert sum(int(n) > 0 for n in shards) >= 2, report

    # The journal is where the report says, and replays.
    assert f"journal: {data / 'journal'}" in report
    assert (data / "journal").is_dir()
    replay = subprocess.run(
        [sys.executable, "-m", "exchange", "replay", str(data)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr
    assert re.search(r"^state hash: [0-9a-f]{64}$", replay.stdout, re.M)

    # Every child process was stopped and waited for.
    pids = started_pids(out)
    assert len(pids) == 4  # the server and three nodes
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert alive_mentioning(str(data), f"127.0.0.1:{port}/ws") == []


def test_demo_whose_duration_ends_while_the_nodes_load_stops_them_and_reports(
    tmp_path: Path,
) -> None:
    data = tmp_path / "demo"
    demo = DemoProcess("--duration", "3", "--port", "0", "--data", str(data))

    status = demo.wait(90)

    out = demo.text
    assert status == 0, out
    assert "stopping: --duration 3 s reached" in out
    assert "trades: 0" in out
    assert f"journal: {data / 'journal'}" in out
    pids = started_pids(out)
    assert len(pids) == 4
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert alive_mentioning(str(data)) == []


def test_demo_refuses_a_data_folder_that_already_holds_a_journal(
    tmp_path: Path,
) -> None:
    (tmp_path / "journal").mkdir()
    (tmp_path / "journal" / "00000000000000000001.seg").write_bytes(b"")

    demo = DemoProcess("--duration", "3", "--port", "0", "--data", str(tmp_path))
    status = demo.wait(30)

    assert status == 2
    assert "already holds a journal" in demo.text
    assert started_pids(demo.text) == []


def test_demo_given_a_file_as_its_data_folder_says_so_in_one_line_and_exits_2(
    tmp_path: Path,
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")

    demo = DemoProcess("--duration", "3", "--port", "0", "--data", str(afile))
    line = demo.wait_for("cux demo: ", 30).string
    status = demo.wait(30)

    assert status == 2
    assert line.rstrip("\n") == (
        f"cux demo: --data {afile} is a file, not a folder; give a new --data folder"
    )
    assert "Traceback" not in demo.text


def test_demo_on_a_taken_port_says_so_in_one_line_and_leaves_its_folder_usable(
    tmp_path: Path,
) -> None:
    data = tmp_path / "demo"
    runs = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Twice with the same folder: the first start left no journal behind.
        for _ in range(2):
            demo = DemoProcess(
                "--duration", "3", "--port", str(port), "--data", str(data)
            )
            runs.append((demo.wait(90), demo.text))

    for status, out in runs:
        assert status == 1, out
        assert out.splitlines() == [
            f"cux demo: port {port} on 127.0.0.1 is taken: stop what listens there, "
            "or give another --port (0 picks a free one)"
        ]
    assert not (data / "journal").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="uses Linux's parent-death signal")
def test_demo_killed_outright_takes_its_child_processes_with_it(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    demo = DemoProcess("--port", "0", "--data", str(data))
    demo.wait_for(r"started cux node node-3", 60)

    demo.proc.kill()  # no chance to stop its children itself
    demo.proc.wait(10)

    # The kernel sends each child SIGTERM; they exit by themselves (a node
    # stops in its own time: it tries to cancel its quotes first).
    pids = started_pids(demo.text)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        alive_mentioning(str(data)) or any(alive(pid) for pid in pids)
    ):
        time.sleep(0.2)
    assert alive_mentioning(str(data)) == []
    assert len(pids) == 4
    assert not [pid for pid in pids if alive(pid)]
