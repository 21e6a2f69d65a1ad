"""The email output's settings: the ``[outputs.email]`` table of the settings file, and the
SMTP password from the environment (never from the file, never logged).

Checked with every other setting (``check-config``, ``serve``, ``deliver``): a section with
no host or no from address, a security mode that is not one of the three, a username without
a password, and a ``mailto:`` destination that is not one plain address are all config errors
naming the key, before anything is sent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Any

from bridge.config import Settings, configured_destinations
from bridge.errors import ConfigError

KIND = "mailto"
SECTION = "email"  # [outputs.email]: the entry point's name
PASSWORD_ENV = "PAPERBRIDGE_SMTP_PASSWORD"
SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
KNOWN_KEYS = frozenset(
    {
        "host",
        "port",
        "security",
        "username",
        "from",
        "timeout",
        "ca_file",
        "unsubscribe",
        "papers_per_message",
    }
)
# One plain address: no display name, no list, nothing a header could be bent with.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class EmailSettings:
    host: str
    port: int
    security: str
    sender: str  # the From address (``from`` in the file)
    sender_name: str = "paperbridge"
    username: str | None = None
    password: str | None = None  # from PAPERBRIDGE_SMTP_PASSWORD
    timeout: float = 30.0
    ca_file: str | None = None  # trust this CA bundle too (a lab's own mail server)
    unsubscribe: str | None = None  # List-Unsubscribe; default: mailto the from address
    papers_per_message: int = 100

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]

    def __repr__(self) -> str:  # the password never shows, not even in a traceback
        return (
            f"EmailSettings(host={self.host!r}, port={self.port}, security={self.security!r},"
            f" sender={self.sender!r}, username={self.username!r})"
        )


def is_address(value: str) -> bool:
    return bool(_ADDRESS.fullmatch(value)) and len(value) <= 254


def section(settings: Settings) -> Mapping[str, Any] | None:
    return settings.outputs.get(SECTION)


def email_problems(
    settings: Settings, listen: bool = False, environ: Mapping[str, str] | None = None
) -> list[ConfigError]:
    """Everything that would stop email from being sent; opens no connection."""
    environ = os.environ if environ is None else environ
    problems = _destination_problems(settings)
    table = section(settings)
    if table is None:
        if any(kind == KIND for kind, _ in _mail_destinations(settings)):
            problems.append(
                ConfigError(
                    "outputs.email",
                    "mailto: destinations are sent through an SMTP server: add an"
                    " [outputs.email] section with at least host and from",
                )
            )
        return problems
    _, found = _parse(table, environ)
    return problems + found


def email_settings(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> EmailSettings | None:
    """The email settings, None when the section is absent; ConfigError when they are wrong."""
    table = section(settings)
    if table is None:
        return None
    parsed, problems = _parse(table, os.environ if environ is None else environ)
    if problems or parsed is None:
        raise ConfigError.several(problems)
    return parsed


def _mail_destinations(settings: Settings) -> list[tuple[str, str]]:
    return [
        (kind, key)
        for key, destination in configured_destinations(settings)
        for kind in [destination.partition(":")[0]]
        if kind == KIND
    ]


def _destination_problems(settings: Settings) -> list[ConfigError]:
    problems = []
    for key, destination in configured_destinations(settings):
        kind, _, address = destination.partition(":")
        if kind == KIND and not is_address(address):
            problems.append(
                ConfigError(key, "must be mailto: and one plain address (mailto:lab@example.org)")
            )
    return problems


def _key(name: str) -> str:
    return f"outputs.{SECTION}.{name}"


def _parse(
    table: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[EmailSettings | None, list[ConfigError]]:
    problems: list[ConfigError] = []
    for name in sorted(set(table) - KNOWN_KEYS):
        problems.append(ConfigError(_key(name), "unknown setting (see README, Email)"))
    if "password" in table:
        problems.append(
            ConfigError(
                _key("password"),
                f"secrets are read from the environment only: set {PASSWORD_ENV} instead",
            )
        )

    host = table.get("host")
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host):
        problems.append(ConfigError(_key("host"), "is required: the SMTP server's host name"))
        host = ""
    security = table.get("security", "starttls")
    if security not in SECURITY_MODES:
        problems.append(
            ConfigError(
                _key("security"), f"must be one of {', '.join(SECURITY_MODES)} (got {security!r})"
            )
        )
        security = "starttls"
    port = table.get("port", DEFAULT_PORTS[security])
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        problems.append(ConfigError(_key("port"), f"must be a port number (got {port!r})"))
        port = DEFAULT_PORTS[security]

    sender, sender_name = _sender(table.get("from"), problems)

    username = table.get("username")
    password = environ.get(PASSWORD_ENV) or None
    if username is not None and (not isinstance(username, str) or not username):
        problems.append(ConfigError(_key("username"), "must be the SMTP login name (text)"))
        username = None
    if username and password is None:
        problems.append(
            ConfigError(_key("username"), f"is set but {PASSWORD_ENV} is not (the SMTP password)")
        )
    if username and security == "none":
        problems.append(
            ConfigError(
                _key("security"),
                "a password is never sent in the clear: use starttls or tls with username",
            )
        )

    timeout = table.get("timeout", 30)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 300:
        problems.append(ConfigError(_key("timeout"), "must be seconds, between 0 and 300"))
        timeout = 30
    ca_file = table.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not Path(ca_file).is_file()):
        problems.append(ConfigError(_key("ca_file"), f"no such file: {ca_file!r}"))
        ca_file = None
    unsubscribe = table.get("unsubscribe")
    if unsubscribe is not None and not _unsubscribe_ok(unsubscribe):
        problems.append(
            ConfigError(
                _key("unsubscribe"),
                "must be a mailto: address or an https:// URL (the List-Unsubscribe header)",
            )
        )
        unsubscribe = None
    per_message = table.get("papers_per_message", 100)
    if (
        not isinstance(per_message, int)
        or isinstance(per_message, bool)
        or not 1 <= per_message <= 500
    ):
        problems.append(ConfigError(_key("papers_per_message"), "must be between 1 and 500"))
        per_message = 100

    if problems:
        return None, problems
    return (
        EmailSettings(
            host=host,
            port=port,
            security=security,
            sender=sender,
            sender_name=sender_name,
            username=username,
            password=password,
            timeout=float(timeout),
            ca_file=ca_file,
            unsubscribe=unsubscribe,
            papers_per_message=per_message,
        ),
        [],
    )


def _sender(value: Any, problems: list[ConfigError]) -> tuple[str, str]:
    """``from``: an address, or ``Name <address>``."""
    if not isinstance(value, str) or not value.strip():
        problems.append(ConfigError(_key("from"), "is required: the address digests come from"))
        return "", ""
    if "\n" in value or "\r" in value:
        problems.append(ConfigError(_key("from"), "must be one line"))
        return "", ""
    try:
        parsed = Address(addr_spec=value) if "<" not in value else None
        name = "paperbridge"
        if parsed is None:
            name_part, _, rest = value.partition("<")
            parsed = Address(addr_spec=rest.rstrip().removesuffix(">").strip())
            name = name_part.strip().strip('"') or name
    except (HeaderParseError, ValueError, IndexError):
        parsed = None
    if parsed is None or not is_address(parsed.addr_spec):
        problems.append(
            ConfigError(
                _key("from"), f"must be an address such as papers@lab.example (got {value!r})"
            )
        )
        return "", ""
    return parsed.addr_spec, name


def _unsubscribe_ok(value: Any) -> bool:
    if not isinstance(value, str) or any(c in value for c in " <>\r\n\"'"):
        return False
    if value.startswith("mailto:"):
        return is_address(value.removeprefix("mailto:").partition("?")[0])
    return value.startswith("https://") and len(value) > len("https://")
