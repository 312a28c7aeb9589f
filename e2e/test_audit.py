"""6. The audit hash chain: `mcp-bridge audit verify` detects edits and deletions."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import create_conv

pytestmark = pytest.mark.anyio


async def make_session(bridge) -> None:
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message="first", action_type="proposal"))
        await b.ok("check_messages", **conv.b())
        await b.ok("update_my_status", **conv.b(status="working", note="reviewing"))
        await b.ok("send_to_partner", **conv.b(message="looks good", action_type="answer"))
        await a.ok("check_messages", **conv.a())
        await a.ok("check_partner_status", **conv.a())
        await a.ok("update_my_status", **conv.a(status="complete"))
        await b.call("send_to_partner", conv.b(token="mcpb_" + "A" * 43, message="bad token"))


def copy_db(src: Path, dst: Path) -> Path:
    """Copy the closed database (and its key file) so each tamper starts from the intact chain."""
    for suffix in ("", "-wal", "-shm", ".key"):
        s = Path(str(src) + suffix)
        if s.exists():
            shutil.copy2(s, Path(str(dst) + suffix))
    return dst


def audit_triggers(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'")]
    finally:
        conn.close()


def tamper(db: Path, sql: str, params: tuple) -> None:
    conn = sqlite3.connect(db)
    try:
        for name in audit_triggers(db):
            conn.execute(f'DROP TRIGGER "{name}"')
        cur = conn.execute(sql, params)
        assert cur.rowcount == 1
        conn.commit()
    finally:
        conn.close()


def verify(bridge, db: Path):
    proc = bridge.cli("audit", "verify", "--db", str(db))
    return proc.returncode, proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


def names_seq(output: str, *seqs: int) -> bool:
    return any(re.search(rf"(?<![0-9]){s}(?![0-9])", output) for s in seqs)


@pytest.mark.sqlite_only("edits copies of the SQLite file and its triggers with sqlite3")
async def test_audit_chain_verifies_and_detects_tampering(bridge):
    await make_session(bridge)

    rows = bridge.query("SELECT seq, actor, action, conversation_id, detail, prev_hash, hash FROM audit ORDER BY seq")
    assert len(rows) >= 3, f"expected audit rows for the session's actions, got {len(rows)}"
    seqs = [r[0] for r in rows]
    assert seqs == sorted(seqs)
    # chain linkage is visible in the rows themselves
    for prev, cur in zip(rows, rows[1:]):
        assert cur[5] == prev[6], f"audit seq {cur[0]}: prev_hash does not equal the hash of seq {prev[0]}"

    code, out = verify(bridge, bridge.db)
    assert code == 0, f"audit verify failed on an intact chain (exit {code}): {out}"

    # the triggers forbid UPDATE and DELETE
    triggers = audit_triggers(bridge.db)
    assert triggers, "no triggers on the audit table"
    conn = sqlite3.connect(bridge.db)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute("UPDATE audit SET detail = 'x' WHERE seq = ?", (seqs[0],))
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute("DELETE FROM audit WHERE seq = ?", (seqs[0],))
        conn.rollback()
    finally:
        conn.close()
    assert verify(bridge, bridge.db)[0] == 0

    middle = seqs[len(seqs) // 2]

    # 1) edit one row's detail
    edited = copy_db(bridge.db, bridge.tmp / "edited.db")
    tamper(edited, "UPDATE audit SET detail = COALESCE(detail, '') || ' tampered' WHERE seq = ?", (middle,))
    code, out = verify(bridge, edited)
    assert code != 0, f"audit verify accepted an edited row (seq {middle}): {out}"
    assert names_seq(out, middle), f"verify output should name the edited seq {middle}: {out!r}"

    # 2) delete a middle row: the first broken entry is the gap (seq {middle}) or the row after it
    deleted = copy_db(bridge.db, bridge.tmp / "deleted.db")
    tamper(deleted, "DELETE FROM audit WHERE seq = ?", (middle,))
    nxt = seqs[seqs.index(middle) + 1]
    code, out = verify(bridge, deleted)
    assert code != 0, f"audit verify accepted a deleted row (seq {middle}): {out}"
    assert names_seq(out, middle, nxt), f"verify output should name seq {middle} or {nxt}: {out!r}"

    # 3) edit another column (actor) of an early row
    rehashed = copy_db(bridge.db, bridge.tmp / "rehashed.db")
    first = seqs[1]
    tamper(rehashed, "UPDATE audit SET actor = COALESCE(actor, '') || 'x' WHERE seq = ?", (first,))
    code, out = verify(bridge, rehashed)
    assert code != 0 and names_seq(out, first), f"edited actor at seq {first} not reported: exit {code}, {out!r}"

    # the original is still intact
    assert verify(bridge, bridge.db)[0] == 0


# ---- issue 10: hostile ids, floods, the overseer's terminal ----

HOSTILE_IDS = [
    "AKIAIOSFODNN7EXAMPLE",                              # an AWS key id pasted into the wrong field
    "ghp_" + "0123456789abcdefghijklmnopqrstuvwxyz"[:36],  # a GitHub token
    "conv_\x1b[2K\r\x1b[1Agit log",                      # erase the line, move up, print something innocent
    "conv_" + "0" * 32,                                  # the right shape, but no such conversation
]


async def test_a_refused_call_stores_no_hostile_id_and_the_cli_prints_none(bridge):
    async with bridge.agent("A") as a:
        conv = await create_conv(a)
        for cid in HOSTILE_IDS:
            for tool in ("send_to_partner", "check_messages"):
                args = conv.a(conversation_id=cid)
                if tool == "send_to_partner":
                    args["message"] = "hi"
                result = await a.call(tool, args)
                assert result.is_error, f"{tool} with a hostile conversation_id succeeded"
    rows = bridge.query("SELECT actor, action, conversation_id, detail FROM audit")
    blob = repr(rows)
    for cid in HOSTILE_IDS:
        assert cid not in blob, f"the hostile id {cid!r} reached the audit trail: {blob}"
    assert "AKIA" not in blob and "ghp_" not in blob and "\\x1b" not in blob, blob
    for args in (("audit",), ("audit", "--json"), ("list",), ("show", conv.id)):
        out = bridge.cli(*args, "--db", str(bridge.db))
        assert out.returncode == 0, out.stderr
        text = out.stdout.decode()
        assert not any(ord(ch) < 0x20 and ch not in "\n" or 0x7F <= ord(ch) <= 0x9F for ch in text), (args, text)


async def test_a_flood_of_refused_calls_adds_a_bounded_number_of_audit_rows(bridge):
    async with bridge.agent("A") as a:
        conv = await create_conv(a)
        before = bridge.count("audit")
        for _ in range(300):
            result = await a.call("send_to_partner", conv.a(token="mcpb_" + "A" * 43, message="x"))
            assert result.is_error
        during = bridge.count("audit") - before
        assert during <= 2, f"300 refusals in one window added {during} audit rows"
    # The overseer's read writes the pending count; nothing is lost.
    out = bridge.cli("audit", "--action", "*.refused", "--json", "--db", str(bridge.db))
    assert out.returncode == 0, out.stderr
    entries = [json.loads(line) for line in out.stdout.decode().splitlines()]
    total = sum(e["detail"].get("repeats", 1) for e in entries)
    assert total == 300, entries
    assert verify(bridge, bridge.db)[0] == 0


async def test_create_conversation_is_limited_per_process(bridge):
    async with bridge.agent("A", MCP_BRIDGE_MAX_CREATES_PER_MINUTE="3") as a:
        for _ in range(3):
            await create_conv(a)
        error = await a.err("create_conversation", "rate_limited", {"my_role": "x", "partner_role": "y"})
        assert error.get("retry_after_seconds", 0) >= 1, error
    async with bridge.agent("B", MCP_BRIDGE_MAX_CREATES_PER_MINUTE="3") as b:
        await create_conv(b)  # another agent's process has its own budget
