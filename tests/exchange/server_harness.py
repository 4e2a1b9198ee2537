"""A real `cux serve` process and a plain websocket client, for end-to-end tests.

`ServerProcess` starts ``python -m exchange serve`` on a free loopback port with
a configuration file and a data folder of the test's own, and waits for its
"listening" line; a thread keeps reading its output, so that a chatty server
never blocks on a full pipe. `Client` speaks the protocol with the `websockets`
library only: JSON text frames, nothing of the project's own client code.
`http_get` and `signed_headers` call the REST API; `replay_report` and
`recovered_engine` read what a data folder holds once the server has stopped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
import websockets

from exchange.journal.recovery import recover_folder
from exchange.settings import load
from matching import Engine
from matching.state import snapshot

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[server]
fsync = "{fsync}"
heartbeat_seconds = {heartbeat_seconds}
rate_limit = {rate_limit}
max_queue = {max_queue}
snapshot_every = {snapshot_every}
{server_extra}

[[classes]]
name = "cpu"
lot_cu = 100
tick = 1
taker_fee_bps = 10
maker_fee_bps = 0

[[accounts]]
key = "alice"
secret = "alice-secret"
deposit = 1_000_000_000
roles = ["consumer"]

[[accounts]]
key = "bob"
secret = "bob-secret"
deposit = 1_000_000_000
roles = ["consumer", "provider"]
capacity = {{ cpu-SPOT = 100000 }}

[[accounts]]
key = "carol"
secret = "carol-secret"
deposit = 1_000_000_000
roles = ["consumer", "provider"]
capacity = {{ cpu-SPOT = 100000 }}

[[accounts]]
key = "operator"
secret = "operator-secret"
roles = ["operator"]
{extra}
"""

SECRETS = {
    "alice": "alice-secret",
    "bob": "bob-secret",
    "carol": "carol-secret",
    "operator": "operator-secret",
}


def secret_of(key: str) -> str:
    """An account's secret: the one in `SECRETS`, else ``<key>-secret`` (the
    convention for accounts a test adds with ``extra``)."""
    return SECRETS.get(key, f"{key}-secret")


def desk_config(name: str, *, tick: int = 1, spot_phase: str = "continuous") -> str:
    """TOML for a resource class ``name`` (so the instrument ``<name>-SPOT``),
    with a 10 bps taker fee and no maker fee, and two accounts of its own with
    1,000 credits each: ``<name>-buyer`` (consumer) and ``<name>-seller``
    (consumer and provider, with capacity to sell 100,000 lots of it). Tests
    that share a server each take a desk, so their books and balances are
    their own."""
    return f"""
[[classes]]
name = "{name}"
lot_cu = 100
tick = {tick}
taker_fee_bps = 10
maker_fee_bps = 0
spot_phase = "{spot_phase}"

[[accounts]]
key = "{name}-buyer"
secret = "{name}-buyer-secret"
deposit = 1_000_000_000
roles = ["consumer"]

[[accounts]]
key = "{name}-seller"
secret = "{name}-seller-secret"
deposit = 1_000_000_000
roles = ["consumer", "provider"]
capacity = {{ {name}-SPOT = 100000 }}
"""


def write_config(
    folder: Path,
    *,
    rate_limit: int = 100_000,
    max_queue: int = 10_000,
    snapshot_every: int = 100_000,
    heartbeat_seconds: float = 5,
    fsync: str = "batch",
    extra: str = "",
    server_extra: str = "",
) -> Path:
    """Write the test market's configuration into ``folder``; ``extra`` is TOML
    appended to it (more ``[[classes]]`` or ``[[accounts]]``), ``server_extra``
    more keys of its ``[server]`` table."""
    path = folder / "cux.toml"
    path.write_text(
        CONFIG.format(
            rate_limit=rate_limit,
            max_queue=max_queue,
            snapshot_every=snapshot_every,
            heartbeat_seconds=heartbeat_seconds,
            fsync=fsync,
            extra=extra,
            server_extra=server_extra,
        ),
        encoding="utf-8",
    )
    return path


class ServerProcess:
    """``cux serve`` running as a child process."""

    def __init__(self, config: Path, data: Path, *extra: str) -> None:
        self.config = config
        self.data = data
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exchange",
                "serve",
                "--config",
                str(config),
                "--data",
                str(data),
                "--port",
                "0",
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._read_output, daemon=True)
        self._pump.start()
        self.port = self._wait_for_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.http = f"http://127.0.0.1:{self.port}"

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_port(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            found = re.search(r"listening on http://[\d.]+:(\d+)", line)
            if found:
                return int(found.group(1))
        self.proc.kill()
        self._pump.join(5)
        raise RuntimeError("cux serve did not start:\n" + "".join(self.output))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit status; its whole output is in
        `output` afterwards."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._pump.join(5)
        return rc

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def text(self) -> str:
        """Everything the server printed so far."""
        return "".join(self.output)

    def rss_kb(self) -> int:
        """The server's resident memory now, in KiB (``VmRSS``)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert found is not None, status
        return int(found.group(1))

    def get(self, path_qs: str, headers: dict[str, str] | None = None) -> HttpReply:
        """GET ``path_qs`` (``/api/v1/...``) from the server."""
        return http_get(self.http + path_qs, headers)

    def get_signed(self, key: str, path_qs: str) -> HttpReply:
        """GET a signed route as ``key``."""
        return self.get(path_qs, signed_headers(key, "GET", path_qs))


class Client:
    """A plain websocket client: sends requests, sorts what comes back.

    Responses (``ack``, ``error``, ``result``, ``subscribed``, ``pong``) are
    matched to requests by id; every other message is kept by type in
    `messages`, in arrival order, and in `stream`.
    """

    def __init__(self, ws: Any, nonce: str) -> None:
        self.ws = ws
        self.nonce = nonce
        self.next_id = 1
        self.responses: dict[int, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.stream: list[dict[str, Any]] = []
        self.closed: Any = None
        self._reader = asyncio.ensure_future(self._read())
        self._arrived = asyncio.Event()

    @classmethod
    async def connect(cls, url: str, source: str | None = None) -> Client:
        """Connect to ``url``, from the loopback address ``source`` if given
        (any of 127.0.0.0/8: a remote address of its own for the server)."""
        if source is None:
            ws = await websockets.connect(url, max_size=2**24)
        else:
            ws = await websockets.connect(url, max_size=2**24, local_addr=(source, 0))
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        return cls(ws, hello["nonce"])

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                rid = message.get("id")
                if message["type"] in ("ack", "error", "result", "subscribed", "pong"):
                    if rid is not None:
                        self.responses[rid] = message
                    else:
                        self.messages[message["type"]].append(message)
                else:
                    self.messages[message["type"]].append(message)
                    self.stream.append(message)
                self._arrived.set()
        except websockets.ConnectionClosed as exc:
            self.closed = exc
        finally:
            if self.closed is None:
                self.closed = True
            self._arrived.set()

    @property
    def close_code(self) -> int | None:
        """The code of the server's close frame, once one came."""
        received = self.ws.protocol.close_rcvd
        return None if received is None else int(received.code)

    @property
    def close_reason(self) -> str | None:
        """The reason of the server's close frame, once one came."""
        received = self.ws.protocol.close_rcvd
        return None if received is None else str(received.reason)

    async def wait_closed(self, timeout: float = 10.0) -> None:
        """Wait until the connection is closed."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def request(
        self, op: str, timeout: float = 10.0, **fields: Any
    ) -> dict[str, Any]:
        """Send a request with the next id and wait for its response."""
        rid = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({"op": op, "id": rid, **fields}))
        return await self.response(rid, timeout)

    async def response(self, rid: int, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while rid not in self.responses:
            if self.closed is not None:
                raise ConnectionError(f"closed before response {rid}: {self.closed}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response to request {rid}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return self.responses.pop(rid)

    async def wait_for(
        self, kind: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` messages of type ``kind`` arrived; return them."""
        deadline = time.monotonic() + timeout
        while len(self.messages[kind]) < count:
            left = deadline - time.monotonic()
            if left <= 0 or self.closed is not None:
                raise TimeoutError(
                    f"{len(self.messages[kind])} of {count} {kind} messages"
                )
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return self.messages[kind]

    async def login(
        self, key: str, secret: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        signature = hmac.new(
            (secret or secret_of(key)).encode(), self.nonce.encode(), hashlib.sha256
        ).hexdigest()
        return await self.request("login", key=key, signature=signature, **extra)

    async def request_many(
        self, requests: list[dict[str, Any]], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Send ``requests`` (each an op and its fields) back to back, then wait
        for all their responses, in order."""
        ids = []
        for fields in requests:
            rid = self.next_id
            self.next_id += 1
            ids.append(rid)
            await self.ws.send(json.dumps({**fields, "id": rid}))
        return [await self.response(rid, timeout) for rid in ids]

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


@contextlib.asynccontextmanager
async def connected(
    url: str, key: str | None = None, *, source: str | None = None, **login: Any
) -> AsyncIterator[Client]:
    """A `Client` for the length of the block, logged in as ``key`` unless None;
    connected from ``source`` (see `Client.connect`)."""
    client = await Client.connect(url, source)
    try:
        if key is not None:
            reply = await client.login(key, **login)
            assert reply["type"] == "ack", reply
        yield client
    finally:
        await client.close()


@dataclass(frozen=True)
class HttpReply:
    """An HTTP answer: its status, content type and body (JSON decoded when the
    content type says JSON, else text)."""

    status: int
    content_type: str
    body: Any


def http_get(url: str, headers: dict[str, str] | None = None) -> HttpReply:
    """GET ``url``; an HTTP error status is an answer like any other."""
    return http_send(url, "GET", None, headers)


def http_send(
    url: str, method: str, body: bytes | None, headers: dict[str, str] | None = None
) -> HttpReply:
    """Send ``method`` with ``body`` to ``url``; an HTTP error status is an
    answer like any other."""
    request = urllib.request.Request(
        url, data=body, headers=headers or {}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, kind, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, kind, raw = error.code, error.headers, error.read()
    content_type = kind.get("Content-Type", "")
    text = raw.decode()
    body = json.loads(text) if content_type.startswith("application/json") else text
    return HttpReply(status, content_type, body)


def replay_report(data: Path) -> dict[str, Any]:
    """What ``python -m exchange replay --json DATA`` reports (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "exchange", "replay", "--json", str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def recovered_engine(data: Path, config: Path) -> Engine:
    """The engine a server would start with from ``data`` (its newest snapshot
    and the records after it), recovered from a copy so ``data`` is untouched."""
    market = load(config).market
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "data"
        shutil.copytree(data, copy, ignore=shutil.ignore_patterns("LOCK"))
        return recover_folder(copy, market, lambda fd: None).engine


def market_hash(engine: Engine, forget_closed_of: tuple[str, ...] = ()) -> str:
    """The engine's state hash without its clock and sequence number, which
    every command moves, a rejected one too; and without the ids of closed
    orders of the accounts ``forget_closed_of`` (an order that fills nothing
    and is cancelled at once leaves only that behind)."""
    numbers = {engine.ledger.index(account) for account in forget_closed_of}
    state = msgspec.structs.replace(
        snapshot(engine),
        seq=0,
        now=0,
        closed=[c for c in snapshot(engine).closed if c[1] not in numbers],
    )
    return hashlib.sha256(msgspec.msgpack.encode(state)).hexdigest()


def signed_headers(
    key: str, method: str, path_qs: str, *, when: int | None = None
) -> dict[str, str]:
    """The headers of a signed REST request, stamped ``when`` (ns; default now)."""
    stamp = str(time.time_ns() if when is None else when)
    message = f"{stamp}\n{method}\n{path_qs}"
    signature = hmac.new(
        secret_of(key).encode(), message.encode(), hashlib.sha256
    ).hexdigest()
    return {"X-Cux-Key": key, "X-Cux-Timestamp": stamp, "X-Cux-Signature": signature}


class RawWebSocket:
    """A websocket client on a bare socket, for clients that misbehave: it reads
    only when told to, so the server sees a peer that stops reading, with as
    small a receive buffer as the kernel allows.

    Args:
        port: the server's port on 127.0.0.1.
        receive_buffer: ``SO_RCVBUF`` in bytes, set before connecting.
    """

    def __init__(self, port: int, receive_buffer: int = 4096) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /ws HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._recv()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def send(self, message: dict[str, Any]) -> None:
        """Send one masked text frame with ``message`` as JSON."""
        self.send_frame(0x1, json.dumps(message).encode())

    def send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._buffer += self._recv()
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """The next frame from the server: its opcode and payload."""
        first, second = self._take(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", self._take(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", self._take(8))
        return first & 0x0F, self._take(size)

    def read_messages(self) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
        """Every text message until the server closes: the messages, and the
        close frame's code and reason (None if the socket ended without one)."""
        messages: list[dict[str, Any]] = []
        while True:
            try:
                opcode, payload = self.read_frame()
            except (ConnectionError, TimeoutError):
                return messages, None
            if opcode == 0x1:
                messages.append(json.loads(payload))
            elif opcode == 0x8:
                (code,) = struct.unpack("!H", payload[:2])
                return messages, (code, payload[2:].decode())
            elif opcode == 0x9:
                self.send_frame(0xA, payload)

    def close(self) -> None:
        self.sock.close()


def book_checksum(bids: list[list[int]], asks: list[list[int]]) -> int:
    """DESIGN section 8's checksum, written out here rather than imported: the
    CRC32 of the top 10 bids and asks (best first), ``price:qty`` joined by
    ``,``, the two sides by ``|``."""
    text = "|".join(",".join(f"{p}:{q}" for p, q in side[:10]) for side in (bids, asks))
    return zlib.crc32(text.encode())


class BookMirror:
    """A client's copy of one book channel, built from its snapshot and
    updates; `apply` checks the sequence numbers and every checksum."""

    def __init__(self) -> None:
        self.seq: int | None = None
        self.sides: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.depth: int | None = None

    def apply(self, message: dict[str, Any]) -> None:
        if message.get("snapshot"):
            self.sides = ({}, {})
            self.depth = message.get("depth")
        else:
            assert self.seq is not None, "an update before the snapshot"
            assert message["seq"] == self.seq + 1, (self.seq, message)
        for side, levels in zip(
            self.sides, (message["bids"], message["asks"]), strict=True
        ):
            for price, qty in levels:
                if qty == 0:
                    assert price in side, f"delete of a level not there: {message}"
                    del side[price]
                else:
                    side[price] = qty
        self.seq = message["seq"]
        bids, asks = self.levels()
        if self.depth is not None:
            assert len(bids) <= self.depth, message
            assert len(asks) <= self.depth, message
        assert book_checksum(bids, asks) == message["checksum"], message

    def levels(self) -> tuple[list[list[int]], list[list[int]]]:
        """Bids and asks as ``[price, qty]``, best first."""
        bids, asks = self.sides
        return (
            [[p, bids[p]] for p in sorted(bids, reverse=True)],
            [[p, asks[p]] for p in sorted(asks)],
        )
