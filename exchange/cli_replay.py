"""``cux replay JOURNAL``: rebuild the engine from a journal and report on it.

It reads every segment from the first (no snapshot), checks every record and
the engine's invariants, and prints the last sequence number, the number of
records, the state hash (the server's, after the same records) and a short
summary. A damaged or missing journal exits with code 2 and one line on
stderr; a broken invariant (a bug in cux) with code 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exchange.journal import JournalError, find_journal, list_segments, replay
from matching import Engine, InvariantViolation

__all__ = ["add_replay_command"]

_NS = 1_000_000_000


def add_replay_command(commands: Any) -> None:
    """Add ``replay`` to the ``cux`` subcommands ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "replay",
        help="rebuild the market from a journal and print its state hash",
        description="Rebuild the engine from every record of a journal (no "
        "snapshot), check its invariants and print the last sequence number, "
        "the number of records, the state hash and a summary. Exit code 2 if "
        "the journal is missing or damaged.",
    )
    parser.add_argument(
        "journal",
        type=Path,
        metavar="JOURNAL",
        help="a data folder (holding journal/) or the journal folder itself",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as one JSON object"
    )
    parser.set_defaults(run=_replay)


def _replay(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="cux replay: %(message)s")
    try:
        journal = find_journal(args.journal)
        segments = len(list_segments(journal))
        engine = replay(journal)
        engine.check()
    except JournalError as exc:
        print(f"cux replay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cux replay: cannot read the journal: {exc}", file=sys.stderr)
        return 2
    except InvariantViolation as exc:
        print(f"cux replay: an invariant broke (a bug in cux): {exc}", file=sys.stderr)
        return 1
    report = _report(journal, segments, engine)
    if args.json:
        print(json.dumps(report))
    else:
        print(_text(report))
    return 0


def _report(journal: Path, segments: int, engine: Engine) -> dict[str, Any]:
    return {
        "journal": str(journal.resolve()),
        "segments": segments,
        "last_seq": engine.seq,
        "last_ts": engine.now,
        "records": engine.seq,
        "state_hash": engine.state_hash(),
        "accounts": len(engine.ledger.names),
        "open_orders": len(engine.orders),
        "trades": engine.trade_seq,
        "instruments": len(engine.instruments),
    }


def _text(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"journal: {report['journal']} ({report['segments']} segments)",
            f"last seq: {report['last_seq']} at {_utc(report['last_ts'])}",
            f"records: {report['records']}",
            f"state hash: {report['state_hash']}",
            f"summary: {report['accounts']} accounts, {report['open_orders']} open "
            f"orders, {report['trades']} trades, {report['instruments']} "
            "instruments",
        ]
    )


def _utc(ts: int) -> str:
    """``ts`` (ns since the epoch) as ISO 8601 UTC, to the nanosecond."""
    seconds, ns = divmod(ts, _NS)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns:09d}Z"
