"""Request timer benchmark: what ``metrics.RequestTimer`` adds to each HTTP request, in process.

The baseline is the same trivial ASGI app called without the timer, in the same run; the
figure that matters is the difference, next to the 55-66 us of server CPU a cached feed
request costs (bench/feeds.py). Best of ``--repeat`` runs, so a busy host inflates it least.

    .venv/bin/python bench/request_timer.py [--requests 50000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge import metrics  # noqa: E402

ROUTE = "/feeds/all.{fmt}"


async def app(_scope: Any, _receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x"})


async def discard(_message: Any) -> None:
    return None


class _Route:
    path = ROUTE


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    timer = metrics.RequestTimer(app)
    scope = {"type": "http", "method": "GET", "route": _Route()}
    loop = asyncio.new_event_loop()

    async def run(handler: Any) -> None:
        for _ in range(args.requests):
            await handler(scope, None, discard)

    def best(handler: Any) -> float:
        runs = timeit.repeat(
            lambda: loop.run_until_complete(run(handler)), number=1, repeat=args.repeat
        )
        return min(runs) / args.requests

    key = (ROUTE, "GET", "200")
    observe = min(
        timeit.repeat(
            lambda: metrics.REQUEST_SECONDS.observe_labels(key, 0.0012),
            number=args.requests,
            repeat=args.repeat,
        )
    )
    bare, timed = best(app), best(timer)
    print(f"observe_labels:                 {observe / args.requests * 1e6:6.2f} us")
    print(f"bare app per request:           {bare * 1e6:6.2f} us")
    print(f"same app inside RequestTimer:   {timed * 1e6:6.2f} us")
    print(f"the timer adds:                 {(timed - bare) * 1e6:6.2f} us per request")


if __name__ == "__main__":
    main()
