"""TSV reading shared by the SPACCC readers (csv quoting like pandas' default).

Files are strict UTF-8 (E190 naming the line otherwise). Fields may be quoted (``"a\tb"``
holds a tab, ``""`` is a quote), as pandas writes them; a row with more or fewer fields
than the header is E195 naming the file and line.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

from ..errors import Errors
from ..textio import iter_lines, open_text, utf8_errors

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


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
    for _, first in iter_lines(path):
        return [c.strip() for c in first.split("\t")]
    return []


def iter_tsv(path: Path) -> Iterator[Tuple[int, dict]]:
    """Yield (line number, row dict) for each data row; blank rows are skipped."""
    with utf8_errors(path), open_text(path) as f:
        reader = csv.reader(f, dialect=_Dialect)
        header = [c.lstrip("\ufeff").strip() for c in next(reader, [])]
        for fields in reader:
            if not any(v.strip() for v in fields):
                continue
            if len(fields) != len(header):
                raise ValueError(Errors.E195.format(
                    path=path, line=reader.line_num, n=len(fields), n_header=len(header),
                    header=", ".join(header)))
            yield reader.line_num, dict(zip(header, fields))
