"""How static files and pages travel: compressed (brotli or gzip, by flask-compress), static URLs
fingerprinted with their content hash so a browser may keep them for a year, and a favicon at the
address browsers ask for on their own."""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from typing import Any

from flask import Flask, Response, abort, redirect, request, url_for
from flask_compress import Compress

from .auth import public

YEAR = 31_536_000
# Already-compressed files (images, archives, STL uploads are octet-stream) are not listed, so never
# compressed twice; text, SVG, JSON and the web app manifest are.
COMPRESSED_TYPES = ["text/html", "text/css", "text/plain", "text/csv", "text/calendar", "text/javascript",
                    "application/javascript", "application/json", "application/manifest+json",
                    "application/xml", "image/svg+xml", "image/x-icon"]

TEST_ONLY = "vendor/axe-core/"

compress = Compress()


class Fingerprints:
    """Content hash per static file, kept while the file's size and mtime stay the same (a deploy that
    changes a file changes its URL; a stat per url_for is cheap next to hashing)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._cache: dict[str, tuple[tuple[int, int], str]] = {}

    def of(self, filename: str) -> str | None:
        path = os.path.join(self.folder, filename)
        if os.path.commonpath([os.path.realpath(path), os.path.realpath(self.folder)]) != os.path.realpath(self.folder):
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):  # a folder (an import map's prefix) has no content to hash
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        hit = self._cache.get(filename)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        self._cache[filename] = (stamp, digest)
        return digest


def init_assets(app: Flask) -> None:
    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESSED_TYPES)
    # gzip and brotli: what every browser and proxy understands; streamed responses (CSV exports) in brotli.
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["br", "deflate"])
    compress.init_app(app)
    prints = Fingerprints(app.static_folder or "static")
    app.extensions["fablab_fingerprints"] = prints

    @app.url_defaults
    def _fingerprint(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "v" not in values and "filename" in values:
            digest = prints.of(values["filename"])
            if digest:
                values["v"] = digest

    @app.before_request
    def _test_only_files() -> None:
        # axe-core is vendored for the accessibility tests, which inject it from the file: never served.
        name = posixpath.normpath((request.view_args or {}).get("filename", "") or ".")
        if request.endpoint == "static" and (name + "/").startswith(TEST_ONLY):
            abort(404)

    @app.after_request
    def _static_caching(resp: Response) -> Response:
        if request.endpoint != "static" or resp.status_code not in (200, 304):
            return resp
        if resp.status_code == 200 and resp.is_streamed:
            # Read the file into the response, so it is compressed whole (gzip too: flask-compress
            # streams brotli and deflate only) and keeps its Content-Length. Static files are small.
            source = resp.response
            resp.direct_passthrough = False
            resp.get_data()
            close = getattr(source, "close", None)
            if close is not None:
                close()  # the file: its content is in the response now
        filename = (request.view_args or {}).get("filename", "")
        v = request.args.get("v")
        if v and v == prints.of(filename):
            # The URL names this exact content: it can never change under that URL.
            resp.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        else:
            resp.headers["Cache-Control"] = "no-cache"  # an old or missing hash: revalidate every time
        return resp

    @app.get("/favicon.ico")
    @public
    def favicon() -> Any:
        return redirect(url_for("static", filename="favicon.svg"), code=301)
