"""Contentful entries as records, for the Delivery API (``httpsource``, ``contentful = true``) and for
the file that ``contentful space export`` writes (``sources``, ``contentful = true``).

An entry becomes its ``fields`` plus ``identifier`` (its sys.id) and ``sys`` (the scalar sys fields:
createdAt, updatedAt, publishedAt, locale...; links such as contentType as their id). Link objects
are replaced by the linked entry or asset (found by link type and id, resolved recursively; a cycle,
a depth over 10 or a target that is not there is left as ``{"identifier": id}``). Rich Text
documents become Markdown (headings ``## ``, lists, links, bold and italic): the ``markdown``
transform turns that into plain text, and ``headings`` lists its headings.

An export holds every locale (``{"title": {"en-US": "…", "nl": "…"}}``): one locale is read, the
source's ``locale`` or else the export's default, field by field along Contentful's fallback chain
(``nl`` → its ``fallbackCode`` → …); a field that is not localised has its value in the default
locale. Entries never published (drafts) and archived ones are skipped, as the Delivery API would.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterator

Index = dict[tuple[str, str], dict]   # (Entry | Asset, id) -> entry or asset with one value per field
MAX_DEPTH = 10


class ContentfulError(ValueError):
    """An export that cannot be read as Contentful data; the message says what is wrong."""


# -- Delivery API pages and resolved entries ---------------------------------------------------

def page_index(data: dict) -> Index:
    """The entries and assets a Delivery API page holds: its ``includes`` and its items."""
    out: Index = {}
    for kind in ("Entry", "Asset"):
        for e in (data.get("includes") or {}).get(kind, []) or []:
            if isinstance(e, dict) and _id(e):
                out[(kind, _id(e))] = e
    for e in data.get("items", []) if isinstance(data.get("items"), list) else []:
        if isinstance(e, dict) and _id(e):
            out.setdefault((e["sys"].get("type") or "Entry", _id(e)), e)
    return out


def _id(e: dict) -> str | None:
    sys_ = e.get("sys")
    return sys_.get("id") if isinstance(sys_, dict) and isinstance(sys_.get("id"), str) else None


def resolve(entry: Any, index: Index, depth: int = 0, path: frozenset = frozenset()) -> Any:
    """An entry's fields plus ``identifier`` and ``sys``, with links replaced by what they point at
    and Rich Text documents by Markdown."""
    if isinstance(entry, list):
        return [resolve(e, index, depth, path) for e in entry]
    if not isinstance(entry, dict):
        return entry
    if entry.get("nodeType") == "document":
        return rich_text(entry)
    sys_ = entry.get("sys") if isinstance(entry.get("sys"), dict) else None
    if sys_ and sys_.get("type") == "Link":
        key = (sys_.get("linkType") or "Entry", sys_.get("id"))
        target = index.get(key)
        if target is None or key in path or depth > MAX_DEPTH:
            return {"identifier": sys_.get("id")}
        return resolve(target, index, depth + 1, path | {key})
    if sys_ and isinstance(entry.get("fields"), dict):
        here = path | {(sys_.get("type") or "Entry", sys_.get("id"))}
        fields = {k: resolve(v, index, depth, here) for k, v in entry["fields"].items()}
        return {**fields, "identifier": fields.get("identifier", sys_.get("id")), "sys": _sys(sys_)}
    return {k: resolve(v, index, depth, path) for k, v in entry.items()}


def _sys(sys_: dict) -> dict:
    """The sys fields a mapping may use: scalars as they are, links (contentType...) as their id."""
    out = {}
    for k, v in sys_.items():
        if isinstance(v, (str, int, float, bool)):
            out[k] = v
        elif isinstance(v, dict) and isinstance(v.get("sys"), dict) and v["sys"].get("type") == "Link":
            out[k] = v["sys"].get("id")
    return out


# -- Rich Text -> Markdown ---------------------------------------------------------------------

_ESCAPE = re.compile(r"([\\`*_\[\]<>&#|~])")
_LINE_START = re.compile(r"^(\s*)(?:([-+=>])|(\d+)([.)]))", re.MULTILINE)


def _escape(text: str) -> str:
    """Text that Markdown reads back as exactly this text."""
    text = _ESCAPE.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else
                                                    f"{m.group(3)}\\{m.group(4)}"), text)


def rich_text(doc: dict) -> str:
    """A Contentful Rich Text document as Markdown. Embedded entries and assets are left out (they
    are not text); a hyperlink keeps its text and address."""
    return "\n\n".join(b for b in (_block(n) for n in doc.get("content") or []) if b)


def _block(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    kind = node.get("nodeType") or ""
    content = node.get("content") or []
    if kind.startswith("heading-") and kind[8:].isdigit():
        text = _inline(content).replace("\n", " ").strip()
        return f"{'#' * min(int(kind[8:]), 6)} {text}" if text else ""
    if kind == "paragraph":
        return _inline(content).strip()
    if kind in ("unordered-list", "ordered-list"):
        items = []
        for n, item in enumerate(content, 1):
            marker = f"{n}. " if kind == "ordered-list" else "- "
            body = "\n\n".join(b for b in (_block(c) for c in item.get("content") or []) if b)
            items.append(marker + body.replace("\n", "\n" + " " * len(marker)))
        return "\n".join(items)
    if kind == "blockquote":
        body = "\n\n".join(b for b in (_block(c) for c in content) if b)
        return "\n".join("> " + line if line else ">" for line in body.split("\n"))
    if kind == "hr":
        return "---"
    if kind == "table":
        return "\n\n".join(" \\| ".join(_inline_of(cell) for cell in row.get("content") or [])
                           for row in content if isinstance(row, dict))
    return ""   # embedded-entry-block, embedded-asset-block, embedded-resource-block...


def _inline_of(cell: dict) -> str:
    return " ".join(b for b in (_block(c) for c in cell.get("content") or []) if b)


_MARKS = {"bold": "**", "italic": "*", "code": "`"}


def _inline(nodes: list) -> str:
    out = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        kind = node.get("nodeType")
        if kind == "text":
            value = str(node.get("value") or "")
            marks = [m.get("type") for m in node.get("marks") or [] if isinstance(m, dict)]
            if "code" in marks and value.strip():
                ticks = "``" if "`" in value else "`"
                out.append(f"{ticks} {value} {ticks}" if ticks == "``" else f"`{value}`")
                continue
            lines = _escape(value).split("\n")
            for mark in ("italic", "bold"):   # line by line: emphasis cannot span a blank line
                if mark in marks:
                    lines = [_marked(line, _MARKS[mark]) for line in lines]
            out.append("\n".join(lines))
        elif kind == "hyperlink":
            uri = str((node.get("data") or {}).get("uri") or "")
            text = _inline(node.get("content") or [])
            out.append(f"[{text}](<{uri.replace('<', '%3C').replace('>', '%3E')}>)" if uri else text)
        elif kind in ("entry-hyperlink", "asset-hyperlink", "resource-hyperlink"):
            out.append(_inline(node.get("content") or []))
    return "".join(out)


def _marked(text: str, mark: str) -> str:
    """``text`` with ``mark`` around it, outside its leading and trailing spaces."""
    core = text.strip()
    if not core:
        return text
    start = text.index(core)
    return f"{text[:start]}{mark}{core}{mark}{text[start + len(core):]}"


# -- space export files ------------------------------------------------------------------------

def read_export(data: Any, shown: str, options: dict,
                warn: Callable[[str], None] = lambda _m: None) -> Iterator[tuple[dict, str]]:
    """The published entries of an export (of ``options["content_type"]``, a name or a list, if
    given), in the locale ``options["locale"]`` or the export's default, with links resolved."""
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ContentfulError(f"{shown}: not a Contentful space export (an object with 'entries', 'assets', "
                              "'locales' and 'contentTypes', as `contentful space export` writes it)")
    locales = {loc["code"]: loc for loc in data.get("locales") or []
               if isinstance(loc, dict) and isinstance(loc.get("code"), str)}
    default = next((code for code, loc in locales.items() if loc.get("default")), None)
    locale = options.get("locale") or default
    if locale is None:
        raise ContentfulError(f"{shown}: the export lists no default locale (it was exported without its "
                              "locales): set locale = \"en-US\" (or another code) on the source")
    if locales and locale not in locales:
        raise ContentfulError(f"{shown}: locale {locale!r} is not in the export (its locales: "
                              f"{', '.join(locales)})")
    chain = _fallbacks(locale, locales)
    fixed = _unlocalised_fields(data.get("contentTypes"))
    wanted = options.get("content_type")
    wanted = {wanted} if isinstance(wanted, str) else set(wanted or [])
    if wanted and fixed and not wanted <= set(fixed):
        raise ContentfulError(f"{shown}: no content type {', '.join(sorted(wanted - set(fixed)))!r} in the export "
                              f"(its content types: {', '.join(sorted(fixed))})")
    index: Index = {}
    for kind, items in (("Entry", data["entries"]), ("Asset", data.get("assets") or [])):
        for n, item in enumerate(items, 1):
            if not isinstance(item, dict) or not _id(item) or not isinstance(item.get("fields"), dict):
                raise ContentfulError(f"{shown}: {kind.lower()} {n} has no sys.id or no fields")
            if _published(item["sys"]):
                ctype = _link_id(item["sys"].get("contentType"))
                index[(kind, _id(item))] = _in_locale(item, chain, default, fixed.get(ctype, set()),
                                                      f"{shown}: {kind.lower()} {_id(item)}")
    drafts_ahead = []
    for n, entry in enumerate(data["entries"], 1):
        key = ("Entry", _id(entry))
        if key not in index or (wanted and _link_id(entry["sys"].get("contentType")) not in wanted):
            continue
        sys_ = entry["sys"]
        if isinstance(sys_.get("version"), int) and isinstance(sys_.get("publishedVersion"), int) \
                and sys_["version"] > sys_["publishedVersion"] + 1:
            drafts_ahead.append(key[1])
        yield resolve(index[key], index, 0, frozenset({key})), f"{shown} (entry {n}, id {key[1]})"
    if drafts_ahead:
        warn(f"{shown}: {len(drafts_ahead)} entr{'y has' if len(drafts_ahead) == 1 else 'ies have'} changes not "
             f"yet published in Contentful (e.g. {drafts_ahead[0]}); the export holds the latest draft of their "
             "fields, and that is what is published here. Export with --delivery-token to get only what "
             "Contentful publishes")


def _link_id(value: Any) -> str | None:
    return value["sys"].get("id") if isinstance(value, dict) and isinstance(value.get("sys"), dict) else None


def _published(sys_: dict) -> bool:
    """Not archived, and published (a Management API item has a publishedVersion; a Delivery API one,
    exported with a delivery token, is published by being there)."""
    if sys_.get("archivedVersion") or sys_.get("archivedAt"):
        return False
    return "version" not in sys_ or bool(sys_.get("publishedVersion") or sys_.get("publishedAt"))


def _fallbacks(locale: str, locales: dict[str, dict]) -> list[str]:
    """``locale`` and the locales it falls back to, in order (Contentful's fallbackCode chain)."""
    chain = [locale]
    while (nxt := (locales.get(chain[-1]) or {}).get("fallbackCode")) and nxt not in chain:
        chain.append(nxt)
    return chain


def _unlocalised_fields(content_types: Any) -> dict[str, set[str]]:
    """Per content type id, the fields that are not localised (their value is in the default locale)."""
    out: dict[str, set[str]] = {}
    for ct in content_types or []:
        if isinstance(ct, dict) and _id(ct):
            out[_id(ct)] = {f["id"] for f in ct.get("fields") or []
                            if isinstance(f, dict) and f.get("localized") is False and isinstance(f.get("id"), str)}
    return out


def _in_locale(item: dict, chain: list[str], default: str | None, fixed: set[str], where: str) -> dict:
    """``item`` with one value per field: the first locale of ``chain`` that has one (for a field that
    is not localised, the default locale's), and ``sys.locale``."""
    fields = {}
    for name, values in item["fields"].items():
        if not isinstance(values, dict):
            raise ContentfulError(f"{where}: field {name!r} is not keyed by locale "
                                  "(expected {\"en-US\": value}): is this a space export?")
        for code in ([default] if name in fixed and default else chain):
            if code in values:
                fields[name] = values[code]
                break
    return {"sys": {**item["sys"], "locale": chain[0]}, "fields": fields}
