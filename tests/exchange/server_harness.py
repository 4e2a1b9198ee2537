"""A real `cux serve` process and a plain websocket client, for end-to-end tests.

`ServerProcess` starts ``python -m exchange serve`` on a free loopback port with
a configuration file and a data folder of the test's own, and waits for its
"listening" line. `Client` speaks the protocol with the `websockets` library
only: JSON text frames, nothing of the project's own client code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[server]
fsync = "batch"
heartbeat_seconds = 5
rate_limit = {rate_limit}
max_queue = {max_queue}
snapshot_every = {snapshot_every}

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
"""

SECRETS = {
    "alice": "alice-secret",
    "bob": "bob-secret",
    "carol": "carol-secret",
    "operator": "operator-secret",
}


def write_config(
    folder: Path,
    *,
    rate_limit: int = 100_000,
    max_queue: int = 10_000,
    snapshot_every: int = 100_000,
) -> Path:
    path = folder / "cux.toml"
    path.write_text(
        CONFIG.format(
            rate_limit=rate_limit, max_queue=max_queue, snapshot_every=snapshot_every
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
        self.port = self._wait_for_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.http = f"http://127.0.0.1:{self.port}"

    def _wait_for_port(self, timeout: float = 30.0) -> int:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            found = re.search(r"listening on http://[\d.]+:(\d+)", line)
            if found:
                return int(found.group(1))
        self.proc.kill()
        rest = self.proc.stdout.read() if self.proc.stdout else ""
        raise RuntimeError("cux serve did not start:\n" + "".join(self.output) + rest)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit status; the rest of its output is
        kept in `output`."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if self.proc.stdout is not None:
            self.output.append(self.proc.stdout.read())
        return rc

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


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
    async def connect(cls, url: str) -> Client:
        ws = await websockets.connect(url, max_size=2**24)
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
            (secret or SECRETS[key]).encode(), self.nonce.encode(), hashlib.sha256
        ).hexdigest()
        return await self.request("login", key=key, signature=signature, **extra)

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


def signed_headers(key: str, method: str, path_qs: str) -> dict[str, str]:
    """The headers of a signed REST request."""
    stamp = str(time.time_ns())
    message = f"{stamp}\n{method}\n{path_qs}"
    signature = hmac.new(
        SECRETS[key].encode(), message.encode(), hashlib.sha256
    ).hexdigest()
    return {"X-Cux-Key": key, "X-Cux-Timestamp": stamp, "X-Cux-Signature": signature}
