"""Extraction is pure HTML -> entries: these tests call it on strings and files, with no server at all."""

from __future__ import annotations

from pathlib import Path

import conftest

from embedgui.engine import crawler
from embedgui.engine.crawler import decode_html, extract_glossary
from embedgui.engine.crawler.extract import language_links, parse_html

FIXTURES = Path(__file__).parent / "fixtures" / "crawler"
URL = "http://glossary.example/page.html"


def _by_term(html: str) -> dict[str, str]:
    return {e.term: e.definition for e in extract_glossary(html, URL)}


# --------------------------------------------------------------------------------------------- strings


def test_definition_list_aliases_and_senses_from_a_string():
    html = """<html><body><main><dl>
        <dt>RTT</dt><dt>round-trip time:</dt><dd>Time there and back.</dd>
        <dt>port</dt><dd>A service number.</dd><dd>A socket on a switch.</dd>
        <dd>An indented note with no term.</dd>
    </dl></main></body></html>"""
    entries = extract_glossary(html, URL)
    assert [(e.term, e.definition) for e in entries] == [
        ("RTT", "Time there and back."), ("round-trip time", "Time there and back."),
        ("port", "A service number. A socket on a switch. An indented note with no term."),
    ]
    assert {e.source_url for e in entries} == {URL}


def test_table_columns_found_by_header_words():
    rows = "".join(f"<tr><td>t{i}</td><td>T{i}</td><td>Meaning number {i} of this term.</td></tr>" for i in range(3))
    html = f"<table><thead><tr><th>Term</th><th>Abbreviation</th><th>Definition</th></tr></thead>{rows}</table>"
    assert _by_term(html) == {f"t{i}": f"Meaning number {i} of this term." for i in range(3)}
    # The same table headed by neither kind of word (a schedule) is not a glossary.
    schedule = html.replace("Term", "Day").replace("Definition", "Room").replace("Abbreviation", "Time")
    assert _by_term(schedule) == {}


def test_heading_sections_only_when_lists_and_tables_give_too_little():
    sections = "".join(f"<h2>term {i}</h2><p>Definition {i} of the term.</p>" for i in range(3))
    page = f"<main>{sections}<h2>See also</h2><p>Other pages.</p></main>"
    assert _by_term(page) == {f"term {i}": f"Definition {i} of the term." for i in range(3)}
    dl = "".join(f"<dt>word {i}</dt><dd>Meaning {i}.</dd>" for i in range(3))
    assert set(_by_term(f"<main><dl>{dl}</dl>{sections}</main>")) == {"word 0", "word 1", "word 2"}


def test_hidden_text_footnotes_and_edit_links_are_removed():
    html = """<style>.secret { display: none }</style><dl>
        <dt>alpha<span class="mw-editsection">[edit]</span></dt>
        <dd>First letter.<sup class="reference">[1]</sup> Also <code>x[1]</code>.[2]<span class="secret">HIDDEN</span>
        <span style="display:none">GONE</span></dd></dl>"""
    assert _by_term(html) == {"alpha": "First letter. Also x[1]."}


def test_language_links_are_found_before_chrome_is_stripped():
    html = ('<nav><a hreflang="ko" href="/ko/page#top">한국어</a><a hreflang="ja" href="https://ja.example/p">日本語</a>'
            '</nav><dl><dt>a</dt><dd>b</dd></dl>')
    soup = parse_html(html)
    assert language_links(soup, URL, ("ko", "de")) == ["http://glossary.example/ko/page"]
    assert language_links(soup, URL, ()) == []


# ------------------------------------------------------------------------------------------ real pages


def test_git_glossary_terms_without_navigation():
    page = conftest.testdata_file("git-doc", "usr/share/doc/git-doc/gitglossary.html")
    entries = extract_glossary(decode_html(page.read_bytes())[0], "http://127.0.0.1/gitglossary.html")
    terms = [e.term for e in entries]
    assert len(entries) >= 80
    assert all(e.definition for e in entries)
    for expected in ("bare repository", "detached HEAD", "working tree", "refspec", "HEAD"):
        assert expected in terms
    by_term = {e.term: e.definition for e in entries}
    assert by_term["blob object"] == "Untyped object, e.g. the contents of a file."
    navigation = {"NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO", "GIT", "gitglossary(7) Manual Page"}
    assert not navigation & set(terms)
    assert not any("Last updated" in e.definition or "Part of the git(1) suite" in e.definition for e in entries)


def test_markers_hidden_elements_and_navigation_are_stripped():
    html = (FIXTURES / "wiki_markers.html").read_text(encoding="utf-8")
    entries = extract_glossary(html, "http://127.0.0.1/wiki_markers.html")
    by_term = {e.term: e.definition for e in entries}
    assert list(by_term) == ["alpha", "beta", "canary", "dogfooding", "error budget"]
    assert by_term["alpha"] == "The first release of a program, for testing. Often unstable."
    assert by_term["beta"] == "A wider test release. Feature complete."  # print-only hiding is not hiding
    assert by_term["canary"] == "A release sent to a small share of users first, such as users[1] in a list."
    assert by_term["dogfooding"] == "Using one's own product internally."
    # MediaWiki math: hidden MathML and an aria-hidden image; its LaTeX source is kept.
    assert by_term["error budget"] == "The allowed failure rate 1-\\mathrm{SLO} over a period."
    text = " ".join(f"{e.term} {e.definition}" for e in entries)
    for junk in ("HIDDEN", "SCRIPT", "¶", "citation needed", "[edit]", "Navbox", "Sidebar", "Footer", "Contents"):
        assert junk not in text


def test_heading_glossary_from_samples():
    pages = {p.name: p for p in crawler.sample_pages()}
    entries = extract_glossary(pages["en_glossary_headings.html"].read_text(encoding="utf-8"), "sample")
    by_term = {e.term: e.definition for e in entries}
    assert set(by_term) == {"batch size", "checkpoint", "epoch", "fine-tuning", "learning rate", "tokenizer"}
    assert by_term["epoch"] == ("One full pass over the training data. Small glossaries are often trained for "
                                "several epochs; large ones for one or less.")
    ko = extract_glossary(pages["ko_glossary_headings.html"].read_text(encoding="utf-8"), "sample")
    assert [e.term for e in ko] == ["손실 함수", "재현율", "정규화 할인 누적 이득", "말뭉치"]
    assert not any("[편집]" in e.definition or "편집" == e.definition for e in ko)


def test_decode_html_order_and_fallbacks():
    korean = "임베딩은 의미가 비슷한 문장을 가까운 벡터로 나타낸다. " * 20
    page = f"<html><head><meta charset='euc-kr'></head><body><p>{korean}</p></body></html>"
    assert decode_html(page.encode("cp949"), "text/html")[0] == page
    # The HTTP header wins over <meta>.
    utf8 = page.replace("euc-kr", "iso-8859-1").encode("utf-8")
    assert decode_html(utf8, "text/html; charset=UTF-8") == (utf8.decode("utf-8"), "utf-8")
    # A wrong declaration is not trusted when the bytes do not decode.
    assert decode_html(page.encode("utf-8"), "text/html; charset=euc-kr")[0] == page
    # Nothing declared: UTF-8 when it decodes, else detection.
    bare = f"<html><body><p>{korean}</p></body></html>"
    assert decode_html(bare.encode("utf-8")) == (bare, "utf-8")
    assert decode_html(bare.encode("cp949"))[0] == bare
