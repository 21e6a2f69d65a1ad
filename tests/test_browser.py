"""The web page in a real headless Chromium: it loads, search works, nothing runs, no console errors."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import date
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


# The HF fixture's thumbnails are on Hugging Face's CDN, which the test machine cannot reach:
# the browser fetching them (CSP allowed it) and failing to resolve the name is no page fault.
OFFLINE_THUMBNAIL = re.compile(
    r"^https://cdn-thumbnails\.huggingface\.co/\S+ - Failed to load resource: net::ERR_"
)


def console_problems(driver: Any) -> list[dict[str, Any]]:
    return [
        entry
        for entry in driver.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING")
        and not (entry["source"] == "network" and OFFLINE_THUMBNAIL.match(entry["message"]))
    ]


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


@pytest.fixture
def archive_site(tmp_path: Path) -> Iterator[LiveServer]:
    """A store seeded by hand (as an import would), never polled: three listing days with
    empty days between them, one of them longer than a page."""
    with FakeUpstream() as upstream, LiveServer(live_settings(tmp_path, upstream)) as live:
        assert live.bridge is not None
        # The thumbnail is the site's own icon: no test reaches out to the internet.
        thumb = live.url("/static/favicon.svg")
        days = [date(2024, 7, 29), date(2024, 8, 1), date(2024, 8, 5)]
        papers = [
            Paper(
                f"2408.{10000 + n}",
                f"Archive paper {n}",
                abstract=f"Paper {n} studies planning. " * 12 + "It ends with generalisation.",
                authors=("Ada Lovelace", "Alan Turing"),
                source="hf",
                listed_on=days[1] if n < 35 else days[0 if n % 2 else 2],
                upvotes=(n * 37) % 101,
                num_comments=n % 4,
                thumbnail=thumb,
            )
            for n in range(40)
        ]
        live.bridge.store.add_papers(papers)
        yield live


def votes_shown(driver: Any) -> list[int]:
    from selenium.webdriver.common.by import By

    return [
        int(element.text.strip("▲ "))
        for element in driver.find_elements(By.CSS_SELECTOR, "#papers article.paper .upvotes")
    ]


def test_day_navigation_sort_paging_and_highlighting(
    browser: Any, archive_site: LiveServer
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    def follow(element: Any, url: str) -> None:
        element.click()  # a plain link: no JavaScript involved
        WebDriverWait(browser, 20).until(expected_conditions.url_to_be(archive_site.url(url)))

    # The front page shows the archive, though nothing was ever announced.
    browser.get(archive_site.url("/"))
    days = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#papers h3.day")]
    assert days == ["Monday, 05 August 2024", "Thursday, 01 August 2024"]
    follow(browser.find_element(By.LINK_TEXT, "Thursday, 01 August 2024"), "/papers/2024-08-01")

    # A day, most upvoted first, 30 to a page; page 2 has the rest.
    assert browser.find_element(By.TAG_NAME, "h1").text == "Thursday, 01 August 2024"
    assert browser.find_element(By.ID, "total").text == "35"
    first_page = votes_shown(browser)
    assert len(first_page) == 30 and first_page == sorted(first_page, reverse=True)
    image = browser.find_element(By.CSS_SELECTOR, "article.paper .thumb img")
    assert image.get_attribute("loading") == "lazy"
    follow(browser.find_element(By.CSS_SELECTOR, "a[rel=next]"), "/papers/2024-08-01?page=2")
    rest = votes_shown(browser)
    assert len(rest) == 5 and max(rest) <= min(first_page)
    browser.save_screenshot(str(ARTIFACTS / "web-day-page-2.png"))

    # The sort switch: newest first.
    follow(browser.find_element(By.LINK_TEXT, "Newest"), "/papers/2024-08-01?sort=newest")
    titles = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#papers h3")]
    assert titles[:2] == ["Archive paper 34", "Archive paper 33"]
    current = browser.find_element(By.CSS_SELECTOR, "nav.sorts [aria-current]")
    assert current.text == "Newest"

    # Previous and next days skip the empty ones; the week holds 29 July and 1 August.
    follow(browser.find_element(By.CSS_SELECTOR, "a.next-period"), "/papers/2024-08-05")
    follow(browser.find_element(By.CSS_SELECTOR, "a.prev-period"), "/papers/2024-08-01")
    follow(browser.find_element(By.CSS_SELECTOR, "a.prev-period"), "/papers/2024-07-29")
    follow(browser.find_element(By.LINK_TEXT, "The whole week"), "/papers/2024-W31")
    assert browser.find_element(By.ID, "total").text == "38"

    # Search: the sort switch and the matched words marked where the snippet starts.
    box = browser.find_element(By.NAME, "q")
    box.send_keys("generalization")
    box.submit()
    WebDriverWait(browser, 20).until(
        expected_conditions.url_to_be(archive_site.url("/search?q=generalization"))
    )
    marks = browser.find_elements(By.CSS_SELECTOR, "#results .abstract mark")
    assert marks and {m.text for m in marks} == {"generalisation"}
    snippet = browser.find_element(By.CSS_SELECTOR, "#results .abstract").text
    assert snippet.startswith("…") and snippet.rstrip().endswith("generalisation.")
    follow(browser.find_element(By.LINK_TEXT, "Upvotes"), "/search?q=generalization&sort=upvotes")
    by_votes = [
        int(e.text.strip("▲ ")) for e in browser.find_elements(By.CSS_SELECTOR, "#results .upvotes")
    ]
    assert len(by_votes) == 20 and by_votes == sorted(by_votes, reverse=True)
    follow(
        browser.find_element(By.CSS_SELECTOR, "a[rel=next]"),
        "/search?q=generalization&sort=upvotes&page=2",
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, "#results article.paper")) == 20
    browser.save_screenshot(str(ARTIFACTS / "web-search-upvotes.png"))
    # A new search from the box keeps the chosen sort.
    box = browser.find_element(By.NAME, "q")
    box.clear()
    box.send_keys("planning")
    box.submit()
    WebDriverWait(browser, 20).until(
        expected_conditions.url_to_be(archive_site.url("/search?q=planning&sort=upvotes"))
    )
    assert browser.execute_script("return document.scripts.length") == 0
    assert console_problems(browser) == []
