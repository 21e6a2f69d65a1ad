"""Slack digests declared in the settings (``slack:CHANNEL_ID``), as Discord ones can be:
accepted by the settings check, posted by the Slack output through the ledger, exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

import adapters.slack
from adapters.slack import slack_output, slack_problems
from bridge.chat import ChatService
from bridge.config import Settings, read_settings
from bridge.ledger import build_ledger, sync_configured
from bridge.models import Paper
from bridge.outputs import OutputContext, running_outputs
from bridge.store import open_store
from tests.fake_slack import DEFAULT_TOKEN, FakeSlack

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def _settings(destination: str, **extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "digests": [{"name": "lab", "query": "generalization", "destination": destination}],
            **extra,
        }
    )


@pytest.mark.parametrize("destination", ["slack:C0456", "slack:T0123:C0456", "slack:G0PRIV"])
def test_a_slack_channel_is_a_digest_destination(tmp_path: Path, destination: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[digests]]\nname = "lab"\nquery = "gan"\ndestination = "{destination}"\n')
    settings, problems = read_settings(config, {})
    assert problems == [] and settings.digests[0].destination == destination


@pytest.mark.parametrize("destination", ["slack:#general", "slack:", "slack:c0456"])
def test_a_slack_destination_that_names_no_channel_is_refused(
    tmp_path: Path, destination: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[digests]]\nname = "lab"\nquery = "gan"\ndestination = "{destination}"\n')
    _, problems = read_settings(config, {})
    [problem] = problems
    assert problem.key == "digests.0.destination" and "'slack:CHANNEL_ID'" in str(problem)


def test_with_oauth_a_declared_channel_names_its_workspace() -> None:
    oauth = {
        "slack": {"client_id": "1.2"},
        "slack_client_secret": "s",
        "slack_signing_secret": "x",
        "slack_installation_key": Fernet.generate_key().decode(),
    }
    [bare] = slack_problems(_settings("slack:C0456", **oauth), False)
    assert bare.key == "digests.0.destination" and "slack:TEAM:C0456" in str(bare)
    assert slack_problems(_settings("slack:T0123:C0456", **oauth), False) == []
    # One workspace (SLACK_BOT_TOKEN): the bare channel is in it.
    assert slack_problems(_settings("slack:C0456", slack_bot_token=DEFAULT_TOKEN), False) == []


async def test_a_declared_slack_digest_is_posted_once(slack: FakeSlack, sqlite_url: str) -> None:
    settings = _settings(
        "slack:C0DECL",
        store={"database_url": sqlite_url},
        slack={"api_base_url": slack.api_url, "channel_interval_seconds": 0},
        slack_bot_token=DEFAULT_TOKEN,
    )
    store = open_store(sqlite_url)
    try:
        ledger = build_ledger(store, settings)
        sync_configured(ledger, settings)  # the digest exists before the papers arrive
        store.add_papers(
            [Paper(f"2606.{n:05d}", f"Generalization study {n}", upvotes=n) for n in (1, 2)]
            + [Paper("2606.00003", "Unrelated diffusion work")]
        )
        context = OutputContext(settings, store, ledger, ChatService(store, ledger, settings))
        async with running_outputs(context, listen=False, factories=[slack_output]):
            report = await ledger.sweep(force=True)
            assert list(report.digests.values()) == ["sent"]
            assert sorted(slack.papers_posted("C0DECL")) == ["2606.00001", "2606.00002"]
            again = await ledger.sweep(force=True)
        assert "sent" not in again.digests.values()
        assert sorted(slack.papers_posted("C0DECL")) == ["2606.00001", "2606.00002"]
    finally:
        store.close()


def test_the_readme_names_every_url_of_the_manifest() -> None:
    manifest_text = (Path(adapters.slack.__file__).parent / "manifest.yml").read_text()
    manifest = yaml.safe_load(manifest_text)
    urls = [
        manifest["features"]["slash_commands"][0]["url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["settings"]["interactivity"]["request_url"],
        *manifest["oauth_config"]["redirect_urls"],
    ]
    assert manifest_text.count("papers.example.org/") == len(urls) == 4
    readme = (ROOT / "README.md").read_text()
    steps = readme[readme.index("### Setting it up (one workspace)") :]
    steps = steps[: steps.index("### Several workspaces")]
    assert "all four URLs" in steps and "both URLs" not in readme
    for field in ("`url`", "`request_url`", "`redirect_urls`"):
        assert field in steps
    for path in {url.split("papers.example.org", 1)[1] for url in urls}:
        assert f"<public_url>{path}" in steps
