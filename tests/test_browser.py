"""The web page in a real headless Chromium: it loads, search works, nothing runs, no console errors."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.models import Paper
from tests.fake_upstream import FakeUpstream
from tests.test_web_server import LiveServer, hf_items, live_settings, serve_hf

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)) and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed (scripts/test installs them)",
)
HOSTILE = "<script>alert(1)</script> World models that escape"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1400",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    # The console, as the page's own log: errors, CSP violations, failed loads.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LiveServer]:
    with FakeUpstream() as upstream:
        serve_hf(upstream, hf_items())
        with LiveServer(live_settings(tmp_path, upstream)) as live:
            live.poll()
            assert live.bridge is not None
            live.bridge.store.add_papers(
                [Paper("2606.99999", HOSTILE, abstract="An <img src=x onerror=alert(2)> abstract.")]
            )
            yield live


def console_problems(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def test_page_loads_search_returns_results_and_nothing_executes(
    browser: Any, site: LiveServer
) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(site.url("/"))
    assert browser.title == "paperbridge"
    feeds = browser.find_elements(By.CSS_SELECTOR, "ul.feeds li")
    assert [li.find_element(By.TAG_NAME, "strong").text for li in feeds] == [
        "paperbridge: all new papers",
        "paperbridge: world",
    ]
    assert browser.find_element(By.LINK_TEXT, "feeds.opml").get_attribute("href") == site.url(
        "/feeds.opml"
    )

    box = browser.find_element(By.NAME, "q")
    box.send_keys("world")
    box.submit()  # a plain GET form: no JavaScript involved
    # submit() returns before the next page has loaded; wait for it (a busy machine is slow).
    WebDriverWait(browser, 20).until(expected_conditions.url_to_be(site.url("/search?q=world")))
    papers = browser.find_elements(By.CSS_SELECTOR, "#results article.paper")
    assert len(papers) >= 2
    titles = [p.find_element(By.TAG_NAME, "h3").text for p in papers]
    assert HOSTILE in titles  # shown as text, not run
    first = next(paper for paper, title in zip(papers, titles, strict=True) if title != HOSTILE)
    assert first.find_element(By.CSS_SELECTOR, ".meta").text
    assert first.find_element(By.CSS_SELECTOR, ".authors").text
    assert first.find_element(By.CSS_SELECTOR, ".abstract").text
    assert "▲" in first.find_element(By.CSS_SELECTOR, ".upvotes").text
    links = [a.text for a in first.find_elements(By.CSS_SELECTOR, ".links a")]
    assert links[:3] == ["Hugging Face", "arXiv", "PDF"]
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is the check
    assert browser.execute_script("return document.scripts.length") == 0
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "web-search.png"))

    # Opening a feed in the browser shows a readable page, not raw XML.
    browser.get(site.url("/feeds/subscriptions/world.atom"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "paperbridge: world"
    assert browser.find_elements(By.CSS_SELECTOR, "article.paper")
    browser.save_screenshot(str(ARTIFACTS / "web-feed-view.png"))

    assert console_problems(browser) == []
