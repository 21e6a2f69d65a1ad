#!/usr/bin/env python3
"""Generate bridge/query/spelling_data.py: British/American spelling pairs the rules miss.

Source: SCOWL (Spell Checker Oriented Word Lists) by Kevin Atkinson, as Debian's ``scowl``
package ships it (``apt-get install scowl``: /usr/share/dict/scowl). SCOWL keeps one spelling
of each word in its common list (``english-words.N``) and puts the spellings that only one side
uses in ``american-words.N`` and ``british-words.N``, plus American variants in
``variant_1-words.N`` and ``variant_2-words.N`` (``variant_3``, "seldom used", is left out) and British ones in ``british_variant_1-words.N``.
Sizes up to ``--size`` (default 80, "huge"; 95 is "insane" and full of oddities) are read.

SCOWL lists words, not pairs, so a pair is found by spelling: an American-only spelling A is
paired with the British or common word B that the known British -> American rewrites turn into A
(ae/oe -> e, our -> or, re -> er, ise -> ize, yse -> yze, ph -> f, doubled -> single consonant,
ogue -> og, ence -> ense, mme -> m, gement -> gment, xion -> ction, ...: ``REWRITES``), trying
one, then two rewrites and keeping a pair only when exactly one partner is found at
the fewest rewrites. A British-only spelling without an American-only partner may pair with a
common word the same way. The data decide which words pair; the rewrites only propose.

Kept out on purpose (``FALSE_FRIENDS``): pairs whose American spelling is also a British word
with another meaning, so that merging them would make a British paper's word match a different
word. Each is listed with why.

Written out are only the pairs the analyzer's rules (bridge/query/normalize.py) do not already
give one term: the table is the exceptions to the rules. It maps the British (or common)
spelling, folded, to the American one; the analyzer then applies its rules and family key to the
American word, so inflections listed by SCOWL (aetiologies, sulphates) are entries of their own.

    apt-get install scowl
    .venv/bin/python scripts/spelling_variants.py [--scowl /usr/share/dict/scowl] [--size 80]

Review the diff of bridge/query/spelling_data.py (it prints what changed in size), run
tests/test_spelling_variants.py and bench/spelling.py, commit both files.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "bridge" / "query" / "spelling_data.py"
DEFAULT_SCOWL = Path("/usr/share/dict/scowl")
DEFAULT_SIZE = 80
SIZES = (10, 20, 35, 40, 50, 55, 60, 70, 80, 95)
MAX_REWRITES = 2
CATEGORIES = ("english", "american", "british", "variant_1", "variant_2", "british_variant_1")
# Shorter words pair by accident (ads -> adz) and the rules leave them alone anyway.
MIN_LENGTH = 4

# British -> American rewrites, as (British, American) substrings. They only propose partners:
# a pair is kept when SCOWL lists both spellings on their sides.
# The consonants British doubles where American does not (jewellery, biassed, worshipper,
# clarinettist, bannister, waggon); not b or d, which pair rubble with ruble.
_CONSONANTS = "lsptngm"
REWRITES: tuple[tuple[str, str], ...] = (
    ("ae", "e"),  # aetiology, palaeontology, gynaecology, faecal, anaesthesia
    ("oe", "e"),  # oesophagus, oedema, diarrhoea, homoeopathy
    ("our", "or"),  # rancour, succour, glamour
    ("is", "iz"),  # -ise, -isation in any position (anaesthetise, aggrandisement)
    ("ys", "yz"),  # -yse
    ("ph", "f"),  # sulphur, sulphate
    ("ogue", "og"),
    ("ence", "ense"),  # licence (licencing)
    ("mme", "m"),  # gramme, kilogramme
    ("gement", "gment"),  # judgement, acknowledgement
    ("que", "ck"),  # chequebook
    ("ette", "et"),  # omelette, epaulette
    ("oul", "ol"),  # mould, smoulder, moult
    ("moust", "must"),  # moustache
    ("plough", "plow"),
    ("aught", "aft"),  # draughtsman, draughty (draught itself is a false friend, below)
    ("xion", "ction"),  # connexion, inflexion
    ("eing", "ing"),  # ageing, glueing
    ("eable", "able"),  # likeable
    ("aulk", "alk"),  # baulk
    ("kh", "k"),  # sheikh
    ("re", "er"),  # fibre, goitre, centrepiece, theatregoer
    ("ring", "ering"),  # reconnoitring
    ("red", "ered"),  # louvred
    ("aeroplane", "airplane"),
    ("aerofoil", "airfoil"),
    ("gaol", "jail"),
    ("cos", "coz"),  # cosy, cosier, cosily
    ("syph", "siph"),
    ("gips", "gyps"),
    ("pyjam", "pajam"),
    ("oney", "ony"),  # phoney
    ("ellery", "elry"),  # jewellery
    ("oghurt", "ogurt"),
    ("oghourt", "ogurt"),
    *((c + c, c) for c in _CONSONANTS),  # biassed, worshipper, waggon, calliper, jewellery
)

# Never paired, whatever SCOWL says: the American spelling is also a British word of its own
# meaning, or the British word names another thing. (British, American, why)
FALSE_FRIENDS: tuple[tuple[str, str, str], ...] = (
    (
        "draught",
        "draft",
        "British draft is a first version (a draft model); draught is air or drink",
    ),
    ("tyre", "tire", "tire is also to grow weary, in British too"),
    ("tonne", "ton", "a tonne is 1,000 kg; a (long or short) ton is another unit"),
    ("disc", "disk", "British computing writes disk (hard disk); disc is a flat round thing"),
    (
        "programme",
        "program",
        "British computing writes program; programme is a plan or a broadcast",
    ),
    ("philtre", "filter", "a philtre is a love potion; a filter is a filter in British too"),
    ("gauge", "gage", "gage is a pledge or a plum in British; gauge the measure"),
    ("storey", "story", "a storey is a floor of a building; a story is a tale in British too"),
    ("kerb", "curb", "curb is also to restrain, in British too"),
    ("cheque", "check", "check is also to verify, in British too"),
    ("metre", "meter", "kept by the rules (centre/metre); listed so the table adds nothing"),
)
_FALSE_FRIEND_WORDS = {(b, a) for b, a, _ in FALSE_FRIENDS}

_WORD = re.compile(r"[a-z]+")


def _plausible(british: str, american: str) -> bool:
    # "aer"/"oer" at the start are two syllables (aerosol, aerogel), not the ae of aetiology:
    # ae -> e there would pair aeros with eros and aerogenic with erogenic.
    if british.startswith(("aer", "oer")) and american.startswith("er"):
        return False
    # -re -> -er is an ending (fibre, centrepiece, theatregoer), never the prefix pre- or re-
    # (preformative is not performative, presolve not persolve): only after three letters and
    # a consonant.
    for start in range(min(len(british), len(american))):
        if british[start] != american[start]:
            break
    if british[start : start + 2] == "re" and american[start : start + 2] == "er":
        if start < 3 or british[start - 1] in "aeiou":
            return False
    # ae/oe -> e inside a word (aetiology, foetus, diarrhoea), not at its end, where it is a
    # Latin plural (alveolae, conchae) or another word (dittoes, shoer, taes).
    if british[start : start + 2] in ("ae", "oe") and american[start] == "e":
        if british[start + 2 :] in ("", "s", "r", "rs", "d", "y"):
            return False
        if start > 0 and len(british.removesuffix("s")) <= 4:  # haet, bael
            return False
    # our -> or after a syllable (arbour, odour), not four, pour, tour (pourers, porers).
    if british[start : start + 2] == "ur" and american[start] == "r" and start < 3:
        return False
    # Spellings of one word start alike, but for an initial ae/oe (aetiology, oesophagus,
    # tsar/tzar aside) and the few whole-word pairs of REWRITES (gaol, aeroplane).
    if british[0] != american[0] and not british.startswith(("ae", "oe", "gaol", "aero")):
        return False
    return True


def _read(folder: Path, category: str, size: int) -> set[str]:
    words: set[str] = set()
    for level in SIZES:
        if level > size:
            break
        path = folder / f"{category}-words.{level}"
        if path.exists():
            text = path.read_bytes().decode("utf-8", errors="ignore")
            words.update(w for w in text.split() if _WORD.fullmatch(w))
    return words


def _candidates(word: str, rewrites: Iterable[tuple[str, str]]) -> Iterator[set[str]]:
    """The spellings ``word`` becomes by 1, 2, ... MAX_REWRITES rewrites, level by level."""
    rewrites = tuple(rewrites)
    seen = {word}
    frontier = {word}
    for _ in range(MAX_REWRITES):
        found: set[str] = set()
        for current in frontier:
            for old, new in rewrites:
                start = current.find(old)
                while start >= 0:
                    candidate = current[:start] + new + current[start + len(old) :]
                    if candidate not in seen:
                        seen.add(candidate)
                        found.add(candidate)
                    start = current.find(old, start + 1)
        yield found
        frontier = found


def _partner(word: str, rewrites: Iterable[tuple[str, str]], among: set[str]) -> str | None:
    for level in _candidates(word, rewrites):
        hits = level & among
        if len(hits) == 1:
            return hits.pop()
        if hits:
            return None  # two partners at the fewest rewrites: ambiguous, keep neither
    return None


def _false_friend_filter(key: Callable[[str], str]) -> Callable[[str, str], bool]:
    """Whether a pair is a false friend or an inflection of one (gauges, gauging): compared by
    the analyzer's family key, so derived words (draughtsman, drafty) may still pair."""
    keys = {(key(b), key(a)) for b, a in _FALSE_FRIEND_WORDS}
    british_keys = {kb for kb, _ in keys}
    american_keys = {ka for _, ka in keys}
    return lambda b, a: key(b) in british_keys or key(a) in american_keys


def derive_pairs(folder: Path, size: int) -> list[tuple[str, str]]:
    """(British or common spelling, American spelling) pairs found in SCOWL's lists."""
    # SCOWL's lists say which spellings each side accepts, not which it alone uses (yogurt is
    # in both the American and the British list): a side is its main list and its variants.
    american = set().union(
        *(_read(folder, c, size) for c in ("american", "variant_1", "variant_2"))
    )
    british = set().union(*(_read(folder, c, size) for c in ("british", "british_variant_1")))
    common = _read(folder, "english", size)
    american -= common
    british -= common
    reverse = tuple((new, old) for old, new in REWRITES)
    # Rare British spellings ("seldom used": gaolbird, passivise) only as the British side of
    # a pair with a common word, below.
    rare = _read(folder, "variant_3", size) - common - american
    pairs: dict[str, str] = {}
    # Every spelling only American lists accept, with the British or common word it rewrites.
    british_or_common = british | common
    for a in sorted(american):
        b = _partner(a, reverse, british_or_common)  # never a itself: no rewrite is empty
        if b and b not in pairs:
            pairs[b] = a
    # British spellings still alone, with the common or American word they rewrite to
    # (gaol -> jail, biassed -> biased, yoghurt -> yogurt).
    common_or_american = common | american
    for b in sorted((british | rare) - set(pairs)):
        a = _partner(b, REWRITES, common_or_american - {b})
        if a:
            pairs[b] = a
    false_friend = _false_friend_filter(_rule_keys())
    return sorted(
        (b, a)
        for b, a in pairs.items()
        if len(b) >= MIN_LENGTH and _plausible(b, a) and not false_friend(b, a)
    )


def _rules() -> tuple[Callable[[str], str], Callable[[str], str]]:
    """(americanize, normalize_word) without the generated table: what the rules alone do.
    The table is set aside for each call only, and the analyzer's caches are not used, so a
    process that also analyzes with the table (bench/spelling.py) is not disturbed."""
    sys.path.insert(0, str(ROOT))
    from bridge.query import normalize

    def without_table(function: Callable[[str], str]) -> Callable[[str], str]:
        def call(word: str) -> str:
            saved = normalize._VARIANTS
            normalize._VARIANTS = {}
            try:
                return function(word)
            finally:
                normalize._VARIANTS = saved

        return call

    return without_table(normalize.americanize), without_table(
        lambda word: normalize._normalize(word, stem=True)
    )


def _rule_keys() -> Callable[[str], str]:
    return _rules()[1]


def table(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """What the rules make of each British word -> what they make of the American one, for the
    pairs the rules alone leave apart. The analyzer looks a word up after its rules, so one entry
    serves every spelling the rules bring together (anaesthetise, anaesthetize)."""
    americanize, key = _rules()
    out: dict[str, str] = {}
    for b, a in pairs:
        if key(b) == key(a):
            continue
        kb, ka = americanize(b), americanize(a)
        if kb != ka and out.setdefault(kb, ka) != ka:
            print(f"  {b}: {out[kb]} or {ka}? kept the first", file=sys.stderr)  # noqa: T201
    # An American word that is itself a British entry (a chain) goes to the end of the chain.
    for kb, ka in out.items():
        seen = {kb}
        while ka in out and ka not in seen:
            seen.add(ka)
            ka = out[ka]
        out[kb] = ka
    return {kb: ka for kb, ka in sorted(out.items()) if kb != ka}


def consistent(entries: dict[str, str], words: set[str], common: set[str]) -> dict[str, str]:
    """``entries`` less those that would split a family: when SCOWL pairs some forms of a word
    and not others (cassettes with a rare casettes, but not cassette), the forms the rules gave
    one key must keep one key, or cassette would no longer find cassettes. Only common words
    count: a British form left unpaired (ploughings) is no reason to drop plough -> plow."""
    americanize, key = _rules()
    from bridge.query.normalize import family_key

    families: dict[str, set[str]] = {}
    for word in words:
        families.setdefault(key(word), set()).add(word)
    kept = dict(entries)
    for members in families.values():
        ruled = {word: americanize(word) for word in members}
        if not any(r in kept for r in ruled.values()):
            continue
        # Only a common word's entry can split a family of common words: a British-only
        # spelling (plough) stays paired even if the list has a stray form (ploughings).
        risky = [w for w, r in ruled.items() if r in kept and w in common]
        if not risky:
            continue
        unmapped = {family_key(r) for w, r in ruled.items() if r not in kept and w in common}
        if unmapped and unmapped != {family_key(kept[ruled[w]]) for w in risky}:
            for w in risky:
                kept.pop(ruled[w], None)
    return kept


def _render(pairs: dict[str, str], source: str) -> str:
    lines = [
        '"""British -> American spellings the rules of normalize.py miss. GENERATED: do not edit.',
        "",
        "Written by scripts/spelling_variants.py from " + source + ".",
        "Refresh: apt-get install scowl; .venv/bin/python scripts/spelling_variants.py",
        '"""',
        "",
        "# fmt: off",
        f"SOURCE = {source!r}",
        "",
        "# (British, American, why): never merged, whatever the word lists say.",
        "FALSE_FRIENDS: tuple[tuple[str, str, str], ...] = (",
        *(f"    ({b!r}, {a!r}, {why!r})," for b, a, why in FALSE_FRIENDS),
        ")",
        "",
        "# a British (or common) word as the rules leave it -> the American word as they leave it",
        "VARIANTS: dict[str, str] = {",
        *(f"    {b!r}: {a!r}," for b, a in pairs.items()),
        "}",
        "",
    ]
    return "\n".join(lines)


def _scowl_version() -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "scowl"], capture_output=True, text=True
        )
    except OSError:
        return "unknown version"
    return out.stdout.strip() or "unknown version"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scowl", type=Path, default=DEFAULT_SCOWL)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, choices=SIZES)
    args = parser.parse_args()
    if not (args.scowl / "american-words.10").exists():
        sys.exit(f"spelling_variants: no SCOWL word lists in {args.scowl} (apt-get install scowl)")
    pairs = derive_pairs(args.scowl, args.size)
    words = set().union(*(_read(args.scowl, c, args.size) for c in CATEGORIES))
    common = _read(args.scowl, "english", args.size)
    missed = consistent(table(pairs), words, common)
    source = f"SCOWL, Debian package scowl {_scowl_version()}, word lists of size <= {args.size}"
    OUTPUT.write_text(_render(missed, source), encoding="utf-8")
    print(f"{len(pairs)} pairs in SCOWL; {len(missed)} not merged by the rules -> {OUTPUT}")  # noqa: T201


if __name__ == "__main__":
    main()
