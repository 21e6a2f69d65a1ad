"""The records of a JSON array read out of a file a block at a time, as raw bytes.

`paperbridge import` hands a big file's records to its parsing processes in pieces, so that
no process holds the whole file or its decoded objects: memory stays flat however big the
file. This only finds where each element of the top-level array begins and ends; what an
element says, and whether it is valid JSON at all, the parsing process decides (orjson on a
piece; one bad record is then reported on its own, see ``hf_parse.parse_records``).

Finding the ends costs one regular-expression match per record, run in C: an element is
matched whole by a pattern that knows strings (with their escapes) and brackets nested up to
``_FAST_DEPTH`` levels. That costs about 9 ns a byte (about 45 us for a 5 KB paper, which
parsing costs about three times over). Splitting on the quotes first and matching only the
structure was no faster: splitting and mapping positions back cost as much. A deeper
element is matched by counting brackets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["JsonArrayError", "records"]

# Bytes read at a time.
_BLOCK = 1 << 20
# One element longer than this is not a paper: the file is reported broken from there
# rather than read whole into memory looking for the element's end.
MAX_RECORD = 32 << 20
_FAST_DEPTH = 8

# A string: unrolled ("abc" then escapes each followed by plain runs), the shape sre loops
# over fastest.
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# Anything but a string or a bracket: digits, literals, separators, space.
_PLAIN = rb'[^"{}\[\]]++'


def _nested(depth: int) -> bytes:
    """An object or array with brackets nested ``depth`` levels at most. "{" and "[" are
    not told apart: a mismatched pair is bad JSON, which the parsing process reports."""
    inner = b""
    for _ in range(depth):
        alternatives = _PLAIN + b"|" + _STRING + (b"|" + inner if inner else b"")
        inner = rb"[\[{](?:" + alternatives + rb")*+[\]}]"
    return inner


# A whole element: a string, an object or array, or a number or literal.
_ELEMENT = re.compile(_STRING + b"|" + _nested(_FAST_DEPTH) + rb'|[^\s,\[\]{}"]++')
_SPACE = re.compile(rb"\s*+")
# One token of the slow scan: a string, a bracket, or a quote whose string does not end.
_TOKEN = re.compile(_STRING + rb'|[\[\]{}"]')


class JsonArrayError(ValueError):
    """The file is not (or stops being) a JSON array; ``read`` elements came before."""

    def __init__(self, why: str, read: int) -> None:
        super().__init__(why)
        self.read = read


def records(file: BinaryIO) -> Iterator[bytes]:
    """Each element of the JSON array in ``file``, as the bytes it is written with.

    Raises ``JsonArrayError`` where the file is not a JSON array, or is cut off or broken
    between elements; the elements before it have been yielded.
    """
    buffer = b""
    while True:  # up to the first thing that is not space (or a BOM)
        block = file.read(_BLOCK)
        buffer += block
        at_end = not block
        head = buffer.removeprefix(b"\xef\xbb\xbf").lstrip()
        if at_end or (head and len(buffer) >= 3):
            break
    if not head.startswith(b"["):
        raise JsonArrayError("not a JSON array", 0)
    buffer = head[1:]
    count = 0
    separator = False  # whether a "," (or the "]") comes next, after an element
    while True:
        # ``buffer`` starts between elements: before one, a "," or the "]".
        text = buffer
        at = 0
        while True:
            at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
            head = text[at : at + 1]
            if not head:
                break  # read on
            if head == b"]" and (separator or count == 0):
                return
            if separator:
                if head != b",":
                    raise JsonArrayError("expected ',' or ']' between records", count)
                separator = False
                at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
                if at == len(text):
                    break
            end = _element_end(text, at, at_end)
            if end is None:
                break
            yield buffer[at:end]
            count += 1
            separator = True
            at = end
        if at_end:
            raise JsonArrayError("the JSON array is cut off or a record is not JSON", count)
        rest = buffer[at:]
        if len(rest) > MAX_RECORD:
            raise JsonArrayError(f"a record longer than {MAX_RECORD >> 20} MiB", count)
        block = file.read(max(_BLOCK, len(rest)))
        at_end = not block
        buffer = rest + block


def _element_end(text: bytes, start: int, at_end: bool) -> int | None:
    """Where the element starting at ``start`` of the structure ends, or None if it does not
    end in it (or is not an element)."""
    match = _ELEMENT.match(text, start)
    # A number or literal running to the end of the block may go on in the next one.
    if match is not None and (match.end() < len(text) or at_end):
        return match.end()
    if text[start : start + 1] not in (b"[", b"{"):
        return None
    return _scan_end(text, start)


def _scan_end(text: bytes, start: int) -> int | None:
    """The end of the bracketed element at ``start``, brackets counted one at a time: for
    an element nested deeper than the pattern goes (never a paper, but valid JSON)."""
    depth = 0
    for token in _TOKEN.finditer(text, start):
        bracket = token[0]
        if bracket in (b"[", b"{"):
            depth += 1
        elif bracket in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                return token.end()
        elif bracket == b'"':
            return None  # cut off inside a string
    return None
