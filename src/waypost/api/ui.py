"""The web UI's files over HTTP: a thin adapter over ``waypost.ui.serve``. Consul leaves
them open (no token needed to load the UI; its API calls carry their own)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from waypost.api.http import Request, Response
from waypost.ui.serve import UIFiles

if TYPE_CHECKING:
    from waypost.api.app import ApiApp


@lru_cache(maxsize=4)
def _files(prefix: str, directory: str) -> UIFiles:
    return UIFiles(prefix, directory)


def files(app: ApiApp, req: Request) -> Response:
    ui = app.agent.config.ui_config
    if not (ui.enabled or ui.dir):
        return Response.text("404 page not found", 404)
    status, headers, body = _files(ui.content_path, ui.dir).answer(
        req.path, req.headers.get("if-none-match", "")
    )
    content_type = next(value for key, value in headers if key == "Content-Type")
    return Response(body, status, content_type, [(k, v) for k, v in headers if k != "Content-Type"])
