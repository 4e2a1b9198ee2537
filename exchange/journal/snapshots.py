"""Snapshot files: an engine's whole state at one sequence number.

A snapshot file ``snapshots/<seq, 20 digits>.snap`` holds a 24-byte header
(magic ``CUXSNAP\\0``, u32 format version, u32 CRC32, u64 payload length, all
little-endian) and the msgpack encoding of a `matching.EngineState`. The CRC
covers the version, the length and the payload. A snapshot is written to a
temporary file, fsynced, renamed into place and its folder fsynced, so a crash
leaves either the whole file or none; a damaged one is skipped by recovery.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Final

import msgspec

from exchange.journal.errors import JournalError
from matching import EngineState

__all__ = [
    "SnapshotInvalid",
    "list_snapshots",
    "prune_snapshots",
    "read_snapshot",
    "remove_temporary",
    "write_snapshot",
    "write_snapshot_bytes",
]

SNAPSHOT_DIR: Final = "snapshots"
"""The snapshots' folder inside a data folder."""
SNAP_MAGIC: Final = b"CUXSNAP\x00"
SNAP_VERSION: Final = 1
_HEAD: Final = struct.Struct("<8sIIQ")  # magic, version, CRC, payload length
_SUFFIX: Final = ".snap"
_TEMP_SUFFIX: Final = ".tmp"

_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(EngineState)


class SnapshotInvalid(JournalError):
    """A snapshot file is damaged, cut short or of another format."""


def snapshot_name(seq: int) -> str:
    """The file name of the snapshot taken at sequence number ``seq``."""
    return f"{seq:020d}{_SUFFIX}"


def list_snapshots(folder: Path) -> list[tuple[int, Path]]:
    """The snapshot files in ``folder`` as (seq, path), oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        stem = path.name.removesuffix(_SUFFIX)
        if stem != path.name and len(stem) == 20 and stem.isdigit():
            found.append((int(stem), path))
    return sorted(found)


def encode_snapshot(state: EngineState) -> bytes:
    """The bytes of a snapshot file holding ``state``."""
    payload = _encoder.encode(state)
    fields = struct.pack("<IQ", SNAP_VERSION, len(payload))
    crc = zlib.crc32(payload, zlib.crc32(fields))
    return _HEAD.pack(SNAP_MAGIC, SNAP_VERSION, crc, len(payload)) + payload


def write_snapshot(
    folder: Path, state: EngineState, fsync_fd: Callable[[int], None]
) -> Path:
    """Write ``state`` atomically as ``folder/<seq>.snap``; its path.

    Runs in a worker thread: it encodes, writes and fsyncs.
    """
    return write_snapshot_bytes(folder, state.seq, encode_snapshot(state), fsync_fd)


def write_snapshot_bytes(
    folder: Path, seq: int, data: bytes, fsync_fd: Callable[[int], None]
) -> Path:
    """Write ``data`` (`encode_snapshot` of the state at ``seq``) atomically
    as ``folder/<seq>.snap``; its path. Runs in a worker thread."""
    path = folder / snapshot_name(seq)
    temp = path.with_name(f".{path.name}{_TEMP_SUFFIX}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        fsync_fd(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    sync_folder(folder, fsync_fd)
    return path


def read_snapshot(path: Path) -> EngineState:
    """The state in the snapshot file ``path``.

    Raises:
        SnapshotInvalid: the file is damaged, cut short, of another format, or
            holds the state at another sequence number than its name says.
    """
    data = path.read_bytes()
    if len(data) < _HEAD.size:
        raise SnapshotInvalid(f"{path}: cut short ({len(data)} bytes)")
    magic, version, crc, length = _HEAD.unpack_from(data)
    if magic != SNAP_MAGIC:
        raise SnapshotInvalid(f"{path}: not a cux snapshot (bad magic)")
    payload = memoryview(data)[_HEAD.size :]
    if len(payload) != length:
        raise SnapshotInvalid(f"{path}: {len(payload)} bytes of payload, not {length}")
    if zlib.crc32(payload, zlib.crc32(data[8:12] + data[16:24])) != crc:
        raise SnapshotInvalid(f"{path}: the checksum does not match")
    if version != SNAP_VERSION:
        raise SnapshotInvalid(f"{path}: snapshot format version {version} unknown")
    try:
        state = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise SnapshotInvalid(f"{path}: does not decode: {exc}") from None
    if snapshot_name(state.seq) != path.name:
        raise SnapshotInvalid(f"{path}: holds the state at seq {state.seq}")
    return state


def prune_snapshots(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` snapshots; the paths deleted."""
    old = [path for _, path in list_snapshots(folder)[:-keep]]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def remove_temporary(folder: Path) -> None:
    """Delete snapshot files left half-written by a crash."""
    if folder.is_dir():
        for path in folder.glob(f".*{_SUFFIX}{_TEMP_SUFFIX}"):
            path.unlink(missing_ok=True)


def sync_folder(folder: Path, fsync_fd: Callable[[int], None]) -> None:
    """Make the folder's entries (new, renamed or removed files) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fsync_fd(fd)
    finally:
        os.close(fd)
