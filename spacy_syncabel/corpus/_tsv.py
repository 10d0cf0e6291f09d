"""TSV reading shared by the SPACCC readers (csv quoting like pandas' default)."""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def tsv_header(path: Path) -> List[str]:
    with open(path, encoding="utf-8", newline="") as f:
        first = f.readline().lstrip("\ufeff").rstrip("\r\n")
    return [c.strip() for c in first.split("\t")]


def iter_tsv(path: Path) -> Iterator[Tuple[int, dict]]:
    """Yield (line number, row dict) for each data row."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        reader.fieldnames = [c.strip() for c in reader.fieldnames or []]
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            yield reader.line_num, row
