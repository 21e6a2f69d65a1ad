"""The arXiv listing and API parsers, on real captured responses and on hostile input."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from bridge import ids
from bridge.models import Paper, ParseProblem, ParseResult
from bridge.sources import arxiv_parse
from bridge.sources.arxiv_parse import parse_api, parse_listing, split_authors
from bridge.text import clean_text

ARXIV = Path(__file__).parent / "fixtures" / "arxiv"
RSS_AI = (ARXIV / "rss_cs.AI_2026-04-27_excerpt.xml").read_bytes()
RSS_MULTI = (ARXIV / "rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_excerpt.xml").read_bytes()
API_NEW = (ARXIV / "api_query_transformer_cs.LG_2026-06-14.xml").read_bytes()
API_LEGACY = (ARXIV / "api_query_all-Einstein_2018-02-05_legacy.xml").read_bytes()

RSS_URL = "https://rss.arxiv.org/rss/cs.LG+cs.AI+cs.CL+stat.ML"
ATOM_URL = "https://rss.arxiv.org/atom/cs.LG+cs.AI+cs.CL+stat.ML"
API_URL = "https://export.arxiv.org/api/query?search_query=all:transformer"

ATOM_NS = "http://www.w3.org/2005/Atom"
ARXIV_NS = "http://arxiv.org/schemas/atom"
DC_NS = "http://purl.org/dc/elements/1.1/"

# (parser, document, closing tag of one record) for every real capture.
FIXTURES = [
    (parse_listing, RSS_AI, b"</item>"),
    (parse_listing, RSS_MULTI, b"</item>"),
    (parse_api, API_NEW, b"</entry>"),
    (parse_api, API_LEGACY, b"</entry>"),
]

# Hypothesis budgets: enough to find crashes, small enough that the file runs in seconds.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DOCUMENTS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def by_id(result: ParseResult) -> dict[str, Paper]:
    return {paper.arxiv_id: paper for paper in result.papers}


def assert_well_formed(result: ParseResult, url: str) -> None:
    assert isinstance(result, ParseResult)
    for paper in result.papers:
        assert isinstance(paper, Paper)
        assert paper.arxiv_id and ids.split_arxiv_id(paper.arxiv_id) == (paper.arxiv_id, None)
        assert paper.title and paper.title == clean_text(paper.title)
        assert paper.source == "arxiv"
        assert all(author and author == clean_text(author) for author in paper.authors)
        assert paper.announce_type in (None, "new", "cross", "replace", "replace-cross")
    for problem in result.problems:
        assert isinstance(problem, ParseProblem)
        assert problem.source == "arxiv" and problem.url == url and problem.problem
        # The parser's last-resort guards turn its own bugs into problems; none may fire.
        assert not problem.problem.startswith(("parser failed", "item could not be read"))


# --- the listing feed, RSS 2.0 --------------------------------------------------------------


def test_cs_ai_listing_has_three_new_papers():
    result = parse_listing(RSS_AI, "https://rss.arxiv.org/rss/cs.AI")

    assert result.problems == []
    assert result.total_results is None
    assert [p.arxiv_id for p in result.papers] == ["2604.21935", "2604.21936", "2604.21937"]
    assert {p.announce_type for p in result.papers} == {"new"}
    assert {p.version for p in result.papers} == {1}
    assert {p.listed_on for p in result.papers} == {date(2026, 4, 27)}
    first, second, third = result.papers
    assert first.title == (
        "Math Takes Two: A test for emergent mathematical reasoning in communication"
    )
    assert first.abstract.startswith("Although language models demonstrate remarkable")
    assert first.authors == ("Michael Cooper", "Samuel Cooper")
    assert first.categories == ("cs.AI", "cs.LG")
    assert first.primary_category is None
    assert first.pdf_url == "https://arxiv.org/pdf/2604.21935v1"
    assert first.source == "arxiv"
    assert first.published_at is None and first.updated_at is None
    assert first.doi is None and first.journal_ref is None
    # LaTeX stays exactly as written.
    assert r"\textbf{adaptability}, the ability" in second.abstract
    assert len(second.authors) == 18 and second.authors[-1] == "Bennett A. Landman"
    assert second.categories == ("cs.AI", "cs.CV", "cs.MA")
    assert len(third.authors) == 17 and third.authors[0] == "Lisheng Zhang"


def test_multi_category_listing_has_new_cross_and_replace():
    result = parse_listing(RSS_MULTI, RSS_URL)

    assert result.problems == []
    assert [(p.arxiv_id, p.version, p.announce_type) for p in result.papers] == [
        ("2609.26811", 1, "new"),
        ("2609.26820", 1, "new"),
        ("2205.06398", 2, "cross"),
        ("2009.13987", 3, "replace"),
    ]
    papers = by_id(result)
    cross = papers["2205.06398"]
    assert cross.doi == "10.1093/bioinformatics/btac431"
    assert cross.categories == ("stat.ME", "stat.AP", "stat.ML")
    assert cross.authors == ("Pritam Dey", "Zhengwu Zhang", "David B. Dunson")
    assert cross.pdf_url == "https://arxiv.org/pdf/2205.06398v2"
    replace = papers["2009.13987"]
    assert replace.is_revision_listing
    assert replace.title == "Random Polytope Descriptors"
    assert replace.pdf_url == "https://arxiv.org/pdf/2009.13987v3"
    assert replace.abstract.startswith("We introduce a class of random polytopes")
    assert papers["2609.26811"].authors == ("Fabien Polly",)
    assert papers["2609.26811"].doi is None
    # The announcement day in the feed's own timezone (00:00 -0400), not the UTC date.
    assert {p.listed_on for p in result.papers} == {date(2026, 9, 24)}
    for paper in result.papers:
        assert "Announce Type" not in paper.abstract
        assert not paper.abstract.startswith("arXiv:")
        assert "\n" not in paper.abstract


def test_str_and_bytes_give_the_same_result():
    # The multi-category fixture has an encoding declaration, which lxml refuses in a str.
    for parse, document, _ in FIXTURES:
        assert parse(document.decode("utf-8"), RSS_URL) == parse(document, RSS_URL)


def test_declared_encoding_is_honoured_for_bytes_and_ignored_for_str():
    template = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<rss version="2.0"><channel><item>'
        "<title>Kollár</title><guid>oai:arXiv.org:2501.00001v1</guid>"
        "</item></channel></rss>"
    )
    as_bytes = parse_listing(template.encode("latin-1"), RSS_URL)
    as_str = parse_listing(template, RSS_URL)
    assert [p.title for p in as_bytes.papers] == ["Kollár"]
    assert [p.title for p in as_str.papers] == ["Kollár"]


def test_listing_reads_journal_reference_and_authors_with_affiliations():
    item = (
        b"<arxiv:DOI>10.1093/bioinformatics/btac431</arxiv:DOI>\n"
        b"      <arxiv:journal_reference>Bioinformatics 38 (2022), 4145-4151"
        b"</arxiv:journal_reference>\n"
        b"      <dc:creator>Pritam Dey (Duke University, Durham, NC), Zhengwu Zhang "
        b"(University of North Carolina, Chapel Hill), David B. Dunson</dc:creator>"
    )
    original = b"<arxiv:DOI>10.1093/bioinformatics/btac431</arxiv:DOI>\n      <dc:creator>"
    original += b"Pritam Dey, Zhengwu Zhang, David B. Dunson</dc:creator>"
    assert original in RSS_MULTI
    cross = by_id(parse_listing(RSS_MULTI.replace(original, item), RSS_URL))["2205.06398"]
    assert cross.journal_ref == "Bioinformatics 38 (2022), 4145-4151"
    assert cross.authors == ("Pritam Dey", "Zhengwu Zhang", "David B. Dunson")


def test_empty_listing_is_not_a_problem():
    weekend = RSS_AI[: RSS_AI.index(b"<item>")] + b"</channel></rss>"
    assert parse_listing(weekend, RSS_URL) == ParseResult([], [])


def test_announce_type_falls_back_to_the_description_prefix():
    damaged = RSS_MULTI.replace(b"<arxiv:announce_type>cross</arxiv:announce_type>", b"")
    assert by_id(parse_listing(damaged, RSS_URL))["2205.06398"].announce_type == "cross"


def test_link_is_the_id_when_the_guid_is_missing():
    damaged = RSS_MULTI.replace(b'<guid isPermaLink="false">oai:arXiv.org:2009.13987v3</guid>', b"")
    paper = by_id(parse_listing(damaged, RSS_URL))["2009.13987"]
    # The version is still known from the "arXiv:2009.13987v3 Announce Type" prefix.
    assert paper.version == 3
    assert paper.pdf_url == "https://arxiv.org/pdf/2009.13987v3"


# --- the listing feed, Atom -----------------------------------------------------------------


def atom_listing_from_rss(rss: bytes) -> bytes:
    """The rss.arxiv.org/atom form of an RSS listing, shaped as sources.md section 3a says."""
    channel = etree.fromstring(rss).find("channel")
    assert channel is not None
    feed = etree.Element(
        f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS, "arxiv": ARXIV_NS, "dc": DC_NS}
    )

    def add(parent, tag, text=None, **attrib):
        element = etree.SubElement(parent, tag, {k: v for k, v in attrib.items() if v})
        element.text = text
        return element

    add(feed, f"{{{ATOM_NS}}}id", "http://rss.arxiv.org/atom/cs.LG+cs.AI+cs.CL+stat.ML")
    add(feed, f"{{{ATOM_NS}}}title", channel.findtext("title"))
    add(feed, f"{{{ATOM_NS}}}updated", "2026-09-24T08:58:05.941605+00:00")
    add(feed, f"{{{ATOM_NS}}}link", href=ATOM_URL, rel="self", type="application/atom+xml")
    add(feed, f"{{{ATOM_NS}}}subtitle", channel.findtext("description"))
    for item in channel.iter("item"):
        entry = add(feed, f"{{{ATOM_NS}}}entry")
        add(entry, f"{{{ATOM_NS}}}id", item.findtext("guid"))
        add(entry, f"{{{ATOM_NS}}}title", item.findtext("title"))
        # Build time, not the announcement day: a parser must not take this as listed_on.
        add(entry, f"{{{ATOM_NS}}}updated", "2026-09-24T08:58:05.942190+00:00")
        add(entry, f"{{{ATOM_NS}}}link", href=item.findtext("link"), rel="alternate")
        add(entry, f"{{{ATOM_NS}}}summary", item.findtext("description"))
        for category in item.iter("category"):
            add(entry, f"{{{ATOM_NS}}}category", term=category.text)
        published = parsedate_to_datetime(item.findtext("pubDate") or "").isoformat()
        add(entry, f"{{{ATOM_NS}}}published", published)
        for child in item:
            if isinstance(child.tag, str) and child.tag.startswith(("{" + ARXIV_NS, "{" + DC_NS)):
                add(entry, child.tag, child.text)
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def test_atom_listing_reads_like_the_rss_listing():
    atom = atom_listing_from_rss(RSS_MULTI)
    assert b"<id>oai:arXiv.org:2205.06398v2</id>" in atom
    assert b"<published>2026-09-24T00:00:00-04:00</published>" in atom
    assert b'<category term="stat.ME"/>' in atom

    from_atom = parse_listing(atom, ATOM_URL)
    assert from_atom.problems == []
    assert from_atom.papers == parse_listing(RSS_MULTI, RSS_URL).papers
    assert parse_listing(atom_listing_from_rss(RSS_AI), ATOM_URL).papers == (
        parse_listing(RSS_AI, RSS_URL).papers
    )


def test_atom_listing_entry_from_the_arxiv_documentation():
    atom = f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="{ATOM_NS}" xmlns:arxiv="{ARXIV_NS}" xmlns:dc="{DC_NS}">
  <id>http://rss.arxiv.org/atom/math.OC</id>
  <title>math.OC updates on arXiv.org</title>
  <updated>2024-02-23T16:08:30.941605+00:00</updated>
  <entry>
    <id>oai:arXiv.org:2203.01250v3</id>
    <title>Mass concentration in rescaled first order integral functionals</title>
    <updated>2024-02-23T16:08:30.942190+00:00</updated>
    <link href="https://arxiv.org/abs/2203.01250" rel="alternate" type="text/html"/>
    <summary>arXiv:2203.01250v3 Announce Type: replace-cross 
Abstract: We consider first order local minimization problems of the form $\\min \\int_{{\\mathbb{{R}}^N}}f(u,\\nabla u)$.</summary>
    <category term="math.AP"/>
    <category term="math.OC"/>
    <published>2024-02-23T00:00:00-05:00</published>
    <arxiv:announce_type>replace-cross</arxiv:announce_type>
    <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
    <arxiv:journal_reference>Journal de l'\\'Ecole polytechnique - Math\\'ematiques, Tome 11 (2024), pp. 431-472</arxiv:journal_reference>
    <arxiv:DOI>10.5802/jep.257</arxiv:DOI>
    <dc:creator>Antonin Monteil, Paul Pegon</dc:creator>
  </entry>
</feed>"""
    [paper] = parse_listing(atom, "https://rss.arxiv.org/atom/math.OC").papers
    assert (paper.arxiv_id, paper.version, paper.announce_type) == (
        "2203.01250",
        3,
        "replace-cross",
    )
    assert paper.abstract == (
        r"We consider first order local minimization problems of the form "
        r"$\min \int_{\mathbb{R}^N}f(u,\nabla u)$."
    )
    assert paper.categories == ("math.AP", "math.OC")
    assert paper.listed_on == date(2024, 2, 23)
    assert paper.journal_ref == (
        r"Journal de l'\'Ecole polytechnique - Math\'ematiques, Tome 11 (2024), pp. 431-472"
    )
    assert paper.doi == "10.5802/jep.257"
    assert paper.authors == ("Antonin Monteil", "Paul Pegon")


# --- the author splitter --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("creator", "names"),
    [
        ("Michael Cooper, Samuel Cooper", ("Michael Cooper", "Samuel Cooper")),
        ("Fabien Polly", ("Fabien Polly",)),
        (
            "Jane Doe (MIT, Cambridge, MA, USA), John Roe",
            ("Jane Doe", "John Roe"),
        ),
        (
            "A. One (Dept. of CS, Univ. X), B. Two (Lab Y, Inc.), C. Three",
            ("A. One", "B. Two", "C. Three"),
        ),
        ("A. One (Dept. (Physics), Univ. X, Z), B. Two", ("A. One", "B. Two")),
        ("  A.\n  One ,B. Two,, ", ("A. One", "B. Two")),
        ("Renée Müller (ETH Zürich), János Kollár", ("Renée Müller", "János Kollár")),
        ("A. One (unclosed, B. Two", ("A. One", "B. Two")),
        ("A. One), B. Two", ("A. One", "B. Two")),
        ("", ()),
        ("(Affiliation only, nobody)", ()),
    ],
)
def test_split_authors(creator, names):
    assert split_authors(creator) == names


@FAST
@given(st.text())
def test_split_authors_never_raises_and_gives_clean_names(creator):
    for name in split_authors(creator):
        assert name and name == clean_text(name)
        assert "," not in name


@FAST
@given(st.text(alphabet=st.sampled_from("Ab. ,-\t\n\x01\u00a0é&;|") | st.characters(), max_size=40))
def test_split_authors_without_parentheses_is_clean_text_of_each_piece(creator):
    creator = creator.replace("(", "").replace(")", "")
    expected = tuple(name for name in map(clean_text, creator.split(",")) if name)
    assert split_authors(creator) == expected


# --- the API --------------------------------------------------------------------------------


def test_current_api_response():
    result = parse_api(API_NEW, API_URL)

    assert result.problems == []
    assert result.total_results == 28946
    assert [p.arxiv_id for p in result.papers] == [
        "2606.13677",
        "2606.13591",
        "2606.13568",
        "2606.13515",
        "2606.13501",
    ]
    mana = result.papers[0]
    assert mana.title == "Mana: Dexterous Manipulation of Articulated Tools"
    assert mana.version == 1
    assert mana.authors == ("Zhao-Heng Yin", "Guanya Shi", "Pieter Abbeel", "C. Karen Liu")
    assert mana.primary_category == "cs.RO"
    assert mana.categories == ("cs.RO", "cs.AI", "cs.CV", "cs.LG")
    assert mana.published_at == datetime(2026, 6, 11, 17, 59, 49, tzinfo=UTC)
    assert mana.updated_at == datetime(2026, 6, 11, 17, 59, 49, tzinfo=UTC)
    assert mana.comment == "Project Page: https://zhaohengyin.github.io/mana"
    assert mana.pdf_url == "https://arxiv.org/pdf/2606.13677v1"
    # &lt; in the XML is a literal "<" in the abstract.
    assert "(<1 minute per tool)" in mana.abstract
    # The API gives no listing day: submitted Thursday 13:59 US Eastern, a minute before
    # arXiv's deadline, so announced that evening and listed on Friday (an estimate).
    assert mana.listed_on == date(2026, 6, 12) and mana.listed_on_estimated
    assert mana.announce_type is None
    assert mana.journal_ref is None and mana.doi is None

    papers = by_id(result)
    assert papers["2606.13591"].primary_category == "cs.AI"
    assert papers["2606.13568"].categories == ("cs.LG", "math-ph")
    assert papers["2606.13568"].comment is None
    gf_dit = papers["2606.13501"]
    assert gf_dit.authors[0] == "Xinwei Qiang" and len(gf_dit.authors) == 9
    assert r"up to 6.01$\times$" in gf_dit.abstract
    assert "approximately 60 $μ$s." in gf_dit.abstract
    # Paragraph breaks ("quality.\n  This paper") collapse to one space.
    assert "service quality. This paper argues" in gf_dit.abstract


def test_api_doi_journal_ref_and_a_doi_link_that_looks_like_a_pdf():
    extra = (
        b'<link title="doi" href="https://doi.org/10.1000/pdf/182" rel="related"/>\n'
        b"    <arxiv:doi>10.1000/pdf/182</arxiv:doi>\n"
        b"    <arxiv:journal_ref>Proc. CoRL 2026, 1-12</arxiv:journal_ref>\n"
        b'    <link href="https://arxiv.org/pdf/2606.13677v1"'
    )
    enriched = API_NEW.replace(b'<link href="https://arxiv.org/pdf/2606.13677v1"', extra, 1)
    mana = parse_api(enriched, API_URL).papers[0]
    assert mana.doi == "10.1000/pdf/182"
    assert mana.journal_ref == "Proc. CoRL 2026, 1-12"
    assert mana.pdf_url == "https://arxiv.org/pdf/2606.13677v1"


def test_api_pdf_link_found_without_title_pdf():
    # Late 2025 the API stopped writing title="pdf" on the PDF link.
    untitled = API_NEW.replace(b' title="pdf"', b"")
    assert b'title="pdf"' not in untitled
    assert parse_api(untitled, API_URL) == parse_api(API_NEW, API_URL)


def test_fields_are_matched_by_local_name_in_any_namespace():
    # The children are found through a table of the usual namespaces; others, no namespace
    # and comments between them must read as they always have.
    moved = API_NEW.replace(
        b"<title>Mana: Dexterous Manipulation of Articulated Tools</title>",
        b'<!-- c --><x:title xmlns:x="urn:other">Mana: Dexterous Manipulation of'
        b" Articulated Tools</x:title><title>Ignored second title</title>",
        1,
    ).replace(b"<name>Zhao-Heng Yin</name>", b'<!-- c --><name xmlns="">Zhao-Heng Yin</name>', 1)
    assert moved != API_NEW
    assert parse_api(moved, API_URL) == parse_api(API_NEW, API_URL)

    dc = f'xmlns:dc="{DC_NS}"'.encode()
    assert dc in RSS_AI
    other = RSS_AI.replace(b"<dc:creator>", b'<c:creator xmlns:c="urn:other">').replace(
        b"</dc:creator>", b"</c:creator>"
    )
    assert parse_listing(other, RSS_URL) == parse_listing(RSS_AI, RSS_URL)


ID_PIECES = st.sampled_from(
    ["http://arxiv.org/abs/", "https://arxiv.org/abs/", "oai:arXiv.org:", "arxiv:", "/pdf/"]
    + ["2606.13677", "0704.0001", "hep-th/9901001", "v2", "V3", "v", "12", ".pdf", "?x", " ", "\n"]
    + ["٢٦٠٦.١٣٦٧٧", "/abs/", "HTTP://ARXIV.ORG/ABS/", "0", "1", "#"]
)


@FAST
@given(st.lists(ID_PIECES | st.text(max_size=3), max_size=5).map("".join))
@example("http://arxiv.org/abs/2606.136771")
@example("http://arxiv.org/abs/2606.1367")
@example("oai:arXiv.org:2606.13677V2")
@example("https://arxiv.org/abs/2606.13677v2\n")
@example("http://arxiv.org/abs/0704.0001v0")
@example("http://arxiv.org/abs/0704.0001v")
@example("http://arxiv.org/abs/٢٦٠٦.١٣٦٧٧")  # Arabic-Indic digits
def test_fast_id_split_is_split_arxiv_id(text):
    assert arxiv_parse._split_id(text) == ids.split_arxiv_id(text)


@FAST
@given(st.lists(st.sampled_from(["cs", ".", "LG", "-", "a", "53", ",", " "]), max_size=6))
def test_category_shapes_are_remembered_correctly(pieces):
    term = "".join(pieces)
    expected = arxiv_parse._CATEGORY.fullmatch(term) is not None
    assert arxiv_parse._is_category(term) is expected
    assert arxiv_parse._is_category(term) is expected  # now from the cache


def test_legacy_api_response():
    result = parse_api(API_LEGACY, "http://export.arxiv.org/api/query?search_query=all:Einstein")

    assert result.problems == []
    assert result.total_results == 28637
    assert len(result.papers) == 10
    first = result.papers[0]
    assert (first.arxiv_id, first.version) == ("1801.05533", 1)
    assert first.title == "Einstein-Weyl structures on almost cosymplectic manifolds"
    assert first.authors == ("Xiaomin Chen",)
    assert first.abstract.startswith("In this article, we study the Einstein-Weyl structures")
    assert r"an almost cosymplectic $(\kappa,\mu)$-manifold is Einstein" in first.abstract
    assert "\n" not in first.abstract and "  " not in first.abstract
    # "53D10, 53D15" is an MSC class, not an arXiv category.
    assert first.categories == ("math.DG",)
    assert first.primary_category == "math.DG"
    assert first.comment == "12 pages, no figures"
    assert first.published_at == datetime(2018, 1, 17, 3, 5, 51, tzinfo=UTC)
    assert first.pdf_url == "https://arxiv.org/pdf/1801.05533v1"

    papers = by_id(result)
    revised = papers["0802.2137"]
    assert revised.version == 3
    assert revised.published_at == datetime(2008, 2, 15, 4, 40, 56, tzinfo=UTC)
    assert revised.updated_at == datetime(2008, 4, 1, 4, 36, 21, tzinfo=UTC)
    old_style = papers["math/0502287"]
    assert old_style.version == 1
    assert old_style.pdf_url == "https://arxiv.org/pdf/math/0502287v1"
    assert r"K{\"a}hler-Einstein metrics" in old_style.abstract
    assert papers["1505.03319"].title == (
        "Quasi-Einstein and Generalized Quasi-Einstein Warped Products with an Affine Connection"
    )
    assert papers["0808.2097"].categories == ("math.DG", "math-ph", "math.MP")
    assert papers["1209.5181"].primary_category == "physics.hist-ph"
    assert papers["1209.5181"].comment is None
    assert papers["math/0507289"].authors == ("Alessandro Ghigi", "János Kollár")
    assert papers["1207.1944"].authors == ("Xiaoling Zhang", "Yi-Bing Shen")


@pytest.mark.parametrize(
    ("term", "kept"),
    [
        ("cs.LG", True),
        ("hep-th", True),
        ("physics.optics", True),
        ("q-bio.NC", True),
        ("cond-mat.str-el", True),
        ("math-ph", True),
        ("53D10, 53D15", False),
        ("53C25, 53A30 (Primary); 53B20 (Secondary)", False),
        ("I.2.7", False),
        ("68T05", False),
        ("", False),
    ],
)
def test_api_keeps_only_arxiv_shaped_categories(term, kept):
    entry = (
        b'<category term="math.DG" scheme="http://arxiv.org/schemas/atom"/>\n'
        b'    <category term="53D10, 53D15" scheme="http://arxiv.org/schemas/atom"/>'
    )
    assert entry in API_LEGACY
    replaced = API_LEGACY.replace(
        entry,
        b'<category term="math.DG"/><category term="' + term.encode() + b'"/>',
    )
    first = parse_api(replaced, API_URL).papers[0]
    assert first.categories == (("math.DG", term) if kept else ("math.DG",))


API_ERROR = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?search_query%3D%26id_list%3D1234.12345" rel="self"/>
  <title type="html">ArXiv Query: search_query=&amp;id_list=1234.12345</title>
  <id>http://arxiv.org/api/kvuntZ8c9a4Eq5CF7KY03nMug+Q</id>
  <updated>2007-10-12T00:00:00-04:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">1</opensearch:totalResults>
  <entry>
    <id>http://arxiv.org/api/errors#incorrect_id_format_for_1234.12345</id>
    <title>Error</title>
    <summary>incorrect id format for 1234.12345</summary>
    <updated>2007-10-12T00:00:00-04:00</updated>
    <link href="http://arxiv.org/api/errors#incorrect_id_format_for_1234.12345" rel="alternate"/>
    <author>
      <name>arXiv api core</name>
    </author>
  </entry>
</feed>"""


def test_api_error_entry_is_a_problem_not_a_paper():
    result = parse_api(API_ERROR, API_URL)

    assert result.papers == []
    [problem] = result.problems
    assert "arXiv API error: incorrect id format for 1234.12345" in problem.problem
    assert problem.record == "http://arxiv.org/api/errors#incorrect_id_format_for_1234.12345"
    assert problem.url == API_URL
    # The upstream really says 1 here; the caller must not page on it alone.
    assert result.total_results == 1


def test_a_paper_titled_error_is_still_a_paper():
    titled = API_NEW.replace(
        b"<title>Adjusted Cup-Product Neural Layer</title>", b"<title>Error</title>"
    )
    assert by_id(parse_api(titled, API_URL))["2606.13568"].title == "Error"


# --- invisible characters ---------------------------------------------------------------------

# Bidi overrides and isolates, marks, zero-width and soft-hyphen characters, and a joiner
# next to Latin: each would let a text display as something else or hide a word.
POISON = ("\u202e", "\u200b\u00ad\u2066", "\u200f\ufeff\u200d\u2069\u061c\u2060")


def poison_elements(document: bytes, tags: list[bytes]) -> bytes:
    """Invisible characters around and inside the text of every element named in ``tags``."""
    before, inside, after = (chars.encode() for chars in POISON)
    for tag in tags:
        document = re.sub(
            rb"(<" + tag + rb"(?:\s[^>]*)?>)(\s*[^<\s]{2})([^<]*)(</" + tag + rb">)",
            lambda m: m[1] + before + m[2] + inside + m[3] + after + m[4],
            document,
        )
    return document


def test_invisible_characters_are_removed_from_every_listing_field():
    enriched = RSS_MULTI.replace(
        b"<arxiv:DOI>10.1093/bioinformatics/btac431</arxiv:DOI>",
        b"<arxiv:DOI>10.1093/bioinformatics/btac431</arxiv:DOI>"
        b"<arxiv:journal_reference>Bioinformatics 38 (2022)</arxiv:journal_reference>"
        b"<arxiv:comment>12 pages</arxiv:comment>",
    )
    tags = [b"title", b"description", b"dc:creator", b"category", b"arxiv:DOI"]
    tags += [b"arxiv:journal_reference", b"arxiv:comment"]
    poisoned = poison_elements(enriched, tags)
    assert poisoned.count("\u202e".encode()) > 20

    clean = parse_listing(enriched, RSS_URL)
    cross = by_id(clean)["2205.06398"]
    assert cross.doi and cross.journal_ref and cross.comment
    assert parse_listing(poisoned, RSS_URL) == clean
    atom = atom_listing_from_rss(enriched)
    assert parse_listing(poison_elements(atom, tags + [b"summary"]), ATOM_URL) == (
        parse_listing(atom, ATOM_URL)
    )


def test_invisible_characters_are_removed_from_every_api_field():
    extra = (
        b"<arxiv:doi>10.1000/182</arxiv:doi>\n"
        b"    <arxiv:journal_ref>Proc. CoRL 2026, 1-12</arxiv:journal_ref>\n"
        b'    <link href="https://arxiv.org/pdf/2606.13677v1"'
    )
    enriched = API_NEW.replace(b'<link href="https://arxiv.org/pdf/2606.13677v1"', extra, 1)
    tags = [b"title", b"summary", b"name", b"arxiv:comment", b"arxiv:doi", b"arxiv:journal_ref"]
    before, inside, _ = (chars.encode() for chars in POISON)
    poisoned = poison_elements(enriched, tags).replace(
        b'href="https://arxiv.org/pdf/', b'href="' + before + b"https://arxiv.org/pdf/" + inside
    )

    clean = parse_api(enriched, API_URL)
    mana = clean.papers[0]
    assert mana.doi and mana.journal_ref and mana.comment and mana.pdf_url
    assert parse_api(poisoned, API_URL) == clean


# --- damaged and hostile input --------------------------------------------------------------


def test_item_without_any_id_is_skipped_and_named():
    damaged = RSS_MULTI.replace(
        b'<guid isPermaLink="false">oai:arXiv.org:2609.26820v1</guid>', b""
    ).replace(b"<link>https://arxiv.org/abs/2609.26820</link>", b"")
    result = parse_listing(damaged, RSS_URL)

    assert [p.arxiv_id for p in result.papers] == ["2609.26811", "2205.06398", "2009.13987"]
    [problem] = result.problems
    assert problem.record == "1"
    assert "no arXiv id" in problem.problem


def test_item_with_empty_title_is_skipped_and_named_by_guid():
    damaged = re.sub(rb"<title>Signal2Symbol[^<]*</title>", b"<title>  </title>", RSS_MULTI)
    result = parse_listing(damaged, RSS_URL)

    assert len(result.papers) == 3
    [problem] = result.problems
    assert problem.record == "oai:arXiv.org:2609.26820v1"
    assert "title" in problem.problem
    assert str(problem) == f"arxiv: {RSS_URL} record oai:arXiv.org:2609.26820v1: item has no title"


def test_malformed_xml_in_one_item_keeps_the_items_around_it():
    full = by_id(parse_listing(RSS_MULTI, RSS_URL))
    damaged = RSS_MULTI.replace(b"electroencephalograms (EEG)", b"EEG & <b>unclosed")
    result = parse_listing(damaged, RSS_URL)

    assert [p.arxiv_id for p in result.papers] == ["2609.26811", "2205.06398", "2009.13987"]
    for paper in result.papers:
        assert paper == full[paper.arxiv_id]
    # Only the damaged item is named; the channel around the items is whole.
    assert [(p.record, p.problem) for p in result.problems] == [
        ("oai:arXiv.org:2609.26820v1", "malformed XML; item skipped")
    ]


def test_undeclared_namespace_prefix_spoils_only_its_item():
    damaged = RSS_MULTI.replace(
        b"<dc:rights>http://creativecommons.org/licenses/by-nc-nd/4.0/</dc:rights>",
        b"<cc:license>by-nc-nd</cc:license>",
    )
    result = parse_listing(damaged, RSS_URL)

    assert result.papers == [
        p for p in parse_listing(RSS_MULTI, RSS_URL).papers if p.arxiv_id != "2609.26820"
    ]
    assert [(p.record, p.problem) for p in result.problems] == [
        ("oai:arXiv.org:2609.26820v1", "malformed XML; item skipped")
    ]


def test_every_item_damaged_in_a_long_listing():
    items = re.findall(rb"<item>.*?</item>", RSS_MULTI, re.S)
    good = items[0]
    bad = items[1].replace(b"electroencephalograms (EEG)", b"EEG & <b>")
    head = RSS_MULTI[: RSS_MULTI.index(b"<item>")]
    document = head + b"\n".join([bad, good] * 50) + b"</channel></rss>"

    result = parse_listing(document, RSS_URL)

    assert len(result.papers) == 50
    assert {p.arxiv_id for p in result.papers} == {"2609.26811"}
    assert sum(p.record == "oai:arXiv.org:2609.26820v1" for p in result.problems) == 50


def without(result: ParseResult, arxiv_id: str) -> list[Paper]:
    return [paper for paper in result.papers if paper.arxiv_id != arxiv_id]


def problems(result: ParseResult) -> list[tuple[str | None, str]]:
    return [(problem.record, problem.problem) for problem in result.problems]


def test_damage_outside_the_items_keeps_every_item():
    damaged = RSS_MULTI.replace(b"<language>en-us</language>", b"<language>en & us</language>")
    result = parse_listing(damaged, RSS_URL)

    assert result.papers == parse_listing(RSS_MULTI, RSS_URL).papers
    assert problems(result) == [(None, "malformed XML outside the items")]


def test_document_cut_off_inside_an_item_keeps_the_items_before_it():
    cut = RSS_MULTI[: RSS_MULTI.index(b"<dc:creator>Pritam Dey")]
    result = parse_listing(cut, RSS_URL)

    assert result.papers == parse_listing(RSS_MULTI, RSS_URL).papers[:2]
    assert problems(result) == [
        (None, "malformed XML: the document is cut off before </rss>"),
        ("oai:arXiv.org:2205.06398v2", "item is cut off (no closing tag); skipped"),
    ]


def test_item_without_its_closing_tag_is_named_and_the_next_one_kept():
    second_end = RSS_MULTI.index(b"</item>", RSS_MULTI.index(b"2609.26820"))
    damaged = RSS_MULTI[:second_end] + RSS_MULTI[second_end + len(b"</item>") :]
    result = parse_listing(damaged, RSS_URL)

    assert result.papers == without(parse_listing(RSS_MULTI, RSS_URL), "2609.26820")
    assert problems(result) == [
        ("oai:arXiv.org:2609.26820v1", "item is cut off (no closing tag); skipped")
    ]


def test_item_with_a_damaged_start_tag_is_named_and_its_neighbours_kept():
    second = RSS_MULTI.index(b"<item>", RSS_MULTI.index(b"2609.26811"))
    damaged = RSS_MULTI[:second] + b"<it em>" + RSS_MULTI[second + len(b"<item>") :]
    result = parse_listing(damaged, RSS_URL)

    assert result.papers == without(parse_listing(RSS_MULTI, RSS_URL), "2609.26820")
    assert problems(result) == [
        (None, "malformed XML outside the items"),
        ("oai:arXiv.org:2609.26820v1", "item has a damaged start tag; skipped"),
    ]


def test_closing_tag_inside_cdata_does_not_cut_the_item():
    cdata = b"<description><![CDATA[a </item> in the text]]></description>"
    first_end = RSS_MULTI.index(b"</item>")
    with_cdata = RSS_MULTI[:first_end] + cdata + RSS_MULTI[first_end:]
    damaged = with_cdata.replace(b"electroencephalograms (EEG)", b"EEG & <b>")
    result = parse_listing(damaged, RSS_URL)

    assert result.papers == without(parse_listing(with_cdata, RSS_URL), "2609.26820")
    assert problems(result) == [("oai:arXiv.org:2609.26820v1", "malformed XML; item skipped")]


@pytest.mark.parametrize(
    ("document", "total"),
    [(API_NEW, 28946), (API_LEGACY, 28637)],
    ids=["current", "legacy-namespace-on-the-element"],
)
def test_api_total_results_survive_a_damaged_entry(document, total):
    clean = parse_api(document, API_URL)
    first = clean.papers[0]
    damaged = document.replace(f"<title>{first.title}".encode(), b"<title>&", 1)

    result = parse_api(damaged, API_URL)

    assert result.papers == clean.papers[1:]
    assert result.total_results == total
    [(record, _)] = problems(result)
    assert record is not None and first.arxiv_id in record


def test_salvaged_items_take_the_channel_pubdate_when_they_have_none():
    undated = re.sub(rb"\s*<pubDate>[^<]*</pubDate>(?=\s*<arxiv:announce_type>)", b"", RSS_MULTI)
    assert undated.count(b"<pubDate>") == 1  # the channel's own
    damaged = undated.replace(b"electroencephalograms (EEG)", b"EEG & <b>")

    result = parse_listing(damaged, RSS_URL)

    assert result.papers == without(parse_listing(undated, RSS_URL), "2609.26820")
    assert {paper.listed_on for paper in result.papers} == {date(2026, 9, 24)}


@pytest.mark.parametrize("encoding", ["iso-8859-1", "utf-16"])
def test_salvage_reads_the_declared_encoding(encoding):
    def document(second_title: str) -> bytes:
        return (
            f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel>'
            "<item><title>Kollár and Müller</title><guid>oai:arXiv.org:2501.00001v1</guid>"
            f"</item><item><title>{second_title}</title>"
            "<guid>oai:arXiv.org:2501.00002v1</guid></item></channel></rss>"
        ).encode(encoding)

    clean = parse_listing(document("Fine"), RSS_URL)
    assert [p.title for p in clean.papers] == ["Kollár and Müller", "Fine"]

    result = parse_listing(document("Not & fine"), RSS_URL)

    assert result.papers == clean.papers[:1]
    assert problems(result) == [("oai:arXiv.org:2501.00002v1", "malformed XML; item skipped")]


def test_salvage_keeps_the_entities_the_doctype_declares():
    clean = bomb(3)
    damaged = clean.replace(
        b"</channel>",
        b"<item><title>Broken & bad</title><guid>oai:arXiv.org:2609.26812v1</guid></item>"
        b"</channel>",
    )
    result = parse_listing(damaged, RSS_URL)

    assert result.papers == parse_listing(clean, RSS_URL).papers
    assert problems(result) == [("oai:arXiv.org:2609.26812v1", "malformed XML; item skipped")]


def test_a_listing_of_too_many_items_is_read_up_to_the_limit():
    item = b"<item><title>T</title><guid>oai:arXiv.org:2501.00001v1</guid></item>"
    head = b'<rss version="2.0"><channel>'
    many = head + item * (arxiv_parse._MAX_ITEMS + 1) + b"</channel></rss>"
    damaged = head + b"<title>&</title>" + item * (arxiv_parse._MAX_ITEMS + 1)

    for document in (many, damaged):
        result = parse_listing(document, RSS_URL)
        assert len(result.papers) == arxiv_parse._MAX_ITEMS
        assert problems(result)[-1] == (None, "more than 50,000 items; the rest were not read")


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (b"x " * 5_500_000, "text too long"),
        (b"<a>" * 300 + b"</a>" * 300, "nested too deeply"),
    ],
    ids=["11-MB-text-node", "deep-nesting"],
)
def test_resource_limits_skip_the_item_not_the_listing(damage, why):
    damaged = RSS_MULTI.replace(b"Physiological time series", damage + b"Physiological")
    result = parse_listing(damaged, RSS_URL)

    assert result.papers == [
        p for p in parse_listing(RSS_MULTI, RSS_URL).papers if p.arxiv_id != "2609.26820"
    ]
    # The parser's own words, whichever libxml2 refused the item and however it put it.
    assert [(p.record, p.problem) for p in result.problems] == [
        ("oai:arXiv.org:2609.26820v1", f"{why}; item skipped")
    ]


def test_creator_as_links_from_the_older_serializer():
    old = (
        b'<dc:creator><a href="https://arxiv.org/a/dey_p_1">Pritam Dey</a>'
        b'<a href="https://arxiv.org/a/zhang_z_1">Zhengwu Zhang</a></dc:creator>'
    )
    damaged = re.sub(rb"<dc:creator>Pritam Dey[^<]*</dc:creator>", old, RSS_MULTI)
    cross = by_id(parse_listing(damaged, RSS_URL))["2205.06398"]
    assert cross.authors == ("Pritam Dey", "Zhengwu Zhang")


def test_api_entry_with_a_bad_id_is_skipped_and_the_rest_kept():
    damaged = API_NEW.replace(
        b"<id>http://arxiv.org/abs/2606.13568v1</id>", b"<id>http://arxiv.org/abs/nonsense</id>"
    )
    result = parse_api(damaged, API_URL)

    assert len(result.papers) == 4 and "2606.13568" not in by_id(result)
    [problem] = result.problems
    assert problem.record == "http://arxiv.org/abs/nonsense"
    assert result.total_results == 28946


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (b"", "empty document"),
        ("  \n\t", "empty document"),
        (b"<html><body><h1>Service unavailable</h1></body></html>", "root element is <html>"),
        (b"<html><body><p>Bad Gateway</body>", "malformed XML"),
        (b'{"error": "not xml"}', "malformed XML"),
        (b"\x00\x01\x02", "malformed XML"),
        (b"<rss><chan", "malformed XML"),
        (
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>',
            "root element is <RDF>",
        ),
        (None, "expected str or bytes"),
    ],
)
def test_unreadable_document_gives_one_problem(document, why):
    result = parse_listing(document, RSS_URL)
    assert result.papers == []
    [problem] = result.problems
    assert why in problem.problem
    assert problem.record is None


def test_api_parser_refuses_a_listing():
    result = parse_api(RSS_MULTI, API_URL)
    assert result.papers == []
    assert [p.problem for p in result.problems] == [
        "not an arXiv API Atom feed: root element is <rss>"
    ]


def bomb(levels: int) -> bytes:
    entities = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(2, levels + 1))
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol1 "lol">{entities}
  <!ENTITY xxe SYSTEM "file:///etc/passwd">
]>
<rss version="2.0"><channel>
<item><title>Laughs &lol{levels}; and &xxe; here</title>
<guid>oai:arXiv.org:2609.26811v1</guid><description>&lol{levels};</description></item>
</channel></rss>""".encode()


def test_entities_are_never_expanded():
    # Small enough that libxml2's own amplification guard does not step in: only
    # resolve_entities=False keeps "lol" x 100 and /etc/passwd out of the title.
    [paper] = parse_listing(bomb(3), RSS_URL).papers
    assert paper.title == "Laughs &lol3; and &xxe; here"
    assert "lollol" not in paper.abstract


def test_billion_laughs_returns_without_expanding():
    result = parse_listing(bomb(9), RSS_URL)

    assert_well_formed(result, RSS_URL)
    for paper in result.papers:
        assert len(paper.title) < 100 and len(paper.abstract) < 100
        assert "lollol" not in paper.title + paper.abstract
        assert "root:" not in paper.title + paper.abstract
    assert result.problems


def test_external_parameter_entity_is_not_loaded():
    document = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY % ext SYSTEM "file:///etc/passwd"> %ext;]>
<rss version="2.0"><channel><item><title>T</title>
<guid>oai:arXiv.org:2609.26811v1</guid></item></channel></rss>"""
    result = parse_listing(document, RSS_URL)
    assert_well_formed(result, RSS_URL)
    assert "root:" not in repr(result)


def test_two_thousand_item_listing():
    head, _, rest = RSS_MULTI.partition(b"<item>")
    items = re.findall(rb"<item>.*?</item>", RSS_MULTI, re.S)
    body = b"\n".join(
        items[n % len(items)].replace(b"2609.26811", b"2609.%05d" % n) for n in range(2000)
    )
    result = parse_listing(head + body + b"</channel></rss>", RSS_URL)
    assert len(result.papers) == 2000 and result.problems == []


@FAST
@given(text=st.text())
def test_parsers_never_raise_on_arbitrary_text(text):
    for parse in (parse_listing, parse_api):
        assert_well_formed(parse(text, RSS_URL), RSS_URL)


@FAST
@given(data=st.binary())
def test_parsers_never_raise_on_arbitrary_bytes(data):
    for parse in (parse_listing, parse_api):
        assert_well_formed(parse(data, RSS_URL), RSS_URL)


# The real captures, plus the Atom listing built from one of them.
DAMAGEABLE = [*FIXTURES, (parse_listing, atom_listing_from_rss(RSS_MULTI), b"</entry>")]


@DOCUMENTS
@given(
    which=st.sampled_from(range(len(DAMAGEABLE))),
    cut=st.floats(min_value=0.0, max_value=1.0),
)
def test_truncated_documents_keep_exactly_their_complete_records(which, cut):
    parse, document, closing = DAMAGEABLE[which]
    prefix = document[: int(len(document) * cut)]
    full = by_id(parse(document, RSS_URL))

    result = parse(prefix, RSS_URL)

    assert_well_formed(result, RSS_URL)
    # Nothing half-read: every paper is exactly what the whole document says about it ...
    for paper in result.papers:
        assert paper == full[paper.arxiv_id]
    # ... and no record that closed before the cut is lost.
    assert len(result.papers) >= prefix.count(closing)
    if prefix.rstrip() != document.rstrip():
        assert result.problems


XML_NOISE = st.sampled_from(
    [b"<", b">", b"&", b"&amp;", b"&nbsp;", b"</item>", b"<item>", b"</entry>", b"<entry>"]
    + [b"<![CDATA[", b"]]>", b"<!--", b"-->", b'"', b"\x00", b"\xff\xfe", b"<b>", b"</title>"]
    + [b"<title></title>", b"<guid>oai:arXiv.org:x</guid>", b"<id>nonsense</id>"]
)


@DOCUMENTS
@given(
    which=st.sampled_from(range(len(DAMAGEABLE))),
    start=st.floats(min_value=0.0, max_value=1.0),
    length=st.integers(min_value=0, max_value=400),
    noise=st.lists(XML_NOISE | st.binary(max_size=8), max_size=4).map(b"".join),
)
def test_damaged_documents_never_raise_nor_half_keep_an_item(which, start, length, noise):
    parse, document, _ = DAMAGEABLE[which]
    at = int(len(document) * start)
    damaged = document[:at] + noise + document[at + length :]

    result = parse(damaged, RSS_URL)

    assert_well_formed(result, RSS_URL)
    # An item the damage did not touch is either skipped or read exactly as before.
    spans = [m.span() for m in re.finditer(rb"<(item|entry)>.*?</\1>", document, re.S)]
    full = parse(document, RSS_URL).papers
    assert len(spans) == len(full)
    untouched = {
        paper.arxiv_id: paper
        for paper, (begin, end) in zip(full, spans, strict=True)
        if end <= at or begin >= at + length
    }
    for paper in result.papers:
        if paper.arxiv_id in untouched:
            assert paper == untouched[paper.arxiv_id]


@DOCUMENTS
@given(
    which=st.sampled_from(range(len(DAMAGEABLE))),
    pick=st.integers(min_value=0),
    start=st.floats(min_value=0.0, max_value=1.0),
    length=st.integers(min_value=0, max_value=400),
    noise=st.lists(XML_NOISE | st.binary(max_size=8), max_size=4).map(b"".join),
)
@example(which=1, pick=1, start=0.0, length=6, noise=b"<it em>")  # its start tag
@example(which=1, pick=1, start=0.5, length=0, noise=b"</item>")  # a stray closing tag
@example(which=1, pick=1, start=0.5, length=0, noise=b"<![CDATA[")  # never closed
@example(which=1, pick=1, start=0.99, length=400, noise=b"")  # its closing tag
@example(which=2, pick=0, start=0.2, length=0, noise=b"<entry>")  # a false start
def test_damaging_one_item_never_loses_another(which, pick, start, length, noise):
    parse, document, _ = DAMAGEABLE[which]
    spans = [m.span() for m in re.finditer(rb"<(item|entry)>.*?</\1>", document, re.S)]
    begin, end = spans[pick % len(spans)]
    at = begin + int((end - begin) * start)
    damaged = document[:at] + noise + document[min(at + length, end) :]
    full = parse(document, RSS_URL).papers
    assert len(full) == len(spans)

    result = parse(damaged, RSS_URL)

    assert_well_formed(result, RSS_URL)
    others = [paper for n, paper in enumerate(full) if n != pick % len(spans)]
    kept = by_id(result)
    for paper in others:
        assert kept.get(paper.arxiv_id) == paper
