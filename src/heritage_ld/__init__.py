"""heritage-ld: publish cultural-heritage records as validated EDM and schema.org linked data."""
__version__ = "0.1.0"
