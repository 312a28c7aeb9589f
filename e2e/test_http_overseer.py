"""Role-based access over HTTP (issue 17): `/api/v1` for observer and admin credentials, 403 and an
audit entry for a role that may not, and `/mcp` refused to anything but an agent credential.

A real `serve --http` process on a loopback port; agents are the official Python SDK's streamable
HTTP client, the overseer's calls raw HTTP. See docs/deployment.md, "The overseer over HTTP".
"""

from __future__ import annotations

import json

import httpx2
import pytest

from conftest import assert_absent
from test_http import INIT, HttpServer, add_agent, http_agent, server  # noqa: F401 (the fixture)


def api(server: HttpServer, method: str, path: str, credential: str | None, **kw) -> httpx2.Response:
    headers = kw.pop("headers", {})
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    return httpx2.request(method, f"{server.url}/api/v1{path}", headers=headers, timeout=10, **kw)


def audit(bridge) -> list[dict]:
    out = bridge.cli("--db", str(bridge.db), "audit", "--json", "--limit", "0")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def forbidden(response: httpx2.Response, what: str) -> None:
    assert response.status_code == 403, f"{what}: expected 403, got {response.status_code} {response.text[:300]!r}"
    assert response.json()["error"]["code"] == "forbidden", response.text


@pytest.mark.anyio
async def test_observers_read_admins_act_and_every_refusal_is_audited(bridge, server):
    lead_cred = add_agent(bridge, "lead")
    worker_cred = add_agent(bridge, "worker")
    watcher = add_agent(bridge, "watcher", role="observer")
    ops = add_agent(bridge, "ops", role="admin")
    server.start()

    async with http_agent(server, "lead", lead_cred) as lead, http_agent(server, "worker", worker_cred) as worker:
        conv = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        await lead.ok("send_message", conversation_id=conv, message="status: build green")

        # Unauthenticated: 401 with no detail, on the API as on /mcp.
        for cred in (None, "mcpa_" + "A" * 43, "not-a-credential"):
            r = api(server, "GET", "/conversations", cred)
            assert r.status_code == 401 and r.content == b"", (cred, r.status_code, r.text[:200])

        # An agent credential may use the tools but none of the overseer's operations.
        forbidden(api(server, "GET", "/conversations", lead_cred), "agent lists conversations")
        forbidden(api(server, "POST", f"/conversations/{conv}/close", lead_cred), "agent closes")

        # The observer reads: list, show, audit, stats, verify, agents.
        listed = api(server, "GET", "/conversations", watcher)
        assert listed.status_code == 200, listed.text
        assert [c["id"] for c in listed.json()] == [conv], listed.json()
        assert listed.headers.get("cache-control") == "no-store"
        shown = api(server, "GET", f"/conversations/{conv}", watcher).json()
        assert [m["body"] for m in shown["messages_after"]] == ["status: build green"], shown
        assert api(server, "GET", "/stats", watcher).status_code == 200
        verified = api(server, "GET", "/audit/verify", watcher).json()
        assert verified["intact"] is True and verified["entries"] > 0, verified
        names = {a["name"] for a in api(server, "GET", "/agents", watcher).json()}
        assert names == {"lead", "worker", "watcher", "ops"}, names
        assert "mcpa_" not in api(server, "GET", "/agents", watcher).text

        # ... and writes nothing: close, rotate, revoke, export, cleanup are 403 and audited.
        forbidden(api(server, "POST", f"/conversations/{conv}/close", watcher), "observer closes")
        forbidden(api(server, "POST", f"/conversations/{conv}/seats/b/revoke", watcher), "observer revokes")
        forbidden(api(server, "GET", f"/conversations/{conv}/export", watcher), "observer exports")
        forbidden(api(server, "POST", "/cleanup", watcher, json={"older_than_seconds": 0}), "observer cleans up")
        await worker.ok("send_message", conversation_id=conv, message="still open after the observer tried")

        # The observer cannot act through /mcp either.
        assert server.post(INIT, Authorization=f"Bearer {watcher}").status_code == 403

        # The admin acts, and the trail names it.
        exported = api(server, "GET", f"/conversations/{conv}/export", ops)
        assert exported.status_code == 200 and exported.json()["conversation"]["id"] == conv, exported.text[:300]
        closed = api(server, "POST", f"/conversations/{conv}/close", ops)
        assert closed.status_code == 200 and closed.json()["changed"] is True, closed.text
        refused = await lead.call("send_message", {"conversation_id": conv, "message": "after close"})
        assert refused.is_error and "conversation_closed" in refused.content[0].text, refused

    entries = audit(bridge)
    refusals = [e for e in entries if e["action"].endswith(".refused") and e["detail"].get("code") == "forbidden"]
    actors = {(e["actor"], e["action"]) for e in refusals}
    assert ("agent:lead", "api.list.refused") in actors, actors
    assert ("agent:watcher", "api.close.refused") in actors, actors
    assert ("agent:watcher", "api.export.refused") in actors, actors
    assert ("agent:watcher", "mcp.refused") in actors, actors
    closes = [e for e in entries if e["action"] == "conversation.close"]
    assert [e["actor"] for e in closes] == ["agent:ops"], closes
    assert_absent({"watcher": watcher, "ops": ops, "lead": lead_cred}, {"audit": json.dumps(entries).encode()}, "audit")


@pytest.mark.anyio
async def test_bad_paths_and_queries_are_refused_without_echo(bridge, server):
    ops = add_agent(bridge, "ops", role="admin")
    server.start()
    secret = "ghp_" + "Z9" * 18
    for method, path in [
        ("GET", f"/conversations/{secret}"),
        ("POST", f"/conversations/{secret}/close"),
        ("POST", "/conversations/conv_" + "0" * 32 + f"/seats/{secret}/rotate"),
        ("GET", f"/audit?limit=5000&x={secret}"),
        ("GET", f"/conversations?state={secret}"),
    ]:
        r = api(server, method, path, ops)
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        assert secret not in r.text and r.json()["error"]["code"] == "invalid_argument", r.text
    missing = api(server, "POST", "/conversations/conv_" + "0" * 32 + "/close", ops)
    assert missing.status_code == 404, missing.text
    assert api(server, "POST", "/cleanup", ops, content=b"{nope").status_code == 400
    cleaned = api(server, "POST", "/cleanup", ops, json={"older_than_seconds": 3600, "dry_run": True})
    assert cleaned.status_code == 200, cleaned.text

    # DNS rebinding and browsers: a foreign Host or any Origin is refused before authentication.
    assert api(server, "GET", "/stats", ops, headers={"Host": "evil.example"}).status_code == 403
    assert api(server, "GET", "/stats", ops, headers={"Origin": "http://evil.example"}).status_code == 403
    assert api(server, "GET", "/stats", ops).status_code == 200


@pytest.mark.anyio
async def test_a_seat_token_is_a_bearer_credential_for_the_token_tools_while_its_seat_lives(bridge, server):
    lead_cred = add_agent(bridge, "lead")
    ops = add_agent(bridge, "ops", role="admin")
    server.start()
    async with http_agent(server, "lead", lead_cred) as lead:
        created = await lead.ok("create_conversation", partner_roles=["reviewer"])
        conv = created["conversation_id"]
        seat_b = next(s for s in created["seats"] if s["session_id"] == "b")
        token = seat_b["token"]
        assert token and token.startswith("mcpb_"), created
        await lead.ok("send_message", conversation_id=conv, message="please review")

        # The reviewer has no agent credential: its seat token is its bearer, and it is served the
        # seat-token tools, which still take the token as an argument.
        async with http_agent(server, "reviewer", token) as reviewer:
            tools = {t.name: t for t in (await reviewer.session.list_tools()).tools}
            assert "token" in tools["check_messages"].input_schema["required"], tools["check_messages"].input_schema
            assert "my_conversations" not in tools
            got = await reviewer.ok("check_messages", conversation_id=conv, session_id="b", token=token)
            assert [m["message"] for m in got["messages"]] == ["please review"], got

        # Not an overseer credential.
        r = api(server, "GET", "/conversations", token)
        assert r.status_code == 401, r.status_code

        # Revoked, the seat's token no longer opens the door.
        assert api(server, "POST", f"/conversations/{conv}/seats/b/revoke", ops).status_code == 200
        r = server.post(INIT, Authorization=f"Bearer {token}")
        assert r.status_code == 401 and r.content == b"", (r.status_code, r.text[:200])
        # A made-up token of the right shape neither.
        fake = "mcpb_" + "A" * 43
        r = server.post(INIT, Authorization=f"Bearer {fake}")
        assert r.status_code == 401, r.status_code


def test_readiness_says_not_ready_when_the_schema_is_not_this_binarys(bridge, server):
    server.start()
    ready = httpx2.get(f"{server.url}/readyz", timeout=5)
    assert (ready.status_code, ready.text) == (200, "ready")
    if not bridge.db.exists():
        pytest.skip("inspects the SQLite file's migration record")
    import sqlite3

    # As if a newer server had upgraded the database while this one runs.
    with sqlite3.connect(bridge.db) as db:
        db.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) "
            "VALUES (99, 'from the future', 1, x'00', 0)"
        )
    ready = httpx2.get(f"{server.url}/readyz", timeout=5)
    assert (ready.status_code, ready.text) == (503, "not ready: schema")
    with sqlite3.connect(bridge.db) as db:
        db.execute("DELETE FROM _sqlx_migrations WHERE version = 99")
    assert httpx2.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert httpx2.get(f"{server.url}/readyz", timeout=5).status_code == 200
