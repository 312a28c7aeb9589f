"""`serve --http` (issue 17): MCP over streamable HTTP with bearer agent credentials.

One real server process on a loopback port, driven by the official Python SDK's streamable HTTP
client; refusals checked with raw HTTP requests. See docs/deployment.md, "HTTP transport".
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import httpx2
import pytest

from conftest import READ_TIMEOUT_S, Agent, ToolError, assert_absent
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

MCP_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpServer:
    """One `mcp-bridge serve --http 127.0.0.1:PORT` process; start, stop (SIGTERM) and start again."""

    def __init__(self, bridge, port: int) -> None:
        self.bridge = bridge
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.bridge.tmp / f"http-{self.starts:02d}.stderr.log", "w")
        self.proc = subprocess.Popen(
            [str(self.bridge.bin), "--db", str(self.bridge.db), "serve", "--http", f"127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            env={"PATH": "/usr/bin:/bin", "MCP_BRIDGE_LOG": "debug", **self.bridge.base_env()},
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}: {self.bridge.logs()[-2000:]}"
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("server did not answer /healthz within 20 s")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def post(self, body: dict | bytes, **headers: str) -> httpx2.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx2.post(f"{self.url}/mcp", content=content, headers={**MCP_ACCEPT, **headers}, timeout=10)


@pytest.fixture
def server(bridge):
    srv = HttpServer(bridge, free_port())
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


def add_agent(bridge, name: str, role: str = "agent") -> str:
    added = bridge.cli("--db", str(bridge.db), "agent", "add", name, "--role", role, "--json")
    assert added.returncode == 0, added.stderr
    return json.loads(added.stdout)["credential"]


@asynccontextmanager
async def http_agent(server: HttpServer, name: str, credential: str) -> AsyncIterator[Agent]:
    """An initialized SDK session over streamable HTTP, authenticated with `credential`."""
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {credential}"})
    async with client:
        async with streamable_http_client(f"{server.url}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT_S) as session:
                try:
                    init = await session.initialize()
                except Exception as e:
                    raise ToolError(f"{name}: initialize over HTTP failed ({e!r}): {server.bridge.logs()[-2000:]}") from e
                yield Agent(name=name, session=session, init=init, log_path=server.bridge.tmp / "http-01.stderr.log")


def check_unauthorized(response: httpx2.Response, what: str) -> None:
    assert response.status_code == 401, f"{what}: expected 401, got {response.status_code} {response.text[:200]!r}"
    assert response.headers.get("www-authenticate") == "Bearer", f"{what}: {dict(response.headers)!r}"
    assert response.content == b"", f"{what}: a 401 carries no detail, got {response.content[:200]!r}"


@pytest.mark.anyio
async def test_two_agents_talk_over_http_and_survive_a_restart(bridge, server):
    lead_cred = add_agent(bridge, "lead")
    worker_cred = add_agent(bridge, "worker")
    server.start()
    async with http_agent(server, "lead", lead_cred) as lead, http_agent(server, "worker", worker_cred) as worker:
        names = {t.name for t in (await lead.session.list_tools()).tools}
        assert "my_conversations" in names and "send_message" in names, names
        created = await lead.ok("create_conversation", with_agents=["worker"])
        conv = created["conversation_id"]
        await lead.ok("send_message", conversation_id=conv, message="hello over http")
        got = await worker.ok("wait_for_messages", timeout_seconds=10)
        assert [m["message"] for m in got["messages"]] == ["hello over http"], got
        assert got["messages"][0]["from_role"] == "lead", got["messages"][0]
        # Each call acts as its own bearer's agent: the worker sees the conversation, and
        # the lead's message is not delivered back to the lead.
        mine = await worker.ok("my_conversations")
        assert [c["conversation_id"] for c in mine["conversations"]] == [conv], mine
        again = await lead.ok("check_messages", conversation_id=conv)
        assert again["messages"] == [], again

        # Graceful stop on SIGTERM: exit status 0, promptly.
        started = time.monotonic()
        assert server.stop() == 0, bridge.logs()[-2000:]
        assert time.monotonic() - started < 10
        server.start()

        # Stateless: no session id to lose, so the same client sessions carry on after the restart.
        await worker.ok("send_message", conversation_id=conv, message="still here after the restart")
        got = await lead.ok("wait_for_messages", conversation_id=conv, timeout_seconds=10)
        assert [m["message"] for m in got["messages"]] == ["still here after the restart"], got

    # A new client session with the same configuration works too.
    async with http_agent(server, "lead", lead_cred) as lead:
        history = await lead.ok("read_history", conversation_id=conv)
        assert [m["message"] for m in history["messages"]] == ["hello over http", "still here after the restart"]
    assert server.stop() == 0

    # Never a credential in a log line.
    logs = {p.name: p.read_bytes() for p in bridge.tmp.glob("http-*.stderr.log")}
    assert_absent({"lead credential": lead_cred, "worker credential": worker_cred}, logs, "server logs")
    assert_absent({"message": "hello over http"}, logs, "server logs")


@pytest.mark.anyio
async def test_requests_without_a_good_agent_credential_are_refused(bridge, server):
    lead_cred = add_agent(bridge, "lead")
    gone_cred = add_agent(bridge, "gone")
    rotated_cred = add_agent(bridge, "rotated")
    observer_cred = add_agent(bridge, "watcher", role="observer")
    server.start()

    # The good credential gets through (the baseline the refusals below are measured against).
    ok = server.post(INIT, Authorization=f"Bearer {lead_cred}")
    assert ok.status_code == 200 and ok.json()["result"]["serverInfo"]["name"] == "mcp-bridge", ok.text[:300]

    check_unauthorized(server.post(INIT), "no Authorization header")
    check_unauthorized(server.post(INIT, Authorization=lead_cred), "no scheme")
    check_unauthorized(server.post(INIT, Authorization=f"Basic {lead_cred}"), "wrong scheme")
    check_unauthorized(server.post(INIT, Authorization="Bearer mcpa_tooshort"), "malformed credential")
    unknown = "mcpa_" + ("A" * 43)
    check_unauthorized(server.post(INIT, Authorization=f"Bearer {unknown}"), "unknown credential")

    assert bridge.cli("--db", str(bridge.db), "agent", "revoke", "gone").returncode == 0
    check_unauthorized(server.post(INIT, Authorization=f"Bearer {gone_cred}"), "revoked credential")
    assert bridge.cli("--db", str(bridge.db), "agent", "rotate", "rotated").returncode == 0
    check_unauthorized(server.post(INIT, Authorization=f"Bearer {rotated_cred}"), "rotated-away credential")

    observer = server.post(INIT, Authorization=f"Bearer {observer_cred}")
    assert observer.status_code == 403, (observer.status_code, observer.text[:200])

    # DNS rebinding: a foreign Origin, or a foreign Host, is refused even with a good credential.
    origin = server.post(INIT, Authorization=f"Bearer {lead_cred}", Origin="http://evil.example")
    assert origin.status_code == 403, (origin.status_code, origin.text[:200])
    host = server.post(INIT, Authorization=f"Bearer {lead_cred}", Host="evil.example")
    assert host.status_code == 403, (host.status_code, host.text[:200])
    assert server.post(INIT, Authorization=f"Bearer {lead_cred}", Host=f"localhost:{server.port}").status_code == 200

    # Health endpoints need no credential.
    health = httpx2.get(f"{server.url}/healthz", timeout=5)
    assert (health.status_code, health.text) == (200, "ok")
    ready = httpx2.get(f"{server.url}/readyz", timeout=5)
    assert (ready.status_code, ready.text) == (200, "ready")

    # A body over the limit is refused before it reaches the handler.
    big = server.post(b'{"x":"' + b"a" * (2 * 1024 * 1024) + b'"}', Authorization=f"Bearer {lead_cred}")
    assert big.status_code == 413, big.status_code

    assert server.stop() == 0
    logs = {p.name: p.read_bytes() for p in bridge.tmp.glob("http-*.stderr.log")}
    assert_absent({"lead": lead_cred, "gone": gone_cred, "rotated": rotated_cred, "observer": observer_cred},
                  logs, "server logs")


def test_plain_http_on_a_network_address_is_refused_at_start(bridge):
    add_agent(bridge, "lead")
    port = free_port()
    refused = bridge.cli("--db", str(bridge.db), "serve", "--http", f"0.0.0.0:{port}", timeout=20)
    assert refused.returncode != 0
    err = refused.stderr.decode()
    assert "--insecure-http" in err and "TLS" in err, err
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "nothing may listen after the refusal"
