"""``cux node`` against a real ``cux serve``: it registers, quotes, re-quotes
after a real fill and leaves an empty book behind on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from server_harness import ROOT, ServerProcess, connected, write_config


def asks(server: ServerProcess) -> list[list[int]]:
    book: dict[str, Any] = server.get("/api/v1/book/cpu-SPOT").body
    return book["asks"]  # type: ignore[no-any-return]


def wait_until(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


async def buy(url: str, qty: int) -> dict[str, Any]:
    async with connected(url, "alice") as alice:
        reply: dict[str, Any] = await alice.request(
            "place",
            symbol="cpu-SPOT",
            side="buy",
            qty=qty,
            price=10_000,
            tif="IOC",
        )
        return reply


def test_a_node_process_quotes_on_a_real_server_and_re_quotes_after_a_fill(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    with ServerProcess(config, tmp_path / "data") as server:
        node = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exchange",
                "node",
                "--exchange",
                server.url,
                "--key",
                "bob",
                "--secret",
                "bob-secret",
                "--probe-seconds",
                "0.3",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        try:
            [[price, lots]] = wait_until(lambda: asks(server))
            nodes = server.get("/api/v1/nodes").body["nodes"]
            assert [n["node_id"] for n in nodes] == ["node-1"]

            reply = asyncio.run(buy(server.url, 1))
            assert reply["type"] == "ack", reply
            [[new_price, _]] = wait_until(
                lambda: [a for a in asks(server) if a[1] == lots - 1]
            )
            assert new_price >= price

            node.send_signal(signal.SIGTERM)
            output, _ = node.communicate(timeout=15)
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()

        assert node.returncode == 0, output
        assert asks(server) == []
