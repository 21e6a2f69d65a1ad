"""British and American spellings meet; false friends and over-stemming traps stay apart.

The generated table (bridge/query/spelling_data.py, from SCOWL by scripts/spelling_variants.py)
and the rules of bridge/query/normalize.py together; end to end through the store on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bridge.search as search_module
from bridge.models import Paper
from bridge.query import match_paper, normalize, parse_query
from bridge.query.normalize import normalize_word, terms_of
from bridge.query.spelling_data import FALSE_FRIENDS, VARIANTS
from bridge.search import search_store
from bridge.store import Store, search_index
from bridge.store.search_index import _PROBE, index_doc

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def key(word: str) -> str:
    return normalize_word(word)


def finds(query: str, text: str) -> bool:
    return match_paper(parse_query(query), Paper(arxiv_id="0000.00000", title=text)) is not None


# (British, American): every pair must find each other, both ways. The words issue 16 names.
PAIRS = [
    ("aesthetic", "esthetic"),
    ("aesthetics", "esthetics"),
    ("anaesthesia", "anesthesia"),
    ("anaesthetic", "anesthetic"),
    ("archaeology", "archeology"),
    ("archaeological", "archeological"),
    ("palaeontology", "paleontology"),
    ("oesophagus", "esophagus"),
    ("oesophageal", "esophageal"),
    ("oedema", "edema"),
    ("faecal", "fecal"),
    ("faeces", "feces"),
    ("gynaecology", "gynecology"),
    ("aetiology", "etiology"),
    ("haemoglobin", "hemoglobin"),
    ("haemorrhage", "hemorrhage"),
    ("diarrhoea", "diarrhea"),
    ("sulphur", "sulfur"),
    ("sulphate", "sulfate"),
    ("sulphates", "sulfates"),
    ("sulphide", "sulfide"),
    ("analyses", "analyzes"),
    ("analyse", "analyze"),
    ("catalyses", "catalyzes"),
    ("paralyses", "paralyzes"),
    ("practise", "practice"),
    ("practised", "practiced"),
    ("licence", "license"),
    ("licencing", "licensing"),
    ("judgement", "judgment"),
    ("acknowledgement", "acknowledgment"),
    ("catalogue", "catalog"),
    ("dialogue", "dialog"),
    ("analogue", "analog"),
    ("fibre", "fiber"),
    ("goitre", "goiter"),
    ("sceptre", "scepter"),
    ("calibre", "caliber"),
    ("biassed", "biased"),
    ("worshipper", "worshiper"),
    ("modelling", "modeling"),
    ("ageing", "aging"),
    ("behaviour", "behavior"),
    ("tumour", "tumor"),
    ("optimisation", "optimization"),
    ("mould", "mold"),
    ("plough", "plow"),
    ("jewellery", "jewelry"),
    ("connexion", "connection"),
]


@pytest.mark.parametrize(("british", "american"), PAIRS)
def test_each_spelling_finds_the_other(british: str, american: str) -> None:
    assert key(british) == key(american)
    assert finds(british, f"A note on {american} in practice")
    assert finds(american, f"A note on {british} in practice")
    assert finds(british.capitalize(), american.upper())


# (British, American): pairs of different words that a variant list would merge. Issue 16 names
# the first seven; the reason for each is in spelling_data.FALSE_FRIENDS.
KEPT_APART = [
    ("draught", "draft"),
    ("draughts", "drafts"),
    ("tyre", "tire"),
    ("tyres", "tires"),
    ("tonne", "ton"),
    ("tonnes", "tons"),
    ("disc", "disk"),
    ("discs", "disks"),
    ("programme", "program"),
    ("programmes", "programs"),
    ("philtre", "filter"),
    ("gauge", "gage"),
    ("gauges", "gages"),
    ("storey", "story"),
    ("kerb", "curb"),
    ("cheque", "check"),
]


@pytest.mark.parametrize(("british", "american"), KEPT_APART)
def test_false_friends_stay_apart(british: str, american: str) -> None:
    assert key(british) != key(american)
    assert not finds(british, american)
    assert not finds(american, british)


def test_the_false_friends_listed_in_the_data_are_the_ones_tested() -> None:
    listed = {(b, a) for b, a, _ in FALSE_FRIENDS}
    tested = set(KEPT_APART)
    assert {pair for pair in listed if pair != ("metre", "meter")} <= tested
    for british, american, why in FALSE_FRIENDS:
        assert why, british
        assert VARIANTS.get(british) != american


# Query -> words it must not find: the existing negatives and over-stemming traps.
TRAPS = {
    "generalization": "general generally generalist general-purpose generality",
    "normal": "normalisation normalization normalise normalized",
    "real": "realise realised realize realization",
    "organ": "organisation organization organise organized",
    "analysis": "analyst analytic analytical",
    "program": "programme programmes",
}


@pytest.mark.parametrize("query", sorted(TRAPS))
def test_traps_stay_apart(query: str) -> None:
    for word in TRAPS[query].split():
        assert not finds(query, f"Results on {word} methods"), (query, word)
        assert not finds(word, f"Results on {query} methods"), (word, query)


def test_general_relativity_does_not_find_generalization() -> None:
    assert not finds("generalization", "Tests of general relativity with pulsars")
    assert not finds('"general relativity"', "Generalization of relativistic models")


# --- inflections from the lemma ------------------------------------------------------------------

# Common verbs of research writing, with their inflections written out (regular English spelling:
# e dropped, consonant doubled, y -> ied), and the British spelling where there is one.
VERBS = {
    "analyze": "analyzes analyzed analyzing analyse analyses analysed analysing",
    "optimize": "optimizes optimized optimizing optimise optimises optimised optimising",
    "model": "models modeled modeling modelled modelling",
    "label": "labels labeled labeling labelled labelling",
    "train": "trains trained training",
    "learn": "learns learned learning learnt",
    "evaluate": "evaluates evaluated evaluating",
    "estimate": "estimates estimated estimating",
    "compute": "computes computed computing",
    "predict": "predicts predicted predicting",
    "generate": "generates generated generating",
    "classify": "classifies classified classifying",
    "study": "studies studied studying",
    "apply": "applies applied applying",
    "embed": "embeds embedded embedding",
    "encode": "encodes encoded encoding",
    "decode": "decodes decoded decoding",
    "fine-tune": "fine-tunes fine-tuned fine-tuning",
    "sample": "samples sampled sampling",
    "cluster": "clusters clustered clustering",
    "benchmark": "benchmarks benchmarked benchmarking",
    "propose": "proposes proposed proposing",
    "improve": "improves improved improving",
    "achieve": "achieves achieved achieving",
    "outperform": "outperforms outperformed outperforming",
    "align": "aligns aligned aligning",
    "distill": "distills distilled distilling distil distils",
    "catalyze": "catalyzes catalyzed catalyzing catalyse catalyses catalysed catalysing",
    "practice": "practices practiced practicing practise practises practised practising",
    "license": "licenses licensed licensing licence licences licencing",
    "center": "centers centered centering centre centres centred centring",
    "plan": "plans planned planning",
    "stop": "stops stopped stopping",
    "transfer": "transfers transferred transferring",
    "control": "controls controlled controlling",
    "travel": "travels traveled traveling travelled travelling",
    # irregular
    "show": "shows showed showing shown",
    "choose": "chooses chose chosen choosing",
    "take": "takes took taken taking",
    "write": "writes wrote written writing",
    "grow": "grows grew grown growing",
    "hold": "holds held holding",
    "make": "makes made making",
    "give": "gives gave given giving",
    "begin": "begins began begun beginning",
    "seek": "seeks sought seeking",
    "build": "builds built building",
    "freeze": "freezes froze frozen freezing",
    "understand": "understands understood understanding",
    "undergo": "undergoes underwent undergone undergoing",
    "mislead": "misleads misled misleading",
    "withdraw": "withdraws withdrew withdrawn withdrawing",
}

# Irregular forms that are also other words stay out of the verb's family.
NOT_INFLECTIONS = {
    "find": "found",
    "bind": "bound",
    "leave": "left",
    "lead": "led LED",
    "run": "ran RAN",
    "think": "thought",
    "grind": "ground",
}

NOUNS = {
    "hypothesis": "hypotheses",
    "analysis": "analyses",
    "matrix": "matrices",
    "vertex": "vertices",
    "index": "indices",
    "criterion": "criteria",
    "phenomenon": "phenomena",
    "corpus": "corpora",
    "axis": "axes",
    "formula": "formulae formulas",
    "radius": "radii",
    "stimulus": "stimuli",
    "nucleus": "nuclei",
    "schema": "schemata schemas",
    "policy": "policies",
    "process": "processes",
    "class": "classes",
    "bias": "biases",
    "study": "studies",
    "behaviour": "behaviours behavior behaviors",
    "tumour": "tumours tumor tumors",
    "aetiology": "aetiologies etiology etiologies",
    "oesophagus": "esophagus",
    "sulphate": "sulphates sulfate sulfates",
    "fibre": "fibres fiber fibers",
    "catalogue": "catalogues catalog catalogs",
    "leaf": "leaves",
    "child": "children",
    "datum": "",
}


@pytest.mark.parametrize("lemma", sorted(VERBS))
def test_every_inflection_of_a_research_verb_finds_the_lemma(lemma: str) -> None:
    for form in VERBS[lemma].split():
        assert finds(lemma, f"We {form} it"), (lemma, form)
        assert finds(form, f"To {lemma} it"), (form, lemma)


@pytest.mark.parametrize("lemma", sorted(NOT_INFLECTIONS))
def test_irregular_forms_that_are_other_words_stay_apart(lemma: str) -> None:
    for form in NOT_INFLECTIONS[lemma].split():
        assert key(form) != key(lemma), (lemma, form)


@pytest.mark.parametrize("lemma", sorted(NOUNS))
def test_every_form_of_a_research_noun_finds_the_lemma(lemma: str) -> None:
    for form in NOUNS[lemma].split():
        assert key(form) == key(lemma), (lemma, form)


# Made-up words of the shapes research verbs take: a stem ending in a vowel and one consonant
# for -ize/-ise/-ate (tokenize, calibrate), or in two consonants for plain verbs (mask, adapt).
_STEMS = st.from_regex(r"[bdfgklmnpst][aeiou][bdfgklmnpst][aeiou][lnrt]", fullmatch=True)
_PLAIN = st.from_regex(
    r"[bdfgklmnpst][aeiou][bdfgklmnpst][aeiou](?:nd|rk|lt|st|sk|rm|ct|pt)", fullmatch=True
)


@settings(max_examples=300, deadline=None)
@given(_STEMS, st.sampled_from(["ize", "ise", "ate"]))
def test_regular_inflections_of_derived_verbs_share_the_lemma_key(stem: str, suffix: str) -> None:
    lemma = stem + suffix
    forms = [lemma + "s", lemma + "d", lemma[:-1] + "ing"]
    if suffix != "ate":
        forms += [lemma[:-1] + "ation", lemma[:-1] + "ations", lemma + "r", lemma + "rs"]
        forms.append(stem + ("ize" if suffix == "ise" else "ise"))  # the other spelling
    target = key(lemma)
    for form in forms:
        assert key(form) == target, (lemma, form)


@settings(max_examples=300, deadline=None)
@given(_PLAIN)
def test_regular_inflections_of_plain_verbs_and_nouns_share_the_lemma_key(lemma: str) -> None:
    for form in (lemma + "s", lemma + "ed", lemma + "ing"):
        assert key(form) == key(lemma), (lemma, form)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(VARIANTS)), st.sampled_from(["", "s", "es"]))
def test_a_table_word_matches_its_american_spelling_and_case_does_not_matter(
    british: str, ending: str
) -> None:
    american = VARIANTS[british]
    assert key(british) == key(american)
    assert key(british.upper()) == key(american) or len(british) <= 3
    assert key(british.capitalize()) == key(american.capitalize())


# --- the generated table -------------------------------------------------------------------------


def test_the_table_is_generated_from_a_named_source() -> None:
    from bridge.query import spelling_data

    assert spelling_data.SOURCE.startswith("SCOWL")
    assert len(VARIANTS) > 1000
    for british, american in VARIANTS.items():
        assert british.isascii() and british.isalpha() and british.islower(), british
        assert american.isascii() and american.isalpha() and american.islower(), american
        assert british != american


def test_every_table_word_whose_head_changes_is_never_passed_over_by_search() -> None:
    """Search passes over a word unanalysed when its first two letters cannot start a wanted
    term; a table word whose term starts otherwise (aetiology -> etiolog) must be analysed."""
    for british in VARIANTS:
        for word in (british, british.capitalize(), british + "s"):
            term = normalize_word(word)
            if term[:2] != word[:2].lower():
                assert not search_module._cannot_hold(word, frozenset(), frozenset()), word


def test_the_index_fingerprint_sees_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A change of the table changes what the index stores for the fingerprint's probe, so a
    stored index built with another table is rebuilt."""
    with_table = index_doc(_PROBE)
    monkeypatch.setattr(normalize, "_VARIANTS", {})
    fresh = {True: search_index._Chunks(True), False: search_index._Chunks(False)}
    monkeypatch.setattr(search_index, "_CHUNKS", fresh)
    normalize._stem_word.cache_clear()
    normalize._entries[True].clear()
    try:
        without_table = index_doc(_PROBE)
    finally:
        monkeypatch.undo()
        normalize._stem_word.cache_clear()
        normalize._entries[True].clear()
    assert with_table != without_table
    assert index_doc(_PROBE) == with_table


# --- end to end through the store ----------------------------------------------------------------

STORE_PAPERS = [
    ("s1", "Aetiology of oesophageal cancer", "We analyse faecal samples and haemoglobin."),
    ("s2", "Etiology of esophageal cancer", "We analyze fecal samples and hemoglobin."),
    ("s3", "Sulphur and sulphate in palaeontology", "Biassed estimates of judgement."),
    ("s4", "Sulfur and sulfates in paleontology", "Biased estimates of judgment."),
    ("s5", "A draught model for tyre wear", "A research programme on disc storage."),
    ("s6", "A draft model for tire wear", "A program on disk storage."),
    ("s7", "General relativity, normal forms and real organs", "A generalist agent."),
    ("s8", "Generalisation, normalisation, realisation", "Organisation of the organiser."),
]

SEARCHES = [
    ("aetiology", {"s1", "s2"}),
    ("etiology", {"s1", "s2"}),
    ("oesophageal", {"s1", "s2"}),
    ("fecal", {"s1", "s2"}),
    ("haemoglobin", {"s1", "s2"}),
    ("analyses", {"s1", "s2"}),
    ("sulfur", {"s3", "s4"}),
    ("sulphates", {"s3", "s4"}),
    ("paleontology", {"s3", "s4"}),
    ("biased", {"s3", "s4"}),
    ("judgement", {"s3", "s4"}),
    ('"sulfur and sulphate"', {"s3", "s4"}),
    ("draft", {"s6"}),
    ("draught", {"s5"}),
    ("tyre", {"s5"}),
    ("tire", {"s6"}),
    ("programme", {"s5"}),
    ("program", {"s6"}),
    ("disc", {"s5"}),
    ("disk", {"s6"}),
    ("general", {"s7"}),
    ("generalization", {"s8"}),
    ("normal", {"s7"}),
    ("normalization", {"s8"}),
    ("real", {"s7"}),
    ("realize", {"s8"}),
    ("organ", {"s7"}),
    ("organization", {"s8"}),
]


@pytest.fixture
def spelling_store(store: Store) -> Store:
    store.add_papers([Paper(arxiv_id=i, title=t, abstract=a) for i, t, a in STORE_PAPERS], now=T0)
    return store


def test_searches_through_the_store(spelling_store: Store) -> None:
    for query, want in SEARCHES:
        results = search_store(spelling_store, query, limit=50)
        got = {item.stored.paper.arxiv_id for item in results.items}
        assert got == want, query
        # The same meaning as a subscription's.
        parsed = parse_query(query)
        brute = {
            s.paper.arxiv_id
            for s in spelling_store.iter_papers()
            if match_paper(parsed, s.paper) is not None
        }
        assert brute == want, query


def test_terms_of_a_british_abstract_are_the_american_ones() -> None:
    british = terms_of("The aetiology of oedema: haemoglobin, sulphate and faecal analyses.")
    american = terms_of("The etiology of edema: hemoglobin, sulfate and fecal analyzes.")
    assert british == american


# --- the generator, on word lists shaped like SCOWL's --------------------------------------------


def _generator():  # scripts/ is not a package: load the script as a module
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "spelling_variants.py"
    spec = importlib.util.spec_from_file_location("spelling_variants", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generator_pairs_what_the_lists_hold_and_refuses_false_friends(tmp_path) -> None:
    lists = {
        "english-words.10": "jail biased filter story draft cassette cassettes",
        "american-words.10": "sulfur esthetic performative drafty casettes",
        "british-words.10": "sulphur aesthetic gaol biassed philtre storey draughty draught",
        "british-words.20": "preformative",
    }
    for name, words in lists.items():
        (tmp_path / name).write_text("\n".join(words.split()) + "\n")
    generator = _generator()
    pairs = set(generator.derive_pairs(tmp_path, 80))
    assert {
        ("sulphur", "sulfur"),
        ("aesthetic", "esthetic"),
        ("gaol", "jail"),
        ("biassed", "biased"),
        ("draughty", "drafty"),
    } <= pairs
    british = {b for b, _ in pairs}
    # false friends, and a prefix taken for an -re ending
    assert not british & {"philtre", "storey", "draught", "preformative"}
    # A pair that would split the family of a common word is refused: cassette would no longer
    # find cassettes.
    words = set().union(*(set(w.split()) for w in lists.values()))
    common = set(lists["english-words.10"].split())
    entries = generator.consistent(generator.table(sorted(pairs)), words, common)
    assert "cassettes" not in entries
    assert entries.get("gaol") == "jail"
