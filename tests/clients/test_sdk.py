"""The SDK's `Client` against a real `cux serve`: every call, the error codes
it can receive, subscriptions, waiting for fills, cancel-on-disconnect, the
book mirror against the REST snapshot, and sizing from a budget (scenario S18).

The tests share a server; each takes a desk of its own (`desk_config`): an
instrument ``<desk>-SPOT`` with a tick of 1 µcr, a 10 bps taker fee and no
maker fee, a buyer and a seller with 1,000 credits each. The class ``hourly``
has futures, listed only on request, for the operator's listing codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
from server_harness import (
    ROOT,
    ServerProcess,
    desk_config,
    http_get,
    secret_of,
    write_config,
)

from clients import Client, LiveBook, RestClient
from clients.errors import (
    MAX_FRAME,
    AccountError,
    AuthError,
    ClientClosed,
    ClientError,
    ConnectionLost,
    InsufficientCapacity,
    InsufficientFunds,
    InvalidOrder,
    JobError,
    LeaseError,
    NotTrading,
    OperatorError,
    OrderClosed,
    OrderNotFound,
    OrderRejected,
    ProtocolError,
    RateLimited,
    ServerError,
    ServerUnavailable,
    error_for,
)
from clients.messages import (
    AuctionMessage,
    Balance,
    BalanceUpdate,
    BookMessage,
    Fill,
    OrderUpdate,
    PhaseMessage,
    Resync,
    TradeMessage,
)
from clients.sizing import buy_cost, max_buy_qty, parse_credits
from exchange.gateway_jobs import JOB_CODES
from exchange.nodes import NODE_CODES
from exchange.protocol import MAX_FRAME as SERVER_MAX_FRAME
from exchange.protocol import WireCode
from exchange.rest import HTTP_CODES
from matching.codes import Code

DEPOSIT = 1_000_000_000
DESKS = 50
_desks = iter(range(DESKS))

# Scenario S18: an account holding 24.01 credits, a price of 2 credits a lot
# and a 10 bps fee: 12 lots would cost 24.024, so the budget buys 11.
S18 = """
[[classes]]
name = "s18"
lot_cu = 100
tick = 1
taker_fee_bps = 10
maker_fee_bps = 0

[[accounts]]
key = "s18-buyer"
secret = "s18-buyer-secret"
deposit = 24_010_000
roles = ["consumer"]

[[classes]]
name = "ticky"
lot_cu = 100
tick = 5
taker_fee_bps = 10
maker_fee_bps = 0
"""

HOUR = 3600 * 10**9
GATE_SECONDS = 60

# A class with futures whose windows are listed only by the operator.
FUTURES = f"""
[[classes]]
name = "hourly"
lot_cu = 100
tick = 1
taker_fee_bps = 10
maker_fee_bps = 0

[classes.futures]
list_ahead_hours = 0
gate_seconds = {GATE_SECONDS}
closing_call_seconds = 0
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("sdk")
    extra = S18 + FUTURES + "".join(desk_config(f"desk{i}") for i in range(DESKS))
    with ServerProcess(write_config(folder, extra=extra), folder / "data") as server:
        yield server


@dataclass(frozen=True)
class Desk:
    symbol: str
    buyer: str
    seller: str


@pytest.fixture
def desk() -> Desk:
    name = f"desk{next(_desks)}"
    return Desk(f"{name}-SPOT", f"{name}-buyer", f"{name}-seller")


def client(server: ServerProcess, key: str | None, **options: object) -> Client:
    secret = None if key is None else f"{key}-secret"
    return Client(server.url, key, secret, **options)  # type: ignore[arg-type]


@pytest.fixture
async def buyer(server: ServerProcess, desk: Desk) -> AsyncIterator[Client]:
    async with client(server, desk.buyer) as cux:
        yield cux


@pytest.fixture
async def seller(server: ServerProcess, desk: Desk) -> AsyncIterator[Client]:
    async with client(server, desk.seller) as cux:
        yield cux


def hold(price: int, qty: int) -> int:
    return qty * (price + -(-price * 10 // 10_000))


# -- login --------------------------------------------------------------------------


async def test_login_with_the_right_secret_sets_the_account(
    server: ServerProcess,
) -> None:
    async with client(server, "alice") as cux:
        assert cux.account == "alice"
        assert cux.connected
        assert await cux.balance() == Balance(DEPOSIT, 0, 0)
        assert await cux.ping() > 0


@pytest.mark.parametrize(("key", "secret"), [("alice", "wrong"), ("nobody", "x")])
async def test_login_with_a_bad_secret_or_key_raises_auth_failed(
    server: ServerProcess, key: str, secret: str
) -> None:
    with pytest.raises(AuthError) as caught:
        await Client(server.url, key, secret, reconnect=False).start()
    assert caught.value.code == "AUTH_FAILED"
    assert caught.value.message == "unknown key or bad signature"


async def test_a_private_request_without_login_raises_not_logged_in(
    server: ServerProcess,
) -> None:
    async with client(server, None) as cux:
        with pytest.raises(AuthError) as caught:
            await cux.balance()
        assert caught.value.code == "NOT_LOGGED_IN"
        with pytest.raises(AuthError) as caught:
            await cux.subscribe("orders")
        assert caught.value.code == "NOT_LOGGED_IN"


async def test_a_request_before_start_raises_client_closed(
    server: ServerProcess,
) -> None:
    with pytest.raises(ClientError, match="not started"):
        await client(server, "alice").balance()


# -- orders -------------------------------------------------------------------------


async def test_place_returns_the_order_and_holds_its_cost(
    buyer: Client, desk: Desk
) -> None:
    placed = await buyer.buy(desk.symbol, 10, 1200, client_order_id="a1")
    assert placed.order_id.isdigit()
    assert (placed.symbol, placed.side, placed.qty, placed.price, placed.type) == (
        desk.symbol,
        "buy",
        10,
        1200,
        "limit",
    )
    [listed] = await buyer.orders(desk.symbol)
    assert (listed.order_id, listed.client_order_id, listed.leaves) == (
        placed.order_id,
        "a1",
        10,
    )
    assert listed.tif == "GTC"
    assert await buyer.balance() == Balance(DEPOSIT - hold(1200, 10), hold(1200, 10), 0)


async def test_amend_changes_quantity_and_price(buyer: Client, desk: Desk) -> None:
    placed = await buyer.buy(desk.symbol, 10, 1200)
    await buyer.amend(placed.order_id, qty=4)
    await buyer.amend(placed.order_id, price=1100)
    [listed] = await buyer.orders(desk.symbol)
    assert (listed.leaves, listed.price) == (4, 1100)
    with pytest.raises(InvalidOrder) as caught:
        await buyer.amend(placed.order_id)
    assert caught.value.code == "NOTHING_TO_AMEND"


async def test_cancel_then_cancel_again_raises_order_closed(
    buyer: Client, desk: Desk
) -> None:
    placed = await buyer.buy(desk.symbol, 3, 1000)
    await buyer.cancel(placed.order_id)
    result = await buyer.wait_order(placed.order_id, timeout=10)
    assert (result.status, result.reason, result.filled) == ("cancelled", "user", 0)
    with pytest.raises(OrderClosed) as caught:
        await buyer.cancel(placed.order_id)
    assert caught.value.code == "ORDER_CLOSED"
    assert await buyer.balance() == Balance(DEPOSIT, 0, 0)


async def test_cancel_of_an_unknown_or_foreign_order_raises_order_not_found(
    buyer: Client, seller: Client, desk: Desk
) -> None:
    with pytest.raises(OrderNotFound) as caught:
        await buyer.cancel("99999999")
    assert caught.value.code == "UNKNOWN_ORDER"
    theirs = await seller.sell(desk.symbol, 1, 5000)
    with pytest.raises(OrderNotFound) as caught:
        await buyer.cancel(theirs.order_id)
    assert caught.value.code == "ORDER_NOT_OWNED"
    with pytest.raises(OrderNotFound):
        await buyer.wait_order("99999999")


async def test_cancel_all_cancels_every_open_order_and_counts_them(
    buyer: Client, desk: Desk
) -> None:
    for price in (1000, 1001, 1002):
        await buyer.buy(desk.symbol, 1, price)
    assert await buyer.cancel_all(desk.symbol) == 3
    assert await buyer.orders(desk.symbol) == []
    assert await buyer.cancel_all() == 0


async def test_wait_order_returns_every_fill_of_an_order_filled_in_parts(
    buyer: Client, seller: Client, desk: Desk
) -> None:
    resting = await buyer.buy(desk.symbol, 10, 1200)
    await seller.sell(desk.symbol, 4, 1200)
    await seller.sell(desk.symbol, 6, 1190)
    result = await buyer.wait_order(resting.order_id, timeout=10)
    assert (result.status, result.filled, result.leaves) == ("filled", 10, 0)
    assert [(f.qty, f.price, f.liquidity) for f in result.fills] == [
        (4, 1200, "maker"),
        (6, 1200, "maker"),
    ]
    assert result.notional == 12_000
    assert result.fees == 0


async def test_a_market_buy_takes_the_book_and_its_rest_is_cancelled(
    buyer: Client, seller: Client, desk: Desk
) -> None:
    await seller.sell(desk.symbol, 3, 1500)
    taker = await buyer.buy(desk.symbol, 5)
    assert (taker.type, taker.price) == ("market", None)
    result = await buyer.wait_order(taker.order_id, timeout=10)
    assert (result.status, result.reason, result.filled) == ("cancelled", "unfilled", 3)
    assert [(f.qty, f.price, f.fee) for f in result.fills] == [(3, 1500, 5)]


async def test_sync_after_a_trade_has_seen_its_order_and_fill_messages(
    buyer: Client, seller: Client, desk: Desk
) -> None:
    await seller.sell(desk.symbol, 2, 800)
    taker = await buyer.buy(desk.symbol, 2, 800)
    await buyer.sync()
    seen = buyer.orders_tracker.get(taker.order_id)
    assert seen is not None
    assert (seen.status, seen.filled, len(seen.fills)) == ("filled", 2, 1)


@pytest.mark.parametrize(
    ("order", "error", "code"),
    [
        ({"qty": 0, "price": 1000}, InvalidOrder, Code.INVALID_QUANTITY),
        ({"qty": 1, "price": 0}, InvalidOrder, Code.INVALID_PRICE),
        ({"qty": 10**6, "price": 10**6}, InsufficientFunds, Code.INSUFFICIENT_FUNDS),
        (
            {"qty": 1, "price": 1000, "tif": "IOC", "post_only": True},
            InvalidOrder,
            Code.INVALID_ORDER_TYPE,
        ),
        ({"qty": 1, "price": 1000, "tif": "GTD"}, InvalidOrder, Code.INVALID_EXPIRY),
        (
            {"qty": 1, "price": 1000, "tif": "XYZ"},
            ProtocolError,
            WireCode.INVALID_FIELD,
        ),
    ],
)
async def test_a_refused_order_raises_its_typed_error_and_changes_nothing(
    buyer: Client,
    desk: Desk,
    order: dict[str, object],
    error: type[ServerError],
    code: str,
) -> None:
    with pytest.raises(error) as caught:
        await buyer.place(desk.symbol, "buy", **order)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert caught.value.request_id is not None
    assert await buyer.balance() == Balance(DEPOSIT, 0, 0)
    assert await buyer.orders() == []


async def test_price_off_the_tick_and_an_unknown_symbol_raise_invalid_order(
    server: ServerProcess,
) -> None:
    async with client(server, "alice") as cux:
        with pytest.raises(InvalidOrder) as caught:
            await cux.buy("ticky-SPOT", 1, 1003)
        assert caught.value.code == "PRICE_NOT_ON_TICK"
        with pytest.raises(InvalidOrder) as caught:
            await cux.buy("nowhere-SPOT", 1, 1000)
        assert caught.value.code == "UNKNOWN_SYMBOL"


async def test_a_sell_without_capacity_raises_insufficient_capacity(
    buyer: Client, desk: Desk
) -> None:
    with pytest.raises(InsufficientCapacity) as caught:
        await buyer.sell(desk.symbol, 1, 1000)
    assert caught.value.code == "INSUFFICIENT_CAPACITY"


async def test_a_post_only_order_that_would_trade_raises_would_trade(
    buyer: Client, seller: Client, desk: Desk
) -> None:
    await seller.sell(desk.symbol, 1, 1000)
    with pytest.raises(InvalidOrder) as caught:
        await buyer.buy(desk.symbol, 1, 1000, post_only=True)
    assert caught.value.code == "WOULD_TRADE"


async def test_an_operator_request_from_a_trader_raises_role_not_allowed(
    buyer: Client, desk: Desk
) -> None:
    with pytest.raises(AuthError) as caught:
        await buyer.set_phase(desk.symbol, "halted")
    assert caught.value.code == "ROLE_NOT_ALLOWED"


async def test_an_unknown_channel_raises_unknown_channel(buyer: Client) -> None:
    with pytest.raises(ProtocolError) as caught:
        await buyer.subscribe("weather.nowhere-SPOT")
    assert caught.value.code == "UNKNOWN_CHANNEL"


async def test_a_channel_of_an_unknown_symbol_raises_unknown_symbol(
    buyer: Client,
) -> None:
    with pytest.raises(InvalidOrder) as caught:
        await buyer.subscribe("trades.nowhere-SPOT")
    assert caught.value.code == "UNKNOWN_SYMBOL"
    assert "'nowhere-SPOT'" in caught.value.message


# Every code the server can send, and the class it must raise: a code added to
# one of the server's tables fails the coverage test below until it is here.
CLASS_OF: dict[str, type[ServerError]] = {
    # the server's own (WireCode)
    "BAD_FRAME": ProtocolError,
    "FRAME_TOO_LARGE": ProtocolError,
    "UNKNOWN_OP": ProtocolError,
    "INVALID_FIELD": ProtocolError,
    "UNKNOWN_CHANNEL": ProtocolError,
    "NOT_LOGGED_IN": AuthError,
    "ALREADY_LOGGED_IN": AuthError,
    "AUTH_FAILED": AuthError,
    "RATE_LIMITED": RateLimited,
    "SHUTTING_DOWN": ServerUnavailable,
    "INTERNAL_ERROR": ServerUnavailable,
    # the REST API's HTTP layer (HTTP_CODES)
    "NOT_FOUND": ProtocolError,
    "METHOD_NOT_ALLOWED": ProtocolError,
    "REQUEST_TOO_LARGE": ProtocolError,
    "BAD_REQUEST": ProtocolError,
    # the engine's (Code)
    "ROLE_NOT_ALLOWED": AuthError,
    "UNKNOWN_SYMBOL": InvalidOrder,
    "INVALID_SIDE": InvalidOrder,
    "INVALID_QUANTITY": InvalidOrder,
    "INVALID_PRICE": InvalidOrder,
    "PRICE_NOT_ON_TICK": InvalidOrder,
    "INVALID_ORDER_TYPE": InvalidOrder,
    "INVALID_EXPIRY": InvalidOrder,
    "INVALID_CLIENT_ORDER_ID": InvalidOrder,
    "INVALID_COUNTERPARTIES": InvalidOrder,
    "NOTHING_TO_AMEND": InvalidOrder,
    "WOULD_TRADE": InvalidOrder,
    "UNKNOWN_ORDER": OrderNotFound,
    "ORDER_NOT_OWNED": OrderNotFound,
    "ORDER_CLOSED": OrderClosed,
    "NOT_TRADING": NotTrading,
    "INSUFFICIENT_FUNDS": InsufficientFunds,
    "INSUFFICIENT_CAPACITY": InsufficientCapacity,
    "INVALID_PHASE": OperatorError,
    "INVALID_SCHEDULE": OperatorError,
    "UNKNOWN_CLASS": OperatorError,
    "INVALID_WINDOW": OperatorError,
    "INSTRUMENT_EXISTS": OperatorError,
    "UNKNOWN_ACCOUNT": AccountError,
    "INVALID_ACCOUNT_NAME": AccountError,
    "INVALID_ROLE": AccountError,
    "ACCOUNT_EXISTS": AccountError,
    "INVALID_AMOUNT": AccountError,
    "UNKNOWN_ESCROW": AccountError,
    "ESCROW_LOCKED": AccountError,
    "UNKNOWN_LEASE": LeaseError,
    "LEASE_EXHAUSTED": LeaseError,
    "LEASE_FIRM": LeaseError,
    "INVALID_LEASE_END": LeaseError,
    "UNKNOWN_JOB": JobError,
    "INVALID_JOB": JobError,
    # the job requests' (JOB_CODES)
    "UNKNOWN_TIER": JobError,
    "JOB_UNFILLED": JobError,
    "BUDGET_TOO_SMALL": JobError,
    "JOBS_UNAVAILABLE": JobError,
    "JOB_ENDED": JobError,
    "LEASE_IN_USE": LeaseError,
    "UNKNOWN_SHARD": JobError,
    "REPORT_REJECTED": JobError,
    # register_node's (NODE_CODES)
    "NODE_ID_IN_USE": JobError,
}

# The server's code tables, by name: each is joined below.
CODE_TABLES = {"CODES", "WIRE_CODES", "JOB_CODES", "NODE_CODES", "HTTP_CODES"}


def test_the_class_table_covers_every_code_of_the_servers_tables() -> None:
    server_codes = {*Code, *WireCode, *JOB_CODES, *NODE_CODES, *HTTP_CODES}

    assert set(CLASS_OF) == server_codes


def test_the_server_has_no_code_table_beside_those_joined_above() -> None:
    table = re.compile(r"^((?:[A-Z]+_)*CODES)\b\s*[:=]", re.MULTILINE)
    sources = [*(ROOT / "exchange").rglob("*.py"), *(ROOT / "matching").rglob("*.py")]

    found = {m[1] for path in sources for m in table.finditer(path.read_text("utf-8"))}

    assert found == CODE_TABLES


@pytest.mark.parametrize(("code", "expected"), sorted(CLASS_OF.items()))
def test_each_code_raises_its_own_class_with_the_code_and_message(
    code: str, expected: type[ServerError]
) -> None:
    error = error_for(code, "m", 3)

    assert type(error) is expected
    assert (error.code, error.message, error.request_id) == (code, "m", 3)


def test_an_unknown_code_raises_a_plain_server_error() -> None:
    error = error_for("SOMETHING_NEW", "m")

    assert type(error) is ServerError
    assert error.code == "SOMETHING_NEW"


def test_the_groups_catch_their_members() -> None:
    assert issubclass(InsufficientFunds, OrderRejected)
    assert issubclass(NotTrading, OrderRejected)
    assert issubclass(LeaseError, JobError)  # submit_job's callers catch JobError
    assert not issubclass(OperatorError, OrderRejected)


def test_the_sdks_frame_limit_is_the_servers() -> None:
    assert MAX_FRAME == SERVER_MAX_FRAME


# -- codes a client receives, each from a real server --------------------------------


@dataclass(frozen=True)
class Scene:
    """The actors of one code's scenario: the desk's buyer and seller, and
    the market's operator."""

    desk: Desk
    buyer: Client
    seller: Client
    operator: Client


async def halted_instrument(scene: Scene) -> None:
    await scene.operator.set_phase(scene.desk.symbol, "halted")
    await scene.buyer.buy(scene.desk.symbol, 1, 1000)


async def unknown_tier(scene: Scene) -> None:
    await scene.buyer.submit_job(
        scene.desk.symbol, ["a text"], budget_cu=1, tier="ultra", max_price=1000
    )


async def unknown_lease(scene: Scene) -> None:
    await scene.buyer.submit_job(
        scene.desk.symbol, ["a text"], budget_cu=1, leases=[987_654_321]
    )


async def lease_in_use(scene: Scene) -> None:
    lease, first = await waiting_job(scene)
    try:
        await scene.buyer.submit_job(
            scene.desk.symbol, ["another"], budget_cu=1, leases=[lease]
        )
    finally:
        await scene.buyer.cancel_job(first)


async def current_phase(scene: Scene) -> None:
    await scene.operator.set_phase(scene.desk.symbol, "continuous")


async def long_client_order_id(scene: Scene) -> None:
    await scene.buyer.buy(scene.desk.symbol, 1, 1000, client_order_id="x" * 65)


async def counterparties_on_a_resting_order(scene: Scene) -> None:
    await scene.buyer.buy(
        scene.desk.symbol, 1, 1000, counterparties=[scene.desk.seller]
    )


async def zero_budget(scene: Scene) -> None:
    await scene.buyer.submit_job(scene.desk.symbol, ["a text"], budget_cu=0)


async def second_login(scene: Scene) -> None:
    await scene.buyer.request("login", key=scene.desk.buyer, signature="00")


async def unknown_op(scene: Scene) -> None:
    await scene.buyer.request("frobnicate")


async def oversized_job(scene: Scene) -> None:
    texts = ["word " * 1600] * 10  # 80 kB of text, in inputs the server allows
    await scene.buyer.submit_job(scene.desk.symbol, texts, budget_cu=1, max_price=1)


async def budget_below_a_layer(scene: Scene) -> None:
    texts = ["word " * 200] * 4  # 202 tokens each: one layer of every input is 4 CU
    await scene.buyer.submit_job(scene.desk.symbol, texts, budget_cu=1, max_price=1000)


async def schedule_in_the_past(scene: Scene) -> None:
    await scene.operator.request(
        "schedule_phase", symbol=scene.desk.symbol, phase="halted", at=1
    )


async def future_of_a_class_without_futures(scene: Scene) -> None:
    resource_class = scene.desk.symbol.removesuffix("-SPOT")
    start = await next_window(scene)
    await scene.operator.request(
        "list_future", resource_class=resource_class, start=start
    )


async def window_off_the_hour(scene: Scene) -> None:
    start = await next_window(scene)
    await scene.operator.request(
        "list_future", resource_class="hourly", start=start + 1
    )


async def window_listed_twice(scene: Scene) -> None:
    # The only window this server lists: listed once here, its second
    # listing is refused.
    start = await next_window(scene)
    listed = await scene.operator.request(
        "list_future", resource_class="hourly", start=start
    )
    assert listed["type"] == "ack"
    await scene.operator.request("list_future", resource_class="hourly", start=start)


async def node_id_registered_twice(scene: Scene) -> None:
    """Two connections of one provider register one node id: the second is
    refused while the first is open."""
    resource_class = scene.desk.symbol.removesuffix("-SPOT")

    async def register(cux: Client) -> None:
        await cux.request(
            "register_node",
            node_id="twin",
            resource_class=resource_class,
            cu_per_second_milli=1_000_000,
        )

    await register(scene.seller)
    seller = scene.desk.seller
    async with Client(scene.seller.endpoint.ws, seller, secret_of(seller)) as other:
        await register(other)


async def next_window(scene: Scene) -> int:
    """The start (ns) of the first whole hour whose gate is a minute away or
    more on the server's clock."""
    now = await scene.operator.ping()
    earliest = now + (GATE_SECONDS + 60) * 10**9
    return -(-earliest // HOUR) * HOUR


async def bought_lease(scene: Scene) -> int:
    """A spot lease of the desk's buyer: one lot bought from its seller."""
    await scene.seller.sell(scene.desk.symbol, 1, 1000)
    order = await scene.buyer.buy(scene.desk.symbol, 1, 1000, tif="IOC")
    result = await scene.buyer.wait_order(order.order_id, timeout=10)
    [fill] = result.fills
    return fill.trade_id


async def waiting_job(scene: Scene) -> tuple[int, str]:
    """A job of the desk's buyer that cannot run yet, and its lease: the
    seller's connection registers a node that never answers its shards (a
    job on a provider without any node would fail at once), so the job runs
    until its shard's deadline, 30 s away."""
    resource_class = scene.desk.symbol.removesuffix("-SPOT")
    await scene.seller.request(
        "register_node",
        node_id="silent",
        resource_class=resource_class,
        cu_per_second_milli=1_000_000,
    )
    lease = await bought_lease(scene)
    job_id = await scene.buyer.submit_job(
        scene.desk.symbol, ["a text"], budget_cu=1, tier="fast", leases=[lease]
    )
    return lease, job_id


@pytest.fixture
async def scene(
    server: ServerProcess, desk: Desk, buyer: Client, seller: Client
) -> AsyncIterator[Scene]:
    async with client(server, "operator") as operator:
        yield Scene(desk, buyer, seller, operator)


# INVALID_CLIENT_ORDER_ID and INVALID_JOB are the engine's checks of what the
# wire has already checked (a label of at most 64 characters; 1 to 1,024 inputs,
# a known tier, a budget of at least 1 CU): a client gets INVALID_FIELD first.
# FRAME_TOO_LARGE is raised by the SDK before sending (see MAX_FRAME).
@pytest.mark.parametrize(
    ("scenario", "error", "code", "says"),
    [
        (halted_instrument, NotTrading, "NOT_TRADING", "in its phase"),
        (unknown_tier, JobError, "UNKNOWN_TIER", "tier must be one of"),
        (unknown_lease, LeaseError, "UNKNOWN_LEASE", "not a live lease of yours"),
        (lease_in_use, LeaseError, "LEASE_IN_USE", "running another job"),
        (current_phase, OperatorError, "INVALID_PHASE", "already in it"),
        (
            counterparties_on_a_resting_order,
            InvalidOrder,
            "INVALID_COUNTERPARTIES",
            "IOC limit order",
        ),
        (long_client_order_id, ProtocolError, "INVALID_FIELD", "client_order_id"),
        (zero_budget, ProtocolError, "INVALID_FIELD", "budget_cu"),
        (second_login, AuthError, "ALREADY_LOGGED_IN", "already logged in"),
        (unknown_op, ProtocolError, "UNKNOWN_OP", "no request has this op"),
        (oversized_job, ProtocolError, "FRAME_TOO_LARGE", "65,536"),
        (
            budget_below_a_layer,
            JobError,
            "BUDGET_TOO_SMALL",
            "budget_cu 1 affords no layer for 4 of the 4 inputs",
        ),
        (schedule_in_the_past, OperatorError, "INVALID_SCHEDULE", "after the current"),
        (
            future_of_a_class_without_futures,
            OperatorError,
            "UNKNOWN_CLASS",
            "no resource class with futures",
        ),
        (window_off_the_hour, OperatorError, "INVALID_WINDOW", "whole hour"),
        (window_listed_twice, OperatorError, "INSTRUMENT_EXISTS", "already listed"),
        (node_id_registered_twice, JobError, "NODE_ID_IN_USE", "its own id"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_a_refused_request_raises_the_class_of_its_code_and_the_client_goes_on(
    scene: Scene,
    scenario: Callable[[Scene], Awaitable[None]],
    error: type[ServerError],
    code: str,
    says: str,
) -> None:
    with pytest.raises(ServerError) as caught:
        await scenario(scene)

    assert type(caught.value) is error
    assert caught.value.code == code
    assert says in caught.value.message
    assert await scene.buyer.ping() > 0  # the connection is still up


async def test_requests_through_a_sigterm_are_answered_or_shutting_down_or_lost(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Requests stream while the server stops: each gets its answer, a
    ServerUnavailable with SHUTTING_DOWN (the server stopped taking requests),
    or ConnectionLost/ClientClosed (the connection closed under it); none
    times out or raises anything else."""
    folder = tmp_path_factory.mktemp("shutdown")
    srv = ServerProcess(write_config(folder), folder / "data")
    outcomes: list[object] = []
    try:
        async with client(srv, "alice", reconnect=False) as cux:

            async def stream() -> None:
                while True:
                    try:
                        outcomes.append(await cux.balance(timeout=30))
                    except ClientError as exc:
                        outcomes.append(exc)
                        if isinstance(exc, ConnectionLost | ClientClosed):
                            return

            streams = [asyncio.create_task(stream()) for _ in range(16)]
            while len(outcomes) < 200:  # the streams are running
                await asyncio.sleep(0.01)
            srv.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*streams), 60)
    finally:
        srv.stop()

    errors = [o for o in outcomes if isinstance(o, ClientError)]
    refused = [e for e in errors if isinstance(e, ServerError)]
    assert all(isinstance(o, Balance | ClientError) for o in outcomes)
    lost = [e for e in errors if isinstance(e, ConnectionLost | ClientClosed)]
    assert len(refused) + len(lost) == len(errors)
    assert all(type(e) is ServerUnavailable for e in refused), refused
    assert {e.code for e in refused} <= {"SHUTTING_DOWN"}
    # Whether some request fell between the server's last answer and its close
    # (SHUTTING_DOWN) is up to the scheduler: in 3 runs of 5 some did.
    assert len(lost) == 16  # every stream ended on one


# -- jobs and operators: the success paths -----------------------------------------


async def test_a_job_on_a_lease_is_followed_by_job_updates_until_cancel_job_ends_it(
    scene: Scene,
) -> None:
    lease, job_id = await waiting_job(scene)
    updates = scene.buyer.job_updates(job_id)
    first = await anext(updates)

    await scene.buyer.cancel_job(job_id)
    rest = [update async for update in updates]
    job = await scene.buyer.get_job(job_id)

    assert (first.job_id, first.status, first.tier, first.inputs) == (
        job_id,
        "running",
        "fast",
        1,
    )
    assert rest[-1].status == "cancelled"
    assert (job.status, job.done_inputs, job.flops) == ("cancelled", 0, 0)
    assert job.refund == 1000  # the lease's lot, unused, comes back
    with pytest.raises(LeaseError) as caught:  # a spot lease ends with its job
        await scene.buyer.submit_job(
            scene.desk.symbol, ["a text"], budget_cu=1, leases=[lease]
        )
    assert caught.value.code == "UNKNOWN_LEASE"


async def test_an_operators_set_phase_runs_the_opening_auction_seen_on_auction(
    scene: Scene,
) -> None:
    symbol = scene.desk.symbol
    auction = await scene.buyer.subscribe(f"auction.{symbol}")
    phases = await scene.buyer.subscribe("phases")
    await scene.operator.set_phase(symbol, "pre_open")
    await scene.buyer.buy(symbol, 2, 1000)
    await scene.seller.sell(symbol, 3, 990)

    await scene.operator.set_phase(symbol, "continuous")

    while True:  # the indicative prices of the call, then the auction
        message = await auction.next(timeout=10)
        assert isinstance(message, AuctionMessage)
        if not message.indicative:
            break
    assert (message.kind, message.volume) == ("opening", 2)
    assert message.price in (990, 1000)
    seen: list[tuple[str, str]] = []
    while len(seen) < 2:
        change = await phases.next(timeout=10)
        if isinstance(change, PhaseMessage) and change.symbol == symbol:
            seen.append((change.old_phase, change.phase))
    assert seen == [("continuous", "pre_open"), ("pre_open", "continuous")]
    await auction.close()
    await phases.close()


async def test_refresh_gives_a_book_subscription_a_fresh_snapshot(
    buyer: Client, desk: Desk
) -> None:
    book = await buyer.subscribe(f"book.{desk.symbol}")
    first = await book.next(timeout=10)
    await buyer.buy(desk.symbol, 2, 700)
    update = await book.next(timeout=10)

    await buyer.refresh([(f"book.{desk.symbol}", None)])
    fresh = await book.next(timeout=10)

    assert isinstance(first, BookMessage)
    assert first.snapshot
    assert isinstance(update, BookMessage)
    assert not update.snapshot
    assert isinstance(fresh, BookMessage)
    assert fresh.snapshot
    assert (fresh.seq, fresh.bids) == (update.seq, [(700, 2)])
    await book.close()


# -- subscriptions ------------------------------------------------------------------


async def test_subscriptions_yield_typed_trades_orders_fills_and_balances(
    buyer: Client, seller: Client, desk: Desk
) -> None:
    trades = await buyer.subscribe(f"trades.{desk.symbol}")
    private = await buyer.subscribe("orders", "fills", "balance")
    resting = await buyer.buy(desk.symbol, 5, 1000)
    await seller.sell(desk.symbol, 5, 1000)
    trade = await trades.next(timeout=10)
    assert isinstance(trade, TradeMessage)
    assert (trade.price, trade.qty, trade.taker_side) == (1000, 5, "sell")
    kinds: list[type] = []
    while len(kinds) < 5:
        message = await private.next(timeout=10)
        kinds.append(type(message))
        if isinstance(message, Fill):
            assert (message.order_id, message.qty) == (resting.order_id, 5)
        if isinstance(message, OrderUpdate) and message.status == "filled":
            assert message.order_id == resting.order_id
    assert kinds.count(OrderUpdate) == 2  # new, then filled
    assert kinds.count(BalanceUpdate) == 2  # the hold, then the fill
    assert kinds.count(Fill) == 1
    await trades.close()
    await private.close()
    assert trades.closed


async def test_two_subscriptions_to_one_channel_both_get_each_message(
    buyer: Client, seller: Client, desk: Desk
) -> None:
    first = await buyer.subscribe(f"trades.{desk.symbol}")
    second = await buyer.subscribe(f"trades.{desk.symbol}")
    await first.close()
    await buyer.sync()
    await seller.sell(desk.symbol, 1, 900)
    await buyer.buy(desk.symbol, 1, 900)
    message = await second.next(timeout=10)
    assert isinstance(message, TradeMessage)
    await second.close()


async def test_a_book_subscription_starts_with_a_snapshot_then_updates(
    buyer: Client, desk: Desk
) -> None:
    await buyer.buy(desk.symbol, 2, 700)
    async with await buyer.subscribe(f"book.{desk.symbol}", depth=10) as book:
        snapshot = await book.next(timeout=10)
        assert isinstance(snapshot, BookMessage)
        assert snapshot.snapshot
        assert snapshot.depth == 10
        assert snapshot.bids == [(700, 2)]
        await buyer.buy(desk.symbol, 1, 701)
        update = await book.next(timeout=10)
        assert isinstance(update, BookMessage)
        assert (update.seq, update.bids) == (snapshot.seq + 1, [(701, 1)])


async def test_a_reader_that_falls_behind_gets_a_resync_then_a_fresh_snapshot(
    buyer: Client, desk: Desk
) -> None:
    book = await buyer.subscribe(f"book.{desk.symbol}", max_queue=4)
    for price in range(500, 510):
        await buyer.buy(desk.symbol, 1, price)
    await buyer.sync()
    first = await book.next(timeout=10)
    assert first == Resync([f"book.{desk.symbol}"], "slow reader")
    while True:  # what came after the overflow, up to the fresh snapshot
        message = await book.next(timeout=10)
        assert isinstance(message, BookMessage)
        if message.snapshot:
            break
    assert message.bids == [(p, 1) for p in range(509, 499, -1)]
    await book.close()


async def test_cancel_on_disconnect_cancels_the_connections_orders_when_it_drops(
    server: ServerProcess, desk: Desk
) -> None:
    async with client(server, desk.buyer) as watcher:
        async with client(server, desk.buyer, cancel_on_disconnect=True) as cux:
            placed = await cux.buy(desk.symbol, 2, 1000)
        result = await watcher.wait_order(placed.order_id, timeout=15)
        assert (result.status, result.reason) == ("cancelled", "user")
        assert await watcher.orders() == []


async def test_without_cancel_on_disconnect_orders_outlive_the_connection(
    server: ServerProcess, desk: Desk
) -> None:
    async with client(server, desk.buyer) as cux:
        placed = await cux.buy(desk.symbol, 2, 1000)
    async with client(server, desk.buyer) as again:
        assert [o.order_id for o in await again.orders()] == [placed.order_id]


# -- the book mirror ----------------------------------------------------------------


async def test_live_book_equals_the_rest_snapshot_after_a_burst_of_random_orders(
    buyer: Client, seller: Client, desk: Desk, server: ServerProcess
) -> None:
    full = await LiveBook.open(buyer, desk.symbol)
    top = await LiveBook.open(buyer, desk.symbol, depth=10)
    rng = random.Random(11)

    async def burst(cux: Client, side: str) -> None:
        placed = []
        for _ in range(120):
            price = rng.randint(950, 1050) + (10 if side == "sell" else -10)
            order = await cux.place(desk.symbol, side, rng.randint(1, 20), price)
            placed.append(order.order_id)
            if rng.random() < 0.3:
                victim = placed.pop(rng.randrange(len(placed)))
                # It may have traded away meanwhile.
                with contextlib.suppress(OrderClosed, OrderNotFound):
                    await cux.cancel(victim)

    await asyncio.gather(burst(buyer, "buy"), burst(seller, "sell"))
    rest = await asyncio.to_thread(http_get, f"{server.http}/api/v1/book/{desk.symbol}")
    assert rest.status == 200
    await full.wait_seq(rest.body["seq"], timeout=20)
    assert full.mirror.seq == rest.body["seq"]
    assert [list(level) for level in full.mirror.bids()] == rest.body["bids"]
    assert [list(level) for level in full.mirror.asks()] == rest.body["asks"]
    assert full.mirror.checksum() == rest.body["checksum"]
    assert len(rest.body["bids"]) > 10  # the depth window had edges to move
    await buyer.sync()
    assert top.mirror.bids() == full.mirror.bids(10)
    assert top.mirror.asks() == full.mirror.asks(10)
    assert full.mirror.resyncs == top.mirror.resyncs == 0
    await full.close()
    await top.close()


# -- sizing: scenario S18 -----------------------------------------------------------


async def test_s18_a_budget_sized_buy_rounds_down_and_one_lot_more_is_refused(
    server: ServerProcess,
) -> None:
    async with client(server, "s18-buyer") as cux:
        budget = (await cux.balance()).available
        assert budget == parse_credits("24.01")
        qty = max_buy_qty(budget, 2_000_000, fee_bps=10)
        assert qty == 11  # 24.01 / 2.002 = 11.99...; 24.01 / 2 rounds to 12
        with pytest.raises(InsufficientFunds):
            await cux.buy("s18-SPOT", qty + 1, 2_000_000)
        assert await cux.balance() == Balance(budget, 0, 0)  # no partial hold
        await cux.buy("s18-SPOT", qty, 2_000_000)
        balance = await cux.balance()
        assert balance.held == buy_cost(qty, 2_000_000, 10) == 22_022_000
        assert balance.available == budget - balance.held >= 0


# -- rate limit ---------------------------------------------------------------------


async def test_a_burst_past_the_rate_limit_raises_rate_limited(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("ratelimit")
    with ServerProcess(write_config(folder, rate_limit=5), folder / "data") as srv:
        async with client(srv, "alice") as cux:
            results = await asyncio.gather(
                *(cux.ping() for _ in range(200)), return_exceptions=True
            )
    limited = [r for r in results if isinstance(r, RateLimited)]
    assert limited
    assert {r.code for r in limited} == {"RATE_LIMITED"}
    assert all(isinstance(r, int | RateLimited) for r in results)


# -- REST ---------------------------------------------------------------------------


async def test_rest_client_reads_the_book_trades_account_and_orders(
    server: ServerProcess, buyer: Client, seller: Client, desk: Desk
) -> None:
    await seller.sell(desk.symbol, 2, 1300)
    await buyer.buy(desk.symbol, 1, 1300)
    resting = await buyer.buy(desk.symbol, 4, 1200)
    async with RestClient(server.http, desk.buyer, f"{desk.buyer}-secret") as rest:
        book = await rest.book(desk.symbol)
        assert (book["bids"], book["asks"]) == ([[1200, 4]], [[1300, 1]])
        [trade] = await rest.trades(desk.symbol)
        assert (trade.price, trade.qty, trade.taker_side) == (1300, 1, "buy")
        account = await rest.account()
        assert account["account"] == desk.buyer
        assert account["held"] == hold(1200, 4)
        assert [o.order_id for o in await rest.orders()] == [resting.order_id]
        assert any(i["symbol"] == desk.symbol for i in await rest.instruments())
        with pytest.raises(InvalidOrder) as caught:
            await rest.book("nowhere-SPOT")
        assert caught.value.code == "UNKNOWN_SYMBOL"
    async with RestClient(server.http, desk.buyer, "wrong") as rest:
        with pytest.raises(AuthError) as auth:
            await rest.account()
        assert auth.value.code == "AUTH_FAILED"


async def test_rest_client_raises_protocol_error_for_a_path_or_method_the_api_lacks(
    server: ServerProcess,
) -> None:
    async with RestClient(server.http) as rest:
        with pytest.raises(ProtocolError) as missing:
            await rest.get("/api/v1/nowhere")
        with pytest.raises(ProtocolError) as wrong_method:
            await rest.request("PUT", "/api/v1/instruments")

    assert (missing.value.code, missing.value.message) == (
        "NOT_FOUND",
        "no route has this path",
    )
    assert (wrong_method.value.code, wrong_method.value.message) == (
        "METHOD_NOT_ALLOWED",
        "this route does not take this method",
    )
