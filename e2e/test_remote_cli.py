"""The overseer's CLI against a remote `serve --http` (issue 17): `--server URL` with an observer or
admin credential in MCP_BRIDGE_CREDENTIAL, over TLS with a CA the test generates, instead of the
database. See docs/overseer-api.md, "From the command line".
"""

from __future__ import annotations

import json
import subprocess

import pytest

from http_support import OpsServer, add_agent, make_ca, make_leaf, ops_agent


@pytest.fixture
def tls_server(bridge):
    ca = make_ca(bridge.tmp)
    cert, key = bridge.tmp / "cert.pem", bridge.tmp / "key.pem"
    make_leaf(ca, cert, key)
    srv = OpsServer(bridge, extra=["--tls-cert", str(cert), "--tls-key", str(key)], ca=ca, name="tls")
    yield srv
    srv.kill()


def text(out: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    out.stdout, out.stderr = out.stdout.decode(), out.stderr.decode()
    return out


def remote(bridge, server: OpsServer, credential: str | None, *args: str):
    env = {"MCP_BRIDGE_SERVER_CA": str(server.ca.pem_path)}
    if credential is not None:
        env["MCP_BRIDGE_CREDENTIAL"] = credential
    # No --db: the CLI must not need the database or the key (an empty data home proves it).
    return text(bridge.cli("--server", server.url, *args, XDG_DATA_HOME=str(bridge.tmp / "elsewhere"), **env))


@pytest.mark.anyio
async def test_the_overseer_works_from_another_machine_with_an_admin_credential(bridge, tls_server):
    lead_cred = add_agent(bridge, "lead")
    add_agent(bridge, "worker")
    ops = add_agent(bridge, "ops", role="admin")
    watcher = add_agent(bridge, "watcher", role="observer")
    tls_server.start()
    async with ops_agent(tls_server, "lead", lead_cred) as lead:
        conv = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
        await lead.ok("send_message", conversation_id=conv, message="deploy at 5")

        listed = remote(bridge, tls_server, watcher, "list")
        assert listed.returncode == 0, listed.stderr
        assert [c["id"] for c in json.loads(listed.stdout)] == [conv]
        shown = remote(bridge, tls_server, watcher, "show", conv)
        assert shown.returncode == 0 and "deploy at 5" in shown.stdout, shown.stderr
        verified = remote(bridge, tls_server, watcher, "audit", "verify")
        assert verified.returncode == 0 and json.loads(verified.stdout)["intact"] is True, verified.stderr
        entries = remote(bridge, tls_server, watcher, "audit", "--conversation", conv)
        assert entries.returncode == 0, entries.stderr
        assert all(json.loads(line)["conversation_id"] == conv for line in entries.stdout.splitlines())

        # The observer may not close: exit 2, the server's reason, nothing changed.
        refused = remote(bridge, tls_server, watcher, "close", conv)
        assert refused.returncode == 2 and "403" in refused.stderr and "admin" in refused.stderr, refused.stderr
        await lead.ok("send_message", conversation_id=conv, message="still open")

        closed = remote(bridge, tls_server, ops, "close", conv)
        assert closed.returncode == 0 and json.loads(closed.stdout)["changed"] is True, closed.stderr
        result = await lead.call("send_message", {"conversation_id": conv, "message": "late"})
        assert result.is_error

    # Without a credential, with a bad one, or with no trusted CA: clear errors, exit 2, no secret echoed.
    missing = remote(bridge, tls_server, None, "list")
    assert missing.returncode == 2 and "MCP_BRIDGE_CREDENTIAL" in missing.stderr, missing.stderr
    bad = remote(bridge, tls_server, "mcpa_" + "A" * 43, "list")
    assert bad.returncode == 2 and "refused the credential" in bad.stderr and "AAAA" not in bad.stderr, bad.stderr
    untrusted = text(bridge.cli("--server", tls_server.url, "list", MCP_BRIDGE_CREDENTIAL=ops))
    assert untrusted.returncode == 2 and "certificate" in untrusted.stderr.lower(), untrusted.stderr
    plain = text(bridge.cli("--server", "http://bridge.example.com:8750", "list", MCP_BRIDGE_CREDENTIAL=ops))
    assert plain.returncode == 2 and "https://" in plain.stderr, plain.stderr
    for out in (missing, bad, untrusted, plain):
        assert ops not in out.stderr and ops not in out.stdout
    # `serve` and `redact` ignore --server (a client spawning `serve` must not break because the
    # human's shell exports MCP_BRIDGE_SERVER).
    redacted = text(bridge.cli("redact", input=b"token=ghp_" + b"Z9" * 18 + b"\n", MCP_BRIDGE_SERVER=tls_server.url))
    assert redacted.returncode == 0 and "ghp_" not in redacted.stdout, redacted.stderr
    # Commands that need the database say where to run them.
    nope = remote(bridge, tls_server, ops, "backup", str(bridge.tmp / "b.db"))
    assert nope.returncode == 2 and "--database-url" in nope.stderr, nope.stderr


def test_serve_ignores_a_server_url_in_the_environment(bridge):
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    out = bridge.cli("--db", str(bridge.db), "serve", input=(init + "\n").encode(),
                     MCP_BRIDGE_SERVER="https://bridge.example.com:8443")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "mcp-bridge", out.stdout
