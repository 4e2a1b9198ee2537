"""Job dispatch: from a consumer's job to results, paid for what was metered.

A consumer submits a job (`exchange.protocol_jobs.SubmitJob`). The dispatcher:

1. counts each input's tokens itself and plans every input's depth and FLOPs
   from the tier and the budget (`providers.jobs.plan_inputs`): the plan an
   honest node's report must equal;
2. finds its leases: a job order buys spot lots IOC at up to ``max_price``
   (enough lots for the planned FLOPs); otherwise it takes the named leases of
   the account, with the room they have left;
3. records the job in the engine (`OpenJob`) and acknowledges it;
4. splits the inputs over the leases in proportion to their room
   (`exchange.dispatch_plan.split`) and sends each shard to a connected node
   of the lease's provider, the least busy first;
5. checks each report against the plan, records the FLOPs on the lease
   (`RecordUsage`) and keeps the embeddings; a report that differs from the
   plan is refused and the shard fails;
6. ends each spot lease when its shards are finished (`EndLease`: the provider
   is paid price × CU used / lot_cu, the consumer refunded the rest); a
   future's lease is firm and ends with its window;
7. records how the job ended (`CloseJob`) once every input has a result or
   has failed and its spot leases are settled, and publishes it.

Faults. A shard fails when its node disconnects (a node that misses
heartbeats is disconnected), passes the shard's deadline, hands it back or
sends a report that is refused; that node then runs none of the job's
shards again (`JobRun.failed_nodes`). A failed shard goes to another node of
the same provider while its lease lasts, else to another lease of the job
with room, else (a job order) to lots bought for it at the job's limit from
providers with a node that has not failed the job. A shard is sent at most
``max_attempts`` times; an input leaves at most ``max_attempts`` leases (so
at most ``max_attempts``² sends), then, or with nowhere to go, it fails. A
shard queued for a busy node waits ``shard_timeout_seconds`` at most, then
its lease fails and its inputs move on, as above. The lease a
shard failed on ends ``failed``: its provider is paid only the usage that was
checked. So every job ends ``done`` (every input has a result), ``failed``
(some have none) or ``cancelled``, and nothing is retried forever.

A consumer's disconnection changes nothing: the job runs to its end and its
results are kept for ``results_ttl_seconds``, then forgotten (``UNKNOWN_JOB``).
Cancelling a job ends its spot leases at once (``cancelled``: the provider's
capacity is free again and the consumer is refunded all but the usage already
checked); shards still running are told to stop, and their reports are no
longer accepted.

Reputation: each node's delivered and failed shards and the FLOPs it
delivered, published with the nodes (`exchange.nodes`).

Known limitation: the dispatcher's records live in memory. A restart of the
exchange fails the jobs that were running (`CloseJob` ``failed``, "exchange
restarted"); their spot leases expire and refund the consumer, and the usage
checked before the restart is paid. The results of jobs that ended before a
restart are not kept across it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exchange.dispatch_jobs import JobRun, LeaseRef, Shard
from exchange.dispatch_plan import check_report, decode_embeddings, split
from exchange.marketdata_book import Publication
from exchange.protocol import encode
from exchange.protocol_jobs import (
    ShardCancelled,
    ShardFailed,
    ShardMessage,
    ShardResult,
    SubmitJob,
)
from exchange.sequencer import Work
from exchange.sessions import Session
from matching import (
    CloseJob,
    Code,
    Command,
    CommandRejected,
    EndLease,
    Engine,
    EscrowReleased,
    Event,
    JobOpened,
    OpenJob,
    OrderRejected,
    PlaceOrder,
    RecordUsage,
    Trade,
)
from matching.codes import CODES
from matching.config import MAX_QTY
from matching.leases import FLOPS_PER_CU, flops_capacity
from providers.jobs import InputReport, JobBudget, full_depth_flops, plan_inputs
from providers.metering import MINILM_L6

if TYPE_CHECKING:
    from exchange.nodes import Node
    from exchange.server import Exchange

__all__ = ["Dispatcher", "JobRefused"]

log = logging.getLogger("cux.dispatch")

SECOND = 1_000_000_000
LEASE_MARGIN = 5 * SECOND
"""A shard is not sent on a lease that ends sooner than this, in real time (on
a simulated clock, this many real seconds of it): a spot lease's expiry, a
future's window end."""


class JobRefused(Exception):
    """A job could not start; ``code`` is a stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Done = Callable[[JobRun | JobRefused], None]


def _check_has_text(tokens: list[int], special: int) -> None:
    """Refuse an input with no token but the tokenizer's own (``special`` of
    them): empty, only whitespace, or only characters the model skips (a
    zero-width space, a NUL). It would run and be billed for an embedding of
    nothing.

    Raises:
        JobRefused: ``INVALID_FIELD``, naming the first such input's index.
    """
    for i, count in enumerate(tokens):
        if count <= special:
            raise JobRefused(
                "INVALID_FIELD",
                f"inputs[{i}] has no text to embed: it is empty, or only "
                "whitespace or characters the model skips",
            )


def _check_affords_a_layer(
    budget_cu: int, full_flops: int, plans: list[InputReport]
) -> None:
    """Refuse a budget that leaves an input no layer: it would end ``done``
    with no FLOPs and no embedding worth the name, and the fee paid.

    An input's share is ``budget × its full-depth cost ÷ the job's``, and its
    full-depth cost is ``layers ×`` one layer's, so one layer of every input
    needs ``job's full-depth cost ÷ layers`` FLOPs of budget, rounded up to
    the CU.

    Raises:
        JobRefused: ``BUDGET_TOO_SMALL``, naming the budget that would do.
    """
    starved = sum(1 for p in plans if p.layers == 0)
    if not starved:
        return
    need = -(-full_flops // (MINILM_L6.layers * FLOPS_PER_CU))
    raise JobRefused(
        "BUDGET_TOO_SMALL",
        f"budget_cu {budget_cu} affords no layer for {starved} of the "
        f"{len(plans)} inputs: one layer of every input needs budget_cu {need} "
        f"or more (all {MINILM_L6.layers} layers of every input: budget_cu "
        f"{-(-full_flops // FLOPS_PER_CU)})",
    )


class Dispatcher:
    """Runs the jobs of one `Exchange` (see the module doc)."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.settings = exchange.settings.dispatch
        self.jobs: dict[int, JobRun] = {}
        self.shards: dict[int, Shard] = {}
        self._shard_ids = itertools.count(1)
        self._spot: dict[tuple[str, int], LeaseRef] = {}
        self._lease_jobs: dict[tuple[str, int], JobRun] = {}
        self._queued: list[Shard] = []
        # The leases of the jobs running: a lease runs one job at a time.
        self._in_use: dict[tuple[str, int], JobRun] = {}
        self._counter: Any = None

    # -- submitting ---------------------------------------------------------------

    def submit(self, account: str, req: SubmitJob, done: Done) -> None:
        """Start ``req`` for ``account``; ``done`` gets the job once it is
        recorded and durable, or the reason it could not start."""
        try:
            run = self._plan(account, req)
        except JobRefused as exc:
            done(exc)
            return
        if req.max_price is not None:
            self._open_and_buy(run, self._lots_for(run, run.planned), done)
        else:
            self._take_leases(run, req.leases or [], done)

    def _plan(self, account: str, req: SubmitJob) -> JobRun:
        from providers.tiers import TIERS

        engine = self.exchange.engine
        inst = engine.instruments.get(req.symbol)
        if inst is None:
            message = f"{CODES[Code.UNKNOWN_SYMBOL]}: {req.symbol!r}"
            raise JobRefused(Code.UNKNOWN_SYMBOL.value, message)
        if req.tier not in TIERS:
            raise JobRefused(
                "UNKNOWN_TIER", f"tier must be one of {', '.join(sorted(TIERS))}"
            )
        if req.max_price is None and req.leases is None:
            raise JobRefused(
                "INVALID_FIELD",
                "a job needs max_price (a job order) or leases: neither was given",
            )
        if req.max_price is not None and req.leases is not None:
            raise JobRefused(
                "INVALID_FIELD",
                "a job takes max_price (a job order) or leases, not both",
            )
        if req.max_price is not None and inst.window is not None:
            raise JobRefused(
                "INVALID_FIELD", "a job order buys spot lots: use a -SPOT symbol"
            )
        tokens = self._count(req.inputs)
        _check_has_text(tokens, self._counter.special)
        full = full_depth_flops(tokens)
        budget = JobBudget(req.budget_cu * FLOPS_PER_CU, full)
        plans = plan_inputs(tokens, req.tier, budget)
        _check_affords_a_layer(req.budget_cu, full, plans)
        run = JobRun(
            0,
            account,
            req.symbol,
            req.tier,
            list(req.inputs),
            tokens,
            plans,
            budget,
            req.max_price,
        )
        run.min_reputation_bps = req.min_reputation_bps
        run.planned = sum(p.flops for p in plans)
        run.changed_at = self.exchange.clock()
        return run

    def _count(self, texts: list[str]) -> list[int]:
        if self._counter is None:
            from providers.tokens import TokenCounter

            try:
                self._counter = TokenCounter()
            except (ImportError, OSError) as exc:
                raise JobRefused(
                    "JOBS_UNAVAILABLE",
                    f"this exchange cannot count tokens (install cux[node]): {exc}",
                ) from None
        counts: list[int] = self._counter.count(texts)
        return counts

    def _lots_for(self, run: JobRun, flops: int) -> int:
        lot_cu = self.exchange.engine.instruments[run.symbol].spec.lot_cu
        lot_flops = flops_capacity(1, lot_cu)
        return min(MAX_QTY, max(1, -(-flops // lot_flops)))

    def _open_and_buy(self, run: JobRun, lots: int, done: Done) -> None:
        """Open a job order and buy its lots, in one batch (one journal write):
        a job order that buys nothing is closed ``failed`` at once."""

        def commands(engine: Engine) -> list[Command]:
            job_id = engine.job_seq + 1
            return [self._open_command(run), self._order(run, lots, job_id)]

        refusal: list[tuple[str, str]] = []

        def applied(events: list[Event]) -> None:
            # Before the write is durable: the shards may go to the nodes at
            # once (no one is answered yet; a crash now only wastes their work).
            opened = [e for e in events if type(e) is JobOpened]
            if not opened:
                rejection = _rejection(events)
                assert rejection is not None
                refusal.append(rejection)
                return
            run.job_id = opened[0].job_id
            trades = [e for e in events if type(e) is Trade]
            refused = _rejection(events)
            if refused is None and not trades:
                refused = ("JOB_UNFILLED", "nothing on offer at max_price")
            if refused is not None:
                refusal.append(refused)
                close = CloseJob(run.job_id, "failed", 0, refused[0])
                self.exchange.submit(Work(command=close))
                return
            self._add_trades(run, trades)
            self._begin(run)

        def bought(events: list[Event]) -> None:
            # Durable: now the consumer hears of it.
            if refusal:
                done(JobRefused(*refusal[0]))
                return
            done(run)
            if not run.closing:  # else its close, once durable, says it
                self._publish(run)

        self.exchange.submit(Work(expand=commands, reply=bought, applied=applied))

    def _order(self, run: JobRun, lots: int, job_id: int) -> PlaceOrder:
        """The IOC buy of a job order; with ``min_reputation_bps``, it trades
        only with providers that have a node of that reputation; once nodes
        failed the job's shards, only with providers that have another node
        (lots from the others would go to no node, or back to those)."""
        assert run.max_price is not None
        parties: tuple[str, ...] = ()
        if run.min_reputation_bps or run.failed_nodes:
            rc = self.exchange.engine.instruments[run.symbol].spec.resource_class
            parties = self.exchange.nodes.reputable(
                rc, run.min_reputation_bps, run.failed_nodes
            )
            # No such provider: a name no account has, so nothing trades.
            parties = parties[:64] or ("",)
        return PlaceOrder(
            run.account,
            run.symbol,
            "buy",
            lots,
            price=run.max_price,
            tif="IOC",
            client_order_id=f"job.{job_id}",
            counterparties=parties,
        )

    def _top_up(self, run: JobRun, lots: int) -> None:
        """Buy ``lots`` more spot lots for the inputs waiting for room."""

        def bought(events: list[Event]) -> None:
            trades = [e for e in events if type(e) is Trade]
            if trades:
                self._add_trades(run, trades)
            self._place_waiting(run)

        order = self._order(run, lots, run.job_id)
        self.exchange.submit(Work(command=order, reply=bought))

    def _add_trades(self, run: JobRun, trades: list[Trade]) -> None:
        engine = self.exchange.engine
        inst = engine.instruments[run.symbol]
        for trade in trades:
            run.cost += trade.buyer_fee
            escrow = engine.ledger.escrows.get(trade.trade_id)
            lease = LeaseRef(
                run.symbol,
                trade.trade_id,
                trade.maker_account,
                inst.spec.resource_class,
                flops_capacity(trade.qty, inst.spec.lot_cu),
                True,
                escrow.ends_at if escrow is not None else 0,
                ended=escrow is None,
            )
            run.leases.append(lease)
            self._in_use[run.symbol, trade.trade_id] = run
            self._spot[run.symbol, trade.trade_id] = lease
            self._lease_jobs[run.symbol, trade.trade_id] = run

    def _take_leases(self, run: JobRun, ids: list[int], done: Done) -> None:
        def read(engine: Engine) -> list[LeaseRef] | JobRefused:
            return self._leases_of(engine, run, ids)

        def taken(result: list[LeaseRef] | JobRefused) -> None:
            if isinstance(result, JobRefused):
                done(result)
                return
            keys = [(lease.symbol, lease.lease_id) for lease in result]
            busy = [key[1] for key in keys if key in self._in_use]
            if busy:
                done(
                    JobRefused("LEASE_IN_USE", f"leases {busy} are running another job")
                )
                return
            # Taken now, before the job is recorded: a job submitted meanwhile
            # on the same lease is refused.
            for key in keys:
                self._in_use[key] = run
            run.leases = result
            self._open(run, done)

        self.exchange.submit(Work(read=read, reply=taken))

    def _leases_of(
        self, engine: Engine, run: JobRun, ids: list[int]
    ) -> list[LeaseRef] | JobRefused:
        """The named leases with their room, or why they cannot be used."""
        if not ids or len(set(ids)) != len(ids):
            return JobRefused("INVALID_FIELD", "leases: one or more distinct lease ids")
        inst = engine.instruments[run.symbol]
        ledger = engine.ledger
        found = []
        for lease_id in ids:
            owner: int | None
            if inst.window is None:
                escrow = ledger.escrows.get(lease_id)
                if escrow is None or escrow.symbol != run.symbol:
                    owner = None
                else:
                    owner, seller, lots = escrow.buyer, escrow.seller, escrow.lots
                    ends_at = escrow.ends_at
            else:
                lease = engine.leases.get(lease_id)
                if lease is None or lease.symbol != run.symbol:
                    owner = None
                else:
                    owner, seller, lots = lease.consumer, lease.provider, lease.lots
                    ends_at = lease.end
            if owner is None or ledger.names[owner] != run.account:
                return JobRefused(
                    Code.UNKNOWN_LEASE.value,
                    f"lease {lease_id} is not a live lease of yours on {run.symbol}",
                )
            used = engine.usage.get((run.symbol, lease_id), 0)
            room = flops_capacity(lots, inst.spec.lot_cu) - used
            found.append(
                LeaseRef(
                    run.symbol,
                    lease_id,
                    ledger.names[seller],
                    inst.spec.resource_class,
                    max(0, room),
                    inst.window is None,
                    ends_at,
                )
            )
        return found

    def _open_command(self, run: JobRun) -> OpenJob:
        return OpenJob(
            run.account,
            run.symbol,
            run.tier,
            len(run.texts),
            run.budget.budget_flops,
            run.budget.job_full_flops,
        )

    def _open(self, run: JobRun, done: Done) -> None:
        """Open a job on the leases it was given."""

        def opened(events: list[Event]) -> None:
            rejection = _rejection(events)
            if rejection is not None:
                self._free_leases(run)
                done(JobRefused(*rejection))
                return
            run.job_id = next(e.job_id for e in events if type(e) is JobOpened)
            self._started(run, done)

        self.exchange.submit(Work(command=self._open_command(run), reply=opened))

    def _started(self, run: JobRun, done: Done) -> None:
        """The job is recorded: acknowledge it and send its shards."""
        done(run)
        self._publish(run)
        self._begin(run)

    def _begin(self, run: JobRun) -> None:
        """Keep the job and send its shards."""
        self.jobs[run.job_id] = run
        for lease in run.leases:
            if lease.spot:
                self._spot[lease.symbol, lease.lease_id] = lease
                self._lease_jobs[lease.symbol, lease.lease_id] = run
        log.info(
            "job %d of %s: %d inputs on %d leases",
            run.job_id,
            run.account,
            len(run.texts),
            len(run.leases),
        )
        self._place(run, list(range(len(run.texts))))

    # -- shards -------------------------------------------------------------------

    def _place(self, run: JobRun, indices: list[int]) -> None:
        """Split ``indices`` over the job's leases with room and send them."""
        now = self.exchange.clock()
        usable = [
            lease
            for lease in run.leases
            if not lease.ended
            and not lease.ending
            and not lease.failed
            and lease.room > 0
            and lease.ends_at - now > self._margin()
        ]
        costs = [run.plans[i].flops for i in indices]
        parts, left = split(costs, [lease.room for lease in usable])
        # Make every shard (reserving its room) before sending any: a send that
        # fails moves its inputs on, and must find the room already taken.
        made = [
            self._new_shard(run, lease, [indices[k] for k in part])
            for lease, part in zip(usable, parts, strict=True)
            if part
        ]
        for shard in made:
            if shard.shard_id in self.shards:
                self._send(shard)
        waiting = [indices[k] for k in left]
        if waiting and run.max_price is not None and run.status == "running":
            # One purchase at a time: inputs that find no room meanwhile wait
            # for the one in flight, and are placed (or failed) after it.
            buying = bool(run.waiting)
            run.waiting += waiting
            if not buying:
                run.bought_for = len(run.waiting)
                lots = self._lots_for(run, sum(run.plans[i].flops for i in run.waiting))
                self._top_up(run, lots)
        else:
            for i in waiting:
                run.failed[i] = "no lease of the job had room for it"
            self._settle_if_finished(run)

    def _place_waiting(self, run: JobRun) -> None:
        """After a top-up purchase: place the inputs it was bought for, or fail
        them; those that came to wait while it was bought get one of their own
        if they need it."""
        waiting, run.waiting = run.waiting, []
        covered, later = waiting[: run.bought_for], waiting[run.bought_for :]
        run.bought_for = 0
        if run.status != "running":
            self._settle_if_finished(run)
            return
        limit, run.max_price = run.max_price, None  # one top-up per round
        try:
            self._place(run, covered)
        finally:
            run.max_price = limit
        if later:
            self._place(run, later)

    def _new_shard(self, run: JobRun, lease: LeaseRef, indices: list[int]) -> Shard:
        cost = sum(run.plans[i].flops for i in indices)
        lease.room -= cost
        shard = Shard(next(self._shard_ids), run, lease, indices, cost)
        run.shards[shard.shard_id] = shard
        self.shards[shard.shard_id] = shard
        return shard

    def _send(self, shard: Shard) -> None:
        """Send ``shard`` to an idle node of its provider, or queue it for the
        first that becomes idle (a node runs one shard at a time)."""
        candidates = self._candidates(shard)
        if not candidates:
            self._fail(shard, "no node of the provider is connected")
            return
        nodes = self.exchange.nodes
        idle = [node for node in candidates if not nodes.busy(node)]
        if not idle:
            self._queued.append(shard)
            if shard.timer is None:
                shard.timer = asyncio.get_running_loop().call_later(
                    self.settings.shard_timeout_seconds, self._waited_too_long, shard
                )
            return
        if shard.timer is not None:  # it waited in the queue
            shard.timer.cancel()
            shard.timer = None
        node = min(idle, key=lambda n: n.node_id)
        run = shard.job
        shard.node = (node.account, node.node_id)
        shard.session = node.session
        shard.attempts += 1
        # A node registers CU per second of the exchange's clock; on a
        # simulated clock that is `speed` times less than per real second.
        speed = self._speed()
        cu = shard.cost / FLOPS_PER_CU
        rate = max(1, node.cu_per_second_milli) * speed / 1000
        seconds = self.settings.shard_timeout_seconds + 4 * cu / rate
        deadline = self.exchange.clock() + int(seconds * speed * SECOND)
        loop = asyncio.get_running_loop()
        shard.timer = loop.call_later(seconds, self._timed_out, shard.shard_id)
        nodes.busy_add(shard.node, 1)
        node.session.send(
            encode(
                ShardMessage(
                    shard.shard_id,
                    str(run.job_id),
                    shard.lease.symbol,
                    shard.lease.lease_id,
                    run.tier,
                    run.budget.budget_flops,
                    run.budget.job_full_flops,
                    [run.texts[i] for i in shard.indices],
                    deadline,
                )
            )
        )
        log.debug("shard %d of job %d sent to %s", shard.shard_id, run.job_id, node)

    def _speed(self) -> float:
        """Simulated seconds per real second of the exchange's clock."""
        speed: float = getattr(self.exchange.clock, "speed", 1.0)
        return speed

    def _margin(self) -> int:
        return int(LEASE_MARGIN * self._speed())

    def _waited_too_long(self, shard: Shard) -> None:
        """A queued shard found no free node in time: its lease takes no more
        of the job's inputs, which move on (a try each, so waiting ends after
        ``max_attempts`` leases), without counting against any node."""
        shard.timer = None
        if shard in self._queued:
            self._queued.remove(shard)
            # The nodes it waited for take none of the job's shards again, and
            # lots bought for its inputs come from other providers.
            for node in self._candidates(shard):
                shard.job.failed_nodes.add((node.account, node.node_id))
            self._fail(shard, "no node of the provider was free in time", retry=False)

    def _candidates(self, shard: Shard) -> list[Node]:
        """The nodes that may run ``shard``: its provider's, not tried yet nor
        failed on another shard of its job, with the reputation the job asks
        for."""
        lease = shard.lease
        nodes = self.exchange.nodes
        least = shard.job.min_reputation_bps
        failed = shard.job.failed_nodes
        return [
            node
            for node in nodes.of(lease.provider, lease.resource_class)
            if (key := (node.account, node.node_id)) not in shard.tried
            and key not in failed
            and nodes.stats(key).reputation_bps >= least
        ]

    def _release_node(self, shard: Shard) -> None:
        """The node of ``shard`` is done with it: send it the next queued shard."""
        if shard.timer is not None:
            shard.timer.cancel()
            shard.timer = None
        freed, shard.node, shard.session = shard.node, None, None
        if freed is None:
            return
        self.exchange.nodes.busy_add(freed, -1)
        for waiting in self._queued:
            if freed in {(n.account, n.node_id) for n in self._candidates(waiting)}:
                self._queued.remove(waiting)
                self._send(waiting)
                break

    # -- what nodes send ----------------------------------------------------------

    def on_result(
        self,
        session: object,
        req: ShardResult,
        reply: Callable[[str | None, str], None],
    ) -> None:
        """A node's ``shard_result``; ``reply`` gets an error code and message,
        or None once the usage is recorded."""
        shard = self._own_shard(session, req.shard_id)
        if shard is None:
            reply("UNKNOWN_SHARD", "no shard of this id is running on this node")
            return
        run = shard.job
        planned = [run.plans[i] for i in shard.indices]
        reason = check_report(req.inputs, planned)
        total = sum(p.flops for p in planned)
        if reason is None and req.flops != total:
            reason = f"total {req.flops} FLOPs claimed, the inputs sum to {total}"
        rows = decode_embeddings(req.embeddings, len(planned), MINILM_L6.hidden)
        if reason is None and rows is None:
            reason = f"embeddings are not {len(planned)} rows of finite float32"
        node = shard.node
        assert node is not None
        if reason is not None:
            log.warning(
                "report of shard %d from %s refused: %s", shard.shard_id, node, reason
            )
            self.exchange.nodes.stats(node).failed += 1
            reply("REPORT_REJECTED", reason)
            self._fail(shard, f"report refused: {reason}")
            return
        assert rows is not None
        self._release_node(shard)
        shard.node = None
        del self.shards[shard.shard_id]

        def recorded(events: list[Event]) -> None:
            rejection = _rejection(events)
            if rejection is not None:
                # The lease ended meanwhile (expired): the work is not paid,
                # through no fault of the node's.
                reply(rejection[0], rejection[1])
                self._fail(shard, f"usage refused: {rejection[0]}", registered=False)
                return
            self._finished(shard, node, rows, req.wall_ns)
            reply(None, "")

        if total == 0 or shard.job.status != "running":
            recorded([])
            return
        lease = shard.lease
        usage = RecordUsage(lease.symbol, lease.lease_id, total)
        if not self._ends_job(shard):
            self.exchange.submit(Work(command=usage, reply=recorded))
            return

        # The job's last work: its usage, the end of its spot leases and its
        # close go in one journal write — when, at that moment, the usage
        # surely fits its lease; otherwise the usage goes alone, as above.
        run.closing = True  # nothing else closes or cancels it meanwhile
        merged: list[bool] = []

        def commands(engine: Engine) -> list[Command]:
            if run.status != "running" or not self._usage_fits(engine, lease, total):
                run.closing = False
                return [usage]
            merged.append(True)
            endings = self._endings(run)
            return [usage, *endings, self._close_command(run, shard.indices)]

        def applied(events: list[Event]) -> None:
            if not merged:
                recorded(events)
                self._settle_if_finished(run)
                return
            self._finished(shard, node, rows, req.wall_ns)
            reply(None, "")
            self._closed(run)

        self.exchange.submit(Work(expand=commands, reply=applied))

    def _usage_fits(self, engine: Engine, lease: LeaseRef, flops: int) -> bool:
        """Whether `RecordUsage` of ``flops`` on ``lease`` will be taken if
        applied now: the lease lives past the next second and has the room."""
        soon = self.exchange.clock() + int(SECOND * self._speed())
        if lease.spot:
            escrow = engine.ledger.escrows.get(lease.lease_id)
            if (
                escrow is None
                or escrow.symbol != lease.symbol
                or escrow.ends_at <= soon
            ):
                return False
            lots = escrow.lots
        else:
            found = engine.leases.get(lease.lease_id)
            if found is None or found.symbol != lease.symbol or found.end <= soon:
                return False
            lots = found.lots
        used = engine.usage.get((lease.symbol, lease.lease_id), 0)
        lot_cu = engine.instruments[lease.symbol].spec.lot_cu
        return used + flops <= flops_capacity(lots, lot_cu)

    def _endings(self, run: JobRun) -> list[Command]:
        """`EndLease` for each spot lease of ``run`` still open."""
        commands: list[Command] = []
        for lease in run.leases:
            if lease.spot and not lease.ended and not lease.ending:
                lease.ending = True
                state = "failed" if lease.failed else "used_up"
                commands.append(EndLease(lease.symbol, lease.lease_id, state))  # type: ignore[arg-type]
        return commands

    def _ends_job(self, shard: Shard) -> bool:
        """Whether ``shard``, just reported, is the last work of its job."""
        run, lease = shard.job, shard.lease
        others = [s for s in run.shards.values() if s is not shard]
        resolved = len(run.done) + len(shard.indices) + len(run.failed)
        return (
            run.status == "running"
            and not run.closing
            and not lease.ended
            and not lease.ending
            and not others
            and not run.waiting
            and resolved == len(run.texts)
        )

    def on_failed(self, session: object, req: ShardFailed) -> bool:
        """A node handed shard ``req.shard_id`` back; False if it had no such shard."""
        shard = self._own_shard(session, req.shard_id)
        if shard is None:
            return False
        assert shard.node is not None
        self.exchange.nodes.stats(shard.node).failed += 1
        self._fail(shard, f"the node handed it back: {req.reason or 'no reason'}")
        return True

    def node_lost(self, session: object) -> None:
        """A connection closed (its nodes already forgotten): the shards sent
        over it fail, and queued shards with no node left fail too."""
        for shard in list(self.shards.values()):
            if shard.node is not None and shard.session is session:
                self.exchange.nodes.stats(shard.node).failed += 1
                self._fail(shard, "the node disconnected")
        for shard in list(self._queued):
            if shard in self._queued and not self._candidates(shard):
                self._queued.remove(shard)
                self._fail(shard, "no node of the provider is connected")

    def _own_shard(self, session: object, shard_id: int) -> Shard | None:
        shard = self.shards.get(shard_id)
        if shard is None or shard.node is None or shard.session is not session:
            return None
        return shard

    def _timed_out(self, shard_id: int) -> None:
        shard = self.shards.get(shard_id)
        if shard is None or shard.node is None:
            return
        shard.timer = None
        _tell(shard, "deadline passed")
        self.exchange.nodes.stats(shard.node).failed += 1
        self._fail(shard, "the node passed the shard's deadline")

    # -- outcomes -----------------------------------------------------------------

    def _finished(
        self, shard: Shard, node: tuple[str, str], rows: Any, wall_ns: int
    ) -> None:
        run = shard.job
        run.shards.pop(shard.shard_id, None)
        stats = self.exchange.nodes.stats(node)
        stats.done += 1
        stats.flops += shard.cost
        stats.wall_ns += max(0, wall_ns)
        run.node_wall_ns += max(0, wall_ns)
        if run.status == "cancelled":
            return  # its results are dropped with the job
        if run.embeddings is None:
            import numpy as np

            run.embeddings = np.zeros((len(run.texts), MINILM_L6.hidden), dtype="<f4")
        run.embeddings[shard.indices] = rows
        run.done.update(shard.indices)
        if run.closing:
            return  # closed in the same write: `_closed` publishes it
        self._publish(run)
        self._lease_done(shard.lease)
        self._settle_if_finished(run)

    def _fail(
        self, shard: Shard, reason: str, registered: bool = True, retry: bool = True
    ) -> None:
        """Shard ``shard`` failed: send it to another node of its provider
        (``retry``), or its inputs to other leases, or fail them after
        ``max_attempts``. ``registered``: the node's fault (its reputation
        counts it), not a usage the lease refused."""
        run = shard.job
        blamed = registered and shard.node is not None
        if shard.node is not None:
            shard.tried.add(shard.node)
            if blamed:  # the node's fault: it runs none of the job again
                run.failed_nodes.add(shard.node)
        self._release_node(shard)
        log.warning("shard %d of job %d failed: %s", shard.shard_id, run.job_id, reason)
        if blamed and run.status == "running":
            # The job's shards queued for that node alone will not get it.
            for other in [s for s in self._queued if s.job is run]:
                if other in self._queued and not self._candidates(other):
                    self._queued.remove(other)
                    self._fail(other, "no other node of the provider for this job")
        lease = shard.lease
        if run.status != "running":
            self._drop(shard)
            return
        now = self.exchange.clock()
        if (
            registered
            and retry
            and shard.attempts < self.settings.max_attempts
            and not lease.ended
            and not lease.ending
            and lease.ends_at - now > self._margin()
            and self._candidates(shard)
        ):
            self._send(shard)
            return

        # Its lease takes no more of this job's inputs; they go elsewhere.
        self._drop(shard)
        lease.failed = True
        again = []
        for i in shard.indices:
            run.tries[i] = run.tries.get(i, 0) + 1
            if run.tries[i] < self.settings.max_attempts:
                again.append(i)
            else:
                run.failed[i] = reason
        self._lease_done(lease)
        if again:
            # Later, not from inside the failure: no recursion, however many
            # leases fail in a row.
            asyncio.get_running_loop().call_soon(self._place_again, run, again)
        else:
            self._settle_if_finished(run)

    def _place_again(self, run: JobRun, indices: list[int]) -> None:
        if run.status == "running" and not run.closing:
            self._place(run, [i for i in indices if i not in run.failed])
        else:
            for i in indices:
                run.failed.setdefault(i, "job cancelled")
            self._settle_if_finished(run)

    def _drop(self, shard: Shard) -> None:
        shard.lease.room += shard.cost
        shard.job.shards.pop(shard.shard_id, None)
        self.shards.pop(shard.shard_id, None)
        if shard in self._queued:
            self._queued.remove(shard)

    def _lease_done(self, lease: LeaseRef) -> None:
        """End a spot lease that no shard of its job still needs."""
        run = self._lease_jobs.get((lease.symbol, lease.lease_id))
        if run is None or not lease.spot or lease.ended or lease.ending:
            return
        if any(s.lease is lease for s in run.shards.values()):
            return
        if (
            run.status == "running"
            and not run.resolved
            and not lease.failed
            and lease.room > 0
        ):
            return  # inputs may still come to it
        self._end_lease(lease, "failed" if lease.failed else "used_up")

    def _end_lease(self, lease: LeaseRef, state: str) -> None:
        lease.ending = True

        def ended(events: list[Event]) -> None:
            # UNKNOWN_LEASE: it expired or was used up meanwhile; either way it
            # is settled, which the escrow's release already told us.
            self._check_run(lease)

        self.exchange.submit(
            Work(
                command=EndLease(lease.symbol, lease.lease_id, state),  # type: ignore[arg-type]
                reply=ended,
            )
        )

    def _end_leases(self, run: JobRun, state: str) -> None:
        for lease in run.leases:
            if lease.spot and not lease.ended and not lease.ending:
                self._end_lease(lease, state)

    def _check_run(self, lease: LeaseRef) -> None:
        run = self._lease_jobs.get((lease.symbol, lease.lease_id))
        if run is not None:
            self._settle_if_finished(run)

    def _settle_if_finished(self, run: JobRun) -> None:
        """Close the job once every input is resolved and its spot leases are
        settled (ending those still open)."""
        if run.closing or not run.resolved or run.shards or run.job_id == 0:
            return
        if run.waiting:
            return
        # The `CloseJob` goes right behind the leases' `EndLease`s: the
        # sequencer applies them in order, so the job's cost and refund are
        # final (their escrows released) by the time it is closed.
        for lease in run.leases:
            if lease.spot and not lease.ended and not lease.ending:
                self._end_lease(lease, "failed" if lease.failed else "used_up")
        self._close(run)

    def _close(self, run: JobRun) -> None:
        command = self._close_command(run)
        self.exchange.submit(Work(command=command, reply=lambda _: self._closed(run)))

    def _close_command(
        self, run: JobRun, finishing: list[int] | None = None
    ) -> Command:
        """The job's `CloseJob`; ``finishing`` are inputs whose usage goes in
        the same write (done by then)."""
        run.closing = True
        if run.status == "running":
            run.status = "failed" if run.failed else "done"
        reason = "" if run.status == "done" else (run.message(0).reason or "")[:64]
        flops = run.flops + sum(run.plans[i].flops for i in finishing or ())
        return CloseJob(run.job_id, run.status, flops, reason)  # type: ignore[arg-type]

    def _closed(self, run: JobRun) -> None:
        """The job's close is durable: publish it, free its leases, keep its
        results for ``results_ttl_seconds``."""
        run.ended_at = self.exchange.clock()
        log.info(
            "job %d %s: %d of %d inputs, %d FLOPs, cost %d µcr, refund %d µcr",
            run.job_id,
            run.status,
            len(run.done),
            len(run.texts),
            run.flops,
            run.cost,
            run.refund,
        )
        self._publish(run)
        waiters, run.waiters = run.waiters, []
        for answer in waiters:
            answer()
        self._free_leases(run)
        loop = asyncio.get_running_loop()
        loop.call_later(self.settings.results_ttl_seconds, self._forget, run.job_id)

    def _free_leases(self, run: JobRun) -> None:
        """Forget the leases of a job that ended (or never started)."""
        for lease in run.leases:
            key = (lease.symbol, lease.lease_id)
            self._spot.pop(key, None)
            self._lease_jobs.pop(key, None)
            if self._in_use.get(key) is run:
                del self._in_use[key]

    def _forget(self, job_id: int) -> None:
        self.jobs.pop(job_id, None)

    # -- consumers' requests ------------------------------------------------------

    def job_of(self, account: str, job_id: int) -> JobRun | None:
        run = self.jobs.get(job_id)
        return run if run is not None and run.account == account else None

    def unknown_job(self) -> str:
        """The message of ``UNKNOWN_JOB``: no such job of the account, or one
        that ended more than ``results_ttl_seconds`` ago."""
        ttl = self.settings.results_ttl_seconds
        return (
            "no job of yours has this id (a job and its results are kept "
            f"{ttl:g} s after it ends)"
        )

    def cancel(self, run: JobRun) -> bool:
        """Cancel ``run``; False if it already ended."""
        if run.status != "running" or run.closing:
            return False
        run.status = "cancelled"
        run.changed_at = self.exchange.clock()
        for shard in list(run.shards.values()):
            _tell(shard, "job cancelled")
            self._release_node(shard)
            self._drop(shard)
        for i in range(len(run.texts)):
            if i not in run.done:
                run.failed.setdefault(i, "job cancelled")
        self._end_leases(run, "cancelled")
        self._settle_if_finished(run)
        return True

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest jobs, without their accounts (for the public dashboard)."""
        runs = sorted(self.jobs.values(), key=lambda r: r.job_id)[-limit:]
        out = []
        for run in reversed(runs):
            message = run.message(0)
            out.append(
                {
                    "job_id": message.job_id,
                    "symbol": run.symbol,
                    "status": message.status,
                    "tier": run.tier,
                    "inputs": message.inputs,
                    "done_inputs": message.done_inputs,
                    "flops": message.flops,
                    "budget_flops": message.budget_flops,
                    "full_flops": message.full_flops,
                    "cost": message.cost,
                    "refund": message.refund,
                    "providers": sorted({lease.provider for lease in run.leases}),
                }
            )
        return out

    # -- the engine's events ------------------------------------------------------

    def on_events(self, events: list[Event]) -> None:
        """Watch settlements of the jobs' spot leases (called for every command)."""
        if not self._spot:
            return
        for event in events:
            if type(event) is EscrowReleased:
                lease = self._spot.get((event.symbol, event.trade_id))
                if lease is None or lease.ended:
                    continue
                lease.ended = True
                lease.ending = False
                run = self._lease_jobs.get((event.symbol, event.trade_id))
                if run is not None:
                    run.cost += event.payout
                    run.refund += event.refund

    def recover(self, engine: Engine) -> list[Command]:
        """The commands that fail the jobs a restart interrupted."""
        return [
            CloseJob(job_id, "failed", 0, "exchange restarted")
            for job_id in sorted(engine.jobs)
        ]

    def _publish(self, run: JobRun) -> None:
        run.changed_at = self.exchange.clock()
        data = encode(run.message())
        self.exchange.hub.publish([Publication("jobs", None, run.account, data)])


def _tell(shard: Shard, reason: str) -> None:
    """Tell the node running ``shard`` to drop it."""
    if isinstance(shard.session, Session):
        shard.session.send(encode(ShardCancelled(shard.shard_id, reason)))


def _rejection(events: list[Event]) -> tuple[str, str] | None:
    """The code and message of the command's rejection, if it was rejected."""
    for event in events:
        if type(event) is OrderRejected or type(event) is CommandRejected:
            return event.code, event.message
    return None
