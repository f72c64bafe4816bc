"""The network side of the crawler: address safety (SSRF guard), polite fetching with retries, and robots.txt.

Everything the crawler sends goes through `Fetcher`: each URL and redirect hop is checked by `check_url`, in hosted
mode the address actually connected to is checked again, robots.txt is read once per site (RFC 9309, via protego),
requests to one host are spaced out, and 429/5xx answers, timeouts and dropped connections are retried.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from protego import Protego

from embedgui.engine.hosted import is_hosted

# Wikimedia asks for contact details: pass --user-agent "... (you@example.org)" for large crawls.
USER_AGENT = "embedgui-crawler/0.1 (glossary crawler for embedding fine-tuning; python-requests)"
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks parsers to read at least 500 KiB; the rest is ignored


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



class FetchError(Exception):
    """A page could not be fetched; the message is the reason shown next to its URL (status: the HTTP answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnsafeAddressError(FetchError):
    """The URL points at an address the crawler refuses to contact (hosted mode, or a bad scheme)."""


class HostNotFoundError(FetchError):
    """The host name does not resolve: the page's own error, not a robots.txt problem."""


class CrawlStopped(Exception):
    """The stop event was set while waiting or downloading."""


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
        # which address is not said: a visitor could otherwise map the server's internal network by name
        raise UnsafeAddressError(f"the host {parts.hostname} resolves to a non-public address, which a hosted "
                                 "crawler must not contact")


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
            raise UnsafeAddressError(f"the host {host} connected to a non-public address, refused")

    class PeerCheck:
        """Checks the address a connection really reached (after DNS), for plain and TLS connections alike."""

        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            check_peer(sock, self.host)
            return sock

    class GuardedHTTPConnection(PeerCheck, HTTPConnection):
        pass

    class GuardedHTTPSConnection(PeerCheck, HTTPSConnection):
        pass

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


@dataclass
class _Robots:
    """A site's robots.txt rules: parser None allows everything unless refusal (why nothing is allowed) is set."""

    parser: Protego | None
    refusal: str = ""


class Fetcher:
    """HTTP client with robots.txt, a per-host delay, retries, a size cap and (in hosted mode) address checks."""

    def __init__(self, options: CrawlOptions, stop_event: threading.Event | None = None) -> None:
        self.options = options
        self.hosted = options.is_hosted()
        self.stop_event = stop_event or threading.Event()
        self.session = _guarded_session(self.hosted)
        self.session.headers.update({"User-Agent": options.user_agent,
                                     "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"})
        self._robots: dict[str, _Robots] = {}
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

    def _robots_for(self, url: str) -> _Robots:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if origin not in self._robots:
            self._robots[origin] = self._read_robots(origin, parts.netloc.lower())
        return self._robots[origin]

    def _read_robots(self, origin: str, host: str) -> _Robots:
        """robots.txt of one site, read as RFC 9309 says: 4xx allows everything, 5xx or no answer allows nothing."""
        try:
            page = self._fetch(f"{origin}/robots.txt", check_robots=False, cap=ROBOTS_MAX_BYTES, html_only=False,
                               truncate=True)
        except (UnsafeAddressError, HostNotFoundError):
            raise
        except FetchError as exc:
            # 429 is a 4xx but says "slow down", not "no rules here": it counts as unreachable, as Google reads it.
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                return _Robots(None)
            return _Robots(None, f"robots.txt of {host} could not be read ({exc}); until it can, RFC 9309 asks "
                                 "crawlers to fetch nothing from that site, so try again later")
        parser = Protego.parse(page.body.decode("utf-8", errors="replace"))
        delay = parser.crawl_delay(self.options.user_agent)
        if delay:
            self._host_delay[host] = max(self.options.delay, min(float(delay), self.options.max_crawl_delay))
        return _Robots(parser)

    def _check_robots(self, url: str) -> None:
        robots = self._robots_for(url)
        if robots.refusal:
            raise FetchError(robots.refusal)
        if robots.parser is not None and not robots.parser.can_fetch(url, self.options.user_agent):
            raise FetchError(f"disallowed by robots.txt of {urlsplit(url).netloc}; the site asks crawlers to keep "
                             "away from this page, so leave it out")

    def fetch(self, url: str) -> FetchedPage:
        """GET an HTML page, following redirects (each hop re-checked); raises FetchError with a reason."""
        return self._fetch(url, check_robots=True, cap=self.options.max_bytes, html_only=True)

    def _fetch(self, url: str, *, check_robots: bool, cap: int, html_only: bool, truncate: bool = False
               ) -> FetchedPage:
        current = url
        for _hop in range(self.options.max_redirects + 1):
            check_url(current, hosted=self.hosted)
            if check_robots:
                self._check_robots(current)
            status, headers, body = self._get_with_retries(current, cap, truncate)
            if status in _REDIRECT_STATUSES and headers.get("Location"):
                current = urldefrag(urljoin(current, headers["Location"]))[0]
                continue
            if status >= 400:
                hint = "check the URL" if status in (404, 410) else "check the URL or try again later"
                raise FetchError(f"the server answered HTTP {status}; {hint}", status)
            content_type = headers.get("Content-Type", "")
            mime = content_type.split(";", 1)[0].strip().lower()
            if html_only and mime and mime not in _HTML_TYPES:
                raise FetchError(f"not an HTML page (Content-Type {mime})")
            return FetchedPage(current, content_type, body or b"")
        raise FetchError(f"more than {self.options.max_redirects} redirects; use the page's final URL instead")

    def _get_with_retries(self, url: str, cap: int, truncate: bool) -> tuple[int, Mapping[str, str], bytes | None]:
        import requests

        attempts = self.options.retries + 1
        for attempt in range(attempts):
            self._wait_turn(url)
            wait = self.options.backoff * (2**attempt)
            try:
                status, headers, body = self._get_once(url, cap, truncate)
            except FetchError:
                raise
            except (requests.Timeout, requests.ConnectionError) as exc:
                if _is_dns_failure(exc):  # not transient: retrying would only add waiting
                    host = urlsplit(url).hostname
                    raise HostNotFoundError(f"cannot resolve the host name {host}; check the URL and that this "
                                            "machine is online") from exc
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
                    raise FetchError(f"the server answered HTTP {status} {attempts} times; try again later", status)
                asked = _retry_after(headers.get("Retry-After"))
                if asked is not None and asked > self.options.max_retry_after:
                    raise FetchError(f"the server answered HTTP {status} and asked to retry after {asked:.0f} s, "
                                     f"longer than the {self.options.max_retry_after:.0f} s limit", status)
                self._sleep(asked if asked is not None else wait)
                continue
            return status, headers, body
        raise AssertionError("unreachable")

    def _get_once(self, url: str, cap: int, truncate: bool) -> tuple[int, Mapping[str, str], bytes | None]:
        from requests.structures import CaseInsensitiveDict

        timeout = self.options.timeout
        with self.session.get(url, stream=True, allow_redirects=False, timeout=(timeout, timeout)) as response:
            headers = CaseInsensitiveDict(response.headers)  # servers may send 'location' in lower case
            if not 200 <= response.status_code < 300:
                return response.status_code, headers, None  # redirects, errors and retries need no body
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap and not truncate:
                raise FetchError(f"the response is {_megabytes(int(declared))}, over the {_megabytes(cap)} size cap")
            chunks, size = [], 0
            deadline = time.monotonic() + 4 * timeout  # a server dripping bytes slowly must not hold us forever
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > cap and truncate:  # robots.txt: the rules past the cap are ignored, as RFC 9309 allows
                    chunks.append(chunk[: len(chunk) - (size - cap)])
                    break
                if size > cap:
                    raise FetchError(f"the response grew past the {_megabytes(cap)} size cap; download stopped")
                if time.monotonic() > deadline:
                    raise FetchError(f"the download took longer than {4 * timeout:.0f} s; stopped")
                if self.stop_event.is_set():
                    raise CrawlStopped
                chunks.append(chunk)
            return response.status_code, headers, b"".join(chunks)

