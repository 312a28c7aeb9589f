"""Encryption at rest (issue 16): what a copy of the database says.

Agents are real `mcp-bridge serve` processes driven by the official MCP SDK. A unique marker
sent as a message, a file path, a status note and an overseer's post must be readable by the
agents and absent from every byte of the database (the SQLite file with its -wal and -shm, or
every row of a PostgreSQL database); a sealed value moved to another row must not open; a
purge destroys the conversation's data key; a database written before encryption is sealed in
place at start, and a start killed half-way resumes.
"""

from __future__ import annotations

import json
import secrets
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import assert_absent, create_conv

pytestmark = pytest.mark.anyio

NO_LIMITS = {"MCP_BRIDGE_RATE_LIMIT": "off", "MCP_BRIDGE_READ_RATE_LIMIT": "off"}
PREFIX = "mcpb-sealed:v1:"


def marker() -> str:
    return f"zebra-{secrets.token_hex(8)}-marker"


async def test_a_marker_is_readable_by_agents_and_in_no_byte_of_the_database(bridge):
    body, path, note, post = marker(), marker(), marker(), marker()
    async with bridge.agent("A", **NO_LIMITS) as a, bridge.agent("B", **NO_LIMITS) as b:
        conv = await create_conv(a, "backend", "frontend")
        await a.ok("send_to_partner", **conv.a(message=f"please look at {body}", files_involved=[f"src/{path}.rs"]))
        await a.ok("update_my_status", **conv.a(status="working", note=f"busy with {note}"))
        proc = bridge.cli("post", conv.id, f"overseer says {post}")
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")

        got = (await b.ok("check_messages", **conv.b()))["messages"]
        assert [m["message"] for m in got] == [f"please look at {body}", f"overseer says {post}"]
        assert got[0]["files_involved"] == [f"src/{path}.rs"]
        status = await b.ok("check_partner_status", **conv.b())
        assert note in json.dumps(status)

        # While the servers still run (the WAL not yet checkpointed) and after they stop.
        needles = {"body": body, "file": path, "note": note, "post": post}
        assert_absent(needles, bridge.raw_db_bytes(), "with the servers running")
    assert_absent(needles, bridge.raw_db_bytes(), "after the servers stopped")
    rows = bridge.query("SELECT body, files FROM messages")
    assert rows and all(r[0].startswith(PREFIX) and r[1].startswith(PREFIX) for r in rows)
    # The overseer's view opens them again.
    shown = bridge.cli("show", conv.id, "--json")
    assert shown.returncode == 0, shown.stderr.decode(errors="replace")
    assert body in shown.stdout.decode() and post in shown.stdout.decode()


@pytest.mark.sqlite_only("moves a sealed value between rows of the SQLite file with sqlite3")
async def test_a_sealed_body_moved_to_another_row_does_not_open(bridge):
    first, second = marker(), marker()
    async with bridge.agent("A", **NO_LIMITS) as a, bridge.agent("B", **NO_LIMITS) as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message=first))
        await a.ok("send_to_partner", **conv.a(message=second))
        seqs = [r[0] for r in bridge.query("SELECT seq FROM messages ORDER BY seq")]
        conn = sqlite3.connect(bridge.db, timeout=30)
        conn.execute("UPDATE messages SET body = (SELECT body FROM messages WHERE seq = ?) WHERE seq = ?",
                     (seqs[0], seqs[1]))
        conn.commit()
        conn.close()
        result = await b.call("check_messages", conv.b())
        assert result.is_error, result
        text = json.dumps(result.model_dump(mode="json"))
        assert "internal" in text
        assert first not in text and second not in text
        # Nothing was delivered by the failed call: the messages are still pending.
        pending = bridge.query("SELECT count(*) FROM deliveries WHERE delivered_at IS NULL")[0][0]
        assert pending == 2
    shown = bridge.cli("show", conv.id, "--json")
    assert shown.returncode != 0
    assert first not in shown.stdout.decode() + shown.stderr.decode()


async def test_a_purge_destroys_the_conversations_data_key(bridge):
    text = marker()
    async with bridge.agent("A", **NO_LIMITS) as a:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message=text))
        other = await create_conv(a)
    assert bridge.query("SELECT count(*) FROM conversation_keys")[0][0] == 2
    assert bridge.cli("close", conv.id).returncode == 0
    done = bridge.cli("cleanup", "--json")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert [r[0] for r in bridge.query("SELECT conversation_id FROM conversation_keys")] == [other.id]
    audit = bridge.cli("audit", "--json", "--action", "conversations.purge")
    entry = json.loads(audit.stdout.decode().splitlines()[0])
    assert entry["detail"]["deleted"]["data_keys"] == 1, entry
    assert_absent({"body": text}, bridge.raw_db_bytes(), "after the purge")


def _legacy_rows(bridge, conv_id: str, n: int, text: str) -> None:
    """Rows as a bridge before encryption at rest wrote them: plaintext, and no data key."""
    conn = sqlite3.connect(bridge.db, timeout=30)
    conn.execute("DELETE FROM conversation_keys")
    conn.execute("UPDATE status SET note = ? WHERE conversation_id = ?", (f"note {text}", conv_id))
    for i in range(n):
        cur = conn.execute(
            "INSERT INTO messages (conversation_id, sender, body, action_type, files, redactions, recipients, "
            "reply_to, created_at) VALUES (?, 'a', ?, 'info', ?, '[]', '[\"b\"]', NULL, ?)",
            (conv_id, f"legacy {i} {text}", json.dumps([f"f{i}-{text}.rs"]), int(time.time() * 1000)))
        conn.execute("INSERT INTO deliveries (message_seq, conversation_id, recipient) VALUES (?, ?, 'b')",
                     (cur.lastrowid, conv_id))
    conn.execute("UPDATE conversations SET message_count = message_count + ? WHERE id = ?", (n, conv_id))
    conn.commit()
    conn.close()


@pytest.mark.sqlite_only("writes legacy plaintext rows into the SQLite file with sqlite3")
async def test_a_plaintext_database_is_sealed_at_start_and_a_killed_start_resumes(bridge):
    text = marker()
    async with bridge.agent("A", **NO_LIMITS) as a:
        conv = await create_conv(a)
        await a.ok("update_my_status", **conv.a(status="working", note="x"))
    n = 6000
    _legacy_rows(bridge, conv.id, n, text)
    assert text.encode() in bridge.raw_db_bytes()["bridge.db"]

    # A start killed in the middle of the sealing leaves every row readable, sealed or not.
    env = {"PATH": "/usr/bin:/bin"} | bridge.base_env()
    proc = subprocess.Popen([str(bridge.bin), "list", "--db", str(bridge.db)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sealed = bridge.query(f"SELECT count(*) FROM messages WHERE body LIKE '{PREFIX}%'")[0][0]
        if sealed >= 200 or proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sealed = bridge.query(f"SELECT count(*) FROM messages WHERE body LIKE '{PREFIX}%'")[0][0]
    assert sealed % 200 == 0, f"a batch is all or nothing: {sealed} sealed"

    # The next start finishes; every row is sealed, readable, and the marker is gone from the files.
    async with bridge.agent("B", **NO_LIMITS) as b:
        got = []
        while True:
            page = (await b.ok("check_messages", **conv.b()))["messages"]
            if not page:
                break
            got.extend(page)
        assert [m["message"] for m in got] == [f"legacy {i} {text}" for i in range(n)]
        assert got[5]["files_involved"] == [f"f5-{text}.rs"]
        status = await b.ok("check_partner_status", **conv.b())
        assert f"note {text}" in json.dumps(status)
    unsealed = bridge.query(f"SELECT count(*) FROM messages WHERE body NOT LIKE '{PREFIX}%' "
                            f"OR files NOT LIKE '{PREFIX}%'")[0][0]
    assert unsealed == 0
    assert bridge.query("SELECT count(*) FROM conversation_keys")[0][0] == 1
    assert_absent({"marker": text}, bridge.raw_db_bytes(), "after the sealing finished")
