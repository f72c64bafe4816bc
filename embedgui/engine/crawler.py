"""Glossary crawler: fetch pages politely and safely, pull (term, definition) pairs out of them, write them out.

Three page layouts are understood, whatever the site: definition lists (dl/dt/dd), tables with a term column and a
definition column, and heading-plus-paragraph glossaries. The engine takes and returns plain data, so the CLI and
the GUI's Data tab (which calls `crawl` from a background thread) share it.
"""

from __future__ import annotations

import codecs
import csv
import email.utils
import ipaddress
import json
import re
import socket
import threading
import time
import urllib.robotparser
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag, XMLParsedAsHTMLWarning
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

from embedgui.engine.hosted import is_hosted

# Wikimedia asks for contact details: pass --user-agent "... (you@example.org)" for large crawls.
USER_AGENT = "embedgui-crawler/0.1 (glossary crawler for embedding fine-tuning; python-requests)"
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "crawler_samples"

# English Wikipedia glossaries on computing, mathematics and science. Korean equivalents are not guessed: the
# crawler follows each page's own interlanguage link to ko.wikipedia (see `follow_languages`), so only Korean
# pages that really exist are fetched.
WIKIPEDIA_GLOSSARY_TITLES = (
    "Glossary_of_artificial_intelligence",
    "Glossary_of_computer_science",
    "Glossary_of_computer_hardware_terms",
    "Glossary_of_computer_graphics",
    "Glossary_of_machine_vision",
    "Glossary_of_Unified_Modeling_Language_terms",
    "Glossary_of_quantum_computing",
    "Glossary_of_robotics",
    "Glossary_of_electrical_and_electronics_engineering",
    "Glossary_of_probability_and_statistics",
    "Glossary_of_linear_algebra",
    "Glossary_of_calculus",
    "Glossary_of_graph_theory",
    "Glossary_of_game_theory",
    "Glossary_of_areas_of_mathematics",
    "Glossary_of_physics",
    "Glossary_of_chemistry_terms",
    "Glossary_of_biology",
)
WIKIPEDIA_GLOSSARY_URLS = tuple(f"https://en.wikipedia.org/wiki/{title}" for title in WIKIPEDIA_GLOSSARY_TITLES)


@dataclass(frozen=True)
class Source:
    """A named, built-in set of start pages, plus the languages whose equivalents are followed from them."""

    urls: tuple[str, ...]
    follow_languages: tuple[str, ...] = ()
    description: str = ""


SOURCES: dict[str, Source] = {
    "wikipedia_glossary": Source(
        WIKIPEDIA_GLOSSARY_URLS, ("ko",),
        "English Wikipedia 'Glossary of ...' pages, plus their Korean versions where Wikipedia links one"),
    "wikipedia_glossary_en": Source(WIKIPEDIA_GLOSSARY_URLS, (), "the same English pages, without Korean"),
}


@dataclass(frozen=True)
class GlossaryEntry:
    """One term and its definition, with the page it came from."""

    term: str
    definition: str
    source_url: str


@dataclass(frozen=True)
class PageError:
    """A page that could not be crawled, and why (one sentence)."""

    url: str
    reason: str


@dataclass(frozen=True)
class CrawlEvent:
    """Progress: kind is 'started', 'done' (with the page's new entries) or 'failed' (with a reason)."""

    kind: str
    url: str
    index: int
    total: int
    entries: tuple[GlossaryEntry, ...] = ()
    reason: str = ""


@dataclass
class CrawlOptions:
    """How politely and how safely to fetch. Tests set delay and backoff near 0."""

    delay: float = 1.0  # seconds between two requests to the same host
    timeout: float = 20.0  # connect and read timeout per request, seconds
    retries: int = 3  # extra attempts after a 429, a 5xx, a timeout or a dropped connection
    backoff: float = 1.0  # first retry waits this long, then twice as long each time
    max_retry_after: float = 60.0  # a longer Retry-After gives up on the page instead of waiting
    max_bytes: int = 8 * 1024 * 1024  # response size cap; large Wikipedia glossaries are about 1-3 MB
    max_redirects: int = 5
    max_crawl_delay: float = 30.0  # robots.txt Crawl-delay is honoured up to this many seconds
    user_agent: str = USER_AGENT
    hosted: bool | None = None  # None: decide with is_hosted(); True refuses non-public addresses
    follow_languages: tuple[str, ...] = ()  # e.g. ("ko",): also crawl the page's hreflang="ko" equivalent

    def is_hosted(self) -> bool:
        return is_hosted() if self.hosted is None else self.hosted


@dataclass
class CrawlResult:
    """Everything a crawl produced: deduplicated entries, errors by URL, and counts for a summary."""

    entries: list[GlossaryEntry] = field(default_factory=list)
    errors: list[PageError] = field(default_factory=list)
    pages_fetched: int = 0
    pages_total: int = 0
    entries_per_page: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    def error_rows(self) -> list[list[str]]:
        """[url, reason] rows for an error table."""
        return [[e.url, e.reason] for e in self.errors]


class FetchError(Exception):
    """A page could not be fetched; the message is the reason shown next to its URL."""


class UnsafeAddressError(FetchError):
    """The URL points at an address the crawler refuses to contact (hosted mode, or a bad scheme)."""


class CrawlStopped(Exception):
    """The stop event was set while waiting or downloading."""


# ----------------------------------------------------------------------------------------------------- sources


def resolve_sources(names: Iterable[str]) -> list[str]:
    """Start URLs of the named built-in sources, in order, without duplicates."""
    urls: list[str] = []
    for name in names:
        if name not in SOURCES:
            known = ", ".join(sorted(SOURCES))
            raise ValueError(f"Unknown source {name!r}: choose one of {known}.")
        urls.extend(SOURCES[name].urls)
    return list(dict.fromkeys(urls))


def source_languages(names: Iterable[str]) -> tuple[str, ...]:
    """Languages the named sources follow interlanguage links to (e.g. ('ko',) for wikipedia_glossary)."""
    langs: list[str] = []
    for name in names:
        if name in SOURCES:
            langs.extend(SOURCES[name].follow_languages)
    return tuple(dict.fromkeys(langs))


def read_url_file(path: str | Path) -> list[str]:
    """URLs from a text file: one a line; blank lines and lines starting with # are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"Cannot read the URL file {path}: {exc.strerror or exc}; check the path.") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"The URL file {path} is not UTF-8 text; save it as UTF-8.") from exc
    urls = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()  # allow a trailing " # comment" too
        if line and not line.startswith("#"):
            urls.append(line)
    return urls


def sample_pages() -> list[Path]:
    """The offline sample glossary pages used by --dry-run."""
    return sorted(SAMPLES_DIR.glob("*.html"))


# ------------------------------------------------------------------------------------------- address safety


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local, multicast etc."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id such as %eth0
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not is_public_address(str(inner)):
            return False
    # is_global alone lets multicast (e.g. 224.0.0.1) through, so the other flags are checked as well.
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified
    )


def _resolve(host: str, port: int) -> list[str]:
    """All addresses a host name resolves to (a literal IP resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_url(url: str, *, hosted: bool) -> None:
    """Raise UnsafeAddressError unless url is http(s) and, in hosted mode, every address it resolves to is public."""
    parts = urlsplit(url)
    if not parts.scheme:
        raise UnsafeAddressError("not a full URL; write it with http:// or https:// in front")
    if parts.scheme not in ("http", "https"):
        raise UnsafeAddressError(f"only http and https URLs can be crawled, not {parts.scheme}: ones")
    if not parts.hostname:
        raise UnsafeAddressError("the URL has no host name; write it as https://host/path")
    if not hosted:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = _resolve(parts.hostname, port)
    except (OSError, ValueError) as exc:
        raise FetchError(f"cannot resolve the host {parts.hostname} ({exc})") from exc
    bad = [a for a in addresses if not is_public_address(a)]
    if bad or not addresses:
        raise UnsafeAddressError(
            f"the host {parts.hostname} resolves to the non-public address {', '.join(bad) or 'none'}, "
            "which a hosted crawler must not contact"
        )


def _guarded_session(hosted: bool):
    """A requests session; in hosted mode it re-checks the address actually connected to (against DNS rebinding)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    session = requests.Session()
    if not hosted:
        return session

    def check_peer(sock: socket.socket, host: str) -> None:
        peer = sock.getpeername()[0]
        if not is_public_address(peer):
            sock.close()
            raise UnsafeAddressError(f"the host {host} connected to the non-public address {peer}, refused")

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            check_peer(sock, self.host)
            return sock

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            check_peer(sock, self.host)
            return sock

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}

    # Environment proxies would make the peer check meaningless (the peer would be the proxy), so none are used.
    session.trust_env = False
    session.mount("http://", GuardedAdapter())
    session.mount("https://", GuardedAdapter())
    return session


# ----------------------------------------------------------------------------------------------- encodings

# WHATWG encoding labels that Python spells differently or that browsers widen to a superset.
_CODEC_ALIASES = {
    "euc-kr": "cp949", "euc_kr": "cp949", "euckr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949",
    "ksc5601": "cp949", "ksc_5601": "cp949", "korean": "cp949", "windows-949": "cp949", "x-windows-949": "cp949",
    "ms949": "cp949", "uhc": "cp949",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "windows-31j": "cp932",
}
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)


def _codec(label: str | None) -> str | None:
    """Python codec name for an encoding label, or None when the label is unknown."""
    if not label:
        return None
    label = label.strip().lower()
    name = _CODEC_ALIASES.get(label, label)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode a page: BOM, then the Content-Type charset, then <meta>, then UTF-8, then detection. (text, codec)."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                      (codecs.BOM_UTF16_BE, "utf-16-be")):
        if body.startswith(bom):
            return body[len(bom):].decode(name, errors="replace"), name
    declared = []
    if content_type:
        match = _HEADER_CHARSET.search(content_type)
        declared.append(_codec(match.group(1)) if match else None)
    match = _META_CHARSET.search(body[:8192])
    meta = _codec(match.group(1).decode("ascii")) if match else None
    # A page whose <meta> says utf-16 was readable as ASCII to find that tag, so it cannot be UTF-16 (WHATWG rule).
    declared.append("utf-8" if meta and meta.startswith("utf-16") else meta)
    for name in [d for d in declared if d] + ["utf-8"]:
        try:
            return body.decode(name), name
        except UnicodeDecodeError:
            continue  # the declaration is wrong; try the next clue instead of producing mojibake
    from charset_normalizer import from_bytes

    best = from_bytes(body).best()
    if best is not None:
        name = _codec(best.encoding) or best.encoding
        return body.decode(name, errors="replace"), name
    fallback = next((d for d in declared if d), "utf-8")
    return body.decode(fallback, errors="replace"), fallback


# ----------------------------------------------------------------------------------------------- extraction

# Inline markers that survive in text form: edit links, permalinks and editorial footnote marks.
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


def _parse(html: str) -> BeautifulSoup:
    with warnings.catch_warnings():
        # XHTML pages (git's manual, for one) parse fine as HTML; the warning would only alarm users.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(html, "lxml")


def extract_glossary(html: str, base_url: str) -> list[GlossaryEntry]:
    """(term, definition) entries found in a page's definition lists and tables, else in its heading sections."""
    return _extract(_parse(html), base_url)


def _extract(soup: BeautifulSoup, base_url: str) -> list[GlossaryEntry]:
    root = _clean(soup)
    entries = _dl_entries(root, base_url) + _table_entries(root, base_url)
    if len(entries) < MIN_STRUCTURED_ENTRIES:
        # Heading sections are the weakest signal (any article has headings), so only when nothing better is there.
        entries += _heading_entries(root, base_url)
    return dedupe(entries)


def _language_links(soup: BeautifulSoup, base_url: str, languages: Sequence[str]) -> list[str]:
    """Absolute URLs of the page's own links to its versions in the given languages (hreflang)."""
    found: dict[str, str] = {}
    for tag in soup.find_all(["a", "link"], hreflang=True, href=True):
        lang = str(tag["hreflang"]).lower()
        if lang in languages and lang not in found:
            found[lang] = urldefrag(urljoin(base_url, str(tag["href"])))[0]
    return [found[lang] for lang in languages if lang in found]


# ------------------------------------------------------------------------------------------------ fetching


@dataclass
class FetchedPage:
    """The final URL after redirects, its Content-Type and its body."""

    url: str
    content_type: str
    body: bytes


_RETRY_STATUSES = {429, 500, 502, 503, 504}
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _is_dns_failure(exc: Exception) -> bool:
    from urllib3.exceptions import NameResolutionError

    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NameResolutionError)


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


class Fetcher:
    """HTTP client with robots.txt, a per-host delay, retries, a size cap and (in hosted mode) address checks."""

    def __init__(self, options: CrawlOptions, stop_event: threading.Event | None = None) -> None:
        self.options = options
        self.hosted = options.is_hosted()
        self.stop_event = stop_event or threading.Event()
        self.session = _guarded_session(self.hosted)
        self.session.headers.update({"User-Agent": options.user_agent,
                                     "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"})
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._next_time: dict[str, float] = {}
        self._host_delay: dict[str, float] = {}

    def close(self) -> None:
        self.session.close()

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.stop_event.wait(seconds):
            raise CrawlStopped

    def _wait_turn(self, url: str) -> None:
        host = urlsplit(url).netloc.lower()
        self._sleep(self._next_time.get(host, 0.0) - time.monotonic())
        self._next_time[host] = time.monotonic() + self._host_delay.get(host, self.options.delay)

    def _robots_for(self, url: str) -> urllib.robotparser.RobotFileParser | None:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc.lower()}"
        if key not in self._robots:
            parser = None
            try:
                page = self._fetch(f"{key}/robots.txt", check_robots=False, cap=512 * 1024, html_only=False)
                parser = urllib.robotparser.RobotFileParser()
                parser.parse(decode_html(page.body, page.content_type)[0].splitlines())
                delay = parser.crawl_delay(self.options.user_agent)
                if delay:
                    host = parts.netloc.lower()
                    self._host_delay[host] = max(self.options.delay, min(float(delay), self.options.max_crawl_delay))
            except UnsafeAddressError:
                raise
            except FetchError:
                parser = None  # missing or unreachable robots.txt: everything is allowed
            self._robots[key] = parser
        return self._robots[key]

    def allowed(self, url: str) -> bool:
        parser = self._robots_for(url)
        return parser is None or parser.can_fetch(self.options.user_agent, url)

    def fetch(self, url: str) -> FetchedPage:
        """GET an HTML page, following redirects (each hop re-checked); raises FetchError with a reason."""
        return self._fetch(url, check_robots=True, cap=self.options.max_bytes, html_only=True)

    def _fetch(self, url: str, *, check_robots: bool, cap: int, html_only: bool) -> FetchedPage:
        current = url
        for _hop in range(self.options.max_redirects + 1):
            check_url(current, hosted=self.hosted)
            if check_robots and not self.allowed(current):
                raise FetchError(f"disallowed by robots.txt of {urlsplit(current).netloc}; the site asks crawlers to "
                                 "keep away from this page, so leave it out")
            status, headers, body = self._get_with_retries(current, cap)
            if status in _REDIRECT_STATUSES and headers.get("Location"):
                current = urldefrag(urljoin(current, headers["Location"]))[0]
                continue
            if status >= 400:
                hint = "check the URL" if status in (404, 410) else "check the URL or try again later"
                raise FetchError(f"the server answered HTTP {status}; {hint}")
            content_type = headers.get("Content-Type", "")
            mime = content_type.split(";", 1)[0].strip().lower()
            if html_only and mime and mime not in _HTML_TYPES:
                raise FetchError(f"not an HTML page (Content-Type {mime})")
            return FetchedPage(current, content_type, body or b"")
        raise FetchError(f"more than {self.options.max_redirects} redirects; use the page's final URL instead")

    def _get_with_retries(self, url: str, cap: int) -> tuple[int, Mapping[str, str], bytes | None]:
        import requests

        attempts = self.options.retries + 1
        for attempt in range(attempts):
            self._wait_turn(url)
            wait = self.options.backoff * (2**attempt)
            try:
                status, headers, body = self._get_once(url, cap)
            except FetchError:
                raise
            except (requests.Timeout, requests.ConnectionError) as exc:
                if _is_dns_failure(exc):  # not transient: retrying would only add waiting
                    raise FetchError(f"cannot resolve the host name {urlsplit(url).hostname}; check the URL and "
                                     "that this machine is online") from exc
                if attempt == attempts - 1:
                    kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                    raise FetchError(f"{kind} after {attempts} attempts ({type(exc).__name__}); check the address "
                                     "and your connection") from exc
                self._sleep(wait)
                continue
            except requests.RequestException as exc:
                raise FetchError(f"request failed ({type(exc).__name__}: {exc})") from exc
            if status in _RETRY_STATUSES:
                if attempt == attempts - 1:
                    raise FetchError(f"the server answered HTTP {status} {attempts} times; try again later")
                asked = _retry_after(headers.get("Retry-After"))
                if asked is not None and asked > self.options.max_retry_after:
                    raise FetchError(f"the server answered HTTP {status} and asked to retry after {asked:.0f} s, "
                                     f"longer than the {self.options.max_retry_after:.0f} s limit")
                self._sleep(asked if asked is not None else wait)
                continue
            return status, headers, body
        raise AssertionError("unreachable")

    def _get_once(self, url: str, cap: int) -> tuple[int, Mapping[str, str], bytes | None]:
        from requests.structures import CaseInsensitiveDict

        timeout = self.options.timeout
        with self.session.get(url, stream=True, allow_redirects=False, timeout=(timeout, timeout)) as response:
            headers = CaseInsensitiveDict(response.headers)  # servers may send 'location' in lower case
            if not 200 <= response.status_code < 300:
                return response.status_code, headers, None  # redirects, errors and retries need no body
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap:
                raise FetchError(f"the response is {_megabytes(int(declared))}, over the {_megabytes(cap)} size cap")
            chunks, size = [], 0
            deadline = time.monotonic() + 4 * timeout  # a server dripping bytes slowly must not hold us forever
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > cap:
                    raise FetchError(f"the response grew past the {_megabytes(cap)} size cap; download stopped")
                if time.monotonic() > deadline:
                    raise FetchError(f"the download took longer than {4 * timeout:.0f} s; stopped")
                if self.stop_event.is_set():
                    raise CrawlStopped
                chunks.append(chunk)
            return response.status_code, headers, b"".join(chunks)


# ------------------------------------------------------------------------------------------------- crawling


def _emit(on_event: Callable[[CrawlEvent], None] | None, event: CrawlEvent) -> None:
    if on_event is not None:
        on_event(event)


class _Collector:
    """Keeps entries deduplicated across pages and applies the per-source limit."""

    def __init__(self, result: CrawlResult, limit_per_source: int | None) -> None:
        self.result = result
        self.limit = limit_per_source
        self.seen: set[tuple[str, str]] = {(e.term, e.definition) for e in result.entries}

    def add(self, url: str, entries: list[GlossaryEntry]) -> tuple[GlossaryEntry, ...]:
        new = []
        for entry in entries:
            if self.limit is not None and len(new) >= self.limit:
                break
            key = (entry.term, entry.definition)
            if key not in self.seen:
                self.seen.add(key)
                new.append(entry)
        self.result.entries.extend(new)
        self.result.entries_per_page[url] = len(new)
        return tuple(new)


def crawl(
    urls: Sequence[str],
    *,
    limit_per_source: int | None = None,
    options: CrawlOptions | None = None,
    on_event: Callable[[CrawlEvent], None] | None = None,
    stop_event: threading.Event | None = None,
) -> CrawlResult:
    """Fetch each page and extract its glossary; a failed page becomes a PageError and the crawl goes on."""
    options = options or CrawlOptions()
    stop_event = stop_event or threading.Event()
    queue = list(dict.fromkeys(urldefrag(u.strip())[0] for u in urls if u.strip()))
    queued = set(queue)
    start_pages = len(queue)
    result = CrawlResult(pages_total=len(queue))
    collector = _Collector(result, limit_per_source)
    fetcher = Fetcher(options, stop_event)
    try:
        index = 0
        while index < len(queue):
            url = queue[index]
            index += 1
            if stop_event.is_set():
                result.stopped = True
                break
            _emit(on_event, CrawlEvent("started", url, index, len(queue)))
            try:
                page = fetcher.fetch(url)
                text, _codec_name = decode_html(page.body, page.content_type)
                soup = _parse(text)
                # Language links live in the page chrome that extraction strips, so look for them first; only
                # start pages are followed, so a Korean page never leads on to a third language.
                languages = options.follow_languages if index <= start_pages else ()
                for link in _language_links(soup, page.url, languages):
                    if link not in queued:
                        queued.add(link)
                        queue.append(link)
                        result.pages_total = len(queue)
                entries = _extract(soup, page.url)
            except CrawlStopped:
                result.stopped = True
                break
            except Exception as exc:  # noqa: BLE001 (one odd page, e.g. absurdly deep markup, must not end the crawl)
                reason = str(exc) if isinstance(exc, FetchError) else f"could not read the page ({type(exc).__name__})"
                result.errors.append(PageError(url, reason))
                _emit(on_event, CrawlEvent("failed", url, index, len(queue), reason=reason))
                continue
            result.pages_fetched += 1
            new = collector.add(url, entries)
            if not entries:
                reason = ("no glossary found: the page has no definition list, term/definition table or "
                          "heading sections; check that it is a glossary page")
                result.errors.append(PageError(url, reason))
                _emit(on_event, CrawlEvent("failed", url, index, len(queue), reason=reason))
                continue
            _emit(on_event, CrawlEvent("done", url, index, len(queue), entries=new))
    finally:
        fetcher.close()
    return result


def crawl_files(
    paths: Sequence[str | Path],
    *,
    limit_per_source: int | None = None,
    on_event: Callable[[CrawlEvent], None] | None = None,
) -> CrawlResult:
    """Extract glossaries from local HTML files (no network); used by --dry-run and for uploaded pages."""
    result = CrawlResult(pages_total=len(paths))
    collector = _Collector(result, limit_per_source)
    for index, path in enumerate(map(Path, paths), start=1):
        url = path.resolve().as_uri()
        _emit(on_event, CrawlEvent("started", url, index, len(paths)))
        try:
            entries = extract_glossary(decode_html(path.read_bytes())[0], url)
        except OSError as exc:
            reason = f"cannot read the file ({exc.strerror or exc}); check the path"
            result.errors.append(PageError(url, reason))
            _emit(on_event, CrawlEvent("failed", url, index, len(paths), reason=reason))
            continue
        result.pages_fetched += 1
        new = collector.add(url, entries)
        _emit(on_event, CrawlEvent("done", url, index, len(paths), entries=new))
    return result


# -------------------------------------------------------------------------------------------------- writing


def write_glossary_csv(entries: Iterable[GlossaryEntry], path: str | Path) -> Path:
    """Write term,definition,source_url rows (UTF-8, with a header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["term", "definition", "source_url"])
        for e in entries:
            writer.writerow([e.term, e.definition, e.source_url])
    return path


def write_pairs_jsonl(entries: Iterable[GlossaryEntry], path: str | Path) -> Path:
    """Write one {"anchor": term, "positive": definition} object a line (UTF-8, not ASCII-escaped)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps({"anchor": e.term, "positive": e.definition}, ensure_ascii=False) + "\n")
    return path
