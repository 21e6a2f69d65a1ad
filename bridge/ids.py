"""arXiv identifiers: the one key every paper is stored under."""

from __future__ import annotations

import re

# New style (0704.0001 .. 2612.99999) and old style (hep-th/9901001, math.GT/0309136),
# optionally followed by a version. See arXiv's "Understanding the arXiv identifier".
# ASCII digits only: Python's \d also takes Arabic-Indic or fullwidth digits, which no arXiv id
# has ("２４０７.２１７７２" is not a paper to look up).
_ARXIV_ID = re.compile(
    r"(?P<id>[0-9]{4}\.[0-9]{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]{2})?/[0-9]{7})"
    r"(?:v(?P<version>[0-9]+))?",
    re.ASCII,
)
_EXACT = re.compile(rf"^(?:arxiv:)?{_ARXIV_ID.pattern}$", re.IGNORECASE | re.ASCII)


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


# What a search may be, whole, to mean "this paper": an id (new or old style, any version, maybe
# "arXiv:" before it), an arxiv.org abs or pdf URL, or a huggingface.co/papers URL. Scheme and
# "www." are optional; a query string or fragment after the id is ignored. Slack writes a link
# it recognised as <url> or <url|label>.
_PAPER_URL = re.compile(
    r"(?:https?://)?(?:(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)|(?:www\.)?huggingface\.co/papers)"
    rf"/(?P<rest>{_ARXIV_ID.pattern})(?:\.pdf)?/?(?:[?#]\S*)?",
    re.IGNORECASE | re.ASCII,
)
_SLACK_LINK = re.compile(r"<(?P<url>[^<>|\s]+)(?:\|[^<>]*)?>")


def paper_ids_of_query(text: str) -> tuple[str, ...] | None:
    """The stored ids a search for one paper may find, when ``text`` is (only) an arXiv id or a
    paper URL; None otherwise.

    An old-style id with a subject class (math.AG/0101001) is stored as math/0101001 by
    arXiv's own records, and some listings keep the class: both are returned.
    """
    text = text.strip()
    link = _SLACK_LINK.fullmatch(text)
    if link is not None:
        text = link["url"]
    m = _EXACT.fullmatch(text) or _PAPER_URL.fullmatch(text)
    if m is None:
        return None
    found = m["id"]
    if "/" not in found:
        return (found,)
    archive, number = found.split("/", 1)
    name, dot, subject = archive.partition(".")
    if not dot:
        return (f"{name.lower()}/{number}",)
    return (f"{name.lower()}/{number}", f"{name.lower()}.{subject.upper()}/{number}")


def abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def pdf_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}"


def hf_url(arxiv_id: str) -> str:
    return f"https://huggingface.co/papers/{arxiv_id}"
