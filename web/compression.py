"""Compressed answers everywhere in the app (brotli when the browser asks for it, else gzip), with Flask-Compress.

Everything textual is compressed, whoever made it: the plain pages, the API's JSON, the map layers' GeoJSON,
``assets/``, Dash's component bundles and its ``_dash-*`` JSON answers. On a phone over a weak network this is
most of the first load: Dash's bundles shrink from about 1.5 MB to about 400 KB.

Left as they are:

- answers that already say how they are encoded (``Content-Encoding``): the map layers that app.py gzips once
  per version of the data; Flask-Compress never compresses those twice;
- images, photos, spreadsheets and PDFs (already compressed formats: not in the list of types);
- partial answers (206, a ``Range`` request: compressing a slice would corrupt the download) and
  answers under 500 bytes (the headers would cost more than they save);
- streamed answers are compressed chunk by chunk as they go (never buffered whole), so a streamed download
  still starts at once.
"""

from __future__ import annotations

from flask import Flask, Response
from flask_compress import Compress

# What is worth compressing: text, JSON (GeoJSON included) and SVG; no image, sheet or PDF (already packed).
MIMETYPES = [
    "text/html", "text/css", "text/plain", "text/csv", "text/javascript", "application/javascript",
    "application/x-javascript", "application/json", "application/geo+json", "application/manifest+json",
    "application/problem+json", "application/xml", "image/svg+xml",
]
ALGORITHMS = ["br", "gzip"]  # the browser's preference among these wins; br only when it asks for it


class _Compress(Compress):
    """Flask-Compress, except for partial answers (a 206 slice of a file must reach the client as it is)."""

    def after_request(self, response: Response | None) -> Response:
        if response is not None and response.status_code == 206:
            return response
        return super().after_request(response)


def install(server: Flask) -> None:
    """Compress every answer of ``server`` that is worth it (call once, right after the headers' hook)."""
    server.config.update(
        COMPRESS_MIMETYPES=MIMETYPES,
        COMPRESS_ALGORITHM=ALGORITHMS,
        COMPRESS_ALGORITHM_STREAMING=ALGORITHMS,
        COMPRESS_LEVEL=6,  # gzip: the usual balance of size and CPU
        COMPRESS_BR_LEVEL=5,  # brotli: smaller than gzip 6 at about its speed
        COMPRESS_MIN_SIZE=500,
        COMPRESS_STREAMS=True,
    )
    _Compress(server)
