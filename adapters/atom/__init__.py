"""Feeds people subscribe to (Atom, JSON Feed, OPML) and the small web page, served over HTTP.

``FeedSite(bridge)`` gives the Starlette routes and the feed fast-path middleware;
``create_web_app(bridge, extra_routes=site.routes(), middleware=site.middleware())`` mounts them.
"""

from adapters.atom.routes import FeedOptions, FeedSite, feed_routes

__all__ = ["FeedOptions", "FeedSite", "feed_routes"]
