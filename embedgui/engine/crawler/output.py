"""What a crawl writes: DIR/glossary.csv and DIR/pairs.jsonl, appended page by page, and the state to resume from.

A crawl into a folder appends each finished page's rows to both files and flushes them, then records the page in
DIR/crawl-state.json together with the two files' sizes. A crawl that is killed loses at most the page in flight:
the next run of the same crawl cuts both files back to the recorded sizes (dropping half-written rows) and skips
the recorded pages. The state file is removed when a crawl runs to its end, so running it again starts afresh.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from embedgui.engine.crawler.extract import GlossaryEntry
from embedgui.engine.files import SaveError, atomic_write, atomic_write_text, save_error, unwritable_reason

CSV_NAME = "glossary.csv"
JSONL_NAME = "pairs.jsonl"
STATE_NAME = "crawl-state.json"
CSV_HEADER = ("term", "definition", "source_url")
STATE_VERSION = 1


def _csv_text(entries: Iterable[GlossaryEntry]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([e.term, e.definition, e.source_url] for e in entries)
    return buffer.getvalue()


def _jsonl_text(entries: Iterable[GlossaryEntry]) -> str:
    return "".join(json.dumps({"anchor": e.term, "positive": e.definition}, ensure_ascii=False) + "\n"
                   for e in entries)


def write_glossary_csv(entries: Iterable[GlossaryEntry], path: str | Path) -> Path:
    """Write term,definition,source_url rows (UTF-8, with a header), replacing the file in one step."""
    header = _csv_text([GlossaryEntry(*CSV_HEADER)])
    text = header + _csv_text(entries)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), mode="wb")  # bytes: csv's \r\n stays as it is
    return Path(path)


def write_pairs_jsonl(entries: Iterable[GlossaryEntry], path: str | Path) -> Path:
    """Write one {"anchor": term, "positive": definition} object a line (UTF-8, not ASCII-escaped)."""
    text = _jsonl_text(entries)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), mode="wb")
    return Path(path)


def check_output_folder(folder: str | Path) -> Path:
    """Create folder if needed and make sure the crawl can write its files there; else SaveError, one sentence."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SaveError(f"The crawl output {folder} is a file, not a folder; give a folder for {CSV_NAME} and "
                        f"{JSONL_NAME}.")
    for name in (CSV_NAME, JSONL_NAME, STATE_NAME):
        if (folder / name).is_dir():
            raise SaveError(f"{folder / name} is a folder, so the crawl cannot write its {name} there; remove it or "
                            "choose another output folder.")
    why = unwritable_reason(folder)
    read_only = [n for n in (CSV_NAME, JSONL_NAME) if (folder / n).exists() and not os.access(folder / n, os.W_OK)]
    if why or read_only:
        why = why or f"{read_only[0]} is read-only"
        raise SaveError(f"Cannot write the crawl output in {folder} ({why}); choose a folder you can write to.")
    return folder


@dataclass
class Resumed:
    """What an unfinished earlier run of the same crawl left: its finished pages, queue and entries."""

    pages: dict[str, int] = field(default_factory=dict)  # finished URL -> new entries it added
    queue: list[str] = field(default_factory=list)  # start pages, then the language versions found, in order
    entries: list[GlossaryEntry] = field(default_factory=list)


class CrawlOutput:
    """The two output files of a crawl, appended page by page, with crawl-state.json to resume from."""

    def __init__(self, folder: str | Path, job: dict) -> None:
        self.folder = Path(folder)
        self.job = job  # what makes two crawls "the same": start URLs, limit, followed languages
        self.csv_path = self.folder / CSV_NAME
        self.jsonl_path = self.folder / JSONL_NAME
        self.state_path = self.folder / STATE_NAME
        self._files: dict[Path, IO[str]] = {}
        self._pages: dict[str, int] = {}

    def start(self) -> Resumed:
        """Check the folder, then pick up an unfinished run of the same crawl or start both files afresh."""
        check_output_folder(self.folder)
        resumed = self._resume()
        try:
            if resumed is None:
                write_glossary_csv([], self.csv_path)
                write_pairs_jsonl([], self.jsonl_path)
                self.state_path.unlink(missing_ok=True)
                resumed = Resumed()
            # newline="" leaves the csv module's \r\n row ends alone, as csv files need.
            self._files = {path: path.open("a", encoding="utf-8", newline="")
                           for path in (self.csv_path, self.jsonl_path)}
        except OSError as exc:
            raise save_error(self.csv_path, exc) from exc
        self._pages = dict(resumed.pages)
        return resumed

    def _resume(self) -> Resumed | None:
        """The state of an unfinished run of this same crawl, with both files cut back to it; None to start afresh."""
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            sizes = {self.csv_path: int(state["sizes"][CSV_NAME]), self.jsonl_path: int(state["sizes"][JSONL_NAME])}
            if state.get("version") != STATE_VERSION or state.get("job") != self.job:
                return None
            if any(path.stat().st_size < size for path, size in sizes.items()):
                return None  # the files were shortened since: the recorded pages are no longer all in them
            for path, size in sizes.items():
                os.truncate(path, size)  # drop rows of the page that was in flight when the crawl died
            with self.csv_path.open(encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))[1:]
            entries = [GlossaryEntry(*row) for row in rows if len(row) == len(CSV_HEADER)]
            return Resumed(dict(state["pages"]), list(state["queue"]), entries)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # no state (a new crawl) or an unreadable one: start afresh, as a crawl always did

    def page_done(self, url: str, entries: Iterable[GlossaryEntry], queue: list[str]) -> None:
        """Append a finished page's rows to both files, flush them to disk, then record the page as finished."""
        entries = list(entries)
        self._pages[url] = len(entries)
        try:
            for path, text in ((self.csv_path, _csv_text(entries)), (self.jsonl_path, _jsonl_text(entries))):
                f = self._files[path]
                f.write(text)
                f.flush()
                os.fsync(f.fileno())  # rows on disk before the state says the page is done
            state = {"version": STATE_VERSION, "job": self.job, "pages": self._pages, "queue": queue,
                     "sizes": {CSV_NAME: os.fstat(self._files[self.csv_path].fileno()).st_size,
                               JSONL_NAME: os.fstat(self._files[self.jsonl_path].fileno()).st_size}}
            atomic_write_text(self.state_path, json.dumps(state, ensure_ascii=False, indent=1))
        except SaveError:
            raise
        except OSError as exc:
            raise save_error(self.csv_path, exc) from exc

    def finish(self) -> None:
        """The crawl ran to its end: nothing to resume, so a new run of it starts afresh."""
        self.state_path.unlink(missing_ok=True)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}
