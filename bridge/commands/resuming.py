"""`paperbridge resume`: unpause a destination after it was fixed."""

from __future__ import annotations

import sys

from bridge.commands.stores import open_existing
from bridge.config import Settings


def resume(settings: Settings, given: str) -> int:
    """Unpause the destination ``given`` names: its id, or its name as ``status`` shows it."""
    from datetime import UTC, datetime

    from bridge.store.ledger import LedgerStore

    store = open_existing(settings)
    try:
        db = LedgerStore(store)
        dest = db.get_destination(given)
        if dest is None:
            known = db.list_destinations()
            # `status` shows destinations by name or kind:address (discord-webhook:LAB_HOOK,
            # stdout); people copy that, not the hashed id beside it.
            named = [d for d in known if given and given in (d.name, d.shown_as)]
            if len(named) != 1:
                problem = "names several destinations" if named else "is no destination"
                listed = "; ".join(f"{d.label} ({d.id})" for d in named or known) or "none"
                print(f"paperbridge: {given!r} {problem}; known: {listed}", file=sys.stderr)
                return 1
            dest = named[0]
        requeued = db.resume_destination(dest.id, datetime.now(UTC))
    finally:
        store.close()
    print(f"{dest.label} resumed ({dest.id}); {requeued} papers queued again", file=sys.stderr)
    return 0
