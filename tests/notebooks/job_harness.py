"""A journal with a real job: a real `cux serve` dispatched it to a real node.

`job_journal` (a session fixture; import it into a test module to use it)
starts ``cux serve`` with a class ``emb`` of 10-CU lots and a provider ``p1``
whose ``cux node`` (the real model, capped at 0.1 CU/s so that its quote is a
few lots) quotes ``emb-SPOT``; alice submits a job order of 24 sentences at
the ``balanced`` tier (3 of the model's 6 layers) and waits for its end. The
fixture keeps what the server told alice and her provider, stops the node,
and once the server has seen it leave keeps its last sequence number and
state hash (those of the whole journal), then stops the server.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_harness import ROOT, ServerProcess, connected

SYMBOL = "emb-SPOT"
CONFIG = """
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
"""
WAIT_SECONDS = 180
TEXTS = [f"Sentence {i} is embedded on a leased node and metered." for i in range(24)]


@dataclass(frozen=True)
class JobJournal:
    """A data folder with one dispatched job, and what the server said.

    Attributes:
        data: the data folder (``journal/``, ``snapshots/``).
        seq: the server's last sequence number.
        state_hash: the server engine's state hash at ``seq``.
        job: the job as ``get_job`` gave it at its end.
        earned: what the provider's available balance gained, µcr.
        logs: the node's output.
    """

    data: Path
    seq: int
    state_hash: str
    job: dict[str, Any]
    earned: int
    logs: str


def start_node(server: ServerProcess) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "exchange", "node",
            "--exchange", server.url, "--key", "p1", "--secret", "p1-secret",
            "--class", "emb", "--lot-cu", "10", "--node-id", "n1",
            "--max-cu-per-second", "0.1", "--probe-seconds", "0.3",
            "--heartbeat-seconds", "0.5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def wait_for_quote(server: ServerProcess, node: subprocess.Popen[str]) -> None:
    """Until the node's quote rests on the book (or the node has exited)."""
    give_up = time.monotonic() + WAIT_SECONDS  # a hung node, not a slow one
    while not server.get(f"/api/v1/book/{SYMBOL}").body["asks"]:
        assert node.poll() is None, node.communicate()[0]
        assert time.monotonic() < give_up, "the node never quoted"
        time.sleep(0.1)


async def job_order(url: str) -> dict[str, Any]:
    """Alice's job order, run to its end; the job as ``get_job`` gives it."""
    async with connected(url, "alice") as alice:
        ack = await alice.request(
            "submit_job",
            symbol=SYMBOL,
            inputs=TEXTS,
            tier="balanced",
            budget_cu=1000,
            max_price=10**6,
        )
        assert ack["type"] == "ack", ack
        give_up = time.monotonic() + WAIT_SECONDS
        while True:
            reply = await alice.request("get_job", job_id=ack["job_id"])
            if reply["job"]["status"] != "running":
                job: dict[str, Any] = reply["job"]
                return job
            assert time.monotonic() < give_up, reply
            await asyncio.sleep(0.2)


def wait_for_capacity_gone(server: ServerProcess) -> None:
    """Until the exchange has seen the node's connection close."""
    give_up = time.monotonic() + WAIT_SECONDS
    while server.get("/api/v1/nodes").body["nodes"]:
        assert time.monotonic() < give_up, "the node never left"
        time.sleep(0.1)


def available(server: ServerProcess, key: str) -> int:
    body: dict[str, int] = server.get_signed(key, "/api/v1/account").body
    return body["available"]


def write_job_journal(folder: Path) -> JobJournal:
    """Run the market of the module docstring in ``folder``; what it wrote."""
    (folder / "cux.toml").write_text(CONFIG, encoding="utf-8")
    with ServerProcess(folder / "cux.toml", folder / "data") as server:
        node = start_node(server)
        try:
            wait_for_quote(server, node)
            before = available(server, "p1")
            job = asyncio.run(job_order(server.url))
            earned = available(server, "p1") - before
        finally:
            node.terminate()
            logs = node.communicate(timeout=30)[0]
        # Read once the node has gone (its leaving is journaled too): the
        # hash of the whole journal, which the notebook checks at its end.
        wait_for_capacity_gone(server)
        health = server.get("/health?state_hash=1").body
    return JobJournal(
        folder / "data", health["seq"], health["state_hash"], job, earned, logs
    )


@pytest.fixture(scope="session")
def job_journal(tmp_path_factory: pytest.TempPathFactory) -> JobJournal:
    return write_job_journal(tmp_path_factory.mktemp("job-journal"))
