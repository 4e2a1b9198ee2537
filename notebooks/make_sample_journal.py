"""Write the small journal that the replay notebook opens when ``cux demo`` wrote none.

It plays a seeded market morning through the matching core and writes it with
the file journal, exactly as ``cux serve`` journals (no server, no clock, so
the same seed always gives the same records and the same state hash):

- 09:00 three providers (``prov-a``, ``prov-b``, ``prov-c``, at different
  costs) and three consumers open accounts; the window ``cpu-…T10`` (10:00 to
  11:00) is listed; ``cpu-SPOT`` collects orders in ``pre_open``;
- 09:05 the opening auction, then continuous trading: providers re-quote at
  their cost plus a markup that rises with what they have leased out,
  consumers buy spot lots (IOC) and run an embedding job on each purchase at
  a quality tier (its metered FLOPs by the real formula), some forget to use
  what they bought (the lease expires and refunds them), and they buy the
  10:00 window until its closing auction at the 09:55 gate;
- 10:00 the window is delivered as leases; jobs run on them until 11:00;
- 10:58 the spot book's closing call, closed at 11:00:30 by the closing
  auction; a last tick at 11:06 expires the remaining spot leases.

A snapshot is taken at 10:00, so the notebook's state hash check has one to
meet. Usage::

    .venv/bin/python notebooks/make_sample_journal.py   # into notebooks/data/sample
    .venv/bin/python notebooks/make_sample_journal.py --out DIR --seed 7

It refuses to write into a folder that holds anything but an earlier journal.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from exchange.journal import FileJournal, JournalRecord
from matching import (
    AuctionTrade,
    CancelOrder,
    CloseJob,
    Command,
    Deposit,
    EndLease,
    Engine,
    Event,
    FuturesTerms,
    LeaseCreated,
    LeaseEnded,
    ListFuture,
    MarketConfig,
    OpenAccount,
    OpenJob,
    OrderAccepted,
    OrderCancelled,
    PlaceOrder,
    RecordUsage,
    ResourceClass,
    SetCapacity,
    SetPhase,
    Tick,
    Trade,
)
from providers.jobs import JobBudget, full_depth_flops, plan_inputs

CONFIG = MarketConfig(
    classes=[
        ResourceClass(
            "cpu",
            lot_cu=100,
            tick=1,
            taker_fee_bps=10,
            maker_fee_bps=0,
            spot_phase="pre_open",
            futures=FuturesTerms(list_ahead_hours=0),
        )
    ]
)
SPOT = "cpu-SPOT"
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
DAY = datetime(2026, 1, 5, tzinfo=UTC)
START = int(DAY.replace(hour=9).timestamp()) * SECOND
WINDOW = START + 60 * MINUTE
FUTURE = f"cpu-{DAY:%Y%m%d}T10"
CREDIT = 1_000_000
FLOPS_PER_LOT = 100 * 10**9
PROVIDERS = {"prov-a": 900, "prov-b": 960, "prov-c": 1040}  # cost, µcr per lot
CONSUMERS = {"ana": 1180, "ben": 1100, "cho": 1020}  # what a lot is worth to them
TIERS = ("exact", "exact", "high", "balanced", "fast")
SPOT_CAPACITY = 40
WINDOW_CAPACITY = 30
DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "sample"


class Morning:
    """The market and its participants; `send` stamps, applies and keeps."""

    def __init__(self, seed: int) -> None:
        self.engine = Engine(CONFIG)
        self.rng = random.Random(seed)
        self.now = START
        self.records: list[JournalRecord] = []
        self.quotes: dict[tuple[str, str], int] = {}  # (account, symbol): order
        self.leased: dict[str, int] = dict.fromkeys(PROVIDERS, 0)
        self.spot_leases: dict[int, tuple[str, int]] = {}  # lease: provider, lots
        self.window_sold: dict[str, int] = {}
        self.later: list[tuple[int, int, Command]] = []  # (at, serial, command)
        self.serial = 0

    def send(self, command: Command) -> list[Event]:
        seq = self.engine.seq + 1
        events = self.engine.apply(seq, self.now, command)
        self.records.append(JournalRecord(seq, self.now, command))
        for event in events:
            self._follow(event)
        return events

    def _follow(self, event: Event) -> None:
        """Keep the participants' books: open quotes and leased lots."""
        if isinstance(event, OrderCancelled):
            self._closed(event.account, event.symbol, event.order_id)
        elif isinstance(event, Trade):
            maker = (event.maker_account, event.maker_order_id, event.maker_leaves)
            taker = (event.taker_account, event.taker_order_id, event.taker_leaves)
            for account, order_id, leaves in (maker, taker):
                if leaves == 0:
                    self._closed(account, event.symbol, order_id)
            seller = maker[0] if event.taker_side == "buy" else taker[0]
            self._leased(event.symbol, event.trade_id, seller, event.qty)
        elif isinstance(event, AuctionTrade):
            if event.buy_leaves == 0:
                self._closed(event.buyer, event.symbol, event.buy_order_id)
            if event.sell_leaves == 0:
                self._closed(event.seller, event.symbol, event.sell_order_id)
            self._leased(event.symbol, event.trade_id, event.seller, event.qty)
        elif isinstance(event, LeaseEnded) and event.symbol == SPOT:
            ended = self.spot_leases.pop(event.lease_id, None)
            if ended is not None:
                self.leased[ended[0]] -= ended[1]

    def _rests(self, order_id: int) -> bool:
        return order_id in self.engine.orders

    def _closed(self, account: str, symbol: str, order_id: int) -> None:
        if self.quotes.get((account, symbol)) == order_id:
            del self.quotes[account, symbol]

    def _leased(self, symbol: str, trade_id: int, seller: str, qty: int) -> None:
        if symbol == SPOT:
            self.leased[seller] += qty
            self.spot_leases[trade_id] = (seller, qty)
        else:
            self.window_sold[seller] = self.window_sold.get(seller, 0) + qty

    def wait(self, until: int) -> None:
        """Move the clock to ``until``, running what was due before it."""
        while self.later and self.later[0][0] <= until:
            at, _, command = heapq.heappop(self.later)
            self.now = max(self.now, at)
            self.send(command)
        self.now = max(self.now, until)

    def schedule(self, after: int, command: Command) -> None:
        self.serial += 1
        heapq.heappush(self.later, (self.now + after, self.serial, command))

    # -- the parts of the morning ------------------------------------------------

    def open_market(self) -> None:
        for name in PROVIDERS:
            self.send(OpenAccount(name, ("provider",)))
            self.send(SetCapacity(name, SPOT, SPOT_CAPACITY))
        for name in CONSUMERS:
            self.send(OpenAccount(name))
            self.send(Deposit(name, 500 * CREDIT))
        self.send(ListFuture("cpu", WINDOW))
        for name in PROVIDERS:
            self.send(SetCapacity(name, FUTURE, WINDOW_CAPACITY))
        for name in PROVIDERS:
            self.quote(name, SPOT)
            self.quote(name, FUTURE)
        for name, worth in CONSUMERS.items():
            self.now += 20 * SECOND
            qty = self.rng.randint(2, 5)
            self.send(PlaceOrder(name, SPOT, "buy", qty, price=worth - 60))
        self.wait(START + 5 * MINUTE)
        self.send(SetPhase(SPOT, "continuous"))

    def quote(self, provider: str, symbol: str) -> None:
        """Cancel the provider's quote on ``symbol`` and quote its free
        capacity at its cost plus a markup that grows as it sells out."""
        old = self.quotes.get((provider, symbol))
        if old is not None:
            self.send(CancelOrder(provider, old))
        capacity = SPOT_CAPACITY if symbol == SPOT else WINDOW_CAPACITY
        sold = (self.leased if symbol == SPOT else self.window_sold).get(provider, 0)
        free = capacity - sold
        if free <= 0:
            return
        markup = 0.06 + 0.4 * sold / capacity + self.rng.uniform(-0.03, 0.03)
        price = round(PROVIDERS[provider] * (1 + markup))
        qty = min(free, self.rng.randint(5, 15))
        events = self.send(PlaceOrder(provider, symbol, "sell", qty, price=price))
        for event in events:
            if isinstance(event, OrderAccepted) and self._rests(event.order_id):
                self.quotes[provider, symbol] = event.order_id
            elif isinstance(event, Trade) and symbol == SPOT:
                # The quote took a consumer's resting bid: it runs a job on it.
                lease = [(event.trade_id, event.qty)]
                self.run_job(event.maker_account, SPOT, lease, True)

    def bid(self, consumer: str) -> None:
        """Replace the consumer's resting bid with one below what a lot is
        worth to it, for a provider's quote to take."""
        old = self.quotes.get((consumer, SPOT))
        if old is not None:
            self.send(CancelOrder(consumer, old))
        price = round(CONSUMERS[consumer] * self.rng.uniform(0.82, 0.95))
        qty = self.rng.randint(1, 3)
        for event in self.send(PlaceOrder(consumer, SPOT, "buy", qty, price=price)):
            if isinstance(event, OrderAccepted) and self._rests(event.order_id):
                self.quotes[consumer, SPOT] = event.order_id

    def buy_and_run(self, consumer: str) -> None:
        """Buy spot lots IOC; run a job on what was bought, or forget it."""
        worth = CONSUMERS[consumer]
        price = round(worth * self.rng.uniform(0.9, 1.05))
        qty = self.rng.randint(1, 4)
        order = PlaceOrder(consumer, SPOT, "buy", qty, price=price, tif="IOC")
        bought = [e for e in self.send(order) if isinstance(e, Trade)]
        if not bought or self.rng.random() < 0.15:
            return  # nothing bought, or the lease will simply expire
        self.run_job(consumer, SPOT, [(t.trade_id, t.qty) for t in bought], True)

    def run_job(
        self, consumer: str, symbol: str, leases: list[tuple[int, int]], end: bool
    ) -> None:
        """Open a job sized to the leases, and schedule its usage and close."""
        rng = self.rng
        lots = sum(qty for _, qty in leases)
        tokens: list[int] = []
        limit = lots * FLOPS_PER_LOT * rng.uniform(0.4, 0.9)
        while full_depth_flops([*tokens, 128]) < limit:
            tokens.append(rng.choice((12, 24, 40, 64, 96, 128)))
        tokens = tokens or [12]
        full = full_depth_flops(tokens)
        tier = rng.choice(TIERS)
        budget = full if rng.random() < 0.8 else full * 3 // 5
        plans = plan_inputs(tokens, tier, JobBudget(budget, job_full_flops=full))
        flops = sum(plan.flops for plan in plans)
        self.send(OpenJob(consumer, symbol, tier, len(tokens), budget, full))
        job_id = self.engine.job_seq
        seconds = max(2, flops // (25 * 10**9))  # a node at 25 CU/s
        done = 0
        for i, (lease_id, qty) in enumerate(leases):
            share = flops - done if i == len(leases) - 1 else flops * qty // lots
            done += share
            if share:
                self.schedule(seconds * SECOND, RecordUsage(symbol, lease_id, share))
            if end:
                self.schedule(seconds * SECOND, EndLease(symbol, lease_id, "used_up"))
        self.schedule(seconds * SECOND, CloseJob(job_id, "done", flops))

    def trade_until(self, until: int) -> None:
        """Random participants act every few seconds until ``until``."""
        rng = self.rng
        while True:
            self.wait(self.now + rng.randint(4, 20) * SECOND)
            if self.now >= until:
                return
            roll = rng.random()
            if roll < 0.35:
                self.quote(rng.choice(list(PROVIDERS)), SPOT)
            elif roll < 0.5:
                self.bid(rng.choice(list(CONSUMERS)))
            elif roll < 0.85:
                self.buy_and_run(rng.choice(list(CONSUMERS)))
            elif self.engine.instruments[FUTURE].accepting:
                self.buy_window(rng.choice(list(CONSUMERS)))

    def buy_window(self, consumer: str) -> None:
        if self.rng.random() < 0.3:
            self.quote(self.rng.choice(list(PROVIDERS)), FUTURE)
        price = round(CONSUMERS[consumer] * self.rng.uniform(0.92, 1.02))
        qty = self.rng.randint(1, 3)
        self.send(PlaceOrder(consumer, FUTURE, "buy", qty, price=price))

    def window_closing_call(self) -> None:
        """Bids that cross the window's asks in its closing call."""
        self.wait(WINDOW - 5 * MINUTE - 50 * SECOND)
        for name, worth in CONSUMERS.items():
            self.now += 3 * SECOND
            self.send(PlaceOrder(name, FUTURE, "buy", 2, price=worth))

    def deliver(self) -> None:
        """At 10:00 the window's leases start: run jobs on them."""
        self.wait(WINDOW)
        events = self.send(Tick())
        for event in events:
            if isinstance(event, LeaseCreated):
                self.now += 2 * SECOND
                leases = [(event.lease_id, event.lots)]
                self.run_job(event.consumer, FUTURE, leases, False)

    def close_spot(self) -> None:
        self.wait(WINDOW + 58 * MINUTE)
        self.send(SetPhase(SPOT, "closing"))
        for name, worth in CONSUMERS.items():
            self.now += 5 * SECOND
            self.send(PlaceOrder(name, SPOT, "buy", 2, price=worth))
        self.wait(WINDOW + 60 * MINUTE + 30 * SECOND)
        self.send(SetPhase(SPOT, "closed"))
        self.wait(WINDOW + 66 * MINUTE)
        self.send(Tick())


async def write(out: Path, seed: int) -> Morning:
    """Play the morning into a new data folder ``out``; the market after it."""
    morning = Morning(seed)
    journal = FileJournal(out, CONFIG, fsync="none")
    journal.recover()
    written = 0

    async def flush() -> None:
        nonlocal written
        await journal.append(morning.records[written:])
        written = len(morning.records)

    morning.open_market()
    morning.trade_until(WINDOW - 6 * MINUTE)
    morning.window_closing_call()
    morning.trade_until(WINDOW - 30 * SECOND)
    morning.deliver()
    await flush()
    await journal.snapshot(morning.engine)
    morning.trade_until(WINDOW + 55 * MINUTE)
    morning.close_spot()
    morning.engine.check()
    await flush()
    await journal.close()
    (out / "LOCK").unlink(missing_ok=True)  # nobody holds it now; do not ship it
    return morning


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    out: Path = args.out
    if out.exists():
        unknown = {p.name for p in out.iterdir()} - {"journal", "snapshots", "LOCK"}
        if unknown:
            print(f"{out} holds other files ({', '.join(sorted(unknown))})")
            return 2
        shutil.rmtree(out)
    morning = asyncio.run(write(out, args.seed))
    print(
        f"{out}: {len(morning.records)} records, {morning.engine.trade_seq} trades, "
        f"{morning.engine.job_seq} jobs, state hash {morning.engine.state_hash()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
