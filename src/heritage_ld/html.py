"""HTML pages: one per record (and for the dataset description), an index per entity type, the home
page and the SPARQL form. Plain HTML with landmarks, headings and a small inline style sheet: no
scripts, fonts or other external assets. Every text and attribute value goes through ``e``.

A record page shows the title, the image with its caption, credit and rights statement, the people
and organisations (by name, linked to their pages), every property (values linked and labelled
from the linked records), the other resources the record describes (aggregation, web resource...),
the records that link to it, links to each RDF format, and the record's JSON-LD for search engines
(with the names, types and files of what it links to: ``RecordView.linked``).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html import escape
from typing import Callable, Iterable

from .terms import RDF_TYPE, Triple, split_literal

SDO, DC, DCT = "http://schema.org/", "http://purl.org/dc/elements/1.1/", "http://purl.org/dc/terms/"
EDM, SKOS = "http://www.europeana.eu/schemas/edm/", "http://www.w3.org/2004/02/skos/core#"
LABELS = [SDO + "name", SDO + "headline", SKOS + "prefLabel", DC + "title", DCT + "title",
          "http://www.w3.org/2000/01/rdf-schema#label", "http://xmlns.com/foaf/0.1/name"]
DESCRIPTIONS = [SDO + "description", DC + "description", DCT + "description", SKOS + "note"]
CAPTIONS = [SDO + "caption", SDO + "description", DC + "description"]
IMAGES = [SDO + "primaryImageOfPage", SDO + "image", SDO + "thumbnail"]
ROLES = [(SDO + "author", "Author"), (SDO + "creator", "Creator"), (SDO + "contributor", "Contributor"),
         (SDO + "editor", "Editor"), (SDO + "about", "About"), (SDO + "mentions", "Mentions"),
         (SDO + "publisher", "Publisher"), (SDO + "provider", "Provider"), (SDO + "affiliation", "Affiliation"),
         (SDO + "memberOf", "Member of"), (SDO + "member", "Members"), (SDO + "parentOrganization", "Part of")]

CSS = """
:root{color-scheme:light dark;--fg:#1b1b1b;--bg:#fff;--muted:#595959;--link:#0645ad;--line:#ddd}
@media (prefers-color-scheme:dark){:root{--fg:#eee;--bg:#161616;--muted:#b5b5b5;--link:#8ab4f8;--line:#444}}
*{box-sizing:border-box}
body{margin:0;font:1rem/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:60rem;margin:0 auto;padding:1rem}
header{border-bottom:1px solid var(--line)}footer{border-top:1px solid var(--line);color:var(--muted)}
a{color:var(--link)}a:focus{outline:3px solid var(--link);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:var(--bg);padding:.5rem}
nav ol,nav ul.inline{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}
h1{line-height:1.2;overflow-wrap:break-word;hyphens:auto}.types,small,.iri{color:var(--muted)}
figure{margin:1rem 0}img{max-width:100%;height:auto;background:var(--line)}
figcaption p{margin:.25rem 0}
dl{display:grid;grid-template-columns:minmax(8rem,14rem) 1fr;gap:.25rem 1rem}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}dd ul{margin:0;padding-left:1.1rem}
code{overflow-wrap:anywhere}textarea{width:100%;font:inherit;font-family:monospace}
@media (max-width:40rem){dl{grid-template-columns:1fr}dd{margin-left:1rem}}
"""


def e(value: object) -> str:
    """Escape text for HTML content and attribute values."""
    return escape(str(value), quote=True)


def json_script(data: str) -> str:
    """JSON text made safe inside <script>: ``</`` -> ``<\\/`` and ``<!--`` -> ``\\u003c!--``."""
    return data.replace("</", "<\\/").replace("<!--", "\\u003c!--")


@dataclass
class Site:
    name: str
    home: str                                       # href of the home page
    links: list[tuple[str, str]]                    # (label, href): dataset description, SPARQL, OAI-PMH
    prefixes: dict[str, str] = field(default_factory=dict)


def page(site: Site, title: str, body: str, lang: str = "en", head: str = "",
         crumbs: Iterable[tuple[str, str]] = ()) -> str:
    trail = "".join(f'<li><a href="{e(h)}">{e(t)}</a></li>' for t, h in [(site.name, site.home), *crumbs])
    foot = "".join(f'<li><a href="{e(h)}">{e(t)}</a></li>' for t, h in site.links)
    return (f'<!DOCTYPE html>\n<html lang="{e(lang)}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{e(title)}</title>\n'
            f"<style>{CSS}</style>\n{head}</head>\n<body>\n"
            f'<a class="skip" href="#main" lang="en">Skip to content</a>\n'
            f'<header lang="en"><nav aria-label="Breadcrumb"><ol>{trail}</ol></nav></header>\n'
            f'<main id="main">\n{body}\n</main>\n'
            f'<footer lang="en"><nav aria-label="Data access"><ul class="inline">{foot}</ul></nav></footer>\n'
            "</body>\n</html>\n")


class Graph:
    """Triples indexed by subject and predicate (IRIs without <>)."""

    def __init__(self, triples: Iterable[Triple]) -> None:
        self.po: dict[str, dict[str, list[str]]] = {}
        for s, p, o in triples:
            objects = self.po.setdefault(s[1:-1] if s.startswith("<") else s, {}).setdefault(p[1:-1], [])
            if o not in objects:
                objects.append(o)

    def objects(self, s: str, preds: Iterable[str]) -> list[str]:
        return [o for p in preds for o in self.po.get(s, {}).get(p, [])]

    def iris(self, s: str, preds: Iterable[str]) -> list[str]:
        return [o[1:-1] for o in self.objects(s, preds) if o.startswith("<")]

    def literal(self, s: str, preds: Iterable[str], lang: str) -> tuple[str, str | None] | None:
        """(text, language) of the first literal, in the page language, English, untagged, or any."""
        lits = [split_literal(o)[:2] for o in self.objects(s, preds) if o.startswith('"')]
        for want in (lang, "en", None):
            for text, tag in lits:
                if (tag or "").lower().split("-")[0] == (want or ""):
                    return text, tag
        return lits[0] if lits else None


class RecordView:
    """What a record page needs; ``describe`` gives the triples about a linked IRI (from the store)."""

    def __init__(self, iri: str, triples: list[Triple], describe: Callable[[str], list[Triple]],
                 href: Callable[[str], str | None], site: Site) -> None:
        self.iri, self.g, self.site = iri, Graph(triples), site
        self._describe, self._href = describe, href
        self._seen: dict[str, Graph] = {}
        lit = self.g.literal(iri, LABELS, "")
        lang = self.g.literal(iri, [SDO + "inLanguage", DC + "language"], "")
        self.lang = (lit[1] if lit and lit[1] else lang[0] if lang else "en").lower()

    def graph(self, iri: str) -> Graph:
        if iri in self.g.po:
            return self.g
        if iri not in self._seen:
            self._seen[iri] = Graph(self._describe(iri))
        return self._seen[iri]

    def label(self, iri: str) -> str | None:
        lit = self.graph(iri).literal(iri, LABELS, self.lang)
        return lit[0] if lit else None

    def href(self, iri: str) -> str | None:
        return self._href(iri) if iri.startswith(("http://", "https://")) else None

    def curie(self, iri: str) -> str:
        for prefix, ns in sorted(self.site.prefixes.items(), key=lambda kv: -len(kv[1])):
            if iri.startswith(ns) and len(iri) > len(ns):
                return f"{prefix}:{iri[len(ns):]}"
        return iri

    def linked(self, limit: int = 60) -> list[Triple]:
        """What the page's JSON-LD says besides the record, for search engines: the schema.org description
        (types, names, every schema.org value) of each resource the record links to through schema.org
        and does not describe itself, and the types and names of the resources those link to in turn
        (an article's image record, with its file, licence and creator; the creator's name)."""
        own = set(self.g.po)
        out: list[Triple] = []
        near = sorted({o for s in own for o in self.g.iris(s, self._schema_preds(self.g, s))} - own)[:limit]
        far: set[str] = set()
        for iri in near:
            g = self.graph(iri)
            for p, objects in sorted(g.po.get(iri, {}).items()):
                if p.startswith(SDO) or p == RDF_TYPE[1:-1]:
                    out.extend((f"<{iri}>", f"<{p}>", o) for o in objects if p.startswith(SDO) or o.startswith(f"<{SDO}"))
            far.update(g.iris(iri, self._schema_preds(g, iri)))
        for iri in sorted(far - own - set(near))[:limit]:
            g = self.graph(iri)
            out.extend((f"<{iri}>", RDF_TYPE, o) for o in g.objects(iri, [RDF_TYPE[1:-1]]) if o.startswith(f"<{SDO}"))
            out.extend((f"<{iri}>", f"<{SDO}name>", o) for o in g.objects(iri, [SDO + "name"]))
        return out

    @staticmethod
    def _schema_preds(g: "Graph", s: str) -> list[str]:
        return [p for p in g.po.get(s, {}) if p.startswith(SDO)]

    # -- fragments -----------------------------------------------------------------------------
    def text(self, value: tuple[str, str | None]) -> str:
        text, tag = value
        return f'<span lang="{e(tag)}">{e(text)}</span>' if tag and tag.lower() != self.lang else e(text)

    def link(self, iri: str, rel: str = "") -> str:
        label, href = self.label(iri), self.href(iri)
        name = e(label) if label else f"<code>{e(iri)}</code>"
        return f'<a href="{e(href)}"{rel}>{name}</a>' if href else name

    def value(self, term: str) -> str:
        if term.startswith("<"):
            return self.link(term[1:-1])
        if term.startswith("_:"):
            return f"<code>{e(term)}</code>"
        return self.text(split_literal(term)[:2])

    def details(self, s: str) -> str:
        """Every property of ``s``; predicates with the same values share one row."""
        rows: dict[tuple[str, ...], list[str]] = {}
        for p, objects in sorted(self.g.po.get(s, {}).items()):
            if p != RDF_TYPE[1:-1]:
                rows.setdefault(tuple(objects), []).append(p)
        out = []
        for objects, preds in rows.items():
            names = sorted({re.sub(r"(?<=[a-z])(?=[A-Z])", " ", p.rsplit("/", 1)[-1].rsplit("#", 1)[-1]).lower()
                            for p in preds})
            values = [self.value(o) for o in objects]
            dd = values[0] if len(values) == 1 else "<ul>" + "".join(f"<li>{v}</li>" for v in values) + "</ul>"
            out.append(f'<dt>{e(", ".join(names))} <small lang="en">{e(" · ".join(self.curie(p) for p in preds))}'
                       f"</small></dt><dd>{dd}</dd>")
        return f"<dl>{''.join(out)}</dl>" if out else ""

    def figure(self) -> str:
        """The record's image (its own, or the one it links to) with caption, credit and rights."""
        node = self.iri if self.g.iris(self.iri, [SDO + "contentUrl"]) else next(
            iter(self.g.iris(self.iri, IMAGES)), None)
        url = caption = credit = None
        rights: list[str] = []
        if node:
            g = self.graph(node)
            url = next((u for u in g.iris(node, [SDO + "contentUrl"]) if u.startswith(("http://", "https://"))), None)
            caption = g.literal(node, CAPTIONS, self.lang)
            credit_lit = g.literal(node, [SDO + "creditText"], self.lang)
            creators = [self.link(c) for c in g.iris(node, [SDO + "creator"])]
            notice = g.literal(node, [SDO + "copyrightNotice"], self.lang)
            credit = self.text(credit_lit) if credit_lit else ", ".join(creators + ([self.text(notice)] if notice else []))
            rights = g.iris(node, [SDO + "license"])
        if not url:  # EDM only: the aggregation's edm:isShownBy / edm:object and the web resource
            aggs = [s for s, po in self.g.po.items() if f"<{self.iri}>" in po.get(EDM + "aggregatedCHO", [])]
            for agg in aggs:
                url = next((u for u in self.g.iris(agg, [EDM + "isShownBy", EDM + "object"])
                            if u.startswith(("http://", "https://"))), None)
                if url:
                    caption = self.g.literal(url, [DC + "description"], self.lang)
                    rights = self.g.iris(agg, [EDM + "rights"])
                    break
        if not url:
            return ""
        alt = caption[0] if caption else (self.label(node or self.iri) or "")
        parts = [f"<p>{self.text(caption)}</p>" if caption else ""]
        if credit:
            parts.append(f'<p><span lang="en">Credit:</span> {credit}</p>')
        if rights:
            parts.append('<p><span lang="en">Rights:</span> '
                         + ", ".join(self.link(r, ' rel="license"') for r in rights) + "</p>")
        if node and node != self.iri and self.href(node):
            parts.append(f'<p lang="en"><a href="{e(self.href(node))}">Image record</a></p>')
        return (f'<figure><img src="{e(url)}" alt="{e(alt)}" loading="lazy">'
                f"<figcaption>{''.join(parts)}</figcaption></figure>")

    def people(self) -> str:
        items = []
        for pred, role in ROLES:
            names = [self.link(o) for o in self.g.iris(self.iri, [pred])]
            if names:
                items.append(f'<li><span lang="en">{e(role)}:</span> {", ".join(names)}</li>')
        return f'<section aria-labelledby="people"><h2 id="people" lang="en">People and organisations</h2>' \
               f"<ul>{''.join(items)}</ul></section>" if items else ""


def record_page(view: RecordView, jsonld: str, formats: list[tuple[str, str, str]],
                referenced_by: list[tuple[str, str]] = (), crumbs: list[tuple[str, str]] = (),
                last_changed: int | None = None) -> str:
    """The HTML page of ``view.iri``: ``formats`` = (label, href, media type); ``referenced_by`` =
    (record IRI, predicate IRI) of other records linking here."""
    v, iri = view, view.iri
    title = v.label(iri) or iri
    types = ", ".join(v.curie(t) for t in v.g.iris(iri, [RDF_TYPE[1:-1]]))
    desc = v.g.literal(iri, DESCRIPTIONS, v.lang)
    body = [f"<article>\n<h1>{e(title)}</h1>",
            f'<p class="types" lang="en">{e(types)}</p>' if types else "",
            v.figure(), f"<p>{v.text(desc)}</p>" if desc else "", v.people(),
            f'<section aria-labelledby="details"><h2 id="details" lang="en">Details</h2>'
            f'<p class="iri" lang="en">IRI: <code>{e(iri)}</code></p>{v.details(iri)}</section>']
    others = [s for s in v.g.po if s != iri]
    if others:
        body.append('<section aria-labelledby="also"><h2 id="also" lang="en">Also described in this record</h2>')
        for s in sorted(others):
            kinds = ", ".join(v.curie(t) for t in v.g.iris(s, [RDF_TYPE[1:-1]]))
            body.append(f"<h3>{e(v.label(s) or kinds or s)}</h3><p class=\"iri\"><code>{e(s)}</code>"
                        f"{' (' + e(kinds) + ')' if kinds else ''}</p>{v.details(s)}")
        body.append("</section>")
    if referenced_by:
        items = "".join(f'<li>{v.link(s)} <small>({e(v.curie(p))})</small></li>' for s, p in referenced_by)
        body.append(f'<section aria-labelledby="refs"><h2 id="refs" lang="en">Linked from</h2><ul>{items}</ul></section>')
    fmt_links = "".join(f'<li><a href="{e(h)}" type="{e(t)}">{e(label)}</a></li>' for label, h, t in formats)
    changed = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(last_changed)) if last_changed else ""
    body.append(f'<nav aria-labelledby="formats" lang="en"><h2 id="formats">This record as data</h2>'
                f'<ul class="inline">{fmt_links}</ul>{f"<p>Last changed {e(changed)}</p>" if changed else ""}</nav>')
    body.append("</article>")
    head = "".join(f'<link rel="alternate" type="{e(t)}" href="{e(h)}" title="{e(label)}">\n'
                   for label, h, t in formats if t != "text/html")
    head += f'<script type="application/ld+json">\n{json_script(jsonld)}\n</script>\n'
    return page(v.site, title, "\n".join(b for b in body if b), v.lang, head, crumbs)


def index_page(site: Site, entity: str, count: int, items: list[tuple[str, str]], page_no: int,
               prev_href: str | None, next_href: str | None) -> str:
    """The records of one entity type: (label, href), one page of them."""
    lis = "".join(f'<li><a href="{e(h)}">{e(label)}</a></li>' for label, h in items)
    pager = "".join(f'<li><a href="{e(h)}" rel="{rel}">{text}</a></li>'
                    for h, rel, text in ((prev_href, "prev", "Previous page"), (next_href, "next", "Next page")) if h)
    body = (f"<h1>{e(entity)} <small>({count} records)</small></h1>\n<ul>{lis}</ul>\n"
            + (f'<nav aria-label="Pages"><p>Page {page_no}</p><ul class="inline">{pager}</ul></nav>' if pager else ""))
    return page(site, f"{entity} – {site.name}", body, crumbs=[(entity, "")])


def home_page(site: Site, description: str, types: list[tuple[str, int, str]], files: list[tuple[str, str]]) -> str:
    """The dataset home: entity types with counts (name, count, href) and the dumps (name, href)."""
    lis = "".join(f'<li><a href="{e(h)}">{e(name)}</a> ({n})</li>' for name, n, h in types)
    dumps = "".join(f'<li><a href="{e(h)}">{e(name)}</a></li>' for name, h in files)
    body = (f"<h1>{e(site.name)}</h1>\n" + (f"<p>{e(description)}</p>\n" if description else "")
            + f'<section aria-labelledby="types"><h2 id="types">Records by type</h2><ul>{lis}</ul></section>\n'
            + (f'<section aria-labelledby="dumps"><h2 id="dumps">Downloads</h2><ul>{dumps}</ul></section>'
               if dumps else ""))
    return page(site, site.name, body)


def listing_page(site: Site, path: str, entries: list[tuple[str, str]]) -> str:
    """A folder of the output (e.g. ``edm/``): (name, href)."""
    lis = "".join(f'<li><a href="{e(h)}">{e(n)}</a></li>' for n, h in entries)
    return page(site, f"{path} – {site.name}", f"<h1><code>{e(path)}</code></h1>\n<ul>{lis}</ul>")


def sparql_form(name: str, prefixes: dict[str, str]) -> str:
    """A form for people trying the SPARQL endpoint (GET /sparql?query=...)."""
    example = "SELECT ?s ?name WHERE {\n  ?s schema:name ?name .\n} LIMIT 20"
    declared = ", ".join(sorted(prefixes))
    body = (f"<h1>SPARQL endpoint</h1>\n<form method=\"get\" action=\"\">"
            f'<label for="query">Query (SPARQL 1.1; prefixes declared: {e(declared)})</label>'
            f'<textarea id="query" name="query" rows="12">{e(example)}</textarea>'
            f'<p><button type="submit">Run query</button></p></form>')
    return page(Site(name, "/", []), f"SPARQL – {name}", body)
