"""deploy/nginx.conf.example in front of `gridctl serve --trusted-proxy 127.0.0.1`, over TLS, all on loopback.

nginx runs in the foreground with a prefix of its own and the example's server blocks (only the ports, the
certificate's paths and the app's port substituted) inside a minimal main configuration; the certificate is
self-signed, made here. The client speaks from 127.0.0.2, so that the client, nginx (127.0.0.1) and a forged
address are three different addresses.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from requests.adapters import HTTPAdapter
from sqlalchemy import text

from matching.privacy import Vault
from tests.api.test_serving import _free_port
from tests.deploy.conftest import ADMIN, ADMIN_PASSWORD

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf.example"
CLIENT = "127.0.0.2"
FORGED = "203.0.113.9"


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                               x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    crt, pem = folder / "nanhai-grid.crt", folder / "nanhai-grid.key"
    crt.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def site_config(http_port: int, https_port: int, app_port: int, crt: Path, pem: Path) -> str:
    """The example, with only its addresses and paths changed (each one must be found, so the test follows it)."""
    config = EXAMPLE.read_text()
    for old, new in (("listen 80;", f"listen 127.0.0.1:{http_port};"), ("    listen [::]:80;\n", ""),
                     ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
                     ("    listen [::]:443 ssl http2;\n", ""),
                     ("server 127.0.0.1:8050;", f"server 127.0.0.1:{app_port};"),
                     ("/etc/nginx/tls/nanhai-grid.crt", str(crt)), ("/etc/nginx/tls/nanhai-grid.key", str(pem))):
        assert config.count(old) == 1, old
        config = config.replace(old, new)
    return config


class _From(HTTPAdapter):
    """Connections from a chosen loopback address."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (CLIENT, 0)
        super().init_poolmanager(*args, **kwargs)


def _client(crt: Path) -> requests.Session:
    session = requests.Session()
    session.mount("https://", _From())
    session.mount("http://", _From())
    session.verify = str(crt)
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment would override both
    return session


@pytest.fixture(scope="module")
def nginx(production_server):
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx 未安装：make system 会安装 / nginx is missing: `make system` installs it"
    prefix = Path(tempfile.mkdtemp(prefix="nanhai-nginx-"))
    prefix.chmod(0o755)  # nginx's workers (not root) write their temporary files under it
    crt, pem = _certificate(prefix)
    http_port, https_port = _free_port(), _free_port()
    (prefix / "nanhai-grid.conf").write_text(site_config(http_port, https_port, production_server.port, crt, pem))
    temp = " ".join(f"{kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                      "scgi"))
    (prefix / "nginx.conf").write_text(
        f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\nworker_processes 1;\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{ access_log {prefix / 'access.log'}; {temp}\n  include {prefix / 'nanhai-grid.conf'};\n}}\n")
    process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
                                str(prefix / "error.log"), "-g", "daemon off;"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", https_port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(process.communicate()[0] + (prefix / "error.log").read_text())
        time.sleep(0.05)
    yield {"https": f"https://127.0.0.1:{https_port}", "http": f"http://127.0.0.1:{http_port}", "crt": crt}
    process.send_signal(signal.SIGQUIT)  # nginx's graceful stop
    process.wait(timeout=20)
    shutil.rmtree(prefix, ignore_errors=True)


def test_a_login_works_through_nginx_over_tls_with_a_secure_cookie(nginx):
    client = _client(nginx["crt"])
    login = client.post(f"{nginx['https']}/api/v1/session", json={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert login.status_code == 201, login.text
    cookie = login.headers["Set-Cookie"]
    assert "nanhai_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie  # the app knows it is https
    session = client.get(f"{nginx['https']}/api/v1/session").json()
    assert session["username"] == ADMIN
    # a change from the browser names its Origin, which must be this site as the app sees it through nginx
    foreign = client.delete(f"{nginx['https']}/api/v1/session", headers={
        "Origin": "https://elsewhere.example", "X-CSRF-Token": session["csrf_token"]})
    assert foreign.status_code == 403
    logout = client.delete(f"{nginx['https']}/api/v1/session", headers={
        "Origin": nginx["https"], "X-CSRF-Token": session["csrf_token"]})
    assert logout.status_code == 204, logout.text
    assert login.headers["Strict-Transport-Security"].startswith("max-age=")
    plain = client.get(f"{nginx['http']}/login", allow_redirects=False)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")


def _failures(production_engine, username: str) -> list[str]:
    with production_engine.connect() as conn:
        return list(conn.execute(text("SELECT client FROM login_failures WHERE username = :u"),
                                 {"u": username}).scalars())


def test_the_throttle_counts_the_client_nginx_saw_and_never_a_forged_address(nginx, production_engine,
                                                                               production_keys):
    vault = Vault(production_keys["NANHAI_PERSON_KEY_SECRET"].encode(), production_keys["NANHAI_FERNET_KEY"].encode())
    client = _client(nginx["crt"])
    for username, headers in (("xff_plain", {}), ("xff_forged", {"X-Forwarded-For": FORGED})):
        answer = client.post(f"{nginx['https']}/api/v1/session", headers=headers,
                             json={"username": username, "password": "不是这个密码 not it"})
        assert answer.status_code == 401
        assert _failures(production_engine, username) == [vault.tag("client", CLIENT)], username
    # a new forged address each time changes nothing: six failures of one account lock it (5 within 15 minutes)
    answers = [client.post(f"{nginx['https']}/api/v1/session", headers={"X-Forwarded-For": f"198.51.100.{i}"},
                           json={"username": "xff_locked", "password": "不是这个密码 not it"}).status_code
               for i in range(6)]
    assert answers == [401] * 5 + [429]
    assert set(_failures(production_engine, "xff_locked")) == {vault.tag("client", CLIENT)}


def test_health_and_metrics_are_not_served_through_nginx_nor_to_a_proxied_request(nginx, production_server):
    client = _client(nginx["crt"])
    for path in ("/healthz", "/metrics"):
        assert client.get(f"{nginx['https']}{path}").status_code == 404  # nginx's own refusal
        # the app's: a request that came through a proxy is not local, whatever the proxy's address
        direct = f"{production_server.base}{path}"
        assert requests.get(direct, headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 403
        assert requests.get(direct).status_code == 200  # straight from this host: Prometheus, an agent
