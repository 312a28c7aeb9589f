"""The official Python SDK as two generations of client (issue 11, item 7):
a 2025-11-25 client (the initialize handshake) must get exactly 2025-11-25,
and a 2026-07-28 client (`server/discover`, then `tools/list`, no
initialize) must get the `ttlMs` / `cacheScope` cache hints, without which
Claude Code drops every tool of a server. Two server processes on one
database; the 2026-07-28 hints are also checked on the raw wire, so an SDK
default cannot stand in for a missing field."""

from __future__ import annotations

import json

import pytest

from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from conftest import ORIGINAL_TOOLS_BUDGET, TOOL_NAMES, TOOLS_LIST_BUDGET, create_conv
from test_clients_text_only import RawClient

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "e2e-raw-modern", "version": "0.0.1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


@pytest.mark.anyio
async def test_python_sdk_at_2025_11_25_gets_2025_11_25_and_two_processes_talk(bridge):
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        assert a.init.protocol_version == "2025-11-25", a.init.protocol_version
        assert b.init.protocol_version == "2025-11-25", b.init.protocol_version
        listing = await a.session.list_tools()
        assert {t.name for t in listing.tools} == TOOL_NAMES
        conv = await create_conv(a)
        await a.ok_args("send_to_partner", conv.a(message="hello from A"))
        inbox = await b.ok_args("check_messages", conv.b())
        assert [m["message"] for m in inbox["messages"]] == ["hello from A"]


@pytest.mark.anyio
async def test_python_sdk_at_2026_07_28_discovers_and_lists_tools_with_cache_hints(bridge):
    params = StdioServerParameters(command=str(bridge.bin), args=["serve", "--db", str(bridge.db)],
                                   env=bridge.base_env())
    async with Client(params, mode="auto") as a, Client(params, mode="auto") as b:
        assert a.protocol_version == MODERN, f"server/discover negotiated {a.protocol_version}"
        assert b.protocol_version == MODERN
        listing = await a.list_tools(cache_mode="refresh")
        assert {t.name for t in listing.tools} == TOOL_NAMES
        assert listing.ttl_ms is not None and listing.ttl_ms >= 0, listing.ttl_ms
        assert listing.cache_scope in ("public", "private"), listing.cache_scope

        created = await a.call_tool("create_conversation", {"my_role": "planner", "partner_role": "coder"})
        assert not created.is_error, created
        sc = created.structured_content
        conv = {"conversation_id": sc["conversation_id"]}
        sent = await a.call_tool("send_to_partner", conv | {"session_id": "a", "token": sc["session_a_token"],
                                                            "message": "hello at 2026-07-28"})
        assert not sent.is_error, sent
        inbox = await b.call_tool("check_messages", conv | {"session_id": "b", "token": sc["session_b_token"]})
        assert not inbox.is_error, inbox
        assert [m["message"] for m in inbox.structured_content["messages"]] == ["hello at 2026-07-28"]


def test_raw_2026_07_28_discover_then_tools_list_carries_ttl_ms_and_cache_scope_on_the_wire(bridge):
    c = RawClient(bridge, "modern")
    try:
        disc = c.request("server/discover", {"_meta": META})
        assert "result" in disc, disc
        assert MODERN in disc["result"].get("supportedVersions", []), disc["result"]
        assert disc["result"].get("capabilities", {}).get("tools") is not None, disc["result"]

        listing = c.request("tools/list", {"_meta": META})
        assert "result" in listing, listing
        result = listing["result"]
        assert {t["name"] for t in result["tools"]} == TOOL_NAMES
        assert "ttlMs" in result and "cacheScope" in result, (
            f"tools/list at {MODERN} lacks cache hints; keys: {sorted(k for k in result if k != 'tools')}")
        assert isinstance(result["ttlMs"], int) and result["ttlMs"] >= 0, result["ttlMs"]
        assert result["cacheScope"] in ("public", "private"), result["cacheScope"]
    finally:
        assert c.close() == 0


def test_tools_list_fits_its_budget(bridge):
    """Item 6: every agent pays for tools/list on every turn. Measured as the
    issue measured it (16,226 before): `len(json.dumps(tools))`. The seven
    tools of issue 11 gained the team fields (1,000 characters more); the
    three team tools have a budget of their own (see src/mcp/tools.rs)."""
    c = RawClient(bridge, "size")
    try:
        c.initialize("2025-11-25")
        tools = c.request("tools/list", {})["result"]["tools"]
    finally:
        assert c.close() == 0
    sizes = {t["name"]: len(json.dumps(t)) for t in tools}
    total = len(json.dumps(tools))
    assert total <= TOOLS_LIST_BUDGET, f"tools/list is {total} characters; per tool: {sizes}"
    seven = len(json.dumps(tools[:7]))
    assert seven <= ORIGINAL_TOOLS_BUDGET, f"the original seven tools are {seven} characters; per tool: {sizes}"


def test_an_unknown_tool_logs_no_warning_on_stderr(bridge):
    """Item 6: clients show the server's stderr to the user; calling a tool
    that does not exist is the agent's mistake, logged at debug."""
    c = RawClient(bridge, "unknown")
    try:
        c.initialize("2025-11-25")
        unknown = c.request("tools/call", {"name": "no_such_tool", "arguments": {}})
        assert "error" in unknown or unknown["result"].get("isError"), unknown
    finally:
        assert c.close() == 0
    stderr = (bridge.tmp / "raw-unknown.stderr.log").read_text(errors="replace")
    assert "WARN" not in stderr, f"an unknown tool logged a warning: {stderr[-500:]!r}"
