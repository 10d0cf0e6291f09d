"""TSV reading shared by the KB and corpus readers (csv quoting like pandas' default).

Files are strict UTF-8 (E190 naming the line otherwise). Fields may be quoted (``"a\tb"``
holds a tab, ``""`` is a quote), as pandas writes them. :func:`iter_tsv_fields` yields raw
field lists (the caller checks their number); :func:`iter_tsv` yields row dicts and makes a
row with more or fewer fields than the header E195 naming the file and line.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from .errors import Errors
from .textio import iter_lines, open_text, utf8_errors

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

__all__ = ["tsv_header", "iter_tsv_fields", "iter_tsv"]


class _Dialect(csv.Dialect):
    """pandas' ``read_csv(sep="\\t")`` defaults, written out."""

    delimiter = "\t"
    quotechar = '"'
    doublequote = True
    escapechar = None
    skipinitialspace = False
    lineterminator = "\n"
    quoting = csv.QUOTE_MINIMAL
    strict = False


def tsv_header(path: Path) -> List[str]:
    """The stripped column names of the first line (no quoting: headers are plain)."""
    for _, first in iter_lines(path):
        return [c.strip() for c in first.split("\t")]
    return []


def iter_tsv_fields(path: Path) -> Iterator[Tuple[int, List[str], Optional[List[str]]]]:
    """Yield ``(line number, fields, header)``: first the header row (``header`` None), then
    each data row with the header; blank rows are skipped. Line numbers are those of the
    row's last physical line (a quoted field may span lines)."""
    with utf8_errors(path), open_text(path) as f:
        reader = csv.reader(f, dialect=_Dialect)
        header: Optional[List[str]] = None
        for fields in reader:
            if not any(v.strip() for v in fields):
                continue
            if header is None:
                header = [c.lstrip("\ufeff").strip() for c in fields]
                yield reader.line_num, header, None
                continue
            yield reader.line_num, fields, header


def iter_tsv(path: Path) -> Iterator[Tuple[int, dict]]:
    """Yield (line number, row dict) for each data row; blank rows are skipped."""
    for line, fields, header in iter_tsv_fields(path):
        if header is None:
            continue
        if len(fields) != len(header):
            raise ValueError(Errors.E195.format(
                path=path, line=line, n=len(fields), n_header=len(header),
                header=", ".join(header)))
        yield line, dict(zip(header, fields))
