"""Beyond the original bridge: long-poll instead of polling, peek, and a
history cursor. Two agents, two processes, one database."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time

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
    # 55 s: below the 60 s after which the TypeScript SDK gives up on a request.
    async with bridge.agent("A") as a:
        conv = await create_conv(a)
        err = await a.err("wait_for_messages", "invalid_argument", conv.a(timeout_seconds=56))
        assert err["field"] == "timeout_seconds" and "55" in err["message"]
        w = await a.ok("wait_for_messages", **conv.a(timeout_seconds=0))
        assert w["timed_out"] is True


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


class RawClient:
    """The binary spawned bare, driven with newline-delimited JSON-RPC, so a
    test can cancel a request or vanish mid-call exactly when it wants."""

    def __init__(self, bridge):
        self.log = open(bridge.tmp / "raw-waiter.stderr.log", "w")
        self.proc = subprocess.Popen(
            [str(bridge.bin), "serve", "--db", str(bridge.db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env={"PATH": "/usr/bin:/bin"} | bridge.base_env(),
        )
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw-waiter", "version": "0"}}})
        self.response(0)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _pump(self) -> None:
        for raw in self.proc.stdout:
            self.q.put(json.loads(raw))
        self.q.put(None)

    def send(self, obj) -> None:
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def response(self, id_: int, timeout: float = 30):
        while True:
            msg = self.q.get(timeout=timeout)
            assert msg is not None, f"server closed stdout before answering id {id_}"
            if msg.get("id") == id_:
                return msg

    def kill_client(self, timeout: float = 30) -> int:
        """What a client that dies does to the server: both pipe ends close."""
        self.proc.stdin.close()
        self.proc.stdout.close()
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()


def wait_call(id_: int, args: dict) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call",
            "params": {"name": "wait_for_messages", "arguments": args}}


def wait_until_waiting(bridge, n: int = 1) -> None:
    """The wait's first (empty) check is in the audit trail: it now sleeps."""
    deadline = time.monotonic() + 30
    while bridge.query("SELECT count(*) FROM audit WHERE action = 'message.wait'")[0][0] < n:
        assert time.monotonic() < deadline, "the wait never started"
        time.sleep(0.02)


async def test_a_cancelled_wait_leaves_the_message_unread(bridge):
    """Issue 11: stop at once on notifications/cancelled, mark nothing read."""
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        conv = await create_conv(a)
        raw = RawClient(bridge)
        try:
            raw.send(wait_call(1, conv.b(timeout_seconds=55)))
            wait_until_waiting(bridge)
            raw.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                      "params": {"requestId": 1, "reason": "the user pressed Esc"}})
            await a.ok("send_to_partner", **conv.a(message="after the cancel"))
            # Long enough for a wait that ignored the cancel to take it (it
            # wakes within milliseconds, or polls within 250 ms).
            await anyio.sleep(1.0)
            got = await b.ok("check_messages", **conv.b())
            assert [m["message"] for m in got["messages"]] == ["after the cancel"]
        finally:
            raw.kill_client()


async def test_a_client_killed_mid_wait_leaves_the_message_unread(bridge):
    """Issue 11: never mark a message read for a wait whose caller has gone."""
    async with bridge.agent("A") as a, bridge.agent("B") as b:
        conv = await create_conv(a)
        raw = RawClient(bridge)
        raw.send(wait_call(1, conv.b(timeout_seconds=55)))
        wait_until_waiting(bridge)
        raw.proc.stdin.close()
        raw.proc.stdout.close()
        await a.ok("send_to_partner", **conv.a(message="nobody is listening"))
        assert raw.kill_client() == 0
        got = await b.ok("check_messages", **conv.b())
        assert [m["message"] for m in got["messages"]] == ["nobody is listening"]
