"""HTTP source: a paginated JSON API such as a headless CMS delivery API (requests).

Pagination by page number, offset/limit, cursor or ``Link: rel=next``; items found at a dotted
path; a bearer token from an environment variable (never logged or written); timeouts; retries
with exponential backoff on 429/5xx and network errors, honouring ``Retry-After``; conditional
requests (ETag / Last-Modified, bodies cached on disk) so an unchanged page costs nothing; a
polite rate limit; Contentful-style ``sys.id`` links resolved from the ``includes`` block.
Requests to loopback, private, link-local or reserved addresses are refused unless configured.
"""
from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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
        if urlsplit(opts.url).scheme not in ("http", "https"):
            raise InputError(f"{where}: url must be http(s), got {opts.url!r}")
        return opts


SOURCE_HINT = "list it in allow_addresses if this source is meant to be there"


def check_public_address(url: str, allow: list[str], hint: str = SOURCE_HINT) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or reserved address
    unless that address is in ``allow`` (addresses or networks); raises InputError."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as e:
        raise InputError(f"{url}: cannot resolve host {host!r}: {e.strerror}") from None
    allowed = [ipaddress.ip_network(a, strict=False) for a in allow]
    for info in infos:
        if refused := _refused(info[4][0], allowed):
            raise InputError(f"{url}: {refused}; {hint}")


def _refused(address: str, allowed: list) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified) and not any(ip in net for net in allowed):
        return f"refusing to connect to {ip} (a loopback, private or link-local address)"
    return None


class AddressRefused(OSError):
    """A connection reached an address ``check_public_address`` would refuse."""


class PublicOnly(HTTPAdapter):
    """Checks the address each new connection actually reached, not only what a lookup said before it
    (a host name may resolve to a public address for the check and a private one for the connection:
    DNS rebinding). Connections through a configured proxy go through requests' proxy manager, unchecked
    here: only the lookup check applies to them."""

    def __init__(self, allow: list[str]) -> None:
        self.allowed = [ipaddress.ip_network(a, strict=False) for a in allow]
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("CheckedPool", (HTTPConnectionPool,), {"ConnectionCls": self._checked(HTTPConnection)}),
            "https": type("CheckedTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": self._checked(HTTPSConnection)})}

    def _checked(self, base: type) -> type:
        allowed = self.allowed

        class Checked(base):  # type: ignore[valid-type, misc]
            def _new_conn(self):
                sock = super()._new_conn()
                if refused := _refused(sock.getpeername()[0], allowed):
                    sock.close()
                    raise AddressRefused(refused)
                return sock
        return Checked


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
    ``Retry-After`` (seconds or an HTTP date), never more than ``max_backoff``."""
    delay = min(backoff * (2 ** attempt), max_backoff)
    if retry_after:
        if retry_after.strip().isdigit():
            delay = float(retry_after)
        else:
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                when = None
            delay = when.timestamp() - time.time() if when else delay
        delay = max(0.0, min(delay, max_backoff))
    return delay


def _dig(data: Any, path: str) -> Any:
    for step in [s for s in path.split(".") if s]:
        if not isinstance(data, dict):
            return None
        data = data.get(step)
    return data


class HttpSource:
    """Iterates the records of one paginated API."""

    def __init__(self, options: HttpOptions, session: requests.Session | None = None) -> None:
        self.o = options
        self.session = guarded(session or requests.Session(), options.allow_addresses)
        self.session.headers["User-Agent"] = "heritage-ld (linked-data publisher)"
        self.session.headers["Accept"] = "application/json"
        if options.token_env:
            token = os.environ.get(options.token_env)
            if not token:
                raise InputError(f"{options.url}: the token variable ${options.token_env} is not set")
            self.session.headers[options.auth_header] = f"{options.auth_scheme} {token}".strip()
        self._last_request = 0.0
        self.requests_made = 0
        self.not_modified = 0

    # -- safety ----------------------------------------------------------------------------
    def check_address(self, url: str) -> None:
        check_public_address(url, self.o.allow_addresses)

    # -- one request -----------------------------------------------------------------------
    def _cache_paths(self, url: str) -> tuple[Path, Path] | None:
        if not self.o.cache_dir:
            return None
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.o.cache_dir / f"{key}.json", self.o.cache_dir / f"{key}.meta"

    def _wait_rate(self) -> None:
        gap = 1.0 / self.o.rate_limit if self.o.rate_limit > 0 else 0
        delay = self._last_request + gap - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._last_request = time.monotonic()

    def get(self, url: str) -> tuple[bytes, requests.Response]:
        """GET with retries, backoff, Retry-After, conditional requests and manual, checked redirects."""
        cache = self._cache_paths(url)
        headers: dict[str, str] = {}
        if cache and cache[1].exists() and cache[0].exists():
            meta = json.loads(cache[1].read_text())
            if meta.get("etag"):
                headers["If-None-Match"] = meta["etag"]
            if meta.get("last_modified"):
                headers["If-Modified-Since"] = meta["last_modified"]
        attempt = 0
        current = url
        redirects = 0
        while True:
            self.check_address(current)
            self._wait_rate()
            self.requests_made += 1
            try:
                resp = self.session.get(current, headers=headers, timeout=self.o.timeout, allow_redirects=False)
            except (requests.Timeout, requests.ConnectionError) as e:
                if refused := refusal(e):
                    raise InputError(f"{current}: {refused}; {SOURCE_HINT}") from None
                kind = "timed out" if isinstance(e, requests.Timeout) else "connection failed"
                if attempt >= self.o.retries:
                    raise InputError(f"{current}: {kind} after {attempt + 1} attempts "
                                     f"(timeout {self.o.timeout:g} s)") from None
                self._sleep(attempt, None)
                attempt += 1
                continue
            if resp.is_redirect and redirects < 5:
                current = urljoin(current, resp.headers["Location"])
                redirects += 1
                continue
            if resp.status_code == 304 and cache:
                self.not_modified += 1
                return cache[0].read_bytes(), resp
            if resp.status_code in (401, 403):
                hint = f" in ${self.o.token_env}" if self.o.token_env else " (no token configured: set token_env)"
                raise InputError(f"{current}: authentication failed (HTTP {resp.status_code}): check the token{hint}")
            if resp.status_code == 429 or resp.status_code >= 500:
                if attempt >= self.o.retries:
                    raise InputError(f"{current}: HTTP {resp.status_code} after {attempt + 1} attempts; giving up")
                self._sleep(attempt, resp.headers.get("Retry-After"))
                attempt += 1
                continue
            if resp.status_code != 200:
                raise InputError(f"{current}: HTTP {resp.status_code} {resp.reason}")
            body = resp.content
            if cache and (resp.headers.get("ETag") or resp.headers.get("Last-Modified")):
                cache[0].parent.mkdir(parents=True, exist_ok=True)
                cache[0].write_bytes(body)
                cache[1].write_text(json.dumps({"etag": resp.headers.get("ETag"),
                                                "last_modified": resp.headers.get("Last-Modified")}))
            return body, resp

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        time.sleep(retry_delay(attempt, retry_after, self.o.backoff, self.o.max_backoff))

    # -- pages -----------------------------------------------------------------------------
    def _with_params(self, url: str, params: dict[str, Any]) -> str:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query.update({k: str(v) for k, v in params.items()})
        return urlunsplit(parts._replace(query=urlencode(query)))

    def pages(self) -> Iterator[tuple[str, Any]]:
        o = self.o
        seen_urls: set[str] = set()
        seen_bodies: dict[str, int] = {}
        page_no, offset, cursor = o.first_page, 0, None
        url: str | None = o.url
        if o.pagination == "page":
            url = self._with_params(o.url, {o.page_param: page_no, o.size_param: o.page_size})
        elif o.pagination == "offset":
            url = self._with_params(o.url, {o.offset_param: offset, o.size_param: o.page_size})
        for n in range(1, o.max_pages + 2):
            if url is None:
                return
            if n > o.max_pages:
                raise InputError(f"{o.url}: more than max_pages={o.max_pages} pages; the pagination does not "
                                 "end (raise max_pages if the source is really that large)")
            if url in seen_urls:
                raise InputError(f"{url}: page {n} asks for a page already read; the API's pagination loops")
            seen_urls.add(url)
            body, resp = self.get(url)
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
            yield url, data
            if not items:
                return
            if o.pagination == "page":
                page_no += 1
                url = self._with_params(o.url, {o.page_param: page_no, o.size_param: o.page_size})
                if len(items) < o.page_size:
                    return
            elif o.pagination == "offset":
                offset += len(items)
                url = self._with_params(o.url, {o.offset_param: offset, o.size_param: o.page_size})
                if len(items) < o.page_size:
                    return
            elif o.pagination == "cursor":
                cursor = _dig(data, o.next_cursor)
                url = self._with_params(o.url, {o.cursor_param: cursor}) if cursor else None
            elif o.pagination == "link":
                nxt = resp.links.get("next", {}).get("url")
                url = urljoin(url, nxt) if nxt else None
            else:
                return

    def records(self) -> Iterator[tuple[dict, str]]:
        for url, data in self.pages():
            items = _dig(data, self.o.items) if self.o.items else data
            includes = _includes(data) if self.o.contentful else {}
            for i, item in enumerate(items):
                if self.o.contentful:
                    item = _entry(item, includes, 0, set())
                yield item, f"{url} (item {i + 1})"


def _includes(data: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for kind in ("Entry", "Asset"):
        for e in (data.get("includes") or {}).get(kind, []) or []:
            if isinstance(e, dict) and _dig(e, "sys.id"):
                out[_dig(e, "sys.id")] = e
    for e in data.get("items", []) if isinstance(data.get("items"), list) else []:
        if isinstance(e, dict) and _dig(e, "sys.id"):
            out.setdefault(_dig(e, "sys.id"), e)
    return out


def _entry(entry: Any, includes: dict[str, dict], depth: int, path: set[str]) -> Any:
    """An entry's fields plus ``identifier`` (its sys.id), with Link objects replaced by the linked
    entries (resolved recursively, cycles and depth > 10 left as ``{"identifier": id}``)."""
    if isinstance(entry, list):
        return [_entry(e, includes, depth, path) for e in entry]
    if not isinstance(entry, dict):
        return entry
    sys_ = entry.get("sys") if isinstance(entry.get("sys"), dict) else None
    if sys_ and sys_.get("type") == "Link":
        target = includes.get(sys_.get("id"))
        if target is None or sys_.get("id") in path or depth > 10:
            return {"identifier": sys_.get("id")}
        return _entry(target, includes, depth + 1, path | {sys_.get("id")})
    if sys_ and "fields" in entry:
        fields = {k: _entry(v, includes, depth, path | {sys_.get("id")}) for k, v in entry["fields"].items()}
        return {**fields, "identifier": fields.get("identifier", sys_.get("id"))}
    return {k: _entry(v, includes, depth, path) for k, v in entry.items()}
