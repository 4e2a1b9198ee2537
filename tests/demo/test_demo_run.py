"""``cux demo`` as a user runs it: real server and node processes, real jobs.

Each test starts ``python -m exchange demo`` with a data folder of its own
and a free port, reads its output, stops it, and then checks what it left:
the report, a journal that ``cux replay`` and the replay notebook accept, and
no process of its own still alive. The long run is on a pseudo-terminal, so
that it shows its live view as it does to a person; the short ones write to
a pipe, so events and status come as plain lines.
"""

from __future__ import annotations

import os
import pty
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

_NOTEBOOK_TESTS = str(Path(__file__).resolve().parents[1] / "notebooks")
if _NOTEBOOK_TESTS not in sys.path:
    sys.path.append(_NOTEBOOK_TESTS)

from notebook_harness import (  # noqa: E402
    FIGURES,
    errors,
    figures,
    outputs,
    run_notebook,
    texts,
)

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {"COLUMNS": "160", "LINES": "100", "TERM": "xterm-256color"}
"""The pseudo-terminal's size: wide and tall enough for the whole live view."""
STYLE = re.compile(rb"\x1b\[[0-9;]*m|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
"""A control sequence that styles text or links it: removed from a line."""
MOVE = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]")
"""Any other: the cursor moves or a line is erased, so a line ends there."""
HIDE_CURSOR, SHOW_CURSOR = b"\x1b[?25l", b"\x1b[?25h"


class DemoProcess:
    """``cux demo`` with ``args``; a thread collects its output lines.

    On a pipe the lines are what it printed. On a pseudo-terminal
    (``terminal``) it draws a live view, redrawn in place: each line of each
    frame becomes a line here, without its control sequences, and `raw`
    keeps the bytes as written.
    """

    def __init__(self, *args: str, terminal: bool = False) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "exchange", "demo", *args]
        if terminal:
            env.update(TERMINAL)
            source, sink = pty.openpty()
            self.proc = subprocess.Popen(
                command, cwd=REPO, stdin=sink, stdout=sink, stderr=sink, env=env
            )
            os.close(sink)
        else:
            self.proc = subprocess.Popen(
                command,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )
            assert self.proc.stdout is not None
            source = self.proc.stdout.fileno()
        self.terminal = terminal
        self.raw = bytearray()
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(source,), daemon=True)
        self._reader.start()

    def _read(self, source: int) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(source, 65536)
            except OSError:  # EIO: every holder of the terminal closed it
                chunk = b""
            if not chunk:
                break
            self.raw += chunk
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                self._add(line)
        if pending:
            self._add(pending)
        if self.terminal:
            os.close(source)
        self._new.put(None)

    def _add(self, line: bytes) -> None:
        if not self.terminal:
            self._put(line.decode(errors="replace") + "\n")
            return
        # A redraw moves up with control sequences after a carriage return:
        # each piece between them is a line of a frame.
        plain = MOVE.sub(b"\r", STYLE.sub(b"", line))
        for piece in plain.split(b"\r"):
            if piece.strip():
                self._put(piece.decode(errors="replace").rstrip() + "\n")

    def _put(self, line: str) -> None:
        self.lines.append(line)
        self._new.put(line)

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
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._reader.join(10)  # the output's end, once every child has closed it
        return status


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


def decimal(pattern: str, text: str) -> float:
    """The decimal number the first line matching ``pattern`` captures."""
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"no line matches {pattern!r}:\n{text}"
    return float(found.group(1))


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, already dead, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def started_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"\(pid (\d+)", output)]


def last_frame(output: str) -> str:
    """The live view as it stood when the demo stopped: its last frame, which
    stays on the terminal above the report."""
    heads = list(re.finditer(r"^cux demo +\d+ s +simulated .*$", output, re.M))
    assert heads, f"no live view in:\n{output}"
    return output[heads[-1].start() : output.index("cux demo report")]


def check_live_view(frame: str, port: str, report: str) -> None:
    """``frame`` shows the parts of the live view, with figures that the
    report, read later, can only have grown from."""
    head = frame.splitlines()[0]
    assert f"(trading)  dashboard: http://127.0.0.1:{port}/" in head

    # The market: trades, lots and prices of the spot book and the window.
    spot = re.search(r"^│ emb-SPOT +│ +(\d+) │ +(\d+) │ +[\d,]+ │ +-- │$", frame, re.M)
    window = re.search(
        r"^│ (emb-\d{8}T\d\d) +│ +(\d+) │ +\d+ │ +[\d,]+ │ +[\d,]+ │$", frame, re.M
    )
    assert spot is not None, frame
    assert window is not None, frame
    assert 0 < int(spot.group(1)) <= figure(r"^  emb-SPOT: (\d+) trades", report)
    settled = rf"^  {window.group(1)}: (\d+) trades.*, settled [\d,]+$"
    assert 0 < int(window.group(2)) <= figure(settled, report)

    # The jobs done and the CU they spent and saved.
    done = figure(r"^jobs (\d+) done, \d+ failed, \d+ running", frame)
    assert 0 < done <= figure(r"^jobs (\d+) done", report)
    assert re.search(
        r"^CU spent \d+\.\d, saved \d+\.\d \(tiers and budgets\) \| "
        r"consumers paid \d+\.\d{6} credits$",
        frame,
        re.M,
    )
    spent = r"^CU spent (\d+\.\d)"
    assert 0 < decimal(spent, frame) <= decimal(spent, report)

    # Every node, with its shards, CU and reputation.
    nodes = re.findall(
        r"^│ (node-\d) +│ (prov-\d) +│ .+ │ +(\d+) done, (\d+) failed │ +[\d.]+ │ "
        r"+([\d.]+)% │$",
        frame,
        re.M,
    )
    assert [n[:2] for n in nodes] == [
        ("node-1", "prov-1"),
        ("node-2", "prov-2"),
        ("node-3", "prov-3"),
    ], frame
    assert sum(int(n[2]) for n in nodes) > 0
    assert all(0 <= float(n[4]) <= 100 for n in nodes)
    assert "latest events" in frame


def check_notebook(data: Path, state_hash: str, trades: int) -> None:
    """The replay notebook, left to find the journal itself, opens the demo's
    (the newest under ``cux-demo/``), replays it to ``state_hash`` and draws
    every figure."""
    notebook = run_notebook(data.parent.parent)

    found = outputs(notebook)
    assert errors(found) == []
    assert len(figures(found)) == FIGURES
    text = texts(found)
    assert f"'journal': '{data / 'journal'}'" in text
    assert f"(expected): {state_hash} ok" in text
    assert "'verified': True" in text
    assert f"'trades': {trades}," in text


def test_demo_on_a_terminal_shows_its_market_live_and_on_sigint_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a cux-demo folder, where the replay notebook looks by default.
    data = tmp_path / "cux-demo" / "run"
    demo = DemoProcess(
        "--duration",
        "170",
        "--nodes",
        "3",
        "--port",
        "0",
        "--data",
        str(data),
        terminal=True,
    )
    try:
        port = demo.wait_for(r"dashboard at http://127\.0\.0\.1:(\d+)/", 60).group(1)
        # The futures buyer's first job on its delivered leases (the window
        # starts 50 simulated minutes, 50 real seconds, after the start).
        demo.wait_for(r"dave's job \d+ on its emb-\S+ leases: done", 150)
        demo.wait_for(r"^jobs [1-9]\d* done", 30)
    finally:
        status = demo.stop(signal.SIGINT)
    out = demo.text

    assert status == 0, out
    report = out[out.index("cux demo report") :]
    assert "  stopping: SIGINT received" in report.splitlines()

    # On a terminal: a live view, no status lines, and the cursor given back.
    check_live_view(last_frame(out), port, report)
    assert not re.search(r"^\[ *\d+ s \|", out, re.M)
    assert demo.raw.rfind(SHOW_CURSOR) > demo.raw.rfind(HIDE_CURSOR) >= 0

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

    # The journal is where the report says, and replays: in `cux replay` and
    # in the replay notebook, to the same state hash.
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
    state_hash = re.search(r"^state hash: ([0-9a-f]{64})$", replay.stdout, re.M)
    assert state_hash is not None, replay.stdout
    monkeypatch.delenv("CUX_JOURNAL", raising=False)
    monkeypatch.setenv("CUX_STATE_HASH", state_hash.group(1))
    check_notebook(data, state_hash.group(1), figure(r"^trades: (\d+)$", report))

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
    # Off a terminal each event is a line of its own, with its time.
    assert re.search(r"^\[ +\d s\] stopping: --duration 3 s reached$", out, re.M)
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
