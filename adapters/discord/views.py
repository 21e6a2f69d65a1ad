"""The buttons under search results: previous and next page, and share in the channel.

They are ``DynamicItem``s whose custom id carries the query and the page
(``pb:p:2:generalization``; ``pb:tp:2:week`` for a page of ``/papers top``), so they keep
working after a restart and need no memory of the search; that is why a search query is at most ``SEARCH_QUERY_MAX`` characters (Discord allows
100 in a custom id). Each press defers at once and edits the private message (paging) or posts
a public copy of the page in the channel (share).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord

from adapters.discord.render import no_mentions, search_message
from bridge.chat import ChatService
from bridge.chat.service import SearchPage
from bridge.errors import ChatUsageError

log = logging.getLogger(__name__)

CUSTOM_ID_MAX = 100
# "pb:p:" + up to three digits of page + ":" leaves 91 characters; 90 keeps a margin.
SEARCH_QUERY_MAX = 90
MAX_PAGE = 999


def results_reply(page: SearchPage) -> tuple[str, list[discord.Embed], discord.ui.View]:
    """What a search answers with: the header, one embed per paper, and the buttons."""
    message = search_message(page)
    return message.content, list(message.embeds), results_view(page)


def results_view(page: SearchPage) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    if len(page.query) > SEARCH_QUERY_MAX:
        return view  # cannot happen through /papers search, which caps the query
    top = page.period is not None
    view.add_item(
        PageButton(page.query, page.page - 1, label="◀ Previous", disabled=page.page <= 1, top=top)
    )
    view.add_item(
        PageButton(
            page.query,
            min(page.page + 1, MAX_PAGE),
            label="Next ▶",
            disabled=not page.has_more or page.page >= MAX_PAGE,
            top=top,
        )
    )
    if page.results.items:
        view.add_item(ShareButton(page.query, page.page, top=top))
    return view


def _chat(interaction: discord.Interaction) -> ChatService:
    chat = getattr(interaction.client, "chat", None)
    if not isinstance(chat, ChatService):
        raise RuntimeError("the Discord client has no chat service")
    return chat


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"pb:(?P<kind>t?p):(?P<page>\d{1,3}):(?P<query>.+)",
):
    def __init__(
        self,
        query: str,
        page: int,
        *,
        label: str = "",
        disabled: bool = False,
        top: bool = False,
    ) -> None:
        self.query = query
        self.page = max(1, page)
        self.top = top
        kind = "tp" if top else "p"
        super().__init__(
            discord.ui.Button(
                label=label or f"Page {self.page}",
                style=discord.ButtonStyle.secondary,
                # Disabled buttons still need distinct ids: the page may be 0 there.
                custom_id=f"pb:{kind}:{max(0, page)}:{query}",
                disabled=disabled,
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> PageButton:
        return cls(
            match["query"],
            int(match["page"]),
            label=getattr(item, "label", "") or "",
            top=match["kind"] == "tp",
        )

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()  # the message is edited in place
        try:
            page = await _chat(interaction).reopen(self.query, self.page, top=self.top)
        except ChatUsageError as exc:
            await interaction.followup.send(
                str(exc), ephemeral=True, allowed_mentions=no_mentions()
            )
            return
        content, embeds, view = results_reply(page)
        await interaction.edit_original_response(
            content=content, embeds=embeds, view=view, allowed_mentions=no_mentions()
        )


class ShareButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"pb:(?P<kind>t?s):(?P<page>\d{1,3}):(?P<query>.+)",
):
    def __init__(self, query: str, page: int, *, top: bool = False) -> None:
        self.query = query
        self.page = max(1, page)
        self.top = top
        super().__init__(
            discord.ui.Button(
                label="Share in channel",
                style=discord.ButtonStyle.primary,
                custom_id=f"pb:{'ts' if top else 's'}:{self.page}:{query}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> ShareButton:
        return cls(match["query"], int(match["page"]), top=match["kind"] == "ts")

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)  # a new, public message
        try:
            page = await _chat(interaction).reopen(self.query, self.page, top=self.top)
        except ChatUsageError as exc:
            await interaction.followup.send(
                str(exc), ephemeral=True, allowed_mentions=no_mentions()
            )
            return
        message = search_message(page)
        # The mention names who shared; allowed_mentions keeps it from pinging.
        content = f"{interaction.user.mention} shared: {message.content}"
        await interaction.followup.send(
            content, embeds=list(message.embeds), allowed_mentions=no_mentions()
        )


DYNAMIC_ITEMS = (PageButton, ShareButton)
