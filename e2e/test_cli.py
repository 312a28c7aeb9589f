"""The overseer's CLI against a database that real server processes are writing.

Issue: "The overseer's management CLI: see, audit, clean up, rotate, export, back up".
Agents are real `mcp-bridge serve` processes driven by the official MCP SDK; the CLI is the
same binary run as a person runs it, while they write.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import pytest

from conftest import create_conv

pytestmark = pytest.mark.anyio

NO_LIMITS = {"MCP_BRIDGE_RATE_LIMIT": "off", "MCP_BRIDGE_READ_RATE_LIMIT": "off"}


def ok(proc) -> str:
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, f"exit {proc.returncode}: {out}{proc.stderr.decode(errors='replace')}"
    return out


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def bodies(bridge, db: Path, conv_id: str) -> set[str]:
    """The conversation's message bodies in `db`, opened with the key file beside it (bodies are
    sealed at rest, so the file itself says nothing)."""
    out = ok(bridge.cli("export", conv_id, "--db", str(db)))
    return {m["body"] for m in json.loads(out)["messages"]}


@pytest.mark.sqlite_only("backup and restore work on SQLite files; PostgreSQL is backed up with pg_dump")
async def test_backup_mid_burst_restores_everything_acknowledged_before_it(bridge):
    backup = bridge.tmp / "mid-burst.db"
    restored = bridge.tmp / "restored" / "bridge.db"
    restored.parent.mkdir()
    acked: list[str] = []
    acked_before_backup: set[str] = set()
    stop = anyio.Event()

    async with bridge.agent("A", **NO_LIMITS) as a, bridge.agent("B", **NO_LIMITS) as b:
        conv = await create_conv(a, "backend", "frontend")

        async def writer(agent, seat, name):
            n = 0
            while not stop.is_set():
                body = f"burst-{name}-{n}"
                args = conv.a(message=body) if seat == "a" else conv.b(message=body)
                await agent.ok("send_to_partner", **args)
                acked.append(body)
                n += 1

        async def overseer():
            nonlocal acked_before_backup
            while len(acked) < 40:
                await anyio.sleep(0.01)
            # Every message whose send returned before the backup starts must be in it.
            acked_before_backup = set(acked)
            proc = await anyio.to_thread.run_sync(
                lambda: bridge.cli("backup", str(backup), "--with-key", "--db", str(bridge.db))
            )
            assert "backup written" in ok(proc)
            after_backup = len(acked)
            assert "WARNING" in proc.stderr.decode(), "--with-key must warn that the key is the secret"

            # While the agents keep writing: list, show, stats and audit work.
            listed = json.loads(ok(await anyio.to_thread.run_sync(
                lambda: bridge.cli("list", "--json", "--db", str(bridge.db)))))
            assert [c["id"] for c in listed] == [conv.id]
            shown = ok(await anyio.to_thread.run_sync(
                lambda: bridge.cli("show", conv.id, "--db", str(bridge.db))))
            assert "burst-A-0" in shown and conv.a_token not in shown and conv.b_token not in shown
            stats = json.loads(ok(await anyio.to_thread.run_sync(
                lambda: bridge.cli("stats", "--json", "--db", str(bridge.db)))))
            assert stats["messages"] >= 40 and stats["active"] == 1

            # Restoring onto the database the servers have open is refused; nothing changes.
            before = bridge.count("conversations"), bridge.query("SELECT max(seq) FROM audit")[0][0]
            proc = await anyio.to_thread.run_sync(
                lambda: bridge.cli("restore", str(backup), "--with-key", "--db", str(bridge.db)))
            assert proc.returncode != 0, "restore onto a live database succeeded"
            assert "in use" in proc.stderr.decode(), proc.stderr.decode()
            assert bridge.count("conversations") == before[0]
            assert not list(bridge.tmp.glob("*.pre-restore-*"))
            while len(acked) < after_backup + 20:
                await anyio.sleep(0.01)
            stop.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(writer, a, "a", "A")
            tg.start_soon(writer, b, "b", "B")
            tg.start_soon(overseer)

        # The agents' own view is intact after all that.
        await b.ok("check_messages", **conv.b())

    assert len(acked) > len(acked_before_backup), "the burst should continue past the backup"
    assert integrity(backup) == "ok"
    ok(bridge.cli("audit", "verify", "--db", str(backup)))

    # Restore into a fresh location, with the key saved beside the backup.
    out = ok(bridge.cli("restore", str(backup), "--with-key", "--db", str(restored)))
    assert "audit chain intact" in out
    assert integrity(restored) == "ok"
    verify = ok(bridge.cli("audit", "verify", "--db", str(restored)))
    assert verify.startswith("audit chain intact")
    actions = [json.loads(l)["action"] for l in ok(bridge.cli(
        "audit", "--json", "--limit", "0", "--db", str(restored))).splitlines()]
    assert actions[-1] == "database.restore"
    # Reading the bodies (an export, itself audited) comes last: they are sealed in the files.
    missing = acked_before_backup - bodies(bridge, backup, conv.id)
    assert not missing, f"acknowledged before the backup but not in it: {sorted(missing)[:5]}"
    assert acked_before_backup <= bodies(bridge, restored, conv.id)

    # The live database recorded the backup, and its chain still verifies.
    live_actions = [json.loads(l)["action"] for l in ok(bridge.cli(
        "audit", "export", "--action", "database.*", "--db", str(bridge.db))).splitlines()]
    assert live_actions == ["database.backup"]
    ok(bridge.cli("audit", "verify", "--db", str(bridge.db)))


async def test_rotate_and_revoke_reach_running_agents(bridge):
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message="hello"))

        out = ok(bridge.cli("rotate", conv.id, "--session", "b", "--json", "--db", str(bridge.db)))
        new_b = json.loads(out)["token"]
        await b.err("check_messages", "invalid_token", conv.b())
        got = await b.ok("check_messages", **conv.b(token=new_b))
        assert [m["message"] for m in got["messages"]] == ["hello"]

        ok(bridge.cli("revoke", conv.id, "--session", "b", "--db", str(bridge.db)))
        await b.err("check_messages", "session_revoked", conv.b(token=new_b))

        ok(bridge.cli("close", conv.id, "--db", str(bridge.db)))
        await a.err("send_to_partner", "conversation_closed", conv.a(message="anyone?"))

    raw = bridge.raw_db_bytes()
    assert not any(new_b.encode() in blob for blob in raw.values()), "a clear token reached the database"
    ok(bridge.cli("audit", "verify", "--db", str(bridge.db)))


@pytest.mark.sqlite_only("refusals of a missing file, a foreign SQLite file and a backup over an existing file")
async def test_bad_input_fails_clearly_and_changes_nothing(bridge):
    async with bridge.agent("A") as a:
        await create_conv(a)
    snap = bridge.snapshot()

    proc = bridge.cli("show", "conv_" + "0" * 32, "--db", str(bridge.db))
    assert proc.returncode != 0 and b"no conversation has id" in proc.stderr

    missing = bridge.tmp / "missing" / "bridge.db"
    proc = bridge.cli("list", "--db", str(missing))
    assert proc.returncode != 0 and b"no such file" in proc.stderr
    assert not missing.parent.exists()

    other = bridge.tmp / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    proc = bridge.cli("stats", "--db", str(other))
    assert proc.returncode != 0 and b"not an mcp-bridge database" in proc.stderr

    existing = bridge.tmp / "existing.db"
    existing.write_bytes(b"keep me")
    proc = bridge.cli("backup", str(existing), "--db", str(bridge.db))
    assert proc.returncode != 0 and b"already exists" in proc.stderr
    assert existing.read_bytes() == b"keep me"

    assert bridge.snapshot() == snap
