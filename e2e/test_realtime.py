"""Beyond the original bridge: long-poll instead of polling, peek, and a
history cursor. Two agents, two processes, one database."""

from __future__ import annotations

import anyio
import pytest

from conftest import create_conv

pytestmark = pytest.mark.anyio


async def test_peek_does_not_consume(bridge):
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message="one"))
        for _ in range(2):
            peeked = await b.ok("check_messages", **conv.b(peek=True))
            assert [m["message"] for m in peeked["messages"]] == ["one"]
        got = await b.ok("check_messages", **conv.b())
        assert [m["message"] for m in got["messages"]] == ["one"]
        assert (await b.ok("check_messages", **conv.b(peek=True)))["messages"] == []


async def test_wait_returns_when_a_message_arrives(bridge):
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        conv = await create_conv(a)
        result: dict = {}

        async def waiter():
            result["w"] = await b.ok("wait_for_messages", **conv.b(timeout_seconds=30))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.5)
            await a.ok("send_to_partner", **conv.a(message="wake up", action_type="question"))
        w = result["w"]
        assert w["timed_out"] is False
        assert [(m["message"], m["action_type"]) for m in w["messages"]] == [("wake up", "question")]
        # Delivered once: nothing left for a plain check.
        assert (await b.ok("check_messages", **conv.b()))["messages"] == []


async def test_wait_times_out_empty(bridge):
    async with bridge.agent("A") as a:
        conv = await create_conv(a)
        w = await a.ok("wait_for_messages", **conv.a(timeout_seconds=1))
        assert w == {"messages": [], "remaining": 0, "timed_out": True}


async def test_wait_rejects_a_timeout_over_the_limit(bridge):
    async with bridge.agent("A") as a:
        conv = await create_conv(a)
        err = await a.err("wait_for_messages", "invalid_argument", conv.a(timeout_seconds=61))
        assert err["field"] == "timeout_seconds" and "60" in err["message"]


async def test_history_cursor_walks_both_directions(bridge):
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message="q1", action_type="question"))
        await b.ok("check_messages", **conv.b())
        await b.ok("send_to_partner", **conv.b(message="a1", action_type="answer"))
        await a.ok("send_to_partner", **conv.a(message="q2"))
        seen, cursor = [], 0
        while True:
            page = await b.ok("read_history", **conv.b(after_seq=cursor, limit=1))
            seen += [(m["from_role"], m["message"]) for m in page["messages"]]
            cursor = page["next_after_seq"]
            if not page["more"]:
                break
        assert seen == [("planner", "q1"), ("coder", "a1"), ("planner", "q2")]
        # History marks nothing read: q2 is still waiting for B.
        got = await b.ok("check_messages", **conv.b())
        assert [m["message"] for m in got["messages"]] == ["q2"]
