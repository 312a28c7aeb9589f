"""Helpers for the operational HTTP tests (TLS, limits, metrics, logs, shutdown).

`OpsServer` runs one `mcp-bridge serve --http` process with any extra flags, over plain HTTP or
TLS, logging to a file of its own; `make_ca`/`make_leaf` mint certificates with `cryptography`;
`ops_agent` opens an SDK session over streamable HTTP that trusts a given CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import signal
import socket
import ssl
import subprocess
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import httpx2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import READ_TIMEOUT_S, Agent, ToolError
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

MCP_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_agent(bridge, name: str, role: str = "agent") -> str:
    added = bridge.cli("--db", str(bridge.db), "agent", "add", name, "--role", role, "--json")
    assert added.returncode == 0, added.stderr
    return json.loads(added.stdout)["credential"]


def init_request(n: int = 1) -> dict:
    return {
        "jsonrpc": "2.0", "id": n, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }


# ---- certificates ----

@dataclass
class Ca:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    pem_path: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(directory: Path, cn: str = "mcp-bridge test CA") -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{cn.replace(' ', '-')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Ca(key=key, cert=cert, pem_path=path)


def make_leaf(ca: Ca, cert_path: Path, key_path: Path, cn: str = "localhost") -> x509.Certificate:
    """A server certificate for localhost and 127.0.0.1 signed by `ca`, written as PEM (chain: leaf only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert


def trusting(ca: Ca) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.pem_path))


def served_certificate(port: int, ca: Ca) -> x509.Certificate:
    """The certificate a new TLS handshake with 127.0.0.1:port is answered with (verified against `ca`)."""
    ctx = trusting(ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


# ---- the server ----

class OpsServer:
    """One `mcp-bridge serve --http 127.0.0.1:PORT [extra...]` process with its own stderr log."""

    def __init__(self, bridge, extra: list[str] | None = None, env: dict[str, str] | None = None,
                 ca: Ca | None = None, name: str = "ops", bind: str = "127.0.0.1") -> None:
        self.bridge = bridge
        self.bind = bind
        self.port = free_port()
        self.extra = extra or []
        self.env = env or {}
        self.ca = ca
        scheme = "https" if ca else "http"
        host = "localhost" if ca else "127.0.0.1"
        self.url = f"{scheme}://{host}:{self.port}"
        self.log_path = bridge.tmp / f"{name}.stderr.log"
        self.proc: subprocess.Popen | None = None

    def args(self) -> list[str]:
        return [str(self.bridge.bin), "--db", str(self.bridge.db), "serve", "--http", f"{self.bind}:{self.port}",
                *self.extra]

    def verify(self) -> ssl.SSLContext | bool:
        return trusting(self.ca) if self.ca else True

    def start(self) -> None:
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            self.args(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            env={"PATH": "/usr/bin:/bin", **self.bridge.base_env(), **self.env},
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}: {self.log()[-2000:]}"
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=1, verify=self.verify()).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server did not answer /healthz within 20 s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def get(self, path: str, **kwargs) -> httpx2.Response:
        return httpx2.get(f"{self.url}{path}", timeout=10, verify=self.verify(), **kwargs)

    def post(self, body: dict, **headers: str) -> httpx2.Response:
        return httpx2.post(f"{self.url}/mcp", content=json.dumps(body).encode(), headers={**MCP_ACCEPT, **headers},
                           timeout=10, verify=self.verify())


@asynccontextmanager
async def ops_agent(server: OpsServer, name: str, credential: str,
                    peer_serials: list[int] | None = None) -> AsyncIterator[Agent]:
    """An initialized SDK session over streamable HTTP (trusting the server's CA when it has one).

    With `peer_serials`, the serial number of the certificate presented on the connection that
    carried each response is appended to it (TLS only).
    """
    hooks = {}
    if peer_serials is not None:
        async def record(response: httpx2.Response) -> None:
            ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True)
            peer_serials.append(x509.load_der_x509_certificate(der).serial_number)
        hooks["response"] = [record]
    client = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {credential}"},
        timeout=httpx2.Timeout(30, read=300),
        verify=server.verify(),
        event_hooks=hooks,
    )
    async with client:
        async with streamable_http_client(f"{server.url}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT_S) as session:
                try:
                    init = await session.initialize()
                except Exception as e:
                    raise ToolError(f"{name}: initialize over HTTP failed ({e!r}): {server.log()[-2000:]}") from e
                yield Agent(name=name, session=session, init=init, log_path=server.log_path)
