"""The raw limit: parse the JSON Lines and write N-Triples with f-strings, nothing else.

The same subjects and predicates as mapping/*.yaml (article, image, person, organisation), with
only what costs next to nothing: literal escaping, a dict for language spellings and rights labels,
id sets for links. No date or duration parsing, no IRI or link checks, no validation, no report:
this is the floor any mapping engine in Python pays for reading JSON and writing text.

    python benchmarks/raw_limit.py PROJECT OUT.nt
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

B = "https://data.example.org/"
DC, DCT, EDM, ORE = "http://purl.org/dc/elements/1.1/", "http://purl.org/dc/terms/", \
    "http://www.europeana.eu/schemas/edm/", "http://www.openarchives.org/ore/terms/"
S, SKOS, OWL, EBU = "http://schema.org/", "http://www.w3.org/2004/02/skos/core#", "http://www.w3.org/2002/07/owl#", \
    "http://www.ebu.ch/metadata/ontologies/ebucore/ebucore#"
RDA, XSD = "http://rdvocab.info/ElementsGr2/", "http://www.w3.org/2001/XMLSchema#"
A = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
ESC = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})
LANGS = {"english": "en", "dutch": "nl", "german": "de", "french": "fr", "italian": "it", "spanish": "es",
         "polish": "pl"}


def lit(v, lang: str | None = None, dt: str | None = None) -> str:
    s = f'"{str(v).translate(ESC)}"'
    return f"{s}@{lang}" if lang else f"{s}^^<{dt}>" if dt else s


def as_list(v) -> list:
    return v if isinstance(v, list) else [] if v is None else [v]


def rights_index() -> dict[str, str]:
    from heritage_ld.transforms import data_file
    idx = {}
    for s in data_file("rights.json")["statements"]:
        for k in (s["uri"], s["uri"].replace("http:", "https:"), s["label"], s["notation"], *s["altLabels"]):
            idx[k] = s["uri"]
    return idx


def run(project: Path, out: Path) -> int:
    rights = rights_index()
    people = {json.loads(l)["identifier"] for l in open(project / "data/people.jsonl", encoding="utf-8")}
    orgs = {json.loads(l)["identifier"] for l in open(project / "data/organisations.jsonl", encoding="utf-8")}
    seen: set[str] = set()
    n = 0
    with open(out, "w", encoding="utf-8") as fh:
        def w(s: str, p: str, o: str) -> None:
            nonlocal n
            fh.write(f"{s} <{p}> {o} .\n")
            n += 1

        def link(i: str) -> str:
            return f"<{B}person/{i}>" if i in people else f"<{B}organisation/{i}>"

        def person(p: dict) -> None:
            s = f"<{B}person/{p['identifier']}>"
            w(s, A[1:-1], f"<{EDM}Agent>"), w(s, A[1:-1], f"<{S}Person>")
            w(s, SKOS + "prefLabel", lit(p["name"], "en")), w(s, S + "name", lit(p["name"], "en"))
            if "honorificPrefix" in p:
                w(s, S + "honorificPrefix", lit(p["honorificPrefix"]))
            for j in as_list(p.get("jobTitle")):
                w(s, RDA + "professionOrOccupation", lit(j, "en")), w(s, S + "jobTitle", lit(j, "en"))
            for k, prop in (("affiliation", "affiliation"), ("memberOf", "memberOf")):
                for o in as_list(p.get(k)):
                    w(s, EDM + "isRelatedTo", f"<{B}organisation/{o}>"), w(s, S + prop, f"<{B}organisation/{o}>")
            for o in as_list(p.get("sameAs")):
                w(s, OWL + "sameAs", f"<{o}>"), w(s, S + "sameAs", f"<{o}>")
            if "url" in p:
                w(s, S + "url", f"<{p['url']}>")

        def aggregation(s: str, cho: str, page: str, shown_by: str, rights_uri: str | None, obj: bool) -> None:
            w(s, A[1:-1], f"<{ORE}Aggregation>"), w(s, EDM + "aggregatedCHO", cho)
            w(s, EDM + "dataProvider", lit("Europeana Foundation")), w(s, EDM + "provider", lit("Europeana Foundation"))
            w(s, EDM + "isShownAt", f"<{page}>"), w(s, EDM + "isShownBy", f"<{shown_by}>")
            if obj:
                w(s, EDM + "object", f"<{shown_by}>")
            if rights_uri:
                w(s, EDM + "rights", f"<{rights_uri}>")

        def image(img: dict, article: str, lang: str) -> None:
            s, f = f"<{B}image/{img['identifier']}>", img["image"]
            w(s, A[1:-1], f"<{EDM}ProvidedCHO>"), w(s, A[1:-1], f"<{S}{img.get('@type', 'Photograph')}>")
            w(s, DC + "title", lit(img["name"], lang)), w(s, S + "name", lit(img["name"], lang))
            if "description" in f:
                for p in (DC + "description", S + "caption", S + "description"):
                    w(s, p, lit(f["description"], lang))
            if "creator" in img:
                c = img["creator"]
                w(s, DC + "creator", f"<{B}person/{c['identifier']}>"), w(s, S + "creator", f"<{B}person/{c['identifier']}>")
                if c["identifier"] not in seen:
                    seen.add(c["identifier"])
                    person(c)
            if "dateCreated" in img:
                w(s, DC + "date", lit(img["dateCreated"])), w(s, S + "dateCreated", lit(img["dateCreated"]))
            if "genre" in img:
                w(s, DC + "type", lit(img["genre"], "en")), w(s, S + "genre", lit(img["genre"], "en"))
            w(s, DC + "identifier", lit(img["identifier"])), w(s, DCT + "isPartOf", article), w(s, S + "isPartOf", article)
            w(s, EDM + "type", lit("IMAGE")), w(s, S + "contentUrl", f"<{f['url']}>")
            w(s, S + "encodingFormat", lit(f["contentType"]))
            r = rights.get(img.get("license", ""))
            if r:
                w(s, S + "license", f"<{r}>")
            for k in ("creditText", "copyrightNotice"):
                if k in img:
                    w(s, S + k, lit(img[k]))
            if "provider" in img:
                w(s, S + "provider", f"<{B}organisation/{img['provider']}>")
            w(s, S + "url", f"<{img['url']}>")
            aggregation(f"<{B}image/{img['identifier']}#aggregation>", s, img["url"], f["url"], r, True)
            webresource(f, r, lang)

        def webresource(f: dict, r: str | None, lang: str) -> None:
            s = f"<{f['url']}>"
            w(s, A[1:-1], f"<{EDM}WebResource>"), w(s, EBU + "hasMimeType", lit(f["contentType"]))
            if "description" in f:
                w(s, DC + "description", lit(f["description"], lang))
            if r:
                w(s, EDM + "rights", f"<{r}>")
            if "width" in f:
                w(s, EBU + "width", lit(f["width"], dt=XSD + "integer")), w(s, EBU + "height", lit(f["height"], dt=XSD + "integer"))

        for line in open(project / "data/organisations.jsonl", encoding="utf-8"):
            o = json.loads(line)
            s = f"<{B}organisation/{o['identifier']}>"
            w(s, A[1:-1], f"<{EDM}Agent>"), w(s, A[1:-1], f"<{S}Organization>"), w(s, A[1:-1], f"<{S}{o['@type']}>")
            w(s, SKOS + "prefLabel", lit(o["name"], "en")), w(s, S + "name", lit(o["name"], "en"))
            if "description" in o:
                w(s, SKOS + "note", lit(o["description"], "en")), w(s, S + "description", lit(o["description"], "en"))
            if "parentOrganization" in o:
                p = f"<{B}organisation/{o['parentOrganization']}>"
                w(s, DCT + "isPartOf", p), w(s, S + "parentOrganization", p)
            for m in as_list(o.get("member")):
                w(s, S + "member", f"<{B}person/{m}>")
            if "location" in o:
                w(s, S + "location", lit(o["location"], "en"))
            for x in as_list(o.get("sameAs")):
                w(s, OWL + "sameAs", f"<{x}>"), w(s, S + "sameAs", f"<{x}>")
            if "url" in o:
                w(s, S + "url", f"<{o['url']}>")
        for line in open(project / "data/people.jsonl", encoding="utf-8"):
            person(json.loads(line))
        for line in open(project / "data/articles.jsonl", encoding="utf-8"):
            a = json.loads(line)
            s = f"<{B}article/{a['identifier']}>"
            lang = a["inLanguage"]
            lang = LANGS.get(lang.lower(), lang)
            w(s, A[1:-1], f"<{EDM}ProvidedCHO>"), w(s, A[1:-1], f"<{S}{a['@type']}>")
            if "name" in a:
                for p in (DC + "title", S + "headline", S + "name"):
                    w(s, p, lit(a["name"], lang))
            w(s, DC + "description", lit(a["description"], lang)), w(s, S + "description", lit(a["description"], lang))
            for au in a["author"]:
                o = f"<{B}person/{au['identifier']}>"
                w(s, DC + "creator", o), w(s, S + "author", o)
                if au["identifier"] not in seen:
                    seen.add(au["identifier"])
                    person(au)
            for p in (DC + "date", DCT + "issued", S + "datePublished"):
                w(s, p, lit(a["datePublished"]))
            if "dateModified" in a:
                w(s, S + "dateModified", lit(a["dateModified"]))
            w(s, DC + "language", lit(lang)), w(s, S + "inLanguage", lit(lang))
            if "genre" in a:
                w(s, DC + "type", lit(a["genre"], "en")), w(s, S + "genre", lit(a["genre"], "en"))
            w(s, DC + "identifier", lit(a["identifier"])), w(s, S + "identifier", lit(a["identifier"]))
            for x in a.get("about", []):
                w(s, DC + "subject", link(x)), w(s, S + "about", link(x))
            for x in a.get("mentions", []):
                w(s, S + "mentions", link(x))
            if "timeRequired" in a:
                w(s, DCT + "extent", lit(a["timeRequired"], "en")), w(s, S + "timeRequired", lit(a["timeRequired"]))
            img = a["primaryImageOfPage"]
            i = f"<{B}image/{img['identifier']}>"
            for p in (DCT + "hasPart", S + "image", S + "primaryImageOfPage"):
                w(s, p, i)
            w(s, EDM + "type", lit("TEXT"))
            if "publisher" in a:
                w(s, S + "publisher", f"<{B}organisation/{a['publisher']}>")
            w(s, S + "url", f"<{a['url']}>")
            if a.get("license") in rights:
                w(s, S + "license", f"<{rights[a['license']]}>")
            r = rights.get(img.get("license", ""))
            aggregation(f"<{B}article/{a['identifier']}#aggregation>", s, a["url"], img["image"]["url"], r, False)
            image(img, s, lang)  # also writes the WebResource the article's aggregation shares
    return n


if __name__ == "__main__":
    print(run(Path(sys.argv[1]), Path(sys.argv[2])), "triples")
