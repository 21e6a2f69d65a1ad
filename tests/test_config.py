"""Settings: defaults serve, every setting is documented, wrong ones name their key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from bridge.config import SECRET_KEYS, Settings, config_path, load_settings, redacted
from bridge.errors import ConfigError

ROOT = Path(__file__).parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_need_no_file() -> None:
    settings = load_settings(None, {})
    assert settings.store.database_url == "sqlite:///data/paperbridge.db"
    assert settings.sources.hf.enabled and not settings.sources.arxiv.enabled
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)


def test_example_config_is_valid_and_equals_the_defaults() -> None:
    example = load_settings(ROOT / "config.example.toml", {})
    assert example == Settings()


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def _documented(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in data.items():
        if isinstance(value, dict):
            keys |= _documented(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_example_documents_every_setting() -> None:
    text = (ROOT / "config.example.toml").read_text()
    documented = _documented(tomllib.loads(text))
    # A setting whose default is "off" may be shown commented out ("# poll_every_minutes = 60").
    commented = {
        key
        for key in _keys(Settings)
        if f"# {key.split('.')[-1]} = " in text or f"# [[{key}]]" in text
    }
    missing = _keys(Settings) - documented - commented - SECRET_KEYS - {"subscriptions"}
    assert not missing, f"config.example.toml does not document {sorted(missing)}"
    for env_name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_BOT_TOKEN"):
        assert env_name in text
    assert "[[subscriptions]]" in text


@pytest.mark.parametrize(
    ("toml", "key", "words"),
    [
        ("[sources.hf]\npoll_every_minutes = 0\n", "sources.hf.poll_every_minutes", "greater"),
        ("[sources.hf]\npoll_evry_minutes = 5\n", "sources.hf.poll_evry_minutes", "unknown"),
        ("[store]\ndatabase_url = 'mysql://x'\n", "store.database_url", "sqlite"),
        ("time_zone = 'Mars/Olympus'\n", "time_zone", "unknown time zone"),
        ("[sources.arxiv]\ncategories = []\n", "sources.arxiv.categories", "at least one"),
        ("[sources.arxiv]\nmin_interval_seconds = 1\n", "sources.arxiv.min_interval_seconds", "3"),
        ("[server]\nport = 'eighty'\n", "server.port", "integer"),
        (
            "[[subscriptions]]\nname='a b'\nquery='x'\n",
            "subscriptions.0.name",
            "letters",
        ),
    ],
)
def test_wrong_setting_names_key_and_problem(
    tmp_path: Path, toml: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, toml), {})
    assert caught.value.key == key
    assert words in str(caught.value)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[store\n"), {})
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml", {})


def test_environment_overrides_and_secrets_never_shown(tmp_path: Path) -> None:
    env = {
        "PAPERBRIDGE_DATABASE_URL": "postgresql://u:pw@db/pb",
        "PAPERBRIDGE_PORT": "9000",
        "SLACK_BOT_TOKEN": "xoxb-very-secret",
    }
    settings = load_settings(write(tmp_path, "[server]\nport = 8081\n"), env)
    assert settings.server.port == 9000
    assert settings.store.database_url == "postgresql://u:pw@db/pb"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-very-secret"
    assert "xoxb-very-secret" not in repr(settings) + str(settings) + str(redacted(settings))
    assert redacted(settings)["slack_bot_token"] == "<redacted>"


def test_config_path_precedence(tmp_path: Path) -> None:
    assert config_path(None, {}) is None
    assert config_path(None, {"PAPERBRIDGE_CONFIG": "/env.toml"}) == Path("/env.toml")
    assert config_path("/flag.toml", {"PAPERBRIDGE_CONFIG": "/env.toml"}) == Path("/flag.toml")


WEBHOOK = "https://discord.com/api/webhooks/123456789012345678/" + "a1B2_c3-" * 8


def test_discord_digest_destinations(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[digests]]\nname = "bot"\nquery = "gan"\ndestination = "discord:123456789012345678"\n'
        '[[digests]]\nname = "hook"\nquery = "gan"\ndestination = "discord-webhook:LAB_HOOK"\n',
    )
    environ = {"LAB_HOOK": WEBHOOK, "DISCORD_BOT_TOKEN": "bot-token"}
    settings = load_settings(path, environ, delivering=True)
    assert [d.destination for d in settings.digests] == [
        "discord:123456789012345678",
        "discord-webhook:LAB_HOOK",
    ]
    # The webhook URL stays in the environment: the settings never hold it.
    assert WEBHOOK not in repr(settings) and WEBHOOK not in str(redacted(settings))


@pytest.mark.parametrize(
    ("destination", "environ", "message"),
    [
        ("discord:general", {}, "discord:CHANNEL_ID"),
        (f"discord-webhook:{WEBHOOK}", {}, "never the URL itself"),
        ("discord-webhook:LAB_HOOK", {}, "LAB_HOOK is not set"),
        ("discord-webhook:LAB_HOOK", {"LAB_HOOK": "https://example.org/x"}, "not hold a Discord"),
    ],
)
def test_bad_discord_destinations_name_the_key(
    tmp_path: Path, destination: str, environ: dict[str, str], message: str
) -> None:
    path = write(
        tmp_path, f'[[digests]]\nname = "x"\nquery = "gan"\ndestination = "{destination}"\n'
    )
    with pytest.raises(ConfigError, match="digests.0.destination") as caught:
        load_settings(path, environ, delivering=True)
    assert message in str(caught.value)
    assert WEBHOOK not in str(caught.value)


def test_what_posting_needs_is_required_only_where_digests_are_posted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[digests]]\nname = "bot"\nquery = "gan"\ndestination = "discord:123456789012345678"\n'
        '[[digests]]\nname = "hook"\nquery = "gan"\ndestination = "discord-webhook:LAB_HOOK"\n',
    )
    # search and status work in a shell without the secrets...
    assert len(load_settings(path, {}).digests) == 2
    # ...serve, deliver and check-config say what is missing.
    with pytest.raises(ConfigError, match="LAB_HOOK is not set"):
        load_settings(path, {}, delivering=True)
    with pytest.raises(ConfigError, match="set DISCORD_BOT_TOKEN") as caught:
        load_settings(path, {"LAB_HOOK": WEBHOOK}, delivering=True)
    assert caught.value.key == "digests.0.destination"


def test_queries_in_the_settings_are_checked_when_they_are_loaded(tmp_path: Path) -> None:
    for toml, key in [
        ('[[digests]]\nname = "x"\nquery = "title:(a OR"\n', "digests.0.query"),
        ('[[subscriptions]]\nname = "x"\nquery = "-survey"\n', "subscriptions.0.query"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_settings(write(tmp_path, toml), {})
        assert caught.value.key == key
        assert caught.value.problem.startswith("bad query: ")
        assert "^" in caught.value.problem


def test_secrets_are_refused_in_the_settings_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set DISCORD_BOT_TOKEN instead") as caught:
        load_settings(write(tmp_path, 'discord_bot_token = "abc.def"\n'), {})
    assert "abc.def" not in str(caught.value)


def test_the_database_password_is_never_shown() -> None:
    environ = {"PAPERBRIDGE_DATABASE_URL": "postgresql://pb:Hunter2@db.example:5432/pb"}
    shown = redacted(load_settings(None, environ))
    assert "Hunter2" not in str(shown)
    assert shown["store"]["database_url"] == "postgresql://pb:***@db.example:5432/pb"


def test_discord_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="discord.papers_per_message"):
        load_settings(write(tmp_path, "[discord]\npapers_per_message = 11\n"), {})
    with pytest.raises(ConfigError, match="discord.digest_layout"):
        load_settings(write(tmp_path, '[discord]\ndigest_layout = "forum"\n'), {})
    settings = load_settings(None, {"PAPERBRIDGE_DISCORD_API_BASE_URL": "http://127.0.0.1:9/api/"})
    assert settings.discord.api_base_url == "http://127.0.0.1:9/api"


def test_check_config_shows_the_rhythm_in_effect(tmp_path: Path) -> None:
    shown = redacted(load_settings(None, {}))["sources"]
    assert (
        shown["hf"]["poll_cron"] == "0 */2 * * mon-fri" and "poll_every_minutes" not in shown["hf"]
    )
    interval = redacted(
        load_settings(write(tmp_path, "[sources.hf]\npoll_every_minutes = 30\n"), {})
    )
    assert interval["sources"]["hf"]["poll_every_minutes"] == 30
    assert "poll_cron" not in interval["sources"]["hf"]


def test_an_installed_outputs_section_reads_by_its_name_alone(tmp_path: Path) -> None:
    # [email] is [outputs.email]: the section of the installed email output, by its name.
    short = load_settings(write(tmp_path, '[email]\nhost = "smtp.lab.example"\n'))
    assert short.outputs == {"email": {"host": "smtp.lab.example"}}
    long = load_settings(write(tmp_path, '[outputs.email]\nhost = "smtp.lab.example"\n'))
    assert long.outputs == short.outputs
    # Both at once is ambiguous; a name no installed output has is still an unknown setting.
    with pytest.raises(ConfigError) as both:
        load_settings(write(tmp_path, "[email]\nport = 25\n[outputs.email]\nport = 587\n"))
    assert "given twice: as [email] and as [outputs.email]" in str(both.value)
    with pytest.raises(ConfigError) as unknown:
        load_settings(write(tmp_path, '[pigeon]\nloft = "roof"\n'))
    assert "pigeon" in str(unknown.value) and "unknown setting" in str(unknown.value)
