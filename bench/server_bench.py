"""End-to-end speed of a real ``cux serve`` process over loopback websockets.

The benchmark starts ``python -m exchange serve`` on a free loopback port with a
data folder of its own (journal on, fsync ``batch`` unless ``--fsync`` says
otherwise) and drives it from load-generator processes:

1. **Order-to-acknowledgement latency** at steady rates (``--rates``, default
   5,000 and 20,000 orders/s), from ``--conns`` connections (default 4, each
   logged in as its own account) spread over ``--procs`` processes. The load is
   open-loop: each connection sends on a fixed schedule whatever the acks do,
   except that a connection whose replies are more than a second behind skips
   ("sheds") its orders until they catch up, so that an overload leaves a
   bounded backlog. A request's latency runs from just before its frame is
   written to the socket to the moment its ``ack`` or ``error`` is read.
2. **The highest sustained rate**: a ramp (``--ramp-start``, ``--ramp-step``,
   ``--ramp-max``, ``--ramp-duration``; 2,500 to 60,000 by 2,500) that stops
   at the first rate where acks fall behind: fewer than 95% of the target
   answered within the step, any order shed or unanswered, or a p99 over
   ``--max-p99-ms`` (default 250).
3. **Market-data fan-out**: ``--subscribers`` connections (default 200, over
   ``--sub-procs`` processes) subscribed to ``book.cpu-SPOT`` and
   ``trades.cpu-SPOT`` while orders stream at ``--fanout-rates``; it reports the
   updates each subscriber received, resyncs, closed connections, gaps in the
   book's sequence numbers, the delay of trade messages, and the server's CPU.

    .venv/bin/python -m bench.server_bench                 # everything, ~2 min
    .venv/bin/python -m bench.server_bench --fsync none --no-ramp --subscribers 0
    .venv/bin/python -m bench.server_bench --py-spy /tmp/server.txt --rates 20000

The orders: every connection trades for its own account around a mid price
that all processes compute from the wall clock (a slow wave of +-40 ticks around
100,000 µcr): 25% cancels of the connection's own live orders (the oldest once
it has ``--max-live`` of them, so the book stays bounded), 3% market IOC
orders, 10% limits that cross the mid, the rest passive limits 1 + Exp(mean 20)
ticks away from it; 1 to 10 lots each.

The clients speak RFC 6455 directly over asyncio (a few dozen lines below, no
websocket library): frames are batched per connection per 1 ms tick into one
``write``, and replies are decoded with msgspec, so that a load-generator
process costs a few µs per order. They offer no compression unless
``--deflate`` (then the server compresses every frame it sends, as it does for
clients of the ``websockets`` library, which offer it by default).

CPU: the server's (all its threads) and the load generators' are read from
``/proc/PID/stat`` over each timed window, in percent of one core; the
machine's from ``/proc/stat``, in percent of all cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "cpu-SPOT"
MID = 100_000
"""The centre of the mid price's wave, µcr a lot."""
TICK_S = 0.001
"""The pacing tick of the load generators."""
MAX_BEHIND_S = 1.0
"""A connection waiting for more than this many seconds of its orders' replies
stops sending until they come (the orders it skips are counted as shed)."""
CLK_TCK = os.sysconf("SC_CLK_TCK")

# -- the server -------------------------------------------------------------------

CONFIG_HEAD = """\
[server]
fsync = "{fsync}"
journal_writer = "{journal_writer}"
heartbeat_seconds = 5
rate_limit = 1_000_000
max_queue = {max_queue}
snapshot_every = {snapshot_every}

[[classes]]
name = "cpu"
lot_cu = 100
tick = 1
taker_fee_bps = 10
maker_fee_bps = 0
"""

CONFIG_ACCOUNT = """
[[accounts]]
key = "{key}"
secret = "{key}-secret"
deposit = 1_000_000_000_000_000
roles = ["consumer", "provider"]
capacity = {{ cpu-SPOT = 1_000_000_000 }}
"""


def account_key(i: int) -> str:
    return f"trader{i}"


def write_config(
    folder: Path,
    accounts: int,
    fsync: str,
    max_queue: int,
    snapshot_every: int,
    journal_writer: str = "process",
) -> Path:
    text = CONFIG_HEAD.format(
        fsync=fsync,
        journal_writer=journal_writer,
        max_queue=max_queue,
        snapshot_every=snapshot_every,
    )
    text += "".join(CONFIG_ACCOUNT.format(key=account_key(i)) for i in range(accounts))
    path = folder / "cux.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Server:
    """``cux serve`` as a child process; its output is kept in `lines`."""

    def __init__(self, config: Path, data: Path, root: Path = ROOT) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "exchange", "serve"),
                *("--config", str(config), "--data", str(data)),
                *("--port", "0", "--log-level", "WARNING"),
            ],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.pid = self.proc.pid
        self.lines: list[str] = []
        self.port = self._wait_for_port()
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _wait_for_port(self, timeout: float = 60.0) -> int:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            found = re.search(r"listening on http://[\d.]+:(\d+)", line)
            if found:
                return int(found.group(1))
        self.proc.kill()
        raise RuntimeError("cux serve did not start:\n" + "".join(self.lines))

    def _read_rest(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._drain.join(5)
        return rc


# -- CPU accounting -----------------------------------------------------------------


def process_cpu_s(pid: int, system_only: bool = False) -> float:
    """User plus system (or only system) CPU seconds of process ``pid``, all
    its threads."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    if system_only:
        return int(fields[12]) / CLK_TCK
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def journal_writer_pids(pid: int) -> list[int]:
    """The journal writer processes started by server ``pid`` (see
    `exchange.journal.writer_process`): their CPU is the server's."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_bytes().rsplit(b")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and b"writer_process" in command:
            found.append(int(stat.parent.name))
    return found


def server_cpu_s(pid: int, system_only: bool = False) -> float:
    """`process_cpu_s` of the server and its journal writer process."""
    pids = [pid, *journal_writer_pids(pid)]
    return sum(process_cpu_s(p, system_only) for p in pids)


def runqueue_wait_s(pid: int) -> float:
    """Seconds the main thread of ``pid`` has waited, runnable, for a CPU."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine, from /proc/stat."""
    with open("/proc/stat", "rb") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


@dataclass
class CpuWindow:
    """CPU used by the server, the load generators and the machine in a window."""

    server_pid: int
    worker_pids: list[int]
    wall: float = 0.0
    server: float = 0.0
    server_system: float = 0.0
    workers: float = 0.0
    machine: float = 0.0
    server_waiting: float = 0.0
    _start: tuple[float, ...] = ()

    def start(self) -> None:
        busy, total = machine_ticks()
        self._start = (
            time.monotonic(),
            server_cpu_s(self.server_pid),
            server_cpu_s(self.server_pid, system_only=True),
            sum(process_cpu_s(p) for p in self.worker_pids),
            busy,
            total,
            runqueue_wait_s(self.server_pid),
        )

    def stop(self) -> None:
        t0, s0, k0, w0, b0, n0, q0 = self._start
        self.server_waiting = (
            (runqueue_wait_s(self.server_pid) - q0) / (time.monotonic() - t0) * 100
        )
        busy, total = machine_ticks()
        self.wall = time.monotonic() - t0
        self.server = (server_cpu_s(self.server_pid) - s0) / self.wall * 100
        system = server_cpu_s(self.server_pid, system_only=True) - k0
        self.server_system = system / self.wall * 100
        workers = sum(process_cpu_s(p) for p in self.worker_pids)
        self.workers = (workers - w0) / self.wall * 100
        self.machine = (busy - b0) / max(1, total - n0) * 100

    @property
    def others(self) -> float:
        """CPU of everything else on the machine, in percent of one core."""
        cores = os.cpu_count() or 1
        return max(0.0, self.machine * cores - self.server - self.workers)


# -- a minimal websocket client ------------------------------------------------------


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame (RFC 6455 section 5.2) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    key = random.getrandbits(32).to_bytes(4, "big")
    if not n:
        return head + key
    mask = (key * (n // 4 + 1))[:n]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")
    return head + key + masked.to_bytes(n, "big")


class WebSocket(asyncio.Protocol):
    """One client connection: the handshake, then frames in and out.

    ``on_message(payload, now_ns)`` gets every text frame; ``now_ns`` is
    `time.perf_counter_ns` when the bytes holding it were read.
    """

    def __init__(self, on_message: Callable[[bytes, int], None]) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False
        self.closed = False
        self.close_code: int | None = None
        self.inflater: Any = None
        self.handshake: asyncio.Future[None] = (
            asyncio.get_running_loop().create_future()
        )

    @classmethod
    async def connect(
        cls, host: str, port: int, on_message: Callable[[bytes, int], None], *,
        deflate: bool = False,
    ) -> WebSocket:  # fmt: skip
        loop = asyncio.get_running_loop()
        _, ws = await loop.create_connection(lambda: cls(on_message), host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        extension = (
            "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        )
        request = (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extension}\r\n"
        )
        assert ws.transport is not None
        ws.transport.write(request.encode())
        await asyncio.wait_for(ws.handshake, 30)
        return ws

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("closed during handshake"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            if not head.startswith(b"http/1.1 101"):
                self.handshake.set_exception(ConnectionError(head.decode()))
                return
            if b"permessage-deflate" in head:
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            self.open = True
            self.handshake.set_result(None)
        now = time.perf_counter_ns()
        i, n = 0, len(buf)
        while n - i >= 2:
            b0, length = buf[i], buf[i + 1] & 0x7F
            h = 2
            if length == 126:
                if n - i < 4:
                    break
                length, h = int.from_bytes(buf[i + 2 : i + 4], "big"), 4
            elif length == 127:
                if n - i < 10:
                    break
                length, h = int.from_bytes(buf[i + 2 : i + 10], "big"), 10
            if n - i < h + length:
                break
            payload = bytes(buf[i + h : i + h + length])
            i += h + length
            opcode = b0 & 0x0F
            if opcode == 1:
                if b0 & 0x40:  # RSV1: compressed
                    payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
                self.on_message(payload, now)
            elif opcode == 9:  # ping
                self.send_frames([client_frame(payload, 0xA)])
            elif opcode == 8:  # close
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 0
                self.closed = True
        if i:
            del buf[:i]

    def send_frames(self, frames: list[bytes]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(frames))

    def send_text(self, text: bytes) -> None:
        self.send_frames([client_frame(text)])

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(b"\x03\xe8", 8))
            self.transport.close()


class _Reply(msgspec.Struct):
    type: str
    id: int | None = None
    order_id: str | None = None
    code: str | None = None
    nonce: str | None = None


class _BookSeq(msgspec.Struct):
    seq: int
    snapshot: bool = False


class _TradeTs(msgspec.Struct):
    ts: int


_reply = msgspec.json.Decoder(_Reply).decode
_book_seq = msgspec.json.Decoder(_BookSeq).decode
_trade_ts = msgspec.json.Decoder(_TradeTs).decode


def mid_price(now: float) -> int:
    """The mid price every generator aims at, from the wall clock."""
    return MID + int(30 * math.sin(now / 7.0) + 10 * math.sin(now / 1.3))


# -- order connections --------------------------------------------------------------


class OrderConn:
    """One logged-in connection sending the order mix and timing the replies."""

    def __init__(self, account: str, seed: int, max_live: int) -> None:
        self.account = account
        self.rng = random.Random(seed)
        self.max_live = max_live
        self.ws: WebSocket | None = None
        self.next_id = 1
        self.live: list[str] = []
        # id -> (send time ns, is a place, step)
        self.pending: dict[int, tuple[int, bool, int]] = {}
        self.hello: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.logged_in: asyncio.Future[None] = (
            asyncio.get_running_loop().create_future()
        )
        self.step = 0
        self.reset()

    def reset(self) -> None:
        self.latencies = array("q")
        self.place_latencies = array("q")
        self.sent = 0
        self.shed = 0
        self.answered = 0
        self.answered_in_window = 0
        self.window_end_ns = 0
        self.errors: Counter[str] = Counter()
        self.last_reply_ns = 0

    async def connect(self, host: str, port: int, deflate: bool) -> None:
        self.ws = await WebSocket.connect(host, port, self.on_message, deflate=deflate)
        nonce = await asyncio.wait_for(self.hello, 30)
        signature = hmac.new(
            f"{self.account}-secret".encode(), nonce.encode(), hashlib.sha256
        ).hexdigest()
        self.pending[0] = (0, False, -1)
        self.ws.send_text(
            b'{"op":"login","id":0,"key":"%s","signature":"%s"}'
            % (self.account.encode(), signature.encode())
        )
        await asyncio.wait_for(self.logged_in, 30)

    def on_message(self, payload: bytes, now: int) -> None:
        reply = _reply(payload)
        rid = reply.id
        if rid is None:
            if reply.type == "hello" and reply.nonce is not None:
                self.hello.set_result(reply.nonce)
            return
        sent = self.pending.pop(rid, None)
        if sent is None:
            return
        t_send, is_place, step = sent
        if step < 0:  # the login
            if reply.type == "ack":
                self.logged_in.set_result(None)
            else:
                self.logged_in.set_exception(RuntimeError(f"login: {payload!r}"))
            return
        if reply.type == "ack":
            if is_place and reply.order_id is not None:
                self.live.append(reply.order_id)
        elif step == self.step:
            self.errors[reply.code or reply.type] += 1
        if step != self.step:
            return
        latency = now - t_send
        self.latencies.append(latency)
        if is_place:
            self.place_latencies.append(latency)
        self.answered += 1
        if now <= self.window_end_ns:
            self.answered_in_window += 1
        self.last_reply_ns = now

    def request(self, now: float) -> tuple[bytes, bool]:
        """The next request's frame payload, and whether it places an order."""
        rid = self.next_id
        self.next_id += 1
        rng = self.rng
        live = self.live
        roll = rng.random()
        if live and (len(live) > self.max_live or roll < 0.25):
            if len(live) > self.max_live:
                order_id = live.pop(0)
            else:
                i = rng.randrange(len(live))
                live[i], live[-1] = live[-1], live[i]
                order_id = live.pop()
            return b'{"op":"cancel","id":%d,"order_id":"%s"}' % (
                rid,
                order_id.encode(),
            ), False
        buy = rng.random() < 0.5
        side = b"buy" if buy else b"sell"
        qty = rng.randint(1, 10)
        if roll < 0.28:
            return b'{"op":"place","id":%d,"symbol":"%s","side":"%s","qty":%d,' \
                b'"type":"market","tif":"IOC"}' % (
                rid, SYMBOL.encode(), side, qty
            ), True  # fmt: skip
        mid = mid_price(now)
        # 10% cross the mid by up to 3 ticks; the rest rest 1 + Exp(20) away.
        cross = roll < 0.38
        offset = -rng.randint(0, 3) if cross else 1 + int(rng.expovariate(1 / 20))
        price = mid - offset if buy else mid + offset
        return b'{"op":"place","id":%d,"symbol":"%s","side":"%s","qty":%d,' \
            b'"price":%d}' % (rid, SYMBOL.encode(), side, qty, price), True  # fmt: skip

    def send_due(self, due: int, wall: float, cap: int) -> None:
        """Send requests until ``due`` have been sent in this step; skip
        (shed) them while more than ``cap`` wait for their reply."""
        count = due - self.sent
        if count <= 0 or self.ws is None:
            return
        if len(self.pending) > cap:
            self.shed += count
            self.sent = due
            return
        frames: list[bytes] = []
        ids: list[tuple[int, bool]] = []
        for _ in range(count):
            rid = self.next_id
            payload, is_place = self.request(wall)
            frames.append(client_frame(payload))
            ids.append((rid, is_place))
        step = self.step
        pending = self.pending
        t_send = time.perf_counter_ns()
        for rid, is_place in ids:
            pending[rid] = (t_send, is_place, step)
        self.ws.send_frames(frames)
        self.sent = due


async def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def order_step(
    conns: list[OrderConn], step: int, start_at: float, duration: float,
    rate: float, grace: float,
) -> dict[str, Any]:  # fmt: skip
    """Send at ``rate`` orders/s from each of ``conns`` for ``duration`` s from
    ``start_at`` (monotonic); collect. A connection whose replies are more
    than `MAX_BEHIND_S` of its schedule behind skips its orders until they
    catch up, so that an overload leaves a bounded backlog."""
    per_conn = rate  # orders/s of each connection
    cap = max(100, int(per_conn * MAX_BEHIND_S))
    for c in conns:
        c.step = step
        c.reset()
    await _sleep_until(start_at)
    end = start_at + duration
    for c in conns:
        c.window_end_ns = time.perf_counter_ns() + int((end - time.monotonic()) * 1e9)
    phases = [i / len(conns) for i in range(len(conns))]
    late_max = 0.0
    late_sum = 0.0
    ticks = 0
    total = int(per_conn * duration)
    while True:
        now = time.monotonic()
        if now >= end:
            break
        elapsed = now - start_at
        wall = time.time()
        for c, phase in zip(conns, phases, strict=True):
            due = min(total, int(elapsed * per_conn + phase))
            if due > c.sent:
                # How late the oldest request of this batch is on its schedule.
                late = elapsed - (c.sent - phase) / per_conn if per_conn else 0.0
                late_max = max(late_max, late)
                late_sum += late
                ticks += 1
            c.send_due(due, wall, cap)
        await asyncio.sleep(TICK_S)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(
        any(s == step for _, _, s in c.pending.values()) for c in conns
    ):
        await asyncio.sleep(0.01)
    latencies = array("q")
    places = array("q")
    errors: Counter[str] = Counter()
    for c in conns:
        latencies.extend(c.latencies)
        places.extend(c.place_latencies)
        errors.update(c.errors)
    return {
        "sent": sum(c.sent - c.shed for c in conns),
        "shed": sum(c.shed for c in conns),
        "answered": sum(c.answered for c in conns),
        "answered_in_window": sum(c.answered_in_window for c in conns),
        "unanswered": sum(
            sum(1 for _, _, s in c.pending.values() if s == step) for c in conns
        ),
        "latencies": latencies.tobytes(),
        "place_latencies": places.tobytes(),
        "errors": dict(errors),
        "late_max": late_max,
        "late_mean": late_sum / ticks if ticks else 0.0,
        "live": sum(len(c.live) for c in conns),
    }


# -- subscribers --------------------------------------------------------------------


class Subscriber:
    """One connection subscribed to the book and trades of `SYMBOL`."""

    SUBSCRIBE = b'{"op":"subscribe","id":%d,"channels":["book.%s","trades.%s"]}'

    def __init__(self) -> None:
        self.ws: WebSocket | None = None
        self.subscribed: asyncio.Future[None] = (
            asyncio.get_running_loop().create_future()
        )
        self.next_id = 1
        self.book = 0
        self.snapshots = 0
        self.trades = 0
        self.resyncs = 0
        self.gaps = 0
        self.last_seq: int | None = None
        self.trade_delays = array("q")
        self.recording = False

    async def connect(self, host: str, port: int, deflate: bool) -> None:
        self.ws = await WebSocket.connect(host, port, self.on_message, deflate=deflate)
        self.subscribe()
        await asyncio.wait_for(self.subscribed, 60)

    def subscribe(self) -> None:
        assert self.ws is not None
        sym = SYMBOL.encode()
        self.ws.send_text(self.SUBSCRIBE % (self.next_id, sym, sym))
        self.next_id += 1

    def on_message(self, payload: bytes, now: int) -> None:
        if payload.startswith(b'{"type":"book"'):
            book = _book_seq(payload)
            if book.snapshot:
                self.snapshots += 1
            else:
                self.book += 1
                if self.last_seq is not None and book.seq != self.last_seq + 1:
                    self.gaps += 1
            self.last_seq = book.seq
        elif payload.startswith(b'{"type":"trade"'):
            self.trades += 1
            if self.recording:
                self.trade_delays.append(time.time_ns() - _trade_ts(payload).ts)
        elif payload.startswith(b'{"type":"resync"'):
            self.resyncs += 1
            self.last_seq = None
            self.subscribe()  # as a client should: fresh snapshots follow
        elif payload.startswith(b'{"type":"subscribed"') and not self.subscribed.done():
            self.subscribed.set_result(None)

    def counters(self) -> tuple[int, int, int, int, int]:
        return (self.book, self.trades, self.resyncs, self.gaps, self.snapshots)


async def listen_step(
    subs: list[Subscriber], start_at: float, duration: float
) -> dict[str, Any]:
    await _sleep_until(start_at)
    before = [s.counters() for s in subs]
    for s in subs:
        s.trade_delays = array("q")
        s.recording = True
    await _sleep_until(start_at + duration)
    after = [s.counters() for s in subs]
    for s in subs:
        s.recording = False
    delays = array("q")
    for s in subs:
        delays.extend(s.trade_delays)
    return {
        "counts": [
            tuple(a - b for a, b in zip(x, y, strict=True))
            for x, y in zip(after, before, strict=True)
        ],
        "closed": sum(1 for s in subs if s.ws is None or s.ws.closed),
        "trade_delays": delays.tobytes(),
    }


# -- the worker processes -----------------------------------------------------------


def worker_main(pipe: Any, port: int, spec: dict[str, Any]) -> None:
    """A load-generator process: connect, then run the steps the pipe sends."""
    try:
        import uvloop

        uvloop.run(_worker(pipe, port, spec))
    except ImportError:
        asyncio.run(_worker(pipe, port, spec))


async def _worker(pipe: Any, port: int, spec: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    host = "127.0.0.1"
    deflate = spec["deflate"]
    orders: list[OrderConn] = []
    subs: list[Subscriber] = []
    try:
        if spec["kind"] == "orders":
            orders = [
                OrderConn(account, spec["seed"] * 1000 + i, spec["max_live"])
                for i, account in enumerate(spec["accounts"])
            ]
            await asyncio.gather(*(c.connect(host, port, deflate) for c in orders))
        else:
            subs = [Subscriber() for _ in range(spec["count"])]
            for i in range(0, len(subs), 20):  # do not flood the accept queue
                batch = subs[i : i + 20]
                await asyncio.gather(*(s.connect(host, port, deflate) for s in batch))
    except Exception as exc:
        pipe.send(("failed", repr(exc)))
        return
    pipe.send(("ready", os.getpid()))
    step = 0
    while True:
        try:
            command = await loop.run_in_executor(None, pipe.recv)
        except (EOFError, OSError):  # the benchmark is gone
            break
        if command[0] == "stop":
            break
        step += 1
        if command[0] == "orders":
            _, start_at, duration, rate, grace = command
            result = await order_step(orders, step, start_at, duration, rate, grace)
        elif command[0] == "drain":
            deadline = time.monotonic() + command[1]
            while time.monotonic() < deadline and any(c.pending for c in orders):
                await asyncio.sleep(0.05)
            result = {"pending": sum(len(c.pending) for c in orders)}
        else:
            _, start_at, duration = command
            result = await listen_step(subs, start_at, duration)
        pipe.send(result)
    for c in orders:
        if c.ws is not None:
            c.ws.close()
    for s in subs:
        if s.ws is not None:
            s.ws.close()
    await asyncio.sleep(0.05)


class Workers:
    """Load-generator processes and the pipes to them."""

    def __init__(self, port: int, specs: list[dict[str, Any]]) -> None:
        from bench import server_bench  # picklable by module name under -m too

        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        for spec in specs:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=server_bench.worker_main, args=(theirs, port, spec), daemon=True
            )
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)
        self.conns = sum(len(spec.get("accounts", ())) for spec in specs)
        self.pids: list[int] = []
        for pipe in self.pipes:
            if not pipe.poll(120):
                raise RuntimeError("a load generator did not connect in time")
            status, detail = pipe.recv()
            if status != "ready":
                raise RuntimeError(f"a load generator failed: {detail}")
            self.pids.append(detail)

    def send(self, command: tuple[Any, ...]) -> None:
        for pipe in self.pipes:
            pipe.send(command)

    def results(self, timeout: float) -> list[dict[str, Any]]:
        out = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError("a load generator did not report in time")
            out.append(pipe.recv())
        return out

    def drain(self, timeout: float) -> int:
        """Wait until every request sent has its reply; the number still
        waiting after ``timeout`` s."""
        self.send(("drain", timeout))
        return sum(r["pending"] for r in self.results(timeout + 60))

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


# -- steps and reports --------------------------------------------------------------


def percentile(values: list[int], q: float) -> float:
    """The ``q`` quantile of sorted ``values``, in ms (nan if empty)."""
    if not values:
        return math.nan
    return values[min(len(values) - 1, int(q * len(values)))] / 1e6


@dataclass
class RateResult:
    target: float
    duration: float
    sent: int
    shed: int
    answered: int
    answered_in_window: int
    unanswered: int
    latencies: list[int]
    place_latencies: list[int]
    errors: dict[str, int]
    late_max: float
    late_mean: float
    live: int
    cpu: CpuWindow

    @property
    def achieved(self) -> float:
        return self.answered_in_window / self.duration

    @property
    def sent_rate(self) -> float:
        return self.sent / self.duration

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    def sustained(self, max_p99_ms: float) -> bool:
        return (
            self.achieved >= 0.95 * self.target
            and self.p(0.99) <= max_p99_ms
            and self.unanswered == 0
            and self.shed == 0
        )

    def generator_bound(self) -> bool:
        """Whether the generators fell short of the schedule by themselves
        (not by shedding)."""
        return (self.sent + self.shed) / self.duration < 0.97 * self.target


def run_rate(
    server: Server, workers: Workers, rate: float, duration: float, grace: float,
    extra_pids: list[int] | None = None,
) -> RateResult:  # fmt: skip
    """One steady step at ``rate`` orders/s over all order connections."""
    start_at = time.monotonic() + 0.3
    workers.send(("orders", start_at, duration, rate / workers.conns, grace))
    cpu = CpuWindow(server.pid, workers.pids + (extra_pids or []))
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu.start()
    time.sleep(duration)
    cpu.stop()
    parts = workers.results(duration + grace + 60)
    latencies: list[int] = []
    places: list[int] = []
    errors: Counter[str] = Counter()
    for part in parts:
        latencies.extend(array("q", part["latencies"]))
        places.extend(array("q", part["place_latencies"]))
        errors.update(part["errors"])
    latencies.sort()
    places.sort()
    return RateResult(
        target=rate,
        duration=duration,
        sent=sum(p["sent"] for p in parts),
        shed=sum(p["shed"] for p in parts),
        answered=sum(p["answered"] for p in parts),
        answered_in_window=sum(p["answered_in_window"] for p in parts),
        unanswered=sum(p["unanswered"] for p in parts),
        latencies=latencies,
        place_latencies=places,
        errors=dict(errors),
        late_max=max(p["late_max"] for p in parts),
        late_mean=sum(p["late_mean"] for p in parts) / len(parts),
        live=sum(p["live"] for p in parts),
        cpu=cpu,
    )


RATE_HEADER = (
    "| target orders/s | sent/s | acked/s in window | p50 ms | p99 ms | p99.9 ms | "
    "max ms | place p99 ms | unanswered | errors | server CPU % (system) | "
    "server CPU µs/order | server waiting for a CPU % | "
    "load-gen CPU % | other processes CPU % |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def rate_row(r: RateResult) -> str:
    errors = sum(r.errors.values())
    share = f"{errors / max(1, r.answered):.1%}" if errors else "0"
    return (
        f"| {r.target:,.0f} | {r.sent_rate:,.0f} | {r.achieved:,.0f} | "
        f"{r.p(0.5):.2f} | {r.p(0.99):.2f} | {r.p(0.999):.2f} | "
        f"{(r.latencies[-1] / 1e6 if r.latencies else math.nan):.1f} | "
        f"{percentile(r.place_latencies, 0.99):.2f} | {r.unanswered} | {share} | "
        f"{r.cpu.server:.0f} ({r.cpu.server_system:.0f}) | "
        f"{r.cpu.server * 1e4 / max(1.0, r.achieved):.0f} | "
        f"{r.cpu.server_waiting:.0f} | {r.cpu.workers:.0f} | {r.cpu.others:.0f} |"
    )


@dataclass
class FanoutResult:
    rate: RateResult
    subscribers: int
    book: list[float] = field(default_factory=list)
    trades: list[float] = field(default_factory=list)
    resyncs: int = 0
    resynced_subscribers: int = 0
    gaps: int = 0
    closed: int = 0
    trade_delays: list[int] = field(default_factory=list)
    sub_cpu: CpuWindow = field(default_factory=lambda: CpuWindow(0, []))


def run_fanout(
    server: Server, orders: Workers, subs: Workers, rate: float, duration: float,
    grace: float,
) -> FanoutResult:  # fmt: skip
    start_at = time.monotonic() + 0.3
    subs.send(("listen", start_at, duration))
    orders.send(("orders", start_at, duration, rate / orders.conns, grace))
    cpu = CpuWindow(server.pid, orders.pids)
    sub_cpu = CpuWindow(server.pid, subs.pids)
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu.start()
    sub_cpu.start()
    time.sleep(duration)
    cpu.stop()
    sub_cpu.stop()
    listened = subs.results(duration + 60)
    parts = orders.results(duration + grace + 60)
    latencies: list[int] = []
    places: list[int] = []
    errors: Counter[str] = Counter()
    for part in parts:
        latencies.extend(array("q", part["latencies"]))
        places.extend(array("q", part["place_latencies"]))
        errors.update(part["errors"])
    latencies.sort()
    places.sort()
    rate_result = RateResult(
        rate, duration, sum(p["sent"] for p in parts),
        sum(p["shed"] for p in parts), sum(p["answered"] for p in parts),
        sum(p["answered_in_window"] for p in parts),
        sum(p["unanswered"] for p in parts), latencies, places, dict(errors),
        max(p["late_max"] for p in parts),
        sum(p["late_mean"] for p in parts) / len(parts),
        sum(p["live"] for p in parts), cpu,
    )  # fmt: skip
    result = FanoutResult(rate_result, sum(len(x["counts"]) for x in listened))
    result.sub_cpu = sub_cpu
    delays: list[int] = []
    for part in listened:
        for book, trades, resyncs, gaps, _ in part["counts"]:
            result.book.append(book / duration)
            result.trades.append(trades / duration)
            result.resyncs += resyncs
            result.resynced_subscribers += resyncs > 0
            result.gaps += gaps
        result.closed += part["closed"]
        delays.extend(array("q", part["trade_delays"]))
    delays.sort()
    result.trade_delays = delays
    return result


FANOUT_HEADER = (
    "| orders/s target | acked/s | ack p50 / p99 ms | subscribers | "
    "book updates/s per subscriber min / median / max | trades/s per subscriber "
    "(median) | trade delay p50 / p99 ms | resyncs (subscribers) | seq gaps | "
    "closed | server CPU % | server CPU µs per message sent | "
    "order + subscriber procs CPU % | other processes CPU % |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def fanout_row(f: FanoutResult) -> str:
    r = f.rate
    book = sorted(f.book) or [math.nan]
    trades = sorted(f.trades) or [math.nan]
    # Messages/s the server sent: to the subscribers, and the replies.
    sent = sum(f.book) + sum(f.trades) + r.achieved
    return (
        f"| {r.target:,.0f} | {r.achieved:,.0f} | {r.p(0.5):.2f} / {r.p(0.99):.2f} | "
        f"{f.subscribers} | {book[0]:,.0f} / {book[len(book) // 2]:,.0f} / "
        f"{book[-1]:,.0f} | {trades[len(trades) // 2]:,.0f} | "
        f"{percentile(f.trade_delays, 0.5):.1f} / "
        f"{percentile(f.trade_delays, 0.99):.1f} | "
        f"{f.resyncs} ({f.resynced_subscribers}) | {f.gaps} | {f.closed} | "
        f"{r.cpu.server:.0f} | {r.cpu.server * 1e4 / max(1.0, sent):.1f} | "
        f"{r.cpu.workers:.0f} + {f.sub_cpu.workers:.0f} | "
        f"{max(0.0, r.cpu.others - f.sub_cpu.workers):.0f} |"
    )


# -- profiling ----------------------------------------------------------------------

CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    # (name, substrings of a frame); a sample goes to the deepest frame matching.
    ("event loop, tasks and callbacks", ("uvloop", "asyncio/")),
    ("aiohttp: HTTP/websocket server plumbing", ("aiohttp/",)),
    ("websocket read: frame parsing", ("_websocket/reader",)),
    ("gateway: request checks and dispatch", ("exchange/gateway.py",)),
    ("request JSON decode (msgspec)", ("peek (", "decode_request (")),
    ("sessions: queueing and writer tasks", ("exchange/sessions.py",)),
    ("websocket send: frame build and socket write", ("_websocket/writer",)),
    ("reply encode (msgspec)", ("encode (exchange/protocol.py",)),
    ("sequencer: batching and delivery", ("exchange/sequencer.py",)),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("engine (matching/)", ("matching/",)),
    ("market data (exchange/marketdata*)", ("exchange/marketdata",)),
    ("journal: append and encode", ("exchange/journal/file.py", "encode_frames")),
    ("journal: write and fsync (writer thread)", ("exchange/journal/writer.py",)),
    ("journal: writer process pipes", ("exchange/journal/writer_process.py",)),
    ("journal: snapshots", ("exchange/journal/snapshots.py", "snapshot (")),
]


def summarise_profile(path: Path, top: int = 25) -> str:
    """A table of where the sampled time went, from py-spy's raw output."""
    categories: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        threads[frames[0]] += count
        category = "other"
        for frame in frames:
            for name, needles in CATEGORIES:
                if any(n in frame for n in needles):
                    category = name
        categories[category] += count
        leaves[_short(frames[-1])] += count
    if not total:
        return "(no samples)"
    lines = ["| where (deepest matching frame) | share of samples |", "|---|---:|"]
    for name, count in categories.most_common():
        lines.append(f"| {name} | {count / total:.1%} |")
    lines += ["", "| leaf function (self time) | share |", "|---|---:|"]
    for name, count in leaves.most_common(top):
        lines.append(f"| `{name}` | {count / total:.1%} |")
    lines += ["", "| thread | share |", "|---|---:|"]
    for name, count in threads.most_common(6):
        lines.append(f"| {name} | {count / total:.1%} |")
    lines.append(f"\n{total:,} samples")
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``function (path/file.py:line)`` shortened to ``function (file.py)``."""
    found = re.match(r"(.*) \((.*?):?\d*\)$", frame)
    if not found:
        return frame
    name, where = found.groups()
    where = where.rsplit(":", 1)[0]
    parts = where.split("/")
    return f"{name} ({'/'.join(parts[-2:])})"


def start_py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("py-spy not found: pip install py-spy into the venv to profile")
        return None
    return subprocess.Popen(
        [
            *(exe, "record", "--pid", str(pid)),
            *("--duration", str(max(1, int(seconds)))),
            *("--rate", "250", "--format", "raw", "--output", str(out)),
            *("--nonblocking", "--threads", "--gil"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


# -- main ---------------------------------------------------------------------------


def _rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--fsync", choices=("batch", "interval", "none"), default="batch")
    add(
        "--journal-writer",
        choices=("process", "thread"),
        default="process",
        help="where the server's journal writes (default process)",
    )
    add("--conns", type=int, default=4, help="order connections (default 4)")
    add("--procs", type=int, default=2, help="order processes (default 2)")
    add("--rates", type=_rates, default=[5000, 20000], help="e.g. 5000,20000")
    add("--duration", type=float, default=10.0, help="seconds a rate (default 10)")
    add("--warmup", type=float, default=2.0, help="seconds at 1,000/s first")
    add("--grace", type=float, default=5.0, help="seconds to wait for late acks")
    add("--ramp-start", type=float, default=2500)
    add("--ramp-step", type=float, default=2500)
    add("--ramp-max", type=float, default=60000)
    add("--ramp-duration", type=float, default=5.0)
    add("--no-ramp", action="store_true")
    add("--max-p99-ms", type=float, default=250.0, help="sustained: p99 at most")
    add("--subscribers", type=int, default=200)
    add("--sub-procs", type=int, default=2)
    add("--fanout-rates", type=_rates, default=[1000, 5000])
    add("--fanout-duration", type=float, default=10.0)
    add("--max-live", type=int, default=300, help="live orders a connection")
    add("--max-queue", type=int, default=10_000, help="the server's max_queue")
    add("--snapshot-every", type=int, default=100_000)
    add("--deflate", action="store_true", help="clients offer permessage-deflate")
    add("--py-spy", type=Path, default=None, metavar="FILE", help="profile server")
    add("--profile-rate", type=float, default=None, help="rate to profile at")
    add("--seed", type=int, default=7)
    add("--keep", action="store_true", help="keep the data folder")
    add(
        "--server-root", type=Path, default=ROOT, metavar="DIR",
        help="run the server from this checkout (e.g. a git worktree, for A/B)",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # So that `finally` stops the server and the generators on SIGTERM.
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = Path(tempfile.mkdtemp(prefix="cux-server-bench-"))
    ok = True
    try:
        ok = _run(args, folder)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if args.keep:
            print(f"data folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


def _run(args: argparse.Namespace, folder: Path) -> bool:
    conns = max(1, args.conns)
    procs = max(1, min(args.procs, conns))
    config = write_config(
        folder,
        conns,
        args.fsync,
        args.max_queue,
        args.snapshot_every,
        args.journal_writer,
    )
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; fsync {args.fsync}, "
        f"journal writer {args.journal_writer}; "
        f"{conns} order connections in {procs} processes"
        + (", permessage-deflate" if args.deflate else "")
    )
    server = Server(config, folder / "data", args.server_root)
    accounts = [account_key(i) for i in range(conns)]
    split = [accounts[i::procs] for i in range(procs)]
    specs = [
        {"kind": "orders", "accounts": part, "seed": args.seed + i,
         "max_live": args.max_live, "deflate": args.deflate}
        for i, part in enumerate(split)
    ]  # fmt: skip
    workers = Workers(server.port, specs)
    ok = True
    try:
        if args.warmup > 0:
            run_rate(server, workers, 1000, args.warmup, args.grace)

        print("\n### Steady rates\n")
        print(RATE_HEADER)
        results: list[RateResult] = []
        # The first steady step at this rate is profiled, else the first
        # fan-out step at it.
        rates = args.rates or args.fanout_rates
        profile_rate = args.profile_rate or (rates[-1] if rates else None)
        profiled = ""
        for rate in args.rates:
            spy = None
            if args.py_spy is not None and not profiled and rate == profile_rate:
                spy = start_py_spy(server.pid, args.duration, args.py_spy)
                profiled = f"{rate:,.0f} orders/s"
            r = run_rate(server, workers, rate, args.duration, args.grace)
            _spy_done(spy)
            settle(server, workers, r, args.max_live, args.grace)
            results.append(r)
            print(rate_row(r), flush=True)
            if r.answered == 0:
                ok = False
        for r in results:
            _explain(r, args.max_p99_ms)

        if not args.no_ramp and args.ramp_max >= args.ramp_start > 0:
            print("\n### Ramp\n")
            head, rule = RATE_HEADER.split("\n")
            print(f"{head} verdict |\n{rule}---|")
            rate = args.ramp_start
            best = 0.0
            while rate <= args.ramp_max and server.alive():
                r = run_rate(server, workers, rate, args.ramp_duration, args.grace)
                verdict = "sustained" if r.sustained(args.max_p99_ms) else "behind"
                if r.generator_bound():
                    verdict += ", generator short of target"
                print(rate_row(r)[:-1] + f"| {verdict} |", flush=True)
                if not r.sustained(args.max_p99_ms):
                    settle(server, workers, r, args.max_live, args.grace)
                    break
                best = rate
                rate += args.ramp_step
                time.sleep(0.5)
            print(
                f"\nhighest sustained rate: {best:,.0f} orders/s "
                f"(>= 95% acked within the step, p99 <= {args.max_p99_ms:g} ms)"
            )

        if args.subscribers > 0 and server.alive():
            n = args.subscribers
            sub_procs = max(1, min(args.sub_procs, n))
            sub_specs = [
                {"kind": "subs", "count": n // sub_procs + (i < n % sub_procs),
                 "deflate": args.deflate}
                for i in range(sub_procs)
            ]  # fmt: skip
            subs = Workers(server.port, sub_specs)
            try:
                print("\n### Market-data fan-out: book.cpu-SPOT + trades.cpu-SPOT\n")
                print(FANOUT_HEADER)
                for rate in args.fanout_rates:
                    spy = None
                    wanted = args.py_spy is not None and rate == profile_rate
                    if wanted and not profiled:
                        duration = args.fanout_duration
                        spy = start_py_spy(server.pid, duration, args.py_spy)
                        profiled = f"{rate:,.0f} orders/s with {n} subscribers"
                    f = run_fanout(
                        server, workers, subs, rate, args.fanout_duration, args.grace
                    )
                    _spy_done(spy)
                    print(fanout_row(f), flush=True)
                    settle(server, workers, f.rate, args.max_live, args.grace)
                    if f.subscribers and max(f.book, default=0) == 0:
                        ok = False
                    time.sleep(1.0)
            finally:
                subs.stop()
            print(
                f"\nserver log: {server.count('fell behind')} 'fell behind' "
                f"(resync) and {server.count('slow consumer')} 'slow consumer' "
                "warnings in all"
            )
    finally:
        workers.stop()
        alive = server.alive()
        rc = server.stop()
        if not alive or rc != 0:
            ok = False
            print("cux serve failed:\n" + "".join(server.lines[-30:]))
    if profiled and args.py_spy is not None and args.py_spy.exists():
        print(f"\n### Server profile at {profiled} (py-spy)\n")
        print(summarise_profile(args.py_spy))
    return ok


def _spy_done(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is None:
        return
    _, err = spy.communicate(timeout=60)
    if spy.returncode != 0:
        print(f"py-spy failed: {err.decode(errors='replace')[-500:]}")


def settle(
    server: Server, workers: Workers, last: RateResult, max_live: int, grace: float
) -> None:
    """After an overload: wait for every reply, then cancel the orders that
    piled up beyond ``max_live`` a connection (their acks came too late for
    the schedule to cancel them), so that the next step starts from a book
    of the usual size. Not timed."""
    workers.drain(120)
    excess = last.live - workers.conns * max_live
    if excess > 0:
        rate = 3000.0
        run_rate(server, workers, rate, excess / rate + 0.5, grace)
        workers.drain(120)


def _explain(r: RateResult, max_p99_ms: float) -> None:
    notes = []
    if r.shed:
        notes.append(
            f"{r.shed:,} orders not sent while the replies were over "
            f"{MAX_BEHIND_S:g} s behind"
        )
    if r.generator_bound():
        notes.append(f"the generators sent only {r.sent_rate:,.0f}/s")
    if r.errors:
        notes.append(
            "errors: " + ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items()))
        )
    print(
        f"- {r.target:,.0f}/s: {'sustained' if r.sustained(max_p99_ms) else 'behind'}"
        f"; sends late on schedule by {r.late_mean * 1e3:.2f} ms on average "
        f"(max {r.late_max * 1e3:.1f} ms); {r.live:,} orders live at the end"
        + ("; " + "; ".join(notes) if notes else "")
    )


if __name__ == "__main__":
    sys.exit(main())
