"""`cux serve` end to end: heartbeats both ways, ping, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from server_harness import (
    Client,
    RawWebSocket,
    ServerProcess,
    connected,
    recovered_engine,
    replay_report,
    secret_of,
    write_config,
)

from bench.server_bench import journal_writer_pids
from exchange.sessions import sign


def place(qty: int, price: int) -> dict[str, Any]:
    return {"op": "place", "symbol": "cpu-SPOT", "side": "buy", "qty": qty,
            "price": price}  # fmt: skip


# -- heartbeats and ping ----------------------------------------------------------


async def test_the_server_sends_heartbeats_and_answers_pings(tmp_path: Path) -> None:
    config = write_config(tmp_path, heartbeat_seconds=0.2)
    with ServerProcess(config, tmp_path / "data") as server:
        async with connected(server.url) as client:
            sent = time.time_ns()
            pong = await client.request("ping")
            beats = await client.wait_for("heartbeat", 3, timeout=10)
            # The client's own websocket ping is answered too.
            waiter = await client.ws.ping()
            latency = await asyncio.wait_for(waiter, 5)

    assert pong == {"type": "pong", "id": 1, "server_time": pong["server_time"]}
    assert abs(pong["server_time"] - sent) < 30 * 10**9
    assert all(beat == {"type": "heartbeat", "server_time": beat["server_time"]}
               for beat in beats)  # fmt: skip
    times = [beat["server_time"] for beat in beats]
    assert all(
        later - earlier >= 0.15e9 for earlier, later in itertools.pairwise(times)
    )
    assert latency >= 0


async def test_a_peer_that_stops_answering_is_dropped_and_its_orders_cancelled(
    tmp_path: Path,
) -> None:
    """The websocket layer pings every 2 × ``heartbeat_seconds``; a peer that
    does not answer within half that is dropped, and cancel-on-disconnect
    applies to it as to a peer that closed."""
    config = write_config(tmp_path, heartbeat_seconds=0.2)
    with ServerProcess(config, tmp_path / "data") as server:
        silent = RawWebSocket(server.port)
        hello = _next(silent)
        signature = sign(secret_of("alice"), hello["nonce"])
        silent.send({"op": "login", "id": 1, "key": "alice", "signature": signature,
                     "cancel_on_disconnect": True})  # fmt: skip
        silent.send({**place(1, 100), "id": 2})
        assert _next(silent)["type"] == "ack"
        assert _next(silent)["type"] == "ack"
        # From now on it reads nothing, so it answers no ping.
        deadline = time.monotonic() + 10
        orders: list[Any] = [None]
        while orders and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            orders = server.get_signed("alice", "/api/v1/orders").body["orders"]
        metrics = server.get("/metrics").body.splitlines()

    assert orders == []
    assert "cux_connections 0.0" in metrics


def _next(raw: RawWebSocket) -> dict[str, Any]:
    """The next JSON message on ``raw``, past heartbeats."""
    while True:
        opcode, payload = raw.read_frame()
        if opcode == 0x1 and json.loads(payload)["type"] != "heartbeat":
            message: dict[str, Any] = json.loads(payload)
            return message


# -- graceful shutdown ------------------------------------------------------------


async def test_sigterm_closes_every_connection_and_keeps_every_acked_order(
    tmp_path: Path,
) -> None:
    """SIGTERM while alice streams orders: every client is closed with 1001,
    the process exits 0, and every order acknowledged is there after a
    restart; the journal replayed from its first record and a recovery from
    its newest snapshot agree on the state hash."""
    config = write_config(tmp_path, snapshot_every=40)
    data = tmp_path / "data"
    server = ServerProcess(config, data)
    try:
        alice = await Client.connect(server.url)
        await alice.login("alice")
        bob = await Client.connect(server.url)
        await bob.login("bob")
        visitor = await Client.connect(server.url)
        await visitor.request("subscribe", channels=["book.cpu-SPOT"])
        for i in range(300):
            await alice.ws.send(json.dumps({**place(1, 100 + i % 50), "id": 100 + i}))
        before_signal = await alice.response(130)
        server.proc.send_signal(signal.SIGTERM)
        for client in (alice, bob, visitor):
            await client.wait_closed(timeout=20)
        exit_status = server.proc.wait(20)
    finally:
        server.stop()

    assert exit_status == 0
    assert "cux serve: stopped" in server.text
    for client in (alice, bob, visitor):
        assert (client.close_code, client.close_reason) == (
            1001,
            "server shutting down",
        )

    answers = [before_signal, *(alice.responses.get(i) for i in range(100, 400))]
    acked = {int(a["order_id"]) for a in answers if a and a["type"] == "ack"}
    refused = [a for a in answers if a and a["type"] != "ack"]
    assert len(acked) > 30
    assert all(a["code"] == "SHUTTING_DOWN" for a in refused), refused

    report = replay_report(data)
    engine = recovered_engine(data, config)
    assert engine.state_hash() == report["state_hash"]
    assert engine.seq == report["last_seq"]
    # Exactly the acknowledged orders are open: an order is acknowledged
    # once it is durable, and every one applied before the stop is acked.
    number = engine.ledger.index("alice")
    alices = {i for i, order in engine.orders.items() if order.account == number}
    assert alices == acked

    with ServerProcess(config, data) as restarted:
        listed = restarted.get_signed("alice", "/api/v1/orders").body["orders"]
        health = restarted.get("/health").body
    assert {int(o["order_id"]) for o in listed} == alices
    assert health["seq"] == report["last_seq"]


def test_a_server_stopped_as_soon_as_it_listens_still_stops_gracefully(
    tmp_path: Path,
) -> None:
    """The signal handlers are in place before the "listening" line is out."""
    config = write_config(tmp_path)
    for _ in range(3):
        server = ServerProcess(config, tmp_path / "data")
        assert server.stop() == 0, server.text
        assert "cux serve: stopped" in server.text


FAILING_STATE_HASH = """
from matching import Engine


def _fail(self):
    raise OverflowError("int too big to serialize")


Engine.state_hash = _fail
"""


def test_a_sequencer_that_fails_ends_cux_serve_with_an_error_and_exit_1(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A bug in the sequencer (here a state hash that cannot be computed, as an
    out-of-range config once caused) stops the server instead of leaving it
    running without a sequencer, deaf to SIGTERM."""
    fault = tmp_path / "fault"
    fault.mkdir()
    (fault / "sitecustomize.py").write_text(FAILING_STATE_HASH, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(fault))
    server = ServerProcess(write_config(tmp_path), tmp_path / "data")

    url = f"{server.http}/health?state_hash=1"
    with contextlib.suppress(OSError):
        urllib.request.urlopen(url, timeout=60).read()
    rc = server.proc.wait(60)
    server.stop()

    assert rc == 1, server.text
    assert "ERROR cux.server: the sequencer failed, so the server stops" in server.text
    assert server.text.endswith(
        "cux serve: stopped: the sequencer failed "
        "(OverflowError: int too big to serialize)\n"
    )


async def test_a_journal_writer_that_dies_stops_cux_serve_and_loses_nothing_acked(
    tmp_path: Path,
) -> None:
    """The writer process killed under a running server: the next order is
    never acknowledged, the server exits 1 saying the journal failed, and a
    restart has every order that was acknowledged before."""
    config = write_config(tmp_path)
    data = tmp_path / "data"
    server = ServerProcess(config, data)
    try:
        alice = await Client.connect(server.url)
        await alice.login("alice")
        acked = set()
        for i in range(20):
            fields = {k: v for k, v in place(1, 100 + i).items() if k != "op"}
            answer = await alice.request("place", **fields)
            acked.add(int(answer["order_id"]))
        (writer,) = journal_writer_pids(server.proc.pid)
        os.kill(writer, signal.SIGKILL)
        await alice.ws.send(json.dumps({**place(1, 99), "id": 999}))
        exit_status = server.proc.wait(30)
    finally:
        server.stop()

    assert exit_status == 1, server.text
    assert "the journal failed; nothing more is acknowledged" in server.text
    assert "the journal writer process exited (killed by signal 9)" in server.text
    assert "(the commands after it were never acknowledged)" in server.text
    assert (alice.responses.get(999) or {}).get("type") != "ack"
    engine = recovered_engine(data, config)
    number = engine.ledger.index("alice")
    assert {i for i, o in engine.orders.items() if o.account == number} == acked
