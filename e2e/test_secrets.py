"""5. Secrets are redacted before storage: never in the db, -wal or -shm bytes."""

from __future__ import annotations

import base64
import secrets
import string

import pytest

from conftest import assert_absent, create_conv

pytestmark = pytest.mark.anyio

UPPER_ALNUM = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits


def rand(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def fake_aws() -> str:
    return "AKIA" + rand(UPPER_ALNUM, 16)


def fake_ghp() -> str:
    return "ghp_" + rand(ALNUM, 36)


def fake_openai() -> str:
    return "sk-proj-" + rand(ALNUM, 64)


def fake_bearer() -> str:
    return rand(ALNUM, 40)


def fake_pem() -> tuple[str, list[str]]:
    body = base64.b64encode(secrets.token_bytes(600)).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----"
    return pem, lines


PASSWORD = "Sup3rS3cr3t!x"


async def test_secrets_redacted_everywhere(bridge):
    # distinct secrets per location, so a leak says where it came from
    msg_aws, msg_ghp, msg_openai, msg_bearer = fake_aws(), fake_ghp(), fake_openai(), fake_bearer()
    pem, pem_lines = fake_pem()
    message = (
        "Deploy notes.\n"
        f"aws key: {msg_aws}\n"
        f"github: {msg_ghp}\n"
        f"{pem}\n"
        f"db config: password={PASSWORD}\n"
        f"openai: {msg_openai}\n"
        f"curl -H 'Authorization: Bearer {msg_bearer}' https://api.example.test\n"
        "end of notes"
    )
    file_aws, file_ghp = fake_aws(), fake_ghp()
    files = [f"config/{file_aws}.txt", f"tokens/{file_ghp}.json", "src/plain.rs"]
    note_aws, note_openai, note_bearer = fake_aws(), fake_openai(), fake_bearer()
    note_password = "N0teP4ss!" + rand(ALNUM, 8)
    note = f"blocked: key {note_aws}, {note_openai}, password={note_password}, Authorization: Bearer {note_bearer}"

    needles = {
        "message aws key": msg_aws, "message github token": msg_ghp, "message openai key": msg_openai,
        "message bearer token": msg_bearer, "message password": PASSWORD,
        **{f"pem line {i}": line for i, line in enumerate(pem_lines)},
        "file aws key": file_aws, "file github token": file_ghp,
        "note aws key": note_aws, "note openai key": note_openai, "note password": note_password,
        "note bearer token": note_bearer,
    }
    # also the distinctive random tails alone (in case a prefix was mangled but the value kept)
    needles.update({f"{k} tail": v[-16:] for k, v in list(needles.items()) if len(v) >= 32})

    async with bridge.agent("A") as a, bridge.agent("B") as b:
        conv = await create_conv(a)
        sent = await a.ok("send_to_partner", **conv.a(message=message, files_involved=files, action_type="info"))
        kinds = set(sent["redacted"])
        expected_kinds = {"aws_access_key", "github_token", "private_key", "password", "openai_key", "bearer_token"}
        assert kinds >= expected_kinds, f"send result redacted kinds {sorted(kinds)} miss {sorted(expected_kinds - kinds)}"
        assert all(isinstance(k, str) and len(k) < 64 for k in sent["redacted"]), sent["redacted"]
        assert_absent(needles, {"send result": repr(sent).encode()}, "send result")

        msgs = (await b.ok("check_messages", **conv.b()))["messages"]
        assert len(msgs) == 1
        m = msgs[0]
        for kind in expected_kinds:
            assert f"[REDACTED:{kind}]" in m["message"], f"receiver's message lacks [REDACTED:{kind}]: {m['message']!r}"
        assert set(m["redacted"]) >= expected_kinds, m["redacted"]
        assert m["message"].startswith("Deploy notes.") and m["message"].endswith("end of notes")
        assert len(m["files_involved"]) == 3 and m["files_involved"][2] == "src/plain.rs"
        assert "[REDACTED:aws_access_key]" in m["files_involved"][0], m["files_involved"]
        assert "[REDACTED:github_token]" in m["files_involved"][1], m["files_involved"]
        assert_absent(needles, {"received message": repr(m).encode()}, "what the receiver sees")

        st = await a.ok("update_my_status", **conv.a(status="blocked", note=note))
        ps = await b.ok("check_partner_status", **conv.b())
        for where, value in (("update_my_status result", st["note"]), ("partner's view", ps["note"])):
            for kind in ("aws_access_key", "openai_key", "password", "bearer_token"):
                assert f"[REDACTED:{kind}]" in value, f"{where}: note lacks [REDACTED:{kind}]: {value!r}"
        assert_absent(needles, {"status results": (repr(st) + repr(ps)).encode()}, "status results")

        # raw bytes of the db, -wal and -shm while both servers are still running
        assert_absent(needles, bridge.raw_db_bytes(), "db files while servers run")

    assert_absent(needles, bridge.raw_db_bytes(), "db files after servers exited")
    # stricter reading: the servers must not log the secrets to stderr either
    assert_absent(needles, {"stderr logs": bridge.logs().encode()}, "server stderr logs")


def test_redact_cli(bridge):
    aws, ghp, openai, bearer = fake_aws(), fake_ghp(), fake_openai(), fake_bearer()
    pem, lines = fake_pem()
    text = (f"a {aws} b\n{ghp}\n{pem}\npassword={PASSWORD}\n{openai}\n"
            f"Authorization: Bearer {bearer}\nplain line stays\n")
    proc = bridge.cli("redact", input=text.encode())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = proc.stdout.decode()
    for kind in ("aws_access_key", "github_token", "private_key", "password", "openai_key", "bearer_token"):
        assert f"[REDACTED:{kind}]" in out, f"redact output lacks [REDACTED:{kind}]: {out!r}"
    for s in (aws, ghp, openai, bearer, PASSWORD, *lines):
        assert s not in out, f"redact output still contains {s[:10]}…"
    assert "plain line stays" in out
    assert out.startswith("a [REDACTED:aws_access_key] b")
