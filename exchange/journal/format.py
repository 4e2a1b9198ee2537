"""The bytes of a journal segment: its header, its record frames, and a scanner.

A segment is a header followed by framed records (the layout is in the package
docstring, `exchange.journal`). `SegmentScan` walks one segment's bytes and
tells a torn tail (the last write cut short by a crash: harmless, cut off) from
damage (refused with `JournalCorrupt`):

- at the end of the last segment, an incomplete frame header, a frame whose
  payload runs past the end of the file, or a run of zero bytes to the end of
  the file (which some file systems leave after a crash) is a torn tail;
- a complete frame with a bad CRC, a length of 0 or over `MAX_RECORD_BYTES`, a
  payload that does not decode, or a record whose sequence number is not the
  next one is damage, wherever it is;
- a frame that claims to run past the end of the file while a valid frame of
  the next record follows it has a damaged length field: damage too.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final, NoReturn

import msgspec

from exchange.journal.errors import JournalCorrupt, JournalError
from matching import Command, MarketConfig

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_RECORD_BYTES",
    "JournalRecord",
    "SegmentHeader",
    "SegmentScan",
    "TornHeader",
    "encode_frames",
    "encode_header",
    "parse_segment_name",
    "read_header",
    "segment_name",
]

MAGIC: Final = b"CUXJRNL\x00"
"""The first 8 bytes of every segment file."""
FORMAT_VERSION: Final = 1
"""The segment format this code writes and reads."""
MAX_RECORD_BYTES: Final = 1 << 20
"""The largest payload of one record, in bytes; a command is a few hundred."""
MAX_HEADER_BYTES: Final = 1 << 24
"""The largest header body (the market configuration as JSON), in bytes."""

SEGMENT_SUFFIX: Final = ".seg"
_SEQ_DIGITS: Final = 20

_HEAD: Final = struct.Struct("<8sIII")  # magic, version, body length, CRC
_FRAME: Final = struct.Struct("<II")  # payload length, CRC32 of the payload
FRAME_BYTES: Final = _FRAME.size


class JournalRecord(msgspec.Struct, array_like=True, frozen=True):
    """One journaled command with the stamp the sequencer gave it.

    Attributes:
        seq: its sequence number; the journal's records count from 1 with no
            gap.
        ts: the timestamp it was applied at, in ns since the epoch.
        command: the command itself.
    """

    seq: int
    ts: int
    command: Command


class SegmentHeader(msgspec.Struct, frozen=True):
    """What a segment says about itself, so that a journal is self-contained.

    Attributes:
        first_seq: the sequence number of its first record (also its name).
        config: the market configuration the journal was written with.
    """

    first_seq: int
    config: MarketConfig


_record_encoder: Final = msgspec.msgpack.Encoder()
_record_decoder: Final = msgspec.msgpack.Decoder(JournalRecord)
_header_decoder: Final = msgspec.json.Decoder(SegmentHeader)


def segment_name(first_seq: int) -> str:
    """The file name of the segment whose first record is ``first_seq``."""
    return f"{first_seq:0{_SEQ_DIGITS}d}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The first sequence number a segment file name stands for, else None."""
    stem = name.removesuffix(SEGMENT_SUFFIX)
    if stem == name or len(stem) != _SEQ_DIGITS or not stem.isdigit():
        return None
    return int(stem)


def encode_header(first_seq: int, config: MarketConfig) -> bytes:
    """A segment's header: magic, version, body length, CRC, JSON body."""
    body = msgspec.json.encode(SegmentHeader(first_seq, config))
    fields = struct.pack("<II", FORMAT_VERSION, len(body))
    crc = zlib.crc32(body, zlib.crc32(fields))
    return _HEAD.pack(MAGIC, FORMAT_VERSION, len(body), crc) + body


def encode_frames(records: Sequence[JournalRecord]) -> bytes:
    """``records`` framed one after another: length, CRC32, msgpack payload.

    Raises:
        JournalError: a record encodes to more than `MAX_RECORD_BYTES`.
    """
    parts: list[bytes] = []
    for record in records:
        payload = _record_encoder.encode(record)
        if len(payload) > MAX_RECORD_BYTES:
            raise JournalError(
                f"record {record.seq} is {len(payload):,} bytes, over the "
                f"journal's limit of {MAX_RECORD_BYTES:,}"
            )
        parts.append(_FRAME.pack(len(payload), zlib.crc32(payload)))
        parts.append(payload)
    return b"".join(parts)


def read_header(path: Path, data: bytes, *, last: bool) -> tuple[SegmentHeader, int]:
    """The header at the start of ``data`` and the offset just past it.

    Raises:
        JournalCorrupt: the header is damaged, or cut short in a segment that
            is not the last (``last`` False). A cut-short header of the last
            segment raises `TornHeader`, a `JournalCorrupt` the caller may
            forgive.
        JournalError: the segment is of a format version this code cannot read.
    """
    size = len(data)
    if data[: min(size, len(MAGIC))] != MAGIC[: min(size, len(MAGIC))]:
        raise JournalCorrupt(path, 0, "not a cux journal segment (bad magic)")
    if size < _HEAD.size:
        raise _torn_header(path, size, last)
    _, version, length, crc = _HEAD.unpack_from(data)
    if length > MAX_HEADER_BYTES:
        raise JournalCorrupt(path, 0, f"header length {length:,} is implausible")
    end = _HEAD.size + length
    if size < end:
        raise _torn_header(path, size, last)
    body = data[_HEAD.size : end]
    if zlib.crc32(body, zlib.crc32(data[len(MAGIC) : len(MAGIC) + 8])) != crc:
        raise JournalCorrupt(path, 0, "the header's CRC does not match")
    if version != FORMAT_VERSION:
        raise JournalError(
            f"{path}: journal format version {version} is not supported "
            f"(this cux reads version {FORMAT_VERSION})"
        )
    try:
        header = _header_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise JournalCorrupt(path, 0, f"the header does not decode: {exc}") from None
    return header, end


class TornHeader(JournalCorrupt):
    """The last segment's header was cut short by a crash while it was created."""


def _torn_header(path: Path, size: int, last: bool) -> JournalCorrupt:
    if last:
        return TornHeader(path, 0, f"the header is cut short ({size} bytes)")
    return JournalCorrupt(path, 0, "the header is cut short in a middle segment")


class SegmentScan:
    """One segment's records, checked as they are read.

    Args:
        path: the file, named in errors.
        data: its whole contents.
        first_seq: the sequence number its name says its first record has.
        last: whether it is the journal's last segment, the only one whose
            tail may be torn.

    Attributes:
        header: the segment's header.
        header_end: the offset of its first record.
        end: after `records` is exhausted, the offset just past the last
            complete record: where a torn tail starts.
        last_seq: the sequence number of the last record read (``first_seq -
            1`` before any).
        torn: after `records` is exhausted, why the bytes from `end` on are
            a torn tail, or None if the segment ends cleanly.

    Raises:
        JournalCorrupt: from the constructor (the header) or from `records`.
    """

    def __init__(self, path: Path, data: bytes, first_seq: int, *, last: bool):
        self.path = path
        self.data = data
        self.last = last
        self.header, self.header_end = read_header(path, data, last=last)
        if self.header.first_seq != first_seq:
            raise JournalCorrupt(
                path,
                0,
                f"the header says the first record is {self.header.first_seq}, "
                f"the file name says {first_seq}",
            )
        self.end = self.header_end
        self.last_seq = first_seq - 1
        self.torn: str | None = None

    def records(self) -> Iterator[tuple[int, JournalRecord]]:
        """Each record with the offset of its frame, in file order."""
        data = memoryview(self.data)
        size = len(data)
        offset = self.header_end
        while offset < size:
            self.end = offset
            if size - offset < FRAME_BYTES:
                self._torn(offset, "an incomplete frame header")
                return
            length, crc = _FRAME.unpack_from(data, offset)
            start = offset + FRAME_BYTES
            if length == 0 or length > MAX_RECORD_BYTES:
                if self._zero_tail(offset):
                    return
                self._fail(offset, f"implausible record length {length:,}")
            if start + length > size:
                if self._zero_tail(offset):
                    return
                if self._next_frame_follows(start):
                    self._fail(offset, "a damaged length field")
                self._torn(offset, f"a record cut short ({size - start} of {length})")
                return
            payload = data[start : start + length]
            if zlib.crc32(payload) != crc:
                self._fail(offset, "the record's CRC does not match")
            record = self._decode(offset, payload)
            yield offset, record
            offset = start + length
        self.end = offset

    def _decode(self, offset: int, payload: memoryview) -> JournalRecord:
        try:
            record = _record_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            self._fail(offset, f"the record does not decode: {exc}")
        expected = self.last_seq + 1
        if record.seq != expected:
            self._fail(offset, f"expected record {expected}, found {record.seq}")
        self.last_seq = expected
        return record

    def _torn(self, offset: int, why: str) -> None:
        if not self.last:
            self._fail(offset, f"{why} in a middle segment")
        self.torn = why

    def _zero_tail(self, offset: int) -> bool:
        """Whether the bytes from ``offset`` to the end are zeros (a torn tail)."""
        zeros = len(self.data) - offset
        if not self.last or self.data.count(0, offset) != zeros:
            return False
        self.end = offset
        self.torn = f"{zeros} zero bytes"
        return True

    def _next_frame_follows(self, start: int) -> bool:
        """Whether a valid frame of the record after the current one starts
        somewhere after ``start``: then the current frame's length is damaged,
        not cut short by a crash."""
        data = self.data
        # A record's payload starts with a 3-array marker and its seq.
        marker = b"\x93" + msgspec.msgpack.encode(self.last_seq + 2)
        at = data.find(marker, start + FRAME_BYTES)
        while at != -1:
            frame = at - FRAME_BYTES
            length, crc = _FRAME.unpack_from(data, frame)
            complete = 0 < length <= MAX_RECORD_BYTES and at + length <= len(data)
            if complete and zlib.crc32(data[at : at + length]) == crc:
                return True
            at = data.find(marker, at + 1)
        return False

    def _fail(self, offset: int, why: str) -> NoReturn:
        raise JournalCorrupt(self.path, offset, why)
