"""Helpers for the teams (issue 18) end-to-end tests: spawning agents (optionally through a
wire tap), agent-mode calls that never carry a token, team creation, snapshots and readers.

Run as a script, this module is the wire tap itself:
`python teams_support.py LOGPREFIX REAL_BIN ARGS...` starts REAL_BIN ARGS..., copies its
stdin and stdout through unchanged and appends every byte of each direction to
`LOGPREFIX.in` (client -> server) and `LOGPREFIX.out` (server -> client). stderr is inherited.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

SELF = Path(__file__).resolve()

# --------------------------------------------------------------------------- the wire tap


def _pump(src_fd: int, dst_fd: int | None, log_path: str, close_dst) -> None:
    with open(log_path, "ab", buffering=0) as log:
        while True:
            try:
                chunk = os.read(src_fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            log.write(chunk)
            if dst_fd is not None:
                view = memoryview(chunk)
                while view:
                    try:
                        n = os.write(dst_fd, view)
                    except OSError:
                        dst_fd = None
                        break
                    view = view[n:]
    close_dst()


def _tap_main(argv: list[str]) -> int:
    prefix, real, *args = argv
    child = subprocess.Popen([real, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    def close_child_stdin():
        try:
            child.stdin.close()
        except OSError:
            pass

    def close_our_stdout():
        try:
            os.close(1)
        except OSError:
            pass

    t_in = threading.Thread(target=_pump, args=(0, child.stdin.fileno(), prefix + ".in", close_child_stdin), daemon=True)
    t_out = threading.Thread(target=_pump, args=(child.stdout.fileno(), 1, prefix + ".out", close_our_stdout), daemon=True)
    t_in.start()
    t_out.start()
    t_out.join()
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(_tap_main(sys.argv[1:]))


# --------------------------------------------------------------------------- test helpers (imported)

import anyio  # noqa: E402

from conftest import Agent, Bridge, ToolError, check_error, text_of  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from conftest import READ_TIMEOUT_S  # noqa: E402

OFF = {"MCP_BRIDGE_RATE_LIMIT": "off", "MCP_BRIDGE_READ_RATE_LIMIT": "off"}
CREDENTIAL = re.compile(r"^mcpa_[A-Za-z0-9_-]{43}$")
SEAT_IDS = "abcdefghijklmnop"

SEND_MESSAGE_KEYS = {"message_id", "recipients", "redacted", "stored_at"}
MESSAGE_KEYS = {"seq", "message", "from_role", "to", "reply_to", "conversation_id", "action_type",
                "files_involved", "sent_at", "redacted"}
PARTICIPANT_KEYS = {"session_id", "role", "status", "note", "last_heartbeat", "alive",
                    "seconds_since_heartbeat", "unread", "agent"}
MY_CONVERSATION_KEYS = {"conversation_id", "role", "session_id", "participants", "unread", "expires_at", "state"}
SEAT_KEYS = {"session_id", "role", "token"}


class TeamAgent(Agent):
    """An Agent; in agent mode (`no_token=True`) it refuses to send `token` or `session_id`."""

    no_token: bool = False

    async def call(self, tool: str, args: dict[str, Any] | None):
        if self.no_token and args:
            assert "token" not in args and "session_id" not in args, (
                f"{self.name}: test bug: an agent-mode call to {tool} carries token/session_id")
        return await super().call(tool, args)

    async def err_any(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """A call that must be refused, with a code the contract leaves open: check the shape only."""
        result = await self.call(tool, args)
        assert result.is_error, f"{self.name}: {tool} should have been refused, got {result.structured_content!r}"
        error = json.loads(text_of(result).rsplit("\n", 1)[-1])["error"]
        return check_error(result, tool, error.get("code"))


@asynccontextmanager
async def spawn(bridge: Bridge, name: str, *, agent_credential: str | None = None, tap: bool = False,
                db: Path | None = None, **env: str) -> AsyncIterator[TeamAgent]:
    """One `mcp-bridge serve` process and an initialized SDK session.

    `agent_credential` sets MCP_BRIDGE_AGENT (and makes the helper refuse token/session_id
    arguments); `tap` runs the server through this module's wire tap, logging both directions
    to `<tmp>/NN-name.wire.in` / `.wire.out`.
    """
    bridge._n += 1
    log_path = bridge.tmp / f"{bridge._n:02d}-{name}.stderr.log"
    serve = ["serve", "--db", str(db or bridge.db)]
    if agent_credential is not None:
        env = {**env, "MCP_BRIDGE_AGENT": agent_credential}
    if tap:
        prefix = str(bridge.tmp / f"{bridge._n:02d}-{name}.wire")
        params = StdioServerParameters(command=sys.executable, args=[str(SELF), prefix, str(bridge.bin), *serve],
                                       env=bridge.base_env(**env))
    else:
        params = StdioServerParameters(command=str(bridge.bin), args=serve, env=bridge.base_env(**env))
    with open(log_path, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT_S) as session:
                try:
                    init = await session.initialize()
                except Exception as e:
                    errlog.flush()
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise ToolError(f"{name}: MCP initialize failed ({e!r}); server stderr tail: {tail!r}") from e
                agent = TeamAgent(name=name, session=session, init=init, log_path=log_path)
                agent.no_token = agent_credential is not None
                yield agent


def wire_bytes(bridge: Bridge) -> dict[str, bytes]:
    """Every byte captured by wire taps in this test, per file."""
    out = {p.name: p.read_bytes() for p in sorted(bridge.tmp.glob("*.wire.*"))}
    assert out, "no wire capture found"
    return out


def wire_messages(bridge: Bridge) -> list[tuple[str, dict[str, Any]]]:
    """Every JSON-RPC message captured, as (file name, message)."""
    msgs = []
    for name, blob in wire_bytes(bridge).items():
        for line in blob.decode().splitlines():
            if line.strip():
                msgs.append((name, json.loads(line)))
    return msgs


# --------------------------------------------------------------------------- teams (token mode)


@dataclass
class Seat:
    session_id: str
    role: str
    token: str | None
    conv_id: str

    def args(self, **extra: Any) -> dict[str, Any]:
        out = {"conversation_id": self.conv_id, "session_id": self.session_id}
        if self.token is not None:
            out["token"] = self.token
        return {**out, **extra}


@dataclass
class Team:
    id: str
    created: dict[str, Any]
    seats: list[Seat]

    def by_role(self, role: str) -> Seat:
        return next(s for s in self.seats if s.role == role)

    @property
    def roles(self) -> list[str]:
        return [s.role for s in self.seats]


async def create_team(agent: Agent, my_role: str, partner_roles: list[str]) -> Team:
    created = await agent.ok("create_conversation", my_role=my_role, partner_roles=partner_roles)
    seats = [Seat(s["session_id"], s["role"], s["token"], created["conversation_id"]) for s in created["seats"]]
    return Team(created["conversation_id"], created, seats)


def table_counts(bridge: Bridge) -> dict[str, int]:
    """Row counts of every table that holds conversation state (not the audit trail or rate windows)."""
    names = [r[0] for r in bridge.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    skip = ("audit", "rate", "sqlite_", "_sqlx", "refusal")
    return {n: bridge.count(f'"{n}"') for n in names if not any(s in n for s in skip)}


def message_rows(bridge: Bridge) -> list[tuple]:
    return bridge.query("SELECT seq, conversation_id, body FROM messages ORDER BY seq")


async def history(agent: Agent, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The caller's whole history, following the cursor."""
    out: list[dict[str, Any]] = []
    after = 0
    for _ in range(1000):
        page = await agent.ok_args("read_history", {**args, "after_seq": after, "limit": 100})
        out.extend(page["messages"])
        if not page["more"]:
            return out
        after = page["next_after_seq"]
    raise AssertionError("read_history never ended")


def int_value(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


async def drain(agent: Agent, args: dict[str, Any]) -> list[dict[str, Any]]:
    """check_messages until empty."""
    got: list[dict[str, Any]] = []
    while True:
        msgs = (await agent.ok_args("check_messages", args))["messages"]
        if not msgs:
            return got
        got.extend(msgs)


async def sleep(s: float) -> None:
    await anyio.sleep(s)
