"""Glossary crawler: extraction on real and fixture pages served from 127.0.0.1, politeness, safety, CLI."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import conftest
import pytest
import urllib3.util.connection
from bs4 import BeautifulSoup
from conftest import ROOT

from embedgui.engine import crawler
from embedgui.engine.crawler import CrawlOptions, GlossaryEntry, crawl, net
from embedgui.engine.hosted import is_hosted

FIXTURES = Path(__file__).parent / "fixtures" / "crawler"
FAST = dict(delay=0.0, backoff=0.01, timeout=5.0, retries=2, hosted=False)

Route = tuple[int, dict[str, str], bytes] | Callable[[], tuple[int, dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        self.server.hits.append(self.path)
        route = self.server.routes.get(path)
        if route is None:
            route = self.server.file_route(path)
        status, headers, body = route() if callable(route) else route
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers and not headers.get("X-No-Length"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the crawler hung up on purpose (size cap)

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory: Path | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.directory = directory
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def file_route(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if self.directory is not None:
            target = (self.directory / path.lstrip("/")).resolve()
            if target.is_file() and target.is_relative_to(self.directory.resolve()):
                # Deliberately no charset: pages must be decoded from their <meta> declaration.
                kind = "text/html" if target.suffix == ".html" else "application/octet-stream"
                return 200, {"Content-Type": kind}, target.read_bytes()
        return 404, {"Content-Type": "text/plain"}, b"not found"


def _serve(directory: Path | None = None):
    server = _Server(directory)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    # A proxy from the environment must not swallow requests meant for the local test server.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    # Safety net: even if a safety check regressed, these tests never open a connection beyond 127.0.0.1.
    real_connect = urllib3.util.connection.create_connection

    def connect(address, *args, **kwargs):
        if address[0] != "127.0.0.1":
            raise OSError(f"test safety net: connection to {address[0]} blocked")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", connect)


@pytest.fixture
def server():
    srv = _serve(FIXTURES)
    yield srv
    srv.shutdown()
    srv.server_close()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


# ------------------------------------------------------------------------------------------- real pages


def test_python_glossary_matches_answer_key():
    page = conftest.testdata_file("python3.11-doc", "usr/share/doc/python3.11/html/glossary.html")
    key_file = conftest.testdata_file("python3.11-doc", "usr/share/doc/python3.11/html/_static/glossary.json")
    key = json.loads(key_file.read_text(encoding="utf-8"))
    srv = _serve(page.parent)
    try:
        result = crawl([srv.url("/glossary.html")], options=CrawlOptions(**FAST))
    finally:
        srv.shutdown()
        srv.server_close()
    assert result.errors == []
    by_term = {e.term: e.definition for e in result.entries}
    # The key stores each definition as the full <dd> HTML. Criterion: the extracted term equals the key's title
    # and the definition's word sequence (\w+ tokens, in order, case-sensitive) equals that of the key's text,
    # so no word may be missing, added or reordered; only punctuation and spacing (list separators) may differ.
    matched = [
        item["title"] for item in key.values()
        if _words(by_term.get(item["title"], "")) == _words(BeautifulSoup(item["body"], "lxml").get_text())
    ]
    assert len(key) == 128
    assert len(matched) >= 125, f"only {len(matched)}/{len(key)} definitions match the answer key"
    titles = {item["title"] for item in key.values()}
    extra = [term for term in by_term if term not in titles]
    assert extra == [], f"terms that are not glossary entries (navigation?): {extra}"
    assert by_term[">>>"].startswith("The default Python prompt of the interactive shell.")


# ----------------------------------------------------------------------------------------- fixture pages


def test_tables_keep_glossary_and_skip_layout_navigation_and_data_tables(server):
    result = crawl([server.url("/tables.html")], options=CrawlOptions(**FAST))
    by_term = {e.term: e.definition for e in result.entries}
    assert set(by_term) == {"write-ahead log", "B-tree", "compaction", "tombstone", "memtable", "bloom filter"}
    # The definition column is found by its header, past the abbreviation column.
    assert by_term["write-ahead log"].startswith("A file where changes are recorded")
    assert by_term["bloom filter"] == 'A compact probabilistic set that answers "definitely not here" or "maybe here".'
    assert {e.source_url for e in result.entries} == {server.url("/tables.html")}


def test_definition_lists_aliases_senses_and_nested_lists(server):
    result = crawl([server.url("/aliases.html")], options=CrawlOptions(**FAST))
    by_term = {e.term: e.definition for e in result.entries}
    assert by_term["RTT"] == by_term["round-trip time"] == (
        "The time from sending a packet until its acknowledgement arrives.")
    assert by_term["port"] == ("A number that identifies one service on a host. "
                               "On a switch, a physical socket a cable plugs into.")
    assert by_term["congestion control"] == (
        "Ways a sender slows down when the network is overloaded: slow start; additive increase, multiplicative "
        "decrease; pacing. cwnd: the congestion window.")
    assert by_term["MTU"].endswith("e.g. 1500 bytes.")  # dt wrapped in <div>, trailing colon dropped
    assert set(by_term) == {"round-trip time", "RTT", "port", "congestion control", "MTU"}


def test_euc_kr_declared_only_in_meta(server, monkeypatch):
    assert b"charset=euc-kr" in (FIXTURES / "euc_kr.html").read_bytes()
    # The declaration alone must be enough: no guessing by charset-normalizer.
    import charset_normalizer

    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda *a, **k: pytest.fail("detection was used"))
    result = crawl([server.url("/euc_kr.html")], options=CrawlOptions(**FAST))
    by_term = {e.term: e.definition for e in result.entries}
    assert by_term["김치"] == "배추나 무를 소금에 절여 양념과 함께 발효시킨 한국 음식."
    assert "똠얌꿍" in by_term  # a CP949-only syllable: euc-kr must be read as its superset cp949


# -------------------------------------------------------------------------------------------- politeness


def test_robots_disallow_is_honoured_and_cached(server):
    server.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"},
                                    b"User-agent: *\nDisallow: /private/\n")
    server.routes["/private/page.html"] = (200, {"Content-Type": "text/html"}, b"<dl><dt>x</dt><dd>y</dd></dl>")
    urls = [server.url("/private/page.html"), server.url("/aliases.html"), server.url("/tables.html")]
    result = crawl(urls, options=CrawlOptions(**FAST))
    assert [e.url for e in result.errors] == [urls[0]]
    assert "robots.txt" in result.errors[0].reason
    assert "/private/page.html" not in server.hits
    assert server.hits.count("/robots.txt") == 1
    assert result.pages_fetched == 2 and result.entries


def test_robots_wildcards_longest_match_and_our_own_group(server):
    # urllib.robotparser takes the first matching line and knows no wildcards: it would refuse /docs/a.html.
    server.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, (
        b"User-agent: *\nDisallow: /docs/\nAllow: /docs/*.html$\nDisallow: /*?print\n\n"
        b"User-agent: embedgui-crawler\nDisallow: /docs/\nAllow: /docs/*.html$\nDisallow: /*?print\n"
        b"Disallow: /ours-only/\n"))
    page = (200, {"Content-Type": "text/html"}, b"<dl><dt>term</dt><dd>A definition.</dd></dl>")
    for path in ("/docs/a.html", "/docs/a.htm", "/docs/b.html", "/ours-only/c.html"):
        server.routes[path] = page
    urls = [server.url(p) for p in ("/docs/a.html", "/docs/a.htm", "/docs/b.html?print=1", "/ours-only/c.html")]
    result = crawl(urls, options=CrawlOptions(**FAST))
    assert [e.url for e in result.errors] == urls[1:]
    assert all("disallowed by robots.txt" in e.reason for e in result.errors)
    assert [h for h in server.hits if h != "/robots.txt"] == ["/docs/a.html"]


def test_robots_5xx_disallows_the_site_and_4xx_allows_it(server):
    # RFC 9309: an unreachable robots.txt (5xx after retries) means "crawl nothing"; an unavailable one (4xx,
    # 403 included, which urllib.robotparser reads as "disallow all") means "no rules".
    server.routes["/robots.txt"] = (503, {"Content-Type": "text/plain"}, b"down")
    urls = [server.url("/aliases.html"), server.url("/tables.html")]
    result = crawl(urls, options=CrawlOptions(**FAST))
    assert result.entries == [] and [e.url for e in result.errors] == urls
    assert all("robots.txt" in e.reason and "RFC 9309" in e.reason and "503" in e.reason for e in result.errors)
    assert server.hits == ["/robots.txt"] * 3  # 1 try + retries=2, once for the whole site; no page asked for
    server.hits.clear()
    server.routes["/robots.txt"] = (403, {"Content-Type": "text/plain"}, b"forbidden")
    result = crawl(urls, options=CrawlOptions(**FAST))
    assert result.errors == [] and result.pages_fetched == 2
    assert server.hits == ["/robots.txt", "/aliases.html", "/tables.html"]


def test_unresolvable_host_is_the_page_error_not_a_robots_refusal(monkeypatch):
    # The safety net refuses the connection; counting that as a DNS failure stands in for a name that does not resolve.
    monkeypatch.setattr(net, "_is_dns_failure", lambda exc: True)
    result = crawl(["http://nothere.invalid/a.html", "http://nothere.invalid/b.html"], options=CrawlOptions(**FAST))
    assert [e.reason for e in result.errors] == [
        "cannot resolve the host name nothere.invalid; check the URL and that this machine is online"] * 2


def test_robots_crawl_delay_spaces_requests(server):
    import time

    server.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nCrawl-delay: 0.4\n")
    times = []
    server.routes["/t.html"] = lambda: (times.append(time.monotonic()) or
                                        (200, {"Content-Type": "text/html"}, b"<dl><dt>a</dt><dd>b</dd></dl>"))
    crawl([server.url("/t.html"), server.url("/t.html?2")], options=CrawlOptions(**FAST))
    assert len(times) == 2 and times[1] - times[0] >= 0.35


def test_429_then_success_with_retry(server):
    calls = []
    page = (FIXTURES / "aliases.html").read_bytes()

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            return 429, {"Retry-After": "0", "Content-Type": "text/plain"}, b"slow down"
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page

    server.routes["/flaky.html"] = flaky
    server.routes["/down.html"] = (503, {"Content-Type": "text/plain"}, b"down")
    server.routes["/later.html"] = (429, {"Retry-After": "3600"}, b"")
    result = crawl([server.url(p) for p in ("/flaky.html", "/down.html", "/later.html")],
                   options=CrawlOptions(**FAST))
    assert len(calls) == 2
    assert {e.term for e in result.entries} >= {"RTT", "port"}
    reasons = {e.url.rsplit("/", 1)[-1]: e.reason for e in result.errors}
    assert "503" in reasons["down.html"] and "3 times" in reasons["down.html"]
    assert server.hits.count("/down.html") == 3  # 1 try + retries=2
    assert "3600" in reasons["later.html"] and server.hits.count("/later.html") == 1


def test_oversized_responses_fail_and_the_crawl_goes_on(server):
    big = b"<html><body>" + b"<p>padding</p>" * 20_000 + b"</body></html>"
    server.routes["/declared.html"] = (200, {"Content-Type": "text/html"}, big)
    server.routes["/streamed.html"] = (200, {"Content-Type": "text/html", "X-No-Length": "1"}, big)
    urls = [server.url("/declared.html"), server.url("/streamed.html"), server.url("/aliases.html")]
    result = crawl(urls, options=CrawlOptions(**FAST, max_bytes=100_000))
    reasons = {e.url: e.reason for e in result.errors}
    assert set(reasons) == set(urls[:2])
    assert all("size cap" in r for r in reasons.values())
    assert "grew past" in reasons[urls[1]]  # no Content-Length: stopped while streaming
    assert {e.term for e in result.entries} >= {"RTT"}


def test_not_html_and_http_errors_are_reported(server):
    server.routes["/data.json"] = (200, {"Content-Type": "application/json"}, b"{}")
    result = crawl([server.url("/data.json"), server.url("/missing.html")], options=CrawlOptions(**FAST))
    reasons = [e.reason for e in result.errors]
    assert "not an HTML page" in reasons[0]
    assert "HTTP 404" in reasons[1]


def test_limit_per_source_and_dedupe_across_pages(server):
    urls = [server.url("/aliases.html"), server.url("/aliases.html?copy=1")]
    result = crawl(urls, limit_per_source=2, options=CrawlOptions(**FAST))
    assert [e.term for e in result.entries] == ["round-trip time", "RTT", "port", "congestion control"]
    assert result.entries_per_page == {urls[0]: 2, urls[1]: 2}
    full = crawl(urls, options=CrawlOptions(**FAST))
    assert len(full.entries) == 5 and full.entries_per_page[urls[1]] == 0  # the copy adds nothing new


def test_events_and_stop(server):
    events = []
    stop = threading.Event()

    def on_event(event):
        events.append((event.kind, event.url.rsplit("/", 1)[-1], event.index, event.total, len(event.entries)))
        if event.kind == "done":
            stop.set()  # the GUI's Stop button: finish this page, start no other

    urls = [server.url("/aliases.html"), server.url("/missing.html"), server.url("/tables.html")]
    result = crawl(urls, options=CrawlOptions(**FAST), on_event=on_event, stop=stop)
    assert events == [("started", "aliases.html", 1, 3, 0), ("done", "aliases.html", 1, 3, 5)]
    assert result.stopped and result.pages_fetched == 1 and len(result.entries) == 5
    events.clear()
    crawl(urls[1:], options=CrawlOptions(**FAST), on_event=on_event)
    assert [e[0] for e in events] == ["started", "failed", "started", "done"]


def test_language_links_followed_from_start_pages_only(server):
    server.routes["/en.html"] = (200, {"Content-Type": "text/html"}, (
        '<html><body><nav><a href="/ko.html" hreflang="ko" lang="ko">한국어</a></nav>'
        "<dl><dt>cache</dt><dd>A fast store of recent data.</dd></dl></body></html>").encode())
    server.routes["/ko.html"] = (200, {"Content-Type": "text/html; charset=utf-8"}, (
        '<html><body><a href="/ko2.html" hreflang="ko">다시</a>'
        "<dl><dt>캐시</dt><dd>최근 데이터를 빠르게 꺼내 쓰는 저장소.</dd></dl></body></html>").encode())
    plain = crawl([server.url("/en.html")], options=CrawlOptions(**FAST))
    assert [e.term for e in plain.entries] == ["cache"]
    followed = crawl([server.url("/en.html")], options=CrawlOptions(**FAST, follow_languages=("ko",)))
    assert [e.term for e in followed.entries] == ["cache", "캐시"]
    assert followed.pages_total == 2 and "/ko2.html" not in server.hits


# ------------------------------------------------------------------------------------------------ safety


def test_public_address_rules():
    for address in ("8.8.8.8", "2001:4860:4860::8888", "93.184.216.34"):
        assert crawler.is_public_address(address), address
    for address in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255", "::1", "fe80::1", "fc00::1",
                    "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::", "not-an-ip"):
        assert not crawler.is_public_address(address), address


def test_non_http_schemes_are_refused(server):
    urls = ["ftp://127.0.0.1/file", "file:///etc/passwd", "javascript:alert(1)", "gopher://example/", "no-scheme"]
    result = crawl(urls, options=CrawlOptions(**FAST))
    assert [e.url for e in result.errors] == urls
    assert all("http" in e.reason for e in result.errors)
    assert result.entries == [] and server.hits == []


def test_hosted_mode_refuses_loopback_outright(server):
    result = crawl([server.url("/aliases.html")], options=CrawlOptions(**{**FAST, "hosted": True}))
    assert len(result.errors) == 1 and "127.0.0.1 resolves to a non-public address" in result.errors[0].reason
    assert server.hits == []  # not even robots.txt was asked for


def test_hosted_mode_checks_every_resolved_address(monkeypatch):
    monkeypatch.setattr(net, "_resolve", lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(crawler.UnsafeAddressError, match="mixed.example resolves to a non-public") as refused:
        crawler.check_url("http://mixed.example/page", hosted=True)
    assert "10.0.0.7" not in str(refused.value)  # an internal name's address is not told to the visitor
    crawler.check_url("http://mixed.example/page", hosted=False)  # the local default allows it


def test_hosted_mode_rechecks_each_redirect_hop(server, monkeypatch):
    # Pretend the test server's own address is public, so the first hop is allowed; every other address is judged
    # by the real rules. The server then redirects to the cloud metadata address, which must be refused.
    real = net.is_public_address
    monkeypatch.setattr(net, "is_public_address", lambda a: a == "127.0.0.1" or real(a))
    server.routes["/start.html"] = (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    server.routes["/hop.html"] = (301, {"Location": "/aliases.html"}, b"")
    options = CrawlOptions(**{**FAST, "hosted": True})
    result = crawl([server.url("/start.html"), server.url("/hop.html")], options=options)
    assert [e.url for e in result.errors] == [server.url("/start.html")]
    # Refused by the address check before any connection (not by a failed connection attempt).
    assert "169.254.169.254 resolves to a non-public address" in result.errors[0].reason
    # A redirect that stays on allowed addresses is followed; entries name the final URL.
    assert {e.source_url for e in result.entries} == {server.url("/aliases.html")}


def test_hosted_mode_rechecks_the_connected_address(server, monkeypatch):
    # DNS rebinding: the name check sees a public address, the connection lands on loopback; it must be refused.
    monkeypatch.setattr(net, "_resolve", lambda host, port: ["93.184.216.34"])
    result = crawl([server.url("/aliases.html")], options=CrawlOptions(**{**FAST, "hosted": True}))
    assert len(result.errors) == 1 and "127.0.0.1 connected to a non-public address" in result.errors[0].reason
    assert server.hits == []


def test_is_hosted_reads_the_environment(monkeypatch):
    monkeypatch.delenv("EMBEDGUI_HOSTED", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not is_hosted()
    for value, expected in (("1", True), ("true", True), ("YES", True), ("0", False), ("", False)):
        monkeypatch.setenv("EMBEDGUI_HOSTED", value)
        assert is_hosted() is expected, value
    monkeypatch.delenv("EMBEDGUI_HOSTED")
    monkeypatch.setenv("SPACE_ID", "user/space")
    assert is_hosted()


# ----------------------------------------------------------------------------------------- sources, files


def test_sources_and_url_file(tmp_path):
    urls = crawler.resolve_sources(["wikipedia_glossary"])
    assert len(urls) >= 10 and all(u.startswith("https://en.wikipedia.org/wiki/Glossary_of_") for u in urls)
    assert "https://en.wikipedia.org/wiki/Glossary_of_computer_science" in urls
    assert crawler.source_languages(["wikipedia_glossary"]) == ("ko",)
    with pytest.raises(ValueError, match="nope"):
        crawler.resolve_sources(["nope"])
    url_file = tmp_path / "urls.txt"
    url_file.write_text("# glossaries\nhttps://a.example/g\n\n  https://b.example/g  # second\n", encoding="utf-8")
    assert crawler.read_url_file(url_file) == ["https://a.example/g", "https://b.example/g"]
    with pytest.raises(ValueError, match="missing.txt"):
        crawler.read_url_file(tmp_path / "missing.txt")


def test_writers_round_trip(tmp_path):
    entries = [GlossaryEntry("a, b", 'says "hi"\nover two lines', "http://x/1"), GlossaryEntry("용어", "정의", "u")]
    crawler.write_glossary_csv(entries, tmp_path / "g.csv")
    crawler.write_pairs_jsonl(entries, tmp_path / "p.jsonl")
    with (tmp_path / "g.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["term", "definition", "source_url"], *[[e.term, e.definition, e.source_url] for e in entries]]
    lines = (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"anchor": e.term, "positive": e.definition} for e in entries]
    assert '"용어"' in lines[1]  # not \\u-escaped


# ---------------------------------------------------------------------------------------------------- CLI


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.pop("SPACE_ID", None)
    env.pop("EMBEDGUI_HOSTED", None)
    return subprocess.run([sys.executable, "-m", "embedgui", "crawl", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _read_outputs(folder: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    with (folder / "glossary.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    pairs = [json.loads(line) for line in (folder / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    return rows, pairs


def test_cli_crawls_urls(server, tmp_path):
    out = tmp_path / "out"
    proc = _run_cli("--urls", server.url("/aliases.html"), server.url("/euc_kr.html"), server.url("/nope.html"),
                    "--output", str(out), "--delay", "0", "--quiet", "--limit_per_source", "4")
    assert proc.returncode == 0, proc.stderr
    rows, pairs = _read_outputs(out)
    assert len(rows) == 7 and [r["term"] for r in rows][:2] == ["round-trip time", "RTT"]
    assert {r["source_url"] for r in rows} == {server.url("/aliases.html"), server.url("/euc_kr.html")}
    assert pairs == [{"anchor": r["term"], "positive": r["definition"]} for r in rows]
    assert "김치" in (out / "pairs.jsonl").read_text(encoding="utf-8")
    assert server.url("/nope.html") in proc.stderr and "HTTP 404" in proc.stderr


def test_cli_dry_run_is_offline_and_writes_both_files(tmp_path):
    proc = _run_cli("--dry-run", "--output", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "dry run" in proc.stdout and "no network" in proc.stdout
    rows, pairs = _read_outputs(tmp_path)
    assert len(rows) >= 20 and len(pairs) == len(rows)
    terms = {r["term"] for r in rows}
    assert {"InfoNCE", "임베딩", "재현율", "epoch"} <= terms
    assert all(r["source_url"].startswith("file://") for r in rows)


def test_cli_usage_errors(tmp_path):
    # the original README's command has no --output: one error line that says what to add
    proc = _run_cli("--sources", "wikipedia_glossary", "--limit_per_source", "500")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --output DIR is required") and \
        "--output data" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = _run_cli("--url-file", str(tmp_path / "none.txt"), "--output", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "none.txt" in proc.stderr
