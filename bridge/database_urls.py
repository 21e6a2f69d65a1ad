"""Database URLs: which ones paperbridge accepts, and the URL each is opened with.

People write PostgreSQL URLs the way their host or their other tools do: ``postgres://`` (Heroku,
Render, most dashboards and ``psql``), ``postgresql://``, or SQLAlchemy's
``postgresql+DRIVER://``. paperbridge talks to PostgreSQL through psycopg 3 alone, so every one
of them opens as ``postgresql+psycopg://`` with the rest of the URL (user, password, host,
database, ``?sslmode=…``) kept as written.

Outside the store package, and reading the scheme without SQLAlchemy, so that loading the
settings (which checks the URL) stays quick for commands that never open the store, such as
``healthcheck``, run every minute by the container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

POSTGRES_SCHEMES = ("postgresql", "postgres")
# SQLAlchemy's PostgreSQL drivers: a URL naming any of them is still PostgreSQL to us.
POSTGRES_DRIVERS = ("psycopg", "psycopg2", "psycopg2cffi", "pg8000", "asyncpg")
SQLITE_DRIVERS = ("pysqlite",)
ACCEPTED = (
    "sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DATABASE, postgres://…, or"
    f" postgresql+DRIVER://… ({', '.join(POSTGRES_DRIVERS)})"
)


def database_kind(text: str) -> str:
    """The database a URL names, as "sqlite" or "postgresql"; ValueError saying what is
    accepted when the store would refuse it. The message never repeats ``text``: it may hold
    a password."""
    scheme, separator, _rest = text.strip().partition("://")
    if not separator:
        raise ValueError(f"not a database URL; use {ACCEPTED}")
    name, _, driver = scheme.lower().partition("+")
    if name in POSTGRES_SCHEMES and (not driver or driver in POSTGRES_DRIVERS):
        return "postgresql"
    if name == "sqlite" and (not driver or driver in SQLITE_DRIVERS):
        return "sqlite"
    if name in ("sqlite", *POSTGRES_SCHEMES):
        raise ValueError(f"unsupported driver {driver!r} for {name}; use {ACCEPTED}")
    raise ValueError(f"unsupported database {name!r}; use {ACCEPTED}")


def database_url(text: str) -> URL:
    """``text`` as the SQLAlchemy URL the store opens: PostgreSQL through psycopg 3 whatever
    driver it names, SQLite as written. ValueError (without ``text``) when it is refused."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    kind = database_kind(text)
    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError):
        raise ValueError(f"not a database URL; use {ACCEPTED}") from None
    return url.set(drivername="postgresql+psycopg" if kind == "postgresql" else "sqlite")
