"""A market with real provider nodes: the server, node processes, a consumer.

The class ``emb`` has small lots (10 CU) so that a job of a few dozen inputs
needs several of them; each node registers at most ``max_cu`` CU/s, so that a
node's quote covers only part of a job and a job order fills from several
providers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from server_harness import ROOT, ServerProcess

SYMBOL = "emb-SPOT"
LOT_CU = 10

CONFIG = """
[server]
heartbeat_seconds = 1

[dispatch]
shard_timeout_seconds = {timeout}

[[classes]]
name = "emb"
lot_cu = 10
tick = 1
taker_fee_bps = 10
maker_fee_bps = 5

[[accounts]]
key = "alice"
secret = "alice-secret"
deposit = 1_000_000_000
roles = ["consumer"]

[[accounts]]
key = "p1"
secret = "p1-secret"
roles = ["provider"]

[[accounts]]
key = "p2"
secret = "p2-secret"
roles = ["provider"]
"""

TEXTS = [
    f"Passage {i}: the exchange matches orders for compute, and each trade "
    f"becomes a lease whose jobs are metered in compute units ({i * 7 % 13})."
    for i in range(64)
]
"""64 inputs of some thirty tokens each."""


def write_config(folder: Path, timeout: float = 30) -> Path:
    path = folder / "cux.toml"
    path.write_text(CONFIG.format(timeout=timeout), encoding="utf-8")
    return path


def start_node(
    server: ServerProcess,
    key: str,
    node_id: str,
    *,
    cost_per_hour: float = 1.0,
    max_cu: float = 0.1,
    script: str | None = None,
) -> subprocess.Popen[str]:
    """``cux node`` for provider ``key`` (or ``script``, a test's own node)."""
    command = (
        [sys.executable, "-m", "exchange", "node"]
        if script is None
        else [sys.executable, script]
    )
    return subprocess.Popen(
        [
            *command,
            "--exchange",
            server.url,
            "--key",
            key,
            "--secret",
            f"{key}-secret",
            "--class",
            "emb",
            "--lot-cu",
            str(LOT_CU),
            "--node-id",
            node_id,
            "--cost-per-hour",
            str(cost_per_hour),
            "--max-cu-per-second",
            str(max_cu),
            "--probe-seconds",
            "0.3",
            "--heartbeat-seconds",
            "0.5",
            "--log-level",
            "INFO",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
    )


def wait_until(check: Any, timeout: float = 90.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def asks(server: ServerProcess) -> list[list[int]]:
    book: dict[str, Any] = server.get(f"/api/v1/book/{SYMBOL}").body
    return book["asks"]  # type: ignore[no-any-return]


def stop(*procs: subprocess.Popen[str]) -> str:
    """Stop node processes; their output."""
    out = []
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            text, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
        out.append(text or "")
    return "\n".join(out)
