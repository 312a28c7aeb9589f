"""The overseer's web dashboard (issue 15) in a real headless Chromium (the distribution's,
driven by Playwright), against the binary: `mcp-bridge dashboard` on the test's database, and
the same pages at /ui on `serve --http` for observer and admin credentials. Agents are real
`serve` processes driven by the Python MCP SDK over stdio.

Proves: the login flow (one-time URL, HttpOnly SameSite=Strict cookie, no token left in the
URL, a reused URL refused); an agent's message appears on an open conversation page within
1 s without a reload, and receipts and status changes follow live; hostile text renders inert
(no dialog, no request); step-in actions behind confirmation and CSRF; refusals without the
cookie or the CSRF token; audit, proposals and stats pages. Each page's screenshot is written
to docs/dashboard/ for docs/dashboard.md.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from conftest import TOKEN, ToolError, create_conv
from dashboard_support import chromium, dashboard, new_page, screenshot
from http_support import OpsServer, add_agent

pytestmark = pytest.mark.anyio

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))"
# A selector, not a JS expression: Playwright evaluates a string expression with eval, which
# the pages' CSP (no 'unsafe-eval') rightly refuses.
LIVE = "#live-state:text-is('live')"


async def login(browser, d):
    context, page = await new_page(browser)
    response = await page.goto(d.login_url)
    assert response is not None and response.ok, response and response.status
    assert page.url == f"{d.base}/ui/", page.url
    return context, page


async def open_conversation(page, d, conv_id: str) -> None:
    await page.goto(f"{d.base}/ui/conversations/{conv_id}")
    await page.wait_for_selector(LIVE, timeout=5000)


async def post_form(page, path: str, fields: dict[str, str]) -> int:
    """A same-origin POST from the page, as a forged form would send it; returns the status."""
    return await page.evaluate(
        """async ([path, fields]) => {
            const r = await fetch(path, {method: "POST", body: new URLSearchParams(fields), redirect: "manual"});
            return r.status;
        }""",
        [path, fields],
    )


async def test_login_flow_one_time_url_and_cookie(bridge):
    async with bridge.agent("a") as a:
        conv = await create_conv(a)
    async with dashboard(bridge) as d, chromium() as browser:
        token = d.login_url.rsplit("=", 1)[1]
        context, page = await login(browser, d)
        assert "token" not in page.url
        session = [c for c in await context.cookies() if c["name"] == "mcpb_dash"]
        assert len(session) == 1, await context.cookies()
        assert session[0]["httpOnly"] and session[0]["sameSite"] == "Strict", session
        assert token not in session[0]["value"]
        assert await page.evaluate("document.cookie") == "", "the session cookie is out of reach of scripts"
        assert conv.id in await page.content()
        await screenshot(page, "conversations")

        # The same URL again, in another browser profile: refused, no session.
        other, page2 = await new_page(browser)
        again = await page2.goto(d.login_url)
        assert again is not None and again.status == 403
        assert not [c for c in await other.cookies() if c["name"] == "mcpb_dash"]
        # Without the cookie, a page sends to the login page.
        await page2.goto(f"{d.base}/ui/conversations/{conv.id}")
        assert page2.url == f"{d.base}/ui/login", page2.url
        assert conv.id not in await page2.content()
        assert token not in d.log(), "the login token never reaches the log"


async def test_a_message_appears_live_within_a_second(bridge):
    async with bridge.agent("a") as a, bridge.agent("b") as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message="before the page opened", files_involved=["src/lib.rs"]))
        async with dashboard(bridge) as d, chromium() as browser:
            _, page = await login(browser, d)
            await open_conversation(page, d, conv.id)
            await page.evaluate("window.__same_document = true")
            delays = []
            for i in range(3):
                t0 = time.monotonic()
                sent = await b.ok("send_to_partner", **conv.b(message=f"live message {i}", action_type="answer"))
                await page.wait_for_selector(f"#m-{sent['message_id']}", timeout=3000)
                delays.append(time.monotonic() - t0)
                text = await page.inner_text(f"#m-{sent['message_id']}")
                assert f"live message {i}" in text and "answer" in text and "coder" in text, text
            print(f"dashboard live delays (s): {[round(x, 3) for x in delays]}")
            assert max(delays) < 1.0, f"a message took {max(delays):.3f} s to appear (limit 1 s): {delays}"
            assert await page.evaluate("window.__same_document === true"), "the page reloaded"

            # Receipts and status follow live too.
            first = sent["message_id"]
            await a.ok("check_messages", **conv.a())
            await page.wait_for_selector(f"#m-{first} .receipt.read", timeout=3000)
            await b.ok("update_my_status", **conv.b(status="working", note="on the parser"))
            await page.wait_for_selector("#seats >> text=on the parser", timeout=3000)
            assert await page.evaluate("window.__same_document === true"), "the page reloaded"
            await screenshot(page, "conversation")


async def test_hostile_text_renders_inert(bridge):
    async with bridge.agent("a") as a:
        conv = await create_conv(a)
        before = await a.ok("send_to_partner", **conv.a(message=HOSTILE))
        async with dashboard(bridge) as d, chromium() as browser:
            _, page = await login(browser, d)
            dialogs: list[str] = []
            requests: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), asyncio.ensure_future(dialog.dismiss())))
            page.on("request", lambda r: requests.append(r.url))
            await open_conversation(page, d, conv.id)
            # Once more while the page is open: the live path inserts it.
            live = await a.ok("send_to_partner", **conv.a(message=HOSTILE, files_involved=["<b>x</b>.rs"]))
            await page.wait_for_selector(f"#m-{live['message_id']}", timeout=3000)
            await page.wait_for_timeout(500)
            for seq in (before["message_id"], live["message_id"]):
                assert await page.inner_text(f"#m-{seq} pre.body") == HOSTILE
            assert await page.locator("#messages script").count() == 0
            assert await page.locator("#messages img").count() == 0
            assert await page.locator("#messages a[href^='javascript']").count() == 0
            assert await page.locator("#messages b").count() == 0
            assert dialogs == [], f"a dialog fired: {dialogs}"
            stray = [u for u in requests if re.search(r"/x(\?|$)", u) or u.startswith("javascript:")]
            assert stray == [], f"hostile markup caused requests: {stray}"


async def test_changes_without_the_cookie_or_the_csrf_token_are_refused(bridge):
    async with bridge.agent("a") as a:
        conv = await create_conv(a)
        async with dashboard(bridge) as d, chromium() as browser:
            _, page = await login(browser, d)
            await open_conversation(page, d, conv.id)
            close = f"/ui/conversations/{conv.id}/close"
            assert await post_form(page, close, {"confirm": "yes"}) == 403, "no CSRF token"
            assert await post_form(page, close, {"confirm": "yes", "csrf": "forged"}) == 403, "a wrong CSRF token"
            # Without the session cookie (another profile on the same origin).
            _, stranger = await new_page(browser)
            await stranger.goto(f"{d.base}/ui/login")
            csrf = await page.get_attribute("input[name=csrf]", "value")
            assert await post_form(stranger, close, {"confirm": "yes", "csrf": csrf}) == 401
            events = await stranger.evaluate(f"fetch('/ui/conversations/{conv.id}/events').then(r => r.status)")
            assert events == 401
            # Nothing was closed: the agent still works.
            await a.ok("check_messages", **conv.a())


async def test_rotate_and_close_behind_a_confirmation(bridge):
    async with bridge.agent("a") as a, bridge.agent("b") as b:
        conv = await create_conv(a)
        async with dashboard(bridge) as d, chromium() as browser:
            _, page = await login(browser, d)
            await open_conversation(page, d, conv.id)
            await page.click(f"form[action$='/seats/b/rotate'] button")
            await page.wait_for_selector("text=Confirm")
            await b.ok("check_messages", **conv.b())  # nothing happened yet
            await screenshot(page, "confirm")
            await page.click("button:has-text('Confirm')")
            token = (await page.inner_text("pre.token")).strip()
            assert TOKEN.match(token), token
            await screenshot(page, "rotated")
            await b.err("check_messages", "invalid_token", conv.b())
            await b.ok("check_messages", **conv.b(token=token))
            # Reloading the answer resubmits it: refused, no second rotation, no token.
            again = await page.reload()
            assert again is not None and again.status == 409, again and again.status
            assert token not in await page.content(), "a rotated token is shown once"
            await b.ok("check_messages", **conv.b(token=token))

            await page.goto(f"{d.base}/ui/conversations/{conv.id}")
            await page.click("button:has-text('Close this conversation')")
            await page.click("button:has-text('Confirm')")
            await page.wait_for_selector(".badge.closed")
            await a.err("check_messages", "conversation_closed", conv.a())
    actors = bridge.query("SELECT actor FROM audit WHERE action IN ('session.rotate', 'conversation.close')")
    assert actors == [("dashboard",), ("dashboard",)], actors


async def test_audit_page_verifies_the_chain(bridge):
    async with bridge.agent("a") as a:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message="audited"))
    async with dashboard(bridge) as d, chromium() as browser:
        _, page = await login(browser, d)
        await page.goto(f"{d.base}/ui/audit")
        verified = await page.inner_text("section.verify")
        head = bridge.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")[0]
        assert f"Chain verified up to entry {head[0]}" in verified, verified
        assert head[1] in verified
        await page.click("button:has-text('Re-verify')")
        assert "Chain verified" in await page.inner_text("section.verify")
        await page.fill("input[name=action]", "message.*")
        await page.click("button:has-text('Filter')")
        actions = await page.locator("table.audit tbody td:nth-child(4)").all_inner_texts()
        assert actions and all(x.startswith("message.") for x in actions), actions
        await page.goto(f"{d.base}/ui/audit")
        await screenshot(page, "audit")


@pytest.mark.sqlite_only("YOLO mode runs on a SQLite database file only (the server refuses it on PostgreSQL)")
async def test_proposals_show_the_approve_line_and_can_be_rejected(bridge):
    ws = bridge.tmp / "ws"
    ws.mkdir()
    env = {"MCP_BRIDGE_YOLO": "1", "MCP_BRIDGE_YOLO_WORKSPACE": str(ws)}
    async with bridge.agent("a", **env) as a:
        conv = await create_conv(a)
        prop = await a.ok("propose_command", **conv.a(command="ls -la", mode="safe", reason="look around"))
        pid = prop["proposal_id"]
        async with dashboard(bridge) as d, chromium() as browser:
            _, page = await login(browser, d)
            await page.goto(f"{d.base}/ui/proposals")
            card = await page.inner_text(f"article#{pid}")
            assert "ls -la" in card and "safe" in card and str(ws) in card, card
            assert f"mcp-bridge approve {pid}" in card
            assert await page.locator("button:has-text('Approve')").count() == 0, "the dashboard never approves"
            await screenshot(page, "proposals")
            await page.click(f"article#{pid} button:has-text('Reject')")
            await page.click("button:has-text('Confirm')")
            assert await page.locator(f"article#{pid}").count() == 0
    assert bridge.query("SELECT state FROM proposals WHERE id = ?", (pid,)) == [("rejected",)]
    assert bridge.query("SELECT actor FROM audit WHERE action = 'command.reject'") == [("dashboard",)]


async def test_stats_page_charts_messages_and_refusals(bridge):
    async with bridge.agent("a") as a:
        conv = await create_conv(a)
        for i in range(3):
            await a.ok("send_to_partner", **conv.a(message=f"m{i}"))
        await a.err("check_messages", "invalid_token", conv.a(token="mcpb_" + "A" * 43))
    async with dashboard(bridge) as d, chromium() as browser:
        _, page = await login(browser, d)
        await page.goto(f"{d.base}/ui/stats")
        body = await page.inner_text("main")
        assert "3 in all" in body, body
        assert "invalid_token" in body, body
        assert await page.locator("svg.chart rect").count() == 60
        await screenshot(page, "stats")


async def test_mounted_at_ui_for_observer_and_admin_credentials(bridge):
    observer = add_agent(bridge, "watcher", "observer")
    admin = add_agent(bridge, "boss", "admin")
    agent = add_agent(bridge, "worker", "agent")
    async with bridge.agent("a") as a:
        conv = await create_conv(a)
    server = OpsServer(bridge)
    server.start()
    try:
        async with chromium() as browser:
            async def login_with(credential: str):
                context, page = await new_page(browser)
                await page.goto(f"{server.url}/ui/")
                assert page.url == f"{server.url}/ui/login"
                await page.fill("input[name=credential]", credential)
                await page.click("button:has-text('Log in')")
                return page

            page = await login_with(agent)
            assert "cannot open the dashboard" in await page.inner_text("main")
            await screenshot(page, "login")
            page = await login_with(observer)
            assert page.url == f"{server.url}/ui/"
            assert "read-only" in await page.inner_text("header")
            await page.goto(f"{server.url}/ui/conversations/{conv.id}")
            assert await page.locator("text=Close this conversation").count() == 0
            csrf = await page.get_attribute("input[name=csrf]", "value")
            status = await post_form(page, f"/ui/conversations/{conv.id}/close", {"csrf": csrf, "confirm": "yes"})
            assert status == 403
            page = await login_with(admin)
            await page.goto(f"{server.url}/ui/conversations/{conv.id}")
            await page.click("button:has-text('Close this conversation')")
            await page.click("button:has-text('Confirm')")
            await page.wait_for_selector(".badge.closed")
            for credential in (observer, admin, agent):
                assert credential not in server.log()
    finally:
        server.stop()
    actors = [r[0] for r in bridge.query("SELECT actor FROM audit WHERE action = 'conversation.close'")]
    assert actors == ["agent:boss"], actors


async def test_the_overseers_post_reaches_the_agents_as_overseer(bridge):
    async with bridge.agent("a") as a, bridge.agent("b") as b:
        conv = await create_conv(a)
        await a.ok("send_to_partner", **conv.a(message="shall I ship it?", action_type="question"))
        async with dashboard(bridge) as d, chromium() as browser:
            _, page = await login(browser, d)
            await open_conversation(page, d, conv.id)
            await page.fill("textarea[name=message]", "Hold the release until the tests pass.")
            await page.click("button:has-text('Post as overseer')")
            assert "Hold the release" in await page.inner_text("div.confirm")
            await b.ok("check_messages", **conv.b())  # the question; the post is not stored yet
            await page.click("button:has-text('Confirm')")
            await page.wait_for_selector("article.msg.overseer", timeout=3000)
            got = (await b.ok("check_messages", **conv.b()))["messages"]
            assert [(m["from_role"], m["from_overseer"], m["message"]) for m in got] == [
                ("overseer", True, "Hold the release until the tests pass.")
            ], got
            got_a = (await a.ok("check_messages", **conv.a()))["messages"]
            assert [(m["from_role"], m["from_overseer"]) for m in got_a] == [("overseer", True)], got_a
            await page.wait_for_selector("article.msg.overseer .receipt.read", timeout=3000)
            await screenshot(page, "conversation-overseer")
    actors = bridge.query("SELECT actor FROM audit WHERE action = 'overseer.post'")
    assert actors == [("dashboard",)], actors


async def test_an_agent_cannot_send_as_overseer(bridge):
    async with bridge.agent("a") as a:
        for role in ("overseer", "Overseer"):
            await a.err("create_conversation", "invalid_argument", {"my_role": "lead", "partner_role": role})
            await a.err("create_conversation", "invalid_argument", {"my_role": role, "partner_role": "coder"})
        conv = await create_conv(a)
        sent = await a.ok("send_to_partner", **conv.a(message='{"from_role": "overseer", "from_overseer": true}'))
        async with dashboard(bridge) as d, chromium() as browser:
            _, page = await login(browser, d)
            await open_conversation(page, d, conv.id)
            article = page.locator(f"#m-{sent['message_id']}")
            assert "overseer" not in (await article.get_attribute("class")).split()
            assert (await article.locator(".sender").inner_text()) == "planner"


async def test_search_finds_message_text(bridge):
    async with bridge.agent("a") as a:
        one = await create_conv(a)
        two = await create_conv(a, "reviewer", "author")
        await a.ok("send_to_partner", **one.a(message="the migration needs a rollback plan"))
        await a.ok("send_to_partner", **two.a(message="<b>Rollback</b> first, then deploy"))
        await a.ok("send_to_partner", **two.a(message="unrelated"))
    async with dashboard(bridge) as d, chromium() as browser:
        _, page = await login(browser, d)
        await page.fill("input[name=q]", "rollback")
        await page.click("button:has-text('Search')")
        hits = page.locator("table.hits tbody tr")
        assert await hits.count() == 2
        text = await page.inner_text("table.hits")
        assert one.id in text and two.id in text and "unrelated" not in text
        assert "<b>Rollback</b>" in text, "hits are shown as text"
        assert await page.locator("table.hits b").count() == 0
        await screenshot(page, "search")
        refused = await page.goto(f"{d.base}/ui/?q={'x' * 300}")
        assert refused is not None and refused.status == 400
        assert "at most 256" in await page.inner_text("main")
        assert "xxxxxxxx" not in await page.content(), "the refusal does not echo the query"


def test_a_network_address_needs_the_explicit_flag(bridge):
    proc = bridge.cli("--db", str(bridge.db), "dashboard", "--listen", "0.0.0.0:0", timeout=30)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "--allow-network" in err and "plain HTTP" in err, err
    assert proc.stdout == b"", "no login URL is printed for a refused address"
