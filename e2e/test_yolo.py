"""YOLO mode through real clients: the four stages, replay, tampering,
approval without a terminal, and the approval prompt driven through a real
pseudo-terminal (pexpect), rendered by a terminal emulator (pyte) to check that
what the screen shows is what runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pexpect
import pyte
import pytest

from conftest import create_conv

pytestmark = pytest.mark.anyio


def yolo_env(bridge, **extra: str) -> dict[str, str]:
    ws = bridge.tmp / "ws"
    ws.mkdir(exist_ok=True)
    (ws / "hello.txt").write_text("hello from the workspace\n")
    return {"MCP_BRIDGE_YOLO": "1", "MCP_BRIDGE_YOLO_WORKSPACE": str(ws), **extra}


PASSPHRASE = "a long overseer passphrase"


def cli_env(bridge) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} | bridge.base_env()


def setup_passphrase(bridge, passphrase: str = PASSPHRASE) -> None:
    """`mcp-bridge yolo setup` in a real pseudo-terminal, once per database."""
    if Path(str(bridge.db) + ".overseer").exists():
        return
    child = pexpect.spawn(str(bridge.bin), ["yolo", "setup", "--db", str(bridge.db)], env=cli_env(bridge),
                          encoding="utf-8", timeout=60)
    child.expect(r"Passphrase \(not shown\): ")
    child.sendline(passphrase)
    child.expect(r"Again \(not shown\): ")
    child.sendline(passphrase)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert passphrase not in child.before, "the passphrase must not be echoed"


def approve_in_pty(bridge, proposal_id: str, phrase: str | None = None, code: str | None = None,
                   passphrase: str = PASSPHRASE, screen: pyte.Screen | None = None) -> tuple[int, str]:
    """Runs `mcp-bridge approve ID` in a real pseudo-terminal, answering the
    phrase, the one-time code and the overseer passphrase as a person would.
    With `screen`, everything written to the terminal is also fed to it."""
    setup_passphrase(bridge)
    child = pexpect.spawn(str(bridge.bin), ["approve", proposal_id, "--db", str(bridge.db)], env=cli_env(bridge),
                          encoding="utf-8", timeout=60, dimensions=(120, 220))
    if screen is not None:
        stream = pyte.Stream(screen)

        class Feed:
            def write(self, data: str) -> None:
                stream.feed(data)

            def flush(self) -> None:
                pass

        child.logfile_read = Feed()
    child.expect(r"type: (approve prop_[0-9a-f]+)\r?\n> ")
    child.sendline(phrase if phrase is not None else child.match.group(1))
    idx = child.expect([r"One-time code: (\d{3}) (\d{3})\r?\nType the code to confirm:\r?\n> ", pexpect.EOF])
    if idx == 0:
        child.sendline(code if code is not None else child.match.group(1) + child.match.group(2))
        for _ in range(3):
            idx = child.expect([r"Overseer passphrase \(not shown\): ", pexpect.EOF])
            if idx == 1:
                break
            child.sendline(passphrase)
    if not child.eof():
        child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before if isinstance(child.before, str) else ""


async def test_execution_tools_are_hidden_and_refused_without_opt_in(bridge):
    async with bridge.agent("A") as a:
        names = {t.name for t in (await a.session.list_tools()).tools}
        assert "propose_command" not in names and "execute_approved" not in names
        conv = await create_conv(a)
        err = await a.err("propose_command", "yolo_disabled",
                          conv.a(command="ls", mode="safe", reason="look"))
        assert "MCP_BRIDGE_YOLO=1" in err["message"]


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_four_stages_then_exactly_once(bridge):
    env = yolo_env(bridge)
    async with bridge.agent("A", **env) as a, bridge.agent("B", **env) as b:
        tools = {t.name: t for t in (await a.session.list_tools()).tools}
        assert {"propose_command", "execute_approved"} <= tools.keys()
        assert tools["execute_approved"].annotations.destructive_hint is True
        conv = await create_conv(a)

        # Stage 2: a proposal is stored and shown to the partner; nothing runs.
        prop = await a.ok("propose_command", **conv.a(command="cat hello.txt | wc -l", mode="safe",
                                                       reason="count lines"))
        assert prop["allowed"] is True and prop["state"] == "pending"
        pid = prop["proposal_id"]
        inbox = await b.ok("check_messages", **conv.b())
        assert inbox["messages"][0]["action_type"] == "proposal"
        assert pid in inbox["messages"][0]["message"]
        await a.err("execute_approved", "not_approved", conv.a(proposal_id=pid))

        # Stage 3: the human approves at a terminal (phrase, then code).
        status, _ = approve_in_pty(bridge, pid)
        assert status == 0
        assert bridge.query("SELECT state FROM proposals WHERE id = ?", (pid,))[0][0] == "approved"

        # Stage 4: runs once, sandboxed, output to both sides.
        ran = await a.ok("execute_approved", **conv.a(proposal_id=pid))
        assert ran["exit_code"] == 0 and ran["stdout"].strip() == "1", ran
        assert ran["dry_run"] is False
        assert "enforced" in ran["sandbox"] or "unavailable" in ran["sandbox"] or "partial" in ran["sandbox"]
        out = await b.ok("check_messages", **conv.b())
        assert any(pid in m["message"] and "exited with status 0" in m["message"] for m in out["messages"])

        # Replay is refused.
        await a.err("execute_approved", "approval_used", conv.a(proposal_id=pid))
        # The partner cannot run the proposer's approval.
        await b.err("execute_approved", "proposal_not_found", conv.b(proposal_id=pid))

    actions = [r[0] for r in bridge.query("SELECT action FROM audit ORDER BY seq")]
    for wanted in ("yolo.enabled", "command.propose", "command.approve", "command.execute.start",
                   "command.execute", "command.execute.refused"):
        assert wanted in actions, (wanted, actions)
    assert bridge.cli("audit", "verify", "--db", str(bridge.db)).returncode == 0


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_a_command_changed_after_approval_does_not_run(bridge):
    env = yolo_env(bridge)
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        pid = (await a.ok("propose_command", **conv.a(command="ls", mode="safe", reason="list")))["proposal_id"]
        assert approve_in_pty(bridge, pid)[0] == 0
        conn = sqlite3.connect(bridge.db)
        conn.execute("UPDATE proposals SET command = 'cat /etc/passwd' WHERE id = ?", (pid,))
        conn.commit()
        conn.close()
        await a.err("execute_approved", "approval_mismatch", conv.a(proposal_id=pid))


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_wrong_phrase_or_code_approves_nothing(bridge):
    env = yolo_env(bridge)
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        pid = (await a.ok("propose_command", **conv.a(command="ls", mode="safe", reason="list")))["proposal_id"]
        status, _ = approve_in_pty(bridge, pid, phrase="yes")
        assert status != 0
        status, _ = approve_in_pty(bridge, pid, code="000000x")
        assert status != 0
        assert bridge.query("SELECT state FROM proposals WHERE id = ?", (pid,))[0][0] == "pending"
        assert bridge.count("approvals") == 0
        await a.err("execute_approved", "not_approved", conv.a(proposal_id=pid))
        refusals = bridge.query("SELECT count(*) FROM audit WHERE action = 'command.approve.refused'")[0][0]
        assert refusals == 2


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_approval_without_a_terminal_is_refused(bridge):
    env = yolo_env(bridge)
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        pid = (await a.ok("propose_command", **conv.a(command="ls", mode="safe", reason="list")))["proposal_id"]
        # An agent with a shell but no terminal pipes the answers in.
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} | bridge.base_env()
        proc = subprocess.run([str(bridge.bin), "approve", pid, "--db", str(bridge.db)],
                              input=f"approve {pid[:13]}\n123456\n".encode(), capture_output=True,
                              timeout=30, env=full_env, start_new_session=True)
        assert proc.returncode != 0
        assert b"terminal" in proc.stderr
        assert bridge.count("approvals") == 0
        await a.err("execute_approved", "not_approved", conv.a(proposal_id=pid))


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_the_validator_refuses_and_nothing_can_approve_it(bridge):
    env = yolo_env(bridge)
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        prop = await a.ok("propose_command", **conv.a(command="sudo rm -rf ~", mode="yolo", reason="clean"))
        assert prop["allowed"] is False and prop["state"] == "refused"
        env2 = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} | bridge.base_env()
        child = pexpect.spawn(str(bridge.bin), ["approve", prop["proposal_id"], "--db", str(bridge.db)],
                              env=env2, encoding="utf-8", timeout=30)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus != 0
        assert "refused" in child.before


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_dry_run_shows_what_would_run(bridge):
    env = yolo_env(bridge, MCP_BRIDGE_YOLO_DRY_RUN="1")
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        pid = (await a.ok("propose_command", **conv.a(command="ls -la", mode="safe", reason="list")))["proposal_id"]
        assert approve_in_pty(bridge, pid)[0] == 0
        for _ in range(2):
            out = await a.ok("execute_approved", **conv.a(proposal_id=pid))
            assert out["dry_run"] is True and out["plan"] == "ls -la" and out["exit_code"] is None
        assert bridge.query("SELECT used_at FROM approvals WHERE proposal_id = ?", (pid,))[0][0] is None


def test_yolo_check_cli(bridge):
    ok = bridge.cli("yolo", "check", "--mode", "safe", "--", "grep -rn main src | head -5")
    assert ok.returncode == 0, ok.stdout
    bad = bridge.cli("yolo", "check", "--mode", "restricted", "--", "git push --force origin main")
    assert bad.returncode == 1 and b"refused" in bad.stdout


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_an_expired_approval_does_not_run(bridge):
    # Five real minutes are too long for a test: move the approval's expiry
    # into the past instead (the seal covers it too, but expiry is checked
    # first, so the agent is told the approval expired).
    env = yolo_env(bridge)
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        pid = (await a.ok("propose_command", **conv.a(command="ls", mode="safe", reason="list")))["proposal_id"]
        assert approve_in_pty(bridge, pid)[0] == 0
        approved_at, expires_at = bridge.query(
            "SELECT approved_at, expires_at FROM approvals WHERE proposal_id = ?", (pid,))[0]
        assert expires_at - approved_at == 300_000, "approvals live exactly 5 minutes"
        conn = sqlite3.connect(bridge.db)
        conn.execute("UPDATE approvals SET expires_at = ? WHERE proposal_id = ?", (approved_at - 1, pid))
        conn.commit()
        conn.close()
        err = await a.err("execute_approved", "approval_expired", conv.a(proposal_id=pid))
        assert "propose the command again" in err["message"]
        assert bridge.query("SELECT used_at FROM approvals WHERE proposal_id = ?", (pid,))[0][0] is None


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_propose_refuses_control_characters_naming_the_field(bridge):
    env = yolo_env(bridge)
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        err = await a.err("propose_command", "invalid_argument",
                          conv.a(command="cat hello.txt '\r\x1b[2Kgit log'", mode="safe", reason="look"))
        assert "command" in err["message"] and "U+000D" in err["message"]
        assert "\x1b" not in json.dumps(err) and "\r" not in err["message"]
        err = await a.err("propose_command", "invalid_argument",
                          conv.a(command="ls", mode="safe", reason="fine\u202etxt"))
        assert "reason" in err["message"] and "U+202E" in err["message"]
        assert bridge.count("proposals") == 0


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_approval_screen_shows_what_will_run(bridge):
    """A proposal whose stored text hides a word behind a carriage return and an
    erase-line sequence (possible before proposals were checked, or written into
    the database by hand): the terminal must show the re-parsed plan, escaped,
    and that plan must be exactly what execute_approved runs."""
    env = yolo_env(bridge)
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        pid = (await a.ok("propose_command", **conv.a(command="ls", mode="safe", reason="list")))["proposal_id"]
        hostile = "cat hello.txt '\r\x1b[2Kgit log'"
        # The text columns are sealed at rest; the hand-written row is plaintext (as a database
        # from before encryption at rest holds), which the bridge still reads.
        [listed] = [json.loads(line) for line in bridge.cli("proposals", "--json", "--db", str(bridge.db))
                    .stdout.decode().splitlines()]
        mode, cwd = listed["mode"], listed["cwd"]
        workspace = os.path.realpath(env["MCP_BRIDGE_YOLO_WORKSPACE"])
        canonical = json.dumps([hostile, mode, workspace, cwd], separators=(",", ":"), ensure_ascii=False)
        plan_hash = hashlib.sha256(canonical.encode()).hexdigest()
        conn = sqlite3.connect(bridge.db)
        conn.execute("UPDATE proposals SET command = ?, reason = ?, workspace = ?, cwd = ?, plan_hash = ? WHERE id = ?",
                     (hostile, "harmless\r\x1b[2Kreason", workspace, cwd, plan_hash, pid))
        conn.commit()
        conn.close()

        screen = pyte.Screen(220, 120)
        status, _ = approve_in_pty(bridge, pid, screen=screen)
        assert status == 0
        shown = "\n".join(line.rstrip() for line in screen.display)
        ran = await a.ok("execute_approved", **conv.a(proposal_id=pid))
        # What the screen showed is what ran: the plan line, escapes and all.
        assert ran["plan"] == "cat hello.txt $'\\x0d\\x1b[2Kgit log'", ran["plan"]
        assert ran["plan"] in shown, shown
        assert "program  cat" in shown and "arg 1    hello.txt" in shown, shown
        assert "arg 2    $'\\x0d\\x1b[2Kgit log'" in shown, shown
        # Nothing was hidden: no line of the screen starts with the decoy.
        assert not any(line.lstrip().startswith("git log") for line in screen.display), shown
        assert "harmless\\r\\x1b[2Kreason" in shown, shown


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_approval_needs_the_overseer_passphrase(bridge):
    env = yolo_env(bridge)
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        pid = (await a.ok("propose_command", **conv.a(command="ls", mode="safe", reason="list")))["proposal_id"]
        # Before setup: nothing can be approved, and the refusal says what to do.
        child = pexpect.spawn(str(bridge.bin), ["approve", pid, "--db", str(bridge.db)], env=cli_env(bridge),
                              encoding="utf-8", timeout=60)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus != 0 and "yolo setup" in child.before, child.before
        # After setup: three wrong passphrases approve nothing, each audited.
        status, out = approve_in_pty(bridge, pid, passphrase="not the passphrase")
        assert status != 0 and "wrong 3 times" in out, out
        assert bridge.count("approvals") == 0
        misses = bridge.query("SELECT count(*) FROM audit WHERE action = 'command.approve.refused'")[0][0]
        assert misses == 4  # no passphrase set up, then three wrong ones
        await a.err("execute_approved", "not_approved", conv.a(proposal_id=pid))
        # The right one approves.
        assert approve_in_pty(bridge, pid)[0] == 0
        detail = bridge.query("SELECT detail FROM audit WHERE action = 'command.approve' ORDER BY seq DESC")[0][0]
        assert "overseer_passphrase" in detail
        mode = os.stat(str(bridge.db) + ".overseer").st_mode & 0o777
        assert mode == 0o600
        assert "argon2id" in Path(str(bridge.db) + ".overseer").read_text()
