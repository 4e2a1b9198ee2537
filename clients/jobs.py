"""Jobs from the client's side: submit, read, follow, wait, cancel.

`JobsMixin` gives `clients.Client` its job calls. A job's results come in pages
(the server sends at most 256 a time); `get_job` reads them all. Progress is
the private ``jobs`` channel: `job_updates` subscribes to it and yields one
job's updates until the job ends, reading the job again after a reconnection
(the updates sent meanwhile were missed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec

from clients.errors import ConnectionLost, RequestTimeout
from clients.messages import Job, JobOutput, JobUpdate, Resync

if TYPE_CHECKING:
    from clients.subscriptions import Subscription

__all__ = ["MAX_BUDGET_CU", "MAX_INPUT_CHARS", "MAX_JOB_INPUTS", "JobsMixin"]

T = TypeVar("T")

PAGE = 256
"""Results asked for per ``get_job`` request (the server's most)."""

WAIT_FOREVER: Final = 1e9
"""The response timeout of a ``get_job`` that waits for the job's end (seconds;
the caller bounds the wait)."""

MAX_JOB_INPUTS: Final = 1024
"""The most texts one job takes (the server's ``MAX_JOB_INPUTS``)."""

MAX_INPUT_CHARS: Final = 8192
"""The most characters one text of a job has (the server's ``MAX_INPUT_CHARS``)."""

MAX_BUDGET_CU: Final = 10**9
"""The largest ``budget_cu`` of a job (the server's ``SubmitJob`` takes no more)."""


class _JobAck(msgspec.Struct):
    job_id: str | None = None


class _JobPage(msgspec.Struct):
    job: JobUpdate
    offset: int
    results: list[JobOutput | None]
    next_offset: int | None


class JobsMixin:
    """The job calls of `clients.Client`."""

    if TYPE_CHECKING:

        async def _call(
            self,
            op: str,
            result: type[T],
            timeout: float | None,
            *,
            internal: bool = False,
            **fields: Any,
        ) -> T: ...

        async def subscribe(
            self,
            *channels: str,
            depth: int | None = None,
            max_queue: int | None = None,
        ) -> Subscription: ...

    async def submit_job(
        self,
        symbol: str,
        inputs: list[str],
        *,
        budget_cu: int,
        tier: str = "exact",
        max_price: int | None = None,
        leases: list[int] | None = None,
        min_reputation_bps: int | None = None,
        timeout: float | None = None,
    ) -> str:
        """Submit an embedding job; its id.

        Args:
            symbol: the instrument whose capacity runs it (``cpu-SPOT``).
            inputs: the texts to embed (1 to `MAX_JOB_INPUTS`, each at most
                `MAX_INPUT_CHARS` characters).
            budget_cu: the most CU the job may spend, 1 to `MAX_BUDGET_CU`
                (each input gets its share; what it does not spend is refunded).
            tier: ``exact`` (default), ``high``, ``balanced`` or ``fast``.
            max_price: a job order: buy spot lots IOC up to this price (µcr
                per lot) and run on them.
            leases: or run on these live leases of ``symbol`` the account
                bought.
            min_reputation_bps: keep the job's shards off nodes that delivered
                a smaller share of their shards (basis points; None: any node).

        Raises:
            JobError: refused (``JOB_UNFILLED``: nothing on offer at
                ``max_price``; ``UNKNOWN_TIER``, ``JOBS_UNAVAILABLE``, ...).
            LeaseError: a named lease is not a live lease of the account on
                ``symbol`` (``UNKNOWN_LEASE``) or runs another job
                (``LEASE_IN_USE``); a `JobError` too.
            ProtocolError: ``FRAME_TOO_LARGE``: the inputs make the request
                larger than `clients.errors.MAX_FRAME` (it is not sent);
                ``INVALID_FIELD``: a field out of its bounds (a lease id below
                1), or an input with no text (empty or only whitespace).
            InsufficientFunds: the account cannot pay for the lots.
        """
        ack = await self._call(
            "submit_job",
            _JobAck,
            timeout,
            symbol=symbol,
            inputs=inputs,
            budget_cu=budget_cu,
            tier=tier,
            max_price=max_price,
            leases=leases,
            min_reputation_bps=min_reputation_bps,
        )
        assert ack.job_id is not None
        return ack.job_id

    async def get_job(
        self,
        job_id: str,
        *,
        results: bool = True,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Job:
        """A job's status and bill, and with ``results`` every input's result
        so far (all pages). With ``wait``, the server answers once the job has
        ended, and ``timeout`` (default: none) bounds that wait.

        Raises:
            JobError: no job of the account has this id (``UNKNOWN_JOB``).
        """
        limit = PAGE if results else 1
        first = (WAIT_FOREVER if timeout is None else timeout) if wait else timeout
        page = await self._page(job_id, 0, limit, first, wait)
        outputs = list(page.results)
        while results and page.next_offset is not None:
            page = await self._page(job_id, page.next_offset, limit, timeout)
            outputs.extend(page.results)
        fields = msgspec.structs.asdict(page.job)
        del fields["ts"]
        return Job(**fields, results=outputs if results else [])

    async def _page(
        self,
        job_id: str,
        offset: int,
        limit: int,
        timeout: float | None,
        wait: bool = False,
    ) -> _JobPage:
        return await self._call(
            "get_job",
            _JobPage,
            timeout,
            job_id=str(job_id),
            offset=offset,
            limit=limit,
            wait=wait or None,
        )

    async def cancel_job(self, job_id: str, *, timeout: float | None = None) -> None:
        """Cancel a job that has not ended.

        Raises:
            JobError: ``UNKNOWN_JOB``, or ``JOB_ENDED`` if it already ended.
        """
        await self._call("cancel_job", _JobAck, timeout, job_id=str(job_id))

    async def job_updates(self, job_id: str) -> AsyncGenerator[JobUpdate, None]:
        """One job's updates, from its state now until it ends."""
        job_id = str(job_id)
        async with await self.subscribe("jobs") as sub:
            # The job as the server read it, with its ``ts`` (when it last
            # changed), which a `Job` has not.
            last = (await self._page(job_id, 0, 1, None)).job
            yield last
            while not last.done:
                message = await sub.__anext__()
                if isinstance(message, Resync):
                    update = (await self._page(job_id, 0, 1, None)).job
                elif isinstance(message, JobUpdate) and message.job_id == job_id:
                    update = message
                else:
                    continue
                if msgspec.structs.replace(update, ts=last.ts) != last:
                    last = update
                    yield update

    async def wait_job(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[JobUpdate], object] | None = None,
    ) -> Job:
        """Wait until a job is done, failed or cancelled; the job with all its
        results. ``on_update`` is called with each update on the way.

        Without ``on_update`` this is one ``get_job`` with ``wait``, answered
        with the results the moment the job ends; if the connection drops
        meanwhile, it follows the ``jobs`` channel instead, which survives a
        reconnection.

        Raises:
            RequestTimeout: it did not end within ``timeout`` seconds (at once
                for a ``timeout`` of 0 or less, as a request's is); the job
                runs on.
        """
        try:
            async with asyncio.timeout(timeout):
                if on_update is None:
                    try:
                        return await self.get_job(
                            job_id, wait=True, timeout=WAIT_FOREVER
                        )
                    except ConnectionLost:
                        pass
                # Closed here, its subscription with it, when the wait ends.
                async with aclosing(self.job_updates(job_id)) as updates:
                    async for update in updates:
                        if on_update is not None:
                            on_update(update)
                return await self.get_job(job_id)
        except TimeoutError:
            raise RequestTimeout(
                f"job {job_id} did not end within {timeout} s (it runs on)"
            ) from None
