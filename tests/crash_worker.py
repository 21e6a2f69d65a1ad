"""A delivery process for the crash tests: sweeps the ledger until nothing is due, then exits.

Run as ``python -m tests.crash_worker DATABASE_URL PAPERS_PER_MESSAGE CONCURRENCY``; digests go
to ``file`` destinations (one fsynced JSON line per message). The test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys

from adapters.stdout import FilePublisher
from bridge.config import DeliverySettings
from bridge.ledger import Ledger
from bridge.store import open_store


async def main(url: str, per_message: int, concurrency: int) -> int:
    store = open_store(url)
    try:
        ledger = Ledger(
            store,
            {"file": FilePublisher(max_papers_per_message=per_message)},
            DeliverySettings(concurrency=concurrency),
        )
        while True:
            report = await ledger.sweep()
            if not report.digests:
                return 0
            if any(result not in ("sent", "empty", "quiet") for result in report.digests.values()):
                print(f"unexpected: {report.digests}", file=sys.stderr)
                return 1
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
