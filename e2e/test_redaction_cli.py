"""`mcp-bridge redact` and custom redaction rules from the config file, as a
person (or a pre-commit hook) would use them, and the same rules applied by a
running server."""

from __future__ import annotations

import json

import pytest

from conftest import create_conv

FAKE_GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def test_redact_stdin_to_stdout_and_json(bridge):
    text = f"deploy with {FAKE_GH} now\n"
    plain = bridge.cli("redact", input=text.encode())
    assert plain.returncode == 0
    assert plain.stdout.decode() == "deploy with [REDACTED:github_token] now\n"
    js = bridge.cli("redact", "--json", input=text.encode())
    doc = json.loads(js.stdout)
    assert doc == {"text": "deploy with [REDACTED:github_token] now\n", "redacted": ["github_token"]}


def test_custom_rule_and_allow_list_from_the_config_file(bridge):
    cfg = bridge.tmp / "mcp-bridge.toml"
    cfg.write_text(
        '[redaction]\n'
        'allow = ["AKIAALLOWEDEXAMPLE00"]\n'
        '[[redaction.rules]]\n'
        'name = "ticket_token"\n'
        'regex = "TKT-[0-9]{8}"\n'
    )
    out = bridge.cli("redact", "--json", "--config", str(cfg),
                     input=b"ticket TKT-12345678 and AKIAALLOWEDEXAMPLE00 and AKIAQQQQWWWWEEEERRRR")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "TKT-12345678" not in doc["text"] and "[REDACTED:ticket_token]" in doc["text"]
    assert "AKIAALLOWEDEXAMPLE00" in doc["text"], "allow-listed value kept"
    assert "AKIAQQQQWWWWEEEERRRR" not in doc["text"]
    assert doc["redacted"] == ["aws_access_key", "ticket_token"]


def test_a_bad_custom_rule_is_refused_at_start_naming_it(bridge):
    cfg = bridge.tmp / "bad.toml"
    cfg.write_text('[[redaction.rules]]\nname = "broken_rule"\nregex = "(unclosed"\n')
    out = bridge.cli("redact", "--config", str(cfg), input=b"x")
    assert out.returncode != 0
    assert b"broken_rule" in out.stderr, out.stderr
    served = bridge.cli("serve", "--config", str(cfg), "--db", str(bridge.db), input=b"")
    assert served.returncode != 0 and b"broken_rule" in served.stderr
    assert not bridge.db.exists(), "a refused configuration creates nothing"


@pytest.mark.anyio
async def test_a_running_server_applies_custom_rules(bridge):
    cfg = bridge.tmp / "mcp-bridge.toml"
    cfg.write_text('[[redaction.rules]]\nname = "ticket_token"\nregex = "TKT-[0-9]{8}"\n')
    async with bridge.agent("A", MCP_BRIDGE_CONFIG=str(cfg)) as a, \
            bridge.agent("B", MCP_BRIDGE_CONFIG=str(cfg)) as b:
        conv = await create_conv(a)
        sent = await a.ok("send_to_partner", **conv.a(message="see TKT-87654321"))
        assert sent["redacted"] == ["ticket_token"]
        got = await b.ok("check_messages", **conv.b())
        assert got["messages"][0]["message"] == "see [REDACTED:ticket_token]"
    for blob in bridge.raw_db_bytes().values():
        assert b"TKT-87654321" not in blob
