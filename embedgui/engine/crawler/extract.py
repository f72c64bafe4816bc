"""Pure HTML -> glossary entries: the page-layout heuristics. No network, so every rule is testable on a string.

Three page layouts are understood, whatever the site: definition lists (dl/dt/dd), tables with a term column and a
definition column, and heading-plus-paragraph glossaries. Chrome (navigation, hidden text, edit links, footnote
marks) is removed first.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin

from bs4 import BeautifulSoup, NavigableString, Tag, XMLParsedAsHTMLWarning
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction


@dataclass(frozen=True)
class GlossaryEntry:
    """One term and its definition, with the page it came from."""

    term: str
    definition: str
    source_url: str


_MARKERS = re.compile(
    r"\s*\[\s*(?:edit|편집|원본 편집|소스 편집|citation needed|clarification needed|when\?|who\?|according to whom\?"
    r"|dubious(?: [–-] discuss)?|출처 필요|확인 필요|해석 필요)\s*\]|\s*¶",
    re.IGNORECASE,
)
# Footnote calls: inside <sup> also "[a]" style letters; in running text only numbers, since "R[x]" is maths.
_FOOTNOTE_SUP = re.compile(r"\[?\s*(?:\d{1,3}|[a-z]|note \d+|주 \d+)\s*\]?")
_FOOTNOTE_TEXT = re.compile(r"\s*\[\s*(?:\d{1,3}|note \d+|주 \d+)\s*\]")
_SPACE = re.compile(r"\s+")
_END_PUNCT = ".;:!?。"
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_CODE_TAGS = {"code", "pre", "kbd", "samp", "tt", "var"}
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "center", "dd", "details", "div", "dl", "dt", "figcaption",
    "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre", "section", "summary",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}
# Never text: scripts, styles, embedded media, form controls, navigation and side notes. (Not <form>: ASP.NET
# pages wrap their whole body in one.)
_DROP_TAGS = ["script", "noscript", "template", "svg", "iframe", "object", "canvas", "button", "input",
              "select", "textarea", "nav", "aside", "menu"]
# Chrome, navigation and editorial furniture, by class (exact tokens, so "canvas" is not "nav") ...
_DROP_CLASSES = {
    "mw-editsection", "mw-cite-backlink", "mw-jump-link", "mw-references-wrap", "references", "reflist",
    "navbox", "vertical-navbox", "navbox-styles", "sidebar", "toc", "toctitle", "catlinks", "printfooter",
    "noprint", "inline-template", "hatnote", "metadata", "ambox", "mbox-small", "shortcutbox", "sistersitebox",
    "mw-indicators", "mw-empty-elt", "navigation-not-searchable", "sphinxsidebar", "related", "breadcrumb",
    "breadcrumbs", "skip-link", "sr-only", "visually-hidden", "screen-reader-text", "nav", "navbar",
    "navigation", "site-header", "site-footer", "footnotes", "cookie-banner", "pagination",
}
# ... and by id.
_DROP_IDS = {
    "header", "footer", "sidebar", "toc", "mw-navigation", "mw-panel", "p-lang", "sitesub", "contentsub",
    "jump-to-nav", "footnotes", "catlinks", "nav", "navigation", "menu", "breadcrumbs",
}
# Permalink markers ("¶", "#", "🔗") next to headings and terms; dropped only when that short, since some
# sites wrap the term itself in <a class="anchor">.
_PERMALINK_CLASSES = {"headerlink", "anchor", "anchorjs-link", "header-anchor", "hash-link", "permalink"}
_DROP_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar", "toolbar", "tablist"}
# Where the real content lives on common sites; the first selector that matches exactly one element wins.
_CONTENT_ROOTS = [".mw-parser-output", "#mw-content-text", "main", "[role=main]", "article", "#content",
                  ".document", ".body", "#main"]
_SECTION_LABELS = {
    "see also", "references", "external links", "notes", "further reading", "contents", "bibliography",
    "sources", "footnotes", "citations", "works cited", "table of contents", "navigation", "navigation menu",
    "previous topic", "next topic", "this page", "related", "related topics", "search", "index", "glossary",
    "같이 보기", "각주", "참고 문헌", "참고문헌", "외부 링크", "목차", "출처", "더 읽어보기", "읽어보기",
    "참조", "주석", "내용", "용어집", "관련 항목", "둘러보기",
}
_TERM_HEADER = re.compile(
    r"\b(terms?|words?|names?|concepts?|keywords?|abbreviations?|acronyms?|glossary|entry|expressions?|jargon)\b"
    r"|용어|단어|낱말|이름|개념|약어|표제어|항목",
    re.IGNORECASE,
)
_DEFINITION_HEADER = re.compile(
    r"\b(definitions?|meanings?|descriptions?|explanations?|defined as|gloss)\b|정의|뜻|설명|의미|풀이",
    re.IGNORECASE,
)
_INDEX_HEADING = re.compile(r"^(?:[A-Za-z]|[ㄱ-ㅎ]|[0-9]\s*[-–]\s*[0-9]|[A-Z]\s*[-–]\s*[A-Z]|symbols|numbers)$")
MAX_TERM_CHARS = 150
MIN_STRUCTURED_ENTRIES = 3  # fewer dl/table entries than this and heading sections are tried too


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


_CSS_MEDIA = re.compile(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", re.IGNORECASE)
_CSS_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_CSS_SIMPLE = re.compile(r"^[a-zA-Z0-9]*([.#])([\w-]+)$")


def _hidden_selectors(soup: BeautifulSoup) -> tuple[set[str], set[str]]:
    """Classes and ids that the page's own <style> blocks hide (outside @media rules), e.g. .note { display:none }."""
    classes: set[str] = set()
    ids: set[str] = set()
    for style in soup.find_all("style"):
        css = _CSS_MEDIA.sub("", style.get_text())  # print-only or screen-size rules do not hide for everyone
        for selectors, body in _CSS_RULE.findall(css):
            if not _HIDDEN_STYLE.search(body):
                continue
            for selector in selectors.split(","):
                match = _CSS_SIMPLE.match(selector.strip())
                if match:
                    (classes if match.group(1) == "." else ids).add(match.group(2).lower())
    return classes, ids


def _is_hidden(tag: Tag) -> bool:
    if tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
        return True
    style = tag.get("style")
    return bool(style and _HIDDEN_STYLE.search(style))


def _classes(tag: Tag) -> set[str]:
    classes = tag.get("class") or []
    if isinstance(classes, str):
        classes = classes.split()
    return {c.lower() for c in classes}


def _should_drop(tag: Tag, hidden_classes: set[str], hidden_ids: set[str]) -> bool:
    if _is_hidden(tag):
        return True
    if (tag.get("role") or "").lower() in _DROP_ROLES:
        return True
    classes = _classes(tag)
    tag_id = str(tag.get("id") or "").lower()
    if classes & (_DROP_CLASSES | hidden_classes) or tag_id in _DROP_IDS or tag_id in hidden_ids:
        return True
    if classes & _PERMALINK_CLASSES and len(_norm(tag.get_text())) <= 2:
        return True
    # Wikipedia footnote calls are <sup class="reference">; Sphinx uses class "reference" on ordinary links.
    if "reference" in classes and tag.name != "a":
        return True
    # An unmarked <sup>[3]</sup> or <sup>a</sup> after a word is a footnote call too.
    return tag.name == "sup" and bool(_FOOTNOTE_SUP.fullmatch(_norm(tag.get_text())))


_DISPLAYSTYLE = re.compile(r"^\{\\(?:displaystyle|textstyle)\s*(.*)\}$", re.DOTALL)


def _inline_math(soup: BeautifulSoup) -> None:
    """Replace MediaWiki math (hidden MathML plus an aria-hidden image) by its LaTeX source, before hiding rules."""
    for element in soup.select(".mwe-math-element"):
        math, img = element.find("math"), element.find("img")
        latex = (math.get("alttext") if math is not None else None) or (img.get("alt") if img is not None else "")
        match = _DISPLAYSTYLE.match(_norm(latex or ""))
        element.replace_with(NavigableString(match.group(1).strip() if match else _norm(latex or "")))


def _clean(soup: BeautifulSoup) -> Tag:
    """Remove hidden, navigational and editorial elements; return the element holding the main content."""
    _inline_math(soup)
    hidden_classes, hidden_ids = _hidden_selectors(soup)
    for tag in soup.find_all(_DROP_TAGS + ["style"]):
        tag.decompose()
    # Page-level header and footer are chrome; inside an article or section they may hold an entry's heading.
    for tag in soup.find_all(["header", "footer"]):
        if not tag.decomposed and tag.find_parent(["article", "main", "section"]) is None:
            tag.decompose()
    for node in soup.find_all(string=lambda s: isinstance(s, Comment)):
        node.extract()
    # Collect first, then decompose, skipping tags already removed with an ancestor.
    doomed = [tag for tag in soup.find_all(True) if _should_drop(tag, hidden_classes, hidden_ids)]
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()
    for selector in _CONTENT_ROOTS:
        found = soup.select(selector)
        if len(found) == 1:
            return found[0]
    return soup.body or soup


def _render(node: Tag | NavigableString) -> str:
    """Readable one-line text of an element: blocks become spaces, list items are joined inline with ';'."""
    parts: list[str] = []

    def walk(n: Tag | NavigableString, in_code: bool) -> None:
        if isinstance(n, NavigableString):
            if isinstance(n, (Comment, Declaration, Doctype, ProcessingInstruction)):
                return
            text = str(n)
            if not in_code:
                # Footnote marks typed as plain text; inside code "x[1]" is an index, not a footnote.
                text = _FOOTNOTE_TEXT.sub("", text)
            parts.append(text)
            return
        if n.name == "br":
            parts.append(" ")
            return
        if n.name in ("ul", "ol"):
            parts.append(f" {_inline_list(_render(li) for li in n.find_all('li', recursive=False))} ")
            return
        if n.name == "dl":
            # A definition list inside a definition reads as "term: definition; term: definition."
            items = (" ".join(_render(t) for t in dts).rstrip(":") + ": " + " ".join(_render(d) for d in dds)
                     for dts, dds in _dl_groups(n))
            parts.append(f" {_inline_list(items)} ")
            return
        block = n.name in _BLOCK_TAGS
        if block:
            parts.append(" ")
        for child in n.children:
            walk(child, in_code or n.name in _CODE_TAGS)
        if block:
            parts.append(" ")

    walk(node, False)
    return _norm(_MARKERS.sub("", "".join(parts)))


def _inline_list(items: Iterable[str]) -> str:
    """List items on one line: "a; b; c." (items that already end a sentence keep their own punctuation)."""
    items = [i for i in items if i]
    text = " ".join(i if i[-1] in _END_PUNCT else i + ";" for i in items[:-1])
    if items:
        last = items[-1]
        text = f"{text} {last if last[-1] in _END_PUNCT else last + '.'}".strip()
    return text


def _clean_term(text: str) -> str:
    text = _norm(text).rstrip(":：").strip()
    return text if 0 < len(text) <= MAX_TERM_CHARS else ""


def _dl_groups(dl: Tag) -> list[tuple[list[Tag], list[Tag]]]:
    """(dt elements, dd elements) groups of a definition list, in order; dd with no dt before them are left out."""
    groups: list[tuple[list[Tag], list[Tag]]] = []
    # dt/dd may be wrapped in <div> (allowed by HTML), so take every dt/dd whose nearest dl is this one.
    for item in dl.find_all(["dt", "dd"]):
        if item.find_parent("dl") is not dl:
            continue
        if item.name == "dt":
            if not groups or groups[-1][1]:
                groups.append(([], []))
            groups[-1][0].append(item)
        elif groups:
            groups[-1][1].append(item)
    return groups


def _dl_entries(root: Tag, base_url: str) -> list[GlossaryEntry]:
    entries: list[GlossaryEntry] = []
    for dl in root.find_all("dl"):
        if dl.find_parent("dd") is not None:
            continue  # a list inside a definition is part of that definition's text
        for dts, dds in _dl_groups(dl):
            # Several dd for one dt are senses of one term: joined into one definition.
            definition = " ".join(d for d in map(_render, dds) if d)
            if not definition:
                continue
            # Several dt before one dd are aliases: each becomes its own row with the shared definition.
            for term in dict.fromkeys(_clean_term(_render(dt)) for dt in dts):
                if term:
                    entries.append(GlossaryEntry(term, definition, base_url))
    return entries


def _rows(table: Tag) -> list[list[Tag]]:
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is table:
            rows.append([c for c in tr.find_all(["td", "th"], recursive=False)])
    return rows


def _is_layout_table(table: Tag) -> bool:
    if (table.get("role") or "").lower() in ("presentation", "none"):
        return True
    if _classes(table) & {"infobox", "navbox", "sidebar", "metadata", "layout", "vertical-navbox", "ambox", "toc"}:
        return True
    return table.find("table") is not None  # a table holding tables arranges the page, it lists nothing


def _link_density(cells: list[Tag]) -> float:
    text = sum(len(_norm(c.get_text())) for c in cells)
    links = sum(len(_norm(a.get_text())) for c in cells for a in c.find_all("a"))
    return links / text if text else 1.0


def _avg_len(body: list[list[Tag]], col: int) -> float:
    cells = [len(_norm(r[col].get_text())) for r in body if len(r) > col]
    return sum(cells) / len(cells) if cells else 0.0


def _table_columns(header: list[str], body: list[list[Tag]]) -> tuple[int, int] | None:
    """(term column, definition column) by header words, else by shape (short cells, then long cells)."""
    term_col = next((i for i, h in enumerate(header) if _TERM_HEADER.search(h)), None)
    def_col = next((i for i, h in enumerate(header) if _DEFINITION_HEADER.search(h) and i != term_col), None)
    if def_col is not None:
        return (term_col if term_col is not None else (0 if def_col != 0 else 1)), def_col
    if any(header) and term_col is None:
        return None  # headed, but by neither kind of header: not a glossary (e.g. a schedule or a price list)
    # No definition header: need at least three rows, short term cells and a clearly longer-text column.
    term_col = term_col or 0
    usable = [r for r in body if len(r) > term_col + 0 and len(r) >= 2]
    if len(usable) < 3 or len(usable) < 0.8 * len(body):
        return None
    width = min(len(r) for r in usable)
    others = [c for c in range(width) if c != term_col]
    if not others:
        return None
    def_col = max(others, key=lambda c: _avg_len(usable, c))
    terms = [len(_norm(r[term_col].get_text())) for r in usable]
    avg_term, avg_def = sum(terms) / len(terms), _avg_len(usable, def_col)
    if max(terms) > MAX_TERM_CHARS or avg_term > 60 or avg_def < 20 or avg_def < 1.5 * avg_term:
        return None
    if _link_density([r[def_col] for r in usable]) > 0.8:
        return None  # cells that are mostly links are a menu, not definitions
    return term_col, def_col


def _table_entries(root: Tag, base_url: str) -> list[GlossaryEntry]:
    entries: list[GlossaryEntry] = []
    for table in root.find_all("table"):
        if _is_layout_table(table):
            continue
        rows = [r for r in _rows(table) if r]
        if not rows:
            continue
        header_rows = [r for r in rows if r[0].find_parent("thead") is not None]
        if not header_rows and all(c.name == "th" for c in rows[0]) and len(rows[0]) > 1:
            header_rows = [rows[0]]
        header = [_render(c) for c in header_rows[-1]] if header_rows else []
        header_ids = {id(r) for r in header_rows}  # by identity: two rows with equal cells are still two rows
        body = [r for r in rows if id(r) not in header_ids]
        columns = _table_columns(header, body)
        if columns is None:
            continue
        term_col, def_col = columns
        for row in body:
            if len(row) <= max(term_col, def_col):
                continue
            term, definition = _clean_term(_render(row[term_col])), _render(row[def_col])
            if term and definition:
                entries.append(GlossaryEntry(term, definition, base_url))
    return entries


_HEADINGS = ["h2", "h3", "h4", "h5", "h6"]


def _heading_entries(root: Tag, base_url: str) -> list[GlossaryEntry]:
    entries: list[GlossaryEntry] = []
    for heading in root.find_all(_HEADINGS):
        term = _clean_term(_render(heading))
        if not term or term.lower() in _SECTION_LABELS or _INDEX_HEADING.match(term):
            continue
        # MediaWiki wraps headings (<div class="mw-heading"><h3>..</h3><span edit/></div>): walk from the wrapper.
        anchor = heading
        parent = heading.parent
        if isinstance(parent, Tag) and parent.name == "div" and len(parent.find_all(True, recursive=False)) == 1:
            anchor = parent
        parts = []
        for sibling in anchor.find_next_siblings():
            if sibling.name in _HEADINGS or sibling.name == "h1" or sibling.find(_HEADINGS + ["h1"]) is not None:
                break
            if sibling.name in ("p", "ul", "ol", "blockquote", "pre", "dl", "div"):
                parts.append(_render(sibling))
        definition = " ".join(p for p in parts if p)
        if definition:
            entries.append(GlossaryEntry(term, definition, base_url))
    return entries


def dedupe(entries: Iterable[GlossaryEntry]) -> list[GlossaryEntry]:
    """Entries with each (term, definition) pair kept once, first occurrence first."""
    seen: set[tuple[str, str]] = set()
    out = []
    for entry in entries:
        key = (entry.term, entry.definition)
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def parse_html(html: str) -> BeautifulSoup:
    """A page's parse tree (lxml), parsed once for both extraction and language links."""
    with warnings.catch_warnings():
        # XHTML pages (git's manual, for one) parse fine as HTML; the warning would only alarm users.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(html, "lxml")


def extract_glossary(html: str, base_url: str) -> list[GlossaryEntry]:
    """(term, definition) entries found in a page's definition lists and tables, else in its heading sections."""
    return extract_entries(parse_html(html), base_url)


def extract_entries(soup: BeautifulSoup, base_url: str) -> list[GlossaryEntry]:
    """extract_glossary on a parsed page; it removes chrome from soup in place, so take language links first."""
    root = _clean(soup)
    entries = _dl_entries(root, base_url) + _table_entries(root, base_url)
    if len(entries) < MIN_STRUCTURED_ENTRIES:
        # Heading sections are the weakest signal (any article has headings), so only when nothing better is there.
        entries += _heading_entries(root, base_url)
    return dedupe(entries)


def language_links(soup: BeautifulSoup, base_url: str, languages: Sequence[str]) -> list[str]:
    """Absolute URLs of the page's own links to its versions in the given languages (hreflang)."""
    found: dict[str, str] = {}
    for tag in soup.find_all(["a", "link"], hreflang=True, href=True):
        lang = str(tag["hreflang"]).lower()
        if lang in languages and lang not in found:
            found[lang] = urldefrag(urljoin(base_url, str(tag["href"])))[0]
    return [found[lang] for lang in languages if lang in found]
