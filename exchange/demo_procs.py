"""The demo's child processes: one ``cux serve`` and the ``cux node``s.

Each child runs ``python -m exchange`` with this interpreter, writes its log
into ``DATA/logs/`` and, on Linux, is told by the kernel to stop (SIGTERM)
if the demo itself dies without stopping it. `Children.stop` stops them in
order — the nodes first, so that they cancel their quotes while the server
still listens, then the server — each with SIGTERM, then SIGKILL for one that
has not exited in time, and waits for every one: none is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from exchange.demo_market import CLASS, LOT_CU, TICK, NodeSpec

__all__ = ["Child", "Children", "DemoStartError"]

log = logging.getLogger("cux.demo")

_LISTENING = re.compile(rb"listening on (http://[\d.]+:(\d+))")
_PR_SET_PDEATHSIG = 1


class DemoStartError(Exception):
    """A child process did not start: the message says which and why."""


@dataclass
class Child:
    """One child process and where its output goes."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """The server and the nodes the demo started (see the module doc)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.logs = data / "logs"
        self.server: Child | None = None
        self.nodes: list[Child] = []
        self._pumps: list[asyncio.Task[None]] = []

    @property
    def all(self) -> list[Child]:
        server = [self.server] if self.server is not None else []
        return [*self.nodes, *server]

    async def start_server(self, config: Path, host: str, port: int) -> str:
        """Start ``cux serve`` and wait for its "listening" line; its address
        (``http://host:port``).

        Raises:
            DemoStartError: it exited, or said nothing, within 60 s; its
                message is one line (the port is taken, or the log's last
                line).
        """
        self.logs.mkdir(parents=True, exist_ok=True)
        path = self.logs / "server.log"
        process = await _spawn(
            [
                *("serve", "--config", str(config), "--host", host),
                *("--port", str(port), "--data", str(self.data)),
            ],
            asyncio.subprocess.PIPE,
        )
        self.server = Child("cux serve", process, path)
        sink = path.open("wb")
        assert process.stdout is not None
        try:
            address = await asyncio.wait_for(_listening(process.stdout, sink), 60)
        except (TimeoutError, EOFError):
            sink.close()
            # Its log is complete once it has exited.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
            raise DemoStartError(_why_not_started(self.server, host, port)) from None
        self._pumps.append(asyncio.create_task(_pump(process.stdout, sink)))
        return address

    async def start_node(self, spec: NodeSpec, url: str, seed: int) -> Child:
        """Start ``cux node`` for ``spec`` against ``url`` (``ws://…/ws``)."""
        path = self.logs / f"{spec.node_id}.log"
        with path.open("wb") as sink:
            process = await _spawn(
                [
                    "node",
                    "--exchange",
                    url,
                    "--key",
                    spec.account,
                    "--secret",
                    f"{spec.account}-secret",
                    "--class",
                    CLASS,
                    "--lot-cu",
                    str(LOT_CU),
                    "--tick",
                    str(TICK),
                    "--node-id",
                    spec.node_id,
                    "--cost-per-hour",
                    spec.usd_per_hour,
                    "--markup-min-bps",
                    str(spec.markup_min_bps),
                    "--markup-max-bps",
                    str(spec.markup_max_bps),
                    "--max-cu-per-second",
                    str(spec.cu_per_second),
                    "--probe-seconds",
                    "1",
                    "--heartbeat-seconds",
                    "2",
                    "--seed",
                    str(seed),
                ],
                sink,
            )
        child = Child(spec.node_id, process, path)
        self.nodes.append(child)
        return child

    async def stop(self, timeout: float = 15.0) -> list[str]:
        """Stop every child: the nodes, then the server; wait for each.
        A line for each child that had to be killed or exited with an error."""
        notes = await _stop_all(self.nodes, timeout)
        if self.server is not None:
            notes += await _stop_all([self.server], timeout)
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        return notes


def _why_not_started(server: Child, host: str, port: int) -> str:
    """One line on why ``cux serve`` did not start, from its log."""
    tail = server.log_tail(40)
    if "address already in use" in tail.lower():
        return (
            f"port {port} on {host} is taken: stop what listens there, or give "
            "another --port (0 picks a free one)"
        )
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    last = lines[-1] if lines else "it said nothing"
    return f"cux serve did not start: {last} (its log: {server.log_path})"


async def _spawn(
    args: list[str], stdout: int | IO[bytes]
) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exchange",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        # Its own process group: a Ctrl-C in the terminal reaches the demo
        # only, which then stops its children in order.
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the demo's process dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


async def _listening(stream: asyncio.StreamReader, sink: IO[bytes]) -> str:
    while line := await stream.readline():
        sink.write(line)
        sink.flush()
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode()
    raise EOFError


async def _pump(stream: asyncio.StreamReader, sink: IO[bytes]) -> None:
    try:
        while line := await stream.readline():
            sink.write(line)
            sink.flush()
    finally:
        sink.close()


async def _stop_all(children: list[Child], timeout: float) -> list[str]:
    for child in children:
        if child.running:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
    notes = []
    for child in children:
        try:
            code = await asyncio.wait_for(child.process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            code = await child.process.wait()
            notes.append(f"{child.name} did not stop in {timeout:.0f} s: killed")
            continue
        if code not in (0, -signal.SIGTERM):
            notes.append(f"{child.name} exited with status {code}")
            log.warning("%s exited with status %s", child.name, code)
    return notes
