"""Reader for the package's sectioned text files (prompts and templates).

Format: ``#`` comment lines; ``key = value`` header lines before the first section; then
``[section]`` headers, each followed by its text (surrounding blank lines are dropped).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Dict, List, Optional, Union

from ..errors import Errors
from ..textio import read_text

_SECTION = re.compile(r"^\[([^\[\]]+)\]\s*$")
_HEADER = re.compile(r"^([A-Za-z_][\w.]*)\s*=\s*(.*)$")


@dataclass
class SectionedText:
    path: str
    header: Dict[str, str] = field(default_factory=dict)
    sections: Dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.header["version"]

    def lines(self, section: str) -> List[str]:
        return [ln.strip() for ln in self.sections.get(section, "").splitlines() if ln.strip()]


def parse_sectioned(text: str, path: str = "<string>") -> SectionedText:
    out = SectionedText(path=path)
    current: Optional[str] = None
    buf: List[str] = []

    def flush() -> None:
        if current is not None:
            out.sections[current] = "\n".join(buf).strip("\n")

    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            continue
        match = _SECTION.match(line)
        if match:
            flush()
            current, buf = match.group(1).strip(), []
            continue
        if current is None:
            if not line.strip():
                continue
            header = _HEADER.match(line)
            if header is None:
                raise ValueError(Errors.E072.format(path=path, problem=f"line {lineno}: expected "
                                                    f"`key = value` or a [section], got {line!r}"))
            out.header[header.group(1)] = header.group(2).strip()
        else:
            buf.append(line.rstrip())
    flush()
    if "version" not in out.header:
        raise ValueError(Errors.E072.format(path=path, problem="no `version = ...` header line"))
    return out


def load_sectioned(kind: str, lang: Optional[str], path: Union[str, Path, None] = None) -> SectionedText:
    """Load ``path``, else the packaged ``{kind}/{lang}.txt`` (E072 if there is none)."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(Errors.E072.format(path=path, problem="file not found"))
        return parse_sectioned(read_text(path), str(path))
    res = resources.files(__package__).joinpath(kind).joinpath(f"{lang}.txt")
    if not res.is_file():
        available = sorted(p.name[:-4] for p in resources.files(__package__).joinpath(kind).iterdir()
                           if p.name.endswith(".txt"))
        raise ValueError(Errors.E070.format(kind=kind, lang=lang, available=available))
    return parse_sectioned(res.read_text(encoding="utf-8"), f"{kind}/{lang}.txt")
