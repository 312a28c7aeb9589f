"""3. Each bad input gets its own error code, never echoes the input, and stores nothing."""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable

import anyio
import pytest

from conftest import Conv, check_error, create_conv, text_of

pytestmark = pytest.mark.anyio

OFF = {"MCP_BRIDGE_RATE_LIMIT": "off", "MCP_BRIDGE_READ_RATE_LIMIT": "off"}
LIMIT = 51200


def rand_token() -> str:
    return "mcpb_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def rand_conv_id() -> str:
    return "conv_" + secrets.token_hex(16)


def digits_normalized(s: str) -> str:
    """'51,200' / '51_200' / '51 200' -> '51200' (formatting is free, the numbers are not)."""
    return re.sub(r"(?<=\d)[,_ \u202f](?=\d{3}\b)", "", s)


@dataclass
class Ctx:
    conv: Conv
    other: Conv
    wrong_token: str
    unknown_conv: str


@dataclass
class Case:
    id: str
    tool: str
    args: Callable[[Ctx], dict[str, Any]]
    code: str
    field: str | None = None          # the field the error must name
    no_echo: Callable[[Ctx], list[str]] = lambda ctx: []  # strings that must not come back


LONG_ROLE = "R0leTooLong" + "x" * 54          # 65 chars
LONG_PATH = "src/" + "p" * 1021              # 1025 chars
LONG_NOTE = "N0teTooLong" + "n" * 1014       # 1025 chars

CASES = [
    # missing fields
    Case("send_missing_message", "send_to_partner", lambda c: c.conv.a(), "invalid_argument", "message"),
    Case("send_missing_token", "send_to_partner",
         lambda c: {"conversation_id": c.conv.id, "session_id": "a", "message": "hi"}, "invalid_argument", "token"),
    Case("send_missing_conversation_id", "send_to_partner",
         lambda c: {"session_id": "a", "token": c.conv.a_token, "message": "hi"}, "invalid_argument", "conversation_id",
         lambda c: [c.conv.a_token]),
    Case("create_missing_partner_role", "create_conversation", lambda c: {"my_role": "planner"},
         "invalid_argument", "partner_role"),
    Case("status_missing_status", "update_my_status", lambda c: c.conv.a(note="x"), "invalid_argument", "status"),
    Case("check_missing_session_id", "check_messages",
         lambda c: {"conversation_id": c.conv.id, "token": c.conv.b_token}, "invalid_argument", "session_id",
         lambda c: [c.conv.b_token]),
    # unknown fields (the error names the field, not its value)
    Case("send_unknown_field", "send_to_partner", lambda c: c.conv.a(message="hi", bogus_field="ZZunknownVAL"),
         "invalid_argument", "bogus_field", lambda c: ["ZZunknownVAL", c.conv.a_token]),
    Case("create_unknown_field", "create_conversation",
         lambda c: {"my_role": "planner", "partner_role": "coder", "priority_level": "ZZunknownVAL"},
         "invalid_argument", "priority_level", lambda c: ["ZZunknownVAL"]),
    Case("check_unknown_field", "check_messages", lambda c: c.conv.b(mark_read=False),
         "invalid_argument", "mark_read", lambda c: [c.conv.b_token]),
    Case("partner_status_unknown_field", "check_partner_status", lambda c: c.conv.b(verbose=True),
         "invalid_argument", "verbose"),
    # wrong types
    Case("files_as_string", "send_to_partner", lambda c: c.conv.a(message="hi", files_involved="src/ZZa.rs"),
         "invalid_argument", "files_involved", lambda c: ["src/ZZa.rs"]),
    Case("message_as_int", "send_to_partner", lambda c: c.conv.a(message=424242), "invalid_argument", "message"),
    Case("session_id_as_int", "check_messages", lambda c: c.conv.b(session_id=1), "invalid_argument", "session_id"),
    Case("files_with_int", "send_to_partner", lambda c: c.conv.a(message="hi", files_involved=["ok.rs", 7]),
         "invalid_argument", "files_involved"),
    # bad enum values
    Case("bad_session_id", "send_to_partner", lambda c: c.conv.a(session_id="q", message="hi"),
         "invalid_argument", "session_id"),
    # "c" is a seat's shape (teams have up to 16), but a conversation of two has no seat c.
    Case("absent_seat", "send_to_partner", lambda c: c.conv.a(session_id="c", message="hi"),
         "invalid_argument", "session_id"),
    Case("bad_action_type", "send_to_partner", lambda c: c.conv.a(message="hi", action_type="shoutZZ"),
         "invalid_argument", "action_type", lambda c: ["shoutZZ"]),
    Case("bad_status", "update_my_status", lambda c: c.conv.a(status="sleepingZZ"), "invalid_argument", "status",
         lambda c: ["sleepingZZ"]),
    # roles
    Case("role_too_long", "create_conversation", lambda c: {"my_role": LONG_ROLE, "partner_role": "coder"},
         "invalid_argument", "my_role", lambda c: [LONG_ROLE]),
    Case("role_bad_chars", "create_conversation", lambda c: {"my_role": "planner", "partner_role": "bad roleZZ!"},
         "invalid_argument", "partner_role", lambda c: ["bad roleZZ!"]),
    Case("role_empty", "create_conversation", lambda c: {"my_role": "", "partner_role": "coder"},
         "invalid_argument", "my_role"),
    # message / files / note limits
    Case("empty_message", "send_to_partner", lambda c: c.conv.a(message=""), "invalid_argument", "message"),
    Case("files_51", "send_to_partner",
         lambda c: c.conv.a(message="hi", files_involved=[f"src/fileZZ{i}.rs" for i in range(51)]),
         "invalid_argument", "files_involved", lambda c: ["src/fileZZ50.rs"]),
    Case("file_path_1025", "send_to_partner", lambda c: c.conv.a(message="hi", files_involved=[LONG_PATH]),
         "invalid_argument", "files_involved", lambda c: [LONG_PATH[:64]]),
    Case("file_path_empty", "send_to_partner", lambda c: c.conv.a(message="hi", files_involved=[""]),
         "invalid_argument", "files_involved"),
    Case("note_too_long", "update_my_status", lambda c: c.conv.a(status="working", note=LONG_NOTE),
         "invalid_argument", "note", lambda c: [LONG_NOTE[:64]]),
    # authentication
    Case("wrong_token", "send_to_partner", lambda c: c.conv.a(token=c.wrong_token, message="hi"),
         "invalid_token", None, lambda c: [c.wrong_token]),
    Case("a_token_as_b", "send_to_partner", lambda c: c.conv.b(token=c.conv.a_token, message="hi"),
         "invalid_token", None, lambda c: [c.conv.a_token]),
    Case("b_token_as_a", "send_to_partner", lambda c: c.conv.a(token=c.conv.b_token, message="hi"),
         "invalid_token", None, lambda c: [c.conv.b_token]),
    Case("token_of_other_conversation", "send_to_partner", lambda c: c.conv.a(token=c.other.a_token, message="hi"),
         "invalid_token", None, lambda c: [c.other.a_token]),
    Case("wrong_token_check_messages", "check_messages", lambda c: c.conv.b(token=c.wrong_token),
         "invalid_token", None, lambda c: [c.wrong_token]),
    Case("a_token_as_b_check_messages", "check_messages", lambda c: c.conv.b(token=c.conv.a_token),
         "invalid_token", None, lambda c: [c.conv.a_token]),
    Case("wrong_token_update_status", "update_my_status", lambda c: c.conv.a(token=c.wrong_token, status="working"),
         "invalid_token", None, lambda c: [c.wrong_token]),
    Case("wrong_token_partner_status", "check_partner_status", lambda c: c.conv.b(token=c.wrong_token),
         "invalid_token", None, lambda c: [c.wrong_token]),
    # ids are checked by their exact shape (issue 10: hostile ids reached the audit trail)
    Case("conversation_id_is_an_aws_key", "send_to_partner",
         lambda c: c.conv.a(conversation_id="AKIAZZ3456789ABCDEFG", message="hi"),
         "invalid_argument", "conversation_id", lambda c: ["AKIAZZ3456789ABCDEFG", c.conv.a_token]),
    Case("conversation_id_is_a_seat_token", "check_messages", lambda c: c.conv.b(conversation_id=c.conv.a_token),
         "invalid_argument", "conversation_id", lambda c: [c.conv.a_token, c.conv.b_token]),
    Case("conversation_id_uppercase_hex", "check_messages", lambda c: c.conv.b(conversation_id=c.conv.id.upper()),
         "invalid_argument", "conversation_id", lambda c: [c.conv.id.upper()]),
    Case("token_wrong_shape", "update_my_status",
         lambda c: c.conv.a(token="ghp_ZZ" + "x" * 34, status="working"),
         "invalid_argument", "token", lambda c: ["ghp_ZZ" + "x" * 34]),
    Case("token_with_padding", "check_partner_status", lambda c: c.conv.b(token=c.conv.b_token + "="),
         "invalid_argument", "token", lambda c: [c.conv.b_token]),
    Case("unknown_conversation", "send_to_partner", lambda c: c.conv.a(conversation_id=c.unknown_conv, message="hi"),
         "conversation_not_found", None, lambda c: [c.conv.a_token]),
    Case("unknown_conversation_check", "check_messages", lambda c: c.conv.b(conversation_id=c.unknown_conv),
         "conversation_not_found", None, lambda c: [c.conv.b_token]),
]


def assert_names_field(error: dict[str, Any], field: str) -> None:
    assert field in error["message"], f"error message should name the field {field!r}: {error!r}"
    if "field" in error:
        assert isinstance(error["field"], str) and error["field"].startswith(field), error


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_refused_and_nothing_stored(bridge, case: Case):
    async with bridge.agent("A", **OFF) as a, bridge.agent("B", **OFF) as b:
        conv = await create_conv(a)
        other = await create_conv(a, "other", "party")
        await a.ok("send_to_partner", **conv.a(message="pending for B"))
        ctx = Ctx(conv=conv, other=other, wrong_token=rand_token(), unknown_conv=rand_conv_id())
        before = bridge.snapshot()

        args = case.args(ctx)
        result = await a.call(case.tool, args)
        error = check_error(result, case.tool, case.code)
        if case.field:
            assert_names_field(error, case.field)
        blob = json.dumps(result.structured_content, ensure_ascii=False) + text_of(result)
        for s in case.no_echo(ctx):
            assert s not in blob, f"error echoes the offending input {s[:20]!r}…: {blob[:300]!r}"

        assert bridge.snapshot() == before, "a refused call changed the database"
        # the unread message for B is still there, exactly once (a refused check_messages consumed nothing)
        msgs = (await b.ok("check_messages", **conv.b()))["messages"]
        assert [m["message"] for m in msgs] == ["pending for B"]
        assert bridge.count("messages") == 1


# ------------------------------------------------------------------ message size


def assert_too_large(result, received: int, must_not_contain: list[str]) -> None:
    error = check_error(result, "send_to_partner", "message_too_large")
    text = text_of(result)
    norm = digits_normalized(error["message"])
    assert "51200" in norm, f"error should name the limit 51200: {error['message']!r}"
    assert str(received) in norm, f"error should name the size received {received}: {error['message']!r}"
    blob = json.dumps(error, ensure_ascii=False) + text
    assert len(blob) < 4000, f"error is {len(blob)} chars long: it must not carry the message back"
    for s in must_not_contain:
        assert s not in blob, "error echoes the message"


async def test_message_size_limit_is_in_bytes(bridge):
    async with bridge.agent("A", **OFF) as a, bridge.agent("B", **OFF) as b:
        conv = await create_conv(a)
        before = bridge.snapshot()

        # 51,201 bytes but only 25,601 characters: the limit is on UTF-8 bytes
        marker = "MARKER-" + secrets.token_hex(8)
        fill = LIMIT + 1 - len(marker)
        too_big = marker + "é" * (fill // 2) + "x" * (fill % 2)
        assert len(too_big.encode()) == LIMIT + 1
        result = await a.call("send_to_partner", conv.a(message=too_big))
        assert_too_large(result, LIMIT + 1, [marker, "é" * 32])
        assert bridge.snapshot() == before

        # exactly 51,200 bytes is accepted and delivered intact
        exact = "é" * (LIMIT // 2)
        assert len(exact.encode()) == LIMIT
        sent = await a.ok("send_to_partner", **conv.a(message=exact))
        msgs = (await b.ok("check_messages", **conv.b()))["messages"]
        assert len(msgs) == 1 and msgs[0]["seq"] == sent["message_id"]
        assert msgs[0]["message"] == exact
        assert bridge.count("messages") == 1


async def test_message_size_limit_applies_before_redaction(bridge):
    async with bridge.agent("A", **OFF) as a, bridge.agent("B", **OFF) as b:
        conv = await create_conv(a)
        before = bridge.snapshot()

        # a 51,201-byte private key block: redaction would shrink it, but the limit counts raw bytes
        head, tail = "-----BEGIN RSA PRIVATE KEY-----\n", "\n-----END RSA PRIVATE KEY-----\n"
        body_len = LIMIT + 1 - len(head) - len(tail)
        raw = base64.b64encode(secrets.token_bytes(body_len)).decode()[:body_len]
        body = "\n".join(raw[i:i + 64] for i in range(0, len(raw), 64))[:body_len]
        pem = head + body + tail
        assert len(pem.encode()) == LIMIT + 1
        result = await a.call("send_to_partner", conv.a(message=pem))
        assert_too_large(result, LIMIT + 1, [raw[:40]])
        assert bridge.snapshot() == before

        # a 51,200-byte message that redaction makes longer is still accepted
        key = "AKIA" + "ABCDEFGHJKLMNPQ2"          # 20 chars -> "[REDACTED:aws_access_key]" (25)
        unit = key + " "
        grow = unit * (LIMIT // len(unit))
        grow += "y" * (LIMIT - len(grow))
        assert len(grow.encode()) == LIMIT
        sent = await a.ok("send_to_partner", **conv.a(message=grow))
        assert "aws_access_key" in sent["redacted"]
        msgs = (await b.ok("check_messages", **conv.b()))["messages"]
        assert len(msgs) == 1 and key not in msgs[0]["message"]
        assert "[REDACTED:aws_access_key]" in msgs[0]["message"]


# ------------------------------------------------------------------ boundaries accepted


async def test_limits_inclusive_boundaries_accepted(bridge):
    async with bridge.agent("A", **OFF) as a, bridge.agent("B", **OFF) as b:
        role64 = "R" * 32 + "-_" * 16
        assert len(role64) == 64
        conv = await create_conv(a, role64, "c0der_B-2")
        files = [f"src/f{i}.rs" for i in range(49)] + ["d/" + "p" * 1022]
        assert len(files) == 50 and len(files[-1]) == 1024
        await a.ok("send_to_partner", **conv.a(message="m", files_involved=files, action_type="review_request"))
        msgs = (await b.ok("check_messages", **conv.b()))["messages"]
        assert msgs[0]["files_involved"] == files and msgs[0]["from_role"] == role64
        assert msgs[0]["action_type"] == "review_request"
        for action in ("info", "question", "proposal", "answer"):
            await b.ok("send_to_partner", **conv.b(message=action, action_type=action))
        got = (await a.ok("check_messages", **conv.a()))["messages"]
        assert [m["action_type"] for m in got] == ["info", "question", "proposal", "answer"]
        note = "n" * 1024
        st = await b.ok("update_my_status", **conv.b(status="blocked", note=note))
        assert st["note"] == note
        assert (await a.ok("check_partner_status", **conv.a()))["note"] == note


# ------------------------------------------------------------------ expiry


async def test_expired_conversation_refuses_send(bridge):
    env = {**OFF, "MCP_BRIDGE_CONVERSATION_TTL": "1s"}
    async with bridge.agent("A", **env) as a:
        conv = await create_conv(a)
        await anyio.sleep(2.2)
        before = bridge.snapshot()
        result = await a.call("send_to_partner", conv.a(message="too late"))
        check_error(result, "send_to_partner", "conversation_expired")
        assert conv.a_token not in text_of(result)
        assert bridge.snapshot() == before
        assert bridge.count("messages") == 0


async def test_expired_conversation_refuses_other_tools(bridge):
    env = {**OFF, "MCP_BRIDGE_CONVERSATION_TTL": "1s"}
    async with bridge.agent("A", **env) as a, bridge.agent("B", **env) as b:
        conv = await create_conv(a)
        await anyio.sleep(2.2)
        before = bridge.snapshot()
        check_error(await b.call("check_messages", conv.b()), "check_messages", "conversation_expired")
        check_error(await a.call("update_my_status", conv.a(status="working")), "update_my_status",
                    "conversation_expired")
        check_error(await b.call("check_partner_status", conv.b()), "check_partner_status", "conversation_expired")
        assert bridge.snapshot() == before


async def test_schema_refusals_are_audited_without_the_input(bridge):
    async with bridge.agent("A") as a:
        conv = await create_conv(a)
        secret = "hunter2-" + "z" * 40
        await a.err("send_to_partner", "invalid_argument", conv.a(message="x", bogus_field=secret))
        await a.err("check_messages", "invalid_argument", {"conversation_id": conv.id, "session_id": "c",
                                                           "token": conv.a_token})
    rows = bridge.query("SELECT actor, action, conversation_id, detail FROM audit "
                        "WHERE action LIKE '%.refused' ORDER BY seq")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("unauthenticated", "message.send.refused", conv.id),
        ("unauthenticated", "message.check.refused", conv.id),
    ]
    assert '"code":"invalid_argument"' in rows[0][3] and '"field":"bogus_field"' in rows[0][3]
    for blob in bridge.raw_db_bytes().values():
        assert secret.encode() not in blob and conv.a_token.encode() not in blob
    assert bridge.cli("audit", "verify", "--db", str(bridge.db)).returncode == 0


@pytest.mark.parametrize("field,value", [
    ("conversation_id", "conv_" + "a" * 32 + "\u001b[2K\rgit log"),
    ("conversation_id", "AKIAZZ3456789ABCDEFG"),
    ("token", "mcpb_" + "A" * 40 + "\u001b]0;"),
])
async def test_hostile_ids_are_refused_by_shape_and_never_stored(bridge, field, value):
    """Issue 10: an id is refused by its exact shape; the error names the shape, never the value."""
    async with bridge.agent("A", **OFF) as a:
        conv = await create_conv(a)
        result = await a.call("send_to_partner", conv.a(message="hi", **{field: value}))
        error = check_error(result, "send_to_partner", "invalid_argument")
        assert error["field"] == field
        prefix = "conv_" if field == "conversation_id" else "mcpb_"
        assert f'"{prefix}" followed by' in error["message"], error
        text = text_of(result)
        assert value not in text and "\u001b" not in text, f"the hostile value came back: {text!r}"
    for name, blob in bridge.raw_db_bytes().items():
        assert value.encode() not in blob, f"the hostile {field} was stored in {name}"
    assert value not in bridge.logs()
