"""Fetcher against a real local HTTP server: conditional GET, retries, spacing, limits."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import FetchError
from bridge.fetch import Fetcher, FetchResult, MemoryValidatorStore
from tests.fake_upstream import FakeUpstream, FaultKind, fixture, unused_port

UA = "paperbridge-test/0.1 (+https://example.org/paperbridge; mailto:ops@example.org)"
HF_FIXTURE = "hf/daily_papers_api_limit30_2026-06-13.json"


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ClockedTransport(httpx.AsyncBaseTransport):
    """A real transport that notes, on the fake clock, when each request leaves."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._clock = clock
        self.starts: list[tuple[str, float]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.starts.append((request.url.host, self._clock()))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def make_fetcher(
    up: FakeUpstream, fake_time: FakeTime
) -> AsyncIterator[Callable[..., Fetcher]]:
    made: list[Fetcher] = []

    def make(**kwargs: Any) -> Fetcher:
        kwargs.setdefault("user_agent", UA)
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("sleep", fake_time.sleep)
        kwargs.setdefault("clock", fake_time.clock)
        kwargs.setdefault("rng", random.Random(1234))
        fetcher = Fetcher(**kwargs)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.aclose()


# --- conditional GET -------------------------------------------------------------------------

LAST_MODIFIED = "Sat, 13 Jun 2026 08:00:00 GMT"


async def test_200_returns_body_and_validators_without_conditional_headers(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add_fixture("/api/daily_papers", HF_FIXTURE, etag='"v1"', last_modified=LAST_MODIFIED)
    fetcher = make_fetcher()

    result = await fetcher.get(up.url("/api/daily_papers"))

    assert result == FetchResult(
        url=up.url("/api/daily_papers"),
        status=200,
        text=fixture(HF_FIXTURE).decode("utf-8"),
        etag='"v1"',
        last_modified=LAST_MODIFIED,
        not_modified=False,
    )
    (request,) = up.requests
    assert "if-none-match" not in request.headers
    assert "if-modified-since" not in request.headers


async def test_no_conditional_headers_until_remember(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/feed", "<feed/>", etag='"v1"', last_modified=LAST_MODIFIED)
    fetcher = make_fetcher()

    first = await fetcher.get(up.url("/feed"))
    second = await fetcher.get(up.url("/feed"))
    assert (first.status, second.status) == (200, 200)
    assert all("if-none-match" not in r.headers for r in up.requests)

    fetcher.remember(second)
    third = await fetcher.get(up.url("/feed"))

    assert third == FetchResult(
        url=up.url("/feed"),
        status=304,
        text=None,
        etag='"v1"',
        last_modified=LAST_MODIFIED,
        not_modified=True,
    )
    assert up.requests[-1].headers["if-none-match"] == '"v1"'
    assert up.requests[-1].headers["if-modified-since"] == LAST_MODIFIED


async def test_changed_resource_answers_200_to_a_conditional_get(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/feed", "old", etag='"v1"')
    fetcher = make_fetcher()
    fetcher.remember(await fetcher.get(up.url("/feed")))
    up.add("/feed", "new", etag='"v2"')

    result = await fetcher.get(up.url("/feed"))

    assert (result.status, result.text, result.etag) == (200, "new", '"v2"')
    assert up.requests[-1].headers["if-none-match"] == '"v1"'


async def test_last_modified_alone_gives_304(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/rss", "<rss/>", last_modified=LAST_MODIFIED)
    fetcher = make_fetcher()
    fetcher.remember(await fetcher.get(up.url("/rss")))

    result = await fetcher.get(up.url("/rss"))

    assert result.not_modified
    assert (result.etag, result.last_modified) == (None, LAST_MODIFIED)


async def test_conditional_false_ignores_stored_validators(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/feed", "body", etag='"v1"')
    fetcher = make_fetcher()
    fetcher.remember(await fetcher.get(up.url("/feed")))

    result = await fetcher.get(up.url("/feed"), conditional=False)

    assert (result.status, result.text) == (200, "body")
    assert "if-none-match" not in up.requests[-1].headers


async def test_validators_are_keyed_on_the_url_with_its_query(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/api/daily_papers", "[1]", query={"date": "2026-06-12"}, etag='"a"')
    up.add("/api/daily_papers", "[2]", query={"date": "2026-06-13"}, etag='"b"')
    store = MemoryValidatorStore()
    fetcher = make_fetcher(validators=store)

    day1 = await fetcher.get(up.url("/api/daily_papers"), {"date": "2026-06-12"})
    assert day1.url == up.url("/api/daily_papers?date=2026-06-12")
    assert day1.text == "[1]"
    fetcher.remember(day1)
    assert store.get_validators(day1.url) == ('"a"', None)

    day2 = await fetcher.get(up.url("/api/daily_papers"), {"date": "2026-06-13"})
    again = await fetcher.get(up.url("/api/daily_papers"), {"date": "2026-06-12"})

    assert (day2.status, day2.text) == (200, "[2]")
    assert "if-none-match" not in up.requests[1].headers
    assert again.not_modified
    assert up.requests[2].query == {"date": "2026-06-12"}


async def test_params_merge_with_a_query_already_in_the_url(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/api/query", "<feed/>", query={"search_query": "cat:cs.LG", "start": "0"})
    fetcher = make_fetcher()

    result = await fetcher.get(up.url("/api/query?search_query=cat:cs.LG"), {"start": 0})

    assert result.text == "<feed/>"
    assert up.requests[0].query == {"search_query": "cat:cs.LG", "start": "0"}


# --- bodies ----------------------------------------------------------------------------------


async def test_empty_200_body_is_empty_text(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/empty", b"")
    result = await make_fetcher().get(up.url("/empty"))
    assert (result.status, result.text) == (200, "")


async def test_text_is_decoded_with_the_declared_charset(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/latin", "Gödel, café".encode("latin-1"), content_type="text/plain; charset=iso-8859-1")
    result = await make_fetcher().get(up.url("/latin"))
    assert result.text == "Gödel, café"


async def test_body_over_max_bytes_is_refused_without_retry(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/big", b"x" * 1000)
    with pytest.raises(FetchError, match="response larger than 100 bytes") as caught:
        await make_fetcher(max_bytes=100).get(up.url("/big"))
    assert caught.value.url == up.url("/big")
    assert len(up.requests) == 1
    assert fake_time.sleeps == []


async def test_redirect_is_followed_and_result_keeps_the_requested_url(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/old", b"", status=301, headers={"Location": "/new"})
    up.add("/new", "moved here")
    result = await make_fetcher().get(up.url("/old"))
    assert (result.url, result.text) == (up.url("/old"), "moved here")
    assert [r.path for r in up.requests] == ["/old", "/new"]


async def test_user_agent_is_sent(up: FakeUpstream, make_fetcher: Callable[..., Fetcher]) -> None:
    up.add("/ua", "ok")
    await make_fetcher().get(up.url("/ua"))
    assert up.requests[0].headers["user-agent"] == UA


def test_empty_user_agent_is_rejected() -> None:
    with pytest.raises(ValueError, match="user_agent"):
        Fetcher(user_agent="  ")


# --- retries ---------------------------------------------------------------------------------


async def test_503_twice_then_200_backs_off_with_jitter(
    up: FakeUpstream,
    make_fetcher: Callable[..., Fetcher],
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    up.add("/flaky", "finally")
    up.fail("/flaky", times=2, status=503)
    fetcher = make_fetcher(backoff_base=2.0, rng=random.Random(7))

    with caplog.at_level(logging.WARNING, logger="bridge.fetch"):
        result = await fetcher.get(up.url("/flaky"))

    assert result.text == "finally"
    assert len(up.requests) == 3
    expected = random.Random(7)
    assert fake_time.sleeps == [expected.uniform(0, 2.0), expected.uniform(0, 4.0)]
    assert len(caplog.records) == 2
    first = caplog.records[0]
    assert first.args == (
        up.url("/flaky"),
        1,
        5,
        "HTTP 503 Service Unavailable",
        fake_time.sleeps[0],
    )
    assert all(UA not in r.getMessage() for r in caplog.records)


async def test_429_retry_after_seconds_is_honoured(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/api/daily_papers", "[]")
    up.fail("/api/daily_papers", status=429, retry_after=7)

    result = await make_fetcher().get(up.url("/api/daily_papers"))

    assert result.text == "[]"
    assert fake_time.sleeps == [7.0]


async def test_503_retry_after_http_date_is_honoured(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/rss/cs.AI", "<rss/>")
    up.fail("/rss/cs.AI", status=503, retry_after=formatdate(time.time() + 30, usegmt=True))

    await make_fetcher().get(up.url("/rss/cs.AI"))

    # Both dates have one-second resolution and come from different clocks' reads.
    (waited,) = fake_time.sleeps
    assert 28.0 <= waited <= 31.0


async def test_hf_ratelimit_header_is_honoured_on_429(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/api/daily_papers", "[]")
    up.fail(
        "/api/daily_papers",
        status=429,
        headers={
            "RateLimit": '"api";r=0;t=55',
            "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
        },
    )
    await make_fetcher().get(up.url("/api/daily_papers"))
    assert fake_time.sleeps == [55.0]


async def test_retry_after_above_the_cap_gives_up_at_once(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/api/query", "<feed/>")
    up.fail("/api/query", status=429, retry_after=3600)

    with pytest.raises(FetchError, match="3600 s") as caught:
        await make_fetcher(max_retry_after=900).get(up.url("/api/query"))

    assert caught.value.status == 429
    assert caught.value.url == up.url("/api/query")
    assert "900" in str(caught.value)
    assert len(up.requests) == 1
    assert fake_time.sleeps == []


async def test_503_until_the_last_attempt_names_url_and_status(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/down", "never")
    up.fail("/down", times=5, status=503)

    with pytest.raises(FetchError) as caught:
        await make_fetcher().get(up.url("/down"))

    assert caught.value.url == up.url("/down")
    assert caught.value.problem == "HTTP 503 Service Unavailable after 5 attempts"
    assert caught.value.status == 503
    assert len(up.requests) == 5
    assert len(fake_time.sleeps) == 4


async def test_timeouts_are_retried_then_reported(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/slow", "late")
    up.fail("/slow", times=3, kind="timeout")

    fetcher = make_fetcher(timeout=0.5, max_attempts=3)
    with pytest.raises(FetchError) as caught:
        await fetcher.get(up.url("/slow"))

    assert caught.value.url == up.url("/slow")
    assert caught.value.problem == "timed out after 3 attempts"
    assert up.url("/slow") in str(caught.value)
    # Three attempts with a back-off between each. They are counted where they are made: on a
    # loaded machine an attempt's clock can run out while connecting, before the fake has read
    # the request (a CI run saw 2 of 3 arrive), so the fake's count is only bounded.
    assert fetcher.requests == 3
    assert len(fake_time.sleeps) == 2
    assert 1 <= len(up.requests) <= 3
    assert {r.path for r in up.requests} == {"/slow"}


async def test_one_timeout_then_success(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/slow", "on time")
    up.fail("/slow", kind="timeout")
    result = await make_fetcher(timeout=0.2).get(up.url("/slow"))
    assert result.text == "on time"


async def test_connection_resets_are_retried_then_reported(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/reset", "never")
    up.fail("/reset", times=3, kind="reset")

    with pytest.raises(FetchError, match=r"connection broken.* after 3 attempts") as caught:
        await make_fetcher(max_attempts=3).get(up.url("/reset"))

    assert caught.value.url == up.url("/reset")
    assert caught.value.status is None
    assert len(up.requests) == 3


@pytest.mark.parametrize("kind", ["reset", "truncate"])
async def test_broken_answer_then_success(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], kind: FaultKind
) -> None:
    up.add("/x", "whole body here")
    up.fail("/x", kind=kind)
    result = await make_fetcher().get(up.url("/x"))
    assert result.text == "whole body here"
    assert len(up.requests) == 2


async def test_truncated_bodies_are_never_returned(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    up.add("/x", "whole body here")
    up.fail("/x", times=2, kind="truncate")
    with pytest.raises(FetchError, match="after 2 attempts"):
        await make_fetcher(max_attempts=2).get(up.url("/x"))


async def test_a_dripped_body_is_cut_off_at_the_deadline(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    # 64 KB at 1 KB every 20 ms: every read arrives well inside the 5 s timeout, and the whole
    # body would take over a second.
    up.add("/drip", "x" * 65536)
    up.fail("/drip", times=2, kind="drip", delay=0.02)
    with pytest.raises(FetchError) as caught:
        await make_fetcher(deadline=0.3, max_attempts=2).get(up.url("/drip"))
    assert caught.value.url == up.url("/drip")
    assert caught.value.problem == "no complete answer within the 0.3 s deadline after 2 attempts"
    assert len(up.requests_to("/drip")) == 2


async def test_the_deadline_is_a_setting() -> None:
    from bridge.app import build_fetcher
    from bridge.config import Settings

    tight = Settings.model_validate({"fetch": {"deadline_seconds": 7.5}})
    async with build_fetcher(Settings()) as default, build_fetcher(tight) as chosen:
        assert (default.deadline, chosen.deadline) == (120.0, 7.5)
    with pytest.raises(ValueError, match="deadline"):
        Fetcher(user_agent=UA, deadline=0)


async def test_connection_refused(
    make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    url = f"http://127.0.0.1:{unused_port()}/api/daily_papers"
    with pytest.raises(FetchError) as caught:
        await make_fetcher(max_attempts=2).get(url)
    assert caught.value.url == url
    assert caught.value.problem == "connection refused after 2 attempts"
    assert len(fake_time.sleeps) == 1


@pytest.mark.parametrize(
    ("status", "problem"),
    [(404, "HTTP 404 Not Found"), (400, "HTTP 400 Bad Request"), (403, "HTTP 403 Forbidden")],
)
async def test_client_errors_are_not_retried(
    up: FakeUpstream,
    make_fetcher: Callable[..., Fetcher],
    fake_time: FakeTime,
    status: int,
    problem: str,
) -> None:
    if status != 404:
        up.add("/nope", "no", status=status)
    with pytest.raises(FetchError) as caught:
        await make_fetcher().get(up.url("/nope"))
    assert (caught.value.url, caught.value.problem, caught.value.status) == (
        up.url("/nope"),
        problem,
        status,
    )
    assert len(up.requests) == 1
    assert fake_time.sleeps == []


async def test_408_is_retried(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/x", "ok")
    up.fail("/x", status=408)
    assert (await make_fetcher().get(up.url("/x"))).text == "ok"
    assert len(fake_time.sleeps) == 1


# --- politeness ------------------------------------------------------------------------------


async def test_min_interval_spaces_one_host_and_not_others(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/rss", "<rss/>")
    transport = ClockedTransport(fake_time.clock)
    fetcher = make_fetcher(min_interval={"127.0.0.1": 3.0}, transport=transport)
    other = f"http://localhost:{up.port}/rss"

    for _ in range(3):
        await fetcher.get(up.url("/rss"))
    spaced = [t for host, t in transport.starts]
    for _ in range(3):
        await fetcher.get(other)

    assert [b - a for a, b in zip(spaced, spaced[1:], strict=False)] == [3.0, 3.0]
    assert [host for host, _ in transport.starts] == ["127.0.0.1"] * 3 + ["localhost"] * 3
    assert fake_time.sleeps == [3.0, 3.0]


async def test_min_interval_counts_from_the_previous_start(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/rss", "<rss/>")
    fetcher = make_fetcher(min_interval={"127.0.0.1": 3.0})
    await fetcher.get(up.url("/rss"))
    fake_time.now += 2.0  # parsing took 2 s; only 1 s is left to wait
    await fetcher.get(up.url("/rss"))
    fake_time.now += 10.0
    await fetcher.get(up.url("/rss"))
    assert fake_time.sleeps == [1.0]


async def test_retries_to_a_spaced_host_are_spaced_too(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/api/query", "<feed/>")
    up.fail("/api/query", status=503)
    transport = ClockedTransport(fake_time.clock)
    fetcher = make_fetcher(min_interval={"127.0.0.1": 3.0}, transport=transport, backoff_base=1.0)

    await fetcher.get(up.url("/api/query"))

    (first, second) = (t for _, t in transport.starts)
    assert second - first >= 3.0


async def test_concurrent_callers_to_a_spaced_host_get_distinct_slots(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    up.add("/rss", "<rss/>")
    transport = ClockedTransport(fake_time.clock)
    fetcher = make_fetcher(min_interval={"127.0.0.1": 3.0}, transport=transport)

    await asyncio.gather(*(fetcher.get(up.url("/rss")) for _ in range(3)))

    starts = sorted(t for _, t in transport.starts)
    assert [b - a for a, b in zip(starts, starts[1:], strict=False)] == [3.0, 3.0]


async def test_one_connection_at_a_time_to_a_spaced_host(
    up: FakeUpstream, make_fetcher: Callable[..., Fetcher]
) -> None:
    # The server's in-flight count shows overlap; the delay makes overlap certain if allowed.
    up.add("/slow", "ok", delay=0.2)
    serial = make_fetcher(min_interval={"127.0.0.1": 0.0}, clock=time.monotonic)
    parallel = make_fetcher(clock=time.monotonic)

    await asyncio.gather(serial.get(up.url("/slow")), serial.get(up.url("/slow")))
    assert up.max_in_flight == 1

    await asyncio.gather(parallel.get(up.url("/slow")), parallel.get(up.url("/slow")))
    assert up.max_in_flight == 2


# --- clock and sleep maths, without a network -----------------------------------------------


def _always(status: int, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, headers=headers))


async def test_retry_after_date_is_measured_against_the_server_date() -> None:
    fake = FakeTime()
    headers = {
        "Date": "Sat, 13 Jun 2026 08:00:00 GMT",
        "Retry-After": "Sat, 13 Jun 2026 08:02:00 GMT",
    }
    async with Fetcher(
        user_agent=UA, transport=_always(503, headers), sleep=fake.sleep, max_attempts=2
    ) as fetcher:
        with pytest.raises(FetchError, match="after 2 attempts"):
            await fetcher.get("https://rss.arxiv.org/atom/cs.AI")
    assert fake.sleeps == [120.0]


async def test_unreadable_retry_after_falls_back_to_backoff() -> None:
    fake = FakeTime()
    async with Fetcher(
        user_agent=UA,
        transport=_always(503, {"Retry-After": "soon"}),
        sleep=fake.sleep,
        max_attempts=2,
        rng=random.Random(3),
    ) as fetcher:
        with pytest.raises(FetchError):
            await fetcher.get("https://export.arxiv.org/api/query")
    assert fake.sleeps == [random.Random(3).uniform(0, 1.0)]


async def test_streamed_body_without_length_is_capped() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 100

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=chunks()))
    async with Fetcher(user_agent=UA, transport=transport, max_bytes=450) as fetcher:
        with pytest.raises(FetchError, match="response larger than 450 bytes"):
            await fetcher.get("https://huggingface.co/api/daily_papers")


@settings(max_examples=50, deadline=None)
@given(
    base=st.floats(min_value=0.01, max_value=10.0),
    cap=st.floats(min_value=0.01, max_value=60.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_jitter_stays_within_the_exponential_ceiling(base: float, cap: float, seed: int) -> None:
    fake = FakeTime()

    async def run() -> None:
        async with Fetcher(
            user_agent=UA,
            transport=_always(500),
            sleep=fake.sleep,
            clock=fake.clock,
            max_attempts=7,
            backoff_base=base,
            backoff_max=cap,
            rng=random.Random(seed),
        ) as fetcher:
            with pytest.raises(FetchError, match="HTTP 500 Internal Server Error after 7 attempts"):
                await fetcher.get("https://huggingface.co/api/daily_papers")

    asyncio.run(run())
    assert len(fake.sleeps) == 6
    for n, slept in enumerate(fake.sleeps, start=1):
        assert 0.0 <= slept <= min(cap, base * 2 ** (n - 1))


# --- the fake upstream itself ----------------------------------------------------------------


def test_fake_upstream_routes_on_query_and_shuts_down_cleanly() -> None:
    before = {t.ident for t in threading.enumerate()}
    with FakeUpstream() as server:
        server.add("/api/daily_papers", "today", query={"date": "2026-06-12"})
        server.add("/api/daily_papers", "any day")
        # A keep-alive connection left open must not hold up shutdown.
        client = httpx.Client(base_url=server.base_url)
        try:
            dated = client.get("/api/daily_papers", params={"date": "2026-06-12"})
            undated = client.get("/api/daily_papers", params={"date": "2026-06-13"})
            missing = client.get("/elsewhere")
        finally:
            server.stop()
            client.close()
    assert (dated.text, undated.text, missing.status_code) == ("today", "any day", 404)
    assert server.requests[1].query == {"date": "2026-06-13"}
    assert {t.ident for t in threading.enumerate()} <= before
