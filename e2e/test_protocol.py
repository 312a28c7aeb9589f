"""7. Protocol: version negotiation, tool listing, schemas, annotations, clean stdout."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from typing import Any

import pytest

from conftest import TOOL_NAMES

ACCEPTED_VERSIONS = {"2025-06-18", "2025-11-25", "2026-07-28"}

IDS = {"conversation_id", "session_id", "token"}
INPUTS = {
    "create_conversation": ({"my_role", "partner_role"}, {"my_role", "partner_role"}),
    "send_to_partner": (IDS | {"message", "action_type", "files_involved"}, IDS | {"message"}),
    "check_messages": (IDS | {"peek"}, IDS),
    "update_my_status": (IDS | {"status", "note"}, IDS | {"status"}),
    "check_partner_status": (IDS, IDS),
    "wait_for_messages": (IDS | {"timeout_seconds"}, IDS),
    "read_history": (IDS | {"after_seq", "limit"}, IDS),
}
SEED_TOOLS = {"create_conversation", "send_to_partner", "check_messages", "update_my_status", "check_partner_status"}
OUTPUTS = {
    "create_conversation": {"conversation_id", "session_a_token", "session_b_token", "expires_at", "my_role", "partner_role"},
    "send_to_partner": {"message_id", "redacted", "sent_at"},
    "check_messages": {"messages"},
    "update_my_status": {"status", "note", "heartbeat_at"},
    "check_partner_status": {"partner_role", "status", "note", "last_heartbeat", "alive", "seconds_since_heartbeat"},
    "wait_for_messages": {"messages", "remaining", "timed_out"},
    "read_history": {"messages", "next_after_seq", "more"},
}
# (readOnly, destructive, idempotent); openWorld is false for all
ANNOTATIONS = {
    "create_conversation": (False, False, False),
    "send_to_partner": (False, False, False),
    "check_messages": (False, False, False),
    "update_my_status": (False, False, True),
    "check_partner_status": (True, False, True),
    "wait_for_messages": (False, False, False),
    "read_history": (True, False, True),
}


@pytest.mark.anyio
async def test_sdk_initialize_and_tools_list(bridge):
    async with bridge.agent("A") as a:
        assert a.init.protocol_version in ACCEPTED_VERSIONS, a.init.protocol_version
        assert a.session.protocol_version == a.init.protocol_version
        assert a.init.capabilities.tools is not None, "server must advertise the tools capability"
        assert a.init.server_info.name, a.init.server_info

        listing = await a.session.list_tools()
        tools = {t.name: t for t in listing.tools}
        assert set(tools) == TOOL_NAMES, sorted(tools)
        assert SEED_TOOLS <= set(tools), "the original bridge's five tools keep their names"
        for name, tool in tools.items():
            assert tool.description and tool.description.strip(), f"{name}: no description"
            schema = tool.input_schema
            assert schema.get("type") == "object", f"{name}: inputSchema type {schema.get('type')!r}"
            assert schema.get("additionalProperties") is False, f"{name}: inputSchema additionalProperties must be false"
            props, required = INPUTS[name]
            assert set(schema.get("properties", {})) == props, f"{name}: input properties {sorted(schema.get('properties', {}))}"
            assert set(schema.get("required", [])) == required, f"{name}: required {sorted(schema.get('required', []))}"

            out = tool.output_schema
            assert out is not None, f"{name}: no outputSchema"
            assert out.get("type") == "object", f"{name}: outputSchema type {out.get('type')!r}"
            assert set(out.get("properties", {})) >= OUTPUTS[name], (
                f"{name}: outputSchema properties {sorted(out.get('properties', {}))} miss {sorted(OUTPUTS[name] - set(out.get('properties', {})))}")

            ann = tool.annotations
            assert ann is not None, f"{name}: no annotations"
            ro, destructive, idem = ANNOTATIONS[name]
            got = (ann.read_only_hint, ann.destructive_hint, ann.idempotent_hint, ann.open_world_hint)
            assert got == (ro, destructive, idem, False), (
                f"{name}: annotations (readOnly, destructive, idempotent, openWorld) = {got}, expected {(ro, destructive, idem, False)}")


def parse_line(line: str) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except ValueError:
        raise AssertionError(f"stdout line is not JSON: {line[:200]!r}") from None
    assert isinstance(msg, dict), f"stdout line is not a JSON-RPC object: {line[:200]!r}"
    return msg


class RawServer:
    """The binary spawned bare, speaking newline-delimited JSON-RPC on stdin/stdout."""

    def __init__(self, bridge):
        self.log = open(bridge.tmp / "raw.stderr.log", "w")
        self.proc = subprocess.Popen(
            [str(bridge.bin), "serve", "--db", str(bridge.db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env={"PATH": "/usr/bin:/bin"} | bridge.base_env(),
        )
        self.lines: list[str] = []
        self.q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for raw in self.proc.stdout:
            self.q.put(raw.decode("utf-8", errors="replace"))
        self.q.put(None)

    def send(self, obj: dict[str, Any]) -> None:
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def response(self, id_: int, timeout: float = 30) -> dict[str, Any]:
        while True:
            line = self.q.get(timeout=timeout)
            assert line is not None, f"server closed stdout before answering id {id_}"
            self.lines.append(line)
            msg = parse_line(line)
            if msg.get("id") == id_ and ("result" in msg or "error" in msg):
                return msg

    def close(self, timeout: float = 15) -> int:
        self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
        while True:
            try:
                line = self.q.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return code


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_raw_stdout_is_only_jsonrpc(bridge, version):
    srv = RawServer(bridge)
    try:
        srv.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "e2e-raw", "version": "0.0.1"}}})
        init = srv.response(1)
        assert "result" in init, init
        assert init["result"]["protocolVersion"] == version, init["result"]
        srv.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

        srv.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        listing = srv.response(2)
        assert {t["name"] for t in listing["result"]["tools"]} == TOOL_NAMES

        srv.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "create_conversation", "arguments": {"my_role": "raw", "partner_role": "peer"}}})
        created = srv.response(3)["result"]
        assert created.get("isError") in (None, False), created
        assert created["structuredContent"]["conversation_id"].startswith("conv_")
        assert any(c.get("type") == "text" and c.get("text") for c in created["content"]), created

        # a schema violation is a tool result with isError, not a JSON-RPC error
        srv.send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "create_conversation", "arguments": {"my_role": "raw"}}})
        bad = srv.response(4)
        assert "error" not in bad, f"schema violation came back as a JSON-RPC error: {bad}"
        assert bad["result"]["isError"] is True
        assert bad["result"]["structuredContent"]["error"]["code"] == "invalid_argument"
        assert bad["result"]["content"][0]["text"].startswith("invalid_argument: ")
    finally:
        code = srv.close()

    assert code == 0, f"server exited with {code} after stdin EOF"
    assert srv.lines, "no output at all"
    for line in srv.lines:
        msg = parse_line(line)
        assert msg.get("jsonrpc") == "2.0", f"non JSON-RPC line on stdout: {line[:200]!r}"
