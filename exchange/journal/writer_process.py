"""The journal's writes and fsyncs in a process of their own.

With the writer thread (`exchange.journal.writer.WriterThread`) every group
waits for the GIL several times: when the thread takes the group, after the
``write`` and after the fsync, while the event loop runs the market. At 5,000
orders a second those waits were most of the journal's share of the tail
latency. `WriterProcess` runs the same `SegmentWriter` in a separate Python
process, which has a GIL of its own: the event loop hands it a group through a
pipe and hears back through another, and neither side ever waits for the
other's bytecode.

The child is a fresh interpreter that receives only its two pipes, the open
segment and the journal's lock: it holds none of the server's memory or
sockets, and it imports cux from the server's own import path, never from the
current folder (``python -P``). Its first lines, before any import of cux,
ask the kernel for SIGKILL when its parent's starting thread ends (so
`WriterProcess.start` must run on the main thread) and ignore SIGINT and
SIGTERM: it runs in a session of its own, and the server handles those by
closing the journal through it. It also stops when its request pipe closes.
It holds the lock as long as it lives, so a restarted server cannot recover
the folder while it might still be writing: `FileJournal` waits for a lock
whose holder's server is gone (the kernel may have to let an fsync finish
first). It logs to the server's stderr at the server's level.

The child answers the requests one by one in the order they came; the server
sends a group only once the one before it is answered (``OPEN`` is followed
at once, and a ``CLOSE`` may follow a group still being written):

- request: a header (`_REQUEST`: operation, first sequence number, rotate,
  sync, body length) and a body. ``OPEN`` (the body is the JSON of
  `_Start`) comes first; ``WRITE`` bodies are frames for `SegmentWriter.write`;
  ``CLOSE`` has none and ends the child.
- answer: `_ANSWER` (status, the ``interval`` policy's due time or NaN for
  none, errno, message length) and, when the status is an error, its message
  in UTF-8: an OS error's text and file name with a NUL between them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import logging
import math
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Final

import msgspec

from exchange.journal.errors import JournalError
from exchange.journal.writer import Answer, SegmentWriter

__all__ = ["WriterProcess"]

_REQUEST: Final = struct.Struct("<BQ??I")  # op, first_seq, rotate, sync, length
_ANSWER: Final = struct.Struct("<BdiI")  # status, due, errno, message length
_OPEN, _WRITE, _CLOSE = 1, 2, 3
_OK, _FAILED = 0, 1
_PIPE_BYTES: Final = 1 << 20
_F_SETPIPE_SZ: Final = 1031  # Linux
_PATH_VARIABLE: Final = "CUX_JOURNAL_WRITER_PATH"
# The child's first lines, before any import of cux: from here on it dies
# with its parent (Linux: PR_SET_PDEATHSIG, 1, asks for SIGKILL when the
# thread that started it ends), or exits now if that already happened; it
# leaves SIGINT and SIGTERM to the server; and it imports from exactly the
# server's import path (run with -P: not from the current folder). Its first
# line names it in `ps`, with the journal's folder as its last argument.
_CHILD_MAIN: Final = f"""\
# cux journal writer
import ctypes, json, os, signal, sys
try:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[3]):
    os._exit(0)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.path[:] = json.loads(os.environ.pop("{_PATH_VARIABLE}"))
from exchange.journal.writer_process import main
sys.exit(main(sys.argv[1:3] + sys.argv[4:5]))
"""


class _Start(msgspec.Struct, frozen=True):
    """What the child needs to make its `SegmentWriter` (the ``OPEN`` body)."""

    folder: str
    config: bytes  # the market configuration, msgspec JSON
    policy: str
    interval_s: float
    segment_bytes: int
    tail_fd: int  # the open segment passed to the child, or -1
    tail_first_seq: int
    tail_empty: bool


class WriterProcess:
    """A `SegmentWriter` in a child process, driven from the event loop.

    `start` (before serving, on the main thread) launches the child and
    hands it the open segment; `write` and `close` send one request each and
    call their answer on the loop when the child has done it, in the order
    sent. `exchange.journal.FileJournal` sends the next group only from the
    previous one's answer, so the child is reading whenever a group comes.

    Args:
        writer: the parent's `SegmentWriter`, after `open_tail` if a segment
            was recovered; its settings and open segment go to the child, and
            it is not used again here.
        lock_fd: the journal's lock, held by the child too.
    """

    def __init__(self, writer: SegmentWriter, lock_fd: int) -> None:
        self._writer = writer
        self._lock_fd = lock_fd
        self._process: subprocess.Popen[bytes] | None = None
        self._requests = -1
        self._answers = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        # The answers awaited, in the order their requests were sent, with
        # whether each is a CLOSE (which succeeds if the child is gone).
        self._waiting: collections.deque[tuple[Answer, bool]] = collections.deque()
        self._buffer = b""
        self._failure: BaseException | None = None
        self._opening = False  # the answer to ``OPEN`` is still to come

    def start(self) -> None:
        """Launch the child and send it the open segment; returns at once.

        The child starts (about 0.3 s: its imports) while the server gets
        ready; a child that fails to start fails the first request.

        Raises:
            JournalError: the child process could not be launched, or this is
                not the main thread (the child would be killed when the
                thread that started it ends).
        """
        if threading.current_thread() is not threading.main_thread():
            raise JournalError(
                "a journal with writer='process' must be recovered on the main "
                "thread: its writer process dies with the thread that starts it"
            )
        writer = self._writer
        # Absolute: in the child's command line, for `ps`, and for its writes.
        folder = str(writer.folder.resolve())
        requests_read, requests_write = os.pipe()
        answers_read, answers_write = os.pipe()
        for fd in (requests_write, answers_write):
            with contextlib.suppress(OSError):  # a larger pipe only saves calls
                fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_BYTES)
        tail_fd = writer.fd if writer.fd is not None else -1
        passed = [fd for fd in (self._lock_fd, tail_fd) if fd >= 0]
        command = [
            sys.executable,
            "-P",
            "-c",
            _CHILD_MAIN,
            str(requests_read),
            str(answers_write),
            str(os.getpid()),
            str(logging.getLogger("cux.journal").getEffectiveLevel()),
            folder,
        ]
        try:
            self._process = subprocess.Popen(
                command,
                pass_fds=[requests_read, answers_write, *passed],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # stderr stays: for a traceback
                env=_child_environment(),
                # Out of the server's process group: a Ctrl-C at the terminal
                # is the server's to handle (it closes the journal through
                # this process), even while the child is still starting.
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (requests_read, requests_write, answers_read, answers_write):
                os.close(fd)
            raise JournalError(f"cannot start the journal writer: {exc}") from exc
        os.close(requests_read)
        os.close(answers_write)
        self._requests = requests_write
        self._answers = answers_read
        start = _Start(
            folder,
            msgspec.json.encode(writer.config),
            writer.policy,
            writer.interval_s,
            writer.segment_bytes,
            tail_fd,
            writer.first_seq,
            writer.empty,
        )
        self._opening = True
        try:
            self._send(_OPEN, 0, False, False, msgspec.json.encode(start))
        except OSError as exc:  # the child is gone already
            self._opening = False
            self._failure = self._gone(exc)
        # The child holds the segment now; the parent's copy is closed unused.
        writer.close()

    def write(
        self,
        loop: asyncio.AbstractEventLoop,
        answer: Answer,
        data: bytes,
        first_seq: int,
        rotate: bool,
        sync: bool,
    ) -> None:
        """Have the child run `SegmentWriter.write`; ``answer`` gets its result."""
        self._request(loop, answer, _WRITE, first_seq, rotate, sync, data)

    def close(self, loop: asyncio.AbstractEventLoop, answer: Answer) -> None:
        """Have the child close the segment and exit."""
        self._request(loop, answer, _CLOSE, 0, False, False, b"")

    def stop(self) -> None:
        """Forget the child after `close` was answered (or kill it if it was not)."""
        if self._loop is not None and self._answers >= 0:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._answers)
        for fd in (self._requests, self._answers):
            if fd >= 0:
                os.close(fd)
        self._requests = self._answers = -1
        process = self._process
        if process is not None:
            # After CLOSE's answer the child is exiting: this is at once.
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._process = None

    # -- the parent's side of the pipes ------------------------------------------

    def _request(
        self,
        loop: asyncio.AbstractEventLoop,
        answer: Answer,
        op: int,
        first_seq: int,
        rotate: bool,
        sync: bool,
        body: bytes,
    ) -> None:
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._answers, self._on_readable)
        closing = op == _CLOSE
        if self._failure is None:
            try:
                self._send(op, first_seq, rotate, sync, body)
            except Exception as exc:
                self._failure = self._gone(exc) if isinstance(exc, OSError) else exc
        if self._failure is not None:
            # A child that is gone has closed its files: closing succeeds.
            error = None if closing else self._failure
            loop.call_soon(answer, None, error)
            return
        self._waiting.append((answer, closing))

    def _gone(self, exc: OSError) -> BaseException:
        if isinstance(exc, BrokenPipeError):
            return JournalError(
                f"the journal writer process exited ({self._exit_status()})"
            )
        return exc

    def _send(
        self, op: int, first_seq: int, rotate: bool, sync: bool, body: bytes
    ) -> None:
        # Blocking is fine: the child is reading when a request comes (the
        # previous one was answered), so this waits only for its copy; at
        # start-up, a request over the pipe's buffer (1 MiB where Linux
        # allows, else 64 KiB) waits for the child's imports.
        head = _REQUEST.pack(op, first_seq, rotate, sync, len(body))
        _write_all(self._requests, head)
        if body:
            _write_all(self._requests, body)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._answers, 65536)
        except OSError as exc:
            chunk = b""
            self._failure = exc
        if not chunk:
            assert self._loop is not None
            self._loop.remove_reader(self._answers)
            if self._failure is None:
                self._failure = JournalError(
                    f"the journal writer process exited ({self._exit_status()})"
                )
            while self._waiting:
                answer, closing = self._waiting.popleft()
                answer(None, None if closing else self._failure)
            return
        self._buffer += chunk
        while (parsed := _parse_answer(self._buffer)) is not None:
            result, self._buffer = parsed
            if self._opening:
                self._opening = False
                if isinstance(result, BaseException):
                    # The child exits after this: the requests sent meanwhile
                    # get the end of the pipe, and this failure.
                    self._failure = JournalError(
                        f"the journal writer failed to start: {result}"
                    )
                continue
            if not self._waiting:
                continue
            answer, _ = self._waiting.popleft()
            if isinstance(result, BaseException):
                answer(None, result)
            else:
                answer(result, None)

    def _exit_status(self) -> str:
        process = self._process
        if process is None:
            return "not running"
        try:
            # The pipe's end came with the child's exit: this is at once.
            code = process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "still running"
        if code < 0:
            return f"killed by signal {-code}"
        return f"exit status {code}"


def _child_environment() -> dict[str, str]:
    """This environment, with this process's import path for the child."""
    env = dict(os.environ)
    env[_PATH_VARIABLE] = json.dumps([os.path.abspath(p) for p in sys.path])
    return env


def _parse_answer(buffer: bytes) -> tuple[float | BaseException | None, bytes] | None:
    """The first whole answer in ``buffer`` and what follows it, or None."""
    if len(buffer) < _ANSWER.size:
        return None
    status, due, code, length = _ANSWER.unpack_from(buffer)
    end = _ANSWER.size + length
    if len(buffer) < end:
        return None
    rest = buffer[end:]
    if status == _OK:
        return (None if math.isnan(due) else due), rest
    message = buffer[_ANSWER.size : end].decode("utf-8", "replace")
    if not code:
        return JournalError(message), rest
    # OSError picks the subclass for the errno, as the child's exception had.
    strerror, _, filename = message.partition("\0")
    return OSError(code, strerror, filename or None), rest


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int) -> bytes | None:
    """``size`` bytes from ``fd``, or None at end of file."""
    parts = []
    while size:
        chunk = os.read(fd, min(size, _PIPE_BYTES))
        if not chunk:
            return None
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


# -- the child -------------------------------------------------------------------


def _answer(fd: int, due: float | None) -> None:
    _write_all(fd, _ANSWER.pack(_OK, math.nan if due is None else due, 0, 0))


def _answer_error(fd: int, exc: BaseException) -> None:
    if isinstance(exc, OSError) and exc.errno:
        code = exc.errno
        text = f"{exc.strerror or ''}\0{exc.filename or ''}"
    else:
        code, text = 0, f"{type(exc).__name__}: {exc}"
    message = text.encode("utf-8", "replace")
    _write_all(fd, _ANSWER.pack(_FAILED, math.nan, code, len(message)) + message)


def _open_writer(body: bytes) -> SegmentWriter:
    from matching import MarketConfig

    start = msgspec.json.decode(body, type=_Start)
    writer = SegmentWriter(
        Path(start.folder),
        msgspec.json.decode(start.config, type=MarketConfig),
        start.policy,  # type: ignore[arg-type]
        start.interval_s,
        start.segment_bytes,
        os.fsync,
    )
    if start.tail_fd >= 0:
        writer.adopt_tail(start.tail_fd, start.tail_first_seq, start.tail_empty)
    return writer


def _serve(requests: int, answers: int) -> None:
    writer: SegmentWriter | None = None
    while True:
        head = _read_exact(requests, _REQUEST.size)
        if head is None:  # the server is gone: nothing waits for an answer
            return
        op, first_seq, rotate, sync, length = _REQUEST.unpack(head)
        body = _read_exact(requests, length) if length else b""
        if body is None:
            return
        try:
            if op == _OPEN:
                try:
                    writer = _open_writer(body)
                except Exception as exc:
                    _answer_error(answers, exc)
                    return
                due = None
            elif op == _WRITE and writer is not None:
                due = writer.write(body, first_seq, rotate, sync)
            elif op == _CLOSE:
                if writer is not None:
                    writer.close()
                _answer(answers, None)
                return
            else:
                raise JournalError(f"unexpected request {op}")
        except Exception as exc:  # the server decides; it stops appending
            _answer_error(answers, exc)
            continue
        _answer(answers, due)


def main(argv: list[str]) -> int:
    """Serve one journal's writes: ``REQUESTS_FD ANSWERS_FD LOG_LEVEL`` (see
    `_CHILD_MAIN`, which runs this after its set-up)."""
    requests, answers, level = (int(arg) for arg in argv)
    # To the server's stderr, as the server logs: the new segments, mostly.
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # A broken pipe: the server is gone, nobody reads the answer.
    with contextlib.suppress(BrokenPipeError):
        _serve(requests, answers)
    return 0
