"""Argument types shared by the ``cux`` subcommands.

The server's commands (``serve``, ``demo``) take whole numbers the same way the
client commands do, with the same messages: one implementation, in
`clients.cli_input`.
"""

from __future__ import annotations

from clients.cli_input import whole as whole_number

__all__ = ["whole_number"]
