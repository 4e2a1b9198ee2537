"""The websocket requests of jobs: consumers' and nodes' (see `exchange.dispatch`).

Consumers: ``submit_job`` (acknowledged with the job's id once it is recorded),
``get_job`` (its state and a page of results), ``cancel_job``. Nodes:
``shard_result`` (acknowledged once its usage is recorded, or refused with
``REPORT_REJECTED`` and the reason) and ``shard_failed``. An account sees and
touches only its own jobs; a node only the shards sent to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exchange.dispatch import JobRefused
from exchange.dispatch_jobs import JobRun
from exchange.protocol import Ack, ErrorMessage, encode
from exchange.protocol_jobs import (
    CancelJob,
    GetJob,
    JobResult,
    ShardFailed,
    ShardResult,
    SubmitJob,
)
from exchange.sessions import Session
from matching.codes import Code

if TYPE_CHECKING:
    from exchange.gateway import Gateway

__all__ = ["JOB_CODES", "JobRequests"]

JOB_CODES: dict[str, str] = {
    "UNKNOWN_TIER": "no quality tier has this name",
    "JOB_UNFILLED": "no capacity was on offer at or below the job's max_price",
    "BUDGET_TOO_SMALL": "the budget affords no layer for some input; the "
    "message says how much one layer of every input needs",
    "JOBS_UNAVAILABLE": "this exchange cannot count tokens, so it runs no jobs",
    "JOB_ENDED": "the job has already ended",
    "LEASE_IN_USE": "a named lease is running another job; wait for it to end",
    "UNKNOWN_SHARD": "no shard of this id is running on this connection's nodes",
    "REPORT_REJECTED": "the shard's report differs from the metering plan; it "
    "is not paid",
}
"""The codes of job requests, beside `exchange.protocol.WIRE_CODES` and the
engine's."""

MAX_WAITERS = 16
"""The most ``get_job`` requests with ``wait`` that one job holds; another is
answered at once, like one without ``wait``."""


class JobRequests:
    """The job handlers of a `Gateway`."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.exchange = gateway.exchange

    def handlers(self) -> dict[type, Callable[[Session, Any], None]]:
        return {
            SubmitJob: self._submit,
            GetJob: self._get,
            CancelJob: self._cancel,
            ShardResult: self._result,
            ShardFailed: self._failed,
        }

    def _submit(self, session: Session, req: SubmitJob) -> None:
        account = self.gateway._logged_in(session, req.id)
        if account is None:
            return

        def done(outcome: JobRun | JobRefused) -> None:
            if isinstance(outcome, JobRefused):
                self._refuse(session, req.id, outcome.code, outcome.message)
            else:
                session.send(encode(Ack(req.id, job_id=str(outcome.job_id))))

        self.exchange.dispatcher.submit(account, req, done)

    def _get(self, session: Session, req: GetJob) -> None:
        run = self._own_job(session, req.id, req.job_id)
        if run is None:
            return
        if req.wait and not run.ended_at and len(run.waiters) < MAX_WAITERS:
            run.waiters.append(lambda: self._page(session, req, run))
            return
        self._page(session, req, run)

    def _page(self, session: Session, req: GetJob, run: JobRun) -> None:
        if session.closed:
            return
        end = min(len(run.texts), req.offset + req.limit)
        result = JobResult(
            req.id,
            run.message(),
            req.offset,
            run.results(req.offset, req.limit),
            end if end < len(run.texts) else None,
        )
        session.send(encode(result))

    def _cancel(self, session: Session, req: CancelJob) -> None:
        run = self._own_job(session, req.id, req.job_id)
        if run is None:
            return
        if not self.exchange.dispatcher.cancel(run):
            self._refuse(session, req.id, "JOB_ENDED", JOB_CODES["JOB_ENDED"])
            return
        session.send(encode(Ack(req.id, job_id=str(run.job_id))))

    def _result(self, session: Session, req: ShardResult) -> None:
        def reply(code: str | None, message: str) -> None:
            if code is None:
                session.send(encode(Ack(req.id)))
            else:
                self._refuse(session, req.id, code, message)

        self.exchange.dispatcher.on_result(session, req, reply)

    def _failed(self, session: Session, req: ShardFailed) -> None:
        if self.exchange.dispatcher.on_failed(session, req):
            session.send(encode(Ack(req.id)))
        else:
            self._refuse(session, req.id, "UNKNOWN_SHARD", JOB_CODES["UNKNOWN_SHARD"])

    def _own_job(self, session: Session, rid: int, job_id: str) -> JobRun | None:
        account = self.gateway._logged_in(session, rid)
        if account is None:
            return None
        # The request's struct has checked the id's form (`OrderId`).
        run = self.exchange.dispatcher.job_of(account, int(job_id))
        if run is None:
            message = self.exchange.dispatcher.unknown_job()
            self._refuse(session, rid, Code.UNKNOWN_JOB.value, message)
        return run

    def _refuse(
        self, session: Session, rid: int | None, code: str, message: str
    ) -> None:
        self.exchange.metrics.rejections.labels(code).inc()
        session.send(encode(ErrorMessage(rid, code, message)))
