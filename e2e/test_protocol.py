"""7. Protocol: version negotiation, tool listing, schemas, annotations, clean stdout."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from typing import Any

import pytest

from conftest import CONV_ID, TOKEN, TOOL_NAMES, TOOLS_LIST_BUDGET

ACCEPTED_VERSIONS = {"2025-06-18", "2025-11-25", "2026-07-28"}

IDS = {"conversation_id", "session_id", "token"}
INPUTS = {
    # Teams (issue 18): partner_roles instead of partner_role, so neither is required.
    "create_conversation": ({"my_role", "partner_role", "partner_roles"}, {"my_role"}),
    "send_to_partner": (IDS | {"message", "action_type", "files_involved"}, IDS | {"message"}),
    "check_messages": (IDS | {"peek"}, IDS),
    "update_my_status": (IDS | {"status", "note"}, IDS | {"status"}),
    "check_partner_status": (IDS, IDS),
    "wait_for_messages": (IDS | {"timeout_seconds"}, IDS),
    "read_history": (IDS | {"after_seq", "limit"}, IDS),
    "send_message": (IDS | {"message", "to", "action_type", "files_involved", "reply_to"}, IDS | {"message"}),
    "list_participants": (IDS, IDS),
    "message_status": (IDS | {"message_id"}, IDS | {"message_id"}),
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
    "send_message": {"message_id", "recipients", "redacted", "stored_at"},
    "list_participants": {"participants", "heartbeat_window_seconds"},
    "message_status": {"message_id", "recipients"},
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
    "send_message": (False, False, False),
    "list_participants": (True, False, True),
    "message_status": (True, False, True),
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

            assert tool.title and tool.title.strip(), f"{name}: no top-level title"
            ann = tool.annotations
            assert ann is not None, f"{name}: no annotations"
            ro, destructive, idem = ANNOTATIONS[name]
            # a hint left out means the spec's default (readOnly/idempotent false, destructive/openWorld true)
            got = tuple(default if hint is None else hint for hint, default in (
                (ann.read_only_hint, False), (ann.destructive_hint, True),
                (ann.idempotent_hint, False), (ann.open_world_hint, True)))
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

        # a schema violation is a tool result with isError, not a JSON-RPC error, and carries no
        # structuredContent (it would have to match the outputSchema); its JSON is the text's last line
        srv.send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "create_conversation", "arguments": {"my_role": "raw"}}})
        bad = srv.response(4)
        assert "error" not in bad, f"schema violation came back as a JSON-RPC error: {bad}"
        assert bad["result"]["isError"] is True
        assert "structuredContent" not in bad["result"], bad["result"]
        text = bad["result"]["content"][0]["text"]
        assert text.startswith("invalid_argument: ")
        assert json.loads(text.split("\n")[-1])["error"] == {
            "code": "invalid_argument", "field": "partner_role", "message": "invalid partner_role: is required"}
    finally:
        code = srv.close()

    assert code == 0, f"server exited with {code} after stdin EOF"
    assert srv.lines, "no output at all"
    for line in srv.lines:
        msg = parse_line(line)
        assert msg.get("jsonrpc") == "2.0", f"non JSON-RPC line on stdout: {line[:200]!r}"


# ----------------------------------------------------------------------------------------- issue 11

def initialize(srv: RawServer, version: str) -> dict[str, Any]:
    srv.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {},
        "clientInfo": {"name": "e2e-raw", "version": "0.0.1"}}})
    init = srv.response(1)
    srv.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return init["result"]


def call(srv: RawServer, id_: int, name: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
    srv.send({"jsonrpc": "2.0", "id": id_, "method": "tools/call",
              "params": {"name": name, "arguments": arguments, **params}})
    msg = srv.response(id_)
    assert "result" in msg, f"{name}: JSON-RPC error instead of a tool result: {msg}"
    return msg["result"]


def from_text(result: dict[str, Any]) -> Any:
    """What a text-only client has: the text blocks. The result's JSON is their last line."""
    text = "".join(c["text"] for c in result["content"] if c.get("type") == "text")
    return json.loads(text.rsplit("\n", 1)[-1])


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26"])
def test_text_only_client_completes_create_send_check(bridge, version):
    """A raw client on a protocol without structuredContent works from the text alone."""
    a, b = RawServer(bridge), RawServer(bridge)
    try:
        for srv in (a, b):
            assert initialize(srv, version)["protocolVersion"] == version
        created = call(a, 2, "create_conversation", {"my_role": "planner", "partner_role": "coder"})
        conv = from_text(created)  # never structuredContent
        assert CONV_ID.match(conv["conversation_id"]), conv
        assert TOKEN.match(conv["session_a_token"]) and TOKEN.match(conv["session_b_token"]), conv
        text = created["content"][0]["text"]
        assert "shown only this once" in text, text

        seat = lambda s, tok: {"conversation_id": conv["conversation_id"], "session_id": s, "token": tok}
        sent = from_text(call(a, 3, "send_to_partner", {**seat("a", conv["session_a_token"]),
                                                       "message": "hello from text", "files_involved": ["src/x.rs"]}))
        assert isinstance(sent["message_id"], int)

        inbox = from_text(call(b, 2, "check_messages", seat("b", conv["session_b_token"])))
        assert [(m["seq"], m["message"], m["from_role"], m["files_involved"]) for m in inbox["messages"]] == [
            (sent["message_id"], "hello from text", "planner", ["src/x.rs"])], inbox
        assert inbox["remaining"] == 0

        # an error is text too: code, sentence, field
        bad = call(b, 3, "check_messages", seat("b", conv["session_a_token"]))
        assert bad["isError"] is True and "structuredContent" not in bad
        assert from_text(bad)["error"]["code"] == "invalid_token"
        assert from_text(bad)["error"]["field"] == "token"
    finally:
        assert a.close() == 0 and b.close() == 0


def test_initialize_answers_2025_11_25_and_tools_list_fits_budget(bridge):
    srv = RawServer(bridge)
    try:
        assert initialize(srv, "2025-11-25")["protocolVersion"] == "2025-11-25"
        srv.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        result = srv.response(2)["result"]
        # the size of the result as the server writes it (compact JSON)
        served = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
        assert len(served) <= TOOLS_LIST_BUDGET, f"tools/list result is {len(served)} characters"
        assert "ttlMs" not in result and "cacheScope" not in result, "cache hints are 2026-07-28 only"
        for tool in result["tools"]:
            blob = json.dumps([tool["inputSchema"], tool["outputSchema"]])
            for rust_format in ("int64", "int32", "uint64", "uint32", "uint8", "double", "float"):
                assert f'"format": "{rust_format}"' not in blob, f"{tool['name']}: non-standard format {rust_format}"
            assert '["string", "null"]' not in blob and '"null", ' not in blob, f"{tool['name']}: union type"
            assert tool.get("title"), tool["name"]
    finally:
        assert srv.close() == 0


def test_2026_07_28_client_gets_cache_hints(bridge):
    """server/discover then tools/list without initialize: Claude Code drops tools without ttlMs/cacheScope."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "e2e-raw", "version": "0.0.1"}}
    srv = RawServer(bridge)
    try:
        srv.send({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}})
        discovered = srv.response(1)["result"]
        assert "2026-07-28" in discovered["supportedVersions"], discovered
        assert "2025-11-25" in discovered["supportedVersions"], discovered
        assert discovered["capabilities"].get("tools") is not None

        srv.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta}})
        listing = srv.response(2)["result"]
        assert {t["name"] for t in listing["tools"]} == TOOL_NAMES
        assert isinstance(listing.get("ttlMs"), int) and listing["ttlMs"] > 0, listing.get("ttlMs")
        assert listing.get("cacheScope") == "private", listing.get("cacheScope")

        created = call(srv, 3, "create_conversation", {"my_role": "new", "partner_role": "old"}, _meta=meta)
        assert created.get("isError") in (None, False), created
        assert from_text(created) == created["structuredContent"]
    finally:
        assert srv.close() == 0


def test_unknown_tool_is_a_tool_error_without_a_warning(bridge):
    srv = RawServer(bridge)
    try:
        initialize(srv, "2025-11-25")
        hostile = "no_such_tool\u001b[2K\r"
        result = call(srv, 2, hostile, {})
        assert result["isError"] is True and "structuredContent" not in result, result
        error = from_text(result)["error"]
        assert error["code"] == "unknown_tool" and error["field"] == "name", error
        assert "send_to_partner" in error["message"], error
        assert "no_such_tool" not in result["content"][0]["text"], "the unknown name is echoed"
    finally:
        assert srv.close() == 0
    stderr = (bridge.tmp / "raw.stderr.log").read_text(errors="replace")
    assert "WARN" not in stderr and "ERROR" not in stderr, f"the agent's mistake was logged: {stderr[-1000:]!r}"
