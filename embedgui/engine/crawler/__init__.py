"""Glossary crawler: fetch pages politely and safely, pull (term, definition) pairs out of them, write them out.

Modules by job: `sources` (where a crawl starts), `net` (address safety, fetching, retries, robots.txt),
`encoding` (page bytes -> text), `extract` (pure HTML -> entries: the heuristics that change most), `loop` (the
crawl itself) and `output` (the files, written page by page, and resuming). The engine takes and returns plain
data, so the CLI and the GUI's Data tab (which calls `crawl` from a background thread) share it. Import from here.
"""

from __future__ import annotations

from embedgui.engine.crawler.encoding import decode_html
from embedgui.engine.crawler.extract import GlossaryEntry, dedupe, extract_glossary
from embedgui.engine.crawler.loop import CrawlEvent, CrawlResult, PageError, crawl, crawl_files
from embedgui.engine.crawler.net import (
    USER_AGENT,
    CrawlOptions,
    CrawlStopped,
    FetchError,
    UnsafeAddressError,
    check_url,
    is_public_address,
)
from embedgui.engine.crawler.output import (
    CSV_NAME,
    JSONL_NAME,
    STATE_NAME,
    check_output_folder,
    write_glossary_csv,
    write_pairs_jsonl,
)
from embedgui.engine.crawler.sources import (
    SAMPLES_DIR,
    SOURCES,
    WIKIPEDIA_GLOSSARY_URLS,
    Source,
    read_url_file,
    resolve_sources,
    sample_pages,
    source_languages,
)

__all__ = [
    "CSV_NAME", "JSONL_NAME", "SAMPLES_DIR", "SOURCES", "STATE_NAME", "USER_AGENT", "WIKIPEDIA_GLOSSARY_URLS",
    "CrawlEvent", "CrawlOptions", "CrawlResult", "CrawlStopped", "FetchError", "GlossaryEntry", "PageError", "Source",
    "UnsafeAddressError", "check_output_folder", "check_url", "crawl", "crawl_files", "decode_html", "dedupe",
    "extract_glossary", "is_public_address", "read_url_file", "resolve_sources", "sample_pages", "source_languages",
    "write_glossary_csv", "write_pairs_jsonl",
]
