"""A crawl writes its rows as pages finish, resumes after a kill or a stop, and refuses an unwritable output early."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT
from test_crawler import FAST, _loopback_only, _serve  # noqa: F401  (the fixture keeps traffic on 127.0.0.1)

from embedgui.engine.crawler import CSV_NAME, JSONL_NAME, STATE_NAME, CrawlOptions, crawl
from embedgui.engine.files import SaveError

PAGES = 6


def _page(i: int) -> bytes:
    # Page 4 repeats an entry of page 1: the deduplication must survive a resume too.
    terms = [(f"term {i}.{j}", f"Definition {j} of page {i}, with a comma and \"quotes\".") for j in range(3)]
    if i == 4:
        terms.append(("term 1.0", 'Definition 0 of page 1, with a comma and "quotes".'))
    items = "".join(f"<dt>{t}</dt><dd>{d}</dd>" for t, d in terms)
    return f"<html><body><dl>{items}</dl></body></html>".encode()


@pytest.fixture
def site():
    srv = _serve()
    for i in range(1, PAGES + 1):
        srv.routes[f"/p{i}.html"] = (200, {"Content-Type": "text/html; charset=utf-8"}, _page(i))
    srv.routes["/robots.txt"] = (404, {"Content-Type": "text/plain"}, b"")
    yield srv
    srv.shutdown()
    srv.server_close()


def _urls(site) -> list[str]:
    return [site.url(f"/p{i}.html") for i in range(1, PAGES + 1)]


def _files(folder: Path) -> tuple[bytes, bytes]:
    return (folder / CSV_NAME).read_bytes(), (folder / JSONL_NAME).read_bytes()


def _page_hits(site) -> list[str]:
    return [h for h in site.hits if h != "/robots.txt"]


def test_rows_are_written_as_pages_finish(site, tmp_path):
    seen_on_disk = []

    def on_event(event):
        if event.kind == "done":
            seen_on_disk.append((tmp_path / JSONL_NAME).read_text(encoding="utf-8").count("\n"))

    result = crawl(_urls(site)[:3], options=CrawlOptions(**FAST), output=tmp_path, on_event=on_event)
    assert seen_on_disk == [3, 6, 9]  # each page's rows are in the file before the next page starts
    assert len(result.entries) == 9 and not (tmp_path / STATE_NAME).exists()  # finished: nothing to resume


def test_stop_keeps_what_was_fetched_and_the_same_crawl_resumes(site, tmp_path):
    whole = tmp_path / "whole"
    reference = crawl(_urls(site), options=CrawlOptions(**FAST), output=whole)
    site.hits.clear()

    stop = threading.Event()
    part = tmp_path / "part"
    result = crawl(_urls(site), options=CrawlOptions(**FAST), output=part, stop=stop,
                   on_event=lambda e: e.kind == "done" and e.index == 2 and stop.set())
    assert result.stopped and result.pages_fetched == 2 and len(result.entries) == 6
    assert _files(part)[1].count(b"\n") == 6 and (part / STATE_NAME).exists()
    assert _page_hits(site) == ["/p1.html", "/p2.html"]

    site.hits.clear()
    kinds = []
    resumed = crawl(_urls(site), options=CrawlOptions(**FAST), output=part, on_event=lambda e: kinds.append(e.kind))
    assert _page_hits(site) == [f"/p{i}.html" for i in range(3, PAGES + 1)]  # pages 1-2 not fetched again
    assert kinds[:2] == ["skipped", "skipped"] and resumed.pages_resumed == 2
    assert _files(part) == _files(whole)
    assert resumed.entries == reference.entries and resumed.pages_fetched == PAGES
    assert not (part / STATE_NAME).exists()

    # A finished crawl run again starts afresh (a refresh), and a different crawl never resumes another's state.
    site.hits.clear()
    crawl(_urls(site), options=CrawlOptions(**FAST), output=part)
    assert len(_page_hits(site)) == PAGES and _files(part) == _files(whole)


def test_stop_from_another_thread_ends_a_wait_at_once(site, tmp_path):
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    began = time.monotonic()
    result = crawl(_urls(site), options=CrawlOptions(**{**FAST, "delay": 30.0}), output=tmp_path, stop=stop)
    # The 30 s wait between robots.txt and the first page was cut short: stopped before any page, files empty.
    assert time.monotonic() - began < 10
    assert result.stopped and result.pages_fetched == 0 and _page_hits(site) == []
    assert _files(tmp_path) == (b"term,definition,source_url\r\n", b"")


def _cli(*args: str, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.pop("SPACE_ID", None)
    env.pop("EMBEDGUI_HOSTED", None)
    return subprocess.Popen([sys.executable, "-m", "embedgui", "crawl", *args, "--delay", "0", "--quiet"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_sigkill_mid_crawl_then_resume_equals_an_uninterrupted_crawl(site, tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    proc = _cli("--urls", *_urls(site), "--output", str(whole))
    assert proc.wait(120) == 0, proc.stderr.read()

    reached, release = threading.Event(), threading.Event()

    def hang():  # page 4 answers only once the test has killed the crawler
        reached.set()
        release.wait(30)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, _page(4)

    site.routes["/p4.html"] = hang
    proc = _cli("--urls", *_urls(site), "--output", str(part))
    try:
        assert reached.wait(60), "the crawler never reached page 4"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        release.set()
        proc.kill()
        proc.communicate()
    state = json.loads((part / STATE_NAME).read_text(encoding="utf-8"))
    assert sorted(state["pages"]) == _urls(site)[:3]
    assert _files(part)[1].count(b"\n") == 9  # pages 1-3 were on disk before the kill
    # What a kill during a write leaves: half a row at the end of each file. The resume must drop it.
    for name in (CSV_NAME, JSONL_NAME):
        with (part / name).open("ab") as f:
            f.write(b'half a row, "cut off')

    site.routes["/p4.html"] = (200, {"Content-Type": "text/html; charset=utf-8"}, _page(4))
    site.hits.clear()
    proc = _cli("--urls", *_urls(site), "--output", str(part))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "resumed" in err and _page_hits(site) == [f"/p{i}.html" for i in range(4, PAGES + 1)]
    assert _files(part) == _files(whole)


def test_crash_between_rows_and_state_loses_only_that_page(site, tmp_path, monkeypatch):
    # An injected failure right after page 3's rows were appended, before its state was recorded.
    from embedgui.engine.crawler import output

    whole = tmp_path / "whole"
    crawl(_urls(site), options=CrawlOptions(**FAST), output=whole)
    real, calls = output.atomic_write_text, []

    def failing(path, text):
        calls.append(path)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        real(path, text)

    monkeypatch.setattr(output, "atomic_write_text", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crawl(_urls(site), options=CrawlOptions(**FAST), output=tmp_path / "part")
    monkeypatch.setattr(output, "atomic_write_text", real)
    assert _files(tmp_path / "part")[1].count(b"\n") == 9  # page 3's rows are there, but not recorded
    site.hits.clear()
    crawl(_urls(site), options=CrawlOptions(**FAST), output=tmp_path / "part")
    assert _page_hits(site)[0] == "/p3.html"
    assert _files(tmp_path / "part") == _files(whole)


# --------------------------------------------------------------------------------------- unwritable output


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write in: chmod for a normal user; for root, sysfs (which takes no files)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root ignores permission bits
        folder = Path("/sys/kernel")
        if not folder.is_dir() or not _sysfs_refuses(folder):
            pytest.skip("no read-only folder available")
    return folder


def _sysfs_refuses(folder: Path) -> bool:
    try:
        (folder / "embedgui-probe").touch()
    except OSError:
        return True
    (folder / "embedgui-probe").unlink()
    return False


@pytest.mark.parametrize("case", ["file", "csv-is-folder", "read-only"])
def test_unwritable_output_fails_before_fetching(site, tmp_path, case):
    if case == "file":
        target = tmp_path / "out.csv"
        target.write_text("x", encoding="utf-8")
        expected = "is a file, not a folder"
    elif case == "csv-is-folder":
        target = tmp_path / "out"
        (target / CSV_NAME).mkdir(parents=True)
        expected = "is a folder"
    else:
        target = _read_only_folder(tmp_path)
        expected = "Cannot write the crawl output"
    with pytest.raises(SaveError, match=expected) as info:
        crawl(_urls(site)[:2], options=CrawlOptions(**FAST), output=target)
    assert str(target) in str(info.value) and site.hits == []

    proc = _cli("--urls", *_urls(site)[:2], "--output", str(target))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and site.hits == []
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err
