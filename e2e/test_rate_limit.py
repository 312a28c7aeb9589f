"""4. Rate limits hold across processes sharing one db."""

from __future__ import annotations

import re

import anyio
import pytest

from conftest import check_error, create_conv

pytestmark = pytest.mark.anyio


def check_rate_limited(result, tool: str, window_word: str = "minute") -> dict:
    error = check_error(result, tool, "rate_limited")
    retry = error.get("retry_after_seconds")
    assert isinstance(retry, (int, float)) and not isinstance(retry, bool) and retry > 0, error
    # a 1-minute window, rounded up to whole seconds (61 is tolerated: the server may read its
    # clock a few ms before another process's send lands)
    assert retry <= 61, f"retry_after_seconds {retry} exceeds the 1-minute window"
    assert window_word in error["message"].lower(), f"message should name the window ({window_word}): {error!r}"
    return error


async def test_send_rate_limit_shared_by_two_processes(bridge):
    env = {"MCP_BRIDGE_RATE_LIMIT": "5/min", "MCP_BRIDGE_READ_RATE_LIMIT": "off"}
    async with bridge.agent("P1", **env) as p1, bridge.agent("P2", **env) as p2, bridge.agent("B", **env) as b:
        conv = await create_conv(p1)
        procs = [p1, p2]
        for i in range(5):
            await procs[i % 2].ok("send_to_partner", **conv.a(message=f"m{i}"))
        before = bridge.snapshot()
        for i, who in enumerate([p2, p1, p2]):
            result = await who.call("send_to_partner", conv.a(message=f"over{i}"))
            error = check_rate_limited(result, "send_to_partner")
            assert re.search(r"\b5\b", error["message"]), f"message should name the limit 5: {error['message']!r}"
            assert f"over{i}" not in error["message"]
        assert bridge.snapshot() == before, "a rate-limited send stored something"
        msgs = (await b.ok("check_messages", **conv.b()))["messages"]
        assert [m["message"] for m in msgs] == [f"m{i}" for i in range(5)]


async def test_send_rate_limit_concurrent_bursts(bridge):
    """12 sends fired concurrently from two processes: exactly 5 succeed."""
    env = {"MCP_BRIDGE_RATE_LIMIT": "5/min", "MCP_BRIDGE_READ_RATE_LIMIT": "off"}
    async with bridge.agent("P1", **env) as p1, bridge.agent("P2", **env) as p2:
        conv = await create_conv(p1)
        results = []

        async def fire(agent, i):
            results.append(await agent.call("send_to_partner", conv.a(message=f"burst{i}")))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(12):
                    tg.start_soon(fire, (p1, p2)[i % 2], i)
        ok = [r for r in results if not r.is_error]
        refused = [r for r in results if r.is_error]
        assert len(ok) == 5, f"{len(ok)} sends succeeded, expected exactly 5"
        for r in refused:
            check_rate_limited(r, "send_to_partner")
        assert bridge.count("messages") == 5


async def test_send_rate_limit_hour_window(bridge):
    env = {"MCP_BRIDGE_RATE_LIMIT": "10/min,3/h"}
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        for i in range(3):
            await a.ok("send_to_partner", **conv.a(message=f"m{i}"))
        error = check_error(await a.call("send_to_partner", conv.a(message="m3")), "send_to_partner", "rate_limited")
        assert "hour" in error["message"].lower(), f"message should name the hour window: {error!r}"
        assert re.search(r"\b3\b", error["message"]), error
        retry = error.get("retry_after_seconds")
        assert isinstance(retry, int) and 60 < retry <= 3601, error
        assert bridge.count("messages") == 3


async def test_rate_limit_off_disables_send_limit(bridge):
    """'off' really disables the send limit (default is 10/min): 15 sends pass."""
    env = {"MCP_BRIDGE_RATE_LIMIT": "off"}
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        for i in range(15):
            await a.ok("send_to_partner", **conv.a(message=f"m{i}"))
        assert bridge.count("messages") == 15


async def test_default_send_rate_limit_is_10_per_minute(bridge):
    async with bridge.agent("A") as a:
        conv = await create_conv(a)
        for i in range(10):
            await a.ok("send_to_partner", **conv.a(message=f"m{i}"))
        error = check_rate_limited(await a.call("send_to_partner", conv.a(message="m10")), "send_to_partner")
        assert re.search(r"\b10\b", error["message"]), f"message should name the limit 10: {error!r}"
        assert bridge.count("messages") == 10


async def test_read_rate_limit(bridge):
    env = {"MCP_BRIDGE_RATE_LIMIT": "off", "MCP_BRIDGE_READ_RATE_LIMIT": "3/min"}
    async with bridge.agent("A", **env) as a, bridge.agent("B", **env) as b:
        conv = await create_conv(a)
        for i in range(3):
            await b.ok("check_messages", **conv.b())
        sent = await a.ok("send_to_partner", **conv.a(message="unread"))
        result = await b.call("check_messages", conv.b())
        check_rate_limited(result, "check_messages")
        # the refused check consumed nothing: the message is still unread
        delivered = bridge.query(
            "SELECT COUNT(*) FROM deliveries WHERE message_seq = ? AND delivered_at IS NOT NULL", (sent["message_id"],))
        assert delivered[0][0] == 0, "a rate-limited check_messages marked a message read"


async def test_read_rate_limit_off(bridge):
    env = {"MCP_BRIDGE_READ_RATE_LIMIT": "off"}
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        for _ in range(130):  # default is 120/min
            await a.ok("check_partner_status", **conv.a())
