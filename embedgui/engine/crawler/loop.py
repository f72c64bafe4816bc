"""The crawl loop: fetch each page, extract its glossary, keep entries once, report progress, write as it goes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag

from embedgui.engine.crawler.encoding import decode_html
from embedgui.engine.crawler.extract import (
    GlossaryEntry,
    extract_entries,
    extract_glossary,
    language_links,
    parse_html,
)
from embedgui.engine.crawler.net import CrawlOptions, CrawlStopped, Fetcher, FetchError
from embedgui.engine.crawler.output import CrawlOutput, Resumed

NO_GLOSSARY = ("no glossary found: the page has no definition list, term/definition table or heading sections; "
               "check that it is a glossary page")


@dataclass(frozen=True)
class PageError:
    """A page that could not be crawled, and why (one sentence)."""

    url: str
    reason: str


@dataclass(frozen=True)
class CrawlEvent:
    """Progress: kind is 'started', 'done' (with the page's new entries), 'failed' (with a reason) or 'skipped'.

    'skipped' is a page an earlier, unfinished run of the same crawl into the same output already finished.
    """

    kind: str
    url: str
    index: int
    total: int
    entries: tuple[GlossaryEntry, ...] = ()
    reason: str = ""


@dataclass
class CrawlResult:
    """Everything a crawl produced: deduplicated entries, errors by URL, and counts for a summary."""

    entries: list[GlossaryEntry] = field(default_factory=list)
    errors: list[PageError] = field(default_factory=list)
    pages_fetched: int = 0  # pages finished, those of a resumed earlier run included
    pages_total: int = 0
    entries_per_page: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    pages_resumed: int = 0  # pages an earlier run of the same crawl had finished, not fetched again

    def error_rows(self) -> list[list[str]]:
        """[url, reason] rows for an error table."""
        return [[e.url, e.reason] for e in self.errors]


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
    stop: threading.Event | None = None,
    output: str | Path | None = None,
) -> CrawlResult:
    """Fetch each page and extract its glossary; a failed page becomes a PageError and the crawl goes on.

    Setting `stop` ends the crawl before the next page (waits and downloads are cut short; the page in flight is
    dropped). With `output` (a folder), each finished page's rows are appended to glossary.csv and pairs.jsonl
    there at once, and running the same crawl into the same folder again resumes it: pages already finished are
    skipped. An output folder that cannot be written raises SaveError before anything is fetched.
    """
    options = options or CrawlOptions()
    stop = stop or threading.Event()
    start = list(dict.fromkeys(urldefrag(u.strip())[0] for u in urls if u.strip()))
    writer = None
    resumed = Resumed(queue=start)
    if output is not None:
        job = {"urls": start, "limit_per_source": limit_per_source, "follow_languages": list(options.follow_languages)}
        writer = CrawlOutput(output, job)
        resumed = writer.start()  # before any request: an unwritable folder must not cost a crawl
        resumed.queue = resumed.queue or start
    queue = list(resumed.queue)  # grows as language versions are found; start stays the start pages
    queued = set(queue)
    result = CrawlResult(entries=resumed.entries, pages_fetched=len(resumed.pages), pages_total=len(queue),
                         entries_per_page=dict(resumed.pages), pages_resumed=len(resumed.pages))
    collector = _Collector(result, limit_per_source)
    fetcher = Fetcher(options, stop)
    try:
        index = 0
        while index < len(queue):
            url = queue[index]
            index += 1
            if stop.is_set():
                result.stopped = True
                break
            if url in resumed.pages:
                _emit(on_event, CrawlEvent("skipped", url, index, len(queue), reason="finished by an earlier run"))
                continue
            _emit(on_event, CrawlEvent("started", url, index, len(queue)))
            try:
                page = fetcher.fetch(url)
                soup = parse_html(decode_html(page.body, page.content_type)[0])
                # Language links live in the page chrome that extraction strips, so look for them first; only
                # start pages are followed, so a Korean page never leads on to a third language.
                languages = options.follow_languages if index <= len(start) else ()
                for link in language_links(soup, page.url, languages):
                    if link not in queued:
                        queued.add(link)
                        queue.append(link)
                        result.pages_total = len(queue)
                entries = extract_entries(soup, page.url)
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
            if writer is not None:
                writer.page_done(url, new, queue)
            if not entries:
                result.errors.append(PageError(url, NO_GLOSSARY))
                _emit(on_event, CrawlEvent("failed", url, index, len(queue), reason=NO_GLOSSARY))
                continue
            _emit(on_event, CrawlEvent("done", url, index, len(queue), entries=new))
        if writer is not None and not result.stopped:
            writer.finish()
    finally:
        fetcher.close()
        if writer is not None:
            writer.close()
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
