"""``cux node`` against a real ``cux serve``: it registers with the shipped
quality profile, quotes, re-quotes after a real fill and leaves an empty book
behind on SIGTERM; started again while a lease it sold lives, it quotes the
rest until the lease ends; a class the server does not have stops it; it
prices with the class's own lot and tick; a second node with the same id stops
and the first keeps quoting."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from server_harness import ROOT, ServerProcess, connected, write_config

from providers.node_cli import default_node_id
from providers.profile import PROFILE_PATH

GPU = """
[[classes]]
name = "gpu"
lot_cu = 1000
tick = 10
"""


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


def shipped_tiers() -> dict[str, dict[str, Any]]:
    """The tiers of the quality profile that ships with cux, read from its
    file, with the numbers a node publishes: each tier's depth, CU fraction
    of full depth, cosine to full depth and paraphrase recall."""
    profile = json.loads(PROFILE_PATH.read_text(encoding="utf-8"))
    published = (
        "layers",
        "cu_fraction",
        "mean_cosine_to_exact",
        "min_cosine_to_exact",
        "recall_at_1",
    )
    return {t["tier"]: {k: t[k] for k in published} for t in profile["tiers"]}


def start_node(server: ServerProcess, *flags: str) -> subprocess.Popen[str]:
    """``cux node`` for provider ``bob``."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "exchange", "node", "--exchange", server.url),
            *("--key", "bob", "--secret", "bob-secret", "--probe-seconds", "0.3"),
            *flags,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
    )


def stopped(node: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM ``node``; its exit status and output."""
    try:
        node.send_signal(signal.SIGTERM)
        output, _ = node.communicate(timeout=30)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    return node.returncode, output


async def buy_one(url: str) -> int:
    """Alice buys 1 lot of cpu-SPOT; the trade's id (its lease's)."""
    async with connected(url, "alice") as alice:
        await alice.request("subscribe", channels=["fills"])
        reply = await alice.request(
            "place", symbol="cpu-SPOT", side="buy", qty=1, price=10_000, tif="IOC"
        )
        assert reply["type"] == "ack", reply
        [fill] = await alice.wait_for("fill", timeout=30)
        return int(fill["trade_id"])


async def use_up(url: str, lease_id: int) -> dict[str, Any]:
    """Alice runs a small job on lease ``lease_id``; the job as it ended (its
    spot lease ends with it)."""
    async with connected(url, "alice") as alice:
        ack = await alice.request(
            "submit_job",
            symbol="cpu-SPOT",
            inputs=["A lease ends when its job is done."],
            budget_cu=10,
            leases=[lease_id],
        )
        assert ack["type"] == "ack", ack
        for _ in range(600):
            reply = await alice.request("get_job", job_id=ack["job_id"])
            if reply["job"]["status"] != "running":
                return reply["job"]  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)
        raise AssertionError(f"the job never ended: {reply}")


def test_a_node_started_while_a_lease_it_sold_lives_quotes_the_rest_until_it_ends(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    # 10 CU/s over the 300 s lease: 30 lots of 100 CU (less if it measures less).
    flags = ("--max-cu-per-second", "10")
    with ServerProcess(config, tmp_path / "data") as server:
        first = start_node(server, *flags)
        try:
            [[_, lots]] = wait_until(lambda: asks(server))
            lease_id = asyncio.run(buy_one(server.url))
            wait_until(lambda: [a for a in asks(server) if a[1] == lots - 1])
        finally:
            status, output = stopped(first)
        assert status == 0, output
        assert asks(server) == []

        again = start_node(server, *flags)
        try:
            # The lease of the first run lives: the rest of the capacity.
            [[_, rest]] = wait_until(lambda: asks(server))
            job = asyncio.run(use_up(server.url, lease_id))
            assert job["status"] == "done", job
            # The lease ended with the job: all of it again.
            [[_, whole]] = wait_until(lambda: [a for a in asks(server) if a[1] != rest])
        finally:
            status, output = stopped(again)

    assert (rest, whole) == (lots - 1, lots), output
    assert "quote refused" not in output
    assert "1 lots sold already, in 1 live leases" in output
    assert status == 0, output


def test_a_node_for_a_class_the_server_lacks_exits_1_without_retrying(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    with ServerProcess(config, tmp_path / "data") as server:
        node = start_node(server, "--class", "nope")
        try:
            output, _ = node.communicate(timeout=120)
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()

    assert node.returncode == 1, output
    assert "UNKNOWN_CLASS: no resource class has this name" in output
    assert "reconnecting" not in output


def test_a_node_process_publishes_the_shipped_profile_and_re_quotes_after_a_fill(
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
            [listed] = server.get("/api/v1/nodes").body["nodes"]
            assert listed["node_id"] == default_node_id()
            assert listed["model"] == "all-MiniLM-L6-v2"
            assert listed["tiers"] == shipped_tiers()

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


def test_a_second_node_with_the_same_id_exits_1_and_the_first_keeps_quoting_gpu(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, extra=GPU)
    with ServerProcess(config, tmp_path / "data") as server:

        def gpu_asks() -> list[list[int]]:
            book: dict[str, Any] = server.get("/api/v1/book/gpu-SPOT").body
            return book["asks"]  # type: ignore[no-any-return]

        first = start_node(server, "--class", "gpu")
        try:
            # Priced on the class's tick of 10 and its 1,000-CU lots.
            [[price, lots]] = wait_until(gpu_asks)
            second = start_node(server, "--class", "gpu")
            try:
                output, _ = second.communicate(timeout=120)
            finally:
                if second.poll() is None:
                    second.kill()
                    second.wait()
            after = gpu_asks()
            nodes = server.get("/api/v1/nodes").body["nodes"]
        finally:
            status, first_output = stopped(first)

    assert price % 10 == 0
    assert second.returncode == 1, output
    assert (
        f"cux node: node id '{default_node_id()}' is in use by another live node "
        "of account 'bob': pass each node a distinct --node-id"
    ) in output
    assert after == [[price, lots]]
    assert [n["node_id"] for n in nodes] == [default_node_id()]
    assert "quote refused" not in first_output
    assert status == 0, first_output
