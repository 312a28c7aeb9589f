"""2. Concurrency: 4 sender processes and 3 reader processes on one conversation.

Every message must be delivered exactly once across readers, in seq order per
reader, and in send order per sender.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import pytest

from conftest import create_conv

pytestmark = pytest.mark.anyio

SENDERS = 4
READERS = 3
N = 40
TOTAL = SENDERS * N
OFF = {"MCP_BRIDGE_RATE_LIMIT": "off", "MCP_BRIDGE_READ_RATE_LIMIT": "off"}


async def test_exactly_once_delivery_across_processes(bridge):
    async with AsyncExitStack() as stack:
        senders = [await stack.enter_async_context(bridge.agent(f"sender{k}", **OFF)) for k in range(SENDERS)]
        readers = [await stack.enter_async_context(bridge.agent(f"reader{r}", **OFF)) for r in range(READERS)]
        conv = await create_conv(senders[0], "writer", "reader")

        sent_ids: dict[str, int] = {}            # body -> message_id returned to the sender
        per_sender_ids: list[list[int]] = [[] for _ in range(SENDERS)]
        got: list[list[dict]] = [[] for _ in range(READERS)]
        polls = [0] * READERS

        async def send(k: int) -> None:
            for i in range(N):
                body = f"s{k}-{i}"
                out = await senders[k].ok("send_to_partner", **conv.a(message=body))
                sent_ids[body] = out["message_id"]
                per_sender_ids[k].append(out["message_id"])

        async def read(r: int) -> None:
            while sum(len(g) for g in got) < TOTAL:
                msgs = (await readers[r].ok("check_messages", **conv.b()))["messages"]
                polls[r] += 1
                got[r].extend(msgs)
                if not msgs:
                    await anyio.sleep(0.05)

        with anyio.fail_after(150):
            async with anyio.create_task_group() as tg:
                async def senders_group() -> None:
                    async with anyio.create_task_group() as sg:
                        for k in range(SENDERS):
                            sg.start_soon(send, k)

                tg.start_soon(senders_group)
                for r in range(READERS):
                    tg.start_soon(read, r)

        # nothing left behind for anyone
        for r in range(READERS):
            assert (await readers[r].ok("check_messages", **conv.b()))["messages"] == []
        assert (await senders[0].ok("check_messages", **conv.a()))["messages"] == [], "session a got its own messages"

    union = [m for g in got for m in g]
    bodies = [m["message"] for m in union]
    seqs = [m["seq"] for m in union]
    dup_bodies = sorted({b for b in bodies if bodies.count(b) > 1})
    assert not dup_bodies, f"delivered more than once: {dup_bodies[:20]}"
    assert len(set(seqs)) == len(seqs), "duplicate seqs across readers"
    expected = {f"s{k}-{i}" for k in range(SENDERS) for i in range(N)}
    assert set(bodies) == expected, f"missing: {sorted(expected - set(bodies))[:20]}, unexpected: {sorted(set(bodies) - expected)[:20]}"
    assert len(union) == TOTAL

    # seq is the message_id the sender got back
    for m in union:
        assert m["seq"] == sent_ids[m["message"]], m
        assert m["from_role"] == "writer"
        assert m["action_type"] == "info"

    # each reader's own list is strictly increasing in seq
    for r, g in enumerate(got):
        rs = [m["seq"] for m in g]
        assert rs == sorted(rs) and len(set(rs)) == len(rs), f"reader{r} got out-of-order seqs: {rs}"

    # per sender, messages appear in send order when sorted by seq
    by_seq = sorted(union, key=lambda m: m["seq"])
    for k in range(SENDERS):
        order = [int(m["message"].split("-")[1]) for m in by_seq if m["message"].startswith(f"s{k}-")]
        assert order == list(range(N)), f"sender {k} out of order by seq: {order}"
        assert per_sender_ids[k] == sorted(per_sender_ids[k]), f"sender {k} got non-increasing message_ids"

    print("per-reader counts", [len(g) for g in got], "polls", polls)
    assert bridge.count("messages") == TOTAL
