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
    for page, chunk in ((1, items(0, 2)), (2, items(2, 4)), (3, items(4, 5))):
        httpserver.expect_request("/items", query_string={"page": str(page), "per_page": "2"}).respond_with_json(
            {"data": chunk})
    src = HttpSource(opts(httpserver, pagination="page", page_size=2, items="data"))
    assert ids(src) == [f"id-{i}" for i in range(5)]


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
