"""The feeds and the web page as an output ``serve`` mounts (bridge.outputs): routes, the
feed fast-path middleware and the cached-feed fast path (bridge.web.FrontDoor), over the
running bridge. ``deliver`` serves no page: none there."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from adapters.atom.routes import FeedOptions, FeedSite
from bridge.outputs import OutputContext
from bridge.publisher import Publisher
from bridge.web import FastPath


class FeedsOutput:
    name = "feeds"

    def __init__(self, site: FeedSite) -> None:
        self.site = site

    def publishers(self) -> Mapping[str, Publisher]:
        return {}  # readers pull feeds; nothing is pushed

    def routes(self) -> list[BaseRoute]:
        return self.site.routes()

    def middleware(self) -> list[Middleware]:
        return self.site.middleware()

    def fast_paths(self) -> list[FastPath]:
        return self.site.fast_paths()

    async def start(self, *, listen: bool) -> None:
        pass

    async def stop(self) -> None:
        pass


def feeds_output(context: OutputContext) -> FeedsOutput | None:
    if context.bridge is None:
        return None
    options = FeedOptions(size=context.settings.server.feed_size)
    return FeedsOutput(FeedSite(context.bridge, options, health=context.health))
