"""`cux serve` end to end: the REST API, ``/health`` and ``/metrics``.

The tests share one server whose ``rest`` desk (see `desk_config`) holds a small
known market, set up once: a resting buy at 1000 and one at 999, and a trade of
2 lots at 1005.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from server_harness import (
    HttpReply,
    ServerProcess,
    book_checksum,
    connected,
    desk_config,
    http_send,
    signed_headers,
    write_config,
)

SYMBOL = "rest-SPOT"
DEPOSIT = 1_000_000_000
AUTH_FAILED = {"code": "AUTH_FAILED", "message": "unknown key or bad signature"}


async def _trade(url: str) -> dict[str, str]:
    async with (
        connected(url, "rest-buyer") as buyer,
        connected(url, "rest-seller") as seller,
    ):
        orders = [
            {"op": "place", "symbol": SYMBOL, "side": "buy", "qty": 3, "price": price}
            for price in (1000, 999)
        ]
        first, second = await buyer.request_many(orders)
        await seller.request_many(
            [{"op": "place", "symbol": SYMBOL, "side": "sell", "qty": 2, "price": 1005}]
        )
        await buyer.request_many(
            [{"op": "place", "symbol": SYMBOL, "side": "buy", "qty": 2, "price": 1005}]
        )
        return {"1000": first["order_id"], "999": second["order_id"]}


PLACED: dict[str, str] = {}
"""The ids of the two resting buys, by price."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("rest")
    config = write_config(folder, extra=desk_config("rest"))
    with ServerProcess(config, folder / "data") as server:
        PLACED.update(asyncio.run(_trade(server.url)))
        yield server


def error(status: int, code: str, message: str) -> HttpReply:
    return HttpReply(status, "application/json", {"code": code, "message": message})


def test_instruments_lists_every_instrument_with_its_terms(
    server: ServerProcess,
) -> None:
    reply = server.get("/api/v1/instruments")

    assert reply.status == 200
    by_symbol = {i["symbol"]: i for i in reply.body["instruments"]}
    assert sorted(by_symbol) == ["cpu-SPOT", "rest-SPOT"]
    assert by_symbol[SYMBOL] == {
        "symbol": SYMBOL, "resource_class": "rest", "kind": "spot", "lot_cu": 100,
        "tick": 1, "taker_fee_bps": 10, "maker_fee_bps": 0, "phase": "continuous",
        "last_price": 1005, "start": None, "end": None, "gate_at": None,
        "settlement": None,
    }  # fmt: skip


def test_the_book_has_its_seq_checksum_and_the_depth_asked_for(
    server: ServerProcess,
) -> None:
    whole = server.get(f"/api/v1/book/{SYMBOL}")
    top = server.get(f"/api/v1/book/{SYMBOL}?depth=1")

    bids = [[1000, 3], [999, 3]]
    assert whole.status == 200
    assert whole.body == {
        "symbol": SYMBOL,
        "seq": whole.body["seq"],
        "bids": bids,
        "asks": [],
        "checksum": book_checksum(bids, []),
    }
    assert whole.body["seq"] == 4  # the 2 buys, the sell, then the buy taking it
    assert top.body == {**whole.body, "bids": bids[:1]}


@pytest.mark.parametrize(
    "depth",
    ["0", "-1", "abc", "1.5", "10001", "", "%D9%A3", "1" * 5000],
    ids=lambda depth: depth if len(depth) < 20 else f"{len(depth)}-digits",
)
def test_a_bad_book_depth_is_a_400_naming_the_parameter(
    server: ServerProcess, depth: str
) -> None:
    reply = server.get(f"/api/v1/book/{SYMBOL}?depth={depth}")

    message = "depth must be a whole number from 1 to 10000"
    assert reply == error(400, "INVALID_FIELD", message)


@pytest.mark.parametrize("route", ["book", "trades", "candles"])
def test_an_unknown_symbol_is_a_404_with_its_code(
    server: ServerProcess, route: str
) -> None:
    reply = server.get(f"/api/v1/{route}/tpu-SPOT")

    assert reply == error(
        404, "UNKNOWN_SYMBOL", "no instrument has this symbol: 'tpu-SPOT'"
    )


def test_trades_lists_the_recent_trades_oldest_first(server: ServerProcess) -> None:
    reply = server.get(f"/api/v1/trades/{SYMBOL}?limit=5")

    (trade,) = reply.body["trades"]
    assert reply.status == 200
    assert trade == {
        "type": "trade", "symbol": SYMBOL, "trade_id": trade["trade_id"],
        "price": 1005, "qty": 2, "taker_side": "buy", "ts": trade["ts"],
    }  # fmt: skip
    assert abs(trade["ts"] - time.time_ns()) < 120 * 10**9


def test_candles_have_the_trade_and_a_bad_interval_is_a_400(
    server: ServerProcess,
) -> None:
    minute = server.get(f"/api/v1/candles/{SYMBOL}")
    bad = server.get(f"/api/v1/candles/{SYMBOL}?interval=7")
    limit = server.get(f"/api/v1/candles/{SYMBOL}?limit=0")

    (candle,) = minute.body["candles"]
    assert candle["interval"] == 60
    assert [candle[k] for k in ("open", "high", "low", "close", "volume")] == [
        1005, 1005, 1005, 1005, 2,
    ]  # fmt: skip
    assert bad == error(400, "INVALID_FIELD", "interval must be one of 1, 60 seconds")
    assert limit == error(
        400, "INVALID_FIELD", "limit must be a whole number from 1 to 1000"
    )


def test_a_signed_account_request_shows_the_balances(server: ServerProcess) -> None:
    reply = server.get_signed("rest-buyer", "/api/v1/account")

    held = 3 * 1001 + 3 * 1000  # each buy holds a one-lot fee of 1 µcr per lot
    paid = 2 * 1005 + 3  # the taker's notional into escrow, and its fee
    assert reply.status == 200
    assert reply.body == {
        "account": "rest-buyer",
        "roles": ["consumer"],
        "available": DEPOSIT - held - paid,
        "held": held,
        "escrow": 2 * 1005,
    }


def test_a_signed_orders_request_shows_only_the_accounts_open_orders(
    server: ServerProcess,
) -> None:
    mine = server.get_signed("rest-buyer", "/api/v1/orders")
    theirs = server.get_signed("rest-seller", "/api/v1/orders")

    assert [(o["order_id"], o["price"], o["leaves"]) for o in mine.body["orders"]] == [
        (PLACED["1000"], 1000, 3),
        (PLACED["999"], 999, 3),
    ]
    assert theirs.body == {"orders": []}


def test_orders_of_one_symbol_are_only_that_instruments_and_an_unknown_one_a_404(
    server: ServerProcess,
) -> None:
    ours = server.get_signed("rest-buyer", f"/api/v1/orders?symbol={SYMBOL}")
    other = server.get_signed("rest-buyer", "/api/v1/orders?symbol=cpu-SPOT")
    unknown = server.get_signed("rest-buyer", "/api/v1/orders?symbol=nope-SPOT")

    assert [o["order_id"] for o in ours.body["orders"]] == [
        PLACED["1000"],
        PLACED["999"],
    ]
    assert other.body == {"orders": []}
    assert unknown == error(
        404, "UNKNOWN_SYMBOL", "no instrument has this symbol: 'nope-SPOT'"
    )


def test_a_job_of_an_unknown_symbol_over_rest_names_the_symbol(
    server: ServerProcess,
) -> None:
    body = b'{"symbol": "nope-SPOT", "inputs": ["a"], "budget_cu": 1, "max_price": 9}'

    reply = http_send(
        server.http + "/api/v1/jobs", "POST", body, signed_body_headers(body)
    )

    assert reply == error(
        400, "UNKNOWN_SYMBOL", "no instrument has this symbol: 'nope-SPOT'"
    )


def _signed(path: str, **change: Any) -> dict[str, str]:
    """Signed headers for GET ``path`` as rest-buyer, with ``change`` made."""
    when = change.pop("when", None)
    headers = signed_headers("rest-buyer", "GET", path, when=when)
    return {**headers, **change}


E_ACUTE = "\xc3\xa9"
"""é in UTF-8, as a header value (sent as latin-1, so these two bytes)."""

SPOILED: dict[str, Callable[[str], dict[str, str]]] = {
    "bad-signature": lambda path: _signed(path, **{"X-Cux-Signature": "00" * 32}),
    "stale-timestamp": lambda path: _signed(path, when=time.time_ns() - 60 * 10**9),
    "future-timestamp": lambda path: _signed(path, when=time.time_ns() + 60 * 10**9),
    "other-path": lambda path: _signed(path + "?symbol=rest-SPOT"),
    "other-key": lambda path: _signed(path, **{"X-Cux-Key": "rest-seller"}),
    "unknown-key": lambda path: _signed(path, **{"X-Cux-Key": "nobody"}),
    "no-timestamp": lambda path: _signed(path, **{"X-Cux-Timestamp": "soon"}),
    "no-headers": lambda path: {},
    # Header values go out as latin-1: "\xc3\xa9" is é in UTF-8, "\xc2\xb2" ²
    # (a digit to str.isdigit), "\xff" no UTF-8 at all.
    "non-ascii-signature": lambda path: _signed(path, **{"X-Cux-Signature": E_ACUTE}),
    "non-utf8-signature": lambda path: _signed(path, **{"X-Cux-Signature": "\xff"}),
    "non-utf8-timestamp": lambda path: _signed(path, **{"X-Cux-Timestamp": "\xff"}),
    "superscript-timestamp": lambda path: _signed(
        path, **{"X-Cux-Timestamp": "\xc2\xb2"}
    ),
    "huge-timestamp": lambda path: _signed(path, **{"X-Cux-Timestamp": "1" * 5000}),
}


@pytest.mark.parametrize("spoil", sorted(SPOILED))
@pytest.mark.parametrize("path", ["/api/v1/account", "/api/v1/orders"])
def test_a_private_request_without_a_good_fresh_signature_is_a_401(
    server: ServerProcess, spoil: str, path: str
) -> None:
    reply = server.get(path, SPOILED[spoil](path))

    assert reply == error(401, **AUTH_FAILED)
    assert "Traceback" not in server.text


def test_a_job_signed_with_a_non_ascii_signature_is_a_401_not_a_500(
    server: ServerProcess,
) -> None:
    body = b'{"symbol": "rest-SPOT", "inputs": ["a"], "budget_cu": 1, "max_price": 9}'
    headers = {**signed_body_headers(body), "X-Cux-Signature": E_ACUTE}

    reply = http_send(server.http + "/api/v1/jobs", "POST", body, headers)

    assert reply == error(401, **AUTH_FAILED)
    assert "Traceback" not in server.text


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/api/v1/nowhere", error(404, "NOT_FOUND", "no route has this path")),
        (
            "GET",
            "/api/v2/instruments",
            error(404, "NOT_FOUND", "no route has this path"),
        ),
        (
            "DELETE",
            "/api/v1/instruments",
            error(405, "METHOD_NOT_ALLOWED", "this route does not take this method"),
        ),
    ],
)
def test_an_error_of_the_http_layer_is_json_with_a_code(
    server: ServerProcess, method: str, path: str, expected: HttpReply
) -> None:
    reply = http_send(server.http + path, method, None)

    assert reply == expected


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("job_id", ["abc", "01", "-1", "1" * 19, "%D9%A1"])
def test_a_malformed_job_id_is_a_400_invalid_field_as_on_the_websocket(
    server: ServerProcess, method: str, job_id: str
) -> None:
    path = f"/api/v1/jobs/{job_id}"

    reply = http_send(
        server.http + path, method, None, signed_headers("rest-buyer", method, path)
    )

    assert reply.status == 400
    assert reply.body["code"] == "INVALID_FIELD"
    assert reply.body["message"].startswith(
        "job_id must be an id as the server writes it (digits, no sign, no leading "
        "zero, at most 18), got "
    )


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_well_formed_job_id_of_no_job_is_a_404_unknown_job(
    server: ServerProcess, method: str
) -> None:
    path = "/api/v1/jobs/999999"

    reply = http_send(
        server.http + path, method, None, signed_headers("rest-buyer", method, path)
    )

    assert reply.status == 404
    assert reply.body["code"] == "UNKNOWN_JOB"


@pytest.mark.parametrize(
    "query",
    ["offset=1025", "offset=1000000000000000", "offset=-1", "limit=0", "limit=257"],
)
def test_a_job_page_out_of_the_websockets_bounds_is_a_400_before_the_lookup(
    server: ServerProcess, query: str
) -> None:
    reply = server.get_signed("rest-buyer", f"/api/v1/jobs/999999?{query}")

    assert reply == error(400, "INVALID_FIELD", "offset is 0 to 1024, limit 1 to 256")


def test_a_job_with_an_empty_body_is_refused_saying_so(server: ServerProcess) -> None:
    headers = signed_headers("rest-buyer", "POST", "/api/v1/jobs")

    reply = http_send(server.http + "/api/v1/jobs", "POST", b"", headers)

    assert reply == error(400, "INVALID_FIELD", "the body is empty")


def test_a_job_whose_body_is_not_json_is_refused_saying_so(
    server: ServerProcess,
) -> None:
    body = "inputs: hello"
    stamp = str(time.time_ns())
    signature = hmac.new(
        b"rest-buyer-secret",
        f"{stamp}\nPOST\n/api/v1/jobs\n{body}".encode(),
        hashlib.sha256,
    ).hexdigest()
    headers = {
        "X-Cux-Key": "rest-buyer",
        "X-Cux-Timestamp": stamp,
        "X-Cux-Signature": signature,
    }

    reply = http_send(server.http + "/api/v1/jobs", "POST", body.encode(), headers)

    assert reply.status == 400
    assert reply.body["code"] == "INVALID_FIELD"
    assert reply.body["message"].startswith("the body is not JSON: ")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"symbol": "cpu-SPOT", "inputs": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"symbol": "cpu-SPOT", "x": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
    ],
    ids=["list", "inputs", "unknown-field"],
)
def test_a_job_body_nested_too_deep_is_a_400_not_json_never_a_500(
    server: ServerProcess, body: bytes
) -> None:
    reply = http_send(
        server.http + "/api/v1/jobs", "POST", body, signed_body_headers(body)
    )

    assert reply == error(
        400,
        "INVALID_FIELD",
        "the body is not JSON: nested deeper than the server reads",
    )
    assert "RecursionError" not in server.text
    assert " ERROR " not in server.text


def signed_body_headers(body: bytes) -> dict[str, str]:
    """rest-buyer's signature of a job POST with ``body`` (as UTF-8 with
    replacement, which no server accepts for a body that is not UTF-8)."""
    stamp = str(time.time_ns())
    message = f"{stamp}\nPOST\n/api/v1/jobs\n{body.decode(errors='replace')}"
    signature = hmac.new(
        b"rest-buyer-secret", message.encode(), hashlib.sha256
    ).hexdigest()
    return {
        "X-Cux-Key": "rest-buyer",
        "X-Cux-Timestamp": stamp,
        "X-Cux-Signature": signature,
    }


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\xff", "application/json", "the body is not UTF-8: byte 0xff at offset 0"),
        (b'{"inputs": ["a"]}', "application/json; charset=nope", None),
        (b'{"inputs": ["a"]}', "application/json; charset=utf-16", None),
        (
            b'{"inputs": ["caf\xe9"]}',
            "text/plain; charset=latin-1",
            "the body is not UTF-8: byte 0xe9 at offset 16",
        ),
    ],
)
def test_a_job_body_is_read_as_utf8_whatever_its_charset_and_never_a_500(
    server: ServerProcess, body: bytes, content_type: str, message: str | None
) -> None:
    headers = {**signed_body_headers(body), "Content-Type": content_type}

    reply = http_send(server.http + "/api/v1/jobs", "POST", body, headers)

    assert reply.status == 400
    assert reply.body["code"] == "INVALID_FIELD"
    if message is not None:
        assert reply.body["message"] == message
    else:  # UTF-8 JSON, read as such: refused for what it lacks, not its charset
        assert "not UTF-8" not in reply.body["message"]
    assert " ERROR " not in server.text


def test_a_job_of_valid_json_with_a_wrong_field_is_refused_naming_the_field(
    server: ServerProcess,
) -> None:
    body = b'{"max_price": 40}'

    reply = http_send(
        server.http + "/api/v1/jobs", "POST", body, signed_body_headers(body)
    )

    assert reply.status == 400
    assert reply.body["code"] == "INVALID_FIELD"
    assert reply.body["message"] == "Object missing required field `symbol`"


@pytest.mark.parametrize(("leases", "index"), [([0], 0), ([3, -1], 1)])
def test_a_job_naming_a_lease_id_below_1_is_refused_as_a_field_not_a_lease(
    server: ServerProcess, leases: list[int], index: int
) -> None:
    body = json.dumps(
        {"symbol": "cpu-SPOT", "inputs": ["a"], "budget_cu": 1, "leases": leases}
    ).encode()

    reply = http_send(
        server.http + "/api/v1/jobs", "POST", body, signed_body_headers(body)
    )

    message = f"Expected `int` >= 1 - at `$.leases[{index}]`"
    assert reply == error(400, "INVALID_FIELD", message)


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_job_with_an_input_of_no_text_is_refused_naming_its_index(
    server: ServerProcess, blank: str
) -> None:
    body = json.dumps(
        {"symbol": "cpu-SPOT", "inputs": ["a", blank], "budget_cu": 1, "max_price": 9}
    ).encode()

    reply = http_send(
        server.http + "/api/v1/jobs", "POST", body, signed_body_headers(body)
    )

    message = (
        "inputs[1] has no text to embed: it is empty, or only whitespace or "
        "characters the model skips"
    )
    assert reply == error(400, "INVALID_FIELD", message)


def test_the_openapi_description_is_json_naming_every_route(
    server: ServerProcess,
) -> None:
    reply = server.get("/api/v1/openapi.json")

    assert reply.status == 200
    assert reply.content_type.startswith("application/json")
    assert reply.body["openapi"].startswith("3.")
    assert sorted(reply.body["paths"]) == [
        "/api/v1/account",
        "/api/v1/book/{symbol}",
        "/api/v1/candles/{symbol}",
        "/api/v1/instruments",
        "/api/v1/orders",
        "/api/v1/trades/{symbol}",
    ]
    for path in reply.body["paths"].values():
        assert "200" in path["get"]["responses"]


def test_health_says_ok_with_the_engines_seq(server: ServerProcess) -> None:
    reply = server.get("/health")

    assert reply.status == 200
    assert reply.body["status"] == "ok"
    # The bootstrap: 6 accounts opened, 5 funded, 3 given capacity; 4 orders.
    assert reply.body["seq"] >= 18


def test_metrics_are_prometheus_text_with_the_command_counts(
    server: ServerProcess,
) -> None:
    reply = server.get("/metrics")

    assert reply.status == 200
    assert reply.content_type.startswith("text/plain")
    lines = reply.body.splitlines()
    assert "# TYPE cux_commands_total counter" in lines
    assert 'cux_commands_total{op="place"} 4.0' in lines
    assert "cux_trades_total 1.0" in lines
    assert any(line.startswith("cux_connections ") for line in lines)
