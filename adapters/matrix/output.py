"""Matrix as a paperbridge output (``bridge.outputs``): a publisher for ``matrix:!room:server``
destinations, started when the settings name one. Settings in ``[outputs.matrix]``:
``homeserver_url`` (required, e.g. ``https://matrix.example.org``), ``papers_per_message``
(1–20, default 5), ``timeout_seconds``. The access token comes only from
``MATRIX_ACCESS_TOKEN``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import httpx

from adapters.destination_checks import COMMON_OPTIONS, destinations_of, option_problems
from adapters.http_output import HttpPostingOutput, papers_per_message
from adapters.matrix.publisher import KIND, TOKEN_VARIABLE, MatrixPublisher
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.outputs import OutputContext
from bridge.publisher import Publisher

# A room id: "!" opaque id ":" server name (rooms are posted to by id, not by #alias).
ROOM_ID = re.compile(r"![^\s:/]+:[A-Za-z0-9.\-]+(?::\d{1,5})?")
OPTIONS = ("homeserver_url", *COMMON_OPTIONS)


def matrix_output(context: OutputContext) -> HttpPostingOutput | None:
    """The output when a configured destination is a Matrix room."""
    if not destinations_of(context.settings, KIND):
        return None
    token = os.environ.get(TOKEN_VARIABLE, "").strip()

    def make(client: httpx.AsyncClient, options: Mapping[str, Any]) -> Publisher:
        return MatrixPublisher(
            client,
            homeserver=str(options.get("homeserver_url", "")),
            token=token,
            papers_per_message=papers_per_message(options),
        )

    return HttpPostingOutput("matrix", KIND, context.settings.outputs.get("matrix", {}), make)


def matrix_problems(
    settings: Settings, listen: bool, environ: Mapping[str, str] | None = None
) -> list[ConfigError]:
    """The room ids, the homeserver, the token (set; never shown) and the options."""
    environ = os.environ if environ is None else environ
    options = settings.outputs.get("matrix", {})
    problems = option_problems("matrix", options, OPTIONS)
    destinations = destinations_of(settings, KIND)
    for key, address in destinations:
        if not ROOM_ID.fullmatch(address):
            problems.append(
                ConfigError(
                    key,
                    "must be matrix:ROOM_ID, e.g. matrix:!AbCdEf:example.org (the room's id from"
                    " its settings, not a #alias)",
                )
            )
    if not destinations:
        return problems
    base = options.get("homeserver_url")
    if not isinstance(base, str) or not re.fullmatch(r"https?://[^\s/]+/?", base):
        problems.append(
            ConfigError(
                "outputs.matrix.homeserver_url",
                "matrix destinations need the homeserver's URL, e.g. https://matrix.example.org",
            )
        )
    if not environ.get(TOKEN_VARIABLE, "").strip():
        problems.append(
            ConfigError(
                destinations[0][0], f"matrix destinations need an access token in {TOKEN_VARIABLE}"
            )
        )
    return problems
