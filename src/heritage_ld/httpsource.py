"""HTTP source: a paginated JSON API such as a headless CMS delivery API (requests).

Pagination by page number, offset/limit, cursor or ``Link: rel=next`` (RFC 8288), until an empty page
or the total the API reports (a total that disagrees with the records read stops the run); items found
at a dotted path; a token from an environment variable (never logged or written), sent to the configured
URL's origin only; a timeout that bounds each whole request; retries with exponential backoff on 429/5xx
and network errors, honouring ``Retry-After``; conditional requests (ETag / Last-Modified, bodies and the
headers the walk reads cached on disk) so an unchanged page costs nothing; a polite rate limit;
Contentful entries with their links resolved from the ``includes`` block (``contentful``). Requests to
loopback, private, link-local or reserved addresses are refused unless configured.
"""
from __future__ import annotations

import email.utils
import hashlib
import heapq
import ipaddress
import itertools
import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import contentful
from .sources import InputError, parse_json

PAGINATION = ("page", "offset", "cursor", "link", "none")


@dataclass
class HttpOptions:
    url: str
    items: str = ""                       # dotted path to the list of items ("" = the body is the list)
    pagination: str = "link"
    page_param: str = "page"
    first_page: int = 1
    size_param: str = "per_page"          # page size parameter (page and offset styles)
    page_size: int = 100
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor: str = "next_cursor"      # dotted path to the next cursor in the body
    max_pages: int = 10_000
    total: str | None = None              # dotted path to the record count in the body (contentful: "total")
    token_env: str | None = None          # name of the environment variable holding the token
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    timeout: float = 30.0
    retries: int = 5
    backoff: float = 1.0                  # seconds, doubled each retry
    max_backoff: float = 60.0
    rate_limit: float = 5.0               # requests per second at most
    allow_addresses: list[str] = field(default_factory=list)   # e.g. ["127.0.0.1"] or ["10.0.0.0/8"]
    contentful: bool = False              # items are entries: fields + sys.id, links resolved from includes
    cache_dir: Path | None = None

    @classmethod
    def from_config(cls, raw: dict, root: Path, where: str) -> "HttpOptions":
        known = set(cls.__dataclass_fields__) - {"cache_dir"}
        unknown = set(raw) - known
        if unknown:
            raise InputError(f"{where}: unknown HTTP source option(s) {', '.join(sorted(unknown))}")
        opts = cls(**raw, cache_dir=root / ".heritage-ld" / "http-cache")
        if opts.pagination not in PAGINATION:
            raise InputError(f"{where}: pagination must be one of {', '.join(PAGINATION)}")
        try:
            scheme, host, _port = origin(opts.url)
        except ValueError:
            scheme, host = "", ""                       # e.g. a port that is not a number
        if scheme not in ("http", "https") or not host:
            raise InputError(f"{where}: url must be an http(s) URL, got {opts.url!r}")
        return opts


SOURCE_HINT = "list it in allow_addresses if this source is meant to be there"


def addresses(url: str) -> list[str]:
    """The addresses the host of ``url`` resolves to now; InputError if it does not resolve."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as e:
        raise InputError(f"{url}: cannot resolve host {host!r}: {e.strerror}") from None
    return sorted({info[4][0].split("%", 1)[0] for info in infos})


def check_public_address(url: str, allow: list[str], hint: str = SOURCE_HINT) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or reserved address
    unless that address is in ``allow`` (addresses or networks); raises InputError."""
    allowed = [ipaddress.ip_network(a, strict=False) for a in allow]
    for address in addresses(url):
        if refused := _refused(address, allowed):
            raise InputError(f"{url}: {refused}; {hint}")


def _refused(address: str, allowed: list) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])   # (a peer address may carry an IPv6 zone)
    if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified) and not any(ip in net for net in allowed):
        return f"refusing to connect to {ip} (a loopback, private or link-local address)"
    return None


class AddressRefused(OSError):
    """A connection reached an address ``check_public_address`` would refuse."""


class Deadline:
    """Bounds a whole request (connecting, sending, the answer and its body) to ``seconds``: a read timeout
    only bounds each read, so an answer dripped a byte at a time would never time out. When the time is up
    the socket the request is using is shut down, which ends any read or write blocked on it. The
    connections of a ``guarded`` session tell the deadline of their thread which socket they use."""

    _local = threading.local()

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = self.done = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> "Deadline":
        Deadline._local.current = self
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc) -> None:
        self.done = True
        Deadline._local.current = None

    @classmethod
    def uses(cls, sock: socket.socket | None) -> None:
        """The calling thread's request now reads and writes ``sock``."""
        deadline = getattr(cls._local, "current", None)
        if deadline is not None and sock is not None:
            with deadline._lock:
                deadline._sock = sock
                if deadline.expired:
                    _shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._sock is not None:
                _shut(self._sock)


class _Watchdog:
    """One thread that expires the ``Deadline``s whose time is up (a timer thread per request would cost
    more than the request's own work)."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Deadline]] = []
        self.count = itertools.count()
        self.wakeup = threading.Condition()
        self.thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        with self.wakeup:
            while self.heap and self.heap[0][2].done:          # requests end mostly in order: keep the heap small
                heapq.heappop(self.heap)
            heapq.heappush(self.heap, (deadline.at, next(self.count), deadline))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="heritage-ld deadlines", daemon=True)
                self.thread.start()
            if self.heap[0][2] is deadline:
                self.wakeup.notify()

    def _run(self) -> None:
        with self.wakeup:
            while True:
                now = time.monotonic()
                while self.heap and (self.heap[0][2].done or self.heap[0][0] <= now):
                    deadline = heapq.heappop(self.heap)[2]
                    if not deadline.done:
                        deadline.expire()
                self.wakeup.wait(self.heap[0][0] - now if self.heap else None)


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.__init__)      # a forked process starts its own thread


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass                                        # already closed


def bounded(session: requests.Session, method: str, url: str, timeout: float, **kwargs) -> requests.Response:
    """``session.request`` that ends within ``timeout`` seconds as a whole (see ``Deadline``), raising
    ``requests.Timeout`` when it does not; ``session`` must be ``guarded``."""
    with Deadline(timeout) as deadline:
        try:
            return session.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException as e:
            if deadline.expired and not refusal(e):
                raise requests.Timeout(f"no complete answer within {timeout:g} s") from None
            raise


class PublicOnly(HTTPAdapter):
    """Checks the address each new connection actually reached, not only what a lookup said before it
    (a host name may resolve to a public address for the check and a private one for the connection:
    DNS rebinding), and lets ``Deadline`` cut the connection a request uses. Connections through a
    configured proxy go through requests' proxy manager: there the address is not checked (only the
    lookup check applies), the deadline still is."""

    def __init__(self, allow: list[str]) -> None:
        self.allowed = [ipaddress.ip_network(a, strict=False) for a in allow]
        self.proxied = _pools(None)
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pools(self.allowed)

    def proxy_manager_for(self, proxy, **kwargs):
        manager = super().proxy_manager_for(proxy, **kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = self.proxied
        return manager


def _pools(allowed: list | None) -> dict[str, type]:
    """Connection pools whose connections report their socket to ``Deadline`` and, unless ``allowed`` is
    None, refuse a peer address ``_refused`` names."""
    def checked(base: type) -> type:
        class Checked(base):  # type: ignore[valid-type, misc]
            def _new_conn(self):
                sock = super()._new_conn()
                if allowed is not None and (refused := _refused(sock.getpeername()[0], allowed)):
                    sock.close()
                    raise AddressRefused(refused)
                Deadline.uses(sock)
                return sock

            def request(self, *args, **kwargs):
                Deadline.uses(self.sock)            # a kept-alive connection, used again
                return super().request(*args, **kwargs)
        return Checked
    return {"http": type("CheckedPool", (HTTPConnectionPool,), {"ConnectionCls": checked(HTTPConnection)}),
            "https": type("CheckedTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": checked(HTTPSConnection)})}


def guarded(session: requests.Session, allow: list[str]) -> requests.Session:
    """``session`` with every new connection checked by ``PublicOnly``."""
    for scheme in ("http://", "https://"):
        session.mount(scheme, PublicOnly(allow))
    return session


def refusal(exc: BaseException) -> str | None:
    """The message of an ``AddressRefused`` behind a requests error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def retry_delay(attempt: int, retry_after: str | None, backoff: float, max_backoff: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential backoff, or the server's
    ``Retry-After`` (ASCII digits or an HTTP date), never more than ``max_backoff``. A value that
    is neither (other digits, a sign, a malformed date) falls back to the backoff."""
    delay = min(backoff * (2 ** attempt), max_backoff)
    value = (retry_after or "").strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(min(int(value), max_backoff))
    if value:
        try:
            return max(0.0, min(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), max_backoff))
        except (TypeError, ValueError, OverflowError, IndexError):
            pass
    return delay


def _dig(data: Any, path: str) -> Any:
    for step in [s for s in path.split(".") if s]:
        if not isinstance(data, dict):
            return None
        data = data.get(step)
    return data


_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[^\s;,=]+\s*(?:=\s*(?:"(?:[^"\\]|\\.)*"|[^\s;,"]*))?)*)\s*(?:,|$)')
_PARAM = re.compile(r';\s*([^\s;,=]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^\s;,"]*))?')
_SEPARATORS = re.compile(r"[\s,]*")


def parse_links(value: str, base: str) -> dict[str, str]:
    """The targets of a ``Link`` header (RFC 8288) by relation type, in lower case: several links separated
    by commas (several ``Link`` headers arrive joined so), ``rel`` a space-separated list of types (only
    the first ``rel`` of a link counts), commas inside ``<...>`` or quoted strings, targets resolved against
    ``base`` (the URL that answered). The first link of a type wins. ValueError if the header does not parse."""
    links: dict[str, str] = {}
    pos = _SEPARATORS.match(value).end()
    while pos < len(value):
        link = _LINK.match(value, pos)
        if not link:
            raise ValueError(f"cannot parse {value[pos:pos + 60]!r}")
        rel = next((v for k, v in _PARAM.findall(link[2]) if k.lower() == "rel"), "")
        if rel.startswith('"'):
            rel = re.sub(r"\\(.)", r"\1", rel[1:-1])
        for kind in rel.lower().split():
            links.setdefault(kind, urljoin(base, link[1].strip()))
        pos = _SEPARATORS.match(value, link.end()).end()
    return links


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``, the default port filled in: credentials go to one origin only."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname or "", parts.port or {"http": 80, "https": 443}.get(scheme)


log = logging.getLogger(__name__)


class NoSuchPage(InputError):
    """A page answered 400, 404 or 410: after a page shorter than asked, the end of the list."""
KEPT_HEADERS = ("Link", "X-Total-Count")       # what the walk reads: cached with a page's body


class HttpSource:
    """Iterates the records of one paginated API."""

    def __init__(self, options: HttpOptions, session: requests.Session | None = None) -> None:
        self.o = options
        self.session = guarded(session or requests.Session(), options.allow_addresses)
        self.session.headers["User-Agent"] = "heritage-ld (linked-data publisher)"
        self.session.headers["Accept"] = "application/json"
        self.credentials: dict[str, str] = {}       # sent to the configured URL's origin only
        if options.token_env:
            token = os.environ.get(options.token_env)
            if not token:
                raise InputError(f"{options.url}: the token variable ${options.token_env} is not set")
            self.credentials[options.auth_header] = f"{options.auth_scheme} {token}".strip()
        self._last_request = 0.0
        self.requests_made = 0
        self.not_modified = 0

    # -- safety ----------------------------------------------------------------------------
    def check_address(self, url: str) -> None:
        check_public_address(url, self.o.allow_addresses)

    # -- one request -----------------------------------------------------------------------
    def _cache_path(self, url: str) -> Path | None:
        if not self.o.cache_dir:
            return None
        return self.o.cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()}.page"

    def _wait_rate(self) -> None:
        gap = 1.0 / self.o.rate_limit if self.o.rate_limit > 0 else 0
        delay = self._last_request + gap - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._last_request = time.monotonic()

    def get(self, url: str) -> tuple[bytes, CaseInsensitiveDict, str]:
        """(body, the ``KEPT_HEADERS`` it came with, the URL that answered): GET with retries, backoff,
        Retry-After, conditional requests (a ``304`` gives the cached body and headers) and manual, checked
        redirects. Credentials go only to the configured URL's origin (not to a redirect elsewhere)."""
        cache = self._cache_path(url)
        cached = _read_cache(cache) if cache else None
        conditional = {}
        if cached:
            conditional = {k: v for k, v in (("If-None-Match", cached["etag"]),
                                             ("If-Modified-Since", cached["last_modified"])) if v}
        attempt = 0
        current = url
        redirects = 0
        while True:
            self.check_address(current)
            self._wait_rate()
            self.requests_made += 1
            own = origin(current) == origin(self.o.url)
            headers = {**conditional, **(self.credentials if own else {})}
            try:
                resp = bounded(self.session, "GET", current, self.o.timeout, headers=headers, allow_redirects=False)
            except (requests.Timeout, requests.ConnectionError) as e:
                if refused := refusal(e):
                    raise InputError(f"{current}: {refused}; {SOURCE_HINT}") from None
                kind = "timed out" if isinstance(e, requests.Timeout) else "connection failed"
                if attempt >= self.o.retries:
                    raise InputError(f"{current}: {kind} after {attempt + 1} attempts "
                                     f"(timeout {self.o.timeout:g} s for each whole request)") from None
                self._sleep(attempt, None)
                attempt += 1
                continue
            if resp.is_redirect and redirects < 5:
                current = urljoin(current, resp.headers["Location"])
                try:
                    origin(current)
                except ValueError:
                    raise InputError(f"{url}: redirected to an unusable URL {current!r}") from None
                redirects += 1
                continue
            if resp.status_code == 304 and cached:
                self.not_modified += 1
                kept = CaseInsensitiveDict(cached["headers"])
                kept.update({k: resp.headers[k] for k in KEPT_HEADERS if k in resp.headers})
                return cached["body"], kept, cached["url"]
            if resp.status_code in (401, 403):
                hint = f" in ${self.o.token_env}" if self.o.token_env else " (no token configured: set token_env)"
                if not own and self.credentials:
                    hint += (f"; it is sent only to {urlsplit(self.o.url).netloc} (the configured url), not to "
                             f"this redirect target: configure the URL that answers")
                raise InputError(f"{current}: authentication failed (HTTP {resp.status_code}): check the token{hint}")
            if resp.status_code == 429 or resp.status_code >= 500:
                if attempt >= self.o.retries:
                    raise InputError(f"{current}: HTTP {resp.status_code} after {attempt + 1} attempts; giving up")
                self._sleep(attempt, resp.headers.get("Retry-After"))
                attempt += 1
                continue
            if resp.status_code != 200:
                error = NoSuchPage if resp.status_code in (400, 404, 410) else InputError
                raise error(f"{current}: HTTP {resp.status_code} {resp.reason}")
            kept = CaseInsensitiveDict({k: resp.headers[k] for k in KEPT_HEADERS if k in resp.headers})
            if cache and (resp.headers.get("ETag") or resp.headers.get("Last-Modified")):
                _write_cache(cache, {"etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified"),
                                     "headers": dict(kept), "url": current}, resp.content)
            return resp.content, kept, current

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        time.sleep(retry_delay(attempt, retry_after, self.o.backoff, self.o.max_backoff))

    # -- pages -----------------------------------------------------------------------------
    def _with_params(self, url: str, params: dict[str, Any]) -> str:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query.update({k: str(v) for k, v in params.items()})
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _reported_total(self, data: Any, headers: CaseInsensitiveDict, url: str, n: int) -> tuple[int, str] | None:
        """(the number of records the API says it has, where it says so), if it does."""
        path = self.o.total if self.o.total is not None else ("total" if self.o.contentful else "")
        value = _dig(data, path) if path else None
        if path and (value is not None or self.o.total):    # contentful's default path may be absent
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"{url}: page {n}: no count of records at total = {path!r} (got {value!r}); "
                                 "set total to the path of the record count in a response, or to \"\" for none")
            return value, f"{path!r} in the body"
        value = headers.get("X-Total-Count")
        if value is None:
            return None
        if not re.fullmatch(r"\s*[0-9]+\s*", value):
            log.warning("%s: page %d: ignoring X-Total-Count %r (not a count)", url, n, value)
            return None
        return int(value), "X-Total-Count"

    def pages(self) -> Iterator[tuple[str, Any]]:
        """The pages of the API, each (its URL, its JSON). Pages by number or offset go on until an empty
        page or the total the API reports; a total that disagrees with the records read stops the walk."""
        o = self.o
        seen_urls: set[str] = set()
        seen_bodies: dict[str, int] = {}
        page_no, offset = o.first_page, 0
        url: str | None = o.url
        if o.pagination == "page":
            url = self._with_params(o.url, {o.page_param: page_no, o.size_param: o.page_size})
        elif o.pagination == "offset":
            url = self._with_params(o.url, {o.offset_param: offset, o.size_param: o.page_size})
        sized = o.pagination in ("page", "offset")
        read, total, n, warned = 0, None, 0, False
        short: tuple[int, int] | None = None        # (page, items) if the last page was shorter than asked
        while url is not None:
            n += 1
            if n > o.max_pages:
                raise InputError(f"{o.url}: more than max_pages={o.max_pages} pages; the pagination does not "
                                 "end (raise max_pages if the source is really that large)")
            if url in seen_urls:
                raise InputError(f"{url}: page {n} asks for a page already read; the API's pagination loops")
            seen_urls.add(url)
            try:
                body, headers, answered = self.get(url)
            except NoSuchPage:
                if short:                           # some APIs answer 404 (or 400) past the last page
                    break
                raise
            try:
                data = parse_json(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                where = f"line {e.lineno} column {e.colno}: {e.msg}" if isinstance(e, json.JSONDecodeError) else str(e)
                raise InputError(f"{url}: page {n}: malformed JSON ({where})") from None
            items = _dig(data, o.items) if o.items else data
            if not isinstance(items, list):
                raise InputError(f"{url}: page {n}: no list of items at {o.items or 'the top level'!r}")
            digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()
            if items and digest in seen_bodies:
                raise InputError(f"{url}: page {n} repeats page {seen_bodies[digest]} (same items); "
                                 "the API's pagination is broken")
            seen_bodies[digest] = n
            total = self._reported_total(data, headers, url, n) or total
            yield url, data
            read += len(items)
            if short and items and not warned:
                log.warning("%s: page %d had %d items though page_size = %d was asked: the API caps its page "
                            "size (set page_size to %d to save requests)", o.url, short[0], short[1], o.page_size,
                            short[1])
                warned = True
            short = (n, len(items)) if sized and len(items) < o.page_size else None
            url = None
            if not items or (sized and total and read >= total[0]):
                break
            if o.pagination == "page":
                page_no += 1
                url = self._with_params(o.url, {o.page_param: page_no, o.size_param: o.page_size})
            elif o.pagination == "offset":
                offset += len(items)
                url = self._with_params(o.url, {o.offset_param: offset, o.size_param: o.page_size})
            elif o.pagination == "cursor":
                cursor = _dig(data, o.next_cursor)
                url = self._with_params(o.url, {o.cursor_param: cursor}) if cursor else None
            elif o.pagination == "link":
                try:
                    url = parse_links(headers.get("Link", ""), answered).get("next")
                except ValueError as e:
                    raise InputError(f"{answered}: page {n}: malformed Link header: {e}") from None
        if total and total[0] != read:
            raise InputError(f"{o.url}: the API reports {total[0]} records ({total[1]}) but {read} were read; "
                             "stopping rather than publishing a partial set (check pagination, page_size and "
                             "items, or retry if the source changed during the run)")

    def records(self) -> Iterator[tuple[dict, str]]:
        for url, data in self.pages():
            items = _dig(data, self.o.items) if self.o.items else data
            index = contentful.page_index(data) if self.o.contentful else {}
            for i, item in enumerate(items):
                if self.o.contentful:
                    item = contentful.resolve(item, index)
                yield item, f"{url} (item {i + 1})"


def _read_cache(path: Path) -> dict | None:
    """A page cached by ``_write_cache``: its metadata plus ``body``; None if absent or unreadable."""
    try:
        meta, body = path.read_bytes().split(b"\n", 1)
        return {**json.loads(meta), "body": body}
    except (OSError, ValueError):
        return None


def _write_cache(path: Path, meta: dict, body: bytes) -> None:
    """Metadata (a JSON line) and body in one file, replaced atomically: never one without the other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_bytes(json.dumps(meta).encode() + b"\n" + body)
    os.replace(tmp, path)

