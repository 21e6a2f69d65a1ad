"""The web page's Jinja2 templates and stylesheet.

Kept as Python strings rather than files: the package installs with plain ``pip install .``
(the Dockerfile does), which copies only Python modules unless package data is configured.
"""

from __future__ import annotations

STYLESHEET = """\
:root { color-scheme: light dark; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 52rem; padding: 1rem; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center;
  border-bottom: 1px solid var(--line); padding-bottom: .75rem; margin-bottom: 1rem; }
header a.home { font-weight: 700; font-size: 1.25rem; text-decoration: none; color: inherit; }
form.search { display: flex; gap: .5rem; flex: 1; min-width: 16rem; }
form.search input[type=search] { flex: 1; padding: .4rem .6rem; font-size: 1rem; }
form.search button, form.search select { padding: .4rem .8rem; font-size: 1rem; }
a { color: var(--accent); }
.muted, .meta { color: var(--muted); font-size: .9rem; }
.error { border: 1px solid #dc2626; color: #dc2626; padding: .5rem .75rem; border-radius: .25rem; }
.health { border: 1px solid #d97706; padding: .25rem .75rem; border-radius: .25rem; }
.health ul { padding-left: 1.25rem; }
ul.feeds { list-style: none; padding: 0; }
ul.feeds li { padding: .5rem 0; border-bottom: 1px solid var(--line); }
ul.feeds code, .subscribe code { word-break: break-all; }
article.paper { padding: .9rem 0; border-bottom: 1px solid var(--line); }
article.paper h3 { margin: 0 0 .25rem; font-size: 1.1rem; }
article.paper h3 a { color: inherit; text-decoration: none; }
article.paper h3 a:hover { text-decoration: underline; }
article.paper p { margin: .3rem 0; }
.upvotes { font-weight: 600; }
.why { font-style: italic; }
.links a { margin-right: .75rem; }
nav.pages { display: flex; justify-content: space-between; margin: 1rem 0; }
article.card { display: flex; gap: 1rem; align-items: flex-start; }
article.card .thumb img { width: 10rem; height: auto; aspect-ratio: 16 / 9; object-fit: cover;
  border-radius: .25rem; border: 1px solid var(--line); }
article.card .body { flex: 1; min-width: 0; }
article.card .summary { font-weight: 500; }
@media (max-width: 36rem) { article.card { flex-direction: column; }
  article.card .thumb img { width: 100%; } }
mark { background: #fde68a; color: inherit; padding: 0 .1em; border-radius: .15em; }
.comments, .stars { white-space: nowrap; }
nav.periods, nav.sorts { display: flex; flex-wrap: wrap; gap: .75rem; align-items: baseline;
  margin: .5rem 0; }
nav.sorts [aria-current] { font-weight: 700; }
h2.day, h3.day { font-size: 1.05rem; margin: 1.5rem 0 0; }
ul.hints { padding-left: 1.25rem; }
details.syntax { margin: 1.5rem 0; }
details.syntax summary { cursor: pointer; color: var(--muted); }
details.syntax dl { display: grid; grid-template-columns: minmax(10rem, max-content) 1fr;
  gap: .25rem 1rem; font-size: .9rem; }
details.syntax dt code { word-break: break-all; }
details.syntax dd { margin: 0; }
"""

FAVICON = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">\
<rect width="16" height="16" rx="3" fill="#2563eb"/>\
<path d="M4 12a1.5 1.5 0 1 1 0 .01M3 7a6 6 0 0 1 6 6M3 3a10 10 0 0 1 10 10" \
stroke="#fff" stroke-width="1.6" fill="none"/></svg>
"""

BASE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}paperbridge{% endblock %}</title>
<link rel="stylesheet" href="{{ base }}/static/paperbridge.css">
<link rel="icon" type="image/svg+xml" href="{{ base }}/static/favicon.svg">
{% for feed in discover %}
<link rel="alternate" type="application/atom+xml" title="{{ feed.title }}" href="{{ feed.url(base, 'atom') }}">
{% endfor %}
</head>
<body>
<header>
  <a class="home" href="{{ base }}/">paperbridge</a>
  <form class="search" action="{{ base }}/search" method="get" role="search">
    <input type="search" name="q" value="{{ query or '' }}" maxlength="{{ max_query_length }}"
      placeholder="Search papers, e.g. generalization" aria-label="Search papers">
    {% if search_sort is defined and search_sort != 'relevance' %}<input type="hidden" name="sort" value="{{ search_sort }}">{% endif %}
    <button type="submit">Search</button>
  </form>
</header>
<main>
{% block main %}{% endblock %}
</main>
</body>
</html>
"""

PAPER = """\
{% macro paper_card(entry) %}
<article class="paper">
  <h3><a href="{{ entry.url }}">{{ entry.title }}</a></h3>
  <p class="meta">
    {% if entry.upvotes is not none %}<span class="upvotes" title="upvotes on Hugging Face">▲ {{ entry.upvotes }}</span> · {% endif %}
    {% if entry.day %}<time datetime="{{ entry.day.isoformat() }}"{% if entry.day_estimated %} class="estimated" title="{{ ESTIMATED_DAY }}"{% endif %}>{{ entry.day.strftime('%d %b %Y') }}{% if entry.day_estimated %} (expected){% endif %}</time> · {% endif %}
    arXiv:{{ entry.arxiv_id }}
    {% if entry.categories %} · {{ entry.categories[:3] | join(' ') }}{% endif %}
  </p>
  {% if entry.authors %}<p class="authors">{{ short_authors(entry) }}</p>{% endif %}
  {% if entry.why %}<p class="why">{{ entry.why }}</p>{% endif %}
  {% if entry.tldr %}<p class="summary" title="Hugging Face's AI summary">{{ entry.tldr }}</p>{% endif %}
  {# A "matched X in the abstract" line stands over the whole abstract, never over a cut one
     that may not show X (feed entries carry no match offsets to start a preview at). #}
  {% if entry.abstract %}<p class="abstract">{{ entry.abstract if entry.why else preview(entry.abstract) }}</p>{% endif %}
  <p class="links">
    {% for link in entry.links %}<a href="{{ link.href }}" rel="noopener noreferrer">{{ link.title }}</a>{% endfor %}
  </p>
</article>
{% endmacro %}
"""

CARD = """\
{% macro marked(segments) %}{% for piece, hit in segments %}{% if hit %}<mark>{{ piece }}</mark>{% else %}{{ piece }}{% endif %}{% endfor %}{% endmacro %}
{% macro card(c) %}
<article class="paper card" id="paper-{{ c.arxiv_id }}">
  {% if c.thumbnail %}<a class="thumb" href="{{ c.url }}" tabindex="-1" aria-hidden="true"><img src="{{ c.thumbnail }}" alt="" loading="lazy" decoding="async" width="160" height="90"></a>{% endif %}
  <div class="body">
  <h3><a href="{{ c.url }}">{{ marked(c.title) }}</a></h3>
  <p class="meta">
    {% if c.upvotes is not none %}<span class="upvotes" title="upvotes on Hugging Face">▲ {{ c.upvotes }}</span> · {% endif %}
    {% if c.comments is not none %}<a class="comments" href="{{ c.comments_url }}" title="comments on Hugging Face">{{ c.comments }} {{ 'comment' if c.comments == 1 else 'comments' }}</a> · {% endif %}
    {% if c.day %}<a class="day" href="{{ base }}/papers/{{ c.day.isoformat() }}"><time datetime="{{ c.day.isoformat() }}"{% if c.day_estimated %} class="estimated" title="{{ ESTIMATED_DAY }}"{% endif %}>{{ c.day.strftime('%d %b %Y') }}{% if c.day_estimated %} (expected){% endif %}</time></a> · {% endif %}
    arXiv:{{ c.arxiv_id }}
    {% if c.categories %} · <span class="categories">{{ c.categories | join(' ') }}</span>{% endif %}
  </p>
  {% if c.authors %}<p class="authors">{{ c.authors }}</p>{% endif %}
  {% if c.summary %}<p class="summary" title="Hugging Face's AI summary">{{ marked(c.summary) }}</p>{% endif %}
  {% if c.why %}<p class="why">{{ c.why }}</p>{% endif %}
  {% if c.abstract %}<p class="abstract">{{ marked(c.abstract) }}</p>{% endif %}
  <p class="links">
    {% for link in c.links %}<a href="{{ link.href }}" rel="noopener noreferrer">{{ link.title }}</a>{% endfor %}
    {% if c.github %}<a class="github" href="{{ c.github }}" rel="noopener noreferrer">GitHub: {{ github_name(c.github) }}{% if c.github_stars is not none %} <span class="stars">★ {{ c.github_stars }}</span>{% endif %}</a>{% endif %}
    {% if c.project %}<a class="project" href="{{ c.project }}" rel="noopener noreferrer">Project page</a>{% endif %}
  </p>
  </div>
</article>
{% endmacro %}
"""

INDEX = """\
{% extends "base.html" %}
{% from "card.html" import card with context %}
{% block main %}
<h1>Feeds</h1>
<p class="muted">Paste a feed address into your feed reader, or import them all at once:
  <a href="{{ base }}/feeds.opml">feeds.opml</a>.</p>
<ul class="feeds">
{% for feed in feeds %}
  <li>
    <strong><a href="{{ feed.view_url(base) }}">{{ feed.title }}</a></strong>
    {% if feed.query %}<span class="muted">— {{ feed.query }}</span>{% endif %}<br>
    <span class="subscribe"><a href="{{ feed.url(base, 'atom') }}" type="application/atom+xml">Atom</a>
      · <a href="{{ feed.url(base, 'json') }}" type="application/feed+json">JSON Feed</a>
      · <code>{{ feed.url(base, 'atom') }}</code></span>
  </li>
{% endfor %}
</ul>
<p class="muted">Any search is a feed too: search, then subscribe to the results.</p>
{% if notice.problems %}
<section class="health" role="status">
  <p><strong>{{ 'Starting up:' if notice.starting else 'Papers may be late:' }}</strong></p>
  <ul>
  {% for problem in notice.problems %}
    <li>{{ problem }}</li>
  {% endfor %}
  </ul>
  {% if notice.unreachable %}
  <p>Meanwhile, papers can be loaded by hand where paperbridge runs:
    <code>paperbridge import FILE</code> (a listing saved from the site) or
    <code>paperbridge backfill --from DATE</code>.</p>
  {% endif %}
</section>
{% endif %}
<h2 id="newest">Newest papers</h2>
<p class="muted">Every stored paper by the day it was listed, newest first.
  {% if latest %}By day, sorted by upvotes: <a href="{{ base }}/papers/{{ latest.isoformat() }}">{{ latest.strftime('%d %b %Y') }}</a>.{% endif %}</p>
<section id="papers">
{% for day, cards in groups %}
<h3 class="day">{% if day %}<a href="{{ base }}/papers/{{ day.isoformat() }}">{{ day.strftime("%A, %d %B %Y") }}</a>{% else %}Undated{% endif %}</h3>
{% for c in cards %}{{ card(c) }}{% endfor %}
{% else %}<p class="muted">{% if notice.starting %}No papers yet: the first poll is still on its way.{% elif notice.problems %}No papers yet: the sources could not be read (see above).{% else %}No papers yet: the sources answered, listing none so far.{% endif %}</p>{% endfor %}
</section>
<nav class="pages">
  {% if after %}<a href="{{ base }}/#newest">← Newest</a>{% else %}<span></span>{% endif %}
  {% if next_url %}<a rel="next" href="{{ next_url }}">Older →</a>{% endif %}
</nav>
{% endblock %}
"""

SEARCH = """\
{% extends "base.html" %}
{% from "card.html" import card with context %}
{% from "nav.html" import sort_switch, pager %}
{% block title %}{% if query %}{{ query }} — {% endif %}paperbridge search{% endblock %}
{% block main %}
{% if error %}
<p class="error" role="alert">{{ error }}</p>
{% elif query %}
<p class="muted"><span id="total">{{ total }}</span> {{ 'paper matches' if total in (1, '1') else 'papers match' }} <strong>{{ query }}</strong>.
  Subscribe: <a href="{{ feed.url(base, 'atom') }}" type="application/atom+xml">Atom</a>
  · <a href="{{ feed.url(base, 'json') }}" type="application/feed+json">JSON Feed</a></p>
{{ sort_switch(sorts) }}
{% if note %}<p class="muted">{{ note }}</p>{% endif %}
{% if hints %}
<ul class="hints" id="hints">
{% for hint in hints %}  <li>Hint: {{ hint }}</li>
{% endfor %}</ul>
{% endif %}
<section id="results">
{% for c in cards %}{{ card(c) }}{% endfor %}
</section>
{{ pager(prev_url, next_url, page_number) }}
{% else %}
<p class="muted">Search every stored paper by title, abstract and keywords.</p>
{% endif %}
<details class="syntax" id="syntax"{% if not query %} open{% endif %}>
  <summary>How to write a query</summary>
  <dl>
  {% for example, meaning in syntax_help %}
    <dt><code>{{ example }}</code></dt><dd>{{ meaning }}</dd>
  {% endfor %}
  </dl>
</details>
{% endblock %}
"""

FEED = """\
{% extends "base.html" %}
{% from "paper.html" import paper_card %}
{% block title %}{{ feed.title }}{% endblock %}
{% block main %}
<h1>{{ feed.title }}</h1>
<p class="subscribe">This is a feed. To follow it, copy its address into your feed reader:<br>
  <code>{{ feed.url(base, fmt) }}</code></p>
{% if feed.query %}<p class="muted">Papers matching <strong>{{ feed.query }}</strong>, newest first.</p>{% endif %}
{% for entry in entries %}{{ paper_card(entry) }}{% else %}<p class="muted">No papers in this feed yet.</p>{% endfor %}
{% endblock %}
"""

NAV = """\
{% macro sort_switch(sorts) %}
<nav class="sorts" aria-label="Sort by">Sort by:
{% for label, url, current in sorts %}{% if current %}<strong aria-current="true">{{ label }}</strong>{% else %}<a href="{{ url }}">{{ label }}</a>{% endif %}
{% endfor %}
</nav>
{% endmacro %}
{% macro pager(prev_url, next_url, number) %}
<nav class="pages" aria-label="Pages">
  {% if prev_url %}<a rel="prev" href="{{ prev_url }}">← Previous page</a>{% else %}<span></span>{% endif %}
  {% if prev_url or next_url %}<span class="muted">Page {{ number }}</span>{% endif %}
  {% if next_url %}<a rel="next" href="{{ next_url }}">Next page →</a>{% else %}<span></span>{% endif %}
</nav>
{% endmacro %}
"""

LISTING = """\
{% extends "base.html" %}
{% from "card.html" import card with context %}
{% from "nav.html" import sort_switch, pager %}
{% block title %}{{ period.title }} — paperbridge{% endblock %}
{% block main %}
<h1>{{ period.title }}</h1>
<nav class="periods" aria-label="Listing days">
  {% if prev_period %}<a class="prev-period" href="{{ base }}/papers/{{ prev_period.name }}">← {{ prev_period.title }}</a>{% endif %}
  {% for wider in period.wider() %}<a class="{{ wider.kind }}" href="{{ base }}/papers/{{ wider.name }}">The whole {{ wider.kind }}</a>{% endfor %}
  {% if next_period %}<a class="next-period" href="{{ base }}/papers/{{ next_period.name }}">{{ next_period.title }} →</a>{% endif %}
</nav>
<p class="muted"><span id="total">{{ total }}</span> {{ 'paper' if total == 1 else 'papers' }} listed.</p>
{% if total %}{{ sort_switch(sorts) }}{% endif %}
<section id="papers">
{% for c in cards %}{{ card(c) }}{% else %}<p class="muted">No papers were listed {{ 'on this day' if period.kind == 'day' else 'in this ' + period.kind }}.{% if prev_period or next_period %} The nearest listings are linked above.{% endif %}</p>{% endfor %}
</section>
{{ pager(prev_url, next_url, page_number) }}
{% endblock %}
"""

TEMPLATES = {
    "card.html": CARD,
    "nav.html": NAV,
    "listing.html": LISTING,
    "base.html": BASE,
    "paper.html": PAPER,
    "index.html": INDEX,
    "search.html": SEARCH,
    "feed.html": FEED,
}
