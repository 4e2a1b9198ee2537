"""Why a client command reached no cux server, in plain words.

`unreachable` turns what aiohttp and the socket layer raise (a refused
connection, an unknown host name, a TLS handshake with a plain server, a
timeout) into the reason the command prints after ``no cux server at URL:``,
so that no library's class names or internals reach a person.
"""

from __future__ import annotations

import ssl

import aiohttp

__all__ = ["unreachable"]


def unreachable(exc: BaseException, timeout: float) -> str:
    """The reason ``exc`` says no server was reached, for a person.

    Args:
        exc: what connecting or talking to the server raised.
        timeout: the per-request timeout in seconds, named when it ran out.
    """
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return f"no answer within {timeout:g} s (--timeout)"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"the host name {exc.host} is not known"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not trusted"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return (
            "the TLS handshake failed (a wss:// or https:// url for a server "
            "without TLS? use ws:// or http://)"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return f"nothing listens on port {exc.port} of {exc.host}"
        return f"cannot connect to {exc.host} port {exc.port}: {_words(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before it answered"
    if isinstance(exc, OSError):
        return f"the connection failed: {_words(exc)}"
    return "the connection failed"


def _words(exc: OSError) -> str:
    """An OS error's own words, without its errno and the call it came from."""
    if exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return "the connection failed"
