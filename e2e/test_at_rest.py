"""Encryption at rest (issue 16): what a copy of the database says.

Agents are real `mcp-bridge serve` processes driven by the official MCP SDK. A unique marker
sent as a message, a file path, a status note and an overseer's post must be readable by the
agents and absent from every byte of the database (the SQLite file with its -wal and -shm, or
every row of a PostgreSQL database); a sealed value moved to another row must not open; a
purge destroys the conversation's data key; a database written before encryption is sealed in
place at start, and a start killed half-way resumes.
"""

from __future__ import annotations

import glob
import json
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import assert_absent, create_conv

pytestmark = pytest.mark.anyio

NO_LIMITS = {"MCP_BRIDGE_RATE_LIMIT": "off", "MCP_BRIDGE_READ_RATE_LIMIT": "off"}
PREFIX = "mcpb-sealed:v1:"


def _cli(bridge, *args: str):
    """The overseer's CLI on the test's database, unless the call names another."""
    if "--db" not in args:
        args = (*args, "--db", str(bridge.db))
    return bridge.cli(*args)


def pg_dump(url: str) -> bytes:
    """`pg_dump` of the test's database: what an operator's backup holds. The newest Debian
    server directory first (the one scripts/with-postgres runs), then PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"),
                   key=lambda p: int(re.search(r"/(\d+)/bin", p).group(1)), reverse=True)
    binary = found[0] if found else shutil.which("pg_dump")
    assert binary, "pg_dump not found"
    proc = subprocess.run([binary, "--dbname", url], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def marker() -> str:
    return f"zebra-{secrets.token_hex(8)}-marker"


async def test_a_marker_is_readable_by_agents_and_in_no_byte_of_the_database(bridge):
    body, path, note, post = marker(), marker(), marker(), marker()
    async with bridge.agent("A", **NO_LIMITS) as a, bridge.agent("B", **NO_LIMITS) as b:
        conv = await create_conv(a, "backend", "frontend")
        await a.ok("send_to_partner", **conv.a(message=f"please look at {body}", files_involved=[f"src/{path}.rs"]))
        await a.ok("update_my_status", **conv.a(status="working", note=f"busy with {note}"))
        proc = _cli(bridge, "post", conv.id, f"overseer says {post}")
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
    if bridge.pg is not None:
        dump = pg_dump(bridge.pg.url)
        assert PREFIX.encode() in dump, "the dump holds the sealed rows"
        assert_absent(needles, {"pg_dump": dump}, "in a pg_dump")
    rows = bridge.query("SELECT body, files FROM messages")
    assert rows and all(r[0].startswith(PREFIX) and r[1].startswith(PREFIX) for r in rows)
    # The overseer's view opens them again.
    shown = _cli(bridge, "show", conv.id, "--json")
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
    shown = _cli(bridge, "show", conv.id, "--json")
    assert shown.returncode != 0
    assert first not in shown.stdout.decode() + shown.stderr.decode()


async def test_a_purge_destroys_the_conversations_data_key(bridge):
    text = marker()
    async with bridge.agent("A", **NO_LIMITS) as a:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message=text))
        other = await create_conv(a)
    assert bridge.query("SELECT count(*) FROM conversation_keys")[0][0] == 2
    assert _cli(bridge, "close", conv.id).returncode == 0
    done = _cli(bridge, "cleanup", "--json")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert [r[0] for r in bridge.query("SELECT conversation_id FROM conversation_keys")] == [other.id]
    audit = _cli(bridge, "audit", "--json", "--action", "conversations.purge")
    entry = json.loads(audit.stdout.decode().splitlines()[0])
    assert entry["detail"]["deleted"]["data_keys"] == 1, entry
    assert_absent({"body": text}, bridge.raw_db_bytes(), "after the purge")


def _legacy_rows(bridge, conv_id: str, n: int, text: str) -> None:
    """Rows as a bridge before encryption at rest wrote them: plaintext, no data key, and the
    database not yet marked as sealed."""
    conn = sqlite3.connect(bridge.db, timeout=30)
    conn.execute("DELETE FROM conversation_keys")
    conn.execute("DELETE FROM reseal_done")
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
    assert 0 < sealed < n, f"the start was to be killed mid-way: {sealed} of {n} sealed"

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


@pytest.mark.sqlite_only("holds the SQLite file's write lock from the test")
async def test_a_start_on_a_sealed_database_reads_without_taking_the_write_lock(bridge):
    # Every start asks whether legacy rows are left to seal. Once the database says none
    # are, the question is a read: an overseer's `list` runs while another process holds
    # the write lock (a long write, or a file this user may only read).
    async with bridge.agent("A", **NO_LIMITS) as a:
        await create_conv(a)
    holder = sqlite3.connect(bridge.db, timeout=0, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        out = _ok(bridge.cli("list", "--json", "--db", str(bridge.db), timeout=30))
        assert json.loads(out), "the conversation is listed"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _ok(proc) -> str:
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, f"exit {proc.returncode}: {out}{proc.stderr.decode(errors='replace')}"
    return out


@pytest.mark.sqlite_only("copies the SQLite file and its key file")
async def test_key_rotate_keeps_every_message_readable_and_the_old_key_useless(bridge):
    before, after = marker(), marker()
    key_file = bridge.db.with_name("bridge.db.key")
    async with bridge.agent("A", **NO_LIMITS) as a, bridge.agent("B", **NO_LIMITS) as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message=before))
        old_key = key_file.read_bytes()

        rotated = json.loads(_ok(_cli(bridge, "key", "rotate", "--json")))
        assert rotated["data_keys"] == 1 and rotated["from"] != rotated["to"]
        text = key_file.read_text()
        assert text.splitlines()[0] == old_key.decode().splitlines()[0], "the server key itself stays"
        assert "\nkek " in text and "kek-previous" not in text

        # Online: both servers started before the rotation carry on, old and new conversations alike.
        got = (await b.ok("check_messages", **conv.b()))["messages"]
        assert [m["message"] for m in got] == [before]
        await a.ok("send_to_partner", **conv.a(message=after))
        assert [m["message"] for m in (await b.ok("check_messages", **conv.b()))["messages"]] == [after]
        fresh = await create_conv(a)
        await a.ok("send_to_partner", **fresh.a(message="new conversation"))
        assert [m["message"] for m in (await b.ok("check_messages", **fresh.b()))["messages"]] == ["new conversation"]

    audit = json.loads(_ok(_cli(bridge, "audit", "--json", "--action", "key.rotate")).splitlines()[0])
    assert audit["detail"]["to"] == rotated["to"]

    # The old key file, with the database as it is now, opens nothing.
    copy = bridge.tmp / "copy.db"
    _ok(_cli(bridge, "backup", str(copy)))
    old = bridge.tmp / "old.key"
    old.write_bytes(old_key)
    old.chmod(0o600)
    shown = _cli(bridge, "show", conv.id, "--json", "--db", str(copy), "--key-file", str(old))
    out = shown.stdout.decode() + shown.stderr.decode()
    assert shown.returncode != 0, out
    assert before not in out and after not in out
    # The current one does.
    assert before in _ok(_cli(bridge, "show", conv.id, "--json"))


@pytest.mark.sqlite_only("backs up and restores SQLite files with their key file")
async def test_a_backup_taken_before_a_purge_cannot_yield_the_purged_messages(bridge):
    purged, kept = marker(), marker()
    async with bridge.agent("A", **NO_LIMITS) as a:
        doomed = await create_conv(a)
        await a.ok("send_to_partner", **doomed.a(message=purged))
        other = await create_conv(a)
        await a.ok("send_to_partner", **other.a(message=kept))
    early = bridge.tmp / "early.db"
    _ok(_cli(bridge, "backup", str(early)))
    early_with_key = bridge.tmp / "early-with-key.db"
    _ok(_cli(bridge, "backup", str(early_with_key), "--with-key"))

    _ok(_cli(bridge, "close", doomed.id))
    report = json.loads(_ok(_cli(bridge, "cleanup", "--json")))
    assert report["conversations"] == [doomed.id]
    assert report["deleted"]["data_keys"] == 1
    assert report["earlier_backups_shredded"] is True
    assert kept in _ok(_cli(bridge, "show", other.id, "--json"))

    # restore with the current key refuses the early copy, and says which key it needs.
    target = bridge.tmp / "restored" / "bridge.db"
    target.parent.mkdir()
    refused = _cli(bridge, "restore", str(early), "--db", str(target), "--key-file", str(bridge.db.with_name("bridge.db.key")))
    err = refused.stderr.decode()
    assert refused.returncode != 0 and "--with-key" in err, err
    assert purged not in err and not target.exists()

    # Read directly with the current key: the purged conversation does not open.
    current_key = bridge.tmp / "current.key"
    current_key.write_bytes(bridge.db.with_name("bridge.db.key").read_bytes())
    current_key.chmod(0o600)
    attempt = _cli(bridge, "show", doomed.id, "--json", "--db", str(early), "--key-file", str(current_key))
    out = attempt.stdout.decode() + attempt.stderr.decode()
    assert attempt.returncode != 0 and purged not in out, out
    assert purged.encode() not in early.read_bytes()

    # A backup saved with its key file stays a full backup: that is the operator's choice.
    full = bridge.tmp / "full" / "bridge.db"
    full.parent.mkdir()
    _ok(_cli(bridge, "restore", str(early_with_key), "--with-key", "--db", str(full)))
    assert purged in _ok(_cli(bridge, "show", doomed.id, "--json", "--db", str(full)))


async def test_close_purge_destroys_the_data_key_at_once(bridge):
    text = marker()
    async with bridge.agent("A", **NO_LIMITS) as a:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message=text))
    out = json.loads(_ok(_cli(bridge, "close", conv.id, "--purge", "--json")))
    assert out["closed"]["changed"] is True
    assert out["purged"]["conversations"] == [conv.id]
    assert out["purged"]["deleted"]["data_keys"] == 1
    assert bridge.query("SELECT count(*) FROM conversation_keys")[0][0] == 0
    assert bridge.count("messages") == 0
    assert_absent({"body": text}, bridge.raw_db_bytes(), "after close --purge")
