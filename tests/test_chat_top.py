"""`/papers top`: the most upvoted papers of a listing day, week or month, in Slack (through
the fake Slack and a real server) and Discord (the Cog with fake interactions), with the
search's cards and paging; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import pytest

from adapters.discord.cog import PapersCog
from adapters.discord.views import PageButton, ShareButton, results_view
from adapters.slack.blocks import MORE_ACTION, SHARE_ACTION, page_value, read_page_value
from bridge.chat import ChatService, Search, Top, parse_command
from bridge.chat.service import resolve_period
from bridge.errors import ChatUsageError
from bridge.models import Paper
from bridge.store import Store
from tests.fake_slack import FakeSlack
from tests.slack_support import SlackServer, action_body, command_body, responses
from tests.test_discord_commands import (  # noqa: F401 (fixtures)
    MEMBER,
    FakeInteraction,
    chat,
    cog,
    no_pings,
)
from tests.test_slack_app import post, slack  # noqa: F401 (fixture)

# Thursday 2026-06-11 is the newest listing day; the week runs Monday 8th to Sunday 14th.
LATEST = date(2026, 6, 11)


def listed(store: Store) -> None:
    papers = [
        # Twelve papers on the newest day, upvoted 1..12, one with markup in its title.
        *(
            Paper(
                f"2606.{n:05d}",
                "<!channel> *Bold* @everyone trick" if n == 7 else f"Day paper {n}",
                abstract="About <b>models</b> & more.",
                listed_on=LATEST,
                upvotes=n,
                sources=("hf",),
            )
            for n in range(1, 13)
        ),
        # Earlier that week, the most upvoted of the week; and one in May.
        Paper("2606.00100", "Monday paper", listed_on=date(2026, 6, 8), upvotes=99),
        Paper("2605.00001", "May paper", listed_on=date(2026, 5, 29), upvotes=500),
    ]
    store.add_papers(papers, announce=False)


# -- the command and the periods -------------------------------------------------------------


def test_top_parses_its_periods_and_explains_a_bad_one() -> None:
    assert parse_command("top") == Top("today")
    assert parse_command("TOP Week") == Top("week")
    assert parse_command("top month") == Top("month")
    assert parse_command("top 2024-8-1") == Top("2024-08-01")
    with pytest.raises(ChatUsageError, match="not a date in the calendar"):
        parse_command("top 2024-02-30")
    with pytest.raises(ChatUsageError, match="not a period.*search top"):
        parse_command("top k sampling")
    # A search for the word is still there.
    assert parse_command("search top k sampling") == Search("top k sampling")


def test_periods_are_the_latest_listing_day_its_week_and_its_month() -> None:
    today = resolve_period("today", LATEST)
    assert (today.first, today.last, today.label) == (LATEST, LATEST, "2026-06-11")
    week = resolve_period("week", LATEST)
    assert (week.first, week.last) == (date(2026, 6, 8), date(2026, 6, 14))
    assert week.label == "the week of 2026-06-08"
    month = resolve_period("month", date(2024, 2, 10))
    assert (month.first, month.last, month.label) == (
        date(2024, 2, 1),
        date(2024, 2, 29),
        "February 2024",
    )
    assert resolve_period("today", None).first is None


async def test_the_service_pages_through_a_period_most_upvoted_first(
    chat: ChatService,  # noqa: F811
) -> None:
    listed(chat.store)
    first = await chat.top("today")
    assert [r.stored.paper.upvotes for r in first.results.items] == [12, 11, 10, 9, 8]
    assert first.results.total == 12 and first.has_more
    third = await chat.top("today", 3)
    assert [r.stored.paper.upvotes for r in third.results.items] == [2, 1]
    assert not third.has_more
    week = await chat.top("week")
    assert week.results.items[0].stored.paper.title == "Monday paper"
    assert week.results.total == 13
    month = await chat.top("month")  # June only: the May paper is not in it
    assert month.results.total == 13
    empty = await chat.top("2026-06-13")
    assert empty.results.items == [] and empty.results.total == 0
    with pytest.raises(ChatUsageError):
        await chat.top("someday")


# -- Discord -----------------------------------------------------------------------------------


async def test_discord_top_shows_cards_pages_and_shares(cog: PapersCog, chat: ChatService) -> None:  # noqa: F811
    listed(chat.store)
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await cog.top.callback(cog, interaction, "today")  # type: ignore[arg-type]
    defer, answer = interaction.replies
    assert defer.how == "defer" and defer.ephemeral
    assert answer.content is not None
    assert answer.content.startswith("Most upvoted papers of 2026-06-11: 12 listed (showing 1–5)")
    assert [e.title for e in answer.embeds][:2] == ["Day paper 12", "Day paper 11"]
    no_pings(answer)
    assert answer.view is not None
    ids = [item.custom_id for item in answer.view.children]  # type: ignore[attr-defined]
    assert ids == ["pb:tp:0:today", "pb:tp:2:today", "pb:ts:1:today"]

    # The Next button, as a press after a restart rebuilds it from its custom id.
    button = answer.view.children[1]
    assert isinstance(button, PageButton)
    match = PageButton.__discord_ui_compiled_template__.fullmatch(button.item.custom_id or "")
    assert match is not None
    pressed = await PageButton.from_custom_id(interaction, button.item, match)  # type: ignore[arg-type]
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await pressed.callback(interaction)  # type: ignore[arg-type]
    _defer, edit = interaction.replies
    assert edit.how == "edit" and edit.content is not None and "(showing 6–10)" in edit.content
    # Paper text is escaped in the cards: no mention, no markup of its own.
    card = next(e for e in edit.embeds if "trick" in (e.title or ""))
    assert "\\*Bold\\*" in (card.title or "")
    no_pings(edit)

    share = ShareButton("week", 1, top=True)
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await share.callback(interaction)  # type: ignore[arg-type]
    _defer, posted = interaction.replies
    assert posted.how == "followup" and not posted.ephemeral
    assert posted.content is not None
    assert posted.content.startswith("<@42> shared: Most upvoted papers of the week of 2026-06-08")
    assert posted.embeds[0].title == "Monday paper"


async def test_discord_top_of_an_empty_day_and_a_bad_date(
    cog: PapersCog,  # noqa: F811
    chat: ChatService,  # noqa: F811
) -> None:
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await cog.top.callback(cog, interaction, "today")  # type: ignore[arg-type]
    _defer, answer = interaction.replies
    assert answer.content is not None and answer.content.startswith("No papers are listed yet")
    assert answer.embeds == []

    listed(chat.store)
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await cog.top.callback(cog, interaction, "2026-06-13")  # type: ignore[arg-type]
    _defer, answer = interaction.replies
    assert answer.content is not None
    assert answer.content.startswith("No papers were listed for 2026-06-13")
    ids = [item.custom_id for item in answer.view.children]  # type: ignore[union-attr]
    assert all(not item.custom_id.startswith("pb:ts") for item in answer.view.children)  # type: ignore[union-attr]
    assert ids

    interaction = FakeInteraction(chat, permissions=MEMBER)
    await cog.top.callback(cog, interaction, "2026-13-01")  # type: ignore[arg-type]
    [reply] = interaction.replies
    assert reply.how == "send" and reply.ephemeral
    assert reply.content is not None and "not a date in the calendar" in reply.content


def test_discord_top_buttons_fit_in_a_custom_id() -> None:
    from bridge.chat.service import SearchPage, resolve_period
    from bridge.search import SearchResults

    page = SearchPage(
        "2026-06-11", 999, 5, SearchResults([], 10_000), resolve_period("2026-06-11", None)
    )
    for item in results_view(page).children:
        assert len(item.custom_id or "") <= 100  # type: ignore[attr-defined]


# -- Slack ---------------------------------------------------------------------------------------


async def test_slack_top_pages_and_shares(slack: FakeSlack, database_url: str) -> None:  # noqa: F811
    async with SlackServer(slack, database_url) as server:
        listed(server.store)
        ack = await post(server, command_body(slack, "top", name="t1"))
        assert ack.status_code == 200
        [answer] = await responses(slack, "t1")
        assert answer["response_type"] == "ephemeral"
        blocks = answer["blocks"]
        assert blocks[0]["text"]["text"] == (
            "Most upvoted papers of 2026-06-11: 12 listed (showing 1–5)"
        )
        assert "Day paper 12" in blocks[1]["text"]["text"]
        buttons = blocks[-1]["elements"]
        assert [b["text"]["text"] for b in buttons] == ["More", "Share in channel"]
        assert read_page_value(buttons[0]["value"]) == ("today", 2, True)

        more = await post(server, action_body(slack, MORE_ACTION, buttons[0]["value"], name="m"))
        assert more.status_code == 200
        [page2] = await responses(slack, "m")
        assert page2["replace_original"] is True
        assert page2["blocks"][0]["text"]["text"].endswith("(showing 6–10)")
        text = json.dumps(page2)
        # The hostile title is escaped: no channel ping, no markup of its own.
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text

        week = page_value("week", 1, top=True) or ""
        await post(server, action_body(slack, SHARE_ACTION, week, name="sh"))
        visible, _cleanup = await responses(slack, "sh", 2)
        assert visible["response_type"] == "in_channel"
        assert visible["blocks"][0]["text"]["text"].startswith(
            "Most upvoted papers of the week of 2026-06-08"
        )

        # A search for the word "top" is still a search, and its buttons stay a search's.
        assert read_page_value(page_value("top week", 2) or "") == ("top week", 2, False)


async def test_slack_top_of_an_empty_day_and_a_bad_date(
    slack: FakeSlack,  # noqa: F811
    database_url: str,
) -> None:
    async with SlackServer(slack, database_url) as server:
        listed(server.store)
        await post(server, command_body(slack, "top 2026-06-13", name="e"))
        [empty] = await responses(slack, "e")
        assert empty["blocks"][0]["text"]["text"].startswith("No papers were listed for 2026-06-13")
        assert all(block["type"] != "actions" for block in empty["blocks"])

        bad = await post(server, command_body(slack, "top 2026-02-30 <!here>", name="b"))
        assert bad.status_code == 200
        body = bad.json()
        assert body["response_type"] == "ephemeral"
        assert "is not a period" in body["text"] and "<!here>" not in body["text"]
