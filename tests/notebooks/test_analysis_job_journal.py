"""The replay analysis of a job that a real `cux serve` dispatched to a real node.

A provider's ``cux node`` (the real model, capped at 0.1 CU/s so that its
quote is a few 10-CU lots) quotes ``emb-SPOT``; alice submits a job order of
24 sentences at the ``balanced`` tier (3 of the model's 6 layers). What the
server journaled must give back, through the analysis, what the server told
alice and her provider: the job's FLOPs, its full-depth cost, the provider's
earnings and the leases used up.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from server_harness import ROOT, ServerProcess, connected

from exchange.analysis import open_market
from exchange.analysis_compute import leases, providers
from exchange.analysis_jobs import JobTotals, job_totals, jobs

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


def balances(server: ServerProcess, key: str) -> dict[str, int]:
    body: dict[str, int] = server.get_signed(key, "/api/v1/account").body
    return body


def test_a_dispatched_jobs_journal_gives_its_flops_savings_and_provider_earnings(
    tmp_path: Path,
) -> None:
    (tmp_path / "cux.toml").write_text(CONFIG, encoding="utf-8")
    with ServerProcess(tmp_path / "cux.toml", tmp_path / "data") as server:
        node = start_node(server)
        try:
            wait_for_quote(server, node)
            before = balances(server, "p1")
            job = asyncio.run(job_order(server.url))
            earned = balances(server, "p1")["available"] - before["available"]
            health = server.get("/health?state_hash=1").body
        finally:
            node.terminate()
            logs = node.communicate(timeout=30)[0]
    assert job["status"] == "done", (job, logs)

    replay = open_market(
        tmp_path / "data",
        expected_hash=health["state_hash"],
        expected_seq=health["seq"],
    )

    replay.verify()
    (found,) = jobs(replay)
    assert (found.account, found.symbol, found.tier, found.inputs, found.status) == (
        "alice", SYMBOL, "balanced", 24, "done"
    )  # fmt: skip
    assert (found.flops, found.full_flops) == (job["flops"], job["full_flops"])
    assert found.budget_flops == job["budget_flops"] == 1000 * 10**9
    # The balanced tier runs 3 of 6 layers: exactly half the full-depth FLOPs.
    assert found.saved_flops * 2 == found.full_flops
    assert job_totals([found])[-1] == JobTotals(
        "all", 1, 1, 24, job["flops"], job["full_flops"]
    )
    (p1,) = providers(replay)
    assert (p1.account, p1.used_flops, p1.revenue) == ("p1", job["flops"], earned)
    assert {lease.state for lease in leases(replay)} == {"used_up"}
    assert sum(lease.used_flops for lease in leases(replay)) == job["flops"]
