"""A market with real provider nodes: the server, node processes, a consumer.

The class ``emb`` has small lots (10 CU) so that a job of a few dozen inputs
needs several of them; each node registers at most ``max_cu`` CU/s, so that a
node's quote covers only part of a job and a job order fills from several
providers.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server_harness import ROOT, Client, ServerProcess, recovered_engine

from exchange.journal.reader import Walk, find_journal, list_segments
from matching import (
    Engine,
    EscrowReleased,
    Event,
    InvariantViolation,
    LeaseEnded,
    Trade,
    UsageRecorded,
)
from matching.leases import FLOPS_PER_CU

SYMBOL = "emb-SPOT"
LOT_CU = 10

CONFIG = """
[server]
heartbeat_seconds = 1

[dispatch]
shard_timeout_seconds = {timeout}
max_attempts = {max_attempts}
results_ttl_seconds = {results_ttl}

[[classes]]
name = "emb"
lot_cu = 10
tick = 1
lease_seconds = {lease_seconds}
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

LONG_TEXTS = [
    " ".join(
        f"Sentence {j} of passage {i} says that compute is bought in lots and "
        "metered in units of a billion operations."
        for j in range(8)
    )
    for i in range(48)
]
"""48 inputs near the model's 256-token limit: a shard of them runs seconds."""


def write_config(
    folder: Path,
    timeout: float = 30,
    *,
    max_attempts: int = 3,
    results_ttl: float = 3600,
    lease_seconds: int = 300,
) -> Path:
    """The test market's configuration, with these ``[dispatch]`` settings
    (``timeout``: ``shard_timeout_seconds``; ``results_ttl``:
    ``results_ttl_seconds``) and the spot leases of ``emb`` valid for
    ``lease_seconds`` (the default is the README's)."""
    path = folder / "cux.toml"
    text = CONFIG.format(
        timeout=timeout,
        max_attempts=max_attempts,
        results_ttl=results_ttl,
        lease_seconds=lease_seconds,
    )
    path.write_text(text, encoding="utf-8")
    return path


def start_node(
    server: ServerProcess,
    key: str,
    node_id: str,
    *,
    cost_per_hour: float = 1.0,
    max_cu: float = 0.1,
    script: str | None = None,
    extra: Sequence[str] = (),
) -> subprocess.Popen[str]:
    """``cux node`` for provider ``key`` (or ``script``, a test's own node,
    given ``extra`` flags after the others)."""
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
            *extra,
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


def account(server: ServerProcess, key: str) -> dict[str, int]:
    """The balances of ``key`` (``available``, ``held``, ``escrow``), µcr."""
    body: dict[str, int] = server.get_signed(key, "/api/v1/account").body
    return body


def node(server: ServerProcess, node_id: str) -> dict[str, Any]:
    """The public listing of node ``node_id``; {} while it is not connected."""
    nodes = server.get("/api/v1/nodes").body["nodes"]
    return next((n for n in nodes if n["node_id"] == node_id), {})


async def finish(client: Client, job_id: str, timeout: float = 150) -> dict[str, Any]:
    """Poll ``get_job`` until the job ends; its last state."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        reply = await client.request("get_job", job_id=job_id)
        if reply["job"]["status"] != "running":
            return reply["job"]  # type: ignore[no-any-return]
        assert asyncio.get_running_loop().time() < deadline, reply["job"]
        await asyncio.sleep(0.2)


def checked_replay(data: Path) -> Iterator[tuple[Engine, list[Event]]]:
    """The journal of ``data`` applied from its first record to a new engine
    that is checked after every record (`check_engine`): that engine and the
    record's events, after each (read once the server has stopped)."""
    walk = Walk(list_segments(find_journal(data)))
    engine: Engine | None = None
    for _, _, record in walk.records():
        if engine is None:
            assert walk.config is not None
            engine = Engine(walk.config)
        events = engine.apply(record.seq, record.ts, record.command)
        check_engine(engine)
        yield engine, events


def check_engine(engine: Engine) -> None:
    """The engine's self-check (books, holds, committed capacity, escrows and
    usage), and money conserved with no negative balance, at its ``seq``."""
    try:
        engine.check()
    except InvariantViolation as exc:
        raise AssertionError(f"after record {engine.seq}: {exc}") from exc
    ledger = engine.ledger
    balances = ledger.available + ledger.held + ledger.escrow
    assert min(balances, default=0) >= 0, f"negative balance at {engine.seq}"
    assert sum(balances) + ledger.fee_income == (
        ledger.deposits - ledger.withdrawals
    ), f"money was created or lost at record {engine.seq}"


def conserved(server: ServerProcess, config: Path) -> Engine:
    """The journal replays from its first record with the engine's invariants,
    money included, holding after every record (`checked_replay`), into the
    state the server recovers (its snapshot and the records after it); that
    recovered engine."""
    replayed: Engine | None = None
    for each, _ in checked_replay(server.data):
        replayed = each
    assert replayed is not None, "the journal holds no record"
    engine = recovered_engine(server.data, config)
    check_engine(engine)
    assert engine.seq == replayed.seq
    assert engine.state_hash() == replayed.state_hash(), "replay and recovery differ"
    return engine


def ceil_fee(notional: int, bps: int) -> int:
    """A fee of ``bps`` on ``notional``, rounded up to the µcr (README, Money)."""
    return -(-notional * bps // 10_000)


@dataclass
class SpotLease:
    """One spot lease of the journal, from its trade to its settlement."""

    lease_id: int
    provider: str
    consumer: str
    price: int
    lots: int
    buyer_fee: int
    used: int = 0
    state: str | None = None
    payout: int | None = None
    seller_fee: int | None = None
    refund: int | None = None

    @property
    def escrow(self) -> int:
        return self.price * self.lots

    @property
    def metered(self) -> int:
        """What its provider is owed: price × CU used / lot_cu, rounded down."""
        return self.price * self.used // (LOT_CU * FLOPS_PER_CU)


def spot_leases(data: Path) -> dict[int, SpotLease]:
    """The spot leases of ``SYMBOL`` in the journal of ``data``, by id, rebuilt
    from the events of every record, the engine checked after each
    (`checked_replay`; read once the server has stopped)."""
    leases: dict[int, SpotLease] = {}
    for _, events in checked_replay(data):
        for event in events:
            if type(event) is Trade and event.symbol == SYMBOL:
                buyer = (
                    event.taker_account
                    if event.taker_side == "buy"
                    else event.maker_account
                )
                seller = (
                    event.maker_account
                    if event.taker_side == "buy"
                    else event.taker_account
                )
                leases[event.trade_id] = SpotLease(
                    event.trade_id,
                    seller,
                    buyer,
                    event.price,
                    event.qty,
                    event.buyer_fee,
                )
            elif type(event) is UsageRecorded and event.symbol == SYMBOL:
                leases[event.lease_id].used += event.flops
            elif type(event) is LeaseEnded and event.symbol == SYMBOL:
                lease = leases[event.lease_id]
                assert lease.state is None, f"lease {lease} ended twice"
                lease.state = event.state
            elif type(event) is EscrowReleased and event.symbol == SYMBOL:
                lease = leases[event.trade_id]
                assert lease.payout is None, f"escrow of {lease} released twice"
                lease.payout = event.payout
                lease.seller_fee = event.seller_fee
                lease.refund = event.refund
    return leases


TAKER_BPS = 10
"""The buyer's fee of a job order's IOC buy (``taker_fee_bps`` of ``emb``)."""
MAKER_BPS = 5
"""The provider's fee on its payout (``maker_fee_bps``: its quote rests)."""


def balances(server: ServerProcess, *keys: str) -> dict[str, dict[str, int]]:
    return {key: account(server, key) for key in keys}


def check_settlement(
    leases: dict[int, SpotLease],
    job: dict[str, Any] | None,
    before: dict[str, dict[str, int]],
    after: dict[str, dict[str, int]],
    consumer: str = "alice",
) -> None:
    """Every spot lease of the journal was settled once and exactly: its
    provider paid ``price × CU used / lot_cu`` rounded down less its maker fee
    (rounded up), the consumer refunded the rest of the escrow; the balances
    moved by exactly that, the job's ``cost`` and ``refund`` say the same (a
    ``job`` of None: one the exchange no longer knows), and no credit appeared
    or vanished (what left the accounts is the fees)."""
    assert leases, "no lease was traded"
    for lease in leases.values():
        assert lease.state is not None, f"lease {lease} never ended"
        assert lease.payout == lease.metered, lease
        assert lease.seller_fee == ceil_fee(lease.metered, MAKER_BPS), lease
        assert lease.refund == lease.escrow - lease.metered, lease
        assert lease.buyer_fee == ceil_fee(lease.escrow, TAKER_BPS), lease
        assert lease.consumer == consumer, lease
    for key in before:
        if key == consumer:
            continue
        earned = sum(
            lease.metered - ceil_fee(lease.metered, MAKER_BPS)
            for lease in leases.values()
            if lease.provider == key
        )
        assert after[key]["available"] - before[key]["available"] == earned, key
    paid = sum(lease.buyer_fee + lease.metered for lease in leases.values())
    spent = before[consumer]["available"] - after[consumer]["available"]
    assert spent == paid, (spent, paid)
    if job is not None:
        assert job["cost"] == paid, (paid, job)
        assert job["refund"] == sum(
            lease.escrow - lease.metered for lease in leases.values()
        )
    for key, balance in after.items():
        assert balance["held"] == balance["escrow"] == 0, (key, balance)
    fees = sum(
        lease.buyer_fee + ceil_fee(lease.metered, MAKER_BPS)
        for lease in leases.values()
    )

    def total(side: dict[str, dict[str, int]]) -> int:
        return sum(b["available"] + b["held"] + b["escrow"] for b in side.values())

    assert total(before) - total(after) == fees
