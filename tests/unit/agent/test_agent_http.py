"""The agent's own HTTP client against a stdlib server on loopback: reuse, retry after the
server dropped a kept-alive connection, streaming, timeouts, errors, TLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from farpoint.agent.http import HttpError, Pool, Timeout


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.connections.add(self.client_address)
        if self.path == "/slow":
            self.server.release.wait(5)
        if self.path == "/close":  # answer, then drop the connection
            self.close_connection = True
        body = b"x" * (200_000 if self.path == "/big" else 5)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[::-1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    connections: set[tuple[str, int]]
    release: threading.Event


def _serve(context: ssl.SSLContext | None = None) -> _Server:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.connections = set()
    httpd.release = threading.Event()
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _serve()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def _url(httpd: _Server, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{httpd.server_address[1]}"


def test_requests_reuse_one_kept_alive_connection(server: _Server) -> None:
    pool = Pool(_url(server))
    for _ in range(5):
        r = pool.request("GET", "/a")
        assert (r.status, r.data) == (200, b"xxxxx")
    answer = pool.request("POST", "/echo", body=b"abc", headers={"Content-Type": "x"})
    assert (answer.status, answer.data) == (201, b"cba")
    assert len(server.connections) == 1


def test_a_connection_the_server_closed_is_replaced(server: _Server) -> None:
    pool = Pool(_url(server))
    assert pool.request("GET", "/close").status == 200
    assert pool.request("GET", "/a").data == b"xxxxx"
    assert len(server.connections) == 2


def test_a_streamed_body_arrives_whole_and_frees_the_connection(server: _Server) -> None:
    pool = Pool(_url(server))
    r = pool.request("GET", "/big", preload=False)
    assert sum(len(c) for c in r.stream(65536)) == 200_000
    assert pool.request("GET", "/a").status == 200
    assert len(server.connections) == 1


def test_a_released_unread_body_closes_its_connection(server: _Server) -> None:
    pool = Pool(_url(server))
    r = pool.request("GET", "/big", preload=False)
    r.release_conn()  # the rest of the body would be taken for the next answer
    assert pool.request("GET", "/a").data == b"xxxxx"
    assert len(server.connections) == 2


def test_timeouts_and_refused_connections_are_http_errors(server: _Server) -> None:
    pool = Pool(_url(server))
    with pytest.raises(HttpError, match="timed out"):
        pool.request("GET", "/slow", timeout=Timeout(connect=2, read=0.2))
    server.release.set()
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(HttpError):
        Pool(f"http://127.0.0.1:{port}").request("GET", "/a")
    with pytest.raises(ValueError, match="not an http"):
        Pool("ftp://example.org/")


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_verifies_against_the_given_certificate(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    httpd = _serve(server_ctx)
    try:
        pinned = ssl.create_default_context(cafile=str(cert))
        assert Pool(_url(httpd, "https"), ssl_context=pinned).request("GET", "/a").data == b"xxxxx"
        with pytest.raises(HttpError, match="CERTIFICATE_VERIFY_FAILED"):
            Pool(_url(httpd, "https")).request("GET", "/a")  # the system's CAs: not trusted
    finally:
        httpd.shutdown()
        httpd.server_close()
