"""Turn text into normalised search terms: one meaning of a keyword for subscriptions and search.

The analyzer splits text into words and maps every word to a *term*, its family key. Two words
match when their terms are equal, so the rules below are the whole meaning of "matches".

Tokens
    One compiled regular expression finds the words. A word is a run of letters or digits in any
    script; a decimal point inside a number stays (``3.5``, ``Qwen2.5``); a possessive ``'s`` is
    dropped and other apostrophes are removed (``LLM's`` → ``llm``, ``don't`` → ``dont``). A
    single letter followed by ``++`` or ``#`` is a word of its own (``C++``, ``C#``, ``F#``).
    A compound joined by hyphens or underscores (``out-of-distribution``, ``GPT-4o``,
    ``pre-training``, ``self_supervised``) yields its parts at consecutive positions *and* the
    joined form (``outofdistribution``, ``gpt4o``, ``pretraining``) spanning all of them, so
    ``pretraining`` and ``pre-training`` find each other, and ``pre-training``, ``pre training``
    and ``"pre training"`` find each other. En dashes, slashes and dots (other than decimal
    points) separate words. LaTeX commands are skipped (``\\times``, ``\\mathcal``, ``\\log``)
    except Greek letters, which become words (``$\\alpha$-divergence`` gives ``alpha``,
    ``divergence`` at consecutive positions).

Folding
    Lowercase (``casefold``), compatibility-decompose (NFKD: ligatures such as ``ﬁ`` become
    ``fi``) and drop accents, so ``Out-Of-Distribution``, ``naïve`` and ``Schrödinger`` fold to
    plain ASCII. An acronym plural written in capitals loses its ``s``: ``LLMs`` → ``llm``,
    ``GPUs`` → ``gpu``, ``IDs`` → ``id``. Otherwise a three-letter word keeps its ``s``, which
    in an acronym is one of its letters: ``GPS``, ``fps`` and ``LMS`` keep it (``GPs`` → ``gp``,
    but ``GPS`` → ``gps``).

Query words that read two ways
    A three-letter query word ending in ``s`` with no vowel before it, typed in lowercase
    (``gps``, ``lms``, ``fps``), may be the acronym or a plural, so it finds both: ``gps``
    finds GPS and GPs. ``GPS`` typed in capitals finds GPS only, and ``gp`` or ``GPs`` finds
    GP and GPs, never GPS (``readings``).

Words that are left alone
    Words shorter than three letters, words containing digits (``3d``, ``f1``, ``gpt4o``,
    ``2.5``), symbols (``c++``) and non-Latin words are only folded, never stemmed.

British → American spelling (on the folded word, before the family key)
    * The rules below, then a generated table of whole words (``bridge/query/spelling_data.py``,
      written by ``scripts/spelling_variants.py`` from SCOWL's British, American and common
      word lists; the file names its source and version). The table maps what the rules make
      of a British word to what they make of its American spelling, for the ~1,300 pairs the
      rules alone leave apart, inflections included (SCOWL lists them): archaeology,
      palaeontology, gynaecology, oesophagus and faecal forms the stems below miss,
      aestivation, caesium, biassed → biased, worshipper, jewellery, ageing, plough, connexion,
      goitre, reconnoitring, moult, cosy, gaol → jail, aeroplane → airplane. Keyed after the
      rules, one entry serves every spelling they bring together (anaesthetise and
      anaesthetize). A table lookup per distinct word, cached like the rest. A pair is kept
      only when both spellings are in SCOWL's lists, the American one in an American list,
      and no family of common words would be split by it.
      False friends are never paired (``FALSE_FRIENDS``, with the reason for each): draught and
      draft, tyre and tire, tonne and ton, disc and disk, programme and program (British
      computing writes "program"; "programme" is a plan or a broadcast, so ``program
      synthesis`` must not find "research programme"), philtre and filter, gauge and gage,
      storey and story, kerb and curb, cheque and check.
    * ``-ise``, ``-ised``, ``-ises``, ``-ising``, ``-iser``, ``-isation``, ``-isable``,
      ``-isability`` → ``-iz…`` after a consonant (optimise, generalisation, tokeniser), except
      words where ``-ise`` is not the verb suffix: ``-wise``, ``-vise`` (supervised, revise,
      advise), ``-prise`` (comprise, surprise, enterprise), exercise, precise, concise, promise,
      compromise, premise, demise, expertise, advertise, franchise, merchandise, paradise,
      despise, treatise, rise/arise; a vowel before ``-ise`` also blocks it (noise, denoising,
      raise, praise, cruise).
    * ``-lyse``/``-lysed``/``-lysing``/``-lyser`` → ``-lyz…`` (analyse, catalyse); but the plural
      noun ``-yses`` → ``-ysis`` (analyses → analysis, in the family of analyze: below) and
      ``-theses`` → ``-thesis``.
    * ``-our`` → ``-or`` only inside a known family: behaviour, colour, flavour, favour, honour,
      humour, labour, neighbour, rumour, vapour, harbour, odour, armour, vigour, tumour, valour,
      savour, saviour, endeavour, clamour, candour, rigour, splendour, parlour, demeanour,
      fervour, ardour (and their derivatives: behavioural, favourite). four, hour, our, your,
      pour, tour, flour and every other ``-our`` word are untouched.
    * ``-tre`` → ``-ter`` for centre, metre (and kilometre…), litre, theatre, fibre, calibre,
      spectre, sombre, meagre, lustre, sabre, with ``-s``/``-d``/``-ing`` (centred → centered).
    * ``-ogue`` → ``-og`` after at least three letters (dialogue, catalogue, analogue).
    * ``ll`` → ``l`` when at least two vowels precede it (modelling, labelled, travelling,
      cancelled, fuelled, enrolled, fulfill, distill); ``fall``, ``call``, ``small``, ``tell`` keep
      theirs. Applied to every word alike, so ``install``/``instal`` and
      ``control``/``controlled`` still agree.
    * A short table: defence, offence, licence (licencing), pretence, grey, aluminium,
      judgement, acknowledgement, artefact, practise, manoeuvre, sceptic, mould, amongst,
      whilst, and the stems of ae/oe/ph science words, so that derived words no list has
      meet too: haem-, paed-, -aemia, oestr-, foet-, oedem-, palaeo-, archaeol-, gynaec-,
      anaesth-, aesthet-, aetiol-, oesophag-, faec-, diarrhoe-, homoeo-, coeliac, sulph-
      (palaeoclimate, sulphonamide, septicaemia).

Family key (only inflection, plus the ``-ize``/``-yze`` derivations; never a Porter/Snowball
stemmer, which would reduce ``generalization`` to ``general``)
    1. Irregular forms from a table: learnt → learn, matrices → matrix, vertices → vertex,
       indices → index, criteria → criterion, phenomena → phenomenon, corpora → corpus,
       axes → axis, children → child, leaves → leaf, formulae → formula, radii → radius, …
    2. The ``-ize`` family: ``-ize``, ``-izes``, ``-ized``, ``-izing``, ``-izer(s)``,
       ``-ization(s)``, ``-izational``, ``-izable``, ``-izability`` → ``…iz`` when at least three
       letters precede ``iz``: generalization, generalise, generalized, generalizable,
       generalisability all give ``generaliz``, while general, generally, generalist,
       generality and general-purpose keep their own keys. Likewise ``-yze``, ``-yzed``,
       ``-yzes``, ``-yzing``, ``-yzer(s)`` → ``…yz`` (analyze, analysed, analyzer → ``analyz``),
       and so does the noun ``-ysis``: analysis, analyses (the plural, and the British verb
       "analyses") and analyze all give ``analyz``; catalysis and catalyses give ``catalyz``.
       hypothesis/hypothesize keep their own keys.
    3. Plurals: ``-sses`` → ``-ss``; ``-ies`` → ``-i``; a final ``-s`` goes except after ``s``,
       ``u`` or ``i`` (class, corpus, status, analysis, basis) and in a few singulars (bias, gas,
       atlas, canvas, alias, lens, chaos, cosmos, ethos, news, …). A small list of plurals ending
       in ``-us``/``-is`` does lose the ``s`` (gpus, cpus, relus, apis, emojis). Three-letter
       words keep their ``s`` (``its``, ``gas``, ``yes``, and acronyms: ``gps``, ``fps``).
    4. Verb forms (Porter step 1b): ``-eed`` → ``-ee`` (agreed, exceeded); ``-ed`` and ``-ing``
       go when the rest has a vowel (so bring, string, red and shed stay), then ``at``/``bl``/
       ``iz`` regain their ``e`` (generated → generate), a doubled final consonant other than
       l, s, z is undoubled (embedded → embed, programmed → program) and a short
       consonant-vowel-consonant stem regains its ``e`` (coding → code, hoping → hope).
       ``embed`` and ``imbed`` are words, not past tenses.
    5. A final ``y`` after a vowel-bearing stem becomes ``i`` (study, studies, studied → studi).
    6. A final silent ``e`` goes as in Porter step 5a (generate → generat, cause → caus), but
       stays on short consonant-vowel-consonant stems (code, note, state, time, size, plane), so
       that plane/plan and state/stat stay apart. ``one``/``ones`` keep their ``e`` (not "on").

    The ``-ing`` noun and the verb share a key: ``learning`` finds ``learn``, ``learned``,
    ``learns``, ``learnt`` and ``reinforcement learning``; ``training`` finds ``trained``;
    ``modeling``/``modelling``/``models``/``modeled`` all give ``model``. Other derivations are
    separate words: learner, trainer, behavioral, optimal, analytic, traveller, statistical.

Terms are keys, not words (``generaliz``, ``studi``); outputs show the words as written, by the
character offsets every ``Token`` carries.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import accumulate, count
from operator import add, sub

from bridge.query.spelling_data import VARIANTS as _VARIANTS

__all__ = [
    "Token",
    "analyze",
    "clear_caches",
    "family_key",
    "fold",
    "normalize_word",
    "readings",
    "terms_of",
    "word_groups",
]


@dataclass(frozen=True, slots=True)
class Token:
    """One term at one position; ``start``/``end`` are character offsets into the analyzed text.

    ``span`` is the number of positions the token covers: 1 for a word, k for the joined form of
    a k-part hyphenated compound (which shares its position with the first part).
    """

    term: str
    position: int
    start: int
    end: int
    span: int = 1


# --- tokenizer -----------------------------------------------------------------------------------

# One pass finds candidate words: runs of word characters (with combining marks) joined by
# hyphens, apostrophes or dots. Plain alphanumeric runs, the vast majority, go straight to the
# per-word cache; the rest are split here (dots not between digits, hyphens, underscores).
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_W = rf"[\w{_MARKS}]+"
_TOKEN_RE = re.compile(
    rf"[A-Za-z](?:\+\+|\#)(?![\w+\#])"  # C++, C#, F#
    rf"|{_W}(?:[-\u2010\u2011'\u2019.]{_W})*"
    r"|\\[A-Za-z]+"  # a LaTeX command
)
_GROUP: Callable[[re.Match[str]], str] = re.Match.group
_SPAN: Callable[[re.Match[str]], tuple[int, int]] = re.Match.span
# In ASCII text a run holds only letters, digits and _-'.+#\ (the marks and other dashes are
# not ASCII): every other character ends one. ``_runs`` turns those into spaces, which keeps
# every offset, and splits there. The table names every ASCII character, those kept too: a
# character it lacks would cost str.translate a KeyError raised and caught, once a call.
_ASCII_BREAKS = str.maketrans(
    {c: c if c.isalnum() or c in "_-'.+#\\" else " " for c in map(chr, range(128))}
)
_SEGMENT_SPLIT = re.compile(r"(?<!\d)\.|\.(?!\d)")
_PIECE_RE = re.compile(r"[^-\u2010\u2011_]+")

_GREEK = {
    name: name.removeprefix("var")
    for name in (
        "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu "
        "nu xi omicron pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega"
    ).split()
}
_GREEK.update({name.capitalize(): value for name, value in _GREEK.items()})


# --- folding -------------------------------------------------------------------------------------

_ACRONYM_PLURAL = re.compile(r"[A-Z0-9]*[A-Z][A-Z0-9]*[A-Z0-9]s")
_APOSTROPHES = str.maketrans("", "", "'\u2019")


def fold(text: str) -> str:
    """Lowercase, decompose compatibility characters and drop accents: 'Naïve ﬁt' -> 'naive fit'."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# --- British -> American -------------------------------------------------------------------------

_ISE = re.compile(
    r"(?P<stem>[a-z]{2,}[b-df-hj-np-tv-xz])is"
    r"(?P<suffix>e|ed|es|ing|er|ers|ation|ations|ational|able|ability|abilities)"
)
_ISE_KEEP_ENDINGS = (
    "wise",
    "vise",
    "prise",
    "promise",
    "premise",
    "demise",
    "surmise",
    "chemise",
    "expertise",
    "advertise",
    "chastise",
    "treatise",
    "franchise",
    "merchandise",
    "paradise",
    "despise",
    "exercise",
    "precise",
    "concise",
    "excise",
    "incise",
    "circumcise",
    "sunrise",
    "uprise",
)
_LYSE = re.compile(r"(?P<stem>[a-z]{2,}l)ys(?P<suffix>e|ed|es|ing|er|ers)")
_OUR = re.compile(
    r"(behavi|neighb|col|flav|fav|hon|hum|lab|rum|vap|harb|od|arm|vig|tum|val|savi|sav|endeav"
    r"|clam|cand|rig|splend|parl|demean|ferv|ard)our"
)
_TRE = re.compile(
    r"(?P<stem>[a-z]*(?:cent|met|lit|theat|fib|calib|spect|somb|meag|lust|sab))r"
    r"(?P<suffix>e|es|ed|ing)"
)
_TRE_SUFFIX = {"e": "", "es": "s", "ed": "ed", "ing": "ing"}
_TRE_ENDINGS = tuple("r" + suffix for suffix in _TRE_SUFFIX)  # what every _TRE match ends with
_OGUE = re.compile(r"(?P<stem>[a-z]{3,})ogu(?P<suffix>e|es|ed|ing)")
_OGUE_SUFFIX = {"e": "", "es": "s", "ed": "ed", "ing": "ing"}
_SPELLING_TABLE = (
    (re.compile(r"(de|of)fence"), r"\1fense"),
    (re.compile(r"licenc"), "licens"),  # licence, licences, licenced, licencing
    (re.compile(r"pretence"), "pretense"),
    (re.compile(r"^grey"), "gray"),
    (re.compile(r"aluminium"), "aluminum"),
    (re.compile(r"dgement"), "dgment"),
    (re.compile(r"artefact"), "artifact"),
    (re.compile(r"practis(e|ed|es|ing)$"), r"practic\1"),
    (re.compile(r"manoeuvr"), "maneuver"),
    (re.compile(r"sceptic"), "skeptic"),
    (re.compile(r"^mould"), "mold"),
    (re.compile(r"^amongst$"), "among"),
    (re.compile(r"^whilst$"), "while"),
    (re.compile(r"haem"), "hem"),
    (re.compile(r"paed"), "ped"),
    (re.compile(r"anaem"), "anem"),
    (re.compile(r"^oedem"), "edem"),
    (re.compile(r"^oestr"), "estr"),
    (re.compile(r"^foet"), "fet"),
    (re.compile(r"ischaem"), "ischem"),
    (re.compile(r"leukaem"), "leukem"),
    # Stems of science words written with ae/oe/ph in British English: they cover the derived
    # words no word list has (palaeoclimate, sulphonamide, septicaemia).
    # (after two letters at least: a word's first two letters never change but at a listed start)
    (re.compile(r"(?<=[a-z]{2})aemi"), "emi"),  # septicaemia, hypoglycaemia, bacteraemia
    (re.compile(r"palaeo"), "paleo"),
    (re.compile(r"archaeol"), "archeol"),  # not archaea, archaeal (the microbes)
    (re.compile(r"gynaec"), "gynec"),
    (re.compile(r"anaesth"), "anesth"),
    (re.compile(r"^aesthet"), "esthet"),
    (re.compile(r"^aetiol"), "etiol"),
    (re.compile(r"^oesophag"), "esophag"),
    (re.compile(r"^faec"), "fec"),
    (re.compile(r"diarrhoe"), "diarrhe"),
    (re.compile(r"homoeo"), "homeo"),
    (re.compile(r"coeliac"), "celiac"),
    (re.compile(r"sulph"), "sulf"),
)
# Whether any rewrite of the table applies: most words need none, and one search costs what
# one substitution does. When none applies to the word, none applies after another either.
_SPELLING_ANY = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in _SPELLING_TABLE))
# Letters every rewrite of the table needs one of (a test checks each pattern): searching
# for these costs a third of searching _SPELLING_ANY, and six words in seven have none.
_SPELLING_HINT = re.compile("ae|oe|nc|ey|iu|dg|ef|tis|sc|ou|gst|lst|lph")
_VOWELS = frozenset("aeiou")


def _collapse_ll(word: str) -> str:
    # British doubles the l of an unstressed final syllable (modelling); American does not.
    # Requiring two vowels before the "ll" keeps one-syllable words (fall, tell, small) whole.
    out: list[str] = []
    vowels = 0
    i = 0
    n = len(word)
    while i < n:
        c = word[i]
        if c == "l" and i + 1 < n and word[i + 1] == "l" and vowels >= 2:
            out.append("l")
            i += 2
            continue
        if c in _VOWELS:
            vowels += 1
        out.append(c)
        i += 1
    return "".join(out)


def americanize(word: str) -> str:
    """Rewrite a folded word's British spelling as American (see the module docstring)."""
    # (a word's last letter first: str.endswith parses its arguments, which costs several
    # times a comparison, and this runs for every new word)
    if word[-1:] == "s" and word.endswith(("yses", "theses")):
        return word[:-2] + "is"
    if _SPELLING_HINT.search(word) and _SPELLING_ANY.search(word):
        for pattern, replacement in _SPELLING_TABLE:
            word = pattern.sub(replacement, word)
    # Each fullmatch below is tried only if the word has the letters it needs: a substring
    # test costs a fraction of a failed match, and most words fail them all.
    m = _ISE.fullmatch(word) if "is" in word else None
    if m and not (m["stem"] + "ise").endswith(_ISE_KEEP_ENDINGS):
        word = f"{m['stem']}iz{m['suffix']}"
    else:
        m = _LYSE.fullmatch(word) if "lys" in word else None
        if m:
            word = f"{m['stem']}yz{m['suffix']}"
    if "our" in word:
        word = _OUR.sub(r"\1or", word)
    m = _TRE.fullmatch(word) if word.endswith(_TRE_ENDINGS) else None
    if m:
        word = f"{m['stem']}er{_TRE_SUFFIX[m['suffix']]}"
    m = _OGUE.fullmatch(word) if "ogu" in word else None
    if m:
        word = f"{m['stem']}og{_OGUE_SUFFIX[m['suffix']]}"
    if "ll" in word:
        word = _collapse_ll(word)
    # Last, the generated table, keyed by what the rules above make of a word: one entry serves
    # every spelling they bring together (anaesthetise, anaesthetize -> anesthetize).
    return _VARIANTS.get(word, word)


# --- family key ----------------------------------------------------------------------------------

_IRREGULAR = {
    "learnt": "learn",
    "spelt": "spell",
    "misspelt": "misspel",  # as misspelled leaves it: the British ll goes before this table
    # The plurals of nouns ending in s that would otherwise keep an e (gas, bus).
    "gases": "gas",
    "gasses": "gas",
    "buses": "bus",
    "busses": "bus",
    "dreamt": "dream",
    "burnt": "burn",
    "leapt": "leap",
    "spoilt": "spoil",
    "dwelt": "dwell",
    "matrices": "matrix",
    "vertices": "vertex",
    "indices": "index",
    "appendices": "appendix",
    "simplices": "simplex",
    "apices": "apex",
    "cortices": "cortex",
    "criteria": "criterion",
    "phenomena": "phenomenon",
    "corpora": "corpus",
    "axes": "axis",
    "crises": "crisis",
    "formulae": "formula",
    "radii": "radius",
    "stimuli": "stimulus",
    "nuclei": "nucleus",
    "foci": "focus",
    "loci": "locus",
    "fungi": "fungus",
    "schemata": "schema",
    "lemmata": "lemma",
    # Irregular verbs of research writing, past tense and participle -> the lemma. Not those
    # that are also other words or acronyms: found (to found), bound (upper bound), left,
    # ground (ground truth), saw, fell, rose, lay, lit, led and LED, ran and RAN, fed, sat
    # and SAT, met and MET, won, thought (chain of thought).
    **{
        form: lemma
        for lemma, forms in (
            ("show", "shown"),
            ("choose", "chose chosen"),
            ("take", "took taken"),
            ("write", "wrote written"),
            ("grow", "grew grown"),
            ("draw", "drew drawn"),
            ("hold", "held"),
            ("make", "made"),
            ("know", "knew known"),
            ("give", "gave given"),
            ("see", "seen"),
            ("begin", "began begun"),
            ("seek", "sought"),
            ("teach", "taught"),
            ("bring", "brought"),
            ("build", "built"),
            ("freeze", "froze frozen"),
            ("hide", "hid hidden"),
            ("speak", "spoke spoken"),
            ("understand", "understood"),
            ("undergo", "underwent undergone"),
            ("arise", "arose arisen"),
            ("rise", "risen"),
            ("fall", "fallen"),
            ("break", "broke broken"),
            ("drive", "drove driven"),
            ("shake", "shook shaken"),
            ("forget", "forgot forgotten"),
            ("mislead", "misled"),
            ("overcome", "overcame"),
            ("withdraw", "withdrew withdrawn"),
            ("throw", "threw thrown"),
            ("catch", "caught"),
            ("buy", "bought"),
            ("sell", "sold"),
            ("tell", "told"),
            ("fight", "fought"),
            ("mean", "meant"),
            ("keep", "kept"),
            ("feel", "felt"),
            ("deal", "dealt"),
            ("pay", "paid"),
            ("say", "said"),
            ("send", "sent"),
            ("spend", "spent"),
            ("stand", "stood"),
            ("strike", "struck"),
            ("spin", "spun"),
            ("wear", "wore worn"),
            ("steal", "stole stolen"),
            ("lose", "lost"),
            ("swim", "swam swum"),
            ("sing", "sang sung"),
            ("sink", "sank sunk"),
        )
        for form in forms.split()
    },
    "children": "child",
    "mice": "mouse",
    "men": "man",
    "women": "woman",
    "feet": "foot",
    "teeth": "tooth",
    "geese": "goose",
    "leaves": "leaf",
    "halves": "half",
    "selves": "self",
    "knives": "knife",
    "wolves": "wolf",
    "shelves": "shelf",
}
_IZ_FAMILY = re.compile(
    r"(?P<stem>[a-z]{3,}?)iz"
    r"(?:e|es|ed|ing|er|ers|ation|ations|ational|able|ability|abilities)"
)
_YZ_FAMILY = re.compile(r"(?P<stem>[a-z]{2,}?)yz(?:e|es|ed|ing|er|ers)")
# The noun of an -yze verb is in its family: analysis, analyses (the plural, and the British
# verb: "she analyses") and analyze all meet, as generalization meets generalize.
_YSIS = re.compile(r"(?P<stem>[a-z]{2,}?)ysis")
_S_SINGULAR = frozenset(
    "bias gas atlas canvas alias has was whereas alas lens chaos cosmos ethos pathos logos kudos "
    "thermos news always perhaps christmas texas kansas arkansas pancreas vegas yes".split()
)
_US_PLURALS = frozenset(
    "gpus cpus tpus npus qpus dpus imus grus relus gelus selus elus menus gurus emus haikus "
    "tofus".split()
)
_IS_PLURALS = frozenset("apis kpis guis rois mris uris clis ais taxis emojis wikis skis".split())
_NOT_INFLECTED = frozenset({"embed", "imbed"})


def _is_consonant(word: str, i: int) -> bool:
    c = word[i]
    if c in _VOWELS:
        return False
    if c == "y":
        return i == 0 or not _is_consonant(word, i - 1)
    return True


# Each lowercase letter but y as v (a vowel) or c (a consonant): what _is_consonant says of
# it wherever it stands. Whether a y is a consonant depends on the letter before it.
_VOWEL_OR_CONSONANT = str.maketrans(
    "abcdefghijklmnopqrstuvwxz",
    "".join("v" if c in _VOWELS else "c" for c in "abcdefghijklmnopqrstuvwxz"),
)


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in ``stem``."""
    if stem.isascii() and stem.isalpha() and stem.islower() and "y" not in stem:
        # Letters alone, no y: each VC sequence is a "vc" in the word's letters read as v or c
        # (counted in C, not a call per letter).
        return stem.translate(_VOWEL_OR_CONSONANT).count("vc")
    m = 0
    previous_vowel = False
    for i in range(len(stem)):
        consonant = _is_consonant(stem, i)
        if consonant and previous_vowel:
            m += 1
        previous_vowel = not consonant
    return m


def _has_vowel(stem: str) -> bool:
    if not _VOWELS.isdisjoint(stem):
        return True  # a, e, i, o or u: found in C, without a call per letter
    return any(not _is_consonant(stem, i) for i in range(len(stem)))  # a y after a consonant


def _cvc(stem: str) -> bool:
    """Porter's *o: ends consonant-vowel-consonant, the last not w, x or y (hop, cod, stat)."""
    return (
        len(stem) >= 3
        and _is_consonant(stem, len(stem) - 3)
        and not _is_consonant(stem, len(stem) - 2)
        and _is_consonant(stem, len(stem) - 1)
        and stem[-1] not in "wxy"
    )


def _strip_plural(word: str) -> str:
    if word[-1:] != "s":
        return word  # every rule below is for a word ending in s
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("ies") and len(word) > 3:
        return word[:-3] + "i"
    if word.endswith("ss") or word in _S_SINGULAR:
        return word
    if word.endswith("us") and word not in _US_PLURALS:
        return word
    if word.endswith("is") and word not in _IS_PLURALS:
        return word
    if len(word) <= 3:
        # its, gas, yes; and acronyms whose s is a letter (GPS, FPS): a plural acronym
        # shows itself by a lowercase s (GPs), dropped before folding.
        return word
    return word[:-1]


def _strip_verb(word: str) -> str:
    last = word[-1:]  # -eed and -ed end in d, -ing in g: most words end in neither
    if last == "d":
        if word.endswith("eed"):
            return word[:-1] if _measure(word[:-3]) > 0 else word
        if not word.endswith("ed"):
            return word
        stem = word[:-2]
    elif last == "g" and word.endswith("ing"):
        stem = word[:-3]
    else:
        return word
    if word in _NOT_INFLECTED or not _has_vowel(stem):
        return word
    if stem.endswith("eed"):
        return stem[:-1] if _measure(stem[:-3]) > 0 else stem
    if stem.endswith(("at", "bl", "iz")):
        return stem + "e"
    if len(stem) >= 2 and stem[-1] == stem[-2] and stem[-1] not in "aeiouylsz":
        return stem[:-1]
    if _measure(stem) == 1 and _cvc(stem):
        return stem + "e"
    return stem


# The ASCII words whose term starts with other letters than the word itself, lowercased:
# irregular forms (mice -> mouse), words of the generated table (aetiology -> etiology,
# gaol -> jail) and words starting with a British spelling rewritten there
# (haemoglobin -> hemoglobin, sceptic -> skeptic, oestrogen -> estrogen). Every other ASCII
# word's term starts with the word's own first two letters: the other rules only rewrite
# endings and spellings after them. Search relies on it to pass over words (bridge.search);
# tests/test_search.py checks it on every table and the fixtures' words. A capitalised plural
# loses its s before the table is read (MENs -> men -> man), so each word is listed with an s
# too.
REWRITTEN_WORDS = frozenset(
    form
    for table in (_IRREGULAR, _VARIANTS)
    for word, key in table.items()
    if key[:2] != word[:2]
    for form in (word, word + "s")
)
REWRITTEN_STARTS = tuple(
    literal
    for pattern, replacement in _SPELLING_TABLE
    if (literal := pattern.pattern.strip("^$")).isalpha()
    and pattern.sub(replacement, literal)[:2] != literal[:2]
)

# Words the rules below would merge with a different word ("one" with "on").
_FIXED_KEYS = {"one": "one", "ones": "one"}


def family_key(word: str) -> str:
    """The key a folded, Americanized, all-letter word shares with its inflections."""
    fixed = _FIXED_KEYS.get(word)
    if fixed:
        return fixed
    word = _IRREGULAR.get(word, word)
    # As in americanize, a fullmatch is tried only if the word has the letters it needs.
    m = _IZ_FAMILY.fullmatch(word) if "iz" in word else None
    if m:
        return m["stem"] + "iz"
    m = _YZ_FAMILY.fullmatch(word) if "yz" in word else None
    if m:
        return m["stem"] + "yz"
    m = _YSIS.fullmatch(word) if word[-4:] == "ysis" else None
    if m:
        return m["stem"] + "yz"
    word = _strip_verb(_strip_plural(word))
    last = word[-1:]
    if last == "y" and len(word) > 2 and _has_vowel(word[:-1]):
        word = word[:-1] + "i"
    elif last == "e" and len(word) > 2:
        stem = word[:-1]
        m_value = _measure(stem)
        if m_value > 1 or (m_value == 1 and not _cvc(stem)):
            word = stem
    return word


def _normalize(raw: str, stem: bool) -> str:
    word = raw
    if word[-2:] in ("'s", "\u2019s", "'S", "\u2019S"):
        word = word[:-2]
    if stem and _ACRONYM_PLURAL.fullmatch(word):
        word = word[:-1]
    word = fold(word).translate(_APOSTROPHES)
    if not stem or len(word) < 3 or not word.isascii() or not word.isalpha():
        return word
    return family_key(americanize(word))


# Words repeat across abstracts, so each distinct spelling is normalised once.
# (partial rather than a lambda: a Python frame less for each new word)
_stem_word = lru_cache(maxsize=1 << 17)(partial(_normalize, stem=True))
_fold_word = lru_cache(maxsize=1 << 15)(partial(_normalize, stem=False))


def readings(raw: str, stem: bool = True) -> tuple[str, ...]:
    """The terms a query word stands for: its own, and for a lowercase three-letter word like
    ``gps`` or ``lms`` also the singular of the plural it may be (``gp``: GPs). In capitals
    (``GPS``) it is the acronym alone. () if the word gives no term."""
    term = normalize_word(raw, stem)
    if (
        stem
        and len(term) == 3
        and term[2] == "s"
        and term.isalpha()
        and term.isascii()
        and not _has_vowel(term[:2])
        and not raw.isupper()
    ):
        return (term, term[:2])
    return (term,) if term else ()


def normalize_word(raw: str, stem: bool = True) -> str:
    """The term for one word as written ('Generalisations' -> 'generaliz'); '' if none.

    With ``stem=False`` (author names) the word is only folded: 'LeCun' -> 'lecun'.
    """
    return _stem_word(raw) if stem else _fold_word(raw)


# --- analysis ------------------------------------------------------------------------------------

# What one run found by _TOKEN_RE means: a term ("" for none), or for a run that splits (a
# compound, "cs.LG", a LaTeX command) its tokens relative to the run and its width in positions.
# Runs repeat across papers, so each is worked out once; the cache is dropped when it gets large.
RelativeToken = tuple[str, int, int, int, int]
Entry = str | tuple[int, tuple[RelativeToken, ...]]
_CACHE_LIMIT = 200_000
_entries: dict[bool, dict[str, Entry]] = {True: {}, False: {}}
# The same for the pieces of ASCII text between breaks (``_piece_entry``): most are one run.
_pieces: dict[bool, dict[str, Entry]] = {True: {}, False: {}}


def clear_caches() -> None:
    """Forget every word and run worked out so far, as after a start (for benchmarks that
    measure the analyzer as a new process meets it, several times in one process)."""
    for cache in (*_entries.values(), *_pieces.values()):
        cache.clear()
    _stem_word.cache_clear()
    _fold_word.cache_clear()


def _entry(raw: str, stem: bool) -> Entry:
    cache = _entries[stem]
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    written = raw
    entry: Entry
    if raw.isalnum():
        if raw.isascii() and not raw.islower() and not (stem and _ACRONYM_PLURAL.fullmatch(raw)):
            # "Model" and "MODEL" mean what "model" does (only a capitalised acronym plural
            # differs: LLMs): the one spelling is normalised once, not each new capitalisation.
            # Its entry is filed under both spellings, whichever a text shows first (a title's
            # capitals, mostly, beside the abstract's lowercase).
            raw = raw.lower()
            if raw != written:
                known = cache.get(raw)
                entry = _entry(raw, stem) if known is None else known
                cache[written] = entry
                return entry
        if raw.isalpha() and raw.isascii() and raw.islower():
            # Four in five new runs: a plain lowercase ASCII word, which ``_normalize`` would
            # neither trim, fold nor take for an acronym plural. Its family key straight away.
            entry = family_key(americanize(raw)) if stem and len(raw) >= 3 else raw
        else:
            entry = _stem_word(raw) if stem else _fold_word(raw)  # normalize_word, inlined
    elif raw[0] == "\\":
        greek = _GREEK.get(raw[1:])
        entry = (1, ((greek, 0, 1, len(raw), 1),)) if greek else (0, ())
    elif raw[-1] in "+#":
        entry = raw.lower()
    else:
        tokens: list[RelativeToken] = []
        width = _split_run(raw, 0, 0, stem, tokens.append)
        entry = (width, tuple(tokens))
    cache[written] = entry
    return entry


def _split_run(
    raw: str, start: int, position: int, stem: bool, emit: Callable[[RelativeToken], None]
) -> int:
    """Split a run with dots, hyphens, underscores or marks into words and compounds."""
    bounds: list[tuple[int, int]] = []
    last = 0
    for dot in _SEGMENT_SPLIT.finditer(raw):
        bounds.append((last, dot.start()))
        last = dot.end()
    bounds.append((last, len(raw)))
    for low, high in bounds:
        pieces: list[str] = []
        parts: list[RelativeToken] = []
        for piece in _PIECE_RE.finditer(raw, low, high):
            word = piece.group()
            pieces.append(word)
            term = normalize_word(word, stem)
            if term:
                begin = start + piece.start()
                parts.append((term, position + len(parts), begin, begin + len(word), 1))
        if len(parts) > 1:
            joined = normalize_word("".join(pieces).lower(), stem)
            if joined:
                emit((joined, position, parts[0][2], parts[-1][3], len(parts)))
        for part in parts:
            emit(part)
        position += len(parts)
    return position


def _runs(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Every run ``_TOKEN_RE`` finds in ``text``, and its (start, end): the words to look up.

    For ASCII text (nearly every paper) without the regular expression for most words: one
    regular-expression match costs what some twenty Python steps do, and most runs are a word
    between spaces or punctuation. The text's breaks (``_ASCII_BREAKS``) become spaces, and each
    piece between spaces that is letters and digits alone, maybe with a full stop after it, is
    a run; the other pieces (hyphens, apostrophes, dots inside, C++, LaTeX) are searched in
    place, as ``_TOKEN_RE`` would meet them: a run never holds a break, and its look-ahead
    reads a break just as it reads the end of the piece.
    """
    if not text.isascii():
        runs = list(_TOKEN_RE.finditer(text))
        return list(map(_GROUP, runs)), list(map(_SPAN, runs))
    raws: list[str] = []
    spans: list[tuple[int, int]] = []
    add_raw = raws.append
    add_span = spans.append
    start = 0
    for piece in text.translate(_ASCII_BREAKS).split(" "):
        end = start + len(piece)
        if piece.isalnum():
            add_raw(piece)
            add_span((start, end))
        elif piece:
            if piece[-1] == "." and piece[:-1].isalnum():  # a word ending a sentence
                add_raw(piece[:-1])
                add_span((start, end - 1))
            else:
                for m in _TOKEN_RE.finditer(text, start, end):
                    add_raw(m.group())
                    add_span(m.span())
        start = end + 1  # past the space
    return raws, spans


def _entries_of(text: str, stem: bool) -> tuple[list[Entry], Iterable[int], Iterable[int]]:
    """What each run or piece of ``text`` means (its ``Entry``), with its start and end.

    ASCII text is read piece by piece between its breaks, as ``_runs`` splits it, each piece
    looked up whole (``_piece_entry``): a word with a full stop, a compound or an empty piece
    is then one lookup too, and the pieces, their offsets and entries are listed by map and
    accumulate, in C, leaving the caller's loop one step a word.
    """
    if not text.isascii():
        runs = list(_TOKEN_RE.finditer(text))
        raws = list(map(_GROUP, runs))
        entries = list(map(_entries[stem].get, raws))
        if None in entries:  # words not seen before
            entries = [
                _entry(raw, stem) if e is None else e for raw, e in zip(raws, entries, strict=True)
            ]
        return entries, map(re.Match.start, runs), map(re.Match.end, runs)  # type: ignore[return-value]
    pieces = text.translate(_ASCII_BREAKS).split(" ")
    entries = list(map(_pieces[stem].get, pieces))
    if None in entries:
        entries = [
            _piece_entry(p, stem) if e is None else e for p, e in zip(pieces, entries, strict=True)
        ]
    # Piece i ends after the i + 1 pieces up to it and the i spaces between them.
    lengths = list(map(len, pieces))
    ends = list(map(add, accumulate(lengths), count()))
    return entries, map(sub, ends, lengths), ends  # type: ignore[return-value]


def _piece_entry(piece: str, stem: bool) -> Entry:
    """The entry of a piece of ASCII text between breaks: a plain word's own; for any other
    piece its runs' tokens, relative to the piece, and its width in positions."""
    cache = _pieces[stem]
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    entry: Entry
    if not piece:
        entry = ""  # between two breaks
    elif piece.isalnum():
        run = _entries[stem].get(piece)  # the piece is one run
        entry = _entry(piece, stem) if run is None else run
    elif piece[-1] == "." and piece[:-1].isalnum():  # a word ending a sentence
        word = piece[:-1]
        run = _entries[stem].get(word)
        term = _entry(word, stem) if run is None else run
        assert isinstance(term, str)  # a run of letters and digits is one word
        entry = (1, ((term, 0, 0, len(word), 1),)) if term else (0, ())
    else:
        tokens: list[RelativeToken] = []
        width = 0
        for m in _TOKEN_RE.finditer(piece):
            raw = m.group()
            run = _entries[stem].get(raw)
            if run is None:
                run = _entry(raw, stem)
            begin, finish = m.span()
            if isinstance(run, str):
                if run:
                    tokens.append((run, width, begin, finish, 1))
                    width += 1
            else:
                tokens += [
                    (t, width + r, begin + low, begin + high, n) for t, r, low, high, n in run[1]
                ]
                width += run[0]
        entry = (width, tuple(tokens))
    cache[piece] = entry
    return entry


def scan(text: str, stem: bool = True) -> list[tuple[str, int, int, int, int]]:
    """(term, position, start, end, span) for every token; the hot path behind ``analyze``.

    A compound's joined form comes right before its parts.
    """
    out: list[tuple[str, int, int, int, int]] = []
    append = out.append
    get = _entries[stem].get
    position = 0
    for raw, (start, end) in zip(*_runs(text), strict=True):
        entry = get(raw)
        if entry is None:
            entry = _entry(raw, stem)
        if isinstance(entry, str):
            if entry:
                append((entry, position, start, end, 1))
                position += 1
        else:
            width, tokens = entry
            for term, relative, low, high, span in tokens:
                append((term, position + relative, start + low, start + high, span))
            position += width
    return out


def postings_of(
    text: str,
    stem: bool = True,
    words: list[str] | None = None,
    compounds: list[tuple[str, int, int]] | None = None,
) -> dict[str, list[tuple[int, int, int, int]]]:
    """term -> [(position, start, end, span), ...] in text order: ``scan`` grouped by term.

    For the percolator's word pairs, ``words`` (if given) receives the term at each position
    in order, and ``compounds`` each compound's joined form as (term, position, span): a joined
    form shares its first part's position, so every other token has a position of its own.
    """
    postings: dict[str, list[tuple[int, int, int, int]]] = {}
    find = postings.get
    add_word = ([] if words is None else words).append
    add_compound = ([] if compounds is None else compounds).append
    position = 0
    entries, starts, ends = _entries_of(text, stem)
    for entry, start, end in zip(entries, starts, ends, strict=True):
        if isinstance(entry, str):
            if entry:
                found = find(entry)
                if found is None:
                    postings[entry] = [(position, start, end, 1)]
                else:
                    found.append((position, start, end, 1))
                add_word(entry)
                position += 1
        else:
            width, tokens = entry
            for term, relative, low, high, span in tokens:
                posting = (position + relative, start + low, start + high, span)
                found = find(term)
                if found is None:
                    postings[term] = [posting]
                else:
                    found.append(posting)
                if span == 1:
                    add_word(term)
                else:
                    add_compound((term, position + relative, span))
            position += width
    return postings


def analyze(text: str, stem: bool = True) -> list[Token]:
    """Every token of ``text`` with its position and character offsets (see the module rules)."""
    return [Token(*t) for t in scan(text, stem)]


def terms_of(text: str, stem: bool = True) -> set[str]:
    """The distinct terms of ``text``: what an index or a percolator needs, without offsets."""
    terms: set[str] = set()
    add = terms.add
    get = _entries[stem].get
    for raw in set(_TOKEN_RE.findall(text)):
        entry = get(raw)
        if entry is None:
            entry = _entry(raw, stem)
        if isinstance(entry, str):
            add(entry)
        else:
            for token in entry[1]:
                add(token[0])
    terms.discard("")
    return terms


# A word group is what one word of a query means: ("word", term, start, end) or, for a hyphenated
# compound, ("compound", joined_term, start, end, parts) with parts = ((term, start, end), ...).
WordGroup = tuple


def word_groups(text: str, stem: bool = True) -> list[WordGroup]:
    """The words of ``text`` in order, each compound kept together with its parts."""
    tokens = scan(text, stem)
    groups: list[WordGroup] = []
    i = 0
    while i < len(tokens):
        term, _, start, end, span = tokens[i]
        if span > 1:
            parts = tuple((t[0], t[2], t[3]) for t in tokens[i + 1 : i + 1 + span])
            groups.append(("compound", term, start, end, parts))
            i += 1 + span
        else:
            groups.append(("word", term, start, end))
            i += 1
    return groups
