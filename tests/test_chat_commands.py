"""The /papers command language shared by Slack and Discord."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.chat import (
    Help,
    ListSubscriptions,
    PostNow,
    Search,
    Subscribe,
    Unsubscribe,
    parse_command,
    parse_time_of_day,
)
from bridge.errors import ChatUsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("  help ", Help()),
        ("list", ListSubscriptions()),
        ("NOW", PostNow()),
        ("generalization", Search("generalization")),
        ('"world model" -survey', Search('"world model" -survey')),
        ("list decoding", Search("list decoding")),  # a command word starting a query
        ("help me", Search("help me")),
        ("search subscribe", Search("subscribe")),
        ("subscribe generalization", Subscribe("generalization")),
        (
            "subscribe generalization OR \u201cworld model\u201d at 7:30 Europe/Berlin",
            Subscribe("generalization OR \u201cworld model\u201d", "07:30", "Europe/Berlin"),
        ),
        ("subscribe RLHF at now +quiet", Subscribe("RLHF", "now", None, True)),
        ("subscribe RLHF +quiet in utc at 7 am", Subscribe("RLHF", "07:00", "UTC", True)),
        (
            "subscribe diffusion in america/new_york",
            Subscribe("diffusion", None, "America/New_York"),
        ),
        ("subscribe diffusion at 6:45pm", Subscribe("diffusion", "18:45")),
        # Words that only look a little like options stay in the query.
        ("subscribe encoder/decoder japan", Subscribe("encoder/decoder japan")),
        ("subscribe look at this", Subscribe("look at this")),
        ("unsubscribe 2", Unsubscribe("2")),
        ("unsubscribe all", Unsubscribe("all")),
        ("unsubscribe world model", Unsubscribe("world model")),
    ],
)
def test_commands_parse(text: str, expected: object) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("subscribe", "Subscribe to what?"),
        ("subscribe at 08:00", "Subscribe to what?"),
        ("subscribe gen at 25:00", "not a time of day"),
        ("subscribe gen at 13pm", "not a time of day"),
        ("subscribe gen Europe/Berln", "not a time zone"),
        ("subscribe title:(a OR", "does not parse"),
        ("unsubscribe", "Unsubscribe from what?"),
        ("search", "Search for what?"),
        ("-survey", "does not parse"),
    ],
)
def test_bad_commands_say_what_to_fix(text: str, says: str) -> None:
    with pytest.raises(ChatUsageError, match=says):
        parse_command(text)


def test_a_query_error_points_at_the_problem() -> None:
    with pytest.raises(ChatUsageError) as caught:
        parse_command("title:(sampling OR")
    assert "^" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "hhmm"),
    [("8", "08:00"), ("08:05", "08:05"), ("12am", "00:00"), ("12pm", "12:00"), ("now", "now")],
)
def test_times_of_day(text: str, hhmm: str) -> None:
    assert parse_time_of_day(text) == hhmm


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_is_a_command_or_a_usage_error(text: str) -> None:
    try:
        command = parse_command(text)
    except ChatUsageError as exc:
        assert str(exc)
    else:
        assert command is not None


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["generalization", '"world model"', "RL OR RLHF", "cat:cs.LG gan"]),
    st.sampled_from([None, "7:30", "19:00", "now"]),
    st.sampled_from([None, "Europe/Berlin", "UTC", "Asia/Tokyo"]),
    st.booleans(),
)
def test_subscribe_options_come_back_whatever_their_order(
    query: str, time: str | None, zone: str | None, quiet: bool
) -> None:
    options = []
    if time:
        options.append(f"at {time}")
    if zone:
        options.append(zone)
    if quiet:
        options.append("+quiet")
    for ordering in (options, list(reversed(options))):
        command = parse_command(" ".join(["subscribe", query, *ordering]))
        assert isinstance(command, Subscribe)
        assert command.query == query
        assert command.time_zone == zone
        assert command.all_quiet == quiet
        assert command.local_time == (parse_time_of_day(time) if time else None)
