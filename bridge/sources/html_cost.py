"""Bound, before an HTML page is parsed, the work its tree can cost the tree builder."""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["LIMITS", "Checked", "Limits", "check"]

# An HTML5 tree builder (lexbor, html5lib, browsers) checks the stack of open elements on
# most tags and re-creates unclosed formatting elements (<b>, <font>, <a>...) after every
# block that closed them, so a page of 100,000 nested <div>s, or a few thousand distinct
# <b>s closed again and again, costs time and memory that grow with the square of its size:
# 22.8 s of CPU for 500 KB of <div>s. check() counts, or else walks, the page's tags as the
# HTML tokenizer splits them, with a stack never shallower than the builder's and a count
# of the formatting elements it may re-create, and refuses the page once their sums pass
# these bounds: some 50 times what a 100-card Hugging Face listing page needs (6,514 tags,
# depth 86,000 and formatting 4,100 summed over them).


class Limits(NamedTuple):
    """What a page may cost; past any of these it is refused."""

    tags: int = 200_000
    depth_work: int = 4_000_000  # stack depth summed over every tag: the builder's scope checks
    formatting_work: int = 250_000  # formatting elements open, summed over every tag: re-creations


LIMITS = Limits()


class Checked(NamedTuple):
    """The page to hand to the tree builder, or why it must not be (``refusal``)."""

    page: str
    refusal: str


class Walk(NamedTuple):
    """What the walk found: the page as rewritten, why it stopped (or ""), and its sums."""

    page: str
    refusal: str
    tags: int
    depth_work: int
    formatting_work: int
    deepest: int  # the stack's depth plus the formatting elements open, at most


_TAG = re.compile(
    r"""
    <(?:!--(?:-?>|.*?--!?>|.*)              # a comment; "<!-->" and "<!--->" end at once
    | [!?][^>]*>?                           # a doctype, CDATA or other bogus comment
    | /(?![A-Za-z])[^>]*>?                  # "</" before anything but a letter: ignored
    | (/?)([A-Za-z][^\t\n\f\r />]*)         # a tag: whether it ends an element, its name
      (?:[\t\n\f\r ]+                       # its attributes, as the tokenizer reads them
        | /
        | [^\t\n\f\r />][^\t\n\f\r /=>]*
          (?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"[^"]*"?|'[^']*'?|[^\t\n\f\r >]*))?
      )*+
      >?)
    """,
    re.S | re.X,
)
_RAW_TEXT_CLOSING = {
    name: re.compile(rf"</{name}[\t\n\f\r />]", re.I)
    for name in "iframe noembed noframes style textarea title xmp".split()
}
_SCRIPT_STATE = re.compile(r"<!--(-?>)?|-->|<(/?)script[\t\n\f\r />]", re.I)

_VOID = frozenset(
    "area base basefont bgsound br col embed frame hr image img input keygen link meta param"
    " source track wbr".split()
)
_FORMATTING = frozenset("a b big code em font i nobr s small strike strong tt u".split())
# Spelled out in classes rather than with re.I, which makes the scan of a long page slower.
_FORMATTING_START = re.compile(
    "<(?:"
    + "|".join("".join(f"[{c}{c.upper()}]" for c in name) for name in sorted(_FORMATTING))
    + r")(?![^\t\n\f\r />])"
)
# Elements whose content is text up to their end tag.
_RAW_TEXT = frozenset(_RAW_TEXT_CLOSING) | {"script", "plaintext"}
# In a <select> the builder keeps to <script>, and <textarea> closes the <select> first.
_IGNORED_IN_SELECT = _RAW_TEXT - {"script", "textarea"}
# An end tag the builder walks up to through open elements stops at these, the "special"
# elements of the HTML standard; the walk never pops past one either.
_SPECIAL = frozenset(
    "address applet area article aside base basefont bgsound blockquote body br button caption"
    " center col colgroup dd details dir div dl dt embed fieldset figcaption figure footer form"
    " frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html iframe img input keygen li"
    " link listing main marquee menu meta nav noembed noframes noscript object ol p param"
    " plaintext pre script search section select source style summary table tbody td template"
    " textarea tfoot th thead title tr track ul wbr xmp".split()
)
_NOT_PASSED = _SPECIAL | _FORMATTING
# Start tags on which the builder may close open elements other than by their end tags.
_CLOSES_OTHERS = _SPECIAL | frozenset("a nobr option optgroup rb rp rt rtc".split())
# The builder would read what follows these as SVG or MathML, with rules of its own (CDATA,
# self-closing tags, breaking out to HTML); renamed, they are plain unknown HTML elements.
# Nothing read from a page lies inside them.
_FOREIGN = ("svg", "math")
_RENAMED = ("x-svg", "x-math")


def check(page: str, limits: Limits = LIMITS) -> Checked:
    """The page to build a tree from, or why building it could take unbounded work.

    A page walked tag by tag comes back with its <svg> and <math> renamed (see _FOREIGN).
    Runs in time linear in the page, and stops at the first bound passed.
    """
    if _within_bounds_whatever_the_order(page, limits):
        return Checked(page, "")
    walk = _walk(page, limits)
    return Checked(walk.page, walk.refusal)


def _within_bounds_whatever_the_order(page: str, limits: Limits) -> bool:
    """Whether the page is small enough that its tags cannot pass a bound in any order.

    Counted in C: a builder sees at most as many tags as there are "<", and at most as many
    elements open at once, or formatting elements to re-create, as there are start tags that
    could make them. Most real pages pass, and need no walk.
    """
    tags = page.count("<")
    if tags > limits.tags:
        return False
    # Each count is a pass over the page; the later ones only when the earlier fall short.
    starts = tags if tags * tags <= limits.depth_work else tags - page.count("</")
    if tags * starts > limits.depth_work:
        return False
    if tags * starts <= limits.formatting_work:
        return True
    return tags * len(_FORMATTING_START.findall(page)) <= limits.formatting_work


def _walk(page: str, limits: Limits) -> Walk:
    """Walk the page's tags with a stack never shallower than the builder's.

    An end tag pops the element on top of the stack if it names it: the builder pops that
    element too, unless it never opened it or closed it before, and then the walk only
    drops an element the builder does not have. The one exception is the end tag of a
    renamed <svg> or <math>, which pops past the elements inside that HTML leaves open
    (self-closed <path/>s): the builder's own walk for that end tag passes them too (they
    are not special, nor formatting), and the <svg> is certainly still open in the builder
    if no start tag that can close elements (a special one, or <a>, <nobr>, <option>, ruby
    parts) nor an end tag the walk did not pop for came after it: the elements open at
    such a tag lie below ``settled``.
    """
    stack: list[str] = []
    settled = 0
    formatting = tags = depth_work = formatting_work = deepest = 0
    renamed: list[int] = []  # where "x-" goes before "svg" or "math"
    max_tags, max_depth_work, max_formatting_work = limits
    position = 0
    scanning = True
    while scanning:
        scanning = False
        for match in _TAG.finditer(page, position):
            closing, name = match.group(1, 2)
            if name is None:
                continue  # a comment, doctype, CDATA or other bogus comment
            tags += 1
            depth_work += len(stack)
            formatting_work += formatting
            if (
                tags > max_tags
                or depth_work > max_depth_work
                or formatting_work > max_formatting_work
            ):
                why = "too many formatting elements left open"
                if tags > max_tags:
                    why = f"more than {max_tags:,} tags"
                elif depth_work > max_depth_work:
                    why = "elements nested too deeply"
                return Walk(page, why, tags, depth_work, formatting_work, deepest)
            name = name.lower()
            if name in _FOREIGN:
                renamed.append(match.start(2))
                name = "x-" + name
            if closing:
                at = len(stack) - 1
                if at >= 0 and stack[at] != name and name in _RENAMED:
                    # "</svg>" after "<path .../>"s, which HTML leaves open.
                    while at >= settled and stack[at] != name and stack[at] not in _NOT_PASSED:
                        at -= 1
                    if at < settled:
                        at = -1
                if at >= 0 and stack[at] == name:
                    formatting -= name in _FORMATTING
                    del stack[at:]
                    settled = min(settled, at)
                else:
                    settled = len(stack)
                continue
            if name == "frameset" or (name == "col" and "template" in stack):
                # Past a frameset, or after a column in a template, the builder ignores
                # <style>, <textarea> and the like and so reads their text as markup. The
                # walk does not follow it there (nor below, into a <select>); no listing
                # page goes there either.
                why = "a frameset page" if name == "frameset" else "a template with columns"
                return Walk(page, why, tags, depth_work, formatting_work, deepest)
            if name in _CLOSES_OTHERS:
                settled = len(stack)
            if name in _VOID:
                continue
            stack.append(name)
            formatting += name in _FORMATTING
            if len(stack) + formatting > deepest:
                deepest = len(stack) + formatting
            if name in _RAW_TEXT:
                if name in _IGNORED_IN_SELECT and "select" in stack:
                    # Some lexbor releases ignore it there, and so read its text as markup.
                    why = f"a <{name}> inside a <select>"
                    return Walk(page, why, tags, depth_work, formatting_work, deepest)
                # Its text is no markup: scan on from where it ends.
                position = _raw_text_end(page, name, match.end())
                scanning = True
                break
    if renamed:
        bounds = zip([0, *renamed], [*renamed, len(page)], strict=True)
        page = "x-".join(page[start:end] for start, end in bounds)
    return Walk(page, "", tags, depth_work, formatting_work, deepest)


def _raw_text_end(page: str, name: str, position: int) -> int:
    """Where the text content of a raw-text element that starts at ``position`` ends."""
    if name == "plaintext":
        return len(page)
    if name != "script":
        found = _RAW_TEXT_CLOSING[name].search(page, position)
        return found.start() if found is not None else len(page)
    # A script ends at "</script", except inside "<!--" ... "-->" after a "<script": the
    # tokenizer's escaped and double-escaped states.
    escaped = double = False
    for found in _SCRIPT_STATE.finditer(page, position):
        token = found[0]
        if token.startswith("<!--"):
            escaped = escaped or found[1] is None
        elif token == "-->":
            escaped = double = False
        elif found[2]:  # </script
            if not double:
                return found.start()
            double = False
        elif escaped:  # <script
            double = True
    return len(page)
