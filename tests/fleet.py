"""Many destinations with one digest subscription each, written in one transaction: the fan-out
tests (crash, two processes) and bench/deliveries.py start from such a fleet."""

from __future__ import annotations

from datetime import datetime

from bridge.store import Store, schema


def seed_fleet(
    store: Store,
    count: int,
    *,
    kind: str,
    address: str,
    query: str,
    created_at: datetime,
    time_zone: str = "UTC",
) -> list[str]:
    """Destinations ``d0000…`` with subscriptions ``s0000…`` at 08:00 local; returns the
    destination ids. One transaction, not 2 × ``count``."""
    width = max(4, len(str(count - 1)))
    ids = [f"{n:0{width}d}" for n in range(count)]
    with store.engine.begin() as conn:
        conn.execute(
            schema.destinations.insert(),
            [dict(id=f"d{n}", kind=kind, address=address, created_at=created_at) for n in ids],
        )
        conn.execute(
            schema.digest_subscriptions.insert(),
            [
                dict(
                    id=f"s{n}",
                    destination_id=f"d{n}",
                    query=query,
                    local_time="08:00",
                    time_zone=time_zone,
                    created_at=created_at,
                )
                for n in ids
            ],
        )
    return [f"d{n}" for n in ids]
