"""The output seam: configured outputs start, lend the ledger their publishers, and stop."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.routing import BaseRoute

from bridge.chat import ChatService
from bridge.config import Settings
from bridge.ledger import build_ledger
from bridge.outputs import Output, OutputContext, running_outputs
from bridge.publisher import Publisher
from bridge.store import Store
from tests.fakes import RecordingPublisher


class FakeOutput:
    name = "fake"

    def __init__(self) -> None:
        self.events: list[str] = []
        self.publisher = RecordingPublisher(kind="fake-chat")

    def publishers(self) -> Mapping[str, Publisher]:
        return {"fake-chat": self.publisher}

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self, *, listen: bool) -> None:
        self.events.append(f"start listen={listen}")

    async def stop(self) -> None:
        self.events.append("stop")


async def test_configured_outputs_run_and_unconfigured_ones_are_skipped(store: Store) -> None:
    settings = Settings()
    ledger = build_ledger(store, settings)
    context = OutputContext(settings, store, ledger, ChatService(store, ledger, settings))
    made = FakeOutput()

    def configured(_: OutputContext) -> Output:
        return made

    def unconfigured(_: OutputContext) -> None:
        return None

    async with running_outputs(context, listen=False, factories=[unconfigured, configured]) as outs:
        assert outs == [made]
        assert ledger.publishers["fake-chat"] is made.publisher
        assert made.events == ["start listen=False"]
    assert made.events == ["start listen=False", "stop"]
