"""One exception tree for the whole bridge.

BridgeError
├── ConfigError      a setting is missing or wrong (names the key)
├── FetchError       an upstream could not be fetched (names the URL)
├── ParseError       a response could not be read at all (names source and URL)
├── StoreError       the database refused or failed
├── QueryError       a search or subscription query is malformed (names where and why)
├── SearchRefused    a search was not run to the end (retry_after: None, or seconds)
│   ├── SearchTooBroad   it outgrew its budget; the text says how to narrow it
│   └── SearchBusy       every search worker and queue place is taken; try again later
├── ChatUsageError   a chat command (/papers …) is malformed; the text says how to fix it
└── PublishError     an output (feed, Slack, Discord) could not deliver
    └── PermanentPublishError  the destination is gone or forbidden; stop retrying
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class BridgeError(Exception):
    """Base of every error paperbridge raises on purpose."""


class ConfigError(BridgeError):
    """One wrong setting, or several found together (``problems``: every (key, problem), one
    line each in the message, so they can all be fixed in one go); ``key`` and ``problem``
    are the first."""

    def __init__(self, key: str, problem: str, *, more: Sequence[tuple[str, str]] = ()) -> None:
        self.key = key
        self.problem = problem
        self.problems = ((key, problem), *more)
        super().__init__("\n".join(f"config: {k}: {p}" for k, p in self.problems))

    @classmethod
    def several(cls, errors: Iterable[ConfigError]) -> ConfigError:
        """One error carrying every problem of ``errors`` (each once, in order)."""
        problems = list(dict.fromkeys(p for error in errors for p in error.problems))
        if not problems:
            raise ValueError("no problems to report")
        return cls(*problems[0], more=problems[1:])


class FetchError(BridgeError):
    def __init__(self, url: str, problem: str, *, status: int | None = None) -> None:
        self.url = url
        self.problem = problem
        self.status = status
        super().__init__(f"fetch {url}: {problem}")


class ParseError(BridgeError):
    def __init__(self, source: str, url: str, problem: str) -> None:
        self.source = source
        self.url = url
        self.problem = problem
        super().__init__(f"{source}: cannot parse {url}: {problem}")


class StoreError(BridgeError):
    pass


class QueryError(BridgeError, ValueError):
    """A malformed query. ``position`` is the 0-based character offset of the problem."""

    def __init__(self, message: str, position: int | None = None, query: str = "") -> None:
        self.message = message
        self.position = position
        self.query = query
        where = f" at position {position + 1}" if position is not None else ""
        super().__init__(f"{message}{where}")


class SearchRefused(BridgeError):
    """A well-formed search that was not answered; the message is meant for the person asking."""

    retry_after: int | None = None


class SearchTooBroad(SearchRefused):
    """The search outgrew its budget (papers checked one by one, or CPU time)."""


class SearchBusy(SearchRefused):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChatUsageError(BridgeError):
    """A ``/papers`` command that cannot be done as typed; the message is shown to the user."""


class PublishError(BridgeError):
    pass


class PermanentPublishError(PublishError):
    """The destination will not accept messages again without a human (gone, forbidden)."""
