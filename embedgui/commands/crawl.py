"""python -m embedgui crawl: glossary pages -> DIR/glossary.csv and DIR/pairs.jsonl."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from embedgui.engine import crawler
from embedgui.engine.files import SaveError
from embedgui.engine.hosted import is_hosted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define the crawl command's flags."""
    what = parser.add_argument_group("what to crawl (any combination)")
    what.add_argument("--sources", nargs="+", metavar="NAME", default=[], choices=sorted(crawler.SOURCES),
                      help=f"built-in page lists: {', '.join(sorted(crawler.SOURCES))} (see --list-sources)")
    what.add_argument("--urls", nargs="+", metavar="URL", default=[], help="glossary page URLs")
    what.add_argument("--url-file", metavar="FILE", help="text file with one URL a line (# starts a comment)")
    what.add_argument("--dry-run", action="store_true",
                      help="work offline on the sample pages in assets/crawler_samples/ (no network)")
    what.add_argument("--list-sources", action="store_true", help="print the built-in sources' URLs and exit")

    out = parser.add_argument_group("output")
    out.add_argument("--output", metavar="DIR",
                     help="folder for glossary.csv and pairs.jsonl (created if needed); rows are written as pages "
                          "finish, and running the same crawl into the same folder again resumes an unfinished one")
    out.add_argument("--limit-per-source", "--limit_per_source", dest="limit_per_source", type=int, metavar="N",
                     help="keep at most N new entries from each page (default: all)")

    polite = parser.add_argument_group("politeness and safety")
    polite.add_argument("--delay", type=float, default=1.0, metavar="S",
                        help="seconds between requests to the same host (default 1.0; robots.txt may ask more)")
    polite.add_argument("--timeout", type=float, default=20.0, metavar="S", help="request timeout (default 20)")
    polite.add_argument("--retries", type=int, default=3, metavar="N",
                        help="retries on HTTP 429/5xx, timeouts and dropped connections (default 3)")
    polite.add_argument("--max-mb", type=float, default=8.0, metavar="MB",
                        help="give up on a page larger than this (default 8)")
    polite.add_argument("--follow-lang", nargs="*", metavar="LANG", default=None,
                        help="also crawl each start page's hreflang version in these languages (default: ko for "
                             "wikipedia_glossary, none otherwise; give the flag with no value to turn it off)")
    polite.add_argument("--user-agent", default=crawler.USER_AGENT, help="User-Agent header to send")
    polite.add_argument("--hosted", action="store_true",
                        help="refuse private, loopback and other non-public addresses (always on when hosted)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _progress(quiet: bool):
    """An on_event callback drawing a tqdm bar (plain lines when tqdm is missing) and the bar to close."""
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a listed requirement, but a plain print is enough to keep going without it
        tqdm = None
    bar = None if quiet or tqdm is None else tqdm(total=0, unit="page", file=sys.stderr)
    totals = {"entries": 0}

    def write(line: str) -> None:
        (bar.write if bar is not None else print)(line, file=sys.stderr)

    def on_event(event: crawler.CrawlEvent) -> None:
        if quiet:
            return  # the summary at the end still lists every failed page
        if event.kind == "started":
            if bar is not None:
                bar.total = event.total
                bar.set_description(event.url.rsplit("/", 1)[-1][:40])
                bar.refresh()
            return
        if event.kind == "failed":
            write(f"failed: {event.url}: {event.reason}")
        elif event.kind == "skipped":
            if bar is None:
                write(f"{event.index}/{event.total} {event.url}: already crawled")
        else:
            totals["entries"] += len(event.entries)
            if bar is None:
                write(f"{event.index}/{event.total} {event.url}: {len(event.entries)} entries")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(entries=totals["entries"])

    return on_event, bar


def _start_urls(args: argparse.Namespace) -> list[str]:
    urls = crawler.resolve_sources(args.sources) + list(args.urls)
    if args.url_file:
        urls += crawler.read_url_file(args.url_file)
    return urls


def _crawl_interruptibly(urls, limit, options, on_event, output: Path) -> crawler.CrawlResult:
    """Crawl in a worker thread so that Ctrl-C stops it cleanly and what was collected is still written."""
    stop, done = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["result"] = crawler.crawl(urls, limit_per_source=limit, options=options, on_event=on_event,
                                              stop=stop, output=output)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="embedgui-crawl", daemon=True).start()
    # Wait on an Event, not Thread.join: a join interrupted by Ctrl-C can report a live thread as finished.
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        print("\ncrawl: interrupted; stopping (the pages finished so far are written).", file=sys.stderr)
        stop.set()
        done.wait()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def run(args: argparse.Namespace) -> int:
    """Crawl, write both files, print a summary; 0 when entries were written, 1 when none, 2 on bad arguments."""
    if args.list_sources:
        for name, source in sorted(crawler.SOURCES.items()):
            print(f"{name}: {source.description}")
            for url in source.urls:
                print(f"  {url}")
        return 0
    if not args.output:
        print("error: --output DIR is required (the folder for glossary.csv and pairs.jsonl; --output data puts "
              "pairs.jsonl where train looks for it).", file=sys.stderr)
        return 2
    if args.limit_per_source is not None and args.limit_per_source < 1:
        print("error: --limit-per-source must be 1 or more.", file=sys.stderr)
        return 2
    urls: list[str] = []
    if not args.dry_run:  # the arguments are checked before the progress bar is drawn
        try:
            urls = _start_urls(args)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not urls:
            print("error: nothing to crawl; give --sources, --urls or --url-file (or --dry-run).", file=sys.stderr)
            return 2
    out = Path(args.output)
    on_event, bar = _progress(args.quiet)
    try:
        if args.dry_run:
            pages = crawler.sample_pages()
            if args.sources or args.urls or args.url_file:
                print("dry run: --sources, --urls and --url-file are ignored.", file=sys.stderr)
            crawler.check_output_folder(out)
            print(f"dry run: offline, no network access; reading {len(pages)} sample pages from "
                  f"{crawler.SAMPLES_DIR}")
            result = crawler.crawl_files(pages, limit_per_source=args.limit_per_source, on_event=on_event)
            crawler.write_glossary_csv(result.entries, out / crawler.CSV_NAME)
            crawler.write_pairs_jsonl(result.entries, out / crawler.JSONL_NAME)
        else:
            follow = args.follow_lang if args.follow_lang is not None else crawler.source_languages(args.sources)
            options = crawler.CrawlOptions(
                delay=args.delay, timeout=args.timeout, retries=args.retries, max_bytes=int(args.max_mb * 1024**2),
                user_agent=args.user_agent, hosted=args.hosted or is_hosted(),
                follow_languages=tuple(lang.lower() for lang in follow),
            )
            result = _crawl_interruptibly(urls, args.limit_per_source, options, on_event, out)
    except SaveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()

    csv_path, jsonl_path = out / crawler.CSV_NAME, out / crawler.JSONL_NAME
    if result.pages_resumed:
        print(f"crawl: resumed; {result.pages_resumed} page(s) finished by the earlier run were not fetched again.",
              file=sys.stderr)
    print(f"{len(result.entries)} entries from {result.pages_fetched} of {result.pages_total} pages "
          f"-> {csv_path} and {jsonl_path}")
    if result.stopped:
        print("crawl: stopped early; run the same command again to crawl the remaining pages.", file=sys.stderr)
    if result.errors:
        print(f"{len(result.errors)} page(s) gave nothing:", file=sys.stderr)
        for error in result.errors:
            print(f"  {error.url}: {error.reason}", file=sys.stderr)
    if not result.entries:
        print("error: no glossary entries found; check the URLs and the errors above.", file=sys.stderr)
        return 1
    return 0
