"""What the KB formats share: the table they register in, and small reading functions."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from ...errors import Errors
from ...textio import iter_lines, json_loads
from ..concept_kb import ConceptKB

PathLike = Union[str, Path]
Entry = Tuple[str, str, str]
#: ``read(path, group, languages)``: group None and languages None mean the format's defaults
Reader = Callable[[Path, Optional[str], Optional[List[str]]], ConceptKB]
_TRUE = {"1", "true", "yes", "y", "t"}


@dataclass(frozen=True)
class KBFormat:
    """One KB format of :func:`~spacy_syncabel.kb.read_file`: its ``name`` (``format=``),
    ``detect`` (whether a path is in this format, asked in ``rank`` order, lowest first, when
    the format is ``auto``), ``read`` and whether it keeps names by language
    (``multilingual``; the others warn W400 when given languages)."""

    name: str
    rank: int
    detect: Callable[[Path], bool]
    read: Reader
    multilingual: bool = False


#: every registered format by name, in the order registered
TABLE: Dict[str, KBFormat] = {}


def register(fmt: KBFormat) -> KBFormat:
    """Add ``fmt`` to :data:`TABLE` (a format module does it when imported)."""
    TABLE[fmt.name] = fmt
    return fmt


def group_kw(group: Optional[str]) -> Dict[str, str]:
    """``{"group": group}`` when a group is given, else nothing (the reader's default)."""
    return {"group": group} if group else {}


def check_path(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(Errors.E003.format(path=p))
    return p


def lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without end of line); UTF-8 (E190 naming the line if
    not), BOM dropped."""
    return iter_lines(path)


def finish(kb: ConceptKB, path: PathLike) -> ConceptKB:
    if len(kb) == 0:
        raise ValueError(Errors.E005.format(path=path))
    return kb


def truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def json_lines(p: Path) -> Iterator[Tuple[int, dict]]:
    for lineno, line in lines(p):
        if not line.strip():
            continue
        try:
            obj = json_loads(line)
        except ValueError as err:
            raise ValueError(Errors.E006.format(path=p, line=lineno, err=err)) from None
        if not isinstance(obj, dict):
            raise ValueError(Errors.E006.format(path=p, line=lineno, err="not an object"))
        yield lineno, obj
