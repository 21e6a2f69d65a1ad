"""The lock files are the install: they pin every dependency pyproject.toml declares, the
serving set agrees with the tested one, and this test run uses exactly the test lock."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"


def pins(lock: Path) -> dict[str, str]:
    """name -> version of every pin whose environment marker holds on this machine."""
    found = {}
    text = re.sub(r"\\\n\s*", " ", lock.read_text(encoding="utf-8"))
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(re.sub(r"\s--hash=\S+", "", line))
        if requirement.marker is None or requirement.marker.evaluate():
            [spec] = requirement.specifier
            assert spec.operator == "==", line
            assert "--hash=sha256:" in line, f"{requirement.name} is pinned without a hash"
            found[canonicalize_name(requirement.name)] = spec.version
    return found


def declared(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(text) for text in listed]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    environment = default_environment()
    for lock, requirements in [
        ("serve.txt", declared()),
        ("test.txt", declared() + declared("test")),
    ]:
        pinned = pins(LOCKS / lock)
        for requirement in requirements:
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{requirement.name} is missing from requirements/{lock}"
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"requirements/{lock} pins {name}=={pinned[name]}, outside {requirement}"
            )


def test_the_serving_set_is_the_tested_one() -> None:
    serve, test = pins(LOCKS / "serve.txt"), pins(LOCKS / "test.txt")
    assert {name: test.get(name) for name in serve} == serve


def test_this_run_uses_the_test_lock() -> None:
    # What passes here is what the lock installs: nothing newer slipped in beside it.
    for name, version in pins(LOCKS / "test.txt").items():
        assert metadata.version(name) == version, (
            f"{name} {metadata.version(name)} is not the locked {version}"
        )
