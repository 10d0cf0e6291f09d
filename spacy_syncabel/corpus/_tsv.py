"""TSV reading of the SPACCC readers: the shared reader of :mod:`spacy_syncabel.tsv`."""
from __future__ import annotations

from ..tsv import iter_tsv, iter_tsv_fields, tsv_header

__all__ = ["iter_tsv", "iter_tsv_fields", "tsv_header"]
