"""The `paperbridge` command: parse arguments, load settings, configure logging, run."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge import __version__
from bridge.errors import BridgeError, ConfigError
from bridge.settings_defaults import BuiltInSettings, built_in_settings, config_path

# bridge.config (pydantic and the settings models) and asyncio are imported where they are
# used: `paperbridge search` with the built-in settings needs neither (issue 14: the whole
# process in 200 ms).
if TYPE_CHECKING:
    from bridge.config import Settings

log = logging.getLogger("bridge.cli")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _at_least_one(text: str) -> int:
    # A limit or page of 0 or less has no meaning; refused here, not quietly bent to 1.
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535 (got {value})")
    return value


def _host(text: str) -> str:
    from bridge.config import listen_host

    try:
        return listen_host(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    # The options are accepted before and after the command name; only the top level sets
    # defaults, so `paperbridge --config x poll` is not undone by the command's own parser.
    common = argparse.ArgumentParser(add_help=False)
    default = None if defaults else argparse.SUPPRESS
    common.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="settings file (TOML); default: $PAPERBRIDGE_CONFIG, else built-in defaults",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="log debug details",
    )
    return common


# `search`'s own options, and whether each takes a value. Every other word after `search` is
# part of the query (see _query_words_last).
_SEARCH_OPTIONS = {
    "--limit": True,
    "--page": True,
    "--sort": True,
    "--config": True,
    "--json": False,
    "--verbose": False,
    "--help": False,
}
_SHORT_FLAGS = ("-v", "-h")
# bridge.search.SORTS, spelled out so parsing arguments does not import the search engine
# (tests/test_archive_pages.py checks they agree).
SEARCH_SORTS = ("relevance", "newest", "upvotes")


def _option(token: str, options: Sequence[str]) -> str | None:
    """The option ``token`` names: exactly, or as a prefix of just one (as argparse allows)."""
    if token in _SHORT_FLAGS:
        return token
    if not token.startswith("--") or token == "--":
        return None
    name = token.partition("=")[0]
    found = [option for option in options if option.startswith(name)]
    return found[0] if len(found) == 1 else None


def _query_words_last(argv: Sequence[str]) -> list[str]:
    """``argv`` with the words of a `search` query moved behind ``--``.

    The query language writes an exclusion as ``-survey``, which argparse takes for an
    unknown option ("unrecognized arguments: -survey"), so quoting the whole query would be
    the only way to use it. Here the search command's own options (before or after the
    words) stay options and every other word is the query, in order; argparse then sees
    ``search [options] -- words…``. A ``--`` typed by the user still ends the options.
    """
    argv = list(argv)
    # Skip the options before the command name; only --config takes a value there.
    at = 0
    while at < len(argv) and (option := _option(argv[at], ["--config", "--verbose"])):
        at += 2 if option == "--config" and "=" not in argv[at] else 1
    if at >= len(argv) or argv[at] != "search":
        return argv
    options: list[str] = []
    words: list[str] = []
    rest = iter(argv[at + 1 :])
    for token in rest:
        if token == "--":
            words += rest
            break
        option = _option(token, list(_SEARCH_OPTIONS))
        if option is None:
            words.append(token)
            continue
        options.append(token)
        if _SEARCH_OPTIONS.get(option) and "=" not in token:
            value = next(rest, None)
            if value is not None:
                options.append(value)
    return [*argv[: at + 1], *options, "--", *words]


def build_parser() -> argparse.ArgumentParser:
    top = _common_options(defaults=True)
    common = _common_options(defaults=False)

    parser = argparse.ArgumentParser(
        prog="paperbridge",
        description="New research papers from Hugging Face and arXiv, where you already are.",
        parents=[top],
    )
    parser.add_argument("--version", action="version", version=f"paperbridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", parents=[common], help="run the bridge (polls, feeds, chat)"
    )
    serve.add_argument("--host", type=_host, help="listen address (default from config: 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, help="listen port, 0 for any free one (default from config: 8080)"
    )

    poll = commands.add_parser(
        "poll", parents=[common], help="poll every source once; print what is new"
    )
    poll.add_argument("--json", action="store_true", help="print JSON for scripts")

    search = commands.add_parser("search", parents=[common], help="search stored papers")
    search.add_argument(
        "query", nargs="+", help="e.g. generalization, 'title:\"world model\"', diffusion -survey"
    )
    search.add_argument(
        "--limit", type=_at_least_one, default=10, help="results per page (default 10)"
    )
    search.add_argument("--page", type=_at_least_one, default=1, help="page of results (default 1)")
    search.add_argument(
        "--sort",
        choices=SEARCH_SORTS,
        default="relevance",
        help="relevance (default), newest, or upvotes (the most upvoted of the newest 1,000"
        " matches); the web page's sort switch gives the same orders",
    )
    search.add_argument("--json", action="store_true", help="print JSON for scripts")

    imp = commands.add_parser(
        "import", parents=[common], help="import saved HF JSON/HTML or arXiv RSS/API XML files"
    )
    imp.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="a saved response, or a directory: its .json, .xml, .atom, .rss and .html files",
    )
    imp.add_argument(
        "--announce", action="store_true", help="announce new papers (default: store quietly)"
    )

    backfill = commands.add_parser(
        "backfill", parents=[common], help="load past listings (resumable)"
    )
    backfill.add_argument(
        "--from", dest="start", type=_date, help="first day (default: HF's first, 2023-05-04)"
    )
    backfill.add_argument("--to", dest="end", type=_date, help="last day (default: today)")
    backfill.add_argument(
        "--arxiv",
        metavar="CATS",
        help="also backfill these arXiv categories, e.g. cs.LG+cs.CL (needs --from)",
    )
    backfill.add_argument("--no-hf", action="store_true", help="skip Hugging Face")
    backfill.add_argument("--restart", action="store_true", help="ignore saved progress")
    backfill.add_argument(
        "--retry-failed",
        action="store_true",
        help="read again only the days that failed in earlier runs",
    )

    commands.add_parser(
        "check-config", parents=[common], help="validate settings and print them (secrets redacted)"
    )
    commands.add_parser(
        "healthcheck",
        parents=[common],
        help="exit 0 if the running `serve` on the configured port answers /healthz with 200",
    )

    status = commands.add_parser(
        "status",
        parents=[common],
        help="sources, subscriptions, destinations, last deliveries and problems",
    )
    status.add_argument("--json", action="store_true", help="print JSON for scripts")

    deliver = commands.add_parser(
        "deliver", parents=[common], help="send due digests once (what `serve` does on schedule)"
    )
    deliver.add_argument(
        "--now", action="store_true", help="send every pending paper now, whatever the schedule"
    )

    resume = commands.add_parser(
        "resume", parents=[common], help="unpause a destination after fixing it (see `status`)"
    )
    resume.add_argument(
        "destination", help="the destination as `status` shows it: its name or its id"
    )

    move = commands.add_parser(
        "migrate-data",
        parents=[common],
        help="copy every table into an empty database (e.g. SQLite to PostgreSQL)",
    )
    move.add_argument(
        "--from", dest="source", metavar="URL", help="source database (default: the configured one)"
    )
    move.add_argument(
        "--to", dest="target", metavar="URL", required=True, help="empty target database URL"
    )
    move.add_argument("--batch", type=int, default=2000, help="rows per statement (default 2000)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_query_words_last(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = _settings_for(args.command, config_path(args.config))
        if not args.verbose:
            logging.getLogger().setLevel(settings.log.level)
        # httpx logs every request at INFO; that is noise for a service.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        # APScheduler logs every run of every job at INFO (the ledger sweeps each minute).
        if not args.verbose:
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
        return _run(args, settings)
    except ConfigError as exc:
        for key, problem in exc.problems:
            print(f"paperbridge: config: {key}: {problem}", file=sys.stderr)
        return 2
    except BridgeError as exc:
        print(f"paperbridge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`paperbridge search … | head`): stop quietly, as Unix tools
        # do. Python would complain again flushing stdout at exit, so point it at devnull.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _settings_for(command: str, path: Path | None) -> Settings | BuiltInSettings:
    """The settings, checked as far as ``command`` needs: ``serve`` and ``check-config`` run
    every check serve makes before it starts (``bridge.startup``), ``deliver`` those posting
    needs, other commands the settings themselves. ``search`` with no settings file and no
    variable that sets one has nothing to check: the built-in defaults, without pydantic
    (bridge/settings_defaults.py)."""
    if command == "search":
        defaults = built_in_settings(path)
        if defaults is not None:
            return defaults
    if command in ("serve", "check-config", "deliver"):
        from bridge.startup import load_checked

        return load_checked(path, listen=command != "deliver")
    from bridge.config import load_settings

    return load_settings(path)


def _run_async(work: Coroutine[Any, Any, int]) -> int:
    import asyncio

    return asyncio.run(work)


def _run(args: argparse.Namespace, settings: Any) -> int:
    # ``settings``: Settings, or BuiltInSettings for a search (``_settings_for``).
    if args.command == "healthcheck":
        # Run by a container's HEALTHCHECK every minute: it loads nothing it does not need.
        from bridge.probe import healthcheck

        return healthcheck(settings)
    # Each command imports only its own module (bridge/commands/): `search` starts in a
    # fraction of the time `serve`'s web stack and outputs take to import.
    if args.command == "check-config":
        from bridge.commands.checking import check_config

        return check_config(settings)
    if args.command == "status":
        from bridge.commands.reporting import status

        return status(settings, as_json=args.json)
    if args.command == "deliver":
        from bridge.commands.delivering import deliver

        return _run_async(deliver(settings, now=args.now))
    if args.command == "resume":
        from bridge.commands.resuming import resume

        return resume(settings, args.destination)
    if args.command == "migrate-data":
        from bridge.commands.migrating import migrate_data

        source = args.source or settings.store.database_url
        return migrate_data(source, args.target, batch=max(1, args.batch))
    if args.command == "serve":
        from bridge.commands.serving import serve

        host = args.host or settings.server.host
        port = args.port if args.port is not None else settings.server.port
        return _run_async(serve(settings, host, port))
    if args.command == "poll":
        from bridge.commands.polling import poll

        return _run_async(poll(settings, as_json=args.json))
    if args.command == "search":
        from bridge.commands.searching import search

        return search(
            settings, " ".join(args.query), args.limit, args.page, args.json, sort=args.sort
        )
    if args.command == "import":
        from bridge.commands.importing import import_files

        return import_files(settings, args.files, announce=args.announce)
    if args.command == "backfill":
        # bridge.backfill brings the poller, httpx and the store: imported only here.
        from bridge.backfill import check_arguments
        from bridge.commands.backfilling import backfill

        end = args.end or datetime.now(UTC).date()
        try:
            # Wrong arguments are the user's to fix (exit 2), said before any request.
            check_arguments(args.start, end, arxiv_categories=args.arxiv, hf=not args.no_hf)
        except BridgeError as exc:
            print(f"paperbridge: {exc}", file=sys.stderr)
            return 2
        return _run_async(
            backfill(
                settings,
                start=args.start,
                end=end,
                arxiv_categories=args.arxiv,
                hf=not args.no_hf,
                restart=args.restart,
                retry_failed=args.retry_failed,
            )
        )
    raise AssertionError(args.command)


def print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
