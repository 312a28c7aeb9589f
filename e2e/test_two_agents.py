"""1. Two agents, two processes, one db: the happy path end to end."""

from __future__ import annotations

import base64
import stat
from datetime import datetime, timedelta, timezone

import anyio
import pytest

from conftest import CONV_ID, TOKEN, assert_absent, create_conv, parse_rfc3339_utc

pytestmark = pytest.mark.anyio

MESSAGE_KEYS = {"seq", "message", "from_role", "action_type", "files_involved", "sent_at", "redacted"}


async def test_two_agents_two_processes_one_db(bridge):
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        before = datetime.now(timezone.utc)
        created = await a.ok("create_conversation", my_role="planner", partner_role="coder")

        # --- shape of create_conversation
        assert CONV_ID.match(created["conversation_id"]), created["conversation_id"]
        assert TOKEN.match(created["session_a_token"]), "session_a_token format"
        assert TOKEN.match(created["session_b_token"]), "session_b_token format"
        assert created["session_a_token"] != created["session_b_token"]
        assert created["my_role"] == "planner" and created["partner_role"] == "coder"
        expires = parse_rfc3339_utc(created["expires_at"], "expires_at")
        # default TTL is 3 h (generous tolerance: this is not a timing assertion)
        assert before + timedelta(hours=3) - timedelta(minutes=5) <= expires <= datetime.now(timezone.utc) + timedelta(hours=3, minutes=5), expires
        conv_id = created["conversation_id"]
        tok_a, tok_b = created["session_a_token"], created["session_b_token"]
        A = {"conversation_id": conv_id, "session_id": "a", "token": tok_a}
        B = {"conversation_id": conv_id, "session_id": "b", "token": tok_b}

        # --- partner status before anything was set: status null, consistent heartbeat fields
        ps = await b.ok("check_partner_status", **B)
        assert ps["partner_role"] == "planner"
        assert ps["status"] is None
        assert ps["note"] is None
        if ps["last_heartbeat"] is None:
            assert ps["alive"] is False and ps["seconds_since_heartbeat"] is None, ps
        else:
            parse_rfc3339_utc(ps["last_heartbeat"], "last_heartbeat")

        # --- A sends, B receives it exactly once
        sent = await a.ok("send_to_partner", **A, message="hello from A", action_type="question",
                          files_involved=["src/main.rs", "docs/design.md"])
        assert isinstance(sent["message_id"], int) and not isinstance(sent["message_id"], bool)
        assert sent["redacted"] == []
        parse_rfc3339_utc(sent["sent_at"], "sent_at")

        got = await b.ok("check_messages", **B)
        assert set(got) >= {"messages"}
        msgs = got["messages"]
        assert len(msgs) == 1, msgs
        m = msgs[0]
        assert set(m) >= MESSAGE_KEYS, m
        assert m["seq"] == sent["message_id"]
        assert m["message"] == "hello from A"
        assert m["from_role"] == "planner"
        assert m["action_type"] == "question"
        assert m["files_involved"] == ["src/main.rs", "docs/design.md"]
        assert m["redacted"] == []
        parse_rfc3339_utc(m["sent_at"], "message sent_at")

        assert (await b.ok("check_messages", **B))["messages"] == [], "second check must return nothing"
        assert (await a.ok("check_messages", **A))["messages"] == [], "sender must not receive its own message"

        # --- B replies; default action_type is info
        reply = await b.ok("send_to_partner", **B, message="ack from B", action_type="answer")
        assert reply["message_id"] > sent["message_id"], "message ids must increase"
        plain = await b.ok("send_to_partner", **B, message="no action type given")
        assert plain["message_id"] > reply["message_id"]
        got_a = (await a.ok("check_messages", **A))["messages"]
        assert [x["message"] for x in got_a] == ["ack from B", "no action type given"]
        assert [x["seq"] for x in got_a] == [reply["message_id"], plain["message_id"]]
        assert all(x["from_role"] == "coder" for x in got_a)
        assert [x["action_type"] for x in got_a] == ["answer", "info"]
        assert got_a[1]["files_involved"] == []
        assert (await a.ok("check_messages", **A))["messages"] == []

        # --- statuses and heartbeats across processes
        st = await a.ok("update_my_status", **A, status="working", note="on it")
        assert st["status"] == "working" and st["note"] == "on it"
        hb = parse_rfc3339_utc(st["heartbeat_at"], "heartbeat_at")

        ps = await b.ok("check_partner_status", **B)
        assert ps["partner_role"] == "planner"
        assert ps["status"] == "working" and ps["note"] == "on it"
        last = parse_rfc3339_utc(ps["last_heartbeat"], "last_heartbeat")
        assert abs((last - hb).total_seconds()) < 1.0, (ps["last_heartbeat"], st["heartbeat_at"])
        assert ps["alive"] is True
        assert isinstance(ps["seconds_since_heartbeat"], int) and not isinstance(ps["seconds_since_heartbeat"], bool)
        assert 0 <= ps["seconds_since_heartbeat"] <= 300

        ps_b = await a.ok("check_partner_status", **A)
        assert ps_b["partner_role"] == "coder"
        assert ps_b["status"] is None

        st_b = await b.ok("update_my_status", **B, status="waiting")
        assert st_b["status"] == "waiting"
        assert st_b["note"] is None, "note omitted -> null"
        ps_b = await a.ok("check_partner_status", **A)
        assert ps_b["status"] == "waiting" and ps_b["alive"] is True and ps_b["note"] is None

        for s in ("blocked", "complete"):
            assert (await a.ok("update_my_status", **A, status=s, note=f"now {s}"))["status"] == s
            ps = await b.ok("check_partner_status", **B)
            assert ps["status"] == s and ps["note"] == f"now {s}"

        # --- tokens never stored in clear (while the servers are running ...)
        tokens = {"session_a_token": tok_a, "session_b_token": tok_b,
                  "session_a_token body": tok_a[5:], "session_b_token body": tok_b[5:]}
        assert_absent(tokens, bridge.raw_db_bytes(), "while servers run")
        # nor in decoded form (raw 32 bytes, or their hex)
        for label, tok in (("a", tok_a), ("b", tok_b)):
            raw = base64.urlsafe_b64decode(tok[5:] + "=")
            assert len(raw) == 32, f"token {label} does not carry 256 bits"
            for name, blob in bridge.raw_db_bytes().items():
                assert raw not in blob and raw.hex().encode() not in blob, f"token {label} stored decoded in {name}"
        assert bridge.count("messages") == 3
        roles = dict(bridge.query("SELECT session_id, role FROM participants WHERE conversation_id = ?", (conv_id,)))
        assert roles == {"a": "planner", "b": "coder"}
        # timestamps are integer unix milliseconds
        now_ms = datetime.now(timezone.utc).timestamp() * 1000
        for table, col in (("conversations", "created_at"), ("conversations", "expires_at"),
                           ("messages", "created_at"), ("audit", "at")):
            for (v,) in bridge.query(f"SELECT {col} FROM {table}"):
                assert isinstance(v, int) and 1.5e12 < v < now_ms + 4 * 3600 * 1000, f"{table}.{col} = {v!r}"
        for (v,) in bridge.query("SELECT delivered_at FROM deliveries WHERE delivered_at IS NOT NULL"):
            assert isinstance(v, int) and 1.5e12 < v <= now_ms + 60_000, f"deliveries.delivered_at = {v!r}"
        seq_sent = parse_rfc3339_utc(sent["sent_at"]).timestamp() * 1000
        (created_ms,), = bridge.query("SELECT created_at FROM messages WHERE seq = ?", (sent["message_id"],))
        assert abs(created_ms - seq_sent) < 1000, (created_ms, sent["sent_at"])

    # --- ... and after they exited
    assert_absent(tokens, bridge.raw_db_bytes(), "after servers exited")
    assert_absent(tokens, {"stderr logs": bridge.logs().encode()}, "server logs")


async def test_alive_false_after_heartbeat_window(bridge):
    env = {"MCP_BRIDGE_HEARTBEAT_WINDOW": "1s"}
    async with bridge.agent("A", **env) as a, bridge.agent("B", **env) as b:
        conv = await create_conv(a)
        await a.ok("update_my_status", **conv.a(status="working"))
        await anyio.sleep(2.5)
        ps = await b.ok("check_partner_status", **conv.b())
        assert ps["status"] == "working"
        assert ps["alive"] is False, ps
        assert isinstance(ps["seconds_since_heartbeat"], int) and ps["seconds_since_heartbeat"] >= 2, ps
        parse_rfc3339_utc(ps["last_heartbeat"], "last_heartbeat")
        # a new heartbeat makes it alive again
        await a.ok("update_my_status", **conv.a(status="working"))
        assert (await b.ok("check_partner_status", **conv.b()))["alive"] is True


async def test_check_partner_status_changes_nothing(bridge):
    """check_partner_status is annotated readOnly: it must not change conversation state."""
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message="unread"))
        await a.ok("update_my_status", **conv.a(status="working", note="x"))
        before = bridge.snapshot()
        for _ in range(3):
            await b.ok("check_partner_status", **conv.b())
            await a.ok("check_partner_status", **conv.a())
        assert bridge.snapshot() == before
        assert [m["message"] for m in (await b.ok("check_messages", **conv.b()))["messages"]] == ["unread"]


@pytest.mark.sqlite_only("modes of the SQLite file, its WAL and the key file beside it")
async def test_file_modes(bridge):
    db = bridge.tmp / "newdir" / "bridge.db"
    async with bridge.agent("A", db=db) as a:
        await create_conv(a)
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700, oct(db.parent.stat().st_mode)
        assert stat.S_IMODE(db.stat().st_mode) == 0o600, oct(db.stat().st_mode)
        key = db.parent / "bridge.db.key"
        assert key.is_file(), f"key file {key} not created"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, oct(key.stat().st_mode)
        for suffix in ("-wal", "-shm"):
            p = db.parent / ("bridge.db" + suffix)
            if p.exists():
                assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, f"{p.name} is {oct(p.stat().st_mode)}"
    key_bytes = key.read_bytes()
    # the key survives restarts: a second process reuses it and accepts the earlier tokens
    async with bridge.agent("A2", db=db) as a2:
        conv = await create_conv(a2)
        await a2.ok("send_to_partner", **conv.a(message="x"))
    assert key.read_bytes() == key_bytes


@pytest.mark.sqlite_only("MCP_BRIDGE_DB names a SQLite file; no key file beside it")
async def test_env_key_and_env_db(bridge):
    """MCP_BRIDGE_DB replaces --db; MCP_BRIDGE_KEY replaces the key file; tokens work across processes."""
    db = bridge.tmp / "envdb.sqlite"
    key = "ab" * 32
    env = {"MCP_BRIDGE_DB": str(db), "MCP_BRIDGE_KEY": key}
    async with bridge.agent("A", args=["serve"], **env) as a, bridge.agent("B", args=["serve"], **env) as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message="via env db"))
        msgs = (await b.ok("check_messages", **conv.b()))["messages"]
        assert [m["message"] for m in msgs] == ["via env db"]
    assert db.is_file()
    assert not (bridge.tmp / "envdb.sqlite.key").exists(), "no key file expected when MCP_BRIDGE_KEY is set"
    assert not bridge.db.exists()
