"""The HTTP source against a real local HTTP server (pytest-httpserver on 127.0.0.1)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from werkzeug import Response

from heritage_ld.httpsource import HttpOptions, HttpSource
from heritage_ld.sources import InputError

from test_outputs import copy_project

EXE = Path(sys.executable).parent / "heritage-ld"
LOCAL = ["127.0.0.1"]


def opts(httpserver, path="/items", **kw) -> HttpOptions:
    base = dict(url=httpserver.url_for(path), allow_addresses=LOCAL, backoff=0.01, rate_limit=0, retries=3,
                timeout=2)
    base.update(kw)
    return HttpOptions(**base)


def items(n0, n1):
    return [{"identifier": f"id-{i}", "name": f"Item {i}"} for i in range(n0, n1)]


def ids(source: HttpSource) -> list[str]:
    return [r["identifier"] for r, _origin in source.records()]


def test_page_pagination(httpserver):
    """Pages until an empty page; an API that answers 404 past the last page ends the walk there too."""
    for page, chunk in ((1, items(0, 2)), (2, items(2, 4)), (3, items(4, 5)), (4, [])):
        httpserver.expect_request("/items", query_string={"page": str(page), "per_page": "2"}).respond_with_json(
            {"data": chunk})
    src = HttpSource(opts(httpserver, pagination="page", page_size=2, items="data"))
    assert ids(src) == [f"id-{i}" for i in range(5)]
    httpserver.clear()
    for page, chunk in ((1, items(0, 2)), (2, items(2, 3))):
        httpserver.expect_request("/items", query_string={"page": str(page), "per_page": "2"}).respond_with_json(
            {"data": chunk})
    httpserver.expect_request("/items", query_string={"page": "3", "per_page": "2"}).respond_with_data(
        "Invalid page.", status=404)
    assert ids(HttpSource(opts(httpserver, pagination="page", page_size=2, items="data"))) == ["id-0", "id-1", "id-2"]


def test_offset_pagination(httpserver):
    for off, chunk in ((0, items(0, 3)), (3, items(3, 6)), (6, [])):
        httpserver.expect_request("/items", query_string={"offset": str(off), "limit": "3"}).respond_with_json(chunk)
    src = HttpSource(opts(httpserver, pagination="offset", size_param="limit", page_size=3))
    assert ids(src) == [f"id-{i}" for i in range(6)]


def test_link_header_pagination(httpserver):
    httpserver.expect_request("/items").respond_with_json(
        items(0, 2), headers={"Link": f'<{httpserver.url_for("/items2")}>; rel="next"'})
    httpserver.expect_request("/items2").respond_with_json(items(2, 3))
    assert ids(HttpSource(opts(httpserver))) == ["id-0", "id-1", "id-2"]


def test_cursor_pagination_and_a_cursor_that_never_ends(httpserver):
    httpserver.expect_request("/items", query_string="").respond_with_json({"items": items(0, 1), "next": "a"})
    httpserver.expect_request("/items", query_string={"cursor": "a"}).respond_with_json({"items": items(1, 2)})
    src = HttpSource(opts(httpserver, pagination="cursor", items="items", next_cursor="next"))
    assert ids(src) == ["id-0", "id-1"]
    httpserver.clear()
    counter = iter(range(10_000))

    def endless(request):
        n = next(counter)
        return Response(json.dumps({"items": items(n, n + 1), "next": f"c{n}"}), content_type="application/json")
    httpserver.expect_request("/endless").respond_with_handler(endless)
    src = HttpSource(opts(httpserver, "/endless", pagination="cursor", items="items", next_cursor="next", max_pages=20))
    with pytest.raises(InputError, match="max_pages=20"):
        ids(src)


def test_500_then_success(httpserver):
    httpserver.expect_ordered_request("/items").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request("/items").respond_with_data("oops", status=503)
    httpserver.expect_ordered_request("/items").respond_with_json(items(0, 2))
    src = HttpSource(opts(httpserver))
    assert ids(src) == ["id-0", "id-1"] and src.requests_made == 3


def test_429_honours_retry_after(httpserver):
    httpserver.expect_ordered_request("/items").respond_with_data("slow down", status=429, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request("/items").respond_with_json(items(0, 1))
    start = time.monotonic()
    assert ids(HttpSource(opts(httpserver))) == ["id-0"]
    assert time.monotonic() - start >= 0.9


def test_persistent_5xx_gives_up_with_a_clear_message(httpserver):
    httpserver.expect_request("/items").respond_with_data("down", status=502)
    with pytest.raises(InputError, match=r"HTTP 502 after 4 attempts"):
        ids(HttpSource(opts(httpserver)))


def test_timeout(httpserver):
    def slow(request):
        time.sleep(1.5)
        return Response("[]", content_type="application/json")
    httpserver.expect_request("/items").respond_with_handler(slow)
    with pytest.raises(InputError, match="timed out after 2 attempts"):
        ids(HttpSource(opts(httpserver, timeout=0.3, retries=1)))


def test_malformed_json_on_page_3(httpserver):
    httpserver.expect_request("/items", query_string={"page": "1", "per_page": "1"}).respond_with_json(items(0, 1))
    httpserver.expect_request("/items", query_string={"page": "2", "per_page": "1"}).respond_with_json(items(1, 2))
    httpserver.expect_request("/items", query_string={"page": "3", "per_page": "1"}).respond_with_data(
        '[{"identifier": "x",,}]', content_type="application/json")
    with pytest.raises(InputError, match=r"page=3.*page 3: malformed JSON \(line 1 column"):
        ids(HttpSource(opts(httpserver, pagination="page", page_size=1)))


def test_a_page_that_repeats(httpserver):
    for page in (1, 2):
        httpserver.expect_request("/items", query_string={"page": str(page), "per_page": "2"}).respond_with_json(
            items(0, 2))
    with pytest.raises(InputError, match="page 2 repeats page 1"):
        ids(HttpSource(opts(httpserver, pagination="page", page_size=2)))


def test_conditional_requests_make_an_unchanged_page_cost_nothing(httpserver, tmp_path):
    def handler(request):
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(json.dumps(items(0, 2)), content_type="application/json", headers={"ETag": '"v1"'})
    httpserver.expect_request("/items").respond_with_handler(handler)
    first = HttpSource(opts(httpserver, cache_dir=tmp_path))
    assert ids(first) == ["id-0", "id-1"] and first.not_modified == 0
    second = HttpSource(opts(httpserver, cache_dir=tmp_path))
    assert ids(second) == ["id-0", "id-1"] and second.not_modified == 1


def test_private_addresses_are_refused_unless_allowed(httpserver):
    httpserver.expect_request("/items").respond_with_json(items(0, 1))
    with pytest.raises(InputError, match="refusing to connect to 127.0.0.1"):
        ids(HttpSource(opts(httpserver, allow_addresses=[])))
    for url in ("http://169.254.169.254/latest", "http://10.1.2.3/x", "http://[::1]/x"):
        with pytest.raises(InputError, match="refusing"):
            HttpSource(HttpOptions(url=url)).check_address(url)


def test_the_address_a_connection_reaches_is_checked_too(httpserver, monkeypatch):
    """DNS rebinding: a name that resolved to a public address for the check, then to a private one for the
    connection. The check before the request is made to pass; the connection to 127.0.0.1 is still refused,
    at once (no retries), before any request is sent."""
    from heritage_ld import httpsource
    httpserver.expect_request("/items").respond_with_json(items(0, 1))
    monkeypatch.setattr(httpsource, "check_public_address", lambda url, allow, hint="": None)
    source = HttpSource(opts(httpserver, allow_addresses=[]))
    with pytest.raises(InputError, match=r"/items: refusing to connect to 127\.0\.0\.1 .*allow_addresses"):
        ids(source)
    assert source.requests_made == 1 and not httpserver.log
    assert ids(HttpSource(opts(httpserver))) == ["id-0"]   # allowed: the same connection goes through


def test_token_is_sent_and_never_shown(httpserver, monkeypatch):
    monkeypatch.setenv("CMS_TOKEN", "s3cret-token")
    httpserver.expect_request("/items", headers={"Authorization": "Bearer s3cret-token"}).respond_with_json(items(0, 1))
    assert ids(HttpSource(opts(httpserver, token_env="CMS_TOKEN"))) == ["id-0"]


def contentful_page(httpserver):
    """A Contentful-style delivery API page: entries with sys.id links and an includes block."""
    link = lambda i: {"sys": {"type": "Link", "linkType": "Entry", "id": i}}
    return {
        "total": 1, "skip": 0, "limit": 100,
        "items": [{"sys": {"id": "post-1", "type": "Entry"}, "fields": {
            "name": "A post from the API", "description": "Fetched over HTTP.", "inLanguage": "en",
            "datePublished": "2024-02-01", "url": "https://blog.example.org/api-post", "genre": "blog post",
            "publisher": link("europeana-foundation"),
            "author": [link("author-1")], "about": [link("cynthia-liem")],
            "primaryImageOfPage": link("img-1")}}],
        "includes": {"Entry": [
            {"sys": {"id": "author-1"}, "fields": {"name": "Api Author", "jobTitle": "Editor"}},
            {"sys": {"id": "img-1"}, "fields": {
                "name": "An image", "license": "CC BY 4.0", "url": "https://blog.example.org/api-post",
                "creator": link("author-1"),
                "image": {"url": "https://media.example.org/api.jpg", "description": "An image from the API",
                          "contentType": "image/jpeg"}}}]},
    }


def add_http_source(project: Path, url: str, extra: str = "") -> None:
    text = (project / "heritage-ld.toml").read_text()
    text = text.replace('[validation]', f'''[[sources]]
entity = "article"
url = "{url}"
items = "items"
pagination = "none"
contentful = true
allow_addresses = ["127.0.0.1"]
backoff = 0.01
retries = 1
{extra}

[validation]''')
    (project / "heritage-ld.toml").write_text(text)


def test_publish_from_a_contentful_style_api(httpserver, tmp_path):
    httpserver.expect_request("/entries").respond_with_json(contentful_page(httpserver))
    (tmp_path / "p").mkdir()
    project = copy_project(tmp_path / "p")
    add_http_source(project, httpserver.url_for("/entries"))
    r = subprocess.run([str(EXE), "publish", "--project", str(project)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    nt = (project / "output/dataset.nt").read_text()
    assert '<https://data.example.org/article/post-1> <http://schema.org/author> <https://data.example.org/person/author-1>' in nt
    assert '<https://data.example.org/person/author-1> <http://schema.org/name> "Api Author"@en' in nt
    assert "https://media.example.org/api.jpg" in nt
    nq = (project / "output/dataset.nq").read_text()
    assert f'<http://www.w3.org/ns/prov#wasDerivedFrom> <{httpserver.url_for("/entries")}>' in nq


def test_auth_failure_publishes_nothing(httpserver, tmp_path):
    (tmp_path / "p").mkdir()
    project = copy_project(tmp_path / "p")
    r = subprocess.run([str(EXE), "publish", "--project", str(project)], capture_output=True, text=True)
    assert r.returncode == 0
    before = {p: p.read_bytes() for p in (project / "output").rglob("*") if p.is_file()}
    httpserver.expect_request("/entries").respond_with_data("no", status=401)
    add_http_source(project, httpserver.url_for("/entries"), 'token_env = "CMS_TOKEN"')
    env = {**os.environ, "CMS_TOKEN": "very-secret-value"}
    r = subprocess.run([str(EXE), "publish", "--project", str(project)], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "authentication failed (HTTP 401)" in r.stderr and "$CMS_TOKEN" in r.stderr
    assert "very-secret-value" not in r.stderr + r.stdout and "Traceback" not in r.stderr
    assert {p: p.read_bytes() for p in (project / "output").rglob("*") if p.is_file()} == before
    assert not any(b"very-secret-value" in p.read_bytes() for p in project.rglob("*") if p.is_file())


# -- credentials go to the configured origin only (issue 12, item 5) ------------------------------

def test_the_token_goes_to_the_configured_origin_only(httpserver, monkeypatch):
    """A redirect to another origin (here another port) gets neither the token nor a configured auth
    header; back on the configured origin they are sent again."""
    from pytest_httpserver import HTTPServer
    monkeypatch.setenv("CMS_TOKEN", "s3cret-token")
    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        httpserver.expect_request("/items").respond_with_data(
            "", status=302, headers={"Location": other.url_for("/moved")})
        other.expect_request("/moved").respond_with_json(
            items(0, 2), headers={"Link": f'<{httpserver.url_for("/items2")}>; rel="next"'})
        httpserver.expect_request("/items2").respond_with_json(items(2, 3))
        for header, scheme in (("Authorization", "Bearer"), ("X-Api-Key", "")):
            httpserver.clear_log(), other.clear_log()
            source = HttpSource(opts(httpserver, token_env="CMS_TOKEN", auth_header=header, auth_scheme=scheme))
            assert ids(source) == ["id-0", "id-1", "id-2"]
            sent = [req.headers.get(header) for req, _ in httpserver.log]
            assert sent and all(v == f"{scheme} s3cret-token".strip() for v in sent)
            assert [req.headers.get(header) for req, _ in other.log] == [None]
            assert not any("s3cret" in str(req.headers) for req, _ in other.log)
        other.clear()
        other.expect_request("/moved").respond_with_data("who are you?", status=401)
        with pytest.raises(InputError, match=r"/moved: authentication failed \(HTTP 401\).*sent only to localhost:"):
            ids(HttpSource(opts(httpserver, token_env="CMS_TOKEN")))
    finally:
        other.stop()


@pytest.fixture
def tls_context(tmp_path, monkeypatch):
    """A server-side TLS context for 127.0.0.1 (a certificate made by openssl), trusted by requests."""
    import shutil
    import ssl
    if not shutil.which("openssl"):
        if os.environ.get("CI"):
            pytest.fail("openssl is missing: CI must test https redirects")
        pytest.skip("openssl not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    return context


def test_an_https_to_http_downgrade_on_the_same_host_and_port_drops_the_token(tls_context, monkeypatch):
    from rawserver import RawServer, answer
    monkeypatch.setenv("CMS_TOKEN", "s3cret-token")

    def handler(server, sock, req):
        if req.tls:
            sock.sendall(answer("301 Moved Permanently", headers=[("Location", server.url("/items"))]))
        else:
            sock.sendall(answer("200 OK", json.dumps(items(0, 1)).encode(), [("Content-Type", "application/json")]))
    server = RawServer(handler, tls=tls_context)
    try:
        source = HttpSource(HttpOptions(url=server.url("/items", "https"), token_env="CMS_TOKEN", allow_addresses=LOCAL,
                                        rate_limit=0, retries=0, timeout=5))
        assert ids(source) == ["id-0"]
        assert [(r.tls, r.headers.get("authorization")) for r in server.requests] == [
            (True, "Bearer s3cret-token"), (False, None)]
    finally:
        server.stop()


# -- pagination (item 6) -------------------------------------------------------------------------

def test_a_304_keeps_the_pages_that_follow(httpserver, tmp_path):
    """A 304 without a Link header: the Link cached with the body still leads to the next page."""
    def page(body, link=None):
        def handler(request):
            if request.headers.get("If-None-Match") == '"v1"':
                return Response(status=304, headers={"ETag": '"v1"'})
            headers = {"ETag": '"v1"', **({"Link": f"<{link}>; rel=next"} if link else {})}
            return Response(json.dumps(body), content_type="application/json", headers=headers)
        return handler
    httpserver.expect_request("/items").respond_with_handler(page(items(0, 2), httpserver.url_for("/items2")))
    httpserver.expect_request("/items2").respond_with_handler(page(items(2, 4), httpserver.url_for("/items3")))
    httpserver.expect_request("/items3").respond_with_handler(page(items(4, 5)))
    first = HttpSource(opts(httpserver, cache_dir=tmp_path))
    assert ids(first) == [f"id-{i}" for i in range(5)] and first.not_modified == 0
    second = HttpSource(opts(httpserver, cache_dir=tmp_path))
    assert ids(second) == [f"id-{i}" for i in range(5)] and second.not_modified == 3


def test_a_304_through_publish_withdraws_nothing(httpserver, tmp_path):
    """The same through `heritage-ld publish`: the second run, all 304s, reads the same records."""
    page = contentful_page(httpserver)
    entry = page["items"][0]
    second = {**entry, "sys": {"id": "post-2", "type": "Entry"},
              "fields": {**entry["fields"], "name": "A second post", "url": "https://blog.example.org/api-post-2"}}
    pages = {"/entries": ({**page, "total": 2}, httpserver.url_for("/entries2")),
             "/entries2": ({**page, "total": 2, "items": [second]}, None)}

    def handler(request):
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        body, link = pages[request.path]
        return Response(json.dumps(body), content_type="application/json",
                        headers={"ETag": '"v1"', **({"Link": f'<{link}>; rel="next"'} if link else {})})
    for path in pages:
        httpserver.expect_request(path).respond_with_handler(handler)
    (tmp_path / "p").mkdir()
    project = copy_project(tmp_path / "p")
    add_http_source(project, httpserver.url_for("/entries"))
    (project / "heritage-ld.toml").write_text((project / "heritage-ld.toml").read_text().replace(
        'pagination = "none"', 'pagination = "link"'))
    for run in (1, 2):
        r = subprocess.run([str(EXE), "publish", "--project", str(project)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    assert "0 new, 0 changed, 0 withdrawn" in r.stdout, r.stdout
    assert sum(1 for req, resp in httpserver.log if resp.status_code == 304) == 2
    assert "https://data.example.org/article/post-2" in (project / "output/dataset.nt").read_text()


@pytest.mark.parametrize("link", [
    '<{next}>; rel="next last"',
    '<{next}>; rel="Next"',
    '<{next}>; REL=NEXT',
    '<{first}>; rel="first", <{next}>; rel="next"',
    '<{first}>; rel="first"; title="a, b; c", <{next}>; rel="next"',
    '<{first}?a=1,2>; rel=first, <{next}>; rel=next',
    '<{next}?tags=a,b>; rel="next"',
    '</items2>; rel="next"',
    '<items2>; rel=next',
    ['<{first}>; rel="first"', '<{next}>; rel="next"'],            # two Link headers
])
def test_link_header_forms(httpserver, link):
    """RFC 8288: rel is a case-insensitive, space-separated list; several links (in one header or several);
    commas inside <...> and quoted strings; relative targets resolved against the URL that answered."""
    fill = lambda v: v.format(first=httpserver.url_for("/items"), next=httpserver.url_for("/items2"))
    headers = [("Link", fill(v)) for v in (link if isinstance(link, list) else [link])]
    httpserver.expect_request("/dir/items").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/items")})
    httpserver.expect_request("/items").respond_with_response(
        Response(json.dumps(items(0, 2)), content_type="application/json", headers=headers))
    httpserver.expect_request("/items2").respond_with_json(items(2, 3))
    assert ids(HttpSource(opts(httpserver, "/dir/items"))) == ["id-0", "id-1", "id-2"]


def test_parse_links():
    from heritage_ld.httpsource import parse_links
    base = "http://h.example/a/b?x=1"
    assert parse_links('<c>; rel="next LAST", <../d?q=a,b>; rel=prev; title="x, <y>"', base) == {
        "next": "http://h.example/a/c", "last": "http://h.example/a/c", "prev": "http://h.example/d?q=a,b"}
    assert parse_links(' , <c>; rel=next; rel=prev ,', base) == {"next": "http://h.example/a/c"}   # the first rel
    assert parse_links('<c>; title="rel=next"', base) == {}
    with pytest.raises(ValueError):
        parse_links('c; rel=next', base)


def capped(httpserver, total_header: str | None, body_total: int | None, n: int = 5, cap: int = 2) -> None:
    """An API that serves at most ``cap`` items a page, whatever page size is asked, by page or offset."""
    def handler(request):
        if "offset" in request.args:
            start = int(request.args["offset"])
        else:
            start = (int(request.args["page"]) - 1) * cap
        body = {"data": items(start, min(start + cap, n)), **({"total": body_total} if body_total is not None else {})}
        return Response(json.dumps(body), content_type="application/json",
                        headers={"X-Total-Count": total_header} if total_header else {})
    httpserver.expect_request("/items").respond_with_handler(handler)


@pytest.mark.parametrize("pagination", ["page", "offset"])
@pytest.mark.parametrize("total", ["header", "body", "none"])
def test_a_capped_page_size_is_read_to_the_end(httpserver, caplog, pagination, total):
    """Asked 5 a page, the API gives 2 (total 5 in X-Total-Count or the body): every record is read, with
    a warning; with a reported total the walk stops there, without one at the first empty page."""
    capped(httpserver, "5" if total == "header" else None, 5 if total == "body" else None)
    extra = {"total": "total"} if total == "body" else {}
    source = HttpSource(opts(httpserver, pagination=pagination, page_size=5, items="data", **extra))
    assert ids(source) == [f"id-{i}" for i in range(5)]
    assert source.requests_made == (3 if total != "none" else 4)
    assert "page 1 had 2 items though page_size = 5 was asked" in caplog.text


def test_a_total_that_disagrees_stops_the_walk(httpserver):
    capped(httpserver, "6", None)                          # says 6, has 5
    with pytest.raises(InputError, match=r"reports 6 records \(X-Total-Count\) but 5 were read"):
        ids(HttpSource(opts(httpserver, pagination="page", page_size=2, items="data")))
    httpserver.clear()
    httpserver.expect_request("/items").respond_with_json({"data": items(0, 2), "total": 40})
    with pytest.raises(InputError, match=r"reports 40 records \('total' in the body\) but 2 were read"):
        ids(HttpSource(opts(httpserver, pagination="none", items="data", total="total")))


@pytest.mark.parametrize("value", ["²", "٣", "-5", "1.5", "9" * 400, "Wed, 32 Oct 2015 07:28:00 GMT",
                                   "Wed, 21 Oct 99999 07:28:00 GMT", "soon"])
def test_an_unusable_retry_after_falls_back_to_the_backoff(httpserver, value):
    httpserver.expect_ordered_request("/items").respond_with_data("slow down", status=429,
                                                                  headers={"Retry-After": value})
    httpserver.expect_ordered_request("/items").respond_with_json(items(0, 1))
    start = time.monotonic()
    assert ids(HttpSource(opts(httpserver, max_backoff=0.5))) == ["id-0"]
    assert time.monotonic() - start < 3                     # at most max_backoff, never the huge value


# -- a timeout bounds the whole request (item 7) ----------------------------------------------------

def finishes_within(seconds: float, fn):
    """fn() run in a thread that must end within ``seconds``; its result, or its exception raised here."""
    import threading
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:       # noqa: BLE001 (handed to the test)
            out["error"] = e
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.mark.parametrize("dripped", ["body", "headers", "through a proxy"])
def test_a_dripped_answer_times_out(dripped, monkeypatch):
    """An answer sent a byte every 0.2 s (each read well within the timeout) ends after `timeout` seconds; also
    when a configured HTTP proxy drips it."""
    from rawserver import RawServer, answer
    body = json.dumps(items(0, 50)).encode()
    reply = answer("200 OK", body, [("Content-Type", "application/json")])

    def handler(server, sock, req):
        head = reply[:len(reply) - len(body)]
        if dripped == "headers":
            server.drip(sock, head, 0.2)
        else:
            sock.sendall(head)
            server.drip(sock, body, 0.2)
    server = RawServer(handler)
    url = server.url("/items")
    if dripped == "through a proxy":
        for name in ("NO_PROXY", "no_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", server.url())
        url = "http://127.0.0.1:9/items"                      # (port 9: only the proxy answers)
    try:
        source = HttpSource(HttpOptions(url=url, allow_addresses=LOCAL, rate_limit=0, retries=1, backoff=0.01,
                                        timeout=1))
        start = time.monotonic()
        with pytest.raises(InputError, match=r"/items: timed out after 2 attempts \(timeout 1 s for each whole"):
            finishes_within(15, lambda: ids(source))
        assert 2 <= time.monotonic() - start < 5 and len(server.requests) == 2
    finally:
        server.stop()


def test_publish_reads_a_capped_api_to_the_end_and_says_so(httpserver, tmp_path):
    """Through `heritage-ld publish`: Contentful-style skip/limit, the API serving 1 entry a page of the 100
    asked: both entries are published, the warning is on stderr; a total it cannot reach stops the run (exit 2)."""
    page = contentful_page(httpserver)
    entry = page["items"][0]
    entries = [entry, {**entry, "sys": {"id": "post-2", "type": "Entry"},
                       "fields": {**entry["fields"], "url": "https://blog.example.org/api-post-2"}}]
    reported = {"total": 2}

    def handler(request):
        skip = int(request.args["skip"])
        return Response(json.dumps({**page, **reported, "skip": skip, "limit": 1, "items": entries[skip:skip + 1]}),
                        content_type="application/json")
    httpserver.expect_request("/entries").respond_with_handler(handler)
    (tmp_path / "p").mkdir()
    project = copy_project(tmp_path / "p")
    add_http_source(project, httpserver.url_for("/entries"))
    (project / "heritage-ld.toml").write_text((project / "heritage-ld.toml").read_text().replace(
        'pagination = "none"', 'pagination = "offset"\noffset_param = "skip"\nsize_param = "limit"'))
    r = subprocess.run([str(EXE), "publish", "--project", str(project)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "page 1 had 1 items though page_size = 100 was asked" in r.stderr
    assert "https://data.example.org/article/post-2" in (project / "output/dataset.nt").read_text()
    before = (project / "output/dataset.nt").read_bytes()
    reported["total"] = 3
    r = subprocess.run([str(EXE), "publish", "--project", str(project)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "reports 3 records ('total' in the body) but 2 were read" in r.stderr
    assert (project / "output/dataset.nt").read_bytes() == before
