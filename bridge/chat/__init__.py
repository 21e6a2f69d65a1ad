"""What every chat platform shares: the ``/papers`` command language, the service behind it
(search, the top of a period, subscribe, unsubscribe, list, post now) and platform-neutral rendering helpers.

Slack (``adapters.slack``) and Discord (``adapters.discord``) each turn their own requests
into ``parse_command`` + ``ChatService`` calls and render the results in their own markup;
neither knows how search or subscriptions work, and the two behave the same.
"""

from bridge.chat.commands import (
    Command,
    Help,
    ListSubscriptions,
    PostNow,
    Search,
    Subscribe,
    Top,
    Unsubscribe,
    checked_query,
    parse_command,
    parse_time_of_day,
    parse_time_zone,
)
from bridge.chat.service import Channel, ChatService, NowReport, SearchPage

__all__ = [
    "Channel",
    "ChatService",
    "Command",
    "Help",
    "ListSubscriptions",
    "NowReport",
    "PostNow",
    "Search",
    "SearchPage",
    "Subscribe",
    "Top",
    "Unsubscribe",
    "checked_query",
    "parse_command",
    "parse_time_of_day",
    "parse_time_zone",
]
