"""The bench phones' HTTP client against a real socket server that answers in each framing HTTP/1.1 allows."""

import socket
import threading

import pytest

from benchmarks.wire import Wire, WireError

ANSWERS = {
    b"/length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"4;note=x\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"/empty": b"HTTP/1.1 204 No Content\r\n\r\n",
    b"/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    b"/garbage": b"SSH-2.0-OpenSSH\r\n\r\n",
}


@pytest.fixture
def server():
    """A keep-alive server on loopback; it records what each connection received."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve(connection: socket.socket) -> None:
        with connection:
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    data = connection.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, pending = pending.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(pending) < length:
                    pending += connection.recv(65536)
                body, pending = pending[:length], pending[length:]
                received.append(head + b"\r\n\r\n" + body)
                path = head.split(b" ")[1]
                connection.sendall(ANSWERS[path])
                if path in (b"/close", b"/garbage"):
                    return

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1], received
    listener.close()


def test_answers_in_every_framing_on_one_kept_alive_connection(server):
    port, received = server
    wire = Wire("127.0.0.1", port, 5.0)
    wire.request("POST", "/length", b'{"a": 1}', {"Content-Type": "application/json"})
    status, headers, body = wire.getresponse()
    assert (status, body, headers.get_all("Set-Cookie")) == (200, b"hello", ["a=1", "b=2"])
    wire.request("GET", "/chunked")
    status, headers, body = wire.getresponse()
    assert (status, body, headers.get("transfer-encoding")) == (201, b"Wikipedia", "chunked")
    wire.request("DELETE", "/empty")
    status, _, body = wire.getresponse()
    assert (status, body) == (204, b"")
    wire.request("GET", "/close")
    status, _, body = wire.getresponse()
    assert (status, body) == (200, b"until the end")
    assert len(received) == 4
    assert received[0] == (f"POST /length HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                           f"Content-Length: 8\r\n\r\n").encode() + b'{"a": 1}'
    wire.request("GET", "/length")  # the server closed the last one: a new connection opens
    assert wire.getresponse()[2] == b"hello"


def test_a_broken_or_foreign_answer_is_a_connection_error(server):
    port, _ = server
    wire = Wire("127.0.0.1", port, 5.0)
    wire.request("GET", "/garbage")
    with pytest.raises(WireError, match="not an HTTP"):
        wire.getresponse()
    assert isinstance(WireError("x"), OSError), "the phones send again after an OSError"
    with pytest.raises(OSError):
        Wire("127.0.0.1", 1, 1.0).request("GET", "/")
