"""Serving the app: granian running the WSGI app in one or several worker processes.

granian does the HTTP work (reading, parsing, writing, keep-alive) in Rust, outside the GIL; only the app
itself runs in Python threads. On the phones' update path it costs less server CPU per update than
waitress, whose I/O thread and request parsing share the GIL with the app (figures in benchmarks/RESULTS.md).

Each worker process is forked before it builds its own app, engine and pool. The task sweeper runs in a
process of its own, forked before the workers, so that no thread of the parent ever holds a lock or a
database connection when a worker is forked; it is stopped with the server.

A worker that dies (killed, out of memory, a crash in native code) is replaced: granian forks a new one
(``respawn_failed_workers``) while the others go on serving, so one death drops only the connections that
worker held, not every user. (On Linux each worker listens on the port with a socket of its own, SO_REUSEPORT:
the connections queued on the dead one's are reset too, unless ``net.ipv4.tcp_migrate_req=1`` lets the kernel
hand them to the others — README, Deploying.) The death is logged ("Unexpected exit from worker-N",
"Respawning worker-N") and counted in ``/metrics`` (``nanhai_app_starts_total`` grows past the number of
workers). A worker that dies again within 5.5 s of being replaced is a crash loop (the app cannot start: the
database is gone, a broken release): then the whole server stops with exit status 1 and the service manager
(deploy/nanhai-grid.service, ``Restart=always``) starts it again whole.

Each run has a folder of its own (:mod:`gis.runtime`: ``NANHAI_RUN_DIR``), made before anything is forked and
removed at the end: the background processes' heartbeats, which ``/healthz`` reads, and prometheus-client's
files of every process (``PROMETHEUS_MULTIPROC_DIR``), which ``/metrics`` adds up across the workers.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
# how long a stopping worker may finish its requests before it is killed; also ends one that missed the stop
WORKER_STOP_SECONDS = 30
# set in the request's environ when it came with an X-Forwarded-For (from any proxy, trusted or not): such a
# request is never "local", whatever its address (web.health reads it under the same name)
PROXIED_KEY = "nanhai.proxied"
# what granian sets from the request itself (PEP 3333); an environment variable of the same name is overwritten
REQUEST_KEYS = frozenset(("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
                          "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR",
                          "GATEWAY_INTERFACE", "SERVER_SOFTWARE"))


def trusting(app: WSGIApp, trusted_proxy: str | None) -> WSGIApp:
    """``app`` behind a reverse proxy: only a request from ``trusted_proxy`` may say who the client is.

    From that address the last ``X-Forwarded-For`` entry becomes ``REMOTE_ADDR`` (rate limits and login
    throttling count clients) and ``X-Forwarded-Proto`` the URL scheme; from anywhere else both headers are
    dropped, so a client cannot pick his own address. A request that came with an ``X-Forwarded-For`` at all is
    marked (``PROXIED_KEY``): relayed by a proxy, it is never taken for one made on this host (web.health).
    """
    process_keys = tuple(key for key in os.environ if key not in REQUEST_KEYS)

    def serve(environ: dict, start_response: Callable) -> Iterable[bytes]:
        # granian copies the process environment into every request's environ (as CGI did); werkzeug walks the
        # whole environ each time it lists headers (the cookies, on every request): only the request stays. An
        # HTTP_PROXY variable would otherwise even pass for a request header (httpoxy).
        for key in process_keys:
            environ.pop(key, None)
        forwarded = environ.pop("HTTP_X_FORWARDED_FOR", None)
        scheme = environ.pop("HTTP_X_FORWARDED_PROTO", None)
        if forwarded is not None:
            environ[PROXIED_KEY] = True
        if trusted_proxy is not None and environ.get("REMOTE_ADDR") == trusted_proxy:
            client, proto = _last(forwarded), _last(scheme).lower()
            if client:
                environ["REMOTE_ADDR"] = client
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return app(environ, start_response)
    return serve


def _last(header: str | None) -> str:
    """The entry the nearest proxy added to a comma-separated forwarding header ("" when none)."""
    return header.split(",")[-1].strip() if header else ""


def _threads_warning(record: logging.LogRecord) -> bool:
    # granian warns when the threads outnumber 2 × cores + 1: right for CPU-bound apps, but ours wait on the
    # database most of the time (the default of 8 threads per worker is what benchmarks/RESULTS.md found best)
    return not record.getMessage().startswith("Configuration allows spawning up to")


def run_beside(job: Callable[[], object]) -> int:
    """Fork the process of the server's background job (the task sweeper): it runs ``job``, which starts its
    threads, until it is told to stop. A job that cannot start says so; the server serves on without it."""
    pid = os.fork()
    if pid == 0:  # the child never returns from here, whatever happens
        status = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group; the server stops this
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - said here, in the server's log
                print(f"任务巡检进程无法启动，超时任务不会升级：请检查数据库后重启服务 / the task sweeper could not "
                      f"start ({type(exc).__name__}: {exc}); overdue work is not escalated: check the database, "
                      f"then restart the server", file=sys.stderr, flush=True)
            else:
                status = 0
                while True:
                    signal.pause()
        finally:
            os._exit(status)
    return pid


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _hold_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _release_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _stop_signals_end_the_worker() -> None:
    """In a newly forked worker: SIGTERM and SIGINT end it, until granian installs the worker's own handlers.

    A worker is forked with the main process's handlers, which only set a flag of the main's serve loop: a stop
    that reached a worker still starting was lost, and the main waited for that worker forever. The signals are
    held across the fork, so one sent at that moment waits, and ends the worker when released here.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _release_stop_signals()


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def serve_forever(make_app: Callable[[], WSGIApp], host: str, port: int, workers: int = 1, threads: int = 8,
                  on_start: Callable[[], object] | None = None, trusted_proxy: str | None = None,
                  jobs_worker: Callable[[], object] | None = None) -> None:
    """Serve the WSGI app made by ``make_app`` (in each worker) on host:port until SIGINT/SIGTERM.

    ``on_start`` (the task sweeper) runs in its own process beside the workers, and so does ``jobs_worker``
    (the background-job worker, jobs.worker.start_beside). ``trusted_proxy``: the address of a reverse proxy in
    front, whose X-Forwarded-For names the client.
    """
    from granian import Granian
    from granian.constants import Interfaces

    from gis.runtime import close_run_dir, open_run_dir

    logging.getLogger("_granian").addFilter(_threads_warning)
    server = Granian("nanhai", address=host, port=port, interface=Interfaces.WSGI, workers=workers,
                     blocking_threads=threads, websockets=False, log_access=False, backlog=1024,
                     workers_kill_timeout=WORKER_STOP_SECONDS, respawn_failed_workers=True)
    folder = open_run_dir()  # before any fork: every process of this server inherits its name
    sweeper = run_beside(on_start) if on_start else None
    job_worker = run_beside(jobs_worker) if jobs_worker else None
    os.register_at_fork(before=_hold_stop_signals, after_in_parent=_release_stop_signals,
                        after_in_child=_stop_signals_end_the_worker)
    try:
        server.serve(target_loader=lambda _target: trusting(make_app(), trusted_proxy))
    finally:
        if sweeper is not None:
            _stop(sweeper)
        if job_worker is not None:
            _stop(job_worker)
        close_run_dir(folder)
