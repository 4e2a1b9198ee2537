"""The journal: every command the sequencer stamped, durable before its response.

The sequencer stamps each command with ``(seq, ts)``, applies it to the engine
and appends it here as a `JournalRecord`; it sends the responses only once the
append's awaitable is done. On start-up `Journal.recover` rebuilds the engine
from the newest good snapshot and the records after it, so the market carries
on exactly where it stopped; `replay` rebuilds it from the records alone.

`Journal` is the small interface the server uses. `FileJournal` is the local,
embedded backend; a replicated one (NATS JetStream) will implement the same.

Files
-----

A data folder holds::

    journal/00000000000000000001.seg     segments, named by their first record's
    journal/00000000000000052001.seg     sequence number (20 digits)
    snapshots/00000000000000052000.snap  snapshots, named by their sequence number
    LOCK                                 held by the journal that has it open

A segment starts with a header: the magic ``CUXJRNL\\0`` (8 bytes), then
little-endian u32 format version (1), u32 body length and u32 CRC32 (of the
version, the length and the body), then the body: JSON of
``{"first_seq": N, "config": <MarketConfig>}``. So a journal is self-contained
(``cux replay`` needs no config file), and a folder written for another market
configuration (another `MarketConfig.digest`) is refused. Framed records follow,
one after another until the end of the file::

    u32 length | u32 CRC32 of the payload | payload (msgpack of a JournalRecord)

all little-endian, a `JournalRecord` encoded as the array ``[seq, ts,
command]`` with the command as a map tagged by ``op``. A record's payload is at
most 1 MiB. Sequence numbers run from 1 with no gap, across segments. A new
segment starts when the current one has reached ``segment_bytes``, and with the
first record after a snapshot. cux never deletes a segment.

A snapshot file is a 24-byte header (magic ``CUXSNAP\\0``, u32 version, u32
CRC32, u64 payload length) and the msgpack of the `matching.EngineState`;
it is written to a temporary file, fsynced, renamed and its folder fsynced.

Recovery rules
--------------

- Start from the newest snapshot whose checksum is good; a damaged one is
  skipped with a WARNING (an older one is used, or none).
- Apply the records after it; they must follow on with no gap.
- A last record cut short (an incomplete frame header or payload at the end of
  the last segment, or zero bytes to its end) is a torn write: it is cut off
  before new appends, with a WARNING, and the cut bytes are kept beside the
  segment as ``<segment>.torn-at-<offset>``. The commands in it were never
  acknowledged: their appends had not completed.
- A complete record with a bad CRC anywhere, a gap in the sequence numbers, or a
  journal that ends before the snapshot refuses to start with `JournalCorrupt`,
  naming the file and the byte offset. If losing the records from that offset on
  is acceptable, truncating the file there (``truncate -s OFFSET FILE``) lets it
  start.

Durability
----------

See `FileJournal` for the fsync policies: ``batch`` (the default) completes an
append after its group is fsynced; ``interval`` and ``none`` complete after the
write to the OS, and can lose acknowledged commands in a power loss. Writes and
fsyncs run in a worker thread (``writer="thread"``, `FileJournal`'s default) or
in a process of their own (``writer="process"``, the server's default; see
`exchange.journal.writer_process`), so the event loop never waits on the disk.

Known limitations
-----------------

- A damaged length field in the very last record of the last segment reads as
  a torn write, so that record is cut instead of refused (elsewhere such damage
  is told apart because a valid record follows it).
- Recovery reads only the segments after the snapshot it starts from; damage in
  older segments is found by ``cux replay``, which reads them all.
- Segments and the ``.torn-at-*`` copies are never deleted; archiving old
  segments is up to the operator (recovery needs those after the oldest kept
  snapshot, ``cux replay`` needs all).

Logging: the logger ``cux.journal`` says INFO when the journal opens, closes,
starts a segment or writes a snapshot, and WARNING when it cuts a torn tail,
skips a damaged snapshot or fails to write.
"""

from __future__ import annotations

from exchange.journal.errors import JournalConfigMismatch, JournalCorrupt, JournalError
from exchange.journal.file import FileJournal
from exchange.journal.format import JournalRecord
from exchange.journal.protocol import Journal
from exchange.journal.reader import find_journal, list_segments, read_records, replay
from exchange.journal.writer import FsyncPolicy

__all__ = [
    "FileJournal",
    "FsyncPolicy",
    "Journal",
    "JournalConfigMismatch",
    "JournalCorrupt",
    "JournalError",
    "JournalRecord",
    "find_journal",
    "list_segments",
    "read_records",
    "replay",
]
