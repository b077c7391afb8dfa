"""heritage-ld: publish cultural-heritage records as validated EDM and schema.org linked data."""
import hashlib
from functools import cache
from pathlib import Path

__version__ = "0.1.0"


@cache
def code_digest() -> str:
    """This package's code and bundled data (languages, rights, EDM classes), as one digest: what a
    run's results depend on besides its inputs (a development checkout changes without a new version)."""
    h = hashlib.sha256(__version__.encode())
    package = Path(__file__).parent
    for f in sorted(package.rglob("*")):
        if f.suffix in (".py", ".json") and "__pycache__" not in f.parts and f.is_file():
            h.update(f"\x1e{f.relative_to(package).as_posix()}\x1f".encode() + f.read_bytes())
    return h.hexdigest()
