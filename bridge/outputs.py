"""The seam every output plugs into (Slack, Discord, the feeds, stdout, a file, a lab's own).

Outputs are found through Python entry points in the ``paperbridge.outputs`` group, read with
``importlib.metadata``; paperbridge's own outputs are registered there in its pyproject.toml
exactly as a third-party package registers its own, and the core never imports one by name
(``bridge/`` never imports ``adapters/``). An entry point names an ``OutputPlugin``:

    # a package's pyproject.toml
    [project.entry-points."paperbridge.outputs"]
    teams = "paperbridge_teams:plugin"

    # paperbridge_teams/__init__.py
    plugin = OutputPlugin(
        kinds=("teams",),            # destination kinds it posts to: "teams:ADDRESS"
        create=teams_output,         # (OutputContext) -> Output | None (None: not configured)
        check=teams_problems,        # (Settings, listen) -> list[ConfigError]; opens nothing
        publishers=None,             # () -> {kind: Publisher}: ones that need no settings
    )

Every field is optional. ``kinds`` is how the settings are checked: a destination
(``[[digests]] destination``, ``[alerts] destination``) whose kind no installed output owns
is a config error naming the kind and the installed outputs, before anything starts; two
outputs owning one kind are one too. An output's own section of the settings file is
``[outputs.NAME]`` (NAME: its entry point's name), kept as a plain table in
``Settings.outputs`` for the output to read and check; secrets come from the environment
(``os.environ``), never from that table.

``publishers`` are the ledger's from the start (``bridge.ledger.build_ledger``): stdout and
file need neither settings nor a connection. ``create`` makes an output that runs inside
``serve`` and ``deliver``; it brings any of: publishers for its destination kinds (the ledger
posts digests through them), HTTP routes and middleware mounted in ``serve``'s web server
(slash commands, OAuth, feeds), fast paths answering from memory in front of it (cached
feeds), and background connections (Discord's gateway, Slack's Socket Mode). ``serve``
starts outputs with ``listen=True``; ``paperbridge deliver`` starts them with
``listen=False``, which opens only what posting needs. An output that is not configured (no
token) returns None from ``create``; one configured wrong is refused before anything starts,
with every problem ``check`` finds (``check-config`` runs the same checks).

    class Output(Protocol):
        name: str
        def publishers(self) -> Mapping[str, Publisher]
        def routes(self) -> list[BaseRoute]
        def middleware(self) -> list[Middleware]      # optional
        def fast_paths(self) -> list[FastPath]        # optional (bridge.web.FrontDoor)
        async def start(self, *, listen: bool) -> None
        async def stop(self) -> None

Every command that builds the delivery ledger reads the installed outputs (for their
``publishers``), ``poll`` included: the module an entry point names should be light, importing
its output's libraries inside ``create`` and ``check`` (as ``adapters/plugins.py`` does).

An entry point that cannot be loaded (its package broken, or it names something that is not
an ``OutputPlugin``) is logged and left out; a destination of a kind only it would own then
gets the config error above, which names the broken output too.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from bridge.chat import ChatService
from bridge.config import OUTPUTS_GROUP, Settings, configured_destinations
from bridge.errors import ConfigError
from bridge.ledger import Ledger
from bridge.publisher import Publisher
from bridge.store import Store

if TYPE_CHECKING:
    from bridge.app import Bridge
    from bridge.health import HealthCheck
    from bridge.web import FastPath

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = OUTPUTS_GROUP


class Output(Protocol):
    name: str

    def publishers(self) -> Mapping[str, Publisher]: ...

    def routes(self) -> list[BaseRoute]: ...

    async def start(self, *, listen: bool) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OutputContext:
    """What an output may use: the settings, the store, the ledger and the chat service;
    in ``serve`` also the running bridge (sources, fetcher) and the health check its pages
    show (None in ``deliver``, which serves no web page)."""

    settings: Settings
    store: Store
    ledger: Ledger
    chat: ChatService
    bridge: Bridge | None = None
    health: HealthCheck | None = None


# Returns None when the output is not configured.
OutputFactory = Callable[[OutputContext], Output | None]
# An output's own settings check: every problem that would stop it from starting, as serve
# starts it (True: answering commands) or as deliver does (False: posting only); nothing
# when it is not configured. It opens no connection (bridge.startup runs it).
OutputCheck = Callable[[Settings, bool], list[ConfigError]]


@dataclass(frozen=True, slots=True)
class OutputPlugin:
    """What an entry point in ``paperbridge.outputs`` names (see the module's docstring)."""

    kinds: tuple[str, ...] = ()
    create: OutputFactory | None = None
    check: OutputCheck | None = None
    publishers: Callable[[], Mapping[str, Publisher]] | None = None


@dataclass(frozen=True, slots=True)
class InstalledOutputs:
    """The outputs installed in this Python environment, by entry point name, and the ones
    that failed to load (name -> why)."""

    plugins: Mapping[str, OutputPlugin]
    broken: Mapping[str, str]

    def owners(self) -> dict[str, list[str]]:
        """Destination kind -> the outputs that say they post to it."""
        owners: dict[str, list[str]] = {}
        for name, plugin in self.plugins.items():
            for kind in plugin.kinds:
                owners.setdefault(kind, []).append(name)
        return owners

    def describe(self) -> str:
        """The installed outputs and their kinds, for an error message."""
        shown = [
            f"{name} ({', '.join(plugin.kinds)})" if plugin.kinds else name
            for name, plugin in self.plugins.items()
        ]
        shown += [f"{name} (failed to load: {why})" for name, why in self.broken.items()]
        return "; ".join(shown) or "none"


@functools.cache
def installed_outputs() -> InstalledOutputs:
    """Every output registered in the ``paperbridge.outputs`` entry point group, sorted by
    name (read once per process: installing a package means starting again)."""
    plugins: dict[str, OutputPlugin] = {}
    broken: dict[str, str] = {}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        if point.name in plugins or point.name in broken:
            # Two distributions registering one name: the first (by sys.path) wins, as in
            # every entry point consumer; said once so the loser is not a mystery.
            log.warning("output %s is registered twice; using %s", point.name, point.value)
            continue
        try:
            loaded = point.load()
        except Exception as exc:  # a third-party package may fail in any way on import
            log.error("output %s (%s) cannot be loaded: %r", point.name, point.value, exc)
            broken[point.name] = f"{type(exc).__name__}: {exc}"
            continue
        if not isinstance(loaded, OutputPlugin):
            why = f"{point.value} is a {type(loaded).__name__}, not a bridge.outputs.OutputPlugin"
            log.error("output %s cannot be used: %s", point.name, why)
            broken[point.name] = why
            continue
        plugins[point.name] = loaded
    return InstalledOutputs(plugins, broken)


def output_factories() -> list[OutputFactory]:
    """The factory of every installed output that runs inside serve and deliver."""
    return [p.create for p in installed_outputs().plugins.values() if p.create is not None]


def output_checks() -> list[OutputCheck]:
    """The settings check of every installed output, and the one that each configured
    destination's kind has an output."""
    checks = [p.check for p in installed_outputs().plugins.values() if p.check is not None]
    return [destination_kind_problems, *checks]


def standing_publishers() -> dict[str, Publisher]:
    """The publishers installed outputs offer without settings (stdout, file)."""
    found: dict[str, Publisher] = {}
    for plugin in installed_outputs().plugins.values():
        if plugin.publishers is not None:
            found.update(plugin.publishers())
    return found


def destination_kind_problems(
    settings: Settings, listen: bool, installed: InstalledOutputs | None = None
) -> list[ConfigError]:
    """A configured destination whose kind no installed output posts to, or several do."""
    installed = installed or installed_outputs()
    owners = installed.owners()
    problems: list[ConfigError] = []
    for key, destination in configured_destinations(settings):
        kind = destination.partition(":")[0]
        found = owners.get(kind, [])
        if not found:
            problems.append(
                ConfigError(
                    key,
                    f"no installed output posts to {kind!r} destinations; installed outputs:"
                    f" {installed.describe()}",
                )
            )
        elif len(found) > 1:
            problems.append(
                ConfigError(
                    key,
                    f"several installed outputs post to {kind!r} destinations"
                    f" ({', '.join(found)}); uninstall all but one",
                )
            )
    return problems


def output_middleware(outputs: list[Output]) -> list[Middleware]:
    """The middleware of the outputs that bring any (``middleware`` is optional)."""
    found: list[Middleware] = []
    for output in outputs:
        middleware = getattr(output, "middleware", None)
        if middleware is not None:
            found += middleware()
    return found


def output_fast_paths(outputs: list[Output]) -> list[FastPath]:
    """The fast paths of the outputs that bring any (``fast_paths`` is optional)."""
    found: list[FastPath] = []
    for output in outputs:
        fast_paths = getattr(output, "fast_paths", None)
        if fast_paths is not None:
            found += fast_paths()
    return found


@contextlib.asynccontextmanager
async def running_outputs(
    context: OutputContext,
    *,
    listen: bool,
    factories: list[OutputFactory] | None = None,
) -> AsyncIterator[list[Output]]:
    """Create and start every configured output, give their publishers to the ledger, and
    stop them all on exit."""
    outputs: list[Output] = []
    async with contextlib.AsyncExitStack() as stack:
        for factory in output_factories() if factories is None else factories:
            output = factory(context)
            if output is None:
                continue
            await output.start(listen=listen)
            stack.push_async_callback(output.stop)
            context.ledger.publishers.update(output.publishers())
            outputs.append(output)
            log.info("output %s started%s", output.name, "" if listen else " (posting only)")
        yield outputs
