"""The one polite HTTP GET: conditional requests, per-host spacing, retries with backoff."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Protocol, Self

import httpx

from bridge.errors import FetchError

__all__ = ["FetchResult", "Fetcher", "MemoryValidatorStore", "ValidatorStore"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# httpx's timeout bounds each read, so a body dripped a byte at a time never trips it; this
# bounds the whole exchange (connect, headers, body). A 4 MB arXiv listing over a slow link
# takes well under a minute.
DEFAULT_DEADLINE = 120.0
_DRAIN_LIMIT = 64 * 1024

# 408 is the server saying it gave up waiting for us, so trying again is reasonable.
_RETRY_STATUSES = frozenset({408, 429})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
# Hugging Face answers 429 with `RateLimit: "api";r=0;t=55` (t = seconds until the window resets)
# and no Retry-After; huggingface_hub reads it the same way.
_RATELIMIT_RESET = re.compile(r";\s*t\s*=\s*(\d+)")


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    """The URL as requested, query string included; validators are keyed on it."""
    status: int
    text: str | None
    etag: str | None
    last_modified: str | None
    not_modified: bool


class ValidatorStore(Protocol):
    def get_validators(self, url: str) -> tuple[str | None, str | None] | None: ...

    def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None: ...


class MemoryValidatorStore:
    """Validators in a dict: for tests, and for runs where forgetting them is harmless."""

    def __init__(self) -> None:
        self._by_url: dict[str, tuple[str | None, str | None]] = {}

    def get_validators(self, url: str) -> tuple[str | None, str | None] | None:
        return self._by_url.get(url)

    def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        self._by_url[url] = (etag, last_modified)

    def __len__(self) -> int:
        return len(self._by_url)


class _GiveUp(Exception):
    """A failure that another attempt cannot fix."""

    def __init__(self, problem: str, status: int | None = None) -> None:
        self.problem = problem
        self.status = status


class _Retryable(Exception):
    """A failure worth another attempt; ``wait`` is the server's own hint, if it gave one."""

    def __init__(self, problem: str, status: int | None = None, wait: float | None = None) -> None:
        self.problem = problem
        self.status = status
        self.wait = wait


class Fetcher:
    """Every upstream GET goes through here, so politeness is decided in one place.

    ``get`` sends If-None-Match / If-Modified-Since when the ValidatorStore knows the exact URL,
    and returns ``not_modified=True`` on 304. It never stores validators itself: call
    ``remember(result)`` only after what was parsed from ``result`` is durably stored. If the
    process dies in between, the next poll fetches the page again instead of being told "304,
    nothing new" about papers that were never saved.

    ``deadline`` bounds one attempt from connecting to the last byte of the body (``timeout``
    bounds each read); a server that never finishes is a failed attempt, whatever its pace.

    ``min_interval`` maps a host to the seconds that must pass between the starts of two requests
    to it (arXiv asks for 3 s, one connection at a time). Every attempt to such a host, retries
    included, takes a per-host lock for the whole exchange, so concurrent callers queue up
    instead of opening parallel connections. Hosts not listed are neither spaced nor serialized.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float = 30.0,
        deadline: float = DEFAULT_DEADLINE,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        max_retry_after: float = 900.0,
        min_interval: Mapping[str, float] | None = None,
        validators: ValidatorStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        host_headers: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        if not user_agent.strip():
            # arXiv and HF both ask clients to identify themselves; an empty agent is a bug.
            raise ValueError("user_agent must not be empty")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if deadline <= 0:
            raise ValueError("deadline must be positive")
        self.deadline = deadline
        self.user_agent = user_agent
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.max_bytes = max_bytes
        self.validators: ValidatorStore = (
            validators if validators is not None else MemoryValidatorStore()
        )
        self._min_interval = {host.lower(): float(s) for host, s in (min_interval or {}).items()}
        # Headers for one host only (an access token for HF must never reach arXiv). httpx
        # drops Authorization itself when a redirect leaves the host.
        self._host_headers = {
            host.lower(): dict(values) for host, values in (host_headers or {}).items()
        }
        # Requests sent (attempts, retries included): what a backfill's pace is measured in.
        self.requests = 0
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._host_locks: dict[str, asyncio.Lock] = {}
        self._last_start: dict[str, float] = {}
        self._client = httpx.AsyncClient(
            headers={"User-Agent": user_agent},
            timeout=timeout,
            follow_redirects=True,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def remember(self, result: FetchResult) -> None:
        """Store ``result``'s validators so the next ``get`` of its URL is conditional."""
        self.validators.set_validators(result.url, result.etag, result.last_modified)

    async def get(
        self,
        url: str,
        params: Mapping[str, str | int] | None = None,
        *,
        conditional: bool = True,
    ) -> FetchResult:
        """GET ``url`` (with ``params`` merged into its query), retrying transient failures.

        Raises FetchError naming the URL when the server refuses for good (4xx), when the
        retries run out, or when the server asks to wait longer than ``max_retry_after``.
        """
        request_url = httpx.URL(url)
        if params:
            request_url = request_url.copy_merge_params({k: str(v) for k, v in params.items()})
        key = str(request_url)
        headers: dict[str, str] = {}
        sent: tuple[str | None, str | None] = (None, None)
        if conditional:
            stored = self.validators.get_validators(key)
            if stored is not None:
                sent = stored
                if stored[0]:
                    headers["If-None-Match"] = stored[0]
                if stored[1]:
                    headers["If-Modified-Since"] = stored[1]

        host = request_url.host.lower()
        headers.update(self._host_headers.get(host, {}))
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(request_url, key, host, headers, sent)
            except _GiveUp as e:
                raise FetchError(key, e.problem, status=e.status) from None
            except _Retryable as e:
                if attempt >= self.max_attempts:
                    plural = "attempt" if attempt == 1 else "attempts"
                    raise FetchError(
                        key, f"{e.problem} after {attempt} {plural}", status=e.status
                    ) from None
                if e.wait is not None:
                    if e.wait > self.max_retry_after:
                        raise FetchError(
                            key,
                            f"{e.problem}: server asks to retry after {e.wait:.0f} s, "
                            f"more than the {self.max_retry_after:.0f} s we are willing to wait",
                            status=e.status,
                        ) from None
                    delay = e.wait
                else:
                    delay = self._backoff(attempt)
                logger.warning(
                    "fetch %s: attempt %d of %d failed (%s); retrying in %.1f s",
                    key,
                    attempt,
                    self.max_attempts,
                    e.problem,
                    delay,
                )
                await self._sleep(delay)

    def _backoff(self, failed_attempts: int) -> float:
        # Full jitter: pollers started by the same cron tick should not retry in lockstep.
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** min(failed_attempts - 1, 60))
        return self._rng.uniform(0, ceiling)

    async def _attempt(
        self,
        url: httpx.URL,
        key: str,
        host: str,
        headers: dict[str, str],
        sent: tuple[str | None, str | None],
    ) -> FetchResult:
        interval = self._min_interval.get(host)
        if interval is None:
            return await self._request(url, key, headers, sent)
        lock = self._host_locks.setdefault(host, asyncio.Lock())
        async with lock:
            last = self._last_start.get(host)
            now = self._clock()
            if last is not None and now < last + interval:
                await self._sleep(last + interval - now)
            # Take the planned start rather than re-reading the clock alone, so spacing holds
            # even when the clock moves differently from what sleep promised.
            start = self._clock()
            if last is not None:
                start = max(start, last + interval)
            self._last_start[host] = start
            return await self._request(url, key, headers, sent)

    async def _request(
        self,
        url: httpx.URL,
        key: str,
        headers: dict[str, str],
        sent: tuple[str | None, str | None],
    ) -> FetchResult:
        self.requests += 1
        try:
            async with asyncio.timeout(self.deadline):
                return await self._exchange(url, key, headers, sent)
        except TimeoutError:
            raise _Retryable(
                f"no complete answer within the {self.deadline:g} s deadline"
            ) from None

    async def _exchange(
        self,
        url: httpx.URL,
        key: str,
        headers: dict[str, str],
        sent: tuple[str | None, str | None],
    ) -> FetchResult:
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status == 304:
                    return FetchResult(
                        url=key,
                        status=304,
                        text=None,
                        etag=response.headers.get("ETag") or sent[0],
                        last_modified=response.headers.get("Last-Modified") or sent[1],
                        not_modified=True,
                    )
                if status >= 500 or status in _RETRY_STATUSES:
                    wait = None
                    if status in _RETRY_AFTER_STATUSES:
                        wait = _server_wait(response.headers)
                    await _drain(response)
                    raise _Retryable(_status_problem(response), status=status, wait=wait)
                if status >= 300:
                    await _drain(response)
                    raise _GiveUp(_status_problem(response), status=status)
                body = await self._read_capped(response)
                return FetchResult(
                    url=key,
                    status=status,
                    text=body.decode(response.encoding or "utf-8", errors="replace"),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    not_modified=False,
                )
        except httpx.TimeoutException:
            raise _Retryable("timed out") from None
        except httpx.ConnectError as e:
            raise _Retryable(_connect_problem(e)) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as e:
            raise _Retryable(f"connection broken: {e}") from None
        except httpx.TooManyRedirects:
            raise _GiveUp("too many redirects") from None
        except httpx.HTTPError as e:
            raise _GiveUp(f"{type(e).__name__}: {e}") from None

    async def _read_capped(self, response: httpx.Response) -> bytes:
        too_big = f"response larger than {self.max_bytes} bytes"
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise _GiveUp(too_big, status=response.status_code)
        chunks: list[bytes] = []
        size = 0
        # Counted after decompression: a small gzip bomb must not get past the cap.
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise _GiveUp(too_big, status=response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)


async def _drain(response: httpx.Response) -> None:
    # Reading a short error page lets the connection be reused, so a retry to arXiv stays on
    # the one connection it asks for; a long one is cheaper to hang up on.
    read = 0
    try:
        async for chunk in response.aiter_bytes():
            read += len(chunk)
            if read > _DRAIN_LIMIT:
                return
    except (httpx.HTTPError, httpx.StreamError):
        return


def _status_problem(response: httpx.Response) -> str:
    phrase = response.reason_phrase
    return f"HTTP {response.status_code} {phrase}" if phrase else f"HTTP {response.status_code}"


def _connect_problem(error: httpx.ConnectError) -> str:
    # anyio reports every failed address as "All connection attempts failed"; the real reason
    # is further down the cause chain.
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host: {cause}"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect: {error}" if str(error) else "cannot connect"


def _server_wait(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait (Retry-After, else HF's RateLimit), or None."""
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        return _parse_retry_after(retry_after, headers.get("Date"))
    rate_limit = headers.get("RateLimit")
    if rate_limit is not None:
        match = _RATELIMIT_RESET.search(rate_limit)
        if match:
            return float(match.group(1))
    return None


def _parse_retry_after(value: str, date_header: str | None) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; "-0000" parses as naive and must not be read as local time.
        when = when.replace(tzinfo=UTC)
    # Measure against the server's own Date when it sent one, so our clock skew does not count.
    now: float | None = None
    if date_header:
        try:
            server_now = parsedate_to_datetime(date_header)
            if server_now.tzinfo is None:
                server_now = server_now.replace(tzinfo=UTC)
            now = server_now.timestamp()
        except (TypeError, ValueError, IndexError):
            now = None
    if now is None:
        now = time.time()
    try:
        return max(0.0, when.timestamp() - now)
    except (OverflowError, OSError, ValueError):
        return None
