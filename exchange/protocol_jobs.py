"""The wire protocol of jobs: what consumers and nodes send and receive.

Consumers submit a job (``submit_job``), follow it on the private ``jobs``
channel, read its results (``get_job``, a page at a time) and may cancel it
(``cancel_job``). The exchange sends each node the shards it runs (``shard``)
and the node answers with ``shard_result`` — embeddings as base64 of
little-endian float32 rows, and the metering report the exchange checks — or
``shard_failed``. See `exchange.dispatch` for what happens in between.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from exchange.protocol_base import Int64, Name, OrderId, Symbol, _Message, _Request

__all__ = [
    "JOB_REQUESTS",
    "CancelJob",
    "GetJob",
    "InputResult",
    "JobMessage",
    "JobResult",
    "ShardCancelled",
    "ShardFailed",
    "ShardInput",
    "ShardMessage",
    "ShardResult",
    "SubmitJob",
]

MAX_JOB_INPUTS: Final = 1024
"""The most inputs one submitted job may have."""

MAX_INPUT_CHARS: Final = 8192
"""The longest input text, in characters (the model reads at most 256 tokens)."""

MAX_PAGE: Final = 256
"""The most results one ``get_job`` answer carries."""

Text = Annotated[str, msgspec.Meta(max_length=MAX_INPUT_CHARS)]

LeaseId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
"""A lease's id: its trade's id (a spot lease) or the engine's, 1 or more."""


class SubmitJob(_Request, tag="submit_job", frozen=True):
    """Embed ``inputs`` at ``tier`` using at most ``budget_cu`` CU.

    Either ``max_price`` (a job order: buy spot lots of ``symbol`` IOC at up
    to that price, µcr per lot, and run on what was bought) or ``leases`` (the
    ids of live leases of ``symbol`` the account bought) says where it runs.
    ``min_reputation_bps`` keeps its shards off nodes that delivered a smaller
    share of their shards (see `exchange.nodes`); a lease whose provider has
    no such node gives its inputs to the job's other leases and is refunded.
    """

    symbol: Symbol
    inputs: Annotated[list[Text], msgspec.Meta(min_length=1, max_length=MAX_JOB_INPUTS)]
    budget_cu: Annotated[int, msgspec.Meta(ge=1, le=10**9)]
    tier: Name = "exact"
    max_price: Int64 | None = None
    leases: Annotated[list[LeaseId], msgspec.Meta(max_length=64)] | None = None
    min_reputation_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0


class GetJob(_Request, tag="get_job", frozen=True):
    """The job's state and results ``offset`` to ``offset + limit``; with
    ``wait``, answered once the job has ended (at once if it has)."""

    job_id: OrderId
    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_JOB_INPUTS)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)] = 64
    wait: bool = False


class CancelJob(_Request, tag="cancel_job", frozen=True):
    """Cancel a job that has not ended: see `exchange.dispatch`."""

    job_id: OrderId


class ShardInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A node's report of one input: as `providers.jobs.InputReport`."""

    tokens: Int64
    layers: Int64
    exit: Literal["full", "tier", "budget"]
    flops: Int64


class ShardResult(_Request, tag="shard_result", frozen=True):
    """A node ran shard ``shard_id``: one report and one embedding per input, in
    the shard's order; ``embeddings`` is base64 of float32 rows."""

    shard_id: Int64
    inputs: Annotated[list[ShardInput], msgspec.Meta(max_length=MAX_JOB_INPUTS)]
    embeddings: str
    flops: Int64
    wall_ns: Int64


class ShardFailed(_Request, tag="shard_failed", frozen=True):
    """A node could not run shard ``shard_id`` (it hands it back)."""

    shard_id: Int64
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


JOB_REQUESTS: Final[tuple[type[Any], ...]] = (
    SubmitJob,
    GetJob,
    CancelJob,
    ShardResult,
    ShardFailed,
)


class JobMessage(_Message, tag="job", frozen=True):
    """A job of the account changed (private channel ``jobs``).

    ``status`` is ``running``, then ``done``, ``failed`` or ``cancelled``.
    ``cost`` is what the consumer paid so far (metered payouts and buyer
    fees, µcr), ``refund`` what came back from escrow. ``node_wall_ns`` is
    the time the nodes said they spent running its shards. ``ts`` is when
    the job last changed (ns): in ``get_job`` and over REST too, the same on
    every read until its next change, not the time of the read.
    """

    job_id: str
    symbol: str
    status: str
    tier: str
    inputs: int
    done_inputs: int
    failed_inputs: int
    flops: int
    budget_flops: int
    full_flops: int
    cost: int
    refund: int
    reason: str | None
    ts: int
    node_wall_ns: int = 0


class InputResult(msgspec.Struct, frozen=True):
    """One input's embedding and what it ran."""

    embedding: list[float]
    tokens: int
    layers: int
    exit: str
    flops: int


class JobResult(_Message, tag="result", frozen=True):
    """The answer to ``get_job``: the job as on the ``jobs`` channel, and its
    results ``offset`` on (None for an input that did not run, or not yet);
    ``next_offset`` is where the next page starts, None after the last."""

    id: int | None
    job: JobMessage
    offset: int
    results: list[InputResult | None]
    next_offset: int | None


class ShardMessage(_Message, tag="shard", frozen=True):
    """To a node: run ``inputs`` at ``tier`` with the job's budget
    (`providers.jobs.JobBudget`) and answer before ``deadline`` (ns)."""

    shard_id: int
    job_id: str
    symbol: str
    lease_id: int
    tier: str
    budget_flops: int
    job_full_flops: int
    inputs: list[str]
    deadline: int


class ShardCancelled(_Message, tag="shard_cancelled", frozen=True):
    """To a node: drop shard ``shard_id``; it will not be paid."""

    shard_id: int
    reason: str
