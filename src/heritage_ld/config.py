"""Project configuration: ``heritage-ld.toml`` beside ``mapping/`` and ``shapes/``."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .terms import is_iri


class ConfigError(Exception):
    """A configuration problem; str() names the file and key."""


@dataclass
class Source:
    entity: str
    path: str                      # file or folder relative to the project, "builtin:rights", or an http(s) URL
    linked_only: bool = False      # publish only records other published records refer to
    options: dict = field(default_factory=dict)   # reader options (CSV columns...) or HTTP options

    @property
    def is_http(self) -> bool:
        return self.path.startswith(("http://", "https://"))


@dataclass
class Config:
    root: Path
    base_uri: str
    values: dict[str, str]         # [project] string values, usable in mappings as {config.KEY}
    sources: list[Source]
    shapes: dict[str, str]         # shapes file -> channel ("all" or "edm")
    output: Path
    catalog: Path
    max_delete_share: float = 0.10
    chunk_size: int = 500
    record_files: bool = True      # per-record files in output/ (records/, edm/); the server needs none
    iri_schemes: tuple[str, ...] = ("http", "https")   # schemes allowed in IRIs taken from data

    def sets(self, entity: str) -> list[str]:
        """OAI-PMH set specs of a record: its entity type, and the dataset hierarchy if configured."""
        dataset = self.values.get("dataset")
        return [entity] + ([dataset, f"{dataset}:{entity}"] if dataset else [])

    @property
    def mapping_dir(self) -> Path:
        return self.root / "mapping"


DEFAULT_SHAPES = {"shapes/edm.ttl": "all", "shapes/schema.ttl": "all", "shapes/europeana.ttl": "edm"}
REQUIRED = ("base_uri", "data_provider", "provider")


def load(root: Path) -> Config:
    """Read ``root/heritage-ld.toml``; every problem is a ConfigError naming file and key."""
    path = root / "heritage-ld.toml"
    if not path.is_file():
        raise ConfigError(f"{path}: not found. Run heritage-ld in a project folder (one with heritage-ld.toml, "
                          "mapping/ and shapes/) or pass --project DIR")
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    project = doc.get("project", {})
    for key in REQUIRED:
        if not isinstance(project.get(key), str) or not project[key].strip():
            raise ConfigError(f"{path}: [project] {key} is required (text)")
    base = project["base_uri"]
    if not is_iri(base) or not base.endswith(("/", "#")):
        raise ConfigError(f"{path}: [project] base_uri {base!r} must be an absolute IRI ending in '/' or '#'")
    values = {k: v for k, v in project.items() if isinstance(v, str)}
    sources = []
    for i, s in enumerate(doc.get("sources", [])):
        where = f"{path}: [[sources]] #{i + 1}"
        if not isinstance(s, dict) or not isinstance(s.get("entity"), str) or \
                not (isinstance(s.get("path"), str) ^ isinstance(s.get("url"), str)):
            raise ConfigError(f"{where} needs entity and either path (files) or url (an HTTP API)")
        options = {k: v for k, v in s.items() if k not in ("entity", "path", "linked_only")}
        if "path" in s:
            unknown = set(options) - {"columns", "list_separator", "delimiter", "contentful", "content_type", "locale"}
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
            if ("content_type" in options or "locale" in options) and options.get("contentful") is not True:
                raise ConfigError(f"{where}: content_type and locale apply to a Contentful space export: "
                                  "add contentful = true")
        sources.append(Source(s["entity"], s.get("path") or s["url"], bool(s.get("linked_only", False)), options))
    if not sources:
        raise ConfigError(f"{path}: no [[sources]] configured")
    validation = doc.get("validation", {})
    shapes = validation.get("shapes", DEFAULT_SHAPES)
    for f, channel in shapes.items():
        if channel not in ("all", "edm"):
            raise ConfigError(f"{path}: [validation] shapes: {f} = {channel!r}: channel must be 'all' or 'edm'")
    output = root / project.get("output", "output")
    catalog = root / project.get("catalog", ".heritage-ld/catalog.sqlite")
    share = doc.get("publish", {}).get("max_delete_share", 0.10)
    if not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise ConfigError(f"{path}: [publish] max_delete_share must be a number between 0 and 1")
    record_files = project.get("record_files", True)
    if not isinstance(record_files, bool):
        raise ConfigError(f"{path}: [project] record_files must be true or false")
    schemes = project.get("iri_schemes", [])
    if not isinstance(schemes, list) or not all(isinstance(s, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", s)
                                                for s in schemes):
        raise ConfigError(f"{path}: [project] iri_schemes must be a list of URI schemes, e.g. [\"urn\", \"ftp\"]")
    return Config(root, base, values, sources, dict(shapes), output, catalog, float(share),
                  int(validation.get("chunk_size", 500)), record_files,
                  tuple(dict.fromkeys(["http", "https", *(s.lower() for s in schemes)])))
