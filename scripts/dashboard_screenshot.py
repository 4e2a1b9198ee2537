"""Save a full-page picture of a running dashboard (``docs/dashboard.png``).

Run ``cux demo`` (it prints the dashboard's address), and while its jobs run::

    .venv/bin/python scripts/dashboard_screenshot.py URL docs/dashboard.png

It drives Debian's Chromium (``/usr/bin/chromium``) through Playwright, opens
the page on ``emb-SPOT``, watches it for 30 s (the price chart draws the
trades it sees live) and writes the PNG.
"""

from __future__ import annotations

import asyncio
import sys

from playwright.async_api import async_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


async def screenshot(url: str, path: str, symbol: str = "emb-SPOT") -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(ARGS)
        )
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 1100})
            await page.goto(f"{url.rstrip('/')}/#{symbol}", timeout=30_000)
            await page.wait_for_timeout(30_000)  # trades reach the chart live
            await page.screenshot(path=path, full_page=True)
        finally:
            await browser.close()


if __name__ == "__main__":
    asyncio.run(screenshot(sys.argv[1], sys.argv[2]))
    print(f"wrote {sys.argv[2]}")
