"""Scale out (issue 17): three `mcp-bridge serve --http` processes on one PostgreSQL database, agents
connected to different servers with the official Python SDK's streamable HTTP client.

- every message reaches each recipient exactly once, whichever server sent or received it;
- a server killed with SIGKILL in the middle of a burst loses nothing that was acknowledged, and its
  clients carry on through another server;
- a restarted server strands no client (the same ClientSession object works after the restart);
- missing, wrong and revoked credentials get 401 on every server, an observer calling a write tool
  403, a foreign Origin 403.

Needs MCP_BRIDGE_TEST_PG (scripts/with-postgres exports it; CI always runs inside it). Without it
the module is skipped, unless MCP_BRIDGE_SCALE_OUT_BACKEND=sqlite asks for the three servers on one
SQLite file instead (for a machine without PostgreSQL; same assertions).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import httpx2
import pytest

import pg_support
from conftest import READ_TIMEOUT_S, Agent, ToolError, assert_absent, text_of
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

pytestmark = pytest.mark.anyio

OFF = {"MCP_BRIDGE_RATE_LIMIT": "off", "MCP_BRIDGE_READ_RATE_LIMIT": "off"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}


def tools_call(name: str, arguments: dict[str, Any], rid: int = 2) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Store:
    """The one database all servers of a test share, and how to name it on the command line."""

    def __init__(self, tmp: Path, pg: pg_support.PgDatabase | None) -> None:
        self.pg = pg
        self.tmp = tmp
        if pg is not None:
            self.args = ["--database-url", pg.url]
            self.env = {"MCP_BRIDGE_KEY": pg_support.PG_KEY}
        else:
            self.args = ["--db", str(tmp / "bridge.db")]
            self.env = {}


@pytest.fixture
def store(tmp_path: Path, request: pytest.FixtureRequest):
    admin = pg_support.admin_url()
    if admin is None:
        if os.environ.get("MCP_BRIDGE_SCALE_OUT_BACKEND") == "sqlite":
            yield Store(tmp_path, None)
            return
        pytest.skip("scale-out needs PostgreSQL: MCP_BRIDGE_TEST_PG is unset (run inside scripts/with-postgres, "
                    "as scripts/test does)")
    pg = pg_support.PgDatabase(admin, label=request.node.name)
    try:
        yield Store(tmp_path, pg)
    finally:
        pg.drop()


class Server:
    """One `mcp-bridge serve --http 127.0.0.1:PORT` process on the shared store."""

    def __init__(self, cluster: "Cluster", index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def spawn(self) -> None:
        self.starts += 1
        log = open(self.cluster.tmp / f"server{self.index}-{self.starts:02d}.stderr.log", "w")
        self.proc = subprocess.Popen(
            [str(self.cluster.bin), *self.cluster.store.args, "serve", "--http", f"127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=self.cluster.env())
        log.close()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, (
                f"server {self.index} exited with {self.proc.returncode}: {self.cluster.logs()[-2000:]}")
            try:
                if httpx2.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server {self.index} not ready within {timeout} s: {self.cluster.logs()[-2000:]}")

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def kill(self) -> None:
        """SIGKILL: no graceful stop, no flush, connections cut mid-request."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def post(self, body: dict[str, Any], **headers: str) -> httpx2.Response:
        return httpx2.post(f"{self.url}/mcp", content=json.dumps(body).encode(),
                           headers={**MCP_HEADERS, **headers}, timeout=15)


class Cluster:
    """Three servers (by default) on one database, plus the overseer's CLI on the same database."""

    def __init__(self, bin: Path, tmp: Path, store: Store, n: int) -> None:
        self.bin = bin
        self.tmp = tmp
        self.store = store
        (tmp / "home").mkdir(exist_ok=True)
        self.servers = [Server(self, i) for i in range(n)]

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", "HOME": str(self.tmp / "home"),
                "XDG_CONFIG_HOME": str(self.tmp / "home" / ".config"),
                "XDG_DATA_HOME": str(self.tmp / "home" / ".local" / "share"),
                "RUST_BACKTRACE": "1", "MCP_BRIDGE_LOG": "info", **OFF, **self.store.env}

    def start(self) -> None:
        # All at once, as a deployment's servers come up: the schema is created under the
        # migration lock by whichever gets there first.
        for s in self.servers:
            s.spawn()
        for s in self.servers:
            s.wait_ready()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin), *self.store.args, *args], capture_output=True, timeout=60, env=self.env())

    def add_agent(self, name: str, role: str = "agent") -> str:
        out = self.cli("agent", "add", name, "--role", role, "--json")
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        return json.loads(out.stdout)["credential"]

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("server*.stderr.log")))

    def log_bytes(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.tmp.glob("server*.stderr.log"))}

    def shutdown(self) -> None:
        for s in self.servers:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()


@pytest.fixture
def cluster(bridge_bin: Path, tmp_path: Path, store: Store):
    c = Cluster(bridge_bin, tmp_path, store, 3)
    try:
        yield c
    finally:
        c.shutdown()


@asynccontextmanager
async def connect(server: Server, name: str, credential: str) -> AsyncIterator[Agent]:
    """An initialized SDK session over streamable HTTP to `server`, with the agent's bearer credential."""
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {credential}"})
    async with client:
        async with streamable_http_client(f"{server.url}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT_S) as session:
                try:
                    init = await session.initialize()
                except Exception as e:
                    raise ToolError(f"{name}: initialize on server {server.index} failed ({e!r}): "
                                    f"{server.cluster.logs()[-2000:]}") from e
                yield Agent(name=f"{name}@{server.index}", session=session, init=init,
                            log_path=server.cluster.tmp / f"server{server.index}-01.stderr.log")


async def drain(agent: Agent, got: list[dict[str, Any]], until, conversation_id: str | None = None) -> None:
    """wait_for_messages through `agent` until `until()` holds; every message it returns goes into `got`."""
    args: dict[str, Any] = {"timeout_seconds": 1}
    if conversation_id is not None:
        args["conversation_id"] = conversation_id
    while not until():
        got.extend((await agent.ok_args("wait_for_messages", args))["messages"])


# --------------------------------------------------------------------------- delivery across servers


async def test_every_message_reaches_each_recipient_exactly_once_across_three_servers(cluster):
    cluster.start()
    names = ["lead", "w1", "w2"]
    creds = {n: cluster.add_agent(n) for n in names}
    per_sender = 40
    s0, s1, s2 = cluster.servers
    async with AsyncExitStack() as stack:
        # Each agent sends through one server; w2 also receives through two servers at once
        # (one credential in two clients), so "once" must hold across servers for one recipient too.
        lead = await stack.enter_async_context(connect(s0, "lead", creds["lead"]))
        w1 = await stack.enter_async_context(connect(s1, "w1", creds["w1"]))
        w2a = await stack.enter_async_context(connect(s2, "w2", creds["w2"]))
        w2b = await stack.enter_async_context(connect(s0, "w2", creds["w2"]))
        lead_rx = await stack.enter_async_context(connect(s2, "lead", creds["lead"]))
        conv = (await lead.ok("create_conversation", with_agents=["w1", "w2"]))["conversation_id"]

        sent: dict[str, set[str]] = {n: set() for n in names}   # bodies each agent must receive
        got: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        ids: dict[int, str] = {}

        async def send(agent: Agent, me: str) -> None:
            for i in range(per_sender):
                body = f"{me}-{i}"
                out = await agent.ok("send_message", conversation_id=conv, message=body)
                ids[out["message_id"]] = body
                for n in names:
                    if n != me:
                        sent[n].add(body)

        total_each = 2 * per_sender   # every agent receives the other two's messages
        with anyio.fail_after(180):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send, lead, "lead")
                tg.start_soon(send, w1, "w1")
                tg.start_soon(send, w2a, "w2")
                tg.start_soon(drain, lead_rx, got["lead"], lambda: len(got["lead"]) >= total_each, conv)
                tg.start_soon(drain, w1, got["w1"], lambda: len(got["w1"]) >= total_each, conv)
                tg.start_soon(drain, w2a, got["w2"], lambda: len(got["w2"]) >= total_each, conv)
                tg.start_soon(drain, w2b, got["w2"], lambda: len(got["w2"]) >= total_each, conv)

        assert len(ids) == 3 * per_sender, "message ids must be unique across servers"
        for n in names:
            bodies = [m["message"] for m in got[n]]
            dups = sorted({b for b in bodies if bodies.count(b) > 1})
            assert not dups, f"{n} received duplicates across servers: {dups[:5]}"
            assert set(bodies) == sent[n], f"{n}: missing {sorted(sent[n] - set(bodies))[:5]}, " \
                                           f"unexpected {sorted(set(bodies) - sent[n])[:5]}"
            for m in got[n]:
                assert ids[m["seq"]] == m["message"], m
                assert m["from_role"] == m["message"].split("-")[0], m
            # Each sender's messages arrive in the order sent (seq order), whichever server carried them.
            for sender in names:
                if sender == n:
                    continue
                mine = [int(m["message"].split("-")[1]) for m in sorted(got[n], key=lambda m: m["seq"])
                        if m["from_role"] == sender]
                assert mine == list(range(per_sender)), f"{n}: {sender}'s messages out of order: {mine[:10]}"
        # Nothing is left pending for anyone.
        for agent in (lead_rx, w1, w2a):
            assert (await agent.ok("check_messages", conversation_id=conv))["messages"] == []
    assert_absent({n: c for n, c in creds.items()}, cluster.log_bytes(), "server logs")


async def test_a_server_killed_mid_burst_loses_nothing_acknowledged(cluster):
    """SIGKILL the sender's server in the middle of a burst. Every send that returned a message_id is
    read exactly once by the recipient (who reads through another server); the sender carries on
    through another server; the send cut off by the kill may or may not be stored, but is never read twice.

    With this SDK (mcp 2.3.0) a POST whose connection dies ends the whole ClientSession context with
    the transport's error (httpx ReadError / RemoteProtocolError in an ExceptionGroup), so the client
    of the killed server carries on with a new session to another server, as a client configured with
    several server URLs would.
    """
    cluster.start()
    creds = {n: cluster.add_agent(n) for n in ("lead", "worker")}
    s0, s1, s2 = cluster.servers
    total = 150
    kill_after = 50
    acked: dict[int, str] = {}        # message_id -> body: the sends that returned a result
    unacked: list[str] = []            # the body in flight (or about to be sent) when the server died
    got: list[dict[str, Any]] = []
    next_i = 0
    async with connect(s2, "worker", creds["worker"]) as worker, connect(s1, "lead", creds["lead"]) as lead1:
        conv = (await lead1.ok("create_conversation", with_agents=["worker"]))["conversation_id"]

        async def killer() -> None:
            while len(acked) < kill_after:
                await anyio.sleep(0.002)
            await anyio.to_thread.run_sync(s0.kill)

        transport_died = False
        try:
            with anyio.fail_after(120):
                async with connect(s0, "lead", creds["lead"]) as lead0:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(killer)
                        while next_i < total:
                            result = await lead0.session.call_tool(
                                "send_message", {"conversation_id": conv, "message": f"m{next_i}"},
                                read_timeout_seconds=15)
                            if result.is_error:
                                raise AssertionError(f"send m{next_i} refused: {text_of(result)!r}")
                            acked[result.structured_content["message_id"]] = f"m{next_i}"
                            next_i += 1
        except* httpx2.TransportError:
            transport_died = True
        assert transport_died and next_i < total, "the kill came after the whole burst: it proved nothing"
        assert len(acked) >= kill_after
        unacked.append(f"m{next_i}")
        next_i += 1
        # The lead carries on through another server, with the same credential.
        while next_i < total:
            out = await lead1.ok("send_message", conversation_id=conv, message=f"m{next_i}")
            acked[out["message_id"]] = f"m{next_i}"
            next_i += 1
        with anyio.fail_after(60):
            await drain(worker, got, lambda: {m["seq"] for m in got} >= set(acked), conv)
        # Whatever the cut-off send stored is pending too by now: a last check collects it.
        got.extend((await worker.ok("check_messages", conversation_id=conv))["messages"])
        history = await lead1.ok("read_history", conversation_id=conv, limit=100)
        stored = list(history["messages"])
        while history["more"]:
            history = await lead1.ok("read_history", conversation_id=conv, after_seq=history["next_after_seq"], limit=100)
            stored.extend(history["messages"])

    seqs = [m["seq"] for m in got]
    assert len(seqs) == len(set(seqs)), f"read twice: {sorted(s for s in set(seqs) if seqs.count(s) > 1)[:5]}"
    for m in got:
        if m["seq"] in acked:
            assert acked[m["seq"]] == m["message"], m
    missing = sorted(set(acked) - set(seqs))
    assert not missing, f"acknowledged but never read: {[acked[s] for s in missing][:5]}"
    # The cut-off send is either stored (and then read, once) or not stored at all.
    extra = {m["message"] for m in got if m["seq"] not in acked}
    assert extra <= set(unacked), f"read messages nobody sent: {sorted(extra - set(unacked))[:5]}"
    assert {m["seq"] for m in stored} == set(seqs), "history and deliveries disagree"
    # The surviving servers are still healthy.
    for s in (s1, s2):
        assert httpx2.get(f"{s.url}/readyz", timeout=5).status_code == 200


async def test_a_restarted_server_strands_no_client(cluster):
    """Stateless HTTP: after a graceful restart and after a SIGKILL + start on the same port, the same
    ClientSession object goes on working; its partner on another server never noticed."""
    cluster.start()
    creds = {n: cluster.add_agent(n) for n in ("lead", "worker")}
    s0, s1, _ = cluster.servers
    async with connect(s0, "lead", creds["lead"]) as lead, connect(s1, "worker", creds["worker"]) as worker:
        conv = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        await lead.ok("send_message", conversation_id=conv, message="before")
        assert s0.stop() == 0, cluster.logs()[-2000:]
        s0.start()
        await lead.ok("send_message", conversation_id=conv, message="after a graceful restart")
        s0.kill()
        s0.start()
        await lead.ok("send_message", conversation_id=conv, message="after a SIGKILL and a start")
        got: list[dict[str, Any]] = []
        with anyio.fail_after(30):
            await drain(worker, got, lambda: len(got) >= 3, conv)
        assert [m["message"] for m in got] == ["before", "after a graceful restart", "after a SIGKILL and a start"]
        # And the other direction, to the client of the restarted server.
        await worker.ok("send_message", conversation_id=conv, message="back to you")
        back = await lead.ok("wait_for_messages", conversation_id=conv, timeout_seconds=10)
        assert [m["message"] for m in back["messages"]] == ["back to you"], back


# --------------------------------------------------------------------------- refusals on every server


def check_401(r: httpx2.Response, what: str) -> None:
    assert r.status_code == 401, f"{what}: expected 401, got {r.status_code} {r.text[:200]!r}"
    assert r.headers.get("www-authenticate", "").startswith("Bearer"), f"{what}: {dict(r.headers)!r}"
    assert r.content == b"", f"{what}: a 401 carries no detail, got {r.content[:200]!r}"


async def test_credentials_roles_and_origin_are_checked_on_every_server(cluster):
    cluster.start()
    good = cluster.add_agent("lead")
    gone = cluster.add_agent("gone")
    observer = cluster.add_agent("watcher", role="observer")
    wrong = "mcpa_" + "A" * 43
    conv_args = {"conversation_id": "conv_" + "0" * 32, "message": "x"}

    # The credential revoked on the shared database stops working on every server at once.
    async with connect(cluster.servers[1], "gone", gone) as gone_agent:
        await gone_agent.ok("my_conversations")
        out = cluster.cli("agent", "revoke", "gone")
        assert out.returncode == 0, out.stderr
        for s in cluster.servers:
            check_401(s.post(INIT, Authorization=f"Bearer {gone}"), f"revoked credential on server {s.index}")

    for s in cluster.servers:
        ok = s.post(INIT, Authorization=f"Bearer {good}")
        assert ok.status_code == 200 and ok.json()["result"]["serverInfo"]["name"] == "mcp-bridge", ok.text[:200]
        check_401(s.post(INIT), f"no credential on server {s.index}")
        check_401(s.post(INIT, Authorization=f"Bearer {wrong}"), f"wrong credential on server {s.index}")
        check_401(s.post(tools_call("send_message", conv_args), Authorization=f"Bearer {wrong}"),
                  f"wrong credential, tools/call, on server {s.index}")
        check_401(s.post(tools_call("send_message", conv_args), Authorization=f"Bearer {gone}"),
                  f"revoked credential, tools/call, on server {s.index}")
        # An observer may not write.
        denied = s.post(tools_call("send_message", conv_args), Authorization=f"Bearer {observer}")
        assert denied.status_code == 403, f"observer send_message on server {s.index}: {denied.status_code} {denied.text[:200]!r}"
        # DNS rebinding: a browser page from another origin, even with a good credential.
        foreign = s.post(INIT, Authorization=f"Bearer {good}", Origin="http://evil.example")
        assert foreign.status_code == 403, f"foreign Origin on server {s.index}: {foreign.status_code} {foreign.text[:200]!r}"

    for s in cluster.servers:
        assert s.stop() == 0
    assert_absent({"good": good, "gone": gone, "observer": observer}, cluster.log_bytes(), "server logs")
