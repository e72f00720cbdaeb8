"""Screenshots of every dashboard page in real Chromium, for reviewers and the headless demo.

Chromium is Debian's (`/usr/bin/chromium`), driven by Playwright through its executable path:
a browser is never downloaded (`playwright install` is not part of this project). The pages
are taken as a logged-in user sees them, full length, at a laptop's width.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage")
VIEWPORT = {"width": 1280, "height": 900}
PAGES = (("overview", "/"), ("kiosks", "/kiosks"), ("alerts", "/alerts"), ("stats", "/stats"),
         ("map", "/map"))


class DashboardLoginFailed(Exception):
    """The user name or password was refused by the dashboard's login form."""


@contextlib.asynccontextmanager
async def chromium(executable: str = CHROMIUM) -> AsyncIterator[Browser]:
    """Debian's Chromium under Playwright, closed when the block ends."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS),
                                           headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def log_in(page: Page, base_url: str, user: str, password: str) -> None:
    await page.goto(base_url.rstrip("/") + "/login")
    await page.get_by_label(re.compile("用户名")).fill(user)
    await page.get_by_label(re.compile("密码")).fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name=re.compile("登录")).click()
    if page.url.rstrip("/").endswith("/login") or "/login?" in page.url:
        raise DashboardLoginFailed(f"the dashboard refused {user!r}")


async def dashboard_screenshots(base_url: str, user: str, password: str,
                                out_dir: Path | str, *, browser: Browser | None = None
                                ) -> list[Path]:
    """Log in as `user` and save `<page>.png` for every page (and the first kiosk's detail
    page, when there is a kiosk) in `out_dir`; returns the files written, in page order.
    Starts Chromium for the job unless a running `browser` is given."""
    if browser is None:
        async with chromium() as own:
            return await dashboard_screenshots(base_url, user, password, out_dir, browser=own)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = base_url.rstrip("/")
    written: list[Path] = []
    context = await browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    try:
        page = await context.new_page()
        await page.goto(base + "/login")
        written.append(await _shot(page, out / "login.png"))
        await log_in(page, base, user, password)
        detail_href: str | None = None
        for name, path in PAGES:
            await page.goto(base + path)
            written.append(await _shot(page, out / f"{name}.png"))
            if name == "kiosks":
                first = page.locator("table.kiosks tbody a").first
                detail_href = await first.get_attribute("href") if await first.count() else None
        if detail_href:
            await page.goto(base + detail_href)
            written.append(await _shot(page, out / "kiosk.png"))
    finally:
        await context.close()
    return written


async def _shot(page: Page, path: Path) -> Path:
    await page.screenshot(path=str(path), full_page=True)
    return path
