"""`serve --http ... --tls-cert PEM --tls-key PEM` (issue 17, "Scale out"): MCP over HTTPS.

Certificates are minted per test with `cryptography` (a test CA and leaves it signs); the official
Python SDK's streamable HTTP client connects with an httpx2 client that trusts that CA. SIGHUP
reloads the files: new handshakes get the new certificate, connections already open carry on, and
a bad file at reload keeps the certificate in force. Bad files at start are one-line errors naming
the flag and the file. See docs/deployment.md, "TLS".
"""

from __future__ import annotations

import signal
import socket
import time

import httpx2
import pytest

from conftest import assert_absent
from http_support import OpsServer, add_agent, free_port, make_ca, make_leaf, ops_agent, served_certificate


def wait_for_certificate(server: OpsServer, serial: int) -> None:
    """Polls new handshakes until they present the certificate with `serial` (bounded)."""
    deadline = time.monotonic() + 20
    seen = None
    while time.monotonic() < deadline:
        seen = served_certificate(server.port, server.ca).serial_number
        if seen == serial:
            return
        time.sleep(0.1)
    raise AssertionError(f"new handshakes still present serial {seen}, not {serial}: {server.log()[-2000:]}")


@pytest.mark.anyio
async def test_mcp_over_tls_survives_a_certificate_reload(bridge):
    ca = make_ca(bridge.tmp)
    cert, key = bridge.tmp / "server.crt", bridge.tmp / "server.key"
    first = make_leaf(ca, cert, key)
    lead_cred = add_agent(bridge, "lead")
    worker_cred = add_agent(bridge, "worker")
    # A network address: with TLS it needs no --insecure-http (clients still connect on loopback).
    server = OpsServer(bridge, ["--tls-cert", str(cert), "--tls-key", str(key)], ca=ca,
                       env={"MCP_BRIDGE_LOG": "info"}, bind="0.0.0.0")
    try:
        server.start()
        assert served_certificate(server.port, ca).serial_number == first.serial_number
        # Plain HTTP to the TLS port gets no HTTP answer.
        with pytest.raises(httpx2.TransportError):
            httpx2.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)

        lead_serials: list[int] = []
        async with ops_agent(server, "lead", lead_cred, lead_serials) as lead, \
                ops_agent(server, "worker", worker_cred) as worker:
            conv = (await lead.ok("create_conversation", with_agents=["worker"]))["conversation_id"]
            await lead.ok("send_message", conversation_id=conv, message="before the reload")

            # A second certificate from the same CA, then SIGHUP.
            second = make_leaf(ca, cert, key)
            server.signal(signal.SIGHUP)
            wait_for_certificate(server, second.serial_number)

            # The sessions opened before the reload carry on, on the connection they had: its
            # certificate is still the first one.
            del lead_serials[:]
            await lead.ok("send_message", conversation_id=conv, message="after the reload")
            assert lead_serials and set(lead_serials) == {first.serial_number}, (lead_serials, first.serial_number)
            got = await worker.ok("wait_for_messages", timeout_seconds=10)
            assert [m["message"] for m in got["messages"]] == ["before the reload", "after the reload"], got

            # A key that does not match: the reload is refused, the second certificate stays.
            other_cert, other_key = bridge.tmp / "other.crt", bridge.tmp / "other.key"
            make_leaf(ca, other_cert, other_key)
            key.write_bytes(other_key.read_bytes())
            server.signal(signal.SIGHUP)
            deadline = time.monotonic() + 20
            while "keeping the TLS certificate in force" not in server.log():
                assert time.monotonic() < deadline, f"no warning after a bad reload: {server.log()[-2000:]}"
                time.sleep(0.1)
            assert served_certificate(server.port, ca).serial_number == second.serial_number
            await lead.ok("send_message", conversation_id=conv, message="after the bad reload")
            got = await worker.ok("wait_for_messages", timeout_seconds=10)
            assert [m["message"] for m in got["messages"]] == ["after the bad reload"], got

        assert server.stop() == 0, server.log()[-2000:]
    finally:
        server.kill()
    log = server.log()
    assert "does not match" in log, log[-2000:]
    assert "SIGHUP: reloaded" in log, log[-2000:]
    secrets = {"lead": lead_cred, "worker": worker_cred}
    for k in (key, other_key):
        for i, line in enumerate(l for l in k.read_text().splitlines() if "-----" not in l):
            secrets[f"{k.name} line {i}"] = line
    assert_absent(secrets, {"server log": log.encode()}, "server log")


def start_error(bridge, *flags: str, addr: str = "127.0.0.1") -> tuple[int, str]:
    port = free_port()
    done = bridge.cli("--db", str(bridge.db), "serve", "--http", f"{addr}:{port}", *flags, timeout=30)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "nothing may listen after a refused start"
    return done.returncode, done.stderr.decode(errors="replace")


def test_bad_tls_files_stop_the_server_with_one_line_naming_flag_and_file(bridge):
    add_agent(bridge, "lead")
    ca = make_ca(bridge.tmp)
    cert, key = bridge.tmp / "good.crt", bridge.tmp / "good.key"
    make_leaf(ca, cert, key)
    other_cert, other_key = bridge.tmp / "other.crt", bridge.tmp / "other.key"
    make_leaf(ca, other_cert, other_key)
    missing = bridge.tmp / "missing.pem"
    # The base64 lines of both keys: none may ever be printed.
    key_body = [line for k in (key, other_key) for line in k.read_text().splitlines() if "-----" not in line]

    cases = [
        (["--tls-cert", str(missing), "--tls-key", str(key)], ["--tls-cert", "missing.pem", "cannot read"]),
        (["--tls-cert", str(cert), "--tls-key", str(missing)], ["--tls-key", "missing.pem", "cannot read"]),
        (["--tls-cert", str(cert), "--tls-key", str(other_key)], ["--tls-key", "other.key", "does not match", "good.crt"]),
        (["--tls-cert", str(key), "--tls-key", str(cert)], ["--tls-cert", "good.key", "no PEM certificate"]),
        (["--tls-cert", str(cert), "--tls-key", str(cert)], ["--tls-key", "good.crt", "no PEM private key"]),
    ]
    for flags, needles in cases:
        code, err = start_error(bridge, *flags, addr="0.0.0.0")
        assert code != 0, (flags, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (flags, err)
        for n in needles:
            assert n in lines[0], (flags, n, err)
        assert not any(line in err for line in key_body), (flags, err)

    # One flag without the other is clap's refusal, naming the missing flag.
    code, err = start_error(bridge, "--tls-cert", str(cert))
    assert code != 0 and "required arguments were not provided:\n  --tls-key <PEM>" in err, err
    code, err = start_error(bridge, "--tls-key", str(key))
    assert code != 0 and "required arguments were not provided:\n  --tls-cert <PEM>" in err, err
