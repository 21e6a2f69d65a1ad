"""The Dockerfile, checked without a container engine (there is none on the test machine):
the files it copies are enough to install paperbridge the way it does (a plain, non-editable
``pip install .``), the installed command it runs serves with the environment it sets, and
its HEALTHCHECK command passes while the server is up and fails once it is gone.

What only an engine can check (the slim base, the non-root user, the volume) is not checked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_upstream import FakeUpstream, unused_port

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            name, _, arguments = line.strip().partition(" ")
            found.append((name.upper(), arguments.strip()))
    return found


def only(name: str) -> str:
    [arguments] = [args for instruction, args in instructions() if instruction == name]
    return arguments


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def test_the_image_installs_serves_and_passes_its_healthcheck(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    # The build context, as the COPY instructions lay it out under WORKDIR.
    app = tmp_path / "app"
    app.mkdir()
    for instruction, arguments in instructions():
        if instruction != "COPY":
            continue
        *sources, destination = shlex.split(arguments)
        for source in sources:
            target = (
                app / destination / Path(source).name
                if destination.endswith("/")
                else app / destination
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / source, target)
    assert only("WORKDIR") == "/app"

    # The first RUN installs the lock, hashes checked; the second paperbridge itself, with
    # no resolving of its own. Here the dependencies come from this environment, which the
    # test lock installed (tests/test_lock.py holds the two locks to the same versions).
    [lock_install, app_install] = [args for name, args in instructions() if name == "RUN"]
    assert "--require-hashes --no-deps -r requirements/serve.txt" in lock_install
    assert (app / "requirements" / "serve.txt").read_text() == (
        ROOT / "requirements" / "serve.txt"
    ).read_text()
    assert "pip install --no-deps --no-build-isolation ." in app_install
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, app],
        check=True,
        timeout=300,
    )

    # ENV, with the data volume moved into the test's directory and a free port.
    env = dict(os.environ)
    for name, value in re.findall(r"(\w+)=(\S+)", only("ENV")):
        env[name] = value
    assert env["PAPERBRIDGE_PORT"] == "8080" and "EXPOSE" in dict(instructions())
    data = tmp_path / "data"
    data.mkdir()
    assert env["PAPERBRIDGE_DATABASE_URL"].startswith("sqlite:////data/")
    env["PAPERBRIDGE_DATABASE_URL"] = env["PAPERBRIDGE_DATABASE_URL"].replace("/data/", f"{data}/")
    port = unused_port()
    env["PAPERBRIDGE_PORT"] = str(port)
    env["PAPERBRIDGE_HF_BASE_URL"] = upstream.base_url  # no real network here
    # HF answers (with an empty day): health is ok only after a real successful poll.
    upstream.add("/api/daily_papers", "[]", content_type="application/json")
    # The installed copy alone: -S keeps Python from reading this environment's .pth files,
    # among them the editable install of this checkout; its packages come in by PYTHONPATH.
    env["PYTHONPATH"] = os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])
    python = [sys.executable, "-S"]

    where = subprocess.run(
        [*python, "-c", "import bridge, adapters; print(bridge.__file__, adapters.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(path.startswith(str(site)) for path in where.stdout.split()), where.stdout

    # HEALTHCHECK CMD: the installed command, which finds the port chosen above through the
    # same settings `serve` reads, not a port written into the Dockerfile.
    health_script, *health_arguments = json.loads(only("HEALTHCHECK").split(" CMD ", 1)[1])
    assert health_script == "paperbridge"
    health = [*python, str(site / "bin" / health_script), *health_arguments]

    # CMD: the installed console script.
    script, *arguments = (arg.strip(' "') for arg in only("CMD").strip("[]").split(","))
    assert (script, arguments) == ("paperbridge", ["serve"])
    command = [*python, str(site / "bin" / script), *arguments]
    proc = subprocess.Popen(
        command, cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        healthy = False
        while time.monotonic() < deadline and not healthy:
            healthy = subprocess.run(health, env=env, capture_output=True).returncode == 0
            if not healthy:
                assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
                time.sleep(0.2)
        assert healthy, "the HEALTHCHECK command never passed"
        assert (data / "paperbridge.db").exists()  # the store is on the volume
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0].decode()
    assert "Traceback" not in output, output[-3000:]
    assert subprocess.run(health, env=env, capture_output=True).returncode != 0
