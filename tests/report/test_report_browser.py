"""The demo's report.html in a real browser: Playwright driving the system's headless Chromium,
offline. It opens with no console error and no request to anything, its filter and search
change the rows shown, and the file stays small."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.experiment._demo import run_demo
from runner.report._report import build_reports

#: Playwright cannot download its browsers here: it drives the Chromium the system installed.
CHROMIUM = Path("/usr/bin/chromium")
#: The issue's target for the demo's report (plotly inlined made it 4.9 MB).
MAX_REPORT_BYTES = 1_500_000


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo"
    result = run_demo(out)
    return build_reports(result.out_dir, score="contains").html


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    binary = CHROMIUM if CHROMIUM.exists() else None
    found = shutil.which("chromium")
    if binary is None and found is not None:
        binary = Path(found)
    if binary is None:
        pytest.fail(
            "chromium is not installed, so report.html cannot be opened in a browser: "
            "`apt-get install chromium` (./dev test installs it where it can)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(binary), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def test_the_demo_report_weighs_under_1_5_mb(demo_report: Path) -> None:
    assert demo_report.stat().st_size < MAX_REPORT_BYTES


def test_the_demo_report_opens_offline_without_console_errors_and_filters_rows(
    demo_report: Path, browser: object
) -> None:
    from playwright.sync_api import Browser, Page

    assert isinstance(browser, Browser)
    context = browser.new_context(offline=True)
    page: Page = context.new_page()
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(demo_report.as_uri(), wait_until="load")

    assert problems == []
    assert requests == [demo_report.as_uri()]  # nothing but the file itself
    assert page.locator("h2", has_text="Verdict").count() == 1
    assert page.locator(".verdicts li", has_text="pairwise judge").count() == 1
    assert page.locator("figure.chart svg").count() >= 2

    rows = page.locator("#changed-rows tbody tr")
    visible = page.locator("#changed-rows tbody tr:not([hidden])")
    total = rows.count()
    regressions = page.locator('#changed-rows tbody tr[data-kind="regression"]').count()
    assert 0 < regressions < total  # the demo's candidate regresses on some rows, not all
    assert visible.count() == total

    page.click('[data-filter="regression"]')
    assert visible.count() == regressions
    assert page.locator("#row-count").inner_text() == f"{regressions} of {total} rows shown"

    page.click('[data-filter="all"]')
    first_id = rows.nth(0).locator("td").nth(0).inner_text().split("\n")[0]
    page.fill("#row-search", first_id)
    assert 1 <= visible.count() < total
    assert all(first_id in visible.nth(i).inner_text() for i in range(visible.count()))

    page.fill("#row-search", "no row says this 0x5f3759df")
    assert visible.count() == 0
    assert problems == []
    context.close()
