"""Compressed answers everywhere: brotli when asked for, gzip otherwise, plain when the client asks for neither;
the same bytes once decoded; never twice (layers the app gzips itself), never images or sheets, never a slice."""

from __future__ import annotations

import gzip
import io
import re

import brotli
import pytest
from flask import Flask, Response, send_file

from app import create_app
from tests.conftest import signed_in
from web.compression import install

DECODERS = {"gzip": gzip.decompress, "br": brotli.decompress}


@pytest.fixture(scope="module")
def client(work_engine):
    """The supervisor's client, with a few tasks of his to list (an empty list is under the minimum size)."""
    client = signed_in(create_app(work_engine).server.test_client(), "demo_supervisor")
    csrf = client.get("/api/v1/session").get_json()["csrf_token"]
    for i in range(5):
        made = client.post("/api/v1/tasks", headers={"X-CSRF-Token": csrf},
                           json={"kind": "home_visit", "grid_code": "440605011001001", "title": f"入户走访测温 {i}",
                                 "detail": "桂一一路149号 3 楼，居家观察第 2 天"})
        assert made.status_code == 201, made.get_data(as_text=True)
    return client


@pytest.fixture(scope="module")
def urls(client) -> dict[str, str]:
    """One URL of each kind, found as a browser would: from the dispatch page's HTML."""
    page = client.get("/dispatch/", headers={"Accept-Encoding": "identity"}).get_data(as_text=True)
    bundles = re.findall(r'src="(/dispatch/_dash-component-suites/[^"]+\.js[^"]*)"', page)
    assert bundles, "the page names Dash's component bundles"
    largest = max(bundles, key=lambda url: len(client.get(url, headers={"Accept-Encoding": "identity"}).data))
    css = re.findall(r'href="(/dispatch/assets/[^"]+\.css[^"]*)"', page)
    assert css, "the page names its stylesheets"
    return {"dash bundle": largest, "dash JSON": "/dispatch/_dash-dependencies", "dash page": "/dispatch/",
            "API JSON": "/api/v1/tasks", "login page": "/login", "asset": css[0],
            "form script": "/leads/assets/lead_form.js", "form outline": "/leads/outline.geojson"}


KINDS = ["dash bundle", "dash JSON", "dash page", "API JSON", "login page", "asset", "form script", "form outline"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("accept", "expected"), [("gzip, deflate, br, zstd", "br"), ("gzip", "gzip"),
                                                    ("identity", None), (None, None)])
def test_answers_are_compressed_when_asked_and_decode_to_the_same_bytes(client, urls, kind, accept, expected):
    plain = client.get(urls[kind], headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    answer = client.get(urls[kind], headers={"Accept-Encoding": accept} if accept else {})
    assert answer.status_code == 200
    assert answer.headers.get("Content-Encoding") == expected
    assert "Accept-Encoding" in answer.headers.get("Vary", "")
    body = answer.data if expected is None else DECODERS[expected](answer.data)
    if kind in ("login page", "dash page"):  # a fresh token on every load (a form's, Dash's): the rest is the same
        body, reference = (re.sub(rb'value="[\w-]{20,}"|"end_id":"[^"]*"', b"", b) for b in (body, plain.data))
    else:
        reference = plain.data
    assert body == reference
    if expected is not None:
        assert len(answer.data) < len(plain.data) * 0.7, f"{kind}: {len(answer.data)} of {len(plain.data)} bytes"


def test_layers_the_app_gzips_itself_are_not_compressed_twice(client):
    answer = client.get("/layers/towns.geojson", headers={"Accept-Encoding": "gzip, br"})
    assert answer.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(answer.data).startswith(b'{"type":"FeatureCollection"')


def test_the_figures(client, urls, capsys):
    """Not a check: what a phone saves on the dispatch page's scripts (printed for the report)."""
    plain = br = gz = 0
    for url in [urls["dash page"], urls["dash bundle"], urls["asset"], urls["dash JSON"]]:
        plain += len(client.get(url, headers={"Accept-Encoding": "identity"}).data)
        br += len(client.get(url, headers={"Accept-Encoding": "br"}).data)
        gz += len(client.get(url, headers={"Accept-Encoding": "gzip"}).data)
    with capsys.disabled():
        print(f"\ncompression: {plain} bytes plain, {gz} gzip, {br} brotli")
    assert br <= gz < plain


@pytest.fixture(scope="module")
def bare():
    """A bare Flask app with the compression installed: images, sheets, slices and streams."""
    server = Flask(__name__)
    install(server)
    text = ("网格 grid " * 2000).encode()

    @server.get("/photo.png")
    def photo() -> Response:
        return Response(b"\x89PNG" + bytes(5000), mimetype="image/png")

    @server.get("/sheet.xlsx")
    def sheet() -> Response:
        return Response(bytes(5000), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @server.get("/file.txt")
    def file() -> Response:
        return send_file(io.BytesIO(text), mimetype="text/plain", conditional=True)

    @server.get("/stream.csv")
    def stream() -> Response:
        return Response((f"{i},{'x' * 50}\n".encode() for i in range(2000)), mimetype="text/csv")

    return server.test_client(), text


@pytest.mark.parametrize("url", ["/photo.png", "/sheet.xlsx"])
def test_images_and_sheets_are_left_as_they_are(bare, url):
    assert "Content-Encoding" not in bare[0].get(url, headers={"Accept-Encoding": "gzip, br"}).headers


def test_a_range_request_gets_its_slice_uncompressed(bare):
    client, text = bare
    answer = client.get("/file.txt", headers={"Accept-Encoding": "gzip, br", "Range": "bytes=100-199"})
    assert answer.status_code == 206 and "Content-Encoding" not in answer.headers
    assert answer.data == text[100:200]


@pytest.mark.parametrize("accept", ["gzip", "br"])
def test_a_streamed_download_is_compressed_as_it_goes(bare, accept):
    client, _ = bare
    answer = client.get("/stream.csv", headers={"Accept-Encoding": accept})
    assert answer.is_streamed and answer.headers["Content-Encoding"] == accept
    assert "Content-Length" not in answer.headers
    assert DECODERS[accept](answer.data) == b"".join(f"{i},{'x' * 50}\n".encode() for i in range(2000))
