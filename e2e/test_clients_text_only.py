"""A text-only client (issue 11): raw JSON-RPC over the binary's stdio pipes,
negotiating 2025-03-26, a version without `structuredContent`. Two such
clients in two server processes on one database complete create, send and
check using ONLY the text content of results, as hosts that pass only text to
the model do. Whatever an agent needs (ids, tokens, bodies, error codes) must
be in the text."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

CONV_ID = re.compile(r"conv_[0-9a-f]{32}")
TOKEN = re.compile(r"mcpb_[A-Za-z0-9_-]{43}")


class RawClient:
    """`mcp-bridge serve --db DB` spawned bare; newline-delimited JSON-RPC on its stdin/stdout."""

    def __init__(self, bridge, name: str):
        self.name = name
        self.log = open(bridge.tmp / f"raw-{name}.stderr.log", "w")
        self.proc = subprocess.Popen(
            [str(bridge.bin), "serve", "--db", str(bridge.db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env={"PATH": "/usr/bin:/bin"} | bridge.base_env(),
        )
        self.q: queue.Queue[str | None] = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for raw in self.proc.stdout:
            self.q.put(raw.decode("utf-8", errors="replace"))
        self.q.put(None)

    def send(self, obj: dict[str, Any]) -> None:
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """Sends a request and returns the whole response object (result or error)."""
        self.next_id += 1
        rid = self.next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            line = self.q.get(timeout=timeout)
            assert line is not None, f"{self.name}: server closed stdout before answering {method}"
            msg = json.loads(line)
            if msg.get("id") == rid and ("result" in msg or "error" in msg):
                return msg

    def initialize(self, version: str) -> dict[str, Any]:
        init = self.request("initialize", {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": f"e2e-raw-{self.name}", "version": "0.0.1"}})
        assert "result" in init, init
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return init["result"]

    def call_text(self, tool: str, arguments: dict[str, Any]) -> tuple[bool, str]:
        """A tools/call seen by a text-only client: (isError, text). structuredContent is discarded."""
        msg = self.request("tools/call", {"name": tool, "arguments": arguments})
        assert "error" not in msg, f"{self.name}: {tool} came back as a JSON-RPC error: {msg}"
        result = dict(msg["result"])
        result.pop("structuredContent", None)
        text = "\n".join(c["text"] for c in result.get("content", []) if c.get("type") == "text")
        return bool(result.get("isError")), text

    def close(self) -> int:
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


def tokens_from_text(text: str) -> tuple[str, str]:
    """Seat a's and seat b's tokens, read from the create_conversation text alone.

    A text that is the serialized structured result is read as JSON; otherwise
    the tokens labelled `session_a_token` / `session_b_token`; otherwise the
    two distinct tokens in the order they appear (the creator's, seat a,
    first). The calls that follow prove the reading: a wrong pairing fails
    them with invalid_token."""
    try:
        obj = json.loads(text)
        if isinstance(obj, dict) and "session_a_token" in obj:
            return obj["session_a_token"], obj["session_b_token"]
    except ValueError:
        pass
    labelled = {seat: re.search(rf"session_{seat}_token\W{{0,8}}({TOKEN.pattern})", text) for seat in ("a", "b")}
    if labelled["a"] and labelled["b"]:
        return labelled["a"].group(1), labelled["b"].group(1)
    tokens = list(dict.fromkeys(TOKEN.findall(text)))
    assert len(tokens) == 2, f"the create_conversation text must carry both seat tokens, found {len(tokens)}: {text!r}"
    return tokens[0], tokens[1]


def test_text_only_client_at_2025_03_26_creates_sends_and_checks_from_the_text(bridge):
    a = RawClient(bridge, "A")
    b = RawClient(bridge, "B")
    try:
        for c in (a, b):
            init = c.initialize("2025-03-26")
            assert init["protocolVersion"] == "2025-03-26", init

        is_error, text = a.call_text("create_conversation", {"my_role": "planner", "partner_role": "coder"})
        assert not is_error, text
        ids = set(CONV_ID.findall(text))
        assert len(ids) == 1, f"the create_conversation text must carry the conversation id once: {text!r}"
        conv_id = ids.pop()
        a_token, b_token = tokens_from_text(text)
        seat_a = {"conversation_id": conv_id, "session_id": "a", "token": a_token}
        seat_b = {"conversation_id": conv_id, "session_id": "b", "token": b_token}

        body = "Plan: split the parser; see src/parse.rs and tell me if the API looks right"
        is_error, text = a.call_text("send_to_partner", seat_a | {
            "message": body, "action_type": "question", "files_involved": ["src/parse.rs"]})
        assert not is_error, text

        is_error, text = b.call_text("check_messages", seat_b)
        assert not is_error, text
        assert body in text, f"the message body is not in the check_messages text: {text!r}"
        assert "question" in text and "src/parse.rs" in text and "planner" in text, text

        is_error, text = b.call_text("send_to_partner", seat_b | {"message": "API looks right", "action_type": "answer"})
        assert not is_error, text
        is_error, text = a.call_text("check_messages", seat_a)
        assert not is_error, text
        assert "API looks right" in text and "answer" in text and "coder" in text, text

        # an error reaches a text-only client with its code
        is_error, text = b.call_text("check_messages", seat_b | {"token": a_token})
        assert is_error, text
        assert "invalid_token" in text and "token" in text.replace("invalid_token", ""), text
        assert a_token not in text and b_token not in text, "an error echoed a token"
    finally:
        assert a.close() == 0
        assert b.close() == 0
