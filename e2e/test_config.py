"""Configuration knobs and the CLI surface (beyond the numbered scenarios)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from conftest import create_conv, parse_rfc3339_utc


def test_version(bridge):
    proc = bridge.cli("--version")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode().strip()
    assert out, "--version printed nothing on stdout"
    assert "mcp-bridge" in out or any(ch.isdigit() for ch in out), out


@pytest.mark.anyio
@pytest.mark.parametrize("ttl,seconds", [("120", 120), ("90s", 90), ("10m", 600), ("3h", 3 * 3600), (None, 3 * 3600)])
async def test_conversation_ttl_units(bridge, ttl, seconds):
    env = {} if ttl is None else {"MCP_BRIDGE_CONVERSATION_TTL": ttl}
    async with bridge.agent("A", **env) as a:
        before = datetime.now(timezone.utc)
        conv = await create_conv(a)
        after = datetime.now(timezone.utc)
    expires = parse_rfc3339_utc(conv.created["expires_at"], "expires_at")
    slack = timedelta(seconds=30)  # a tolerance on the clock, not a performance assertion
    assert before + timedelta(seconds=seconds) - slack <= expires <= after + timedelta(seconds=seconds) + slack, (
        ttl, conv.created["expires_at"])
    # stored as integer unix milliseconds
    (created_at, expires_at), = bridge.query("SELECT created_at, expires_at FROM conversations WHERE id = ?", (conv.id,))
    assert isinstance(created_at, int) and isinstance(expires_at, int)
    assert abs((expires_at - created_at) - seconds * 1000) < 30_000, (created_at, expires_at)
    assert abs(expires_at / 1000 - expires.timestamp()) < 1.0
