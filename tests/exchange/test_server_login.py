"""`cux serve` end to end: logging in, what needs a login, cancel-on-disconnect."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from server_harness import (
    Client,
    ServerProcess,
    connected,
    signed_headers,
    write_config,
)

from exchange.settings import ServerSettings

AUTH_FAILED = {"code": "AUTH_FAILED", "message": "unknown key or bad signature"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("login")
    # A long window for failed logins, so that however slowly the test of
    # the limit runs, its failures stay within one window.
    config = write_config(folder, server_extra="login_failure_seconds = 3600")
    with ServerProcess(config, folder / "data") as server:
        yield server


def error(rid: int, body: dict[str, str]) -> dict[str, Any]:
    return {"type": "error", "id": rid, **body}


def signature(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).hexdigest()


async def test_a_good_signature_is_acknowledged_with_the_account(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as client:
        assert await client.login("alice") == {
            "type": "ack",
            "id": 1,
            "account": "alice",
        }


async def test_a_bad_signature_and_an_unknown_key_get_the_same_error(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as client:
        bad_signature = await client.login("alice", secret="not-alice-secret")
        unknown_key = await client.login("mallory", secret="alice-secret")
        no_hex = await client.request("login", key="alice", signature="zz")

    assert bad_signature == error(1, AUTH_FAILED)
    assert unknown_key == error(2, AUTH_FAILED)
    assert no_hex == error(3, AUTH_FAILED)


async def test_a_signature_of_another_connections_nonce_is_refused(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as first, connected(server.url) as second:
        replayed = signature("alice-secret", first.nonce)
        reply = await second.request("login", key="alice", signature=replayed)

    assert first.nonce != second.nonce
    assert reply == error(1, AUTH_FAILED)


async def test_the_signature_may_be_upper_case_hex(server: ServerProcess) -> None:
    async with connected(server.url) as client:
        upper = signature("bob-secret", client.nonce).upper()
        reply = await client.request("login", key="bob", signature=upper)

    assert reply == {"type": "ack", "id": 1, "account": "bob"}


async def test_a_failed_login_leaves_the_connection_open_for_a_good_one(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as client:
        await client.login("alice", secret="wrong")
        reply = await client.login("alice")
        balance = await client.request("balance")

    assert reply == {"type": "ack", "id": 2, "account": "alice"}
    assert balance["type"] == "result"


async def test_a_non_ascii_signature_is_auth_failed_and_the_connection_stays_open(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as client:
        accented = await client.request("login", key="alice", signature="é")
        emoji = await client.request("login", key="nobody", signature="🔑" * 64)
        good = await client.login("alice")

    assert accented == error(1, AUTH_FAILED)
    assert emoji == error(2, AUTH_FAILED)
    assert good == {"type": "ack", "id": 3, "account": "alice"}
    assert client.close_code == 1000
    assert "Traceback" not in server.text


def rest_account(
    server: ServerProcess, source: str, *, good: bool, signature: str = "0" * 64
) -> tuple[int, dict[str, Any]]:
    """GET /api/v1/account as alice from the loopback address ``source``, with
    a good or a bad signature (``signature``, sent as latin-1 bytes): the
    status and the JSON body."""
    headers = signed_headers("alice", "GET", "/api/v1/account")
    if not good:
        headers["X-Cux-Signature"] = signature
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request("GET", "/api/v1/account", headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


async def test_failed_logins_from_one_address_are_rate_limited_across_connections(
    server: ServerProcess,
) -> None:
    limit = ServerSettings().login_failures
    # Half the failures on websockets, a connection each; half signed REST.
    failures = []
    for _ in range(limit // 2):
        async with connected(server.url, source="127.0.0.2") as client:
            failures.append(await client.login("alice", secret="wrong"))
    rest_failures = [
        rest_account(server, "127.0.0.2", good=False) for _ in range(limit - limit // 2)
    ]

    async with connected(server.url, source="127.0.0.2") as client:
        refused = await client.login("alice")
    refused_rest = rest_account(server, "127.0.0.2", good=True)
    async with connected(server.url, source="127.0.0.3") as client:
        neighbour_failed = await client.login("alice", secret="wrong")
        neighbour = await client.login("alice")

    assert failures == [error(1, AUTH_FAILED)] * (limit // 2)
    assert rest_failures == [(401, AUTH_FAILED)] * (limit - limit // 2)
    assert refused["code"] == "RATE_LIMITED"
    assert re.fullmatch(
        r"too many failed logins from this address; try again in \d+ s",
        refused["message"],
    )
    assert refused_rest[0] == 429
    assert refused_rest[1]["code"] == "RATE_LIMITED"
    assert neighbour_failed == error(1, AUTH_FAILED)
    assert neighbour == {"type": "ack", "id": 2, "account": "alice"}


async def test_non_ascii_signatures_count_as_failed_logins(
    server: ServerProcess,
) -> None:
    limit = ServerSettings().login_failures
    async with connected(server.url, source="127.0.0.4") as client:
        failures = [
            await client.request("login", key="alice", signature="é")
            for _ in range(limit // 2)
        ]
    rest_failures = [
        rest_account(server, "127.0.0.4", good=False, signature="\xc3\xa9")
        for _ in range(limit - limit // 2)
    ]

    async with connected(server.url, source="127.0.0.4") as client:
        refused = await client.login("alice")

    assert [f["code"] for f in failures] == ["AUTH_FAILED"] * (limit // 2)
    assert rest_failures == [(401, AUTH_FAILED)] * (limit - limit // 2)
    assert refused["code"] == "RATE_LIMITED"


async def test_a_second_login_on_a_connection_is_refused(server: ServerProcess) -> None:
    async with connected(server.url, "alice") as client:
        again = await client.login("alice")
        other = await client.login("bob")
        balance = await client.request("balance")

    expected = {
        "code": "ALREADY_LOGGED_IN",
        "message": "this connection is already logged in",
    }
    assert again == error(2, expected)
    assert other == error(3, expected)
    # Still alice's connection.
    assert balance["available"] <= 1_000_000_000


@pytest.mark.parametrize(
    "request_",
    [
        {"op": "place", "symbol": "cpu-SPOT", "side": "buy", "qty": 1, "price": 10},
        {"op": "cancel", "order_id": "1"},
        {"op": "amend", "order_id": "1", "qty": 1},
        {"op": "cancel_all"},
        {"op": "balance"},
        {"op": "orders"},
        {"op": "set_phase", "symbol": "cpu-SPOT", "phase": "halted"},
        {"op": "schedule_phase", "symbol": "cpu-SPOT", "phase": "halted", "at": 1},
        {"op": "list_future", "resource_class": "cpu", "start": 0},
        {"op": "subscribe", "channels": ["orders"]},
        {"op": "subscribe", "channels": ["trades.cpu-SPOT", "fills"]},
        {"op": "subscribe", "channels": ["balance"]},
        {"op": "subscribe", "channels": ["leases"]},
    ],
    ids=lambda r: f"{r['op']}-{'-'.join(r.get('channels', []))}",
)
async def test_a_request_before_login_is_refused_with_not_logged_in(
    server: ServerProcess, request_: dict[str, Any]
) -> None:
    async with connected(server.url) as client:
        op = request_["op"]
        fields = {k: v for k, v in request_.items() if k != "op"}
        reply = await client.request(op, **fields)
        pong = await client.request("ping")

    # A subscription names the first channel that needs the login.
    private = [c for c in request_.get("channels", []) if "." not in c]
    message = f"log in first: {private[0]!r}" if private else "log in first"
    assert reply == error(1, {"code": "NOT_LOGGED_IN", "message": message})
    assert pong["type"] == "pong"


async def test_ping_and_public_channels_need_no_login(server: ServerProcess) -> None:
    async with connected(server.url) as client:
        pong = await client.request("ping")
        subscribed = await client.request(
            "subscribe", channels=["book.cpu-SPOT", "trades.cpu-SPOT", "phases"]
        )
        snapshot = await client.wait_for("book")

    assert pong["type"] == "pong"
    assert subscribed == {
        "type": "subscribed",
        "id": 2,
        "channels": ["book.cpu-SPOT", "trades.cpu-SPOT", "phases"],
    }
    assert snapshot[0]["snapshot"] is True


async def test_cancel_on_disconnect_cancels_that_connections_orders_when_it_drops(
    server: ServerProcess,
) -> None:
    async with connected(server.url, "carol") as watcher:
        await watcher.request("subscribe", channels=["orders"])
        kept = await watcher.request(
            "place", symbol="cpu-SPOT", side="buy", qty=1, price=152
        )

        dropping = await Client.connect(server.url)
        await dropping.login("carol", cancel_on_disconnect=True)
        first, second, sold = await dropping.request_many(
            [
                {"op": "place", "symbol": "cpu-SPOT", "side": "buy", "qty": 2,
                 "price": 150, "client_order_id": "c1"},
                {"op": "place", "symbol": "cpu-SPOT", "side": "buy", "qty": 3,
                 "price": 151},
                {"op": "place", "symbol": "cpu-SPOT", "side": "sell", "qty": 5,
                 "price": 9000},
            ]
        )  # fmt: skip
        async with connected(server.url, "bob") as bob:
            await bob.request("place", symbol="cpu-SPOT", side="buy", qty=2, price=9000)
        await watcher.wait_for("order", 5)  # 4 new, 1 partially filled
        await dropping.close()
        cancels = await watcher.wait_for("order", 8)
        listed = server.get_signed("carol", "/api/v1/orders")

    cancelled = [m for m in cancels if m["status"] == "cancelled"]
    ts = cancelled[0]["ts"]
    assert cancelled == [
        {"type": "order", "order_id": first["order_id"], "client_order_id": "c1",
         "symbol": "cpu-SPOT", "side": "buy", "status": "cancelled", "price": 150,
         "filled": 0, "leaves": 0, "reason": "user", "ts": ts},
        {"type": "order", "order_id": second["order_id"], "client_order_id": None,
         "symbol": "cpu-SPOT", "side": "buy", "status": "cancelled", "price": 151,
         "filled": 0, "leaves": 0, "reason": "user", "ts": cancelled[1]["ts"]},
        {"type": "order", "order_id": sold["order_id"], "client_order_id": None,
         "symbol": "cpu-SPOT", "side": "sell", "status": "cancelled", "price": 9000,
         "filled": 2, "leaves": 0, "reason": "user", "ts": cancelled[2]["ts"]},
    ]  # fmt: skip
    assert listed.status == 200
    assert [o["order_id"] for o in listed.body["orders"]] == [kept["order_id"]]


async def test_without_cancel_on_disconnect_orders_outlive_the_connection(
    server: ServerProcess,
) -> None:
    async with connected(server.url, "alice") as client:
        placed = await client.request(
            "place", symbol="cpu-SPOT", side="buy", qty=1, price=101
        )

    async with connected(server.url, "alice") as client:
        orders = await client.request("orders")

    assert placed["order_id"] in [o["order_id"] for o in orders["orders"]]


async def test_an_order_on_its_way_when_its_connection_drops_is_cancelled_too(
    server: ServerProcess,
) -> None:
    price = 4_999  # no other test of this module quotes it
    async with connected(server.url) as watcher:
        await watcher.login("carol")
        for n in range(5):
            client = await Client.connect(server.url)
            await client.login("carol", cancel_on_disconnect=True)
            await client.send_raw(
                json.dumps(
                    {
                        "op": "place",
                        "id": 100 + n,
                        "symbol": "cpu-SPOT",
                        "side": "sell",
                        "qty": 1,
                        "price": price,
                    }
                )
            )
            await client.close()  # without waiting for the ack
        for _ in range(40):
            orders = await watcher.request("orders")
            if all(o["price"] != price for o in orders["orders"]):
                break
            await asyncio.sleep(0.05)

    assert [o for o in orders["orders"] if o["price"] == price] == []
