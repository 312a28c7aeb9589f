"""Issue 18, agent identities: `mcp-bridge agent add|list|rotate|revoke`, servers started with
MCP_BRIDGE_AGENT acting as that agent with no token or session id anywhere, `with_agents`,
`my_conversations`, waiting across conversations, mixed conversations, and the credential
never reaching the wire, the database files, the logs or the audit trail.

Written from the issue and /work/wt/TEAMS-API.md only (not from the implementation).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from conftest import CONV_ID, TOKEN, assert_absent, create_conv, parse_rfc3339_utc
from teams_support import (CREDENTIAL, MESSAGE_KEYS, MY_CONVERSATION_KEYS, OFF, PARTICIPANT_KEYS, SEAT_KEYS, history,
                           int_value, message_rows, spawn, table_counts, wire_bytes, wire_messages)

pytestmark = pytest.mark.anyio

ANY_TOKEN = re.compile(rb"mcpb_[A-Za-z0-9_-]{43}")
ANY_CREDENTIAL = re.compile(rb"mcpa_[A-Za-z0-9_-]{43}")
INIT_LINE = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}) + "\n").encode()


# --------------------------------------------------------------------------- CLI helpers


def run(bridge, *args: str) -> subprocess.CompletedProcess:
    return bridge.cli(*args, "--db", str(bridge.db))


def ok(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, f"exit {proc.returncode}: {out}{proc.stderr.decode(errors='replace')}"
    return out


async def init_db(bridge) -> None:
    """A server opens the database once (creates it and its key), as on any machine already in use."""
    async with spawn(bridge, "init") as a:
        await a.session.list_tools()


def agent_add(bridge, name: str, *extra: str) -> str:
    out = json.loads(ok(run(bridge, "agent", "add", name, *extra, "--json")))
    assert set(out) == {"name", "role", "credential"}, out
    assert out["name"] == name
    assert CREDENTIAL.match(out["credential"]), "credential must be mcpa_ + 43 base64url characters"
    return out["credential"]


def secret_needles(creds: dict[str, str]) -> dict[str, str]:
    needles = {}
    for label, c in creds.items():
        needles[label] = c
        needles[f"{label} body"] = c[5:]
        needles[f"{label} tail"] = c[-20:]
    return needles


def assert_credentials_nowhere(bridge, creds: dict[str, str], extra: dict[str, bytes] | None = None) -> None:
    needles = secret_needles(creds)
    assert_absent(needles, bridge.raw_db_bytes(), "database files")
    for label, c in creds.items():
        raw = base64.urlsafe_b64decode(c[5:] + "=")
        # "stored as a keyed hash like tokens": neither the decoded bytes nor an unkeyed SHA-256 of them
        unkeyed = [hashlib.sha256(x).digest() for x in (c.encode(), c[5:].encode(), raw)]
        for name, blob in bridge.raw_db_bytes().items():
            assert raw not in blob and raw.hex().encode() not in blob, f"{label} stored decoded in {name}"
            for h in unkeyed:
                assert h not in blob and h.hex().encode() not in blob, f"{label}: an unkeyed SHA-256 of it is in {name}"
    export = ok(run(bridge, "audit", "export", "--format", "jsonl"))
    assert_absent(needles, {"audit export": export.encode()}, "audit export")
    assert_absent(needles, {"stderr logs": bridge.logs().encode()}, "server stderr")
    if extra:
        assert_absent(needles, extra, "other output")


def audit_entries(bridge, action_glob: str) -> list[dict[str, Any]]:
    out = ok(run(bridge, "audit", "export", "--format", "jsonl", "--action", action_glob))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def start_fails(bridge, value: str) -> None:
    """A server started with MCP_BRIDGE_AGENT=value exits non-zero with one stderr line naming the variable."""
    env = {"PATH": "/usr/bin:/bin"} | bridge.base_env(MCP_BRIDGE_AGENT=value)
    proc = subprocess.run([str(bridge.bin), "serve", "--db", str(bridge.db)], input=INIT_LINE,
                          capture_output=True, timeout=30, env=env)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, f"a server started with a bad credential exited 0; stderr {err!r}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one clear stderr line, got {lines!r}"
    assert "MCP_BRIDGE_AGENT" in lines[0], lines
    for needle in (value, value[5:], value[-16:]):
        if len(needle) >= 8:
            assert needle not in err and needle.encode() not in proc.stdout, "the credential was echoed"
    assert "\x1b" not in err, "a control character reached stderr"
    assert b'"result"' not in proc.stdout, f"the server answered initialize: {proc.stdout[:300]!r}"


# --------------------------------------------------------------------------- the overseer's CLI


async def test_agent_cli_add_list_rotate_revoke_all_audited(bridge):
    await init_db(bridge)
    lead = agent_add(bridge, "lead")
    worker = agent_add(bridge, "worker")
    out = json.loads(ok(run(bridge, "agent", "add", "watcher", "--role", "observer", "--json")))
    assert out["role"] == "observer" and out["name"] == "watcher"
    watcher = out["credential"]
    assert len({lead, worker, watcher}) == 3
    added = json.loads(ok(run(bridge, "agent", "list", "--json")))
    assert not ANY_CREDENTIAL.search(json.dumps(added).encode())

    # a duplicate name, bad names: refused, nothing added
    dup = run(bridge, "agent", "add", "lead", "--json")
    assert dup.returncode == 1, f"a duplicate agent name: exit {dup.returncode} (contract: 1)"
    dup_err = [line for line in dup.stderr.decode().splitlines() if line.strip()]
    assert len(dup_err) == 1 and "lead" in dup_err[0], dup_err
    assert not ANY_CREDENTIAL.search(dup.stdout + dup.stderr)
    for bad in ("bad name", "x" * 65, "", "ünï", "a/b"):
        proc = run(bridge, "agent", "add", bad)
        assert proc.returncode != 0, f"agent name {bad!r} accepted"
        assert not ANY_CREDENTIAL.search(proc.stdout + proc.stderr)
    for verb in ("rotate", "revoke"):
        assert run(bridge, "agent", verb, "nobody").returncode != 0, f"agent {verb} of an unknown name succeeded"

    listed = json.loads(ok(run(bridge, "agent", "list", "--json")))
    assert listed == added, "refused adds changed the list"
    assert sorted(a["name"] for a in listed) == ["lead", "watcher", "worker"]
    for a in listed:
        assert set(a) == {"name", "role", "created_at", "rotated_at", "revoked_at"}, a
        assert a["created_at"] is not None and a["rotated_at"] is None and a["revoked_at"] is None, a
        assert a["role"] == ("observer" if a["name"] == "watcher" else "agent")

    rot = json.loads(ok(run(bridge, "agent", "rotate", "worker", "--json")))
    assert set(rot) == {"name", "credential"} and rot["name"] == "worker", rot
    new_worker = rot["credential"]
    assert CREDENTIAL.match(new_worker) and new_worker != worker
    revoked = run(bridge, "agent", "revoke", "watcher")
    ok(revoked)
    assert not ANY_CREDENTIAL.search(revoked.stdout + revoked.stderr)

    listed = {a["name"]: a for a in json.loads(ok(run(bridge, "agent", "list", "--json")))}
    assert listed["worker"]["rotated_at"] is not None and listed["worker"]["revoked_at"] is None
    assert listed["watcher"]["revoked_at"] is not None
    assert listed["lead"]["rotated_at"] is None and listed["lead"]["revoked_at"] is None
    plain = ok(run(bridge, "agent", "list"))
    assert "worker" in plain and not ANY_CREDENTIAL.search(plain.encode())

    # audited with actor cli, never with the credential
    entries = audit_entries(bridge, "agent.*")
    actions = [(e["actor"], e["action"]) for e in entries if e["action"] in ("agent.add", "agent.rotate", "agent.revoke")]
    assert actions == [("cli", "agent.add")] * 3 + [("cli", "agent.rotate"), ("cli", "agent.revoke")], actions
    ok(run(bridge, "audit", "verify"))
    assert_credentials_nowhere(bridge, {"lead": lead, "worker": worker, "new worker": new_worker, "watcher": watcher})


# --------------------------------------------------------------------------- two agents, no token anywhere


async def test_two_registered_agents_coordinate_without_tokens(bridge):
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}

    async with spawn(bridge, "lead", agent_credential=creds["lead"], tap=True, **OFF) as lead, \
            spawn(bridge, "worker", agent_credential=creds["worker"], tap=True, **OFF) as worker:
        tools = {t.name for t in (await lead.session.list_tools()).tools}
        assert {"my_conversations", "send_message", "list_participants", "message_status", "create_conversation",
                "send_to_partner", "check_messages", "wait_for_messages", "read_history", "update_my_status",
                "check_partner_status"} <= tools, sorted(tools)

        created = await lead.ok("create_conversation", with_agents=["worker"])
        cid = created["conversation_id"]
        assert CONV_ID.match(cid)
        assert created["my_role"] == "lead" and created["partner_role"] == "worker", created
        assert created["session_a_token"] is None and created["session_b_token"] is None, created
        assert created["seats"] == [{"session_id": "a", "role": "lead", "token": None},
                                    {"session_id": "b", "role": "worker", "token": None}], created
        parse_rfc3339_utc(created["expires_at"], "expires_at")

        mine = await worker.ok("my_conversations")
        assert set(mine) == {"conversations"}, mine
        c, = mine["conversations"]
        # `revoked` is not in the contract; the implementation adds it (reported)
        assert set(c) - {"revoked"} == MY_CONVERSATION_KEYS, c
        assert c.get("revoked", False) is False, c
        assert (c["conversation_id"], c["role"], c["session_id"], c["participants"], c["unread"], c["state"]) == (
            cid, "worker", "b", ["lead", "worker"], 0, "active"), c
        assert parse_rfc3339_utc(c["expires_at"]) == parse_rfc3339_utc(created["expires_at"])

        sent = await lead.ok("send_message", conversation_id=cid, message="task 1: write the parser",
                             action_type="proposal", files_involved=["src/parse.rs"])
        assert sent["recipients"] == ["worker"]
        assert (await worker.ok("my_conversations"))["conversations"][0]["unread"] == 1

        w = await worker.ok("wait_for_messages", timeout_seconds=10)
        m, = w["messages"]
        assert set(m) >= MESSAGE_KEYS, m
        assert (m["conversation_id"], m["seq"], m["message"], m["from_role"], m["to"], m["action_type"],
                m["files_involved"], m["reply_to"]) == (
            cid, sent["message_id"], "task 1: write the parser", "lead", ["worker"], "proposal", ["src/parse.rs"], None)
        assert (await worker.ok("my_conversations"))["conversations"][0]["unread"] == 0

        reply = await worker.ok("send_message", conversation_id=cid, message="parser done", action_type="answer",
                                reply_to=sent["message_id"])
        assert reply["recipients"] == ["lead"]
        p2p = await worker.ok("send_to_partner", conversation_id=cid, message="also: tests pass")
        assert p2p["recipients"] == ["lead"]
        got = (await lead.ok("check_messages", conversation_id=cid))["messages"]
        assert [(x["message"], x["from_role"], x["reply_to"]) for x in got] == [
            ("parser done", "worker", sent["message_id"]), ("also: tests pass", "worker", None)]
        st = await lead.ok("message_status", conversation_id=cid, message_id=sent["message_id"])
        assert st["recipients"][0]["role"] == "worker"
        parse_rfc3339_utc(st["recipients"][0]["read_at"], "read_at")
        await worker.err("message_status", "message_not_found", {"conversation_id": cid, "message_id": sent["message_id"]})

        await worker.ok("update_my_status", conversation_id=cid, status="complete", note="parser merged")
        ps = await lead.ok("check_partner_status", conversation_id=cid)
        assert (ps["partner_role"], ps["status"], ps["note"], ps["alive"]) == ("worker", "complete", "parser merged", True)
        lp = await worker.ok("list_participants", conversation_id=cid)
        assert [(p["session_id"], p["role"], p["agent"]) for p in lp["participants"]] == [("a", "lead", True), ("b", "worker", True)]
        assert all(set(p) - {"revoked"} == PARTICIPANT_KEYS for p in lp["participants"]), lp
        h = await history(worker, {"conversation_id": cid})
        assert [x["message"] for x in h] == ["task 1: write the parser", "parser done", "also: tests pass"]

        # waiting across conversations: a second conversation, a message arriving while the worker waits
        cid2 = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        assert cid2 != cid
        mine = {c["conversation_id"]: c for c in (await worker.ok("my_conversations"))["conversations"]}
        assert set(mine) == {cid, cid2}

        async def later():
            await anyio.sleep(0.7)
            await lead.ok("send_message", conversation_id=cid2, message="task 2, in the second conversation")

        async with anyio.create_task_group() as tg:
            tg.start_soon(later)
            w = await worker.ok("wait_for_messages", timeout_seconds=30)
        assert w["timed_out"] is False
        assert [(x["conversation_id"], x["message"]) for x in w["messages"]] == [(cid2, "task 2, in the second conversation")]
        await lead.ok("send_message", conversation_id=cid, message="back in the first")
        await lead.ok("send_message", conversation_id=cid2, message="and the second")
        got = []
        with anyio.fail_after(30):
            while len(got) < 2:
                got += (await worker.ok("wait_for_messages", timeout_seconds=5))["messages"]
        assert sorted((x["conversation_id"], x["message"]) for x in got) == sorted(
            [(cid, "back in the first"), (cid2, "and the second")])
        w = await worker.ok("wait_for_messages", timeout_seconds=1)
        assert w["messages"] == [] and w["timed_out"] is True

    # --- the wire: no token or session id argument, no token and no credential in either direction
    calls = [(f, m) for f, m in wire_messages(bridge) if f.endswith(".in") and m.get("method") == "tools/call"]
    assert len(calls) >= 20, f"the wire tap saw only {len(calls)} tool calls"
    for f, m in calls:
        args = m["params"].get("arguments") or {}
        assert "token" not in args and "session_id" not in args, (f, m)
    wire = wire_bytes(bridge)
    for name, blob in wire.items():
        assert not ANY_TOKEN.search(blob), f"a seat token crossed the wire in {name}"
        assert not ANY_CREDENTIAL.search(blob), f"a credential crossed the wire in {name}"
    assert any(b"task 1: write the parser" in blob for blob in wire.values()), "the wire capture is empty or wrong"
    extra = {"show": ok(run(bridge, "show", cid)).encode(), "list": ok(run(bridge, "list", "--json")).encode(),
             "agent list": ok(run(bridge, "agent", "list", "--json")).encode(),
             "export": ok(run(bridge, "export", cid)).encode()}
    assert_credentials_nowhere(bridge, creds, {**wire, **extra})


async def test_mixed_conversation_agent_and_token_seats(bridge):
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **OFF) as lead, \
            spawn(bridge, "worker", agent_credential=creds["worker"], tap=True, **OFF) as worker, \
            spawn(bridge, "reviewer", **OFF) as reviewer:
        tools = {t.name for t in (await reviewer.session.list_tools()).tools}
        assert "my_conversations" not in tools, "my_conversations is listed only in agent mode"
        await reviewer.err("my_conversations", "unknown_tool", {})

        created = await lead.ok("create_conversation", with_agents=["worker"], partner_roles=["reviewer", "tester"])
        cid = created["conversation_id"]
        seats = created["seats"]
        assert all(set(s) == SEAT_KEYS for s in seats), seats
        assert [(s["session_id"], s["role"]) for s in seats] == [("a", "lead"), ("b", "worker"), ("c", "reviewer"), ("d", "tester")]
        assert seats[0]["token"] is None and seats[1]["token"] is None, "agent seats get no token"
        assert TOKEN.match(seats[2]["token"]) and TOKEN.match(seats[3]["token"]) and seats[2]["token"] != seats[3]["token"]
        assert created["session_a_token"] is None and created["session_b_token"] is None, created
        assert created["my_role"] == "lead" and created["partner_role"] == "worker"
        rev = {"conversation_id": cid, "session_id": "c", "token": seats[2]["token"]}

        lp = await reviewer.ok("list_participants", **rev)
        assert [(p["role"], p["agent"]) for p in lp["participants"]] == [
            ("lead", True), ("worker", True), ("reviewer", False), ("tester", False)]
        sent = await reviewer.ok("send_message", **rev, message="review notes for everyone")
        assert sorted(sent["recipients"]) == ["lead", "tester", "worker"]
        for a in (lead, worker):
            m, = (await a.ok("check_messages", conversation_id=cid))["messages"]
            assert (m["message"], m["from_role"]) == ("review notes for everyone", "reviewer")
        await worker.ok("send_message", conversation_id=cid, message="worker to reviewer", to=["reviewer"])
        m, = (await reviewer.ok("check_messages", **rev))["messages"]
        assert (m["from_role"], m["to"]) == ("worker", ["reviewer"])
        mine = (await worker.ok("my_conversations"))["conversations"]
        assert [(c["conversation_id"], c["role"], c["session_id"], c["participants"]) for c in mine] == [
            (cid, "worker", "b", ["lead", "worker", "reviewer", "tester"])]

        # an agent process may still use a token seat in someone else's conversation
        other = await create_conv(reviewer, "owner", "helper")
        await reviewer.ok("send_to_partner", **other.a(message="for the helper seat"))
        worker.no_token = False
        try:
            m, = (await worker.ok("check_messages", **other.b()))["messages"]
            assert (m["message"], m["from_role"]) == ("for the helper seat", "owner")
            await worker.ok("send_to_partner", **other.b(message="helper answers"))
        finally:
            worker.no_token = True
        m, = (await reviewer.ok("check_messages", **other.a()))["messages"]
        assert (m["message"], m["from_role"]) == ("helper answers", "helper")

    # the worker's own traffic carries the token it was deliberately given, no other token, no credential
    for name, blob in wire_bytes(bridge).items():
        assert set(ANY_TOKEN.findall(blob)) <= {other.b_token.encode()}, f"{name}: a token other than the one it used"
        assert not ANY_CREDENTIAL.search(blob), name
    assert_credentials_nowhere(bridge, creds)


async def test_an_agent_cannot_act_for_another_seat_or_outside_its_conversations(bridge):
    await init_db(bridge)
    creds = {n: agent_add(bridge, n) for n in ("lead", "w1", "w2", "outsider")}
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **OFF) as lead, \
            spawn(bridge, "w2", agent_credential=creds["w2"], **OFF) as w2, \
            spawn(bridge, "outsider", agent_credential=creds["outsider"], **OFF) as outsider, \
            spawn(bridge, "plain", **OFF) as plain:
        created = await lead.ok("create_conversation", with_agents=["w1", "w2"])
        cid = created["conversation_id"]
        assert [(s["session_id"], s["role"], s["token"]) for s in created["seats"]] == [
            ("a", "lead", None), ("b", "w1", None), ("c", "w2", None)]
        counts, rows = table_counts(bridge), message_rows(bridge)

        # w2 claims the lead's seat: without a token, and with a made-up one
        w2.no_token = False
        r = await w2.call("send_message", {"conversation_id": cid, "session_id": "a", "message": "I am the lead"})
        assert r.is_error, "an agent sent from another agent's seat"
        r = await w2.call("send_message", {"conversation_id": cid, "session_id": "a",
                                           "token": "mcpb_" + "A" * 43, "message": "I am the lead"})
        assert r.is_error, "an agent sent from another agent's seat with a made-up token"
        w2.no_token = True
        # an agent with no seat in the conversation sees and sends nothing
        for tool, args in (("check_messages", {"conversation_id": cid}), ("read_history", {"conversation_id": cid}),
                           ("list_participants", {"conversation_id": cid}),
                           ("send_message", {"conversation_id": cid, "message": "let me in"}),
                           ("update_my_status", {"conversation_id": cid, "status": "working"})):
            r = await outsider.call(tool, args)
            assert r.is_error, f"an agent without a seat called {tool}: {r.structured_content!r}"
        assert (await outsider.ok("my_conversations"))["conversations"] == []
        # a client without a credential cannot reach an agent seat
        r = await plain.call("check_messages", {"conversation_id": cid, "session_id": "b", "token": "mcpb_" + "B" * 43})
        assert r.is_error
        assert table_counts(bridge) == counts and message_rows(bridge) == rows

        # with_agents refusals: an unknown agent, the caller itself, a duplicate, and no agent mode
        n_conv = bridge.count("conversations")
        for bad in (["w1", "ghost"], ["lead"], ["w1", "w1"]):
            error = await lead.err_any("create_conversation", {"with_agents": bad})
            assert error.get("field", "with_agents").startswith("with_agents"), (bad, error)
        error = await plain.err("create_conversation", "invalid_argument", {"my_role": "x", "partner_role": "y", "with_agents": ["w1"]})
        assert error.get("field") == "with_agents", error
        assert bridge.count("conversations") == n_conv

        # what w2 sends is w2's
        await w2.ok("send_message", conversation_id=cid, message="from w2", to=["lead"])
        m, = (await lead.ok("check_messages", conversation_id=cid))["messages"]
        assert (m["from_role"], m["message"]) == ("w2", "from w2")


async def test_three_agents_concurrently_with_agents_and_waits_across_conversations(bridge):
    await init_db(bridge)
    names = ["lead", "w1", "w2"]
    creds = {n: agent_add(bridge, n) for n in names}
    n_each = 9
    async with AsyncExitStack() as stack:
        agents = {n: await stack.enter_async_context(spawn(bridge, n, agent_credential=creds[n], tap=True, **OFF))
                  for n in names}
        cid = (await agents["lead"].ok("create_conversation", with_agents=["w1", "w2"]))["conversation_id"]
        side = (await agents["w1"].ok("create_conversation", with_agents=["w2"]))["conversation_id"]  # w1 + w2 only
        expected: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
        plans = {}
        for n in names:
            others = [o for o in names if o != n]
            plan = []
            for i in range(n_each):
                body = f"{n}:{i}"
                if n != "lead" and i % 3 == 2:
                    conv, to = side, None           # the other worker, in the side conversation
                    rcpt = [o for o in others if o != "lead"]
                elif i % 3 == 0:
                    conv, to, rcpt = cid, None, others
                else:
                    conv, to = cid, [others[i % 2]]
                    rcpt = to
                plan.append((body, conv, to))
                for r in rcpt:
                    expected[r].append((conv, body))
            plans[n] = plan
        got: dict[str, list[dict]] = {n: [] for n in names}

        async def send(n):
            for body, conv, to in plans[n]:
                args = {"conversation_id": conv, "message": body}
                if to is not None:
                    args["to"] = to
                await agents[n].ok_args("send_message", args)

        async def recv(n):
            while len(got[n]) < len(expected[n]):
                got[n] += (await agents[n].ok("wait_for_messages", timeout_seconds=3))["messages"]

        with anyio.fail_after(180):
            async with anyio.create_task_group() as tg:
                for n in names:
                    tg.start_soon(send, n)
                    tg.start_soon(recv, n)
        for n in names:
            pairs = [(m["conversation_id"], m["message"]) for m in got[n]]
            assert sorted(pairs) == sorted(expected[n]), f"{n}: got {sorted(pairs)} expected {sorted(expected[n])}"
            assert len(set(pairs)) == len(pairs), f"{n}: duplicates"
            for sender in names:
                for conv in (cid, side):
                    order = [int(m["message"].split(":")[1]) for m in got[n]
                             if m["from_role"] == sender and m["conversation_id"] == conv]
                    assert order == sorted(order), f"{n}: from {sender} in {conv} out of order {order}"
            for m in got[n]:
                assert m["message"].startswith(m["from_role"] + ":") and n in m["to"], m
            w = await agents[n].ok("wait_for_messages", timeout_seconds=1)
            assert w["messages"] == [] and w["timed_out"] is True
    for name, blob in wire_bytes(bridge).items():
        assert not ANY_TOKEN.search(blob) and not ANY_CREDENTIAL.search(blob), name
    assert_credentials_nowhere(bridge, creds, wire_bytes(bridge))


# --------------------------------------------------------------------------- bad, revoked and rotated credentials


async def test_bad_credentials_at_start_exit_with_one_clear_line(bridge):
    await init_db(bridge)
    agent_add(bridge, "someone")
    start_fails(bridge, "mcpa_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))  # unknown
    start_fails(bridge, "not-a-credential-at-all-" + secrets.token_hex(8))                               # malformed
    conv_token = "mcpb_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    start_fails(bridge, conv_token)                                                                      # a seat token
    start_fails(bridge, "mcpa_" + "A" * 42 + "\x1b")                                                      # control char


async def test_revoked_while_running_fails_every_call_with_agent_revoked(bridge):
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **OFF) as lead, \
            spawn(bridge, "worker", agent_credential=creds["worker"], **OFF) as worker:
        cid = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        await lead.ok("send_message", conversation_id=cid, message="before the revoke")
        assert len((await worker.ok("my_conversations"))["conversations"]) == 1

        ok(run(bridge, "agent", "revoke", "worker"))
        counts = table_counts(bridge)
        for tool, args in (("my_conversations", {}), ("check_messages", {"conversation_id": cid}),
                           ("wait_for_messages", {"timeout_seconds": 1}),
                           ("wait_for_messages", {"conversation_id": cid, "timeout_seconds": 1}),
                           ("send_message", {"conversation_id": cid, "message": "after the revoke"}),
                           ("send_to_partner", {"conversation_id": cid, "message": "after the revoke"}),
                           ("read_history", {"conversation_id": cid}),
                           ("list_participants", {"conversation_id": cid}),
                           ("update_my_status", {"conversation_id": cid, "status": "working"}),
                           ("create_conversation", {"with_agents": ["lead"]})):
            await worker.err(tool, "agent_revoked", args)
        assert table_counts(bridge) == counts, "a revoked agent's call changed the database"
        # the lead is unaffected; the message meant for the worker is still unread
        lp = await lead.ok("list_participants", conversation_id=cid)
        assert {p["role"]: p["unread"] for p in lp["participants"]} == {"lead": 0, "worker": 1}
    start_fails(bridge, creds["worker"])
    entries = [e for e in audit_entries(bridge, "agent.revoke") if e["action"] == "agent.revoke"]
    assert [e["actor"] for e in entries] == ["cli"], entries
    assert_credentials_nowhere(bridge, creds)


async def test_rotate_stops_the_old_credential_and_keeps_the_identity(bridge):
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **OFF) as lead:
        async with spawn(bridge, "worker-old", agent_credential=creds["worker"], **OFF) as old:
            cid = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
            await lead.ok("send_message", conversation_id=cid, message="waiting for you")
            rot = json.loads(ok(run(bridge, "agent", "rotate", "worker", "--json")))
            creds["new worker"] = rot["credential"]
            await old.err("my_conversations", "agent_revoked", {})
            await old.err("check_messages", "agent_revoked", {"conversation_id": cid})
        start_fails(bridge, creds["worker"])
        async with spawn(bridge, "worker-new", agent_credential=creds["new worker"], **OFF) as new:
            c, = (await new.ok("my_conversations"))["conversations"]
            assert (c["conversation_id"], c["role"], c["unread"]) == (cid, "worker", 1), c
            m, = (await new.ok("check_messages", conversation_id=cid))["messages"]
            assert (m["message"], m["from_role"]) == ("waiting for you", "lead")
    assert [e["actor"] for e in audit_entries(bridge, "agent.rotate") if e["action"] == "agent.rotate"] == ["cli"]
    assert_credentials_nowhere(bridge, creds)


async def test_a_credential_pasted_into_a_message_is_not_stored(bridge):
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **OFF) as lead, \
            spawn(bridge, "worker", agent_credential=creds["worker"], **OFF) as worker:
        cid = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        sent = await lead.ok("send_message", conversation_id=cid,
                             message=f"my MCP_BRIDGE_AGENT is {creds['lead']} and yours {creds['worker']}",
                             files_involved=[f"notes/{creds['worker']}.txt"])
        assert sent["redacted"], f"a credential in a message was not redacted: {sent!r}"
        m, = (await worker.ok("check_messages", conversation_id=cid))["messages"]
        assert m["message"].startswith("my MCP_BRIDGE_AGENT is ") and "[REDACTED:" in m["message"], m
        assert m["redacted"], m
        assert_absent(secret_needles(creds), {"received": json.dumps(m).encode(), "send result": json.dumps(sent).encode()},
                      "what the agents see")
    assert_credentials_nowhere(bridge, creds)


async def test_a_wait_in_flight_delivers_nothing_after_the_revoke(bridge):
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **OFF) as lead, \
            spawn(bridge, "worker", agent_credential=creds["worker"], **OFF) as worker:
        cid = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        outcome = {}

        async def wait():
            outcome["result"] = await worker.call("wait_for_messages", {"timeout_seconds": 6})

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(1.0)
            ok(await anyio.to_thread.run_sync(lambda: run(bridge, "agent", "revoke", "worker")))
            await anyio.sleep(0.3)
            await lead.ok("send_message", conversation_id=cid, message="after the revoke")
        r = outcome["result"]
        if r.is_error:
            assert json.loads(r.content[0].text.rsplit("\n", 1)[-1])["error"]["code"] == "agent_revoked", r
        else:
            assert r.structured_content["messages"] == [], f"a revoked agent's wait delivered: {r.structured_content!r}"
        lp = await lead.ok("list_participants", conversation_id=cid)
        assert {p["role"]: p["unread"] for p in lp["participants"]}["worker"] == 1, "the message was marked read"
        st = await lead.ok("message_status", conversation_id=cid, message_id=bridge.query("SELECT max(seq) FROM messages")[0][0])
        assert st["recipients"] == [{"role": "worker", "read_at": None}], st


async def test_with_agents_limits_and_hostile_names(bridge):
    await init_db(bridge)
    names = [f"a{i:02d}" for i in range(16)]
    creds = {n: agent_add(bridge, n) for n in ["boss", *names]}
    async with spawn(bridge, "boss", agent_credential=creds["boss"], **OFF) as boss, spawn(bridge, "plain") as plain:
        n_conv = bridge.count("conversations")
        for args in ({"with_agents": names},                                  # 17 seats
                     {"with_agents": names[:15], "partner_roles": ["extra"]},  # 17 seats
                     {"with_agents": names[:14], "partner_roles": ["x", "y"]},
                     {"with_agents": ["a00"], "partner_roles": ["a00"]},      # one role twice
                     {"with_agents": ["a00\x1b[2J"]},
                     {"with_agents": []}):
            r = await boss.call("create_conversation", args)
            assert r.is_error, f"create_conversation accepted {args!r}: {r.structured_content!r}"
            assert "\x1b" not in r.content[0].text
        assert bridge.count("conversations") == n_conv
        full = await boss.ok("create_conversation", with_agents=names[:14], partner_roles=["last"])
        assert [s["session_id"] for s in full["seats"]] == list("abcdefghijklmnop")
        assert [s["token"] is None for s in full["seats"]] == [True] * 15 + [False]
        assert TOKEN.match(full["seats"][15]["token"])
        # an agent credential pasted as a seat token: refused by shape, never echoed
        conv = await create_conv(plain)
        r = await plain.call("check_messages", conv.b(token=creds["a00"]))
        assert r.is_error and creds["a00"][5:] not in r.content[0].text, r


async def test_my_conversations_and_waits_after_close_and_expiry(bridge):
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}
    env = {**OFF, "MCP_BRIDGE_CONVERSATION_TTL": "2s"}
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **env) as lead, \
            spawn(bridge, "worker", agent_credential=creds["worker"], **env) as worker:
        closed = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        expiring = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        await lead.ok("send_message", conversation_id=closed, message="unread in the closed one")
        ok(run(bridge, "close", closed))
        await anyio.sleep(2.5)
        states = {c["conversation_id"]: c["state"] for c in (await worker.ok("my_conversations"))["conversations"]}
        assert states.get(closed, "closed") == "closed", states
        assert states.get(expiring, "expired") == "expired", states
        # an agent's wait across its conversations neither fails nor delivers from an ended one
        w = await worker.ok("wait_for_messages", timeout_seconds=1)
        assert w["messages"] == [] and w["timed_out"] is True, w
        await worker.err("send_message", "conversation_closed", {"conversation_id": closed, "message": "x"})
        await worker.err("send_message", "conversation_expired", {"conversation_id": expiring, "message": "x"})


async def test_agent_mode_instructions_do_not_send_tokens_through_the_human(bridge):
    """The issue: with identities "no token ever passes through the human or a prompt". The server's
    `instructions` are what a client puts in front of the model first."""
    await init_db(bridge)
    cred = agent_add(bridge, "lead")
    async with spawn(bridge, "lead", agent_credential=cred) as lead:
        text = lead.init.instructions or ""
        assert "through the human" not in text and "session_b_token" not in text, (
            f"in agent mode the instructions still tell the model to hand a seat token to the human: {text[:300]!r}")


async def test_overseer_seat_rotate_and_revoke_in_a_mixed_team(bridge):
    """`mcp-bridge rotate|revoke CONV --session X` for any seat a..p; an agent's seat has no token to rotate."""
    await init_db(bridge)
    cred = agent_add(bridge, "lead")
    async with spawn(bridge, "lead", agent_credential=cred, **OFF) as lead, spawn(bridge, "plain", **OFF) as plain:
        created = await lead.ok("create_conversation", partner_roles=["w1", "w2", "w3"])
        cid = created["conversation_id"]
        seats = {s["session_id"]: s for s in created["seats"]}
        assert seats["a"]["token"] is None and all(TOKEN.match(seats[x]["token"]) for x in "bcd")
        assert created["my_role"] == "lead" and created["partner_role"] == "w1"
        assert created["session_a_token"] is None and created["session_b_token"] == seats["b"]["token"], created
        await lead.ok("send_message", conversation_id=cid, message="hello d", to=["w3"])

        proc = run(bridge, "rotate", cid, "--session", "d", "--json")
        new_d = json.loads(ok(proc))["token"]
        assert TOKEN.match(new_d) and new_d != seats["d"]["token"]
        await plain.err("check_messages", "invalid_token", {"conversation_id": cid, "session_id": "d", "token": seats["d"]["token"]})
        m, = (await plain.ok("check_messages", conversation_id=cid, session_id="d", token=new_d))["messages"]
        assert m["message"] == "hello d"

        ok(run(bridge, "revoke", cid, "--session", "c"))
        await plain.err("check_messages", "session_revoked", {"conversation_id": cid, "session_id": "c", "token": seats["c"]["token"]})
        # the other seats are untouched
        await plain.ok("check_messages", conversation_id=cid, session_id="b", token=seats["b"]["token"])

        # the agent's seat: no token to rotate; refused, nothing printed that looks like a secret
        proc = run(bridge, "rotate", cid, "--session", "a", "--json")
        assert proc.returncode != 0, "rotating a registered agent's seat printed a token"
        assert not ANY_TOKEN.search(proc.stdout + proc.stderr) and not ANY_CREDENTIAL.search(proc.stdout + proc.stderr)
        assert "agent" in proc.stderr.decode().lower(), proc.stderr
        await lead.ok("check_messages", conversation_id=cid)
        # a seat letter the conversation lacks
        assert run(bridge, "rotate", cid, "--session", "e").returncode != 0
    assert_credentials_nowhere(bridge, {"lead": cred})


async def test_debug_logs_never_carry_the_credential(bridge):
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}
    env = {**OFF, "MCP_BRIDGE_LOG": "trace"}
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **env) as lead, \
            spawn(bridge, "worker", agent_credential=creds["worker"], **env) as worker:
        cid = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        await lead.ok("send_message", conversation_id=cid, message="logged?")
        await worker.ok("wait_for_messages", timeout_seconds=5)
        await worker.ok("my_conversations")
        ok(run(bridge, "agent", "revoke", "worker"))
        await worker.err("my_conversations", "agent_revoked", {})
    assert bridge.logs().strip(), "MCP_BRIDGE_LOG=trace logged nothing: the test would prove nothing"
    for value in creds.values():
        env_bad = {"PATH": "/usr/bin:/bin"} | bridge.base_env(MCP_BRIDGE_AGENT=value, MCP_BRIDGE_LOG="trace")
        proc = subprocess.run([str(bridge.bin), "serve", "--db", str(bridge.db)], input=INIT_LINE,
                              capture_output=True, timeout=30, env=env_bad)
        assert_absent(secret_needles(creds), {"trace stderr": proc.stderr, "stdout": proc.stdout}, "a refused start at trace")
    assert_credentials_nowhere(bridge, creds)


async def test_a_wait_started_before_the_conversation_exists_wakes_on_its_first_message(bridge):
    """The usual start of a team: the worker is up and waiting for work before the lead creates the
    conversation that seats it."""
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **OFF) as lead, \
            spawn(bridge, "worker", agent_credential=creds["worker"], **OFF) as worker:
        assert (await worker.ok("my_conversations"))["conversations"] == []
        out = {}

        async def wait():
            out["w"] = await worker.ok("wait_for_messages", timeout_seconds=20)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(1.0)
            cid = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
            await lead.ok("send_message", conversation_id=cid, message="your first task")
        w = out["w"]
        assert w["timed_out"] is False and [(m["conversation_id"], m["message"]) for m in w["messages"]] == [
            (cid, "your first task")], f"a wait begun before the conversation existed did not wake on it: {w!r}"


async def test_one_agent_two_processes_each_message_once(bridge):
    """One credential in two client configurations (two server processes): every message reaches the
    agent once in all, whichever process waits."""
    await init_db(bridge)
    creds = {"lead": agent_add(bridge, "lead"), "worker": agent_add(bridge, "worker")}
    n = 30
    async with spawn(bridge, "lead", agent_credential=creds["lead"], **OFF) as lead, \
            spawn(bridge, "worker-1", agent_credential=creds["worker"], **OFF) as w1, \
            spawn(bridge, "worker-2", agent_credential=creds["worker"], **OFF) as w2:
        c1 = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        c2 = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        got: list[dict] = []

        async def send():
            for i in range(n):
                await lead.ok("send_message", conversation_id=(c1, c2)[i % 2], message=f"m{i}")

        async def recv(agent):
            while len(got) < n:
                got.extend((await agent.ok("wait_for_messages", timeout_seconds=1))["messages"])

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                tg.start_soon(recv, w1)
                tg.start_soon(recv, w2)
        bodies = [m["message"] for m in got]
        assert sorted(bodies) == sorted(f"m{i}" for i in range(n)), f"duplicates or losses: {sorted(bodies)}"
        for m in got:
            assert m["conversation_id"] == (c1, c2)[int(m["message"][1:]) % 2], m
