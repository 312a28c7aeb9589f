"""Issue 18, teams: conversations of up to 16 participants, addressed messages, receipts,
participants and quotas; one `mcp-bridge serve` process per agent, all on one database.

Written from the issue and /work/wt/TEAMS-API.md only (not from the implementation).
"""

from __future__ import annotations

import json

import re
from contextlib import AsyncExitStack

import anyio
import pytest

from conftest import CONV_ID, TOKEN, create_conv, json_of_text, parse_rfc3339_utc, text_of
from teams_support import (MESSAGE_KEYS, OFF, PARTICIPANT_KEYS, SEAT_IDS, SEAT_KEYS, SEND_MESSAGE_KEYS, create_team,
                           drain, history, int_value, message_rows, spawn, table_counts)

pytestmark = pytest.mark.anyio

ROLES = ["lead", "w1", "w2", "w3", "w4"]
PER_SENDER = 16


def plan(k: int) -> list[tuple[str, str, list[str] | None]]:
    """Sender k's messages: (body, tool, `to` argument or None), and who must get each."""
    me = ROLES[k]
    others = [r for r in ROLES if r != me]
    out = []
    for i in range(PER_SENDER):
        body = f"{me}#{i}"
        kind = i % 4
        if kind == 0:
            out.append((body, "send_message", None))                       # broadcast by default
        elif kind == 1:
            out.append((body, "send_message", [others[(i // 4 + k) % 4]]))  # one recipient
        elif kind == 2:
            out.append((body, "send_message", [others[(i // 4 + k + 1) % 4], others[(i // 4 + k + 3) % 4]]))
        else:
            out.append((body, "send_to_partner", None))                    # N>2: every other participant
    return out


def to_field(error: dict, index: int | None) -> bool:
    """The field of a refused `to`: `to` (the contract's words) or, by the house convention for list
    elements (`files_involved[3]`), exactly `to[index]` of the offending entry."""
    return error.get("field") == "to" or (index is not None and error.get("field") == f"to[{index}]")


def recipients_of(k: int, to: list[str] | None) -> list[str]:
    return sorted(to) if to is not None else sorted(r for r in ROLES if r != ROLES[k])


# --------------------------------------------------------------------------- 5 agents, concurrently


async def test_five_agents_concurrent_broadcasts_and_direct_messages(bridge):
    async with AsyncExitStack() as stack:
        agents = [await stack.enter_async_context(spawn(bridge, r, **OFF)) for r in ROLES]
        team = await create_team(agents[0], "lead", ROLES[1:])
        c = team.created

        # --- create_conversation's result for partner_roles
        assert CONV_ID.match(c["conversation_id"])
        assert c["my_role"] == "lead" and c["partner_role"] == "w1", c
        assert [s["session_id"] for s in c["seats"]] == list("abcde"), c["seats"]
        assert [s["role"] for s in c["seats"]] == ROLES
        for s in c["seats"]:
            assert set(s) == SEAT_KEYS, s
            assert TOKEN.match(s["token"]), "every token seat gets a token"
        assert len({s["token"] for s in c["seats"]}) == 5
        assert c["session_a_token"] == c["seats"][0]["token"] and c["session_b_token"] == c["seats"][1]["token"]
        parse_rfc3339_utc(c["expires_at"], "expires_at")
        seat = {s.role: s for s in team.seats}

        expected: dict[str, list[str]] = {r: [] for r in ROLES}      # recipient -> bodies, any order
        sent: dict[str, dict] = {}                                  # body -> {id, recipients, to}
        ids_by_sender: dict[str, list[int]] = {r: [] for r in ROLES}
        for k in range(5):
            for body, _tool, to in plan(k):
                for r in recipients_of(k, to):
                    expected[r].append(body)
        got: dict[str, list[dict]] = {r: [] for r in ROLES}

        async def sender(k: int) -> None:
            me = ROLES[k]
            for body, tool, to in plan(k):
                args = seat[me].args(message=body)
                if to is not None:
                    args["to"] = to
                out = await agents[k].ok_args(tool, args)
                if tool == "send_message":
                    assert set(out) == SEND_MESSAGE_KEYS, out
                    parse_rfc3339_utc(out["stored_at"], "stored_at")
                else:
                    assert {"message_id", "redacted", "sent_at", "recipients"} <= set(out), out
                assert int_value(out["message_id"]), out
                assert sorted(out["recipients"]) == recipients_of(k, to), (body, out)
                assert out["redacted"] == []
                sent[body] = {"id": out["message_id"], "to": recipients_of(k, to), "from": me}
                ids_by_sender[me].append(out["message_id"])

        async def reader(k: int) -> None:
            me = ROLES[k]
            while len(got[me]) < len(expected[me]):
                if k % 2 == 0:
                    out = await agents[k].ok_args("wait_for_messages", seat[me].args(timeout_seconds=2))
                else:
                    out = await agents[k].ok_args("check_messages", seat[me].args())
                    if not out["messages"]:
                        await anyio.sleep(0.05)
                got[me].extend(out["messages"])

        with anyio.fail_after(240):
            async with anyio.create_task_group() as tg:
                for k in range(5):
                    tg.start_soon(sender, k)
                    tg.start_soon(reader, k)

        # --- nothing more for anyone, however asked
        for k, me in enumerate(ROLES):
            assert (await agents[k].ok_args("check_messages", seat[me].args()))["messages"] == [], me
            w = await agents[k].ok_args("wait_for_messages", seat[me].args(timeout_seconds=1))
            assert w["messages"] == [] and w["timed_out"] is True, (me, w)

        for k, me in enumerate(ROLES):
            msgs = got[me]
            bodies = [m["message"] for m in msgs]
            dups = sorted({b for b in bodies if bodies.count(b) > 1})
            assert not dups, f"{me} received more than once: {dups}"
            assert sorted(bodies) == sorted(expected[me]), (
                f"{me}: missing {sorted(set(expected[me]) - set(bodies))}, "
                f"not addressed to it {sorted(set(bodies) - set(expected[me]))}")
            seqs = [m["seq"] for m in msgs]
            assert seqs == sorted(seqs), f"{me}: received out of seq order: {seqs}"
            for m in msgs:
                assert set(m) >= MESSAGE_KEYS, m
                s = sent[m["message"]]
                assert m["seq"] == s["id"], m
                assert m["from_role"] == s["from"] != me, m
                assert sorted(m["to"]) == s["to"] and me in m["to"], m
                assert m["reply_to"] is None
                assert m["conversation_id"] == team.id
                assert m["action_type"] == "info" and m["files_involved"] == [] and m["redacted"] == []
                parse_rfc3339_utc(m["sent_at"], "sent_at")
            for other in ROLES:
                order = [int(m["message"].split("#")[1]) for m in msgs if m["from_role"] == other]
                assert order == sorted(order), f"{me}: messages from {other} out of send order: {order}"

        for me, ids in ids_by_sender.items():
            assert ids == sorted(ids) and len(set(ids)) == len(ids), f"{me}: message ids not increasing: {ids}"

        # --- history: exactly what was addressed to the caller plus what it sent, in seq order
        for k, me in enumerate(ROLES):
            h = await history(agents[k], seat[me].args())
            hb = [m["message"] for m in h]
            mine = [b for b, _t, _to in plan(k)]
            assert sorted(hb) == sorted(expected[me] + mine), (
                f"{me}: history differs: extra {sorted(set(hb) - set(expected[me] + mine))}, "
                f"missing {sorted(set(expected[me] + mine) - set(hb))}")
            assert [m["seq"] for m in h] == sorted(m["seq"] for m in h)
            for m in h:
                s = sent[m["message"]]
                assert m["seq"] == s["id"] and m["from_role"] == s["from"] and sorted(m["to"]) == s["to"], m
                assert m["conversation_id"] == team.id and m["reply_to"] is None

        # --- receipts: everything was read by every recipient
        for k, me in enumerate(ROLES):
            for body, _t, to in plan(k):
                st = await agents[k].ok_args("message_status", seat[me].args(message_id=sent[body]["id"]))
                assert st["message_id"] == sent[body]["id"]
                assert sorted(r["role"] for r in st["recipients"]) == recipients_of(k, to), st
                for r in st["recipients"]:
                    parse_rfc3339_utc(r["read_at"], f"read_at of {body} for {r['role']}")

        # --- unread all zero
        lp = await agents[3].ok_args("list_participants", seat["w3"].args())
        assert {p["role"]: p["unread"] for p in lp["participants"]} == {r: 0 for r in ROLES}, lp

    assert bridge.count("messages") == 5 * PER_SENDER


async def test_seat_tokens_bind_to_their_seat_and_16_seats_work(bridge):
    roles = [f"r{i:02d}" for i in range(15)]
    async with spawn(bridge, "A", **OFF) as a, spawn(bridge, "B", **OFF) as b:
        team = await create_team(a, "boss", roles)
        assert [s.session_id for s in team.seats] == list(SEAT_IDS), "seats are a..p in order"
        assert team.roles == ["boss", *roles]
        assert len({s.token for s in team.seats}) == 16 and all(TOKEN.match(s.token) for s in team.seats)
        last = team.seats[15]
        sent = await a.ok("send_message", **team.seats[0].args(message="to the last seat", to=[last.role]))
        assert sent["recipients"] == [last.role]
        got = (await b.ok_args("check_messages", last.args()))["messages"]
        assert [(m["message"], m["from_role"], m["to"]) for m in got] == [("to the last seat", "boss", [last.role])]
        # a seat's token works for that seat only
        c, d = team.seats[2], team.seats[3]
        await b.err("check_messages", "invalid_token", {"conversation_id": team.id, "session_id": d.session_id, "token": c.token})
        await b.err("send_message", "invalid_token",
                    {"conversation_id": team.id, "session_id": "a", "token": c.token, "message": "spoof"})
    assert bridge.count("messages") == 1


# --------------------------------------------------------------------------- refusals


async def assert_nothing_new(bridge, agent, team, before_counts, before_rows):
    assert table_counts(bridge) == before_counts, "a refused call changed the database"
    assert message_rows(bridge) == before_rows
    for s in team.seats:
        assert (await agent.ok_args("check_messages", s.args(peek=True)))["messages"] == [], s.role
        assert await history(agent, s.args()) == [], s.role


async def test_unknown_recipient_names_valid_roles_and_stores_nothing(bridge):
    async with spawn(bridge, "lead", **OFF) as a, spawn(bridge, "w", **OFF) as w:
        team = await create_team(a, "lead", ["w1", "w2"])
        lead = team.by_role("lead")
        counts, rows = table_counts(bridge), message_rows(bridge)
        for to, bad in ((["ghost"], 0), (["w1", "ghost"], 1), (["w1", "w2", "Ghost-2"], 2)):
            error = await a.err("send_message", "unknown_recipient", lead.args(message="hello?", to=to))
            for role in ("w1", "w2"):
                assert re.search(rf"\b{role}\b", error["message"]), f"the message should name valid role {role}: {error!r}"
            assert "field" not in error or to_field(error, bad), error
        # the same from another process, as the recipient
        error = await w.err("send_message", "unknown_recipient", team.by_role("w1").args(message="x", to=["nobody"]))
        assert "lead" in error["message"] and "w2" in error["message"], error
        await assert_nothing_new(bridge, w, team, counts, rows)


async def test_sending_to_oneself_is_refused(bridge):
    async with spawn(bridge, "lead", **OFF) as a:
        team = await create_team(a, "lead", ["w1", "w2"])
        counts, rows = table_counts(bridge), message_rows(bridge)
        for to, bad in ((["lead"], 0), (["w1", "lead"], 1)):
            error = await a.err("send_message", "invalid_argument", team.by_role("lead").args(message="me", to=to))
            assert to_field(error, bad), error
        error = await a.err("send_message", "invalid_argument", team.by_role("w2").args(message="me", to=["w2"]))
        assert to_field(error, 0), error
        await assert_nothing_new(bridge, a, team, counts, rows)


async def test_reply_to_must_be_a_visible_message_of_this_conversation(bridge):
    async with spawn(bridge, "lead", **OFF) as a, spawn(bridge, "workers", **OFF) as w:
        team = await create_team(a, "lead", ["w1", "w2"])
        other = await create_team(a, "x", ["y", "z"])
        lead, w1, w2 = (team.by_role(r) for r in ("lead", "w1", "w2"))
        to_w1 = (await a.ok("send_message", **lead.args(message="only for w1", to=["w1"])))["message_id"]
        elsewhere = (await a.ok("send_message", **other.by_role("x").args(message="other conv")))["message_id"]
        counts, rows = table_counts(bridge), message_rows(bridge)
        for bad in (to_w1, elsewhere, 999_999_999):
            error = await w.err("send_message", "invalid_argument", w2.args(message="re", reply_to=bad))
            assert error.get("field") == "reply_to", (bad, error)
        error = await w.err("send_message", "invalid_argument", w2.args(message="re", reply_to=-1))
        assert error.get("field") == "reply_to", error
        assert table_counts(bridge) == counts and message_rows(bridge) == rows

        # a visible one: w1 replies to what it received; the lead sees reply_to
        got = (await w.ok_args("check_messages", w1.args()))["messages"]
        assert [m["seq"] for m in got] == [to_w1]
        rep = await w.ok("send_message", **w1.args(message="re: only for w1", to=["lead"], reply_to=to_w1))
        assert rep["recipients"] == ["lead"]
        m, = (await a.ok_args("check_messages", lead.args()))["messages"]
        assert (m["message"], m["from_role"], m["to"], m["reply_to"]) == ("re: only for w1", "w1", ["lead"], to_w1)
        # the sender's own message is visible to it too (history shows what it sent)
        own = await a.ok("send_message", **lead.args(message="follow-up", to=["w1"], reply_to=to_w1))
        m, = (await w.ok_args("check_messages", w1.args()))["messages"]
        assert m["reply_to"] == to_w1 and m["seq"] == own["message_id"]
        # w2 never saw any of it
        assert [x["message"] for x in await history(w, w2.args())] == []


@pytest.mark.parametrize("case", ["sixteen", "duplicate", "duplicate_of_mine", "both", "empty", "bad_role"])
async def test_create_conversation_refusals(bridge, case):
    args = {
        "sixteen": {"my_role": "boss", "partner_roles": [f"r{i}" for i in range(16)]},
        "duplicate": {"my_role": "boss", "partner_roles": ["w1", "w2", "w1"]},
        "duplicate_of_mine": {"my_role": "boss", "partner_roles": ["w1", "boss"]},
        "both": {"my_role": "boss", "partner_role": "w0", "partner_roles": ["w1", "w2"]},
        "empty": {"my_role": "boss", "partner_roles": []},
        "bad_role": {"my_role": "boss", "partner_roles": ["w1", "not a role!"]},
    }[case]
    async with spawn(bridge, "A", **OFF) as a:
        await create_conv(a)  # the database exists; the refusal must add nothing to it
        counts = table_counts(bridge)
        error = await a.err("create_conversation", "invalid_argument", args)
        field = error.get("field") or ""
        if case == "both":
            assert field in ("partner_role", "partner_roles"), error
        else:
            assert field.startswith("partner_roles"), error
        if case == "sixteen":
            assert "15" in error["message"], f"the limit should be named: {error!r}"
        assert "not a role!" not in error["message"]
        assert table_counts(bridge) == counts


# --------------------------------------------------------------------------- receipts


async def test_receipts_unread_then_read_and_only_for_the_sender(bridge):
    async with spawn(bridge, "lead", **OFF) as a, spawn(bridge, "w1", **OFF) as p1, \
            spawn(bridge, "w2", **OFF) as p2, spawn(bridge, "w3", **OFF) as p3:
        team = await create_team(a, "lead", ["w1", "w2", "w3"])
        lead, w1, w2, w3 = (team.by_role(r) for r in ("lead", "w1", "w2", "w3"))
        other = await create_team(a, "x", ["y"])
        other_id = (await a.ok("send_message", **other.by_role("x").args(message="elsewhere")))["message_id"]

        result = await a.call("send_message", lead.args(message="for w1 and w2", to=["w2", "w1"]))
        sent = json_of_text(result)
        assert not result.is_error and "deliver" not in text_of(result).lower(), (
            f"a send says stored, never delivered: {text_of(result)!r}")
        mid = sent["message_id"]

        async def status():
            st = await a.ok("message_status", **lead.args(message_id=mid))
            assert set(st) == {"message_id", "recipients"} and st["message_id"] == mid, st
            for r in st["recipients"]:
                assert set(r) == {"role", "read_at"}, r
            assert sorted(r["role"] for r in st["recipients"]) == ["w1", "w2"], st
            return {r["role"]: r["read_at"] for r in st["recipients"]}

        assert await status() == {"w1": None, "w2": None}
        # peeking and reading history are not reading
        assert [m["seq"] for m in (await p1.ok_args("check_messages", w1.args(peek=True)))["messages"]] == [mid]
        assert [m["seq"] for m in await history(p2, w2.args())] == [mid]
        assert await status() == {"w1": None, "w2": None}

        assert [m["seq"] for m in (await p1.ok_args("check_messages", w1.args()))["messages"]] == [mid]
        st = await status()
        assert st["w2"] is None
        t1 = parse_rfc3339_utc(st["w1"], "read_at of w1")

        w = await p2.ok_args("wait_for_messages", w2.args(timeout_seconds=10))
        assert [m["seq"] for m in w["messages"]] == [mid]
        st = await status()
        assert parse_rfc3339_utc(st["w1"]) == t1, "a read_at does not move once set"
        parse_rfc3339_utc(st["w2"], "read_at of w2")

        # only the sender may ask; anyone else, or an unknown id: message_not_found
        for agent, s in ((p1, w1), (p2, w2), (p3, w3)):
            await agent.err("message_status", "message_not_found", s.args(message_id=mid))
        await a.err("message_status", "message_not_found", lead.args(message_id=999_999_999))
        await a.err("message_status", "message_not_found", lead.args(message_id=other_id))
        # the sender's seat in the other conversation sees its own message there
        st = await a.ok("message_status", **other.by_role("x").args(message_id=other_id))
        assert st["recipients"] == [{"role": "y", "read_at": None}]
        # a message w1 sent: the lead is not its sender
        reply = (await p1.ok("send_message", **w1.args(message="ack", to=["lead"])))["message_id"]
        await a.err("message_status", "message_not_found", lead.args(message_id=reply))
        st = await p1.ok("message_status", **w1.args(message_id=reply))
        assert st == {"message_id": reply, "recipients": [{"role": "lead", "read_at": None}]}


# --------------------------------------------------------------------------- participants


async def test_list_participants_roles_seats_unread_and_status(bridge):
    async with spawn(bridge, "lead", **OFF) as a, spawn(bridge, "w1", **OFF) as p1, spawn(bridge, "w2", **OFF) as p2:
        team = await create_team(a, "lead", ["w1", "w2", "w3"])
        lead, w1, w2, w3 = (team.by_role(r) for r in ("lead", "w1", "w2", "w3"))
        await a.ok("send_message", **lead.args(message="all 1"))
        await a.ok("send_message", **lead.args(message="all 2"))
        await a.ok("send_message", **lead.args(message="w1 only", to=["w1"]))
        await p2.ok("send_message", **w2.args(message="to lead", to=["lead"]))

        async def listing(agent, s):
            lp = await agent.ok("list_participants", **s.args())
            assert set(lp) >= {"participants", "heartbeat_window_seconds"}, lp
            assert int_value(lp["heartbeat_window_seconds"]) and lp["heartbeat_window_seconds"] > 0
            ps = lp["participants"]
            assert [(p["session_id"], p["role"]) for p in ps] == [("a", "lead"), ("b", "w1"), ("c", "w2"), ("d", "w3")], ps
            for p in ps:
                # `revoked` is not in the contract; the implementation adds it (reported)
                assert set(p) - {"revoked"} == PARTICIPANT_KEYS, p
                assert p.get("revoked", False) is False, p
                assert p["agent"] is False, p
                assert int_value(p["unread"]), p
                if p["last_heartbeat"] is None:
                    assert p["alive"] is False and p["seconds_since_heartbeat"] is None, p
            return {p["role"]: p for p in ps}

        ps = await listing(p1, w1)
        assert {r: p["unread"] for r, p in ps.items()} == {"lead": 1, "w1": 3, "w2": 2, "w3": 2}
        assert all(p["status"] is None and p["note"] is None for p in ps.values()), ps

        await p1.ok("check_messages", **w1.args())
        await p2.ok("check_messages", **w2.args(peek=True))  # peeking reads nothing
        ps = await listing(a, lead)
        assert {r: p["unread"] for r, p in ps.items()} == {"lead": 1, "w1": 0, "w2": 2, "w3": 2}
        await a.ok("wait_for_messages", **lead.args(timeout_seconds=5))
        await p2.ok("check_messages", **w2.args())

        st = await p2.ok("update_my_status", **w2.args(status="blocked", note="waiting on w1's schema"))
        ps = await listing(p2, w3)  # any seat may list; w3 never called anything itself
        assert {r: p["unread"] for r, p in ps.items()} == {"lead": 0, "w1": 0, "w2": 0, "w3": 2}
        assert (ps["w2"]["status"], ps["w2"]["note"], ps["w2"]["alive"]) == ("blocked", "waiting on w1's schema", True)
        hb = parse_rfc3339_utc(ps["w2"]["last_heartbeat"], "last_heartbeat")
        assert abs((hb - parse_rfc3339_utc(st["heartbeat_at"])).total_seconds()) < 1.0, (ps["w2"], st)
        assert int_value(ps["w2"]["seconds_since_heartbeat"]) and 0 <= ps["w2"]["seconds_since_heartbeat"] <= 60
        assert ps["w3"]["status"] is None and ps["w1"]["status"] is None
        await a.ok("update_my_status", **lead.args(status="working"))
        ps = await listing(p1, w1)
        assert (ps["lead"]["status"], ps["lead"]["note"], ps["lead"]["alive"]) == ("working", None, True)
        assert ps["w2"]["status"] == "blocked"

        # a wrong token is refused as everywhere else
        await p1.err("list_participants", "invalid_token", w1.args(token=w2.token))


# --------------------------------------------------------------------------- two-party and send_to_partner


async def test_two_party_conversations_unchanged_with_additive_fields(bridge):
    async with spawn(bridge, "A", **OFF) as a, spawn(bridge, "B", **OFF) as b:
        conv = await create_conv(a, "planner", "coder")
        c = conv.created
        assert c["seats"] == [{"session_id": "a", "role": "planner", "token": conv.a_token},
                              {"session_id": "b", "role": "coder", "token": conv.b_token}], c
        sent = await a.ok("send_to_partner", **conv.a(message="hi", action_type="question"))
        assert {"message_id", "redacted", "sent_at", "recipients"} <= set(sent), sent
        assert sent["recipients"] == ["coder"]
        m, = (await b.ok("check_messages", **conv.b()))["messages"]
        assert (m["seq"], m["message"], m["from_role"], m["to"], m["reply_to"], m["conversation_id"], m["action_type"]) == (
            sent["message_id"], "hi", "planner", ["coder"], None, conv.id, "question")
        ps = await b.ok("check_partner_status", **conv.b())
        assert ps["partner_role"] == "planner" and ps["unread_by_partner"] == 0
        # send_message in a two-party conversation: default recipient is the partner
        sm = await b.ok("send_message", **conv.b(message="answer", action_type="answer", reply_to=sent["message_id"]))
        assert sm["recipients"] == ["planner"]
        assert (await a.ok("check_partner_status", **conv.a()))["unread_by_partner"] == 0
        w = await a.ok("wait_for_messages", **conv.a(timeout_seconds=5))
        assert [(x["message"], x["reply_to"], x["to"]) for x in w["messages"]] == [("answer", sent["message_id"], ["planner"])]
        h = await history(b, conv.b())
        assert [x["message"] for x in h] == ["hi", "answer"]


async def test_send_to_partner_in_a_team_goes_to_every_other_participant(bridge):
    async with spawn(bridge, "lead", **OFF) as a, spawn(bridge, "others", **OFF) as o:
        team = await create_team(a, "lead", ["w1", "w2", "w3"])
        w2 = team.by_role("w2")
        sent = await o.ok("send_to_partner", **w2.args(message="from w2 to all"))
        assert sorted(sent["recipients"]) == ["lead", "w1", "w3"], sent
        for s, agent in ((team.by_role("lead"), a), (team.by_role("w1"), o), (team.by_role("w3"), o)):
            m, = (await agent.ok_args("check_messages", s.args()))["messages"]
            assert (m["message"], m["from_role"], sorted(m["to"])) == ("from w2 to all", "w2", ["lead", "w1", "w3"])
        assert (await o.ok_args("check_messages", w2.args()))["messages"] == []
        # check_partner_status has no single partner here
        error = await a.err("check_partner_status", "invalid_argument", team.by_role("lead").args())
        assert "list_participants" in error["message"], error


# --------------------------------------------------------------------------- quotas


async def test_message_quota_per_conversation(bridge):
    env = {**OFF, "MCP_BRIDGE_MAX_MESSAGES_PER_CONVERSATION": "3"}
    async with spawn(bridge, "lead", **env) as a, spawn(bridge, "w", **env) as w:
        team = await create_team(a, "lead", ["w1", "w2"])
        lead, w1 = team.by_role("lead"), team.by_role("w1")
        await a.ok("send_message", **lead.args(message="one"))            # a broadcast is one message
        await w.ok("send_message", **w1.args(message="two", to=["lead"]))
        await a.ok("send_to_partner", **lead.args(message="three"))
        counts, rows = table_counts(bridge), message_rows(bridge)
        for agent, args, tool in ((a, lead.args(message="four"), "send_message"),
                                  (w, w1.args(message="four", to=["w2"]), "send_message"),
                                  (w, w1.args(message="four"), "send_to_partner")):
            error = await agent.err(tool, "quota_exceeded", args)
            assert re.search(r"\b3\b", error["message"]) and "message" in error["message"].lower(), (
                f"the message should name the message quota and its value 3: {error!r}")
        assert table_counts(bridge) == counts and message_rows(bridge) == rows
        assert [m["message"] for m in await history(w, team.by_role("w2").args())] == ["one", "three"]
        # the quota is per conversation: another one still takes messages
        conv = await create_conv(a)
        for i in range(3):
            await a.ok("send_to_partner", **conv.a(message=f"c{i}"))
        await w.err("send_to_partner", "quota_exceeded", conv.b(message="c3"))


async def test_message_quota_holds_across_concurrent_processes(bridge):
    env = {**OFF, "MCP_BRIDGE_MAX_MESSAGES_PER_CONVERSATION": "3"}
    async with spawn(bridge, "p1", **env) as p1, spawn(bridge, "p2", **env) as p2, spawn(bridge, "p3", **env) as p3:
        team = await create_team(p1, "lead", ["w1", "w2"])
        results = []

        async def burst(agent, s):
            for i in range(4):
                results.append(await agent.call("send_message", s.args(message=f"{s.role}-{i}")))

        async with anyio.create_task_group() as tg:
            for agent, s in zip((p1, p2, p3), team.seats):
                tg.start_soon(burst, agent, s)
        ok = [r for r in results if not r.is_error]
        assert len(ok) == 3, f"{len(ok)} sends accepted under a quota of 3"
        for r in results:
            if r.is_error:
                assert json_of_text(r)["error"]["code"] == "quota_exceeded", text_of(r)
        assert bridge.count("messages") == 3


async def test_byte_quota_per_conversation(bridge):
    env = {**OFF, "MCP_BRIDGE_MAX_BYTES_PER_CONVERSATION": "1000"}
    async with spawn(bridge, "lead", **env) as a, spawn(bridge, "w", **env) as w:
        team = await create_team(a, "lead", ["w1", "w2"])
        lead, w1 = team.by_role("lead"), team.by_role("w1")
        await a.ok("send_message", **lead.args(message="a" * 400))
        await w.ok("send_message", **w1.args(message="b" * 400, to=["lead"]))
        counts, rows = table_counts(bridge), message_rows(bridge)
        for agent, args in ((a, lead.args(message="c" * 400)), (w, w1.args(message="d" * 400, to=["w2"]))):
            error = await agent.err("send_message", "quota_exceeded", args)
            assert re.search(r"\b1000\b|\b1,000\b", error["message"]) and "byte" in error["message"].lower(), (
                f"the message should name the byte quota and its value 1000: {error!r}")
        assert table_counts(bridge) == counts and message_rows(bridge) == rows
        # a single message larger than the whole quota, in a fresh conversation
        conv = await create_conv(a)
        error = await a.err("send_to_partner", "quota_exceeded", conv.a(message="e" * 1001))
        assert "byte" in error["message"].lower(), error
        await a.ok("send_to_partner", **conv.a(message="small"))
        assert bridge.count("messages") == 3


async def test_quota_off_is_accepted(bridge):
    env = {**OFF, "MCP_BRIDGE_MAX_MESSAGES_PER_CONVERSATION": "off", "MCP_BRIDGE_MAX_BYTES_PER_CONVERSATION": "off"}
    async with spawn(bridge, "A", **env) as a, spawn(bridge, "B", **env) as b:
        conv = await create_conv(a)
        for i in range(5):
            await a.ok("send_to_partner", **conv.a(message=f"m{i}" * 10_000))
        assert len((await b.ok("check_messages", **conv.b()))["messages"]) == 5


# --------------------------------------------------------------------------- hostile `to`


async def test_hostile_to_lists(bridge):
    async with spawn(bridge, "lead", **OFF) as a, spawn(bridge, "w", **OFF) as w:
        team = await create_team(a, "lead", ["w1", "w2"])
        lead = team.by_role("lead")
        counts, rows = table_counts(bridge), message_rows(bridge)
        # an empty list addresses nobody: storing it would be a silent loss
        error = await a.err("send_message", "invalid_argument", lead.args(message="to nobody", to=[]))
        assert to_field(error, None), error
        # a control character in a role: refused, never echoed
        result = await a.call("send_message", lead.args(message="x", to=["w1\x1b[2J"]))
        assert result.is_error, "a role with an escape sequence was accepted"
        assert "\x1b" not in text_of(result), "the escape sequence came back in the error"
        assert json_of_text(result)["error"]["code"] in ("invalid_argument", "unknown_recipient"), text_of(result)
        assert table_counts(bridge) == counts and message_rows(bridge) == rows
        # a role named twice: either refused, or stored once and received once
        result = await a.call("send_message", lead.args(message="twice?", to=["w1", "w1"]))
        if result.is_error:
            assert to_field(json_of_text(result)["error"], 1), text_of(result)
            assert table_counts(bridge) == counts
        else:
            assert json_of_text(result)["recipients"] == ["w1"], text_of(result)
            got = await drain(w, team.by_role("w1").args())
            assert [m["message"] for m in got] == ["twice?"]
            assert [m["to"] for m in got] == [["w1"]]
            lp = await a.ok("list_participants", **lead.args())
            assert {p["role"]: p["unread"] for p in lp["participants"]} == {"lead": 0, "w1": 0, "w2": 0}


# --------------------------------------------------------------------------- prompts


async def test_prompts_start_a_team_join_and_the_four_use_cases(bridge):
    async with spawn(bridge, "A") as a:
        assert a.init.capabilities.prompts is not None, "the server must advertise prompts"
        prompts = (await a.session.list_prompts()).prompts
        assert len(prompts) >= 6, [p.name for p in prompts]
        tool_names = {t.name for t in (await a.session.list_tools()).tools} | {"my_conversations"}
        conv_id = "conv_" + "0" * 32
        texts = {}
        for p in prompts:
            args = {}
            for arg in p.arguments or []:  # required arguments only: optional ones have grammars of their own
                if arg.required:
                    args[arg.name] = conv_id if "conversation" in arg.name.lower() else "build the login page"
            got = await a.session.get_prompt(p.name, args)
            assert got.messages, f"prompt {p.name} has no messages"
            text = "\n".join(m.content.text for m in got.messages if getattr(m.content, "text", None))
            assert text.strip(), f"prompt {p.name} has no text"
            named = {t for t in tool_names if t in text}
            assert named, f"prompt {p.name} names no tool to call: {text[:300]!r}"
            assert not re.search(r"mcp[ab]_[A-Za-z0-9_-]{43}", text), f"prompt {p.name} carries a token or credential"
            texts[p.name] = (f"{p.name} {p.title or ''} {p.description or ''}".lower(), text)

        def find(*words):
            return [n for n, (meta, _t) in texts.items() if any(w in meta for w in words)]

        assert any("create_conversation" in texts[n][1] for n in find("team", "start")), "no prompt starts a team"
        joins = find("join")
        assert joins and any(conv_id in texts[n][1] for n in joins), "no prompt joins a conversation from its id"
        for words in (("api",), ("security",), ("expert", "special"), ("parallel",)):
            assert find(*words), f"no prompt for the use case {words[0]!r}: {sorted(texts)}"


# --------------------------------------------------------------------------- one seat, two reading processes


async def test_one_seat_read_by_two_processes_gets_each_message_once(bridge):
    n = 30
    async with spawn(bridge, "lead", **OFF) as a, spawn(bridge, "w1-x", **OFF) as x, \
            spawn(bridge, "w1-y", **OFF) as y, spawn(bridge, "w2", **OFF) as z:
        team = await create_team(a, "lead", ["w1", "w2"])
        lead, w1, w2 = (team.by_role(r) for r in ("lead", "w1", "w2"))
        got = {"x": [], "y": [], "z": []}

        async def send():
            for i in range(n):
                await a.ok("send_message", **lead.args(message=f"b{i}"))

        def pending(key):
            return len(got["z"]) < n if key == "z" else len(got["x"]) + len(got["y"]) < n

        async def read(key, agent, s):
            while pending(key):
                tool = "wait_for_messages" if key == "x" else "check_messages"
                extra = {"timeout_seconds": 1} if tool == "wait_for_messages" else {}
                msgs = (await agent.ok_args(tool, s.args(**extra)))["messages"]
                got[key] += msgs
                if not msgs:
                    await anyio.sleep(0.02)

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                tg.start_soon(read, "x", x, w1)
                tg.start_soon(read, "y", y, w1)
                tg.start_soon(read, "z", z, w2)
        w1_bodies = [m["message"] for m in got["x"] + got["y"]]
        assert sorted(w1_bodies) == sorted(f"b{i}" for i in range(n)), f"w1's two processes: {sorted(w1_bodies)}"
        for key in ("x", "y", "z"):
            seqs = [m["seq"] for m in got[key]]
            assert seqs == sorted(seqs), (key, seqs)
        assert [m["message"] for m in got["z"]] == [f"b{i}" for i in range(n)]
        assert (await x.ok_args("check_messages", w1.args()))["messages"] == []
        assert (await z.ok_args("check_messages", w2.args()))["messages"] == []


@pytest.mark.parametrize("value", ["2", 2])
async def test_message_quota_from_the_config_file(bridge, value):
    """`[limits] max_messages_per_conversation` in the config file (the contract names the key, not its
    TOML type: a string like the other limits, and a plain integer, are both tried)."""
    cfg = bridge.tmp / "mcp-bridge.toml"
    rendered = f'"{value}"' if isinstance(value, str) else str(value)
    cfg.write_text(f"[limits]\nmax_messages_per_conversation = {rendered}\nrate_limit = \"off\"\n")
    async with spawn(bridge, "A", MCP_BRIDGE_CONFIG=str(cfg), MCP_BRIDGE_READ_RATE_LIMIT="off") as a:
        team = await create_team(a, "lead", ["w1", "w2"])
        await a.ok("send_message", **team.by_role("lead").args(message="one"))
        await a.ok("send_message", **team.by_role("w1").args(message="two"))
        error = await a.err("send_message", "quota_exceeded", team.by_role("w2").args(message="three"))
        assert re.search(r"\b2\b", error["message"]), error
    assert bridge.count("messages") == 2


# --------------------------------------------------------------------------- per-recipient paging and counts


async def test_history_pages_and_remaining_count_only_the_callers_messages(bridge):
    async with spawn(bridge, "lead", **OFF) as a, spawn(bridge, "w", **OFF) as w:
        team = await create_team(a, "lead", ["w1", "w2"])
        lead, w1, w2 = (team.by_role(r) for r in ("lead", "w1", "w2"))
        for i in range(105):
            await a.ok("send_message", **lead.args(message=f"w1-{i}", to=["w1"]))
            if i % 35 == 0:
                await a.ok("send_message", **lead.args(message=f"w2-{i}", to=["w2"]))
        # history in small pages: exactly the caller's messages, in order, and the cursor ends
        seen, after, pages = [], 0, 0
        while True:
            page = await w.ok("read_history", **w2.args(after_seq=after, limit=2))
            pages += 1
            assert pages < 60, "read_history's cursor does not end"
            seen += [m["message"] for m in page["messages"]]
            if not page["more"]:
                break
            assert page["next_after_seq"] > after, page
            after = page["next_after_seq"]
        assert seen == ["w2-0", "w2-35", "w2-70"], seen
        # check_messages: at most 100, and `remaining` counts what is left for this caller only
        first = await w.ok("check_messages", **w1.args())
        assert len(first["messages"]) == 100 and first["remaining"] == 5, (len(first["messages"]), first["remaining"])
        second = await w.ok("check_messages", **w1.args())
        assert [m["message"] for m in second["messages"]] == [f"w1-{i}" for i in range(100, 105)]
        assert second["remaining"] == 0
        got = await w.ok("check_messages", **w2.args())
        assert [m["message"] for m in got["messages"]] == ["w2-0", "w2-35", "w2-70"] and got["remaining"] == 0


async def test_refused_sends_use_no_quota_and_missing_seat_letters_are_refused(bridge):
    env = {**OFF, "MCP_BRIDGE_MAX_MESSAGES_PER_CONVERSATION": "3"}
    async with spawn(bridge, "lead", **env) as a:
        team = await create_team(a, "lead", ["w1", "w2"])
        lead = team.by_role("lead")
        await a.ok("send_message", **lead.args(message="one"))
        await a.ok("send_message", **lead.args(message="two"))
        for _ in range(4):
            await a.err("send_message", "unknown_recipient", lead.args(message="x", to=["ghost"]))
            await a.err("send_message", "invalid_argument", lead.args(message="x", to=["lead"]))
            await a.err("send_message", "invalid_argument", lead.args(message="x", reply_to=999_999))
        await a.ok("send_message", **lead.args(message="three"))
        await a.err("send_message", "quota_exceeded", lead.args(message="four"))
        # seat letters: d does not exist in a 3-seat conversation, q never does
        for sid in ("d", "q"):
            error = await a.err("check_messages", "invalid_argument",
                                {"conversation_id": team.id, "session_id": sid, "token": lead.token})
            assert error.get("field") == "session_id", error
    # Bodies are sealed at rest: the overseer's export opens them.
    exported = bridge.cli("export", team.id, "--db", str(bridge.db))
    assert exported.returncode == 0, exported.stderr.decode(errors="replace")
    assert [m["body"] for m in json.loads(exported.stdout)["messages"]] == ["one", "two", "three"]
    assert len(message_rows(bridge)) == 3


async def test_out_of_range_ids_are_refused_cleanly(bridge):
    """Ids past 2**63 and below 1: refused naming the field (message_id, reply_to), nothing stored."""
    async with spawn(bridge, "lead", **OFF) as a:
        team = await create_team(a, "lead", ["w1", "w2"])
        lead = team.by_role("lead")
        await a.ok("send_message", **lead.args(message="one"))
        counts = table_counts(bridge)
        for big in (2**63, 2**64 + 1, -1, 0):
            r = await a.call("message_status", lead.args(message_id=big))
            code = json_of_text(r)["error"]["code"] if r.is_error else None
            assert code in ("message_not_found", "invalid_argument"), (big, text_of(r))
            if code == "invalid_argument":  # "which field": the house rule for every refusal
                assert json_of_text(r)["error"].get("field") == "message_id", (big, text_of(r))
            r = await a.call("send_message", lead.args(message="re", reply_to=big))
            assert r.is_error and json_of_text(r)["error"]["code"] == "invalid_argument", (big, text_of(r))
            assert json_of_text(r)["error"].get("field") == "reply_to", text_of(r)
        assert table_counts(bridge) == counts
