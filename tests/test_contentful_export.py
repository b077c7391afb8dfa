"""Contentful: a `contentful space export` file read as a source (entries in one locale along the
fallback chain, links resolved, sys dates kept, drafts skipped), Rich Text as Markdown, and the
example project (examples/contentful-blog) published end to end."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import rdflib
from hypothesis import given, settings, strategies as st
from rdflib import Literal, Namespace, URIRef

from heritage_ld.config import Config, ConfigError, Source, load
from heritage_ld.contentful import rich_text
from heritage_ld.sources import InputError, read
from heritage_ld.transforms import TRANSFORMS, TESTS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples/contentful-blog"
EXPORT = "export/contentful-export.json"
SHARED = ROOT.parent / "shared"
EXE = Path(sys.executable).parent / "heritage-ld"
SCHEMA, DCT = Namespace("http://schema.org/"), Namespace("http://purl.org/dc/terms/")
POST1, POST2, DRAFT = "5KsDBWseXY6QegucYAoacS", "6wuXHdfZzGQMg8KEcuyM2q", "3xQ7nPqR2y2VYgqWmUaZkd"
ANNA, IMAGE = "2mWbS9xQp1eK6vTgY3cN0a", "1b4MCzu5NPvu6p4wjnPqcI"


def entries(warnings: list | None = None, **options) -> list[tuple[dict, str]]:
    cfg = Config(EXAMPLE, "https://data.example.org/", {}, [], {}, EXAMPLE / "output", EXAMPLE / "catalog.sqlite")
    src = Source("article", EXPORT, False, {"contentful": True, **options})
    return list(read(cfg, src, (warnings if warnings is not None else []).append))


def test_published_entries_in_the_default_locale_with_links_resolved():
    warnings: list[str] = []
    got = entries(warnings, content_type="blogPost")
    assert [r["identifier"] for r, _ in got] == [POST1, POST2]          # the draft is not published
    assert [o for _, o in got] == [f"{EXPORT} (entry 2, id {POST1})", f"{EXPORT} (entry 3, id {POST2})"]
    post = got[0][0]
    assert post["title"] == "Digitising the gramophone collection"     # en-US, the export's default
    assert post["slug"] == "digitising-the-gramophone-collection"
    assert post["tags"] == ["archives", "music"]
    assert post["publishDate"] == "2024-03-08T10:00+01:00"
    # sys fields stay reachable for dates; links in sys become ids
    assert post["sys"]["createdAt"] == "2024-02-26T13:30:02.114Z"
    assert post["sys"]["updatedAt"] == "2024-03-08T09:12:54.376Z"
    assert post["sys"]["publishedAt"] == "2024-03-08T09:12:54.331Z"
    assert post["sys"]["contentType"] == "blogPost" and post["sys"]["locale"] == "en-US"
    # the author entry and the hero image asset, resolved from the export
    assert post["author"]["identifier"] == ANNA and post["author"]["name"] == "Anna de Graaf"
    assert post["author"]["title"] == "Archivist, sound collections"
    image = post["heroImage"]
    assert image["identifier"] == IMAGE and image["title"] == "Gramophone records in the depot"
    assert image["file"]["url"].startswith("//images.ctfassets.net/") and image["file"]["contentType"] == "image/jpeg"
    assert image["sys"]["type"] == "Asset"
    # Rich Text as Markdown: headings, bold, links, lists; embedded assets left out
    assert post["body"].startswith("Since 2022 the archive has been digitising its **gramophone records**, one side")
    assert "\n\n## Why shellac records?\n\n" in post["body"] and "\n\n### What is next?\n\n" in post["body"]
    assert "[Europeana](<https://www.europeana.eu/>)'s data model." in post["body"]
    assert "- cleaning: 10 minutes\n- recording: 5 minutes" in post["body"]
    assert post["description"] == "How a city archive digitises, describes and openly licenses 4,200 shellac records."
    # the second post was changed after it was published: the export holds the draft, and the run says so
    assert len(warnings) == 1 and POST2 in warnings[0] and "not yet published" in warnings[0]


def test_another_locale_falls_back_along_the_chain():
    got = {r["identifier"]: r for r, _ in entries(content_type="blogPost", locale="nl")}
    post, other = got[POST1], got[POST2]
    assert post["title"] == "De grammofooncollectie gedigitaliseerd" and post["sys"]["locale"] == "nl"
    assert post["body"].startswith("Sinds 2022 digitaliseert het archief zijn **grammofoonplaten**")
    assert post["slug"] == "digitising-the-gramophone-collection"        # not localised: the default locale's
    assert post["heroImage"]["title"] == "Grammofoonplaten in het depot"
    assert post["heroImage"]["file"]["fileName"] == "gramophone-records-depot.jpg"   # nl -> en-US
    assert post["author"]["title"] == "Archivaris geluidscollecties"
    assert other["title"] == "Open licences for archive photographs"      # no nl title: en-US


def test_every_published_entry_without_a_content_type(tmp_path):
    assert [r["identifier"] for r, _ in entries()] == [ANNA, POST1, POST2]
    assert [r["identifier"] for r, _ in entries(content_type=["person"])] == [ANNA]


def test_export_mistakes_are_errors_that_say_what_to_do(tmp_path):
    with pytest.raises(InputError, match=r"no content type 'blogpost' in the export \(its content types: blogPost, person\)"):
        entries(content_type="blogpost")
    with pytest.raises(InputError, match=r"locale 'de-DE' is not in the export \(its locales: en-US, nl\)"):
        entries(locale="de-DE")
    (tmp_path / "posts.json").write_text(json.dumps([{"identifier": "x"}]))
    cfg = Config(tmp_path, "https://data.example.org/", {}, [], {}, tmp_path / "o", tmp_path / "c")
    with pytest.raises(InputError, match="not a Contentful space export"):
        list(read(cfg, Source("article", "posts.json", False, {"contentful": True})))
    export = json.loads((EXAMPLE / EXPORT).read_text())
    del export["locales"]
    (tmp_path / "content-only.json").write_text(json.dumps(export))
    with pytest.raises(InputError, match='lists no default locale.*set locale = "en-US"'):
        list(read(cfg, Source("article", "content-only.json", False, {"contentful": True})))
    assert list(read(cfg, Source("article", "content-only.json", False, {"contentful": True, "locale": "en-US"})))
    project = tmp_path / "p"
    project.mkdir()
    (project / "heritage-ld.toml").write_text('[project]\nbase_uri = "https://x.org/"\ndata_provider = "a"\n'
                                              'provider = "b"\n[[sources]]\nentity = "article"\npath = "e.json"\n'
                                              'locale = "nl"\n')
    with pytest.raises(ConfigError, match="add contentful = true"):
        load(project)


def test_delivery_api_entries_keep_sys_and_links_follow_their_type():
    """Entries and assets may share an id: a link names its type, and resolves to that type only."""
    from heritage_ld.contentful import page_index, resolve
    page = {"items": [{"sys": {"id": "p1", "type": "Entry", "updatedAt": "2024-05-01T10:00:00Z",
                               "contentType": {"sys": {"type": "Link", "linkType": "ContentType", "id": "post"}}},
                       "fields": {"title": "T", "image": {"sys": {"type": "Link", "linkType": "Asset", "id": "x1"}},
                                  "related": {"sys": {"type": "Link", "linkType": "Entry", "id": "x1"}}}}],
            "includes": {"Entry": [{"sys": {"id": "x1", "type": "Entry"}, "fields": {"title": "an entry"}}],
                         "Asset": [{"sys": {"id": "x1", "type": "Asset"}, "fields": {"title": "an asset"}}]}}
    rec = resolve(page["items"][0], page_index(page))
    assert rec["image"]["title"] == "an asset" and rec["related"]["title"] == "an entry"
    assert rec["sys"] == {"id": "p1", "type": "Entry", "updatedAt": "2024-05-01T10:00:00Z", "contentType": "post"}


# -- Rich Text -> Markdown -> plain text -------------------------------------------------------

TEXT = st.lists(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85")
               | st.sampled_from(list("\\`*_[]<>&#|~-+=.)!1 \n") + ["&amp;", "1. ", "# ", "> ", "---", "<b>"]),
               min_size=1).map("".join)


def _norm(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.split("\n") if line.strip())


@settings(max_examples=600, deadline=None)
@given(TEXT, st.lists(st.sampled_from(["bold", "italic"]), unique=True),
       st.integers(1, 6))
def test_rich_text_words_survive_markdown_exactly(text, marks, level):
    """Whatever a text node holds, the plain text of its Markdown is that text (Markdown syntax in
    the text is escaped, not interpreted)."""
    node = {"nodeType": "text", "value": text, "marks": [{"type": m} for m in marks], "data": {}}
    doc = {"nodeType": "document", "content": [{"nodeType": "paragraph", "content": [node]},
                                               {"nodeType": f"heading-{level}", "content": [node]}]}
    md = rich_text(doc)
    blocks = TRANSFORMS["markdown"](md).split("\n\n")
    if _norm(text):
        assert _norm(TRANSFORMS["headings"](md)) == " ".join(_norm(text).split("\n"))
        assert _norm("\n".join(blocks)) == _norm(text + "\n" + " ".join(_norm(text).split("\n")))


def test_markdown_and_headings_transforms():
    md = ("## Tell us about *your* role.\n\nI am an **Assistant** Professor in the [group](https://x.org) "
          "&amp; 90%-accurate.\nNext line.\n\n- one\n- two ![a picture](x.png)\n\n1. first\n")
    assert TRANSFORMS["markdown"](md) == ("Tell us about your role.\n\nI am an Assistant Professor in the group "
                                          "& 90%-accurate.\nNext line.\n\n- one\n\n- two\n\n1. first")
    assert TRANSFORMS["headings"](md) == "Tell us about your role."
    assert TESTS["has_headings"](md) and not TESTS["has_headings"]("no headings")
    assert TRANSFORMS["headings"]("no headings") is None


# -- the example project, end to end -----------------------------------------------------------

def example_project(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest)
    shutil.copytree(ROOT / "shapes", dest / "shapes")
    toml = dest / "heritage-ld.toml"
    toml.write_text(toml.read_text().replace("../../shapes/", "shapes/"))
    return dest


def test_the_contentful_example_publishes_strict_valid_edm(tmp_path):
    project = example_project(tmp_path / "blog")
    r = subprocess.run([str(EXE), "publish", "--project", str(project)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"warning: {EXPORT}: 1 entry has changes not yet published" in r.stderr
    g = rdflib.Graph().parse(project / "output/dataset.nt", format="nt")
    post, anna = URIRef(f"https://data.example.org/article/{POST1}"), URIRef(f"https://data.example.org/person/{ANNA}")
    assert (post, SCHEMA.headline, Literal("Digitising the gramophone collection", lang="en-us")) in g
    assert (post, SCHEMA.author, anna) in g and (anna, SCHEMA.name, Literal("Anna de Graaf")) in g
    assert (post, SCHEMA.dateModified, Literal("2024-03-08T09:12:54.376Z", datatype=rdflib.XSD.dateTime)) in g
    assert (post, SCHEMA.dateCreated, Literal("2024-02-26T13:30:02.114Z", datatype=rdflib.XSD.dateTime)) in g
    body = str(g.value(post, SCHEMA.articleBody))
    assert body.startswith("Since 2022 the archive has been digitising its gramophone records, one side at a time."
                           "\n\nWhy shellac records?\n\nShellac breaks easily")
    assert g.value(post, SCHEMA.articleBody).language == "en-us"
    assert str(g.value(post, DCT.tableOfContents)) == "Why shellac records?\nHow we work\nWhat is next?"
    assert not list(g.triples((URIRef(f"https://data.example.org/article/{DRAFT}"), None, None)))
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED} is missing: CI must run the conformance tools")
        pytest.skip(f"{SHARED} not found: Europeana's validation tools unavailable")
    files = sorted(str(p) for p in (project / "output/edm").rglob("*.xml"))
    assert len(files) == 2
    v = subprocess.run([sys.executable, str(SHARED / "tools/validate_edm.py"), "--strict", *files],
                       capture_output=True, text=True, timeout=300)
    assert v.returncode == 0, v.stdout + v.stderr
