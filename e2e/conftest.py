"""Shared fixtures for the mcp-bridge end-to-end suite.

Every test gets its own temporary directory and database. Agents are real
`mcp-bridge serve` processes driven by the official Python MCP SDK over stdio.

Two backends (scripts/test runs the suite once on each):

- `MCP_BRIDGE_E2E_BACKEND=sqlite` (the default): the database is the file `bridge.db` in the
  test's directory, its key file beside it.
- `MCP_BRIDGE_E2E_BACKEND=postgres`, inside `scripts/with-postgres` (which exports
  MCP_BRIDGE_TEST_PG): every test gets a database of its own (`CREATE DATABASE`, dropped after
  the test) and every process the fixed key `MCP_BRIDGE_KEY`. `bridge.bin` is then a generated
  `exec` wrapper that turns `--db <the test's bridge.db>` into `--database-url <that database>`
  (pg_support.write_db_wrapper), so tests run unchanged; `bridge.query`, `snapshot` and
  `raw_db_bytes` read the PostgreSQL database instead of the file. Tests that inspect the SQLite
  file itself, its key file, backups or restores carry `@pytest.mark.sqlite_only("why")` and are
  skipped there.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

import mcp_types as types
import pg_support
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN = REPO_ROOT / "target" / "release" / "mcp-bridge"

# The original bridge's five tools plus the two that replace polling.
TOOL_NAMES = {
    "create_conversation",
    "send_to_partner",
    "check_messages",
    "update_my_status",
    "check_partner_status",
    "wait_for_messages",
    "read_history",
    # Teams (issue 18).
    "send_message",
    "list_participants",
    "message_status",
}

# The first seven tools' listing (issue 11), and the whole listing with the
# team tools, in characters of `json.dumps` (Python's default separators).
ORIGINAL_TOOLS_BUDGET = 9000
TOOLS_LIST_BUDGET = 13000

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")
CONV_ID = re.compile(r"^conv_[0-9a-f]{32}$")
TOKEN = re.compile(r"^mcpb_[A-Za-z0-9_-]{43}$")

# Per-request read timeout for the SDK: generous, it only guards against hangs.
READ_TIMEOUT_S = 60.0

BACKENDS = ("sqlite", "postgres")
BACKEND = os.environ.get("MCP_BRIDGE_E2E_BACKEND", "sqlite").strip() or "sqlite"


# --------------------------------------------------------------------------- backend switch


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test inspects the SQLite file, its key file, a backup or a restore; "
        "skipped when MCP_BRIDGE_E2E_BACKEND=postgres")
    if BACKEND not in BACKENDS:
        raise pytest.UsageError(f"MCP_BRIDGE_E2E_BACKEND must be one of {', '.join(BACKENDS)}, got {BACKEND!r}")
    if BACKEND == "postgres" and pg_support.admin_url() is None:
        raise pytest.UsageError(
            "MCP_BRIDGE_E2E_BACKEND=postgres needs MCP_BRIDGE_TEST_PG (a superuser URL); "
            "run the suite inside scripts/with-postgres")


def pytest_report_header(config: pytest.Config) -> str:
    return f"mcp-bridge e2e backend: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND != "postgres":
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            assert reason, f"{item.nodeid}: @pytest.mark.sqlite_only needs a reason"
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


# --------------------------------------------------------------------------- anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- helpers


def parse_rfc3339_utc(value: Any, what: str = "timestamp") -> datetime:
    assert isinstance(value, str), f"{what} should be an RFC 3339 string, got {value!r}"
    assert RFC3339_UTC.match(value), f"{what} should be RFC 3339 UTC (…Z or +00:00), got {value!r}"
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert dt.utcoffset() is not None and dt.utcoffset().total_seconds() == 0, value
    return dt.astimezone(timezone.utc)


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


class ToolError(AssertionError):
    pass


@dataclass
class Agent:
    """One connected agent: a `serve` process plus an initialized ClientSession."""

    name: str
    session: ClientSession
    init: types.InitializeResult
    log_path: Path

    async def call(self, tool: str, args: dict[str, Any] | None) -> types.CallToolResult:
        try:
            return await self.session.call_tool(tool, args, read_timeout_seconds=READ_TIMEOUT_S)
        except MCPError as e:  # the contract says errors are tool results, never JSON-RPC errors
            raise ToolError(
                f"{self.name}: {tool} raised a JSON-RPC error (code {e.code}: {e.message!r}) "
                f"instead of returning an isError tool result"
            ) from e

    async def ok(self, tool: str, **args: Any) -> dict[str, Any]:
        """Call a tool that must succeed; return its structuredContent."""
        return await self.ok_args(tool, args)

    async def ok_args(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        result = await self.call(tool, args)
        if result.is_error:
            raise ToolError(f"{self.name}: {tool} failed unexpectedly: {text_of(result)!r} {result.structured_content!r}")
        sc = result.structured_content
        assert isinstance(sc, dict), f"{tool}: success result has no structuredContent object: {result!r}"
        assert text_of(result).strip(), f"{tool}: success result has no text rendering"
        # text-only clients get everything too: the text's last line is the same JSON
        assert json_of_text(result) == sc, f"{tool}: the text does not carry the structured result: {text_of(result)[:300]!r}"
        return sc

    async def err(self, tool: str, code: str, args: dict[str, Any]) -> dict[str, Any]:
        """Call a tool that must fail with `code`; check the error shape; return the error object."""
        result = await self.call(tool, args)
        return check_error(result, tool, code)


def json_of_text(result: types.CallToolResult) -> Any:
    """The JSON on the last line of a result's text (see README, "Results and errors")."""
    text = text_of(result)
    try:
        return json.loads(text.rsplit("\n", 1)[-1])
    except ValueError:
        raise AssertionError(f"the result text does not end in a JSON line: {text[:300]!r}") from None


def check_error(result: types.CallToolResult, tool: str, code: str) -> dict[str, Any]:
    text = text_of(result)
    assert result.is_error, f"{tool}: expected isError with code {code!r}, got success: {result.structured_content!r}"
    # structuredContent on an error would have to match the tool's outputSchema (the success shape);
    # the TypeScript SDK turns a mismatch into a -32602 protocol error, so errors travel as text only
    assert result.structured_content is None, f"{tool}: an error must not carry structuredContent: {result.structured_content!r}"
    assert len(text.split("\n")) == 2, f"{tool}: error text must be `code: sentence` and one JSON line: {text[:300]!r}"
    sc = json_of_text(result)
    assert isinstance(sc, dict) and set(sc) == {"error"}, (
        f"{tool}: the error JSON must be exactly {{'error': {{…}}}}, got {sc!r} (text {text!r})"
    )
    error = sc["error"]
    assert isinstance(error, dict), sc
    assert error.get("code") == code, f"{tool}: expected error code {code!r}, got {error!r}"
    assert isinstance(error.get("message"), str) and error["message"].strip(), error
    assert set(error) <= {"code", "message", "field", "retry_after_seconds"}, f"unexpected error keys: {error!r}"
    assert text.startswith(f"{code}: {error['message']}\n"), f"{tool}: error text must start with {code + ': '!r} and the message, got {text[:200]!r}"
    return error


def error_blob(error: dict[str, Any], result_text: str = "") -> str:
    return json.dumps(error, ensure_ascii=False) + result_text


@dataclass
class Bridge:
    """Per-test environment: a temp dir, a db path, the binary, and agent spawning."""

    bin: Path
    tmp: Path
    db: Path
    env: dict[str, str] = field(default_factory=dict)
    _n: int = 0
    # The test's PostgreSQL database when MCP_BRIDGE_E2E_BACKEND=postgres (then `bin` is the
    # wrapper that points `--db <db>` at it), else None.
    pg: pg_support.PgDatabase | None = None

    def base_env(self, **overrides: str) -> dict[str, str]:
        env = {
            "HOME": str(self.tmp / "home"),
            "XDG_CONFIG_HOME": str(self.tmp / "home" / ".config"),
            "XDG_DATA_HOME": str(self.tmp / "home" / ".local" / "share"),
            "RUST_BACKTRACE": "1",
        }
        env.update(self.env)
        env.update(overrides)
        return env

    @asynccontextmanager
    async def agent(self, name: str = "agent", db: Path | None = None, args: list[str] | None = None,
                    **env: str) -> AsyncIterator[Agent]:
        """Spawn `mcp-bridge serve --db DB` and yield an initialized Agent."""
        self._n += 1
        log_path = self.tmp / f"{self._n:02d}-{name}.stderr.log"
        if args is None:
            args = ["serve", "--db", str(db or self.db)]
        params = StdioServerParameters(command=str(self.bin), args=args, env=self.base_env(**env))
        with open(log_path, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT_S) as session:
                    try:
                        init = await session.initialize()
                    except Exception as e:
                        errlog.flush()
                        tail = log_path.read_text(errors="replace")[-2000:]
                        raise ToolError(f"{name}: MCP initialize failed ({e!r}); server stderr tail: {tail!r}") from e
                    yield Agent(name=name, session=session, init=init, log_path=log_path)

    # ---- database inspection (read-only) ----

    def query(self, sql: str, params: tuple = (), db: Path | None = None) -> list[tuple]:
        if self.pg is not None and (db is None or db == self.db):
            return self.pg.query(sql, params)
        path = db or self.db
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def count(self, table: str, db: Path | None = None) -> int:
        return self.query(f"SELECT COUNT(*) FROM {table}", db=db)[0][0]

    def snapshot(self) -> dict[str, Any]:
        """What a refused call must leave untouched."""
        snap = {}
        for table in ("conversations", "participants", "messages", "deliveries"):
            snap[table] = self.count(table)
        snap["status"] = sorted(map(repr, self.query("SELECT * FROM status")))
        return snap

    def raw_db_bytes(self, db: Path | None = None) -> dict[str, bytes]:
        if self.pg is not None and (db is None or db == self.db):
            return self.pg.dump()
        path = db or self.db
        out = {}
        for suffix in ("", "-wal", "-shm", "-journal"):
            p = Path(str(path) + suffix)
            if p.exists():
                out[p.name] = p.read_bytes()
        assert out, f"no database files at {path}"
        return out

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("*.stderr.log")))

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} | self.base_env(**env)
        return subprocess.run([str(self.bin), *args], input=input, capture_output=True, timeout=timeout, env=full_env)


@pytest.fixture(scope="session")
def bridge_bin() -> Path:
    path = Path(os.environ.get("MCP_BRIDGE_BIN", str(DEFAULT_BIN)))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"mcp-bridge binary not found or not executable at {path} (set MCP_BRIDGE_BIN or build it)")
    return path


@pytest.fixture
def bridge(bridge_bin: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bridge]:
    (tmp_path / "home").mkdir()
    db = tmp_path / "bridge.db"
    if BACKEND != "postgres":
        yield Bridge(bin=bridge_bin, tmp=tmp_path, db=db)
        return
    pg = pg_support.PgDatabase(pg_support.admin_url(), label=request.node.name)
    try:
        wrapper = pg_support.write_db_wrapper(tmp_path / "mcp-bridge", bridge_bin, db, pg.url)
        yield Bridge(bin=wrapper, tmp=tmp_path, db=db, env={"MCP_BRIDGE_KEY": pg_support.PG_KEY}, pg=pg)
    finally:
        pg.drop()


def assert_absent(needles: dict[str, str], haystacks: dict[str, bytes], when: str) -> None:
    """None of the needle strings occurs in any of the raw byte blobs."""
    leaks = []
    for label, needle in needles.items():
        nb = needle.encode()
        for name, blob in haystacks.items():
            if nb in blob:
                leaks.append(f"{label} ({needle[:12]}…) found in {name}")
    assert not leaks, f"{when}: " + "; ".join(leaks)


@dataclass
class Conv:
    id: str
    a_token: str
    b_token: str
    created: dict[str, Any]

    def a(self, **extra: Any) -> dict[str, Any]:
        return {"conversation_id": self.id, "session_id": "a", "token": self.a_token, **extra}

    def b(self, **extra: Any) -> dict[str, Any]:
        return {"conversation_id": self.id, "session_id": "b", "token": self.b_token, **extra}


async def create_conv(agent: Agent, my_role: str = "planner", partner_role: str = "coder") -> Conv:
    out = await agent.ok("create_conversation", my_role=my_role, partner_role=partner_role)
    return Conv(id=out["conversation_id"], a_token=out["session_a_token"], b_token=out["session_b_token"], created=out)
