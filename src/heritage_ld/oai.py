"""OAI-PMH 2.0 over the publication catalog: six verbs, ``edm`` and ``oai_dc``, stateless tokens.

* Identifiers are ``oai:{host of base_uri}:{entity}/{id}``; characters of the id that the
  oai-identifier syntax does not allow (and ``%``) are percent-encoded.
* Sets are the records' ``sets`` (entity type; ``dataset`` and ``dataset:entity`` when configured);
  a request for set ``A`` matches ``A`` and ``A:*``.
* Lists are keyset-paged on the catalog index (last_changed, entity, id): a page costs the same at
  any depth. completeListSize comes from ``oai_counts``, a count per (datestamp, entity, sets,
  status) that triggers keep in the catalog's own transactions (created by ``prepare``).
* Resumption tokens carry the query, the position and the counts, signed with HMAC-SHA256: nothing
  is cached, nothing expires, and a tampered or foreign token is ``badResumptionToken``.
* responseDate is min(clock, oldest "publish in progress" announcement; see ``Catalog.announce``)
  and a list never reaches past it, so an incremental harvest from a harvest's first responseDate
  misses nothing a concurrent ``publish`` changed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
import time
import tomllib
from calendar import timegm
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from lxml import etree

from . import config as config_mod
from .catalog import Catalog, in_progress_since, unpack
from .terms import XML_ILLEGAL, Triple, parse_nt, split_literal

OAI = "http://www.openarchives.org/OAI/2.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
SDO = "http://schema.org/"
FORMATS = {  # metadataPrefix -> (schema, namespace)
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", "http://www.openarchives.org/OAI/2.0/oai_dc/"),
    "edm": ("http://www.europeana.eu/schemas/edm/EDM.xsd", RDF),
}
VERBS = {  # verb -> (required, optional) arguments; the list verbs also take an exclusive resumptionToken
    "Identify": ((), ()),
    "ListMetadataFormats": ((), ("identifier",)),
    "ListSets": ((), ()),
    "GetRecord": (("identifier", "metadataPrefix"), ()),
    "ListIdentifiers": (("metadataPrefix",), ("from", "until", "set")),
    "ListRecords": (("metadataPrefix",), ("from", "until", "set")),
}
LIST_VERBS = ("ListSets", "ListIdentifiers", "ListRecords")
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
SETSPEC = re.compile(r"[A-Za-z0-9\-_.!~*'()]+(:[A-Za-z0-9\-_.!~*'()]+)*")
PREFIX = re.compile(r"[A-Za-z0-9\-_.!~*'()]+")
REPOSITORY_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9\-]*(\.[a-zA-Z][a-zA-Z0-9\-]*)+")
ID_SAFE = "-_.!~*'();/?:@&=+$,"   # oai-identifier local part, besides letters, digits and %XX
# identifier arguments must be URIs (xs:anyURI, as the request echo needs): checked as OAI-PMH.xsd checks it
_ANY_URI = etree.XMLSchema(etree.fromstring(
    b'<schema xmlns="http://www.w3.org/2001/XMLSchema"><element name="u"><complexType><attribute name="v" '
    b'type="anyURI"/></complexType></element></schema>'))
DAY, SECOND = re.compile(r"\d{4}-\d{2}-\d{2}"), re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.openarchives.org/'
        'OAI/2.0/ http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">\n')
EDM_LOCATION = f' xsi:schemaLocation="{RDF} {FORMATS["edm"][0]}"'.encode()
DC_OPEN = (f'<oai_dc:dc xmlns:oai_dc="{FORMATS["oai_dc"][1]}" xmlns:dc="{DC}" '
           f'xsi:schemaLocation="{FORMATS["oai_dc"][1]} {FORMATS["oai_dc"][0]}">')
# oai_dc element <- predicates of the record's main subject: dc:* and their schema.org equivalents
DC_FIELDS = {
    "title": ("title", "name", "headline"),
    "creator": ("creator", "author", "creator"),
    "subject": ("subject", "about", "keywords"),
    "description": ("description", "description", "abstract"),
    "publisher": ("publisher", "publisher"),
    "date": ("date", "datePublished", "dateCreated"),
    "type": ("type", "genre", "additionalType"),
    "format": ("format", "encodingFormat"),
    "identifier": ("identifier", "identifier", "url"),
    "language": ("language", "inLanguage"),
    "rights": ("rights", "license"),
}
DC_PREDICATES = {f: [f"<{DC}{ps[0]}>"] + [f"<{SDO}{p}>" for p in ps[1:]] for f, ps in DC_FIELDS.items()}
LABELLED = ("creator", "subject", "publisher")   # IRIs shown by their label when the catalog has one
LABELS = (f"<{SDO}name>", "<http://www.w3.org/2004/02/skos/core#prefLabel>",
          "<http://www.w3.org/2000/01/rdf-schema#label>", "<http://xmlns.com/foaf/0.1/name>", f"<{DC}title>")
EDM = "http://www.europeana.eu/schemas/edm/"
CHO = f"<{RDF}type>", f"<{EDM}ProvidedCHO>"
AGGREGATED_CHO, EDM_RIGHTS = f"<{EDM}aggregatedCHO>", f"<{EDM}rights>"

# Counts behind completeListSize and ListSets, kept by the catalog's own transactions. (No ON CONFLICT
# clauses in the triggers: the conflict policy of the statement firing them would override them.)
_KEY = ("last_changed = {r}.last_changed AND entity = {r}.entity AND sets = {r}.sets AND deleted = {r}.deleted "
        "AND edm = ({r}.edm_xml IS NOT NULL)")
_ADD = f"""
    INSERT INTO oai_counts SELECT NEW.last_changed, NEW.entity, NEW.sets, NEW.deleted, NEW.edm_xml IS NOT NULL, 0
        WHERE NOT EXISTS (SELECT 1 FROM oai_counts WHERE {_KEY.format(r="NEW")});
    UPDATE oai_counts SET n = n + 1 WHERE {_KEY.format(r="NEW")};
    INSERT INTO oai_edm_entities SELECT NEW.entity WHERE NEW.edm_xml IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM oai_edm_entities WHERE entity = NEW.entity);"""
_REMOVE = f"""
    UPDATE oai_counts SET n = n - 1 WHERE {_KEY.format(r="OLD")};
    DELETE FROM oai_counts WHERE {_KEY.format(r="OLD")} AND n <= 0;"""
INDEX_SQL = f"""
CREATE TABLE IF NOT EXISTS oai_counts (last_changed INTEGER, entity TEXT, sets TEXT, deleted INTEGER, edm INTEGER,
    n INTEGER NOT NULL, PRIMARY KEY (last_changed, entity, sets, deleted, edm)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS oai_edm_entities (entity TEXT PRIMARY KEY) WITHOUT ROWID;  -- once had EDM
INSERT INTO oai_edm_entities SELECT DISTINCT entity FROM records   -- fill once, from the records so far
    WHERE edm_xml IS NOT NULL AND NOT EXISTS (SELECT 1 FROM oai_counts);
INSERT INTO oai_counts SELECT last_changed, entity, sets, deleted, edm_xml IS NOT NULL, count(*) FROM records
    WHERE NOT EXISTS (SELECT 1 FROM oai_counts) GROUP BY 1, 2, 3, 4, 5;
CREATE TRIGGER IF NOT EXISTS oai_records_insert AFTER INSERT ON records BEGIN{_ADD}
END;
CREATE TRIGGER IF NOT EXISTS oai_records_delete AFTER DELETE ON records BEGIN{_REMOVE}
END;
CREATE TRIGGER IF NOT EXISTS oai_records_update AFTER UPDATE OF last_changed, entity, sets, deleted, edm_xml
ON records BEGIN{_REMOVE}{_ADD}
END;
"""
# SQL: the record (or count group) is in set ? (the set itself or below it: params set, len(set) + 1, set + ":")
IN_SET = "EXISTS (SELECT 1 FROM json_each({t}.sets) WHERE value = ? OR substr(value, 1, ?) = ?)"
EDM_ENTITY = "entity IN (SELECT entity FROM oai_edm_entities)"


class OAIError(Exception):
    """OAI-PMH errors: a list of (code, message)."""

    def __init__(self, *errors: tuple[str, str]) -> None:
        super().__init__("; ".join(f"{c}: {m}" for c, m in errors))
        self.errors = list(errors)


def prepare(path: Path) -> None:
    """Create the catalog (if new) and the OAI-PMH counts and their triggers (once, filled from the records)."""
    catalog = Catalog(path)
    try:
        if not catalog.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'oai_records_update'").fetchone():
            catalog.db.execute("PRAGMA busy_timeout = 600000")  # a running publish may hold the write lock
            catalog.db.executescript(f"BEGIN IMMEDIATE;\n{INDEX_SQL}\nCOMMIT;")
    finally:
        catalog.rollback()
        catalog.close()


def secret_key(root: Path) -> bytes:
    """The token key: $HERITAGE_LD_SECRET, else ``.heritage-ld/secret`` (random, mode 0600, made on first use)."""
    if os.environ.get("HERITAGE_LD_SECRET"):
        return os.environ["HERITAGE_LD_SECRET"].encode()
    path = root / ".heritage-ld" / "secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_hex(32).encode())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic: concurrent first uses all end up with one key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes().strip()
    if not key:
        raise config_mod.ConfigError(f"{path}: empty; delete it to have a new key made")
    return key


def esc(text: str) -> str:
    """Escape for XML text and attribute values (whitespace in attributes kept as character references)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;"))


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_date(value: str, end: bool) -> int:
    """UTC seconds of a from (``end`` False) or until (``end`` True) argument, day or second granularity."""
    if DAY.fullmatch(value):
        return timegm(datetime.strptime(value, "%Y-%m-%d").timetuple()) + (86399 if end else 0)
    if SECOND.fullmatch(value):
        return timegm(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").timetuple())
    raise ValueError(value)


def parse_arguments(pairs: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """(verb, other arguments) of a request, or OAIError badVerb / badArgument."""
    verbs = [v for k, v in pairs if k == "verb"]
    if len(verbs) != 1 or verbs[0] not in VERBS:
        raise OAIError(("badVerb", "missing verb" if not verbs else "repeated verb" if len(verbs) > 1
                        else f"illegal verb; use one of {', '.join(VERBS)}"))
    verb, args = verbs[0], {}
    for k, v in pairs:
        if k == "verb":
            continue
        if k in args:
            raise OAIError(("badArgument", f"repeated argument {k}"))
        if XML_ILLEGAL.search(k + v):
            raise OAIError(("badArgument", "control characters in an argument"))
        args[k] = v
    required, optional = VERBS[verb]
    if "resumptionToken" in args and verb in LIST_VERBS:
        if len(args) > 1:
            raise OAIError(("badArgument", "resumptionToken is an exclusive argument"))
        return verb, args
    illegal = sorted(set(args) - set(required) - set(optional))
    missing = [k for k in required if k not in args]
    if illegal or missing:
        raise OAIError(("badArgument", "; ".join(
            ([f"illegal argument(s) {', '.join(illegal)} for {verb}"] if illegal else [])
            + ([f"missing argument(s) {', '.join(missing)}"] if missing else []))))
    if "metadataPrefix" in args and not PREFIX.fullmatch(args["metadataPrefix"]):
        raise OAIError(("badArgument", "metadataPrefix has an illegal syntax"))
    if "identifier" in args and not _ANY_URI.validate(etree.Element("u", v=args["identifier"])):
        raise OAIError(("badArgument", "identifier is not a URI"))
    if "set" in args and not SETSPEC.fullmatch(args["set"]):
        raise OAIError(("badArgument", "set has an illegal setSpec syntax"))
    dates = {k: args[k] for k in ("from", "until") if k in args}
    try:
        stamps = {k: parse_date(v, k == "until") for k, v in dates.items()}
    except ValueError:
        raise OAIError(("badArgument", "from/until must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ (UTC)")) from None
    if len({len(v) for v in dates.values()}) > 1:
        raise OAIError(("badArgument", "from and until have different granularities"))
    if len(stamps) == 2 and stamps["from"] > stamps["until"]:
        raise OAIError(("badArgument", "from is later than until"))
    return verb, args


@dataclass(frozen=True)
class Query:
    """What a list request selects; ``until`` is never later than the first responseDate."""
    verb: str
    prefix: str
    set: str | None
    start: int | None
    until: int


@dataclass(frozen=True)
class Settings:
    name: str
    admin_email: str
    base_url: str | None
    page_size: int


def settings(cfg: config_mod.Config) -> Settings:
    """[oai] page_size (100), admin_email, base_url (else the request's), repository_name (else [project] name)."""
    path = cfg.root / "heritage-ld.toml"
    section = tomllib.loads(path.read_text("utf-8")).get("oai", {})
    page_size = section.get("page_size", 100)
    if not isinstance(page_size, int) or not 1 <= page_size <= 10000:
        raise config_mod.ConfigError(f"{path}: [oai] page_size must be an integer from 1 to 10000")
    host = urlsplit(cfg.base_uri).hostname or "localhost"
    email = section.get("admin_email", cfg.values.get("admin_email", f"webmaster@{host}"))
    if not isinstance(email, str) or not re.fullmatch(r"\S+@(\S+\.)+\S+", email):
        raise config_mod.ConfigError(f"{path}: [oai] admin_email must be an e-mail address")
    base_url = section.get("base_url")
    if base_url is not None and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
        raise config_mod.ConfigError(f"{path}: [oai] base_url must be an http(s) URL")
    name = section.get("repository_name", cfg.values.get("name", host))
    return Settings(str(name), email, base_url, page_size)


class Repository:
    """Answers OAI-PMH requests from the catalog; one read-only SQLite connection per process and thread."""

    def __init__(self, root: Path, key: bytes | None = None) -> None:
        self.cfg = config_mod.load(root)
        self.settings = settings(self.cfg)
        self.host = urlsplit(self.cfg.base_uri).hostname or "localhost"
        self.key = key or secret_key(root)
        prepare(self.cfg.catalog)
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # never share a connection across fork
            local.db = sqlite3.connect(self.cfg.catalog, isolation_level=None)
            local.db.execute("PRAGMA query_only = ON")
            local.db.execute("PRAGMA mmap_size = 1073741824")
            local.pid = os.getpid()
        return local.db

    # -- identifiers and tokens ------------------------------------------------------------------
    def identifier(self, entity: str, rid: str) -> str:
        return f"oai:{self.host}:{entity}/{quote(rid, safe=ID_SAFE)}"

    def parse_identifier(self, identifier: str) -> tuple[str, str] | None:
        prefix = f"oai:{self.host}:"
        if not identifier.startswith(prefix) or "/" not in identifier[len(prefix):]:
            return None
        entity, rid = identifier[len(prefix):].split("/", 1)
        return entity, unquote(rid)

    def make_token(self, q: Query, after: tuple[int, str, str], cursor: int, size: int) -> str:
        """A signed resumptionToken: the query, the last position served, the cursor after it, the list size."""
        payload = json.dumps([1, q.verb, q.prefix, q.set, q.start, q.until, *after, cursor, size],
                             separators=(",", ":"), ensure_ascii=False).encode()
        mac = hmac.new(self.key, payload, hashlib.sha256).digest()[:16]
        return (base64.urlsafe_b64encode(payload).rstrip(b"=") + b"." +
                base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()

    def read_token(self, token: str, verb: str) -> tuple[Query, tuple[int, str, str], int, int]:
        try:
            body, mac = (base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split("."))
            if not hmac.compare_digest(mac, hmac.new(self.key, body, hashlib.sha256).digest()[:16]):
                raise ValueError("signature")
            version, tverb, prefix, set_, start, until, lc, entity, rid, cursor, size = json.loads(body)
            if version != 1 or tverb != verb:
                raise ValueError("verb")
        except ValueError:  # binascii.Error and json errors are ValueErrors
            raise OAIError(("badResumptionToken", "invalid resumptionToken: restart the list request")) from None
        return Query(verb, prefix, set_, start, until), (lc, entity, rid), cursor, size

    # -- the request -----------------------------------------------------------------------------
    def response_date(self) -> int:
        """min(clock, oldest announced publish in progress): read the clock first (see Catalog.announce)."""
        clock = int(time.time())
        since = in_progress_since(self.db)
        return clock if since is None else min(clock, since)

    def handle(self, pairs: list[tuple[str, str]], base_url: str) -> bytes:
        """The response document for the request arguments ``pairs`` (GET query or POST body)."""
        now = self.response_date()
        base = self.settings.base_url or base_url
        echo: dict[str, str] = {}
        try:
            verb, args = parse_arguments(pairs)
            echo = {"verb": verb, **args}
            body = getattr(self, verb)(args, now, base)
        except OAIError as e:
            if any(code in ("badVerb", "badArgument") for code, _ in e.errors):
                echo = {}
            body = "".join(f'<error code="{code}">{esc(msg)}</error>' for code, msg in e.errors)
        attrs = "".join(f' {k}="{esc(v)}"' for k, v in echo.items())
        head = f"{HEAD}<responseDate>{iso(now)}</responseDate>\n<request{attrs}>{esc(base)}</request>\n"
        parts = [head.encode()] + (body if isinstance(body, list) else [body.encode()]) + [b"\n</OAI-PMH>\n"]
        return b"".join(parts)

    # -- verbs -----------------------------------------------------------------------------------
    def Identify(self, args: dict, now: int, base: str) -> str:
        earliest = self.db.execute("SELECT min(last_changed) FROM records").fetchone()[0]
        s = self.settings
        out = [f"<Identify><repositoryName>{esc(s.name)}</repositoryName><baseURL>{esc(base)}</baseURL>"
               "<protocolVersion>2.0</protocolVersion>"
               f"<adminEmail>{esc(s.admin_email)}</adminEmail><earliestDatestamp>{iso(now if earliest is None else earliest)}"
               f"</earliestDatestamp><deletedRecord>persistent</deletedRecord><granularity>{GRANULARITY}</granularity>"]
        if REPOSITORY_ID.fullmatch(self.host):
            sample = self.identifier(self.cfg.sources[0].entity, "example")
            out.append('<description><oai-identifier xmlns="http://www.openarchives.org/OAI/2.0/oai-identifier" '
                       'xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/oai-identifier '
                       'http://www.openarchives.org/OAI/2.0/oai-identifier.xsd"><scheme>oai</scheme>'
                       f"<repositoryIdentifier>{self.host}</repositoryIdentifier><delimiter>:</delimiter>"
                       f"<sampleIdentifier>{esc(sample)}</sampleIdentifier></oai-identifier></description>")
        return "".join(out) + "</Identify>"

    def _record(self, identifier: str, columns: str) -> tuple:
        key = self.parse_identifier(identifier)
        row = key and self.db.execute(f"SELECT {columns} FROM records WHERE entity = ? AND id = ?", key).fetchone()
        if not row:
            raise OAIError(("idDoesNotExist", f"no record {identifier}"))
        return row

    def ListMetadataFormats(self, args: dict, now: int, base: str) -> str:
        prefixes = list(FORMATS)
        if "identifier" in args:
            deleted, has_edm = self._record(args["identifier"], "deleted, edm_xml IS NOT NULL")
            if deleted:
                raise OAIError(("noMetadataFormats", "the record was withdrawn (deleted)"))
            prefixes = ["oai_dc"] + (["edm"] if has_edm else [])
        return "<ListMetadataFormats>" + "".join(
            f"<metadataFormat><metadataPrefix>{p}</metadataPrefix><schema>{FORMATS[p][0]}</schema>"
            f"<metadataNamespace>{FORMATS[p][1]}</metadataNamespace></metadataFormat>" for p in prefixes
        ) + "</ListMetadataFormats>"

    def set_specs(self) -> list[str]:
        specs: set[str] = set()
        for (spec,) in self.db.execute("SELECT DISTINCT value FROM oai_counts, json_each(oai_counts.sets)"):
            parts = str(spec).split(":")
            specs.update(":".join(parts[:i]) for i in range(1, len(parts) + 1))
        return sorted(s for s in specs if SETSPEC.fullmatch(s))

    def ListSets(self, args: dict, now: int, base: str) -> str:
        if "resumptionToken" in args:
            raise OAIError(("badResumptionToken", "ListSets is never split: no resumptionToken is valid"))
        specs = self.set_specs()
        if not specs:
            raise OAIError(("noSetHierarchy", "the catalog holds no sets yet"))
        dataset, name = self.cfg.values.get("dataset"), self.settings.name
        names = {dataset: name} if dataset else {}
        return "<ListSets>" + "".join(
            f"<set><setSpec>{s}</setSpec><setName>{esc(names.get(s) or self._set_name(s, dataset, name))}"
            "</setName></set>" for s in specs) + "</ListSets>"

    @staticmethod
    def _set_name(spec: str, dataset: str | None, name: str) -> str:
        head, _, entity = spec.rpartition(":")
        return f"{name}: {entity} records" if head and head == dataset else f"{spec} records"

    def GetRecord(self, args: dict, now: int, base: str) -> list[bytes]:
        prefix = args["metadataPrefix"]
        errors = [] if prefix in FORMATS else [("cannotDisseminateFormat", f"unknown metadataPrefix {prefix}")]
        try:
            row = self._record(args["identifier"], f"entity, id, last_changed, deleted, sets, "
                                                   f"{'edm_xml' if prefix == 'edm' else 'fragments'}")
        except OAIError as e:
            raise OAIError(*e.errors, *errors) from None
        if errors:
            raise OAIError(*errors)
        if prefix == "edm" and row[5] is None and not (row[3] and self._edm_entity(row[0])):
            raise OAIError(("cannotDisseminateFormat", "this record is not published as EDM (not a "
                            "ProvidedCHO, or held back from the EDM channel)"))
        return [b"<GetRecord>", *self._records(prefix, [row]), b"</GetRecord>"]

    def _edm_entity(self, entity: str) -> bool:
        return bool(self.db.execute("SELECT 1 FROM oai_edm_entities WHERE entity = ?", (entity,)).fetchone())

    def ListIdentifiers(self, args: dict, now: int, base: str) -> list[bytes]:
        return self._list("ListIdentifiers", args, now)

    def ListRecords(self, args: dict, now: int, base: str) -> list[bytes]:
        return self._list("ListRecords", args, now)

    # -- lists -----------------------------------------------------------------------------------
    def _list(self, verb: str, args: dict, now: int) -> list[bytes]:
        if "resumptionToken" in args:
            q, after, cursor, size = self.read_token(args["resumptionToken"], verb)
        else:
            errors = []
            prefix = args["metadataPrefix"]
            if prefix not in FORMATS:
                errors.append(("cannotDisseminateFormat", f"unknown metadataPrefix {prefix}; see ListMetadataFormats"))
            if "set" in args and not self.set_specs():
                errors.append(("noSetHierarchy", "the catalog holds no sets yet"))
            if errors:
                raise OAIError(*errors)
            until = min(now, parse_date(args["until"], True)) if "until" in args else now
            start = parse_date(args["from"], False) if "from" in args else None
            q, after, cursor = Query(verb, prefix, args.get("set"), start, until), None, 0
            size = self.count(q)
        rows = self.page(q, after, self.settings.page_size + 1) if size or after else []
        if not rows:
            raise OAIError(("noRecordsMatch", "no records match from/until/set/metadataPrefix"))
        more = len(rows) > self.settings.page_size
        rows = rows[:self.settings.page_size]
        out = [f"<{verb}>".encode()]
        if verb == "ListIdentifiers":
            out += [self._header(*r[:5]).encode() for r in rows]
        else:
            out += self._records(q.prefix, rows)
        if more or after:
            last = rows[-1]
            token = self.make_token(q, (last[2], last[0], last[1]), cursor + len(rows), size) if more else ""
            out.append(f'<resumptionToken completeListSize="{max(size, cursor + len(rows))}" cursor="{cursor}">'
                       f"{token}</resumptionToken>".encode())
        out.append(f"</{verb}>".encode())
        return out

    def _where(self, q: Query, after: tuple | None, table: str) -> tuple[str, list]:
        where, params = ["last_changed <= ?"], [q.until]
        if after:
            where.append("(last_changed, entity, id) > (?, ?, ?)")
            params += after
        if q.start is not None and not after:  # the position is past ``from``: keep it the index's lower bound
            where.append("last_changed >= ?")
            params.append(q.start)
        if q.set:
            in_set = [q.set, len(q.set) + 1, q.set + ":"]
            if table == "records":  # entities first: decided on the index alone
                where.append(f"+entity IN (SELECT entity FROM oai_counts WHERE {IN_SET.format(t='oai_counts')})")
                params += in_set
            where.append(IN_SET.format(t=table))
            params += in_set
        if q.prefix == "edm":
            where.append(f"+{EDM_ENTITY} AND (deleted OR edm_xml IS NOT NULL)" if table == "records"
                         else f"(edm OR (deleted AND {EDM_ENTITY}))")
        return " AND ".join(where), params

    def count(self, q: Query) -> int:
        where, params = self._where(q, None, "oai_counts")
        return self.db.execute(f"SELECT coalesce(sum(n), 0) FROM oai_counts WHERE {where}", params).fetchone()[0]

    def page(self, q: Query, after: tuple | None, limit: int) -> list[tuple]:
        """(entity, id, last_changed, deleted, sets[, payload]) in datestamp order after ``after``."""
        payload = "" if q.verb == "ListIdentifiers" else ", edm_xml" if q.prefix == "edm" else ", fragments"
        where, params = self._where(q, after, "records")
        sql = (f"SELECT entity, id, last_changed, deleted, sets{payload} FROM records INDEXED BY records_by_datestamp "
               f"WHERE {where} "
               "ORDER BY last_changed, entity, id LIMIT ?")
        return self.db.execute(sql, params + [limit]).fetchall()

    # -- records ---------------------------------------------------------------------------------
    def _header(self, entity: str, rid: str, stamp: int, deleted: int, sets: str) -> str:
        specs = "".join(f"<setSpec>{s}</setSpec>" for s in json.loads(sets) if SETSPEC.fullmatch(s))
        status = ' status="deleted"' if deleted else ""
        return (f"<header{status}><identifier>{esc(self.identifier(entity, rid))}</identifier>"
                f"<datestamp>{iso(stamp)}</datestamp>{specs}</header>")

    def _records(self, prefix: str, rows: list[tuple]) -> list[bytes]:
        """The records of ``rows`` (header fields, then the EDM document or the stored fragments)."""
        out = []
        for r in rows:
            out.append(f"<record>{self._header(*r[:5])}".encode())
            if not r[3]:
                out += [b"<metadata>", edm_payload(r[5]) if prefix == "edm" else self._oai_dc(r[0], r[1], r[5]),
                        b"</metadata>"]
            out.append(b"</record>")
        return out

    def _oai_dc(self, entity: str, rid: str, fragments: bytes | None) -> bytes:
        """A record's oai_dc document: as its check stored it, else (a catalog not published since it
        was upgraded) made from the catalog's records."""
        if fragments and (found := unpack(fragments).get("oai_dc")) is not None:
            return found
        nt = self.db.execute("SELECT triples FROM records WHERE entity = ? AND id = ?", (entity, rid)).fetchone()[0]
        triples = parse_nt(nt)
        linked = []
        for e, i in linked_records(triples, self.cfg.base_uri):
            row = self.db.execute("SELECT triples FROM records WHERE entity = ? AND id = ? AND deleted = 0",
                                  (e, i)).fetchone()
            linked += parse_nt(row[0]) if row else []
        return oai_dc(triples, linked)


def main_subject(triples: list[list[str]]) -> str:
    """The record's own subject: its ProvidedCHO, else the subject with most triples."""
    counts: dict[str, int] = {}
    for s, p, o in triples:
        if (p, o) == CHO:
            return s
        counts[s] = counts.get(s, 0) + 1
    return min(counts, key=lambda s: (-counts[s], s)) if counts else ""


def linked_records(triples: list[Triple], base: str) -> list[tuple[str, str]]:
    """The records (entity, id) whose labels oai_dc shows: what the main subject's creators, subjects
    and publishers link to under ``base`` (``{base}<entity>/<id>``)."""
    main, keys = main_subject(triples), set()
    for s, p, o in triples:
        if s == main and o.startswith(f"<{base}") and any(p in DC_PREDICATES[f] for f in LABELLED):
            entity, _, rid = o[len(base) + 1:-1].partition("/")
            if rid and "#" not in rid:
                keys.add((entity, rid))
    return sorted(keys)


def labels(triples: list[Triple]) -> dict[str, tuple[str, str | None]]:
    """The best-ranked label (``LABELS``) of each subject of ``triples``."""
    found = sorted((LABELS.index(p), s, o) for s, p, o in triples if p in LABELS and o.startswith('"'))
    out: dict[str, tuple[str, str | None]] = {}
    for _rank, s, o in reversed(found):   # the best-ranked label wins
        lex, lang, _dt = split_literal(o)
        out[s] = (lex, lang)
    return out


def oai_dc(triples: list[Triple], linked: list[Triple]) -> bytes:
    """Unqualified Dublin Core from the main subject's dc:* and schema.org properties (and for a
    ProvidedCHO, dc:rights also from its aggregation's edm:rights); the creators, subjects and
    publishers it links to by their labels in ``linked`` (the triples of the records it links to)."""
    labels_of = labels(linked)
    main = main_subject(triples)
    objects: dict[str, list[str]] = {}
    aggregations = {s for s, p, o in triples if p == AGGREGATED_CHO and o == main}
    for s, p, o in triples:
        if s == main:
            objects.setdefault(p, []).append(o)
        elif s in aggregations and p == EDM_RIGHTS:
            objects.setdefault(f"<{DC}rights>", []).append(o)
    out = [DC_OPEN]
    for field, predicates in DC_PREDICATES.items():
        values = [(main[1:-1], None)] if field == "identifier" and main.startswith("<") else []
        for p in predicates:
            for o in objects.get(p, ()):
                if o.startswith('"'):
                    lex, lang, _dt = split_literal(o)
                    values.append((lex, lang))
                elif o.startswith("<"):
                    values.append(labels_of.get(o, (o[1:-1], None)) if field in LABELLED else (o[1:-1], None))
        seen = set()
        for value, lang in values:
            if value.strip() and (value, lang) not in seen:
                seen.add((value, lang))
                attr = f' xml:lang="{esc(lang)}"' if lang else ""
                out.append(f"<dc:{field}{attr}>{esc(value)}</dc:{field}>")
    return ("".join(out) + "</oai_dc:dc>").encode()


def edm_payload(xml: bytes) -> bytes:
    """The catalog's EDM document as the metadata element: its rdf:RDF root, unchanged but for the
    xsi:schemaLocation OAI-PMH requires (xsi is bound on the envelope)."""
    start = xml.index(b"<rdf:RDF")
    return b"<rdf:RDF" + EDM_LOCATION + xml[start + 8:].rstrip()
