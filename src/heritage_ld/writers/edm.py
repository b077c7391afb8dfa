"""EDM RDF/XML for Europeana: ``edm/<entity>/<id>.xml``, one file per ProvidedCHO.

The documents are made during ``build`` (an error there is an EDM-channel violation in the
report); this module writes them and registers the format.
"""
from __future__ import annotations

from pathlib import Path

from . import Files, Format, Job, record_file, register
from .edmxml import edm_record


class Edm:
    def __init__(self, pub, out: Path, files: Files) -> None:
        self.files = files

    def block(self, job: Job, rows) -> None:
        for i in job.files:
            rel = record_file(rows[i].entity, rows[i].id, "xml", folder="edm")
            if rows[i].edm_xml is not None:
                self.files.write(rel, rows[i].edm_xml)
            else:   # held back from the EDM channel since
                self.files.remove(rel)

    def close(self) -> None:
        pass


register(Format("edm", "application/rdf+xml", "xml",
                "EDM RDF/XML for Europeana, one file per ProvidedCHO (edm/<entity>/<id>.xml)",
                Edm, lambda pub, triples, subject: edm_record(triples, subject), cost=3.5, folder="edm"))
