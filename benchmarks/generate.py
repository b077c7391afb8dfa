"""Synthetic CMS exports in the shape of ``sample/*.json``, as a heritage-ld project folder.

    python benchmarks/generate.py DEST -n 10000 [--seed 6]

N is the number of articles. Each article embeds its authors (people) and its primaryImageOfPage
(an image with an embedded photographer), as in ``sample/posts.json``; people and organisations
come as files of their own, linked by id. Per N articles: N images, N/2 people, N/20 authors,
N/50 photographers, N/20 organisations (each pool at least 10). Texts in en, nl, de, fr, it, es and
pl; dates, durations, language tags and rights labels in the several spellings CMSs export;
optional fields missing at random; a few InC-NC images (valid, but kept out of the EDM channel);
and ~1% of articles invalid on purpose (bad date, unknown rights label, missing title, markup in
text, link to a missing record), each of which must be held back with a reason.

Writes ``DEST/data/{articles,people,organisations}.jsonl`` and copies ``heritage-ld.toml`` (its
sources pointed at those files), ``mapping/`` and ``shapes/`` from the repository. The same N and
seed always give the same bytes. ``DEST/manifest.json`` holds the counts.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION = 1  # bump when the output changes, so cached projects are regenerated
SOURCES = {"article": "data/articles.jsonl", "person": "data/people.jsonl",
           "organisation": "data/organisations.jsonl"}

WORDS = {
    "en": "archive music heritage photograph collection museum library letters city harbour war peace "
          "women science maps festival school railway garden theatre craft".split(),
    "nl": "archief muziek erfgoed foto collectie museum bibliotheek brieven stad haven oorlog vrede "
          "vrouwen wetenschap kaarten feest school spoorweg tuin theater ambacht".split(),
    "de": "Archiv Musik Erbe Fotografie Sammlung Museum Bibliothek Briefe Stadt Hafen Krieg Frieden "
          "Frauen Wissenschaft Karten Fest Schule Eisenbahn Garten Theater Handwerk Größe".split(),
    "fr": "archives musique patrimoine photographie collection musée bibliothèque lettres ville port "
          "guerre paix femmes science cartes fête école chemin théâtre jardin métier".split(),
    "it": "archivio musica patrimonio fotografia collezione museo biblioteca lettere città porto guerra "
          "pace donne scienza mappe festa scuola ferrovia giardino teatro".split(),
    "es": "archivo música patrimonio fotografía colección museo biblioteca cartas ciudad puerto guerra "
          "paz mujeres ciencia mapas fiesta escuela ferrocarril jardín teatro".split(),
    "pl": "archiwum muzyka dziedzictwo fotografia kolekcja muzeum biblioteka listy miasto port wojna "
          "pokój kobiety nauka mapy święto szkoła kolej ogród teatr".split(),
}
# how the CMS spells each language (codes, regional tags, English names)
LANG_SPELLINGS = {"en": ["en", "en", "en-GB", "English"], "nl": ["nl", "nl", "nl-BE", "Dutch"],
                  "de": ["de", "de-AT", "German"], "fr": ["fr", "fr-BE", "French"], "it": ["it", "Italian"],
                  "es": ["es", "Spanish"], "pl": ["pl", "Polish"]}
LANG_WEIGHTS = {"en": 40, "nl": 15, "de": 15, "fr": 12, "it": 8, "es": 6, "pl": 4}
FIRST = "Anna Jan Sofia Luca Emma Noah Marie Pieter Lena Tomasz Clara Marco Eva Lars Inès Jonas Zofia".split()
LAST = "de Vries Janssen Müller Rossi Dubois García Nowak Jansen Bakker Schmidt Bianchi Martin Kowalska " \
       "Peeters Smit Weber Moreau Costa".split()
JOBS = ["Curator", "Archivist", "Editor", "Researcher", "Photographer", "Senior Editorial Officer",
        "Conservator", "Librarian", "Historian"]
ORG_TYPES = ["Organization", "CollegeOrUniversity", "ResearchOrganization", "ArchiveOrganization", "Museum",
             "Library", "MusicGroup"]
GENRES = ["interview", "blog post", "feature", "news", "review", "essay"]
# labels, codes and URL variants the rights transform accepts, all on Europeana's list
RIGHTS = ["In Copyright", "In Copyright - Educational Use Permitted", "CC BY 4.0", "CC BY-SA 4.0",
          "CC BY-SA 4.0", "Public Domain Mark 1.0", "CC0 1.0", "https://creativecommons.org/licenses/by/4.0/",
          "http://rightsstatements.org/vocab/InC/1.0/", "No Copyright - Non-Commercial Use Only",
          "Copyright Not Evaluated", "CC BY-NC 4.0"]
NOT_FOR_EUROPEANA = "In Copyright - Non-Commercial Use Permitted"   # valid, but held back from EDM
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = "January February March April May June July August September October November December".split()
INVALID_KINDS = ("bad date", "unknown rights label", "missing title", "markup in text", "link to a missing record")


def _slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


class Generator:
    def __init__(self, n: int, seed: int) -> None:
        self.n, self.r = n, random.Random(f"{seed}:{n}")
        self.langs = list(LANG_WEIGHTS)
        self.n_orgs = max(10, n // 20)
        self.n_people = max(10, n // 2)
        self.authors = [self.author(i) for i in range(max(10, n // 20))]
        self.photographers = [{"identifier": f"photographer-{i}", "name": self.name()}
                              for i in range(max(10, n // 50))]
        self.invalid: dict[str, int] = {k: 0 for k in INVALID_KINDS}
        self.images = 0
        self.used_authors: set[str] = set()
        self.used_photographers: set[str] = set()

    # -- small pieces ----------------------------------------------------------------------
    def p(self, share: float) -> bool:
        return self.r.random() < share

    def lang(self) -> str:
        return self.r.choices(self.langs, weights=LANG_WEIGHTS.values())[0]

    def words(self, lang: str, k: int) -> str:
        return " ".join(self.r.choice(WORDS[lang]) for _ in range(k))

    def sentence(self, lang: str) -> str:
        return self.words(lang, self.r.randint(6, 14)).capitalize() + "."

    def name(self) -> str:
        return f"{self.r.choice(FIRST)} {self.r.choice(LAST)}"

    def date(self, iso_only: bool = False) -> str:
        y, m, d = self.r.randint(2012, 2025), self.r.randint(1, 12), self.r.randint(1, 28)
        form = 0 if iso_only else self.r.choices(range(4), weights=(60, 15, 15, 10))[0]
        if form == 0:
            return f"{y}-{m:02d}-{d:02d}"
        if form == 1:  # "Wednesday April 14, 2021" (the weekday is not checked, as in CMS exports)
            return f"{self.r.choice(DAYS)} {MONTHS[m - 1]} {d}, {y}"
        if form == 2:
            return f"{d} {MONTHS[m - 1]} {y}"
        return f"{y}-{m:02d}-{d:02d}T{self.r.randint(0, 23):02d}:{self.r.randint(0, 59):02d}:00Z"

    def org_ids(self, k: int) -> list[str]:
        return [f"org-{self.r.randrange(self.n_orgs)}" for _ in range(k)]

    def person_ids(self, k: int) -> list[str]:
        return [f"person-{self.r.randrange(self.n_people)}" for _ in range(k)]

    # -- records ---------------------------------------------------------------------------
    def author(self, i: int) -> dict:
        """An author embedded in articles: every copy is identical, so the copies merge into one record."""
        a: dict = {"identifier": f"author-{i}", "name": self.name()}
        if self.p(0.7):
            a["jobTitle"] = self.r.choice(JOBS) if self.p(0.5) else self.r.sample(JOBS, 2)
        if self.p(0.6):
            a["affiliation"] = sorted(set(self.org_ids(self.r.randint(1, 2))))
        if self.p(0.2):
            a["sameAs"] = [f"https://orcid.org/0000-0002-{self.r.randrange(10000):04d}-{self.r.randrange(10000):04d}"]
        return a

    def person(self, i: int) -> dict:
        p: dict = {"identifier": f"person-{i}", "name": self.name()}
        if self.p(0.2):
            p["honorificPrefix"] = self.r.choice(["Dr", "Prof.", "Dr."])
        if self.p(0.7):
            p["jobTitle"] = self.r.sample(JOBS, self.r.randint(1, 2))
        if self.p(0.6):
            p["affiliation"] = sorted(set(self.org_ids(self.r.randint(1, 2))))
        if self.p(0.2):
            p["memberOf"] = self.org_ids(1)
        if self.p(0.3):
            p["sameAs"] = [f"http://www.wikidata.org/entity/Q{self.r.randrange(10 ** 7)}"]
        if self.p(0.2):
            p["url"] = f"https://people.example.org/{_slug(p['name'])}-{i}"
        return p

    def organisation(self, i: int) -> dict:
        lang = self.lang()
        o: dict = {"@type": self.r.choice(ORG_TYPES), "identifier": f"org-{i}",
                   "name": f"{self.words(lang, 2).title()} {self.r.choice(['Archive', 'Museum', 'Institute', 'Library'])}"}
        if self.p(0.5):
            o["description"] = self.sentence(lang)
        if self.p(0.7):
            o["url"] = f"https://org{i}.example.org/"
        if self.p(0.5):
            o["location"] = self.r.choice(["The Netherlands", "Belgium", "Germany", "France", "Italy", "Spain", "Poland"])
        if i and self.p(0.2):
            o["parentOrganization"] = f"org-{self.r.randrange(i)}"
        if self.p(0.1):
            o["member"] = self.person_ids(self.r.randint(1, 3))
        if self.p(0.3):
            o["sameAs"] = [f"http://www.wikidata.org/entity/Q{self.r.randrange(10 ** 7)}"]
        return o

    def image(self, i: int, lang: str, page: str) -> dict:
        ident = f"img-{i:07d}"
        img: dict = {"identifier": ident, "name": self.words(lang, self.r.randint(3, 7)).capitalize()}
        if self.p(0.2):
            img["@type"] = self.r.choice(["ImageObject", "Photograph"])
        if self.p(0.8):
            img["creator"] = self.r.choice(self.photographers)
            self.used_photographers.add(img["creator"]["identifier"])
        if self.p(0.5):
            img["provider"] = self.org_ids(1)[0]
        if self.p(0.3) or img.get("@type") == "ImageObject":  # EDM needs a type: "photograph" or the genre
            img["genre"] = self.r.choice(["postcard", "portrait", "poster", "map"])
        when = self.r.random()
        if when < 0.5:
            img["dateCreated"] = self.date(iso_only=True)
        elif when < 0.7:
            img["dateCreated"] = str(self.r.randint(1850, 2000))
        elif when < 0.8:
            y = self.r.randint(1850, 1990)
            img["dateCreated"] = f"{y}/{y + self.r.randint(1, 20)}"
        img["license"] = NOT_FOR_EUROPEANA if self.p(0.005) else self.r.choice(RIGHTS)
        if self.p(0.3):
            img["creditText"] = f"{self.name()}, {img['license']}"
        img["url"] = page
        if self.p(0.1):
            img["acquireLicensePage"] = "https://images.example.org/reproductions"
        img["image"] = {"url": f"https://media.example.org/{lang}/{ident}.{self.r.choice(['jpg', 'png'])}"}
        if self.p(0.8):
            img["image"]["description"] = self.sentence(lang)
        img["image"]["contentType"] = "image/png" if img["image"]["url"].endswith("png") else "image/jpeg"
        if self.p(0.6):
            img["image"]["width"], img["image"]["height"] = self.r.choice([(1600, 1067), (1200, 780), (800, 600)])
        return img

    def article(self, i: int) -> dict:
        lang = self.lang()
        title = self.words(lang, self.r.randint(3, 9)).capitalize()
        ident = f"{_slug(title)[:50]}-{i}"
        url = f"https://blog.example.org/{lang}/{ident}"
        a: dict = {"@type": self.r.choices(["BlogPosting", "Article", "NewsArticle"], weights=(7, 2, 1))[0],
                   "identifier": ident, "name": title,
                   "description": " ".join(self.sentence(lang) for _ in range(self.r.randint(1, 3))),
                   "url": url, "datePublished": self.date()}
        if self.p(0.6):
            a["dateModified"] = self.date(iso_only=True)
        if self.p(0.7):
            a["timeRequired"] = self.r.choice([f"{self.r.randint(2, 15)} minutes to read", f"PT{self.r.randint(2, 15)}M",
                                              f"{self.r.randint(2, 15)} min read"])
        a["inLanguage"] = self.r.choice(LANG_SPELLINGS[lang])
        a["about"] = sorted(set(self.person_ids(self.r.randint(0, 2)) + self.org_ids(self.r.randint(0, 1))))
        if self.p(0.9) or not a["about"]:  # EDM needs a subject (about) or a type (genre)
            a["genre"] = self.r.choice(GENRES)
        if self.p(0.8):
            a["publisher"] = self.org_ids(1)[0]
        a["author"] = self.r.sample(self.authors, self.r.choice([1, 1, 1, 2]))
        self.used_authors.update(x["identifier"] for x in a["author"])
        a["primaryImageOfPage"] = self.image(i, lang, url)  # its licence is the article's edm:rights
        self.images += 1
        a["mentions"] = sorted(set(self.person_ids(self.r.randint(0, 3))))
        if self.p(0.5):
            a["license"] = self.r.choice(RIGHTS)
        if self.p(0.01):
            self.break_(a)
        return a

    def break_(self, a: dict) -> None:
        kind = self.r.choice(INVALID_KINDS)
        self.invalid[kind] += 1
        if kind == "bad date":
            a["datePublished"] = self.r.choice(["2021-02-30", "sometime in spring 2020", "14/13/2021"])
        elif kind == "unknown rights label":
            a["primaryImageOfPage"]["license"] = self.r.choice(["Free to use", "All rights reserved (c)"])
        elif kind == "missing title":
            del a["name"]
        elif kind == "markup in text":
            a["description"] = f"<p>{a['description']} <b>Read more</b></p>"
        else:
            a["about"] = a["about"] + [f"person-missing-{self.r.randrange(10 ** 6)}"]


def configure(dest: Path) -> None:
    """Copy the repository's heritage-ld.toml, mapping/ and shapes/, sources pointed at data/*.jsonl."""
    for name in ("mapping", "shapes"):
        shutil.rmtree(dest / name, ignore_errors=True)
        shutil.copytree(ROOT / name, dest / name)
    text = (ROOT / "heritage-ld.toml").read_text("utf-8")
    seen = set()

    def repoint(m: re.Match) -> str:
        entity = m[2]
        if entity not in SOURCES:
            return m[0]
        seen.add(entity)
        return f'{m[1]}path = "{SOURCES[entity]}"'
    text = re.sub(r'(entity\s*=\s*"(\w+)"\s*\n\s*)path\s*=\s*"[^"]*"', repoint, text)
    if seen != set(SOURCES):
        raise SystemExit(f"heritage-ld.toml: could not point the sources of {sorted(set(SOURCES) - seen)} at data/")
    (dest / "heritage-ld.toml").write_text(text, "utf-8")


def generate(dest: Path, n: int, seed: int = 6) -> dict:
    """Write the project for ``n`` articles into ``dest`` (reused if already there); returns the manifest."""
    dest = Path(dest)
    manifest_path = dest / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if (manifest.get("n"), manifest.get("seed"), manifest.get("version")) == (n, seed, VERSION):
            configure(dest)  # mapping and shapes may have changed since
            return manifest
    (dest / "data").mkdir(parents=True, exist_ok=True)
    g = Generator(n, seed)

    def dump(path: str, records) -> int:
        count = 0
        with (dest / path).open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                count += 1
        return count
    counts = {"organisations": dump(SOURCES["organisation"], (g.organisation(i) for i in range(g.n_orgs))),
              "people": dump(SOURCES["person"], (g.person(i) for i in range(g.n_people))),
              "articles": dump(SOURCES["article"], (g.article(i) for i in range(n)))}
    counts.update(images=g.images, authors=len(g.used_authors), photographers=len(g.used_photographers))
    counts["records"] = sum(counts.values())  # every record the sources hold, embedded ones included
    counts["source_lines"] = counts["organisations"] + counts["people"] + counts["articles"]
    manifest = {"n": n, "seed": seed, "version": VERSION, "counts": counts, "invalid_on_purpose": g.invalid}
    configure(dest)
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("-n", type=int, default=10000, help="number of articles (default 10000)")
    ap.add_argument("--seed", type=int, default=6)
    args = ap.parse_args()
    print(json.dumps(generate(args.dest, args.n, args.seed), indent=1))


if __name__ == "__main__":
    main()
