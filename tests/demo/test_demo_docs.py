"""docs/demo.md says what the demo does: its data-folder table names what the
exchange writes there, and its list of the latest events only what the demo
reports."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from exchange.demo_core import CONFIG
from exchange.journal import FileJournal

DOC = Path(__file__).resolve().parents[2] / "docs" / "demo.md"


def test_the_data_folder_table_names_every_file_the_journal_writes(
    tmp_path: Path,
) -> None:
    async def open_and_close() -> None:
        journal = FileJournal(tmp_path, CONFIG)
        journal.recover()
        await journal.close()

    asyncio.run(open_and_close())
    listed = set(re.findall(r"^\| `DATA/([^/`]+)/?`", DOC.read_text(), re.MULTILINE))

    assert {path.name for path in tmp_path.iterdir()} <= listed


def test_the_latest_events_promise_no_providers_offers() -> None:
    # The demo reports no event per provider offer: the nodes' table shows them.
    events = DOC.read_text().split("- the latest events:", 1)[1].split("\n\n", 1)[0]

    assert "offers" not in events
    assert "market maker" in " ".join(events.split())
