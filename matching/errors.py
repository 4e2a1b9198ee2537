"""Exceptions of the core. They signal bugs and misuse, never a client's mistake.

A client's mistake is data: an `OrderRejected` or `CommandRejected` event with a
stable code (see `matching.codes`). These exceptions are raised only for a wrong
configuration, an engine used against its contract, or a broken invariant.
"""

__all__ = ["ConfigError", "CuxError", "InvariantViolation", "SequenceError"]


class CuxError(Exception):
    """The root of every exception that cux raises on purpose."""


class ConfigError(CuxError, ValueError):
    """The market configuration is invalid; the message names the field."""


class SequenceError(CuxError):
    """A command arrived with a sequence number that is not the next one."""


class InvariantViolation(CuxError, AssertionError):
    """The engine's state broke one of its own invariants: a bug in cux."""
