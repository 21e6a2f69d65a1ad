"""Decide whether an HTTP request to the interactions endpoint really comes from Discord.

Discord signs every interaction it sends to an "Interactions Endpoint URL" with the
application's Ed25519 key: ``X-Signature-Ed25519`` (hex) over ``X-Signature-Timestamp`` +
the exact body bytes, checked with the public key (PyNaCl, libsodium). A request with a
missing or wrong signature is answered 401, as Discord requires (it sends such requests
itself to test the endpoint, and refuses to save a URL that accepts them). The timestamp must
also be within five minutes of now, so a captured request cannot be replayed later. Nothing
of the body is read before the signature holds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

SIGNATURE_HEADER = "x-signature-ed25519"
TIMESTAMP_HEADER = "x-signature-timestamp"
# As Slack's rule for its signed requests: older ones may be replays.
MAX_AGE_SECONDS = 5 * 60
_SIGNATURE = re.compile(r"[0-9a-fA-F]{128}")
_SECONDS = re.compile(r"[0-9]{1,12}")


class InteractionCheck:
    """``refusal(headers, body)``: None for a request Discord signed, else why not."""

    def __init__(self, public_key_hex: str, clock: Callable[[], float] = time.time) -> None:
        self._key = VerifyKey(bytes.fromhex(public_key_hex))
        self._clock = clock

    def refusal(self, headers: Mapping[str, str], body: bytes) -> str | None:
        signature = headers.get(SIGNATURE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not signature or timestamp is None:
            return "no X-Signature-Ed25519 and X-Signature-Timestamp headers"
        if not _SIGNATURE.fullmatch(signature):
            return "X-Signature-Ed25519 is not 64 bytes in hex"
        try:
            self._key.verify(timestamp.encode("latin-1") + body, bytes.fromhex(signature))
        except BadSignatureError:
            return "the signature does not match the body"
        # Checked after the signature, which covers the timestamp: a forged one never gets here.
        if not _SECONDS.fullmatch(timestamp):
            return "X-Signature-Timestamp is not whole seconds since 1970"
        if abs(self._clock() - int(timestamp)) > MAX_AGE_SECONDS:
            return "X-Signature-Timestamp is more than five minutes off"
        return None
