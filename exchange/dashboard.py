"""The live web dashboard that `cux serve` shows at ``/``.

The page is static files in ``exchange/dashboard/`` (HTML, CSS and plain
JavaScript modules, no build step); it fetches nothing from outside the server
it came from. It reads the public REST API and subscribes to the public
websocket channels, so it needs no login: see ``docs/dashboard.md``.

Routes:

- ``/``: the page (``index.html``);
- ``/dashboard/<file>``: its script, style sheet and icon;
- ``/dashboard/features.json``: which optional REST routes this server has
  (``{"jobs_recent": bool}``), so that the page asks only for routes that
  exist and a browser logs no failed request.

Every answer carries a Content-Security-Policy that lets the page load and
connect to its own origin only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

__all__ = ["STATIC", "add_routes"]

STATIC: Final = Path(__file__).with_name("dashboard")
"""The folder of the page's files."""

_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": _POLICY,
    # The page is small: always check for a newer one, so an upgraded
    # server never runs with a stale script.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
_TYPES: Final = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
_OPTIONAL_ROUTES: Final = {"jobs_recent": "/api/v1/jobs/recent"}


def add_routes(app: web.Application) -> None:
    """Serve the dashboard on ``app``: ``/`` and ``/dashboard/...``."""
    app.router.add_get("/", _index)
    app.router.add_get("/dashboard/features.json", _features)
    app.router.add_get("/dashboard/{name}", _file)


async def _index(request: web.Request) -> web.StreamResponse:
    return _send(STATIC / "index.html")


async def _file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    # Only the page's own files, by plain name: no folders, no dot files.
    path = STATIC / name
    if name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        raise web.HTTPNotFound(text="no such dashboard file")
    return _send(path)


async def _features(request: web.Request) -> web.Response:
    """Which optional routes the server's REST API has, read from its router."""
    paths = {resource.canonical for resource in request.app.router.resources()}
    body = {name: path in paths for name, path in _OPTIONAL_ROUTES.items()}
    return web.json_response(body, headers=_HEADERS)


def _send(path: Path) -> web.Response:
    return web.Response(
        body=path.read_bytes(),
        content_type=_TYPES[path.suffix],
        charset="utf-8" if path.suffix != ".svg" else None,
        headers=_HEADERS,
    )
