"""The UI's static files as HTTP answers, sans-I/O: a request path in, (status, headers,
body) out. The files are read once, when the catalog of them is built, so answering never
touches the disk and no request path can reach outside the UI's own files."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["INDEX", "UIFiles", "content_prefix"]

INDEX = "index.html"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

_ASSET_CACHE = "public, max-age=300"
"""Assets are not content-hashed, so they are cached briefly and revalidated by ETag: an
upgraded agent's modules reach browsers within minutes, never mixed with old ones for long."""

_BASE = '<base href="/ui/">'
"""index.html's base element, rewritten to the configured prefix so that its relative
links resolve under any ``content_path`` and from any deep link."""

_INDEX_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
)
"""The page may load and call only the agent it came from (no CDN, no other origin) and
may not be framed; data lands in the DOM as text anyway, this is the second line."""

_STRICT_MISSING = (".js", ".css")
"""A missing module or stylesheet answers 404: served index.html instead, it would fail
as a confusing MIME-type error rather than as missing."""


def content_prefix(raw: str) -> str:
    """``ui_config.content_path`` as Consul normalises it: one leading and one trailing slash."""
    if not raw:
        return "/ui/"
    return "/" + raw.strip("/") + "/" if raw.strip("/") else "/"


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    content_type: str
    etag: str
    cache_control: str


class UIFiles:
    """Every UI file by its path under the prefix; ``answer`` serves index.html for paths
    it does not hold, so that a deep link into the UI loads the UI."""

    def __init__(self, prefix: str, directory: str = "") -> None:
        self.prefix = content_prefix(prefix)
        root: Traversable = Path(directory) if directory else resources.files("waypost.ui") / "static"
        self._files: dict[str, _File] = {}
        for rel, data in _walk(root, ""):
            if rel == INDEX:
                data = data.replace(_BASE.encode(), f'<base href="{html.escape(self.prefix)}">'.encode(), 1)
            suffix = "." + rel.rsplit(".", 1)[-1] if "." in rel else ""
            self._files[rel] = _File(
                data,
                _TYPES.get(suffix, "application/octet-stream"),
                '"' + hashlib.sha256(data).hexdigest()[:20] + '"',
                "no-cache" if rel == INDEX else _ASSET_CACHE,
            )

    def answer(self, path: str, if_none_match: str = "") -> tuple[int, list[tuple[str, str]], bytes]:
        """``path`` is the request's path; ``if_none_match`` its If-None-Match header."""
        if path + "/" == self.prefix:
            return 301, [("Location", self.prefix), ("Content-Type", "text/html; charset=utf-8")], b""
        rel = path[len(self.prefix) :] if path.startswith(self.prefix) else None
        found = self._files.get(rel or INDEX) if rel is not None else None
        if rel and found is None and not rel.endswith(_STRICT_MISSING):
            found = self._files.get(INDEX)
        if found is None:
            return 404, [("Content-Type", "text/plain; charset=utf-8")], b"404 page not found"
        headers = [
            ("Content-Type", found.content_type),
            ("Cache-Control", found.cache_control),
            ("ETag", found.etag),
        ]
        if found.cache_control == "no-cache":
            headers.append(("Content-Security-Policy", _INDEX_POLICY))
        if found.etag in (tag.strip() for tag in if_none_match.split(",")):
            return 304, headers, b""
        return 200, headers, found.body


def _walk(node: Traversable, rel: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        path = f"{rel}{child.name}"
        if child.is_dir():
            out.extend(_walk(child, path + "/"))
        elif child.is_file():
            out.append((path, child.read_bytes()))
    return out
