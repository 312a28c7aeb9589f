"""Operating `serve --http` (issue 17, "Scale out"): limits per credential, /metrics, JSON logs with
request ids and no secrets, and a SIGTERM that wakes every waiter with an empty result.

Each test runs one real server process on a loopback port. See docs/deployment.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time

import httpx2
import pytest

from conftest import assert_absent
from http_support import OpsServer, add_agent, init_request, ops_agent


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in an OpenMetrics text, or None when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)$"
    for line in text.splitlines():
        m = re.match(pattern, line)
        if m:
            return float(m.group(1))
    return None


def wait_until(what: str, check, server: OpsServer, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s; {server.log()[-2000:]}"
        time.sleep(0.05)


def tool_call(name: str, arguments: dict, n: int = 2) -> dict:
    return {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def test_over_a_limit_a_credential_gets_429_and_others_do_not(bridge):
    lead = add_agent(bridge, "lead")
    other = add_agent(bridge, "other")
    server = OpsServer(bridge, ["--max-requests-per-second", "2", "--max-connections-per-credential", "1"])
    try:
        server.start()
        auth = {"Authorization": f"Bearer {lead}"}
        # The bucket holds two requests; at two per second, ten in a row cannot all fit.
        with httpx2.Client(timeout=10) as client:
            codes = []
            for n in range(10):
                r = client.post(f"{server.url}/mcp", content=json.dumps(init_request(n)).encode(),
                                headers={"Accept": "application/json, text/event-stream",
                                         "Content-Type": "application/json", **auth})
                codes.append(r.status_code)
                if r.status_code == 429:
                    refused = r
        assert codes[:2] == [200, 200], codes
        assert 429 in codes, codes
        assert set(codes) <= {200, 429}, codes
        assert int(refused.headers["retry-after"]) >= 1, dict(refused.headers)
        assert "per second" in refused.text and len(refused.text) < 200, refused.text
        assert lead not in refused.text
        # Another credential has its own bucket.
        assert server.post(init_request(), Authorization=f"Bearer {other}").status_code == 200

        # One request in flight per credential: a long wait holds the slot.
        time.sleep(1.5)  # refill the bucket (not a timing assertion: it only makes room)
        waiting: dict = {}

        def wait() -> None:
            waiting["response"] = server.post(tool_call("wait_for_messages", {"timeout_seconds": 30}),
                                              Authorization=f"Bearer {other}")

        t = threading.Thread(target=wait)
        t.start()
        wait_until("the wait is counted", lambda: metric(server.get("/metrics").text, "mcp_bridge_waiting_calls") == 1,
                   server)
        busy = server.post(init_request(), Authorization=f"Bearer {other}")
        assert busy.status_code == 429, (busy.status_code, busy.text)
        assert "in flight" in busy.text and busy.headers["retry-after"] == "1", (busy.text, dict(busy.headers))
        # The lead is not held up by the other's wait.
        assert server.post(init_request(), Authorization=f"Bearer {lead}").status_code == 200

        text = server.get("/metrics").text
        assert metric(text, "mcp_bridge_http_limited_total", limit="rate") >= 1, text
        assert metric(text, "mcp_bridge_http_limited_total", limit="in_flight") == 1, text
        assert metric(text, "mcp_bridge_http_responses_total", **{"class": "4xx"}) >= 2, text

        # SIGTERM ends the wait (empty) and the server.
        assert server.stop() == 0, server.log()[-2000:]
        t.join(timeout=30)
        assert waiting["response"].status_code == 200
    finally:
        server.kill()


@pytest.mark.anyio
async def test_metrics_count_calls_messages_waits_and_statuses_without_names(bridge):
    lead_cred = add_agent(bridge, "lead-agent")
    worker_cred = add_agent(bridge, "worker-agent")
    server = OpsServer(bridge)
    try:
        server.start()
        async with ops_agent(server, "lead", lead_cred) as lead, ops_agent(server, "worker", worker_cred) as worker:
            conv = (await lead.ok("create_conversation", with_agents=["worker-agent"]))["conversation_id"]
            await lead.ok("send_message", conversation_id=conv, message="metric me one")
            await lead.ok("send_message", conversation_id=conv, message="metric me two")
            await lead.err("send_message", "message_too_large",
                           {"conversation_id": conv, "message": "x" * 60_000})
            got = await worker.ok("wait_for_messages", timeout_seconds=10)
            assert len(got["messages"]) == 2, got

            # A wait in progress shows in the gauge, and leaves it when a message wakes it.
            task = asyncio.create_task(worker.ok("wait_for_messages", timeout_seconds=30))
            deadline = time.monotonic() + 20
            while metric(server.get("/metrics").text, "mcp_bridge_waiting_calls") != 1:
                assert time.monotonic() < deadline, server.get("/metrics").text
                await asyncio.sleep(0.05)
            await lead.ok("send_message", conversation_id=conv, message="metric me three")
            woken = await asyncio.wait_for(task, 30)
            assert [m["message"] for m in woken["messages"]] == ["metric me three"], woken

        scrape = server.get("/metrics")  # no credential needed
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("application/openmetrics-text"), dict(scrape.headers)
        text = scrape.text
        assert metric(text, "mcp_bridge_tool_calls_total", tool="send_message", outcome="ok") == 3, text
        assert metric(text, "mcp_bridge_tool_calls_total", tool="send_message", outcome="message_too_large") == 1, text
        assert metric(text, "mcp_bridge_tool_calls_total", tool="create_conversation", outcome="ok") == 1, text
        assert metric(text, "mcp_bridge_tool_calls_total", tool="wait_for_messages", outcome="ok") == 2, text
        assert metric(text, "mcp_bridge_tool_call_duration_seconds_count", tool="send_message") == 4, text
        assert metric(text, "mcp_bridge_tool_call_duration_seconds_bucket", le="+Inf", tool="send_message") == 4, text
        assert metric(text, "mcp_bridge_messages_stored_total") == 3, text
        assert metric(text, "mcp_bridge_waiting_calls") == 0, text
        assert metric(text, "mcp_bridge_http_responses_total", **{"class": "2xx"}) >= 8, text
        assert text.rstrip().endswith("# EOF"), text[-200:]
        if bridge.pg is None:
            # SQLite has no pool: no pool gauge.
            assert "db_pool" not in text
        else:
            # PostgreSQL (MCP_BRIDGE_E2E_BACKEND=postgres): the pool's gauge, idle after the calls.
            assert metric(text, "mcp_bridge_db_pool_connections", state="in_use") == 0, text
            assert (metric(text, "mcp_bridge_db_pool_connections", state="max") or 0) > 0, text
        # Never a name, a conversation id, a credential or a message.
        assert_absent({"lead": "lead-agent", "worker": "worker-agent", "conversation": conv, "cred": lead_cred,
                       "body": "metric me"}, {"metrics": text.encode()}, "/metrics")
        assert server.stop() == 0
    finally:
        server.kill()


@pytest.mark.anyio
async def test_json_logs_carry_request_ids_and_never_a_secret(bridge):
    lead_cred = add_agent(bridge, "lead")
    secret = "AKIA" + "Q7ZK3M5N2P4R6T8V"  # an AWS access key id: redacted before storage, never logged
    marker = "hush-hush-e2e-marker-6b1f"
    server = OpsServer(bridge, ["--log-format", "json"], env={"MCP_BRIDGE_LOG": "trace"})
    try:
        server.start()
        async with ops_agent(server, "lead", lead_cred) as lead:
            created = await lead.ok("create_conversation", my_role="planner", partner_role="coder")
            conv = created["conversation_id"]
            tokens = [s["token"] for s in created.get("seats", []) if s.get("token")]
            tokens += [created[k] for k in ("session_a_token", "session_b_token") if created.get(k)]
            assert tokens, created
            await lead.ok("send_message", conversation_id=conv, message=f"{marker} key {secret}")
            # A seat token used as a tool argument, and a refused call carrying one.
            b_token = created.get("session_b_token") or tokens[-1]
            await lead.ok("check_messages", conversation_id=conv, session_id="b", token=b_token)
            await lead.err("read_history", "invalid_token",
                           {"conversation_id": conv, "session_id": "b", "token": "mcpb_" + "Z" * 43})
        refused = server.post(init_request(), Authorization=f"Bearer mcpa_{'Q' * 43}")
        assert refused.status_code == 401
        assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"]), dict(refused.headers)
        assert server.stop() == 0, server.log()[-2000:]
    finally:
        server.kill()

    log = server.log()
    assert_absent({"credential": lead_cred, "secret": secret, "marker": marker,
                   **{f"token {i}": t for i, t in enumerate(tokens)}},
                  {"server stderr": log.encode()}, "server stderr at trace")
    assert "Bearer mcpa_" not in log and "mcpa_" + "Q" * 43 not in log, "no Authorization header value in logs"

    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert lines, "no log lines at trace"
    # Lines of our own code and of rmcp between start and shutdown are all request work.
    start = next(i for i, l in enumerate(lines) if l.get("message") == "serving MCP over streamable HTTP")
    stop = next(i for i, l in enumerate(lines) if str(l.get("message", "")).startswith("shutting down"))
    during = [l for l in lines[start + 1:stop] if l.get("target", "").startswith(("mcp_bridge", "rmcp"))]
    assert len(during) >= 5, during

    def request_id(line: dict) -> str | None:
        for span in line.get("spans", []):
            if "request_id" in span:
                return span["request_id"]
        return None

    missing = [l for l in during if request_id(l) is None]
    assert not missing, missing[:5]
    # The refused request's id is the one its response header carried.
    ids = {request_id(l) for l in during}
    assert refused.headers["x-request-id"] in ids, ids
    # A tool call's own lines (the refused read_history logs its code at debug) carry an id too.
    assert any(l.get("message") == "tool call refused" and l.get("code") == "invalid_token" for l in during), during


@pytest.mark.anyio
async def test_sigterm_wakes_a_waiter_with_an_empty_result(bridge):
    lead_cred = add_agent(bridge, "lead")
    worker_cred = add_agent(bridge, "worker")
    server = OpsServer(bridge, env={"MCP_BRIDGE_LOG": "info"})
    got: dict = {}
    try:
        server.start()
        try:
            async with ops_agent(server, "lead", lead_cred) as lead, ops_agent(server, "worker", worker_cred) as worker:
                await lead.ok("create_conversation", with_agents=["worker"])
                # The SDK lists the tools after a call it has no output schema for yet; list them
                # now, so the wait's result needs no request to the server that is then stopping.
                await worker.session.list_tools()
                task = asyncio.create_task(worker.ok("wait_for_messages", timeout_seconds=50))
                deadline = time.monotonic() + 20
                while metric(server.get("/metrics").text, "mcp_bridge_waiting_calls") != 1:
                    assert time.monotonic() < deadline, server.log()[-2000:]
                    await asyncio.sleep(0.05)
                server.signal(signal.SIGTERM)
                # Bounded generously, far below the wait's own 50 s: the result is the wake-up's.
                got = await asyncio.wait_for(task, 25)
                code = await asyncio.to_thread(server.proc.wait, 30)
        except* httpx2.ConnectError:
            # Leaving the sessions may reach for the stopped server; what counts is `got`.
            pass
        assert got, "the wait returned nothing"
        assert got["messages"] == [] and got["remaining"] == 0, got
        assert code == 0, server.log()[-2000:]
    finally:
        server.kill()
    assert "waits return empty" in server.log()
