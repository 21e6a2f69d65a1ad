"""Listing sources. Adding a source is one new module with a ``Source`` subclass."""

from __future__ import annotations

from bridge.sources.base import Listing, Source

__all__ = ["Listing", "Source"]
