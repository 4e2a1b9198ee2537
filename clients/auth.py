"""Signatures: the login's and the signed REST routes'.

Both are the hex HMAC-SHA256 under the account's secret: of the server's nonce
for a websocket login, of ``"<timestamp>\\n<METHOD>\\n<path with query>"`` for a
signed REST request (`rest_headers`), with ``"\\n<body>"`` after it when the
request has a body.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["rest_headers", "signature"]


def signature(secret: str, message: str) -> str:
    """The hex HMAC-SHA256 of ``message`` under ``secret``."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def rest_headers(
    key: str,
    secret: str,
    method: str,
    path_qs: str,
    body: str = "",
    *,
    now_ns: int | None = None,
) -> dict[str, str]:
    """The headers of a signed REST request (``X-Cux-Key``, ``X-Cux-Timestamp``,
    ``X-Cux-Signature``) with ``body`` (the exact text sent; empty: none),
    stamped ``now_ns`` (default: the clock now)."""
    stamp = str(time.time_ns() if now_ns is None else now_ns)
    message = f"{stamp}\n{method}\n{path_qs}"
    if body:
        message += f"\n{body}"
    return {
        "X-Cux-Key": key,
        "X-Cux-Timestamp": stamp,
        "X-Cux-Signature": signature(secret, message),
    }
