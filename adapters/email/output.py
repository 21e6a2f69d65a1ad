"""The email output as ``serve`` and ``deliver`` run it: one publisher for ``mailto:``
destinations, no routes, no connection kept open (each message opens its own SMTP session,
so a digest a day costs no idle connection and a server restart costs nothing)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.routing import BaseRoute

from adapters.email.publisher import EmailPublisher
from adapters.email.settings import KIND, EmailSettings, email_settings
from bridge.outputs import OutputContext
from bridge.publisher import Publisher


class EmailOutput:
    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        self.publisher = EmailPublisher(settings)

    def publishers(self) -> Mapping[str, Publisher]:
        return {KIND: self.publisher}

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self, *, listen: bool) -> None:
        return None

    async def stop(self) -> None:
        return None


def email_output(context: OutputContext) -> EmailOutput | None:
    """None without an [outputs.email] section; ConfigError when it is wrong."""
    settings = email_settings(context.settings)
    return EmailOutput(settings) if settings is not None else None
