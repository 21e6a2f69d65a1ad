"""Papers as plain text for the terminal (reading like the HF listing) and as JSON: what
``search`` and ``poll`` print, and what the stdout and file outputs post."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from bridge.models import Hit, StoredPaper

PREVIEW_CHARS = 320


def short_authors(authors: Sequence[str], keep: int = 4) -> str:
    if len(authors) <= keep:
        return ", ".join(authors)
    return f"{', '.join(authors[:keep])} and {len(authors) - keep} more"


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The start of an abstract, cut at a word boundary."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:.") + "…"


def format_paper(stored: StoredPaper, *, why: str | None = None, width: int = 88) -> str:
    paper = stored.paper
    day = paper.listed_on or (paper.published_at.date() if paper.published_at else None)
    facts = [f"arXiv:{paper.arxiv_id}" + (f"v{paper.version}" if paper.version else "")]
    if day:
        facts.append(day.isoformat())
    if paper.upvotes is not None:
        facts.append(f"▲ {paper.upvotes}")
    if paper.categories:
        facts.append(" ".join(paper.categories[:3]))
    lines = textwrap.wrap(paper.title, width) or [paper.arxiv_id]
    if paper.authors:
        lines += textwrap.wrap(
            short_authors(paper.authors), width, initial_indent="  ", subsequent_indent="  "
        )
    lines.append("  " + " · ".join(facts))
    if why:
        lines.append(f"  {why}")
    if paper.abstract:
        lines += textwrap.wrap(
            preview(paper.abstract),
            width,
            initial_indent="  ",
            subsequent_indent="  ",
            break_on_hyphens=False,
        )
    links = [paper.abs_url, paper.pdf_link]
    if "hf" in paper.sources:
        links.append(paper.hf_url)
    if paper.github_repo:
        links.append(paper.github_repo)
    lines.append("  " + "  ".join(links))
    return "\n".join(lines)


def paper_json(
    stored: StoredPaper, hits: Sequence[Hit] = (), why: str | None = None
) -> dict[str, Any]:
    paper = stored.paper
    return {
        "arxiv_id": paper.arxiv_id,
        "version": paper.version,
        "title": paper.title,
        "authors": list(paper.authors),
        "abstract": paper.abstract,
        "listed_on": paper.listed_on.isoformat() if paper.listed_on else None,
        "published_at": paper.published_at.isoformat() if paper.published_at else None,
        "upvotes": paper.upvotes,
        "categories": list(paper.categories),
        "sources": list(paper.sources),
        "links": {
            "abs": paper.abs_url,
            "pdf": paper.pdf_link,
            "hf": paper.hf_url if "hf" in paper.sources else None,
            "code": paper.github_repo,
            "project": paper.project_page,
        },
        "why": why,
        "hits": [{"field": h.field, "text": h.text, "start": h.start, "end": h.end} for h in hits],
    }


def dumps(items: list[dict[str, Any]]) -> str:
    return json.dumps(items, ensure_ascii=False, indent=2)
