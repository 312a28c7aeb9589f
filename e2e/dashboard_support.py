"""Support for the dashboard's browser tests: the system Chromium driven by Playwright
(never `playwright install`: no browser download), and the `mcp-bridge dashboard` process.

Chromium comes from the distribution (`apt-get install -y chromium`; scripts/test installs it).
When it is missing and this process can install it (root, apt-get present) it is installed
here; only when it is absent AND not installable are the tests skipped, with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO_ROOT / "docs" / "dashboard"
LOGIN_URL = re.compile(r"(http://[0-9.\[\]:]+)/ui/login\?token=([A-Za-z0-9_-]{43})")


def ensure_chromium() -> Path:
    """The system Chromium; installed from the distribution when missing and possible."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False, capture_output=True)
        if CHROMIUM.exists():
            return CHROMIUM
    pytest.skip("the dashboard's browser tests need the distribution's chromium (/usr/bin/chromium): it is "
                "absent and cannot be installed here (not root or no apt-get); run `apt-get install -y chromium`")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = ensure_chromium()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(path), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


class DashboardProcess:
    """One `mcp-bridge dashboard --listen 127.0.0.1:0` on the test's database."""

    def __init__(self, bridge) -> None:
        self.bridge = bridge
        self.log_path = bridge.tmp / "dashboard.stderr.log"
        self.proc: subprocess.Popen | None = None
        self.base = ""
        self.login_url = ""

    def start(self) -> "DashboardProcess":
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [str(self.bridge.bin), "--db", str(self.bridge.db), "dashboard", "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.bridge.base_env()},
        )
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = LOGIN_URL.search(line)
        assert m, f"dashboard printed no login URL: {line!r}; stderr: {self.log()[-2000:]}"
        self.base, self.login_url = m.group(1), m.group(0)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@asynccontextmanager
async def dashboard(bridge) -> AsyncIterator[DashboardProcess]:
    d = DashboardProcess(bridge).start()
    try:
        yield d
    finally:
        d.stop()


async def new_page(browser: Browser):
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    return context, await context.new_page()


async def screenshot(page, name: str) -> None:
    """A full-page PNG for docs/dashboard.md."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
