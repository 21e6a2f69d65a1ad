"""arXiv identifiers: the one key every paper is stored under."""

from __future__ import annotations

import re

# New style (0704.0001 .. 2612.99999) and old style (hep-th/9901001, math.GT/0309136),
# optionally followed by a version. See arXiv's "Understanding the arXiv identifier".
_ARXIV_ID = re.compile(
    r"(?P<id>\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]{2})?/\d{7})(?:v(?P<version>\d+))?"
)
_EXACT = re.compile(rf"^(?:arxiv:)?{_ARXIV_ID.pattern}$", re.IGNORECASE)


def split_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Find an arXiv id in ``text`` (a bare id, an abs/pdf URL, an OAI guid).

    Returns (bare id, version or None), or None when there is no id.
    """
    text = text.strip()
    m = _EXACT.match(text)
    if m is None:
        # URLs and guids: take the id after the last '/abs/', '/pdf/' or 'oai:arXiv.org:'.
        for marker in ("/abs/", "/pdf/", "oai:arXiv.org:", "/papers/"):
            if marker in text:
                tail = text.split(marker, 1)[1].split("?", 1)[0].split("#", 1)[0]
                tail = tail.removesuffix(".pdf")
                m = _EXACT.match(tail)
                break
    if m is None:
        return None
    version = m.group("version")
    return m.group("id"), int(version) if version else None


def abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def pdf_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}"


def hf_url(arxiv_id: str) -> str:
    return f"https://huggingface.co/papers/{arxiv_id}"
