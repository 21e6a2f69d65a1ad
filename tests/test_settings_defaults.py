"""`paperbridge search` with no settings file and no setting from the environment uses the
built-in defaults without pydantic (bridge/settings_defaults.py); anything that could change
a setting takes bridge.config's checks, with the same messages as before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge import settings_defaults
from bridge.cli import main
from bridge.config import ENV_OVERRIDES, Settings
from bridge.settings_defaults import BuiltInSettings, built_in_settings


def test_the_defaults_are_bridge_configs() -> None:
    defaults = BuiltInSettings()
    assert defaults.store.database_url == Settings().store.database_url
    assert defaults.log.level == Settings().log.level


def test_every_variable_that_sets_a_setting_is_noticed() -> None:
    assert settings_defaults.SETTING_VARIABLES == set(ENV_OVERRIDES)
    for name in ENV_OVERRIDES:
        assert built_in_settings(None, {name: "x"}) is None


def test_the_defaults_only_without_a_file_or_a_setting_variable() -> None:
    unrelated = {"HOME": "/root", "HF_HOME": "/cache/hf", "PAPERBRIDGE_CONFIG": ""}
    assert built_in_settings(None, unrelated) == BuiltInSettings()
    # bridge.config ignores an empty variable too.
    assert built_in_settings(None, {"PAPERBRIDGE_DATABASE_URL": ""}) == BuiltInSettings()
    assert built_in_settings(Path("paperbridge.toml"), {}) is None


@pytest.fixture
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name in settings_defaults.SETTING_VARIABLES or name == "PAPERBRIDGE_CONFIG":
            monkeypatch.delenv(name)
    return tmp_path


def test_a_wrong_setting_from_the_environment_still_stops_a_search(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAPERBRIDGE_LOG_LEVEL", "LOUD")
    assert main(["search", "model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("paperbridge: config: log.level:")
    assert "(set by PAPERBRIDGE_LOG_LEVEL)" in err


def test_a_wrong_settings_file_still_stops_a_search(
    bare_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bare_env / "bad.toml").write_text('[store]\ndatabase_url = "mysql://x/y"\n')
    assert main(["--config", "bad.toml", "search", "model"]) == 2
    assert capsys.readouterr().err.startswith("paperbridge: config: store.database_url:")
    assert main(["search", "model", "--config", "missing.toml"]) == 2
    assert "no such file: missing.toml" in capsys.readouterr().err


def test_the_defaults_and_the_checked_settings_search_alike(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = Path(__file__).parent / "fixtures" / "hf" / "daily_papers_api_limit30_2026-06-13.json"
    assert main(["import", str(fixture)]) == 0
    capsys.readouterr()
    assert main(["search", "model", "--json"]) == 0
    built_in = capsys.readouterr()
    # The same default store, named by a settings file: the usual checked settings.
    (bare_env / "same.toml").write_text('[store]\ndatabase_url = "sqlite:///data/paperbridge.db"\n')
    assert main(["search", "model", "--json", "--config", "same.toml"]) == 0
    assert capsys.readouterr() == built_in
    assert '"total": ' in built_in.out
