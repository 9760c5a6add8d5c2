"""Serving the app: waitress in one or several processes sharing one listening socket.

One Python process is bound by its GIL to about one core; on a small
machine the database needs the rest only part of the time. Several
processes (forked after the socket is bound, each building its own app and
database pool after the fork) let the kernel spread connections among them.
The parent only supervises: it runs ``on_start`` (the task sweeper) and stops
the children when it is told to stop.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _serve(make_app: Callable[[], object], sock: socket.socket, threads: int, trusted_proxy: str | None) -> None:
    from waitress import serve

    # "Task queue depth is N" on every request that waits for a free thread: a busy minute writes thousands
    # of lines (and the logging costs CPU on the busy server); real errors still come through.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    # Behind a reverse proxy every request comes from the proxy's address: the client is then the one the
    # proxy names in X-Forwarded-For (rate limits and login throttling count clients). Only that proxy is
    # believed; from anywhere else the header is dropped, so a client cannot pick his own address.
    proxy = {"trusted_proxy": trusted_proxy, "trusted_proxy_count": 1,
             "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"}} if trusted_proxy else {}
    serve(make_app(), sockets=[sock], threads=threads, ident="nanhai-grid", _quiet=True,
          clear_untrusted_proxy_headers=True, **proxy)


def serve_forever(make_app: Callable[[], object], host: str, port: int, workers: int = 1, threads: int = 8,
                  on_start: Callable[[], object] | None = None, trusted_proxy: str | None = None) -> None:
    """Serve the WSGI app made by ``make_app`` on host:port with ``workers`` processes until SIGINT/SIGTERM.

    ``trusted_proxy``: the address of a reverse proxy in front, whose X-Forwarded-For names the client.
    """
    sock = _listen(host, port)
    if workers <= 1:
        if on_start:
            on_start()
        _serve(make_app, sock, threads, trusted_proxy)
        return
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the child: its own app, engine and pool, built after the fork
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                _serve(make_app, sock, threads, trusted_proxy)
            finally:
                os._exit(0)
        children.append(pid)
    sock.close()

    def stop(_signum, _frame) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for child in children:
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if on_start:
        on_start()
    while children:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            break
        if pid in children:  # a worker died: say so and stop the rest, rather than serve at half strength unseen
            print(f"worker {pid} exited; stopping", file=sys.stderr)
            stop(None, None)
