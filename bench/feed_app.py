"""A cached feed request through the app `serve` builds, in process: CPU per request.

wrk against uvicorn (bench/feeds.py) is the figure the issue names, but on a shared machine
its rounds swing by more than one cut moves. This calls the app directly, as uvicorn would
(the same scope, two ``send`` calls), many times in a row, and prints the CPU time
(``time.process_time``) per request, best and median of ``--repeat`` runs: a 200 and a 304
(If-None-Match) for /feeds/all.atom, next to a bare ASGI app sending the same bytes.

    .venv/bin/python bench/feed_app.py [--requests 20000] [--repeat 7] [--compare-tree DIR]

--compare-tree also runs this script with another checkout first on PYTHONPATH (e.g. the
commit before a change, from `git archive`), alternating before and after twice.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()

Handler = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _scope(extra: tuple[tuple[bytes, bytes], ...] = ()) -> dict[str, Any]:
    # What uvicorn's httptools protocol builds for wrk's request.
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "path": "/feeds/all.atom",
        "raw_path": b"/feeds/all.atom",
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), *extra],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }


async def _per_request(app: Handler, extra: tuple[tuple[bytes, bytes], ...], n: int) -> float:
    async def send(_message: Any) -> None:
        return None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    started = time.process_time()
    for _ in range(n):
        await app(_scope(extra), receive, send)
    return (time.process_time() - started) / n


async def measure(requests: int, repeat: int) -> dict[str, list[float]]:
    sys.path.append(str(HERE.parent.parent))  # after PYTHONPATH: a compared tree wins
    from adapters.atom import FeedSite
    from bridge.app import open_bridge
    from bridge.config import Settings
    from bridge.models import Paper
    from bridge.web import create_web_app

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({"store": {"database_url": f"sqlite:///{tmp}/f.db"}})
        async with open_bridge(settings) as bridge:
            papers = [Paper(f"2606.{10000 + n}", f"World {n}", "World models.") for n in range(50)]
            bridge.store.add_papers(papers)
            site = FeedSite(bridge)
            site.version.ttl = 1e9  # the runs measure cached hits only
            extra: dict[str, Any] = {"middleware": site.middleware()}
            if "fast_paths" in inspect.signature(create_web_app).parameters:
                extra["fast_paths"] = site.fast_paths()
            app = create_web_app(bridge, extra_routes=site.routes(), **extra)
            answer: dict[str, Any] = {}

            async def keep(message: Any) -> None:
                answer.update(message)

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            await app(_scope(), receive, keep)  # rendered and cached
            await app(_scope(), receive, keep)
            body = answer["body"]
            await app(_scope(), receive, keep)
            headers = dict(answer.get("headers", []))
            etag = headers[b"etag"]

            async def bare(_scope: Any, _receive: Any, send: Any) -> None:
                for name, value in _scope["headers"]:
                    if name == b"if-none-match" and value == etag:
                        await send({"type": "http.response.start", "status": 304, "headers": []})
                        await send({"type": "http.response.body", "body": b""})
                        return
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": body})

            cases: dict[str, tuple[Handler, tuple[tuple[bytes, bytes], ...]]] = {
                "bare app, 200": (bare, ()),
                "cached feed, 200": (app, ()),
                "bare app, 304": (bare, ((b"if-none-match", etag),)),
                "cached feed, 304": (app, ((b"if-none-match", etag),)),
            }
            times: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(repeat):
                for name, (handler, extra_headers) in cases.items():
                    times[name].append(await _per_request(handler, extra_headers, requests))
            return times


def _print(label: str, times: dict[str, list[float]]) -> None:
    print(label)
    for name, runs in times.items():
        best, median = min(runs) * 1e6, statistics.median(runs) * 1e6
        print(f"  {name:<20} best {best:6.2f} us   median {median:6.2f} us CPU per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--compare-tree", type=Path)
    args = parser.parse_args()
    if args.compare_tree is None:
        _print("this tree", asyncio.run(measure(args.requests, args.repeat)))
        print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        return
    runs = (("before", args.compare_tree.resolve()), ("after", None))
    for label, tree in (*runs, *reversed(runs)):
        env = dict(os.environ)
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        argv = [sys.executable, str(HERE), "--requests", str(args.requests)]
        out = subprocess.run(
            [*argv, "--repeat", str(args.repeat)], env=env, capture_output=True, text=True
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        print(f"{label} ({tree or 'this tree'}):")
        print("\n".join(out.stdout.splitlines()[1:]))


if __name__ == "__main__":
    main()
