"""EDM RDF/XML for Europeana: ``edm/<entity>/<id>.xml``, one file per ProvidedCHO.

The documents are made during ``build`` (an error there is an EDM-channel violation in the
report); this module writes them and registers the format.
"""
from __future__ import annotations

from pathlib import Path

from . import Files, Format, register
from .edmxml import edm_record
from .rdf import record_file


class Edm:
    def __init__(self, pub, out: Path, files: Files) -> None:
        self.files = files

    def add(self, row, fresh) -> None:
        if row.edm_xml is not None:
            self.files.write(record_file(row.entity, row.id, "xml", folder="edm"), row, lambda: row.edm_xml)

    def close(self) -> None:
        pass


register(Format("edm", "application/rdf+xml", "xml",
                "EDM RDF/XML for Europeana, one file per ProvidedCHO (edm/<entity>/<id>.xml)",
                Edm, lambda pub, triples, subject: edm_record(triples, subject), cost=3.5, folder="edm"))
