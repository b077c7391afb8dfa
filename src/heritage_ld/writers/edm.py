"""EDM RDF/XML for Europeana: ``edm/<entity>/<id>.xml``, one file per ProvidedCHO.

The documents are made during ``build`` (an error there is an EDM-channel violation in the
report); this module writes them and registers the format.
"""
from __future__ import annotations

from pathlib import Path

from . import Format, register
from .edmxml import edm_record
from .rdf import record_path


def write_edm(pub, out: Path) -> None:
    for (entity, record_id), xml in sorted(pub.edm_xml.items()):
        path = record_path(out, entity, record_id, "xml", folder="edm")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(xml)


register(Format("edm", "application/rdf+xml", "xml",
                "EDM RDF/XML for Europeana, one file per ProvidedCHO (edm/<entity>/<id>.xml)",
                write_edm, lambda pub, triples, subject: edm_record(triples, subject)))
