"""The fast book against the simple reference book, over random flows of commands.

Each flow opens three or four funded accounts (all but the fourth may sell),
then mixes limit and market orders of every time in force, post-only flags and
self-trade prevention modes, at a handful of prices so that orders cross often
and accounts meet their own orders, with cancels and amends of live, dead,
unknown and foreign order ids, deposits, withdrawals, capacity changes, phase
changes and clock ticks that expire GTD orders. A little of every kind of
mistake is mixed in, so that rejections are checked too.

The same flow goes through an engine with the fast `matching.book.Book` and one
with `ReferenceBook`: every command must give the same events, both engines
must pass their self-check (money conservation included) after every command,
and they must end with the same books and the same state hash. The trades must
also follow the rules that both books could break alike (maker's price, no
trade of a closed order, none within one account), and only GTC and GTD limit
orders may rest.

Beside that: the two books driven directly, without an engine, with budgets
and self-trade modes the engine rarely reaches; a FOK order against the same
order as IOC on a copy of the engine; and replays and restores from snapshots,
which must give the same state hash.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_book import ReferenceBook

from matching import (
    AmendOrder,
    CancelOrder,
    Command,
    Deposit,
    Engine,
    EngineState,
    Event,
    MarketConfig,
    OpenAccount,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    PlaceOrder,
    ResourceClass,
    SetCapacity,
    SetPhase,
    Tick,
    Trade,
    Withdraw,
)
from matching.book import FILL, Book, Happening
from matching.commands import Phase, Role, SelfTradePrevention, Side, TimeInForce
from matching.engine import BookFactory
from matching.order import (
    BUY,
    CANCEL_BOTH,
    CANCEL_MAKER,
    CANCEL_TAKER,
    GTC,
    GTD,
    MARKET_BUY_LIMIT,
    MARKET_SELL_LIMIT,
    SELL,
    UNLIMITED,
    Order,
)

SYMBOL = "cpu-SPOT"
SECOND = 1_000_000_000
START = 1_700_000_000 * SECOND
NAMES = ("ann", "bob", "cat", "dan")
"""Account names; the fourth account, when there is one, may not sell."""
SIDES: tuple[Side, Side] = ("buy", "sell")
"""The side names, indexed by `BUY` and `SELL`."""
SELLER: tuple[Role, ...] = ("consumer", "provider")
BUYER_ONLY: tuple[Role, ...] = ("consumer",)
STP_MODES: tuple[SelfTradePrevention, ...] = (
    "cancel_taker",
    "cancel_maker",
    "cancel_both",
)
MARKET_TIFS: tuple[TimeInForce, ...] = ("IOC", "FOK")
LIMIT_TIFS: tuple[TimeInForce, ...] = ("GTC",) * 5 + ("IOC", "FOK") + ("GTD",) * 2
PHASES: tuple[Phase, ...] = ("continuous", "halted", "closed")

Stamped = tuple[int, Command]
"""A command with the timestamp it is applied at; its sequence number is its
place in the flow, counted from 1."""


@dataclass(frozen=True)
class Market:
    """A market to run flows in, and the prices its orders are drawn from.

    Attributes:
        config: one resource class, ``cpu``, so one instrument, ``cpu-SPOT``.
        low, high: the range of prices drawn, in µcr per lot.
    """

    config: MarketConfig
    low: int
    high: int

    @property
    def tick(self) -> int:
        """The instrument's tick, in µcr per lot."""
        return self.config.classes[0].tick


# Prices near 1,000 µcr per lot make the fees (rounded up per fill) vary with
# the fill's size: 10 bps of 995 µcr is 0.995 µcr.
FEES = Market(
    MarketConfig(
        classes=[
            ResourceClass("cpu", lot_cu=100, tick=1, taker_fee_bps=10, maker_fee_bps=5)
        ]
    ),
    low=995,
    high=1005,
)
TICKED = Market(
    MarketConfig(
        classes=[
            ResourceClass("cpu", lot_cu=100, tick=5, taker_fee_bps=30, maker_fee_bps=7)
        ]
    ),
    low=985,
    high=1015,
)


# -- generating flows -----------------------------------------------------------


def _rarely(draw: st.DrawFn) -> bool:
    """True about once in thirty draws: where a mistake is mixed in."""
    return draw(st.integers(0, 29)) == 0


def _price(draw: st.DrawFn, market: Market, side: Side | None = None) -> int:
    """A price in the market's range, on the tick unless rarely.

    A buy is drawn as a distance below one tick above the middle, a sell as a
    distance above one tick below it: the simplest draws cross, and larger
    distances let both sides of the book fill up.
    """
    tick = market.tick
    mid = (market.low + market.high) // 2 // tick * tick
    most = (mid - market.low) // tick
    if side == "buy":
        price = mid + tick - draw(st.integers(0, most)) * tick
    elif side == "sell":
        price = mid - tick + draw(st.integers(0, most)) * tick
    else:
        price = mid + draw(st.integers(-most, most)) * tick
    if tick > 1 and _rarely(draw):
        price += draw(st.integers(1, tick - 1))
    return price


@st.composite
def prices(draw: st.DrawFn, market: Market, side: Side | None = None) -> int:
    """The strategy of `_price`: for tests that draw from `st.data`."""
    return _price(draw, market, side)


def _qty(draw: st.DrawFn) -> int:
    """A small quantity of lots; rarely 0, which is invalid."""
    return 0 if _rarely(draw) else draw(st.integers(1, 8))


def _place(
    draw: st.DrawFn, market: Market, names: list[str], now: int, step: int
) -> PlaceOrder:
    """A place of any kind; mostly valid, sometimes a disallowed combination.

    The account and the side are drawn as offsets from ones that rotate with
    ``step``, so that even the simplest draws (all zeros, which hypothesis
    favours) give orders of different accounts on both sides that trade.
    """
    is_market = draw(st.integers(0, 7)) == 0
    tif: TimeInForce
    if is_market:
        tif = "GTC" if _rarely(draw) else draw(st.sampled_from(MARKET_TIFS))
    else:
        tif = draw(st.sampled_from(LIMIT_TIFS))

    expire_at: int | None = None
    if tif == "GTD":
        expire_at = now + draw(st.integers(1, 12)) * SECOND
        if _rarely(draw):
            expire_at = draw(st.sampled_from((None, now)))
    elif _rarely(draw):
        expire_at = now + SECOND

    side = SIDES[(step + draw(st.integers(0, 1))) % 2]
    account = names[(step // 2 + draw(st.integers(0, 3))) % len(names)]
    return PlaceOrder(
        account=account,
        symbol=SYMBOL,
        side=side,
        qty=_qty(draw),
        type="market" if is_market else "limit",
        price=None if is_market else _price(draw, market, side),
        tif=tif,
        expire_at=expire_at,
        post_only=draw(st.integers(0, 6)) == 0,
        stp=draw(st.sampled_from(STP_MODES)),
    )


def _target(draw: st.DrawFn, shadow: Engine, names: list[str]) -> tuple[str, int]:
    """An (account, order id) for a cancel or amend: mostly a live order of its
    owner, sometimes a closed one, rarely an id that is no order, and rarely
    someone else's order."""
    live = sorted(shadow.orders)
    closed = sorted(shadow.closed)
    roll = draw(st.integers(0, 9))
    if live and roll < 7:
        order_id = draw(st.sampled_from(live))
    elif closed and roll < 9:
        order_id = draw(st.sampled_from(closed))
    else:
        order_id = draw(st.integers(1, shadow.seq + 1))

    account = draw(st.sampled_from(names))
    if not _rarely(draw):
        if order_id in shadow.orders:
            account = shadow.ledger.names[shadow.orders[order_id].account]
        elif order_id in shadow.closed:
            account = shadow.ledger.names[shadow.closed[order_id]]
    return account, order_id


# What the body of a flow is made of, by weight.
_KINDS = (
    ("place",) * 20
    + ("cancel",) * 2
    + ("amend",) * 6
    + ("tick",) * 3
    + ("deposit", "withdraw", "capacity", "phase")
)


@st.composite
def flows(draw: st.DrawFn, market: Market, max_steps: int) -> list[Stamped]:
    """A setup of 3 or 4 accounts, then up to ``max_steps`` random commands.

    A shadow engine (with the fast book) follows the flow as it is drawn, so
    that cancels and amends can aim at orders that are open or closed.
    """
    shadow = Engine(market.config)
    flow: list[Stamped] = []

    def append(ts: int, command: Command) -> None:
        flow.append((ts, command))
        shadow.apply(len(flow), ts, command)

    names = list(NAMES[: draw(st.integers(3, 4))])
    now = START
    for name in names:
        append(now, OpenAccount(name, BUYER_ONLY if name == "dan" else SELLER))
    for name in names:
        # Some accounts are poor, so that market buys run out of money.
        poor = draw(st.integers(0, 4)) == 4
        cash = st.integers(1_000, 10_000) if poor else st.integers(30_000, 100_000)
        append(now, Deposit(name, draw(cash)))
        append(now, SetCapacity(name, SYMBOL, draw(st.integers(20, 100))))

    phase: Phase = "continuous"
    for step in range(draw(st.integers(1, max_steps))):
        # Out of continuous trading most orders are rejected: go back soon.
        if phase != "continuous" and draw(st.booleans()):
            kind = "phase"
        else:
            kind = draw(st.sampled_from(_KINDS))
        if kind == "tick":
            now += draw(st.integers(1, 4)) * SECOND
        else:
            now += draw(st.sampled_from((0, 0, 0, SECOND)))

        command: Command
        if kind == "place":
            command = _place(draw, market, names, now, step)
        elif kind == "cancel":
            command = CancelOrder(*_target(draw, shadow, names))
        elif kind == "amend":
            account, order_id = _target(draw, shadow, names)
            order = shadow.orders.get(order_id)
            side = None if order is None else SIDES[order.side]
            qty = draw(st.one_of(st.none(), st.integers(0, 10)))
            price = None if draw(st.booleans()) else _price(draw, market, side)
            command = AmendOrder(account, order_id, qty, price)
        elif kind == "tick":
            command = Tick()
        elif kind == "deposit":
            amount = draw(st.integers(0, 20_000))
            command = Deposit(draw(st.sampled_from(names)), amount)
        elif kind == "withdraw":
            amount = draw(st.integers(0, 40_000))
            command = Withdraw(draw(st.sampled_from(names)), amount)
        elif kind == "capacity":
            lots = draw(st.integers(0, 100))
            command = SetCapacity(draw(st.sampled_from(names)), SYMBOL, lots)
        else:
            if phase == "continuous":
                phase = draw(st.sampled_from(PHASES))
            else:
                phase = "continuous"
            command = SetPhase(SYMBOL, phase)
        append(now, command)
    return flow


# -- running flows --------------------------------------------------------------


def _depths(engine: Engine) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The whole depth of both sides of the instrument's book."""
    book = engine.instruments[SYMBOL].book
    return book.depth(BUY), book.depth(SELL)


def _replay(
    market: Market, flow: list[Stamped], book_factory: BookFactory = Book
) -> tuple[Engine, list[list[Event]]]:
    """A new engine that applied ``flow``, and the events of each command."""
    engine = Engine(market.config, book_factory)
    events = [engine.apply(seq, ts, cmd) for seq, (ts, cmd) in enumerate(flow, 1)]
    return engine, events


def _assert_fast_book_matches_reference(market: Market, flow: list[Stamped]) -> None:
    """Apply ``flow`` to an engine with each book; require the same everything."""
    fast = Engine(market.config)
    reference = Engine(market.config, book_factory=ReferenceBook)
    for seq, (ts, command) in enumerate(flow, 1):
        open_before = _open_orders(fast)
        fast_events = fast.apply(seq, ts, command)
        reference_events = reference.apply(seq, ts, command)

        assert fast_events == reference_events, f"command {seq}: {command}"
        fast.check()
        reference.check()
        assert _depths(fast) == _depths(reference), f"command {seq}: {command}"
        _assert_matching_rules_hold(fast, open_before, seq, command, fast_events)

    assert fast.state_hash() == reference.state_hash()


def _open_orders(engine: Engine) -> dict[int, Order]:
    """Copies of the open orders by id, in queue order: bids, then asks."""
    book = engine.instruments[SYMBOL].book
    return {o.order_id: o.copy() for side in (BUY, SELL) for o in book.resting(side)}


def _assert_matching_rules_hold(
    engine: Engine,
    open_before: dict[int, Order],
    seq: int,
    command: Command,
    events: list[Event],
) -> None:
    """The rules of DESIGN.md section 4 that both books could break alike.

    ``open_before`` are copies of the orders open before the command, in queue
    order.
    """
    taker_id = command.order_id if isinstance(command, AmendOrder) else seq
    for event in events:
        if isinstance(event, Trade):
            # A closed order never trades again, a trade is at the maker's price,
            # and self-trade prevention never lets an account trade with itself.
            assert event.maker_order_id in open_before, event
            assert event.price == open_before[event.maker_order_id].price, event
            assert event.maker_account != event.taker_account, event
            assert event.taker_order_id == taker_id, event
        elif isinstance(event, OrderExpired):
            assert open_before[event.order_id].expire_at <= engine.now, event
        elif isinstance(event, OrderAmended):
            _assert_amend_keeps_or_loses_place(engine, open_before, event)

    # Market, IOC and FOK orders never rest.
    book = engine.instruments[SYMBOL].book
    for side in (BUY, SELL):
        for order in book.resting(side):
            assert not order.is_market, order
            assert order.tif in (GTC, GTD), order


def _assert_amend_keeps_or_loses_place(
    engine: Engine, open_before: dict[int, Order], event: OrderAmended
) -> None:
    """Only a smaller quantity at the same price keeps the queue place; any other
    amend puts the order at the back of its (new) level."""
    smaller = event.leaves < event.old_leaves
    assert event.kept_priority == (event.price == event.old_price and smaller)
    order = engine.orders.get(event.order_id)
    if order is None:
        return  # it traded away as it moved

    book = engine.instruments[SYMBOL].book
    level = [o.order_id for o in book.resting(order.side) if o.price == order.price]
    if event.kept_priority:
        # ``open_before`` is in queue order: the level's order is unchanged.
        before = [i for i, o in open_before.items() if o.price == order.price]
        before = [i for i in before if open_before[i].side == order.side]
        assert [i for i in before if i in level] == [i for i in level if i in before]
    else:
        assert level[-1] == order.order_id, event


@settings(max_examples=400, deadline=None)
@given(flow=flows(FEES, max_steps=80))
def test_fast_book_gives_the_same_events_and_state_as_reference_book(
    flow: list[Stamped],
) -> None:
    _assert_fast_book_matches_reference(FEES, flow)


@settings(max_examples=200, deadline=None)
@given(flow=flows(TICKED, max_steps=60))
def test_fast_book_gives_the_same_events_as_reference_book_with_tick_above_one(
    flow: list[Stamped],
) -> None:
    _assert_fast_book_matches_reference(TICKED, flow)


# -- the books alone -------------------------------------------------------------


def _order(
    order_id: int, account: int, side: int, price: int, leaves: int, stp: int
) -> Order:
    """A GTC limit order record as the engine makes it; the book ignores holds."""
    return Order(
        order_id=order_id,
        account=account,
        side=side,
        price=price,
        leaves=leaves,
        filled=0,
        unit_hold=0,
        tif=GTC,
        expire_at=0,
        stp=stp,
        is_market=False,
        post_only=False,
        client_order_id=None,
        symbol=SYMBOL,
    )


def _assert_books_agree(fast: Book, reference: ReferenceBook) -> None:
    """Every reading of the two books is the same, and both pass their check."""
    fast.check()
    reference.check()
    assert (fast.bid, fast.ask) == (reference.bid, reference.ask)
    for side in (BUY, SELL):
        assert fast.depth(side) == reference.depth(side)
        assert fast.depth(side, 2) == reference.depth(side, 2)
        assert fast.volume(side) == reference.volume(side)
        for price in range(FEES.low - 1, FEES.high + 2):
            assert fast.level_qty(side, price) == reference.level_qty(side, price)
        fast_queue = [(o.order_id, o.leaves) for o in fast.resting(side)]
        assert fast_queue == [(o.order_id, o.leaves) for o in reference.resting(side)]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fast_book_walks_makers_like_reference_book_under_budget_and_stp(
    data: st.DataObject,
) -> None:
    """Drive both books directly: rest, remove, reduce and take, with market-buy
    budgets and every self-trade mode; both books hold their own copy of each
    order, so every record's leaves can be compared."""
    fast, reference = Book(), ReferenceBook()
    pairs: dict[int, tuple[Order, Order]] = {}
    for order_id in range(1, data.draw(st.integers(1, 60)) + 1):
        resting = sorted(i for i, (o, _) in pairs.items() if o.leaves)
        op = data.draw(st.sampled_from(("rest",) * 4 + ("take",) * 3 + ("drop",)))
        side = data.draw(st.sampled_from((BUY, SELL)))
        price = data.draw(prices(FEES, SIDES[side]))
        qty = data.draw(st.integers(1, 8))
        account = data.draw(st.integers(0, 2))
        stp = data.draw(st.sampled_from((CANCEL_TAKER, CANCEL_MAKER, CANCEL_BOTH)))

        if op == "drop" and resting:
            fast_order, reference_order = pairs[data.draw(st.sampled_from(resting))]
            leaves = data.draw(st.integers(0, fast_order.leaves - 1))
            if leaves:
                fast.reduce(fast_order, leaves)
                reference.reduce(reference_order, leaves)
            else:
                fast.remove(fast_order)
                reference.remove(reference_order)
        elif op == "rest" and not fast.would_trade(side, price):
            pairs[order_id] = (
                _order(order_id, account, side, price, qty, stp),
                _order(order_id, account, side, price, qty, stp),
            )
            fast.add(pairs[order_id][0])
            reference.add(pairs[order_id][1])
        else:
            # A take; also a rest that would cross (the engine never rests one)
            # and a drop when nothing rests.
            taker = _order(order_id, account, side, price, qty, stp)
            _take_from_both(data, fast, reference, taker)
        assert reference.would_trade(side, price) == fast.would_trade(side, price)
        assert [o.leaves for o, _ in pairs.values()] == [
            o.leaves for _, o in pairs.values()
        ]
        _assert_books_agree(fast, reference)


def _take_from_both(
    data: st.DataObject, fast: Book, reference: ReferenceBook, taker: Order
) -> None:
    """Match ``taker`` (a copy for each book) and require the same outcome, and
    that `fillable` predicted what `match` filled.

    Half the takers walk the book as market orders; a market buy then has a
    budget of about a few lots.
    """
    limit = taker.price
    budget = UNLIMITED
    if data.draw(st.booleans()):
        limit = MARKET_BUY_LIMIT if taker.side == BUY else MARKET_SELL_LIMIT
        if taker.side == BUY:
            lots, change = st.integers(0, 6), st.integers(0, 1_200)
            budget = data.draw(lots) * 1_000 + data.draw(change)
    fee_bps = data.draw(st.sampled_from((0, 5, 10, 33, 1000)))

    fast_taker, reference_taker = taker, taker.copy()
    fillable = fast.fillable(fast_taker, limit, budget, fee_bps)
    assert fillable == reference.fillable(reference_taker, limit, budget, fee_bps)

    fast_out: list[Happening] = []
    reference_out: list[Happening] = []
    fast_stop = fast.match(fast_taker, limit, budget, fee_bps, fast_out)
    reference_stop = reference.match(
        reference_taker, limit, budget, fee_bps, reference_out
    )
    assert fast_stop == reference_stop
    assert [(k, m.order_id, p, q) for k, m, p, q in fast_out] == [
        (k, m.order_id, p, q) for k, m, p, q in reference_out
    ]
    assert fast_taker.leaves == reference_taker.leaves
    assert fillable == sum(q for k, _, _, q in fast_out if k == FILL)


# -- fill or kill ---------------------------------------------------------------


@st.composite
def fok_orders(draw: st.DrawFn, market: Market, names: list[str]) -> PlaceOrder:
    """A valid FOK order, limit or market, of any side and self-trade mode.

    Limit prices are drawn from the aggressive end of the range, and sizes are
    small, so that about as many fill as are killed.
    """
    side = draw(st.sampled_from(SIDES))
    is_market = draw(st.booleans())
    price = None
    if not is_market:
        tick = market.tick
        away = draw(st.integers(0, (market.high - market.low) // tick)) * tick
        if side == "buy":
            price = market.high // tick * tick - away
        else:
            price = -(-market.low // tick) * tick + away
    return PlaceOrder(
        account=draw(st.sampled_from(names)),
        symbol=SYMBOL,
        side=side,
        qty=draw(st.integers(1, 6)),
        type="market" if is_market else "limit",
        price=price,
        tif="FOK",
        stp=draw(st.sampled_from(STP_MODES)),
    )


def _unchanged_book_and_ledger(before: EngineState, after: EngineState) -> bool:
    """Whether the books, balances, escrows, capacity and trades are the same."""
    fields = ("instruments", "accounts", "fee_income", "escrows", "committed")
    return all(getattr(before, f) == getattr(after, f) for f in fields) and (
        before.trade_seq == after.trade_seq
    )


@pytest.mark.parametrize("book_factory", [Book, ReferenceBook])
@settings(max_examples=150, deadline=None)
@given(flow=flows(FEES, max_steps=40), data=st.data())
def test_fok_order_fills_completely_like_ioc_or_changes_nothing(
    book_factory: BookFactory, flow: list[Stamped], data: st.DataObject
) -> None:
    engine, _ = _replay(FEES, flow, book_factory)
    names = [n for n in NAMES if engine.ledger.index(n) is not None]
    fok = data.draw(fok_orders(FEES, names))
    seq, ts = engine.seq + 1, engine.now

    # The same order as IOC, on a copy of the engine, shows what the match does.
    trial = Engine.restore(FEES.config, engine.snapshot(), book_factory)
    ioc_events = trial.apply(seq, ts, msgspec.structs.replace(fok, tif="IOC"))
    filled = sum(
        e.qty for e in ioc_events if isinstance(e, Trade) and e.taker_order_id == seq
    )

    before = engine.snapshot()
    depth_before = _depths(engine)
    fok_events = engine.apply(seq, ts, fok)
    engine.check()

    if filled == fok.qty:
        as_ioc = [
            msgspec.structs.replace(e, tif="IOC") if isinstance(e, OrderAccepted) else e
            for e in fok_events
        ]
        assert as_ioc == ioc_events
        assert engine.state_hash() == trial.state_hash()
        return

    assert _unchanged_book_and_ledger(before, engine.snapshot())
    assert _depths(engine) == depth_before
    if isinstance(ioc_events[0], OrderRejected):
        assert fok_events == ioc_events
        return
    accepted, cancelled = fok_events
    assert accepted == msgspec.structs.replace(ioc_events[0], tif="FOK")
    assert isinstance(cancelled, OrderCancelled)
    assert (cancelled.order_id, cancelled.filled, cancelled.reason) == (
        seq,
        0,
        "fill_or_kill",
    )


# -- determinism ----------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(flow=flows(FEES, max_steps=60), data=st.data())
def test_replay_and_restore_from_mid_way_snapshot_give_the_same_state_hash(
    flow: list[Stamped], data: st.DataObject
) -> None:
    first, first_events = _replay(FEES, flow)
    second, second_events = _replay(FEES, flow)
    assert second_events == first_events
    assert second.state_hash() == first.state_hash()

    # Snapshot mid-way, through its wire encoding as a journal would keep it.
    cut = data.draw(st.integers(0, len(flow)), label="cut")
    head, _ = _replay(FEES, flow[:cut])
    encoded = msgspec.msgpack.encode(head.snapshot())
    snap = msgspec.msgpack.decode(encoded, type=EngineState)
    restored = Engine.restore(FEES.config, snap)
    assert restored.state_hash() == head.state_hash()

    rest_events = [
        restored.apply(seq, ts, cmd)
        for seq, (ts, cmd) in enumerate(flow[cut:], cut + 1)
    ]
    assert rest_events == first_events[cut:]
    assert restored.state_hash() == first.state_hash()
