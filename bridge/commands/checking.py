"""`paperbridge check-config`: print the checked settings, secrets redacted."""

from __future__ import annotations

import json
import sys

from bridge.config import Settings, redacted


def check_config(settings: Settings) -> int:
    # Everything serve checks before it starts (bridge.startup), queries, what posting needs
    # from the environment and each output's settings included, was checked when the settings
    # were loaded; a problem never gets here.
    print(json.dumps(redacted(settings), indent=2))
    print("config ok", file=sys.stderr)
    return 0
