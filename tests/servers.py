"""Real servers on 127.0.0.1 for the notification tests: SMTP (aiosmtpd) and HTTP."""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

USER, PASSWORD = "churnops", "s3cr3t-smtp-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), made with the cryptography package."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class SmtpServer:
    port: int
    messages: list = field(default_factory=list)
    envelopes: list = field(default_factory=list)
    logins: list = field(default_factory=list)


@contextlib.contextmanager
def smtp_server(
    security: str = "plain", auth: bool = True, folder: Path | None = None, reply: str = "250 OK"
) -> Iterator[SmtpServer]:
    """An aiosmtpd server: ``plain``, ``starttls`` (required) or ``ssl`` (implicit TLS); ``reply``
    answers each message (a refusal that echoes the login, as some servers write)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    server = SmtpServer(free_port())

    class Handler:
        async def handle_DATA(self, smtp, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            server.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
            return reply

    def authenticator(smtp, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and data.login.decode() == USER and data.password.decode() == PASSWORD
        if ok:
            server.logins.append(data.login.decode())
        return AuthResult(success=ok)

    kwargs = {"hostname": "127.0.0.1", "port": server.port}
    if auth:
        # aiosmtpd does not count implicit TLS as TLS for AUTH; the socket is encrypted anyway
        kwargs.update(authenticator=authenticator, auth_require_tls=security == "starttls")
    if security != "plain":
        cert, key = self_signed(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        if security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
    controller = Controller(Handler(), **kwargs)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@dataclass
class HttpServer:
    url: str
    requests: list = field(default_factory=list)
    responses: list = field(default_factory=list)
    """Status codes to answer with, in order; 200 once they run out."""
    hold: threading.Event | None = None
    """When set, every request waits for this event before answering: a server slower than any
    client timeout, decided by the test, not by a clock."""
    echo: bool = False
    """Answer errors with the request's path and headers in the body, and the path in the reason
    phrase (as written and base64-encoded, which no redaction recognises), as some servers do."""
    location: str | None = None
    """Where 3xx answers send the client (their ``Location`` header)."""


@contextlib.contextmanager
def http_server() -> Iterator[HttpServer]:
    """Stands in for the Slack, Teams and webhook endpoints and a Pushgateway; records every
    request (a GET too: where a followed redirect would land)."""
    state = HttpServer("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            state.requests.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers), "json": parsed, "body": body}
            )
            if state.hold is not None:
                state.hold.wait(timeout=300)
            status = state.responses.pop(0) if state.responses else 200
            if state.echo and status >= 400:
                self.send_response(status, f"no such hook {self.path} {base64.b64encode(self.path.encode()).decode()}")
            else:
                self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            if 300 <= status < 400 and state.location:
                self.send_header("Location", state.location)
            self.end_headers()
            if status < 400:
                self.wfile.write(b"ok")
            elif state.echo:
                self.wfile.write(f"no such hook {self.path} ({dict(self.headers)})".encode())
            else:
                self.wfile.write(b"error")

        do_GET = do_PUT = do_POST  # noqa: N815

        def log_message(self, format, *args):  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
