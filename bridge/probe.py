"""`paperbridge healthcheck`: ask the running `serve` for /healthz on its configured port."""

from __future__ import annotations

import ipaddress
import json
import sys
import urllib.error
import urllib.request

from bridge.config import Settings


def local_address(host: str, port: int) -> str:
    """Where a process on the same host reaches a server listening on ``host``:``port``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"{host}:{port}"  # a name: connect to it as configured
    if address.is_unspecified:
        # Listening on every interface: loopback is one of them.
        return f"[::1]:{port}" if address.version == 6 else f"127.0.0.1:{port}"
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def healthcheck(settings: Settings, *, timeout: float = 4.0) -> int:
    """0 when /healthz answers 200; 1 otherwise, with the reason on stderr."""
    url = f"http://{local_address(settings.server.host, settings.server.port)}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body = response.status, response.read(65536)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(65536)
    except (OSError, ValueError) as exc:
        print(f"paperbridge: {url} unreachable: {exc}", file=sys.stderr)
        return 1
    if status == 200:
        return 0
    print(f"paperbridge: {url} answered {status}: {_reason(body)}", file=sys.stderr)
    return 1


def _reason(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(answer, dict) and answer.get("problems"):
        return "; ".join(str(problem) for problem in answer["problems"])
    return json.dumps(answer)[:500]
