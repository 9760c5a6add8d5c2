"""The benchmark phones' HTTP/1.1: one keep-alive connection over a plain socket.

The phones share the machine's two cores with the server they measure, so every CPU-second they spend is
taken from the server under test. ``http.client`` spends much of a small request's CPU parsing headers
through the ``email`` package; this client spends markedly less (figures in benchmarks/RESULTS.md). It
does only what the phones need: requests with a Content-Length body, answers framed by Content-Length or
chunked, or ended by the server closing the connection.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping


class WireError(ConnectionError):
    """The connection broke or the answer was not HTTP/1.x (an ``OSError``: the phones send again)."""


def _number(text: str, base: int) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise WireError(f"应答中的长度无法解析 / malformed length in the answer: {text[:40]!r}") from None


class Headers:
    """An answer's header fields, looked up case-insensitively."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields: dict[str, list[str]] = {}
        for name, value in fields:
            self._fields.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        values = self._fields.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` (Set-Cookie may come more than once)."""
        return list(self._fields.get(name.lower(), ()))


class Wire:
    """A keep-alive HTTP/1.1 connection to ``host:port``, opened on first use and again after a close."""

    def __init__(self, host: str, port: int | None, timeout: float, tls: bool = False) -> None:
        default = 443 if tls else 80
        port = port or default
        self.address, self.timeout, self.tls = (host, port), timeout, tls
        self.host = host if port == default else f"{host}:{port}"
        self._socket: socket.socket | None = None
        self._buffer = bytearray()
        self._method = ""

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._buffer.clear()

    def request(self, method: str, target: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> None:
        """Send one request; read its answer with :meth:`getresponse`."""
        if self._socket is None:
            connection = socket.create_connection(self.address, self.timeout)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                import ssl

                connection = ssl.create_default_context().wrap_socket(connection, server_hostname=self.address[0])
            self._socket = connection
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._method = method
        try:
            self._socket.sendall(head + body if body else head)
        except OSError:
            self.close()
            raise

    def getresponse(self) -> tuple[int, Headers, bytes]:
        """(status, headers, body) of the request just sent."""
        try:
            return self._answer()
        except OSError:
            self.close()
            raise

    def _answer(self) -> tuple[int, Headers, bytes]:
        end = self._fill_until(b"\r\n\r\n")
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[:end + 4]
        version, _, rest = head[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise WireError(f"应答不是 HTTP/1.x / not an HTTP/1.x answer: {head[0][:80]!r}")
        status = int(rest[:3])
        fields = []
        for line in head[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise WireError(f"应答头格式错误 / malformed header line: {line[:80]!r}")
            fields.append((name.strip(), value.strip()))
        headers = Headers(fields)
        if self._method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif (headers.get("Transfer-Encoding") or "").lower().endswith("chunked"):
            body = self._chunked()
        elif (length := headers.get("Content-Length")) is not None:
            body = self._take(_number(length, 10))
        else:
            body = self._until_closed()
        if (headers.get("Connection") or "").lower() == "close":
            self.close()
        return status, headers, body

    def _receive(self) -> None:
        if self._socket is None:
            raise WireError("连接已关闭 / the connection is closed")
        data = self._socket.recv(65536)
        if not data:
            raise WireError("服务器关闭了连接 / the server closed the connection")
        self._buffer += data

    def _fill_until(self, marker: bytes) -> int:
        start = 0
        while (found := self._buffer.find(marker, start)) < 0:
            start = max(0, len(self._buffer) - len(marker) + 1)
            self._receive()
        return found

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._receive()
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = _number(self._line().split(b";")[0].decode("latin-1"), 16)
            if size == 0:
                while self._line():  # trailer fields, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._take(size))
            self._take(2)

    def _line(self) -> bytes:
        end = self._fill_until(b"\r\n")
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 2]
        return line

    def _until_closed(self) -> bytes:
        try:
            while True:
                self._receive()
        except WireError:
            pass
        body = bytes(self._buffer)
        self.close()
        return body
