"""serve's HTTP-limits protocol against uvicorn's own, in process: CPU per request.

bench/feeds.py measures both under wrk, where a round swings by more than the limits cost.
This drives the protocols directly, as the event loop would: 50 kept-alive connections on a
transport that only counts what is written, each given wrk's request in one read, the app
(a bare ASGI app sending 110 KB) run by the loop, over and over. The figure is CPU time
(``time.process_time``) per request, best and median of ``--repeat`` runs, interleaved.

    .venv/bin/python bench/http_protocol.py [--requests 400] [--repeat 11] [--compare-tree DIR]

--compare-tree also times the limits protocol of another checkout (its
bridge/http_limits.py, e.g. the commit before a change from `git archive`), in the same runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.http_limits import LimitedHttpToolsProtocol  # noqa: E402

BODY = b"x" * 110_000
HEADERS = [
    (b"content-type", b"application/atom+xml; charset=utf-8"),
    (b"content-length", str(len(BODY)).encode()),
]
REQUEST = b"GET /feeds/all.atom HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
CONNECTIONS = 50


async def bare_app(_scope: Any, _receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


class CountingTransport(asyncio.Transport):
    """A socket that takes every write at once and remembers only how many there were."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def per_request(protocol: type[HttpToolsProtocol], requests: int) -> float:
    """Microseconds of CPU per request: ``requests`` rounds of one request per connection."""
    config = uvicorn.Config(bare_app, log_config=None, access_log=False, lifespan="off")
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(CONNECTIONS):
        connection = protocol(config, state, {}, loop)
        connection.connection_made(CountingTransport())
        connections.append(connection)
    started = time.process_time()
    for _ in range(requests):
        for connection in connections:
            connection.data_received(REQUEST)
        await asyncio.sleep(0)  # each connection's app task runs and sends its answer
        await asyncio.sleep(0)
    elapsed = time.process_time() - started
    if state.total_requests != requests * CONNECTIONS:
        raise RuntimeError(f"{state.total_requests} answers to {requests * CONNECTIONS} requests")
    for connection in connections:
        connection.connection_lost(None)
    return elapsed / (requests * CONNECTIONS) * 1e6


def load_protocol(tree: Path) -> type[HttpToolsProtocol]:
    spec = importlib.util.spec_from_file_location("other_limits", tree / "bridge/http_limits.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no bridge/http_limits.py in {tree}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    other: type[HttpToolsProtocol] = module.LimitedHttpToolsProtocol
    return other


async def run(args: argparse.Namespace) -> None:
    cases: dict[str, type[HttpToolsProtocol]] = {
        "uvicorn's httptools protocol": HttpToolsProtocol,
        "serve's limits, this tree": LimitedHttpToolsProtocol,
    }
    if args.compare_tree:
        cases[f"serve's limits, {args.compare_tree}"] = load_protocol(args.compare_tree)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, protocol in cases.items():
            times[name].append(await per_request(protocol, args.requests))
    floor = min(times["uvicorn's httptools protocol"])
    print(f"{CONNECTIONS} connections x {args.requests} requests, {args.repeat} interleaved runs")
    for name, values in times.items():
        best = min(values)
        print(
            f"  {name:<44} best {best:6.2f} us  median {statistics.median(values):6.2f} us"
            f"  best {best / floor:6.1%} of uvicorn's, +{best - floor:.2f} us"
        )
    print("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="rounds per connection")
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--compare-tree", type=Path)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
