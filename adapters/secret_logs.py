"""Secrets that sit in request URLs (a webhook's path, a bot token in Telegram's path) kept
out of the logs: httpx logs every request URL at INFO, so a filter on its logger replaces any
secret an output registered with "…" before the record is written."""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qsl, urlsplit

_LOGGERS = ("httpx", "httpcore")
_secrets: set[str] = set()
_lock = threading.Lock()


class _MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        record.msg = mask(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(mask(str(arg)) if _has_secret(arg) else arg for arg in record.args)
        return True


def _has_secret(value: object) -> bool:
    text = str(value)
    return any(secret in text for secret in _secrets)


def mask(text: str) -> str:
    """``text`` with every registered secret replaced by "…" (longest first, so a URL that
    contains a shorter registered token is masked whole)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


def keep_out_of_logs(secret: str) -> None:
    """Never log ``secret`` (a webhook URL, a token) through the HTTP client's loggers."""
    if len(secret) < 8:
        return  # too short to be a secret worth masking; masking it would garble logs
    with _lock:
        _secrets.add(secret)
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, _MaskSecrets) for f in logger.filters):
                logger.addFilter(_MaskSecrets())


def keep_url_out_of_logs(url: str) -> None:
    """Never log a secret URL (a webhook's), nor its path or query values on their own: a
    log line may show the URL as the HTTP client rewrote it (without the default port, say),
    and the token sits in the path (Rocket.Chat) or the query (Teams' ``sig``, a webhook's)."""
    keep_out_of_logs(url)
    parts = urlsplit(url)
    keep_out_of_logs(parts.path)
    for _, value in parse_qsl(parts.query):
        keep_out_of_logs(value)
