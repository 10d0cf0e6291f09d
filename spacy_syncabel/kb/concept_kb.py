"""An in-memory concept knowledge base: codes, names and groups.

A :class:`ConceptKB` holds ``(code, name, group)`` triples. Generative linking
produces a *name*, so within each group a kept name must identify exactly one
code. Disambiguation is deterministic and independent of the input order:

1. In each group, a name that belongs to exactly one code is kept for it.
2. For codes left without any name, each of their ambiguous names is tested
   again among those nameless codes only: if exactly one nameless code carries
   it, the name is given to that code.
3. Codes still nameless are visited in sorted code order; each takes the
   smallest (sorted) of its ambiguous names that no code has taken yet. So a
   code gets at most one name in this step and a name goes to at most one code.

Ambiguous names not given to any code are dropped, and so are codes that end
with no name in a group (they stay reachable through :meth:`synonyms_of`). What
was dropped is listed in ``kb.report["groups"][group]`` and a ``W001`` warning
is emitted once per group where anything was dropped.
"""
from __future__ import annotations

import hashlib
import unicodedata
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple, Union

import srsly

from ..errors import Errors, Warnings
from ..text import clean_name
from ..textio import iter_jsonl, read_json

__all__ = ["ConceptKB", "fast_clean_name"]


class _hybridmethod:
    """Call on the class -> ``classfunc(cls, ...)``; on an instance -> ``instfunc(self, ...)``."""

    def __init__(self, instfunc):
        self.instfunc = instfunc
        self.classfunc = None

    def classmethod(self, func):
        self.classfunc = func
        return self

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self.classfunc.__get__(objtype, type(objtype))
        return self.instfunc.__get__(obj, objtype)

_BRACKETS = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")"})
_KB_FILE = "kb.jsonl"
_META_FILE = "meta.json"


def fast_clean_name(text: str) -> str:
    """Same result as :func:`spacy_syncabel.text.clean_name`, faster on common text.

    If the NFC text is printable (no control/format chars, no unicode space other
    than the ASCII blank), cleaning is a bracket translation plus space collapse.
    """
    text = unicodedata.normalize("NFC", text)
    if text.isprintable():
        return " ".join(text.translate(_BRACKETS).split())
    return clean_name(text)


class ConceptKB:
    """Concept KB with per-group unambiguous names.

    entries: ``(code, name, group)`` triples. Names are cleaned with
        :func:`clean_name`; rows whose name is empty after cleaning are dropped.
        Exact duplicate triples are collapsed (counted in ``report["duplicate_rows"]``).
    preferred: code -> preferred name (else the code's first name in input order).
    definitions: code -> definition text.
    source: where the KB came from (file path, loader name...).
    aliases: alternative code -> main code (e.g. MEDIC alt ids, CANTEMIST ``/H`` codes).
    warn: emit ``W001`` for groups where names or codes were dropped.
    """

    def __init__(
        self,
        entries: Iterable[Tuple[str, str, str]],
        preferred: Optional[Mapping[str, str]] = None,
        definitions: Optional[Mapping[str, str]] = None,
        source: str = "",
        aliases: Optional[Mapping[str, str]] = None,
        warn: bool = True,
    ) -> None:
        self.source = str(source)
        raw: Dict[Tuple[str, str, str], None] = {}
        n_rows = 0
        n_empty = 0
        cache: Dict[str, str] = {}
        for code, name, group in entries:
            n_rows += 1
            cleaned = cache.get(name)
            if cleaned is None:
                cleaned = cache[name] = fast_clean_name(name)
            if not cleaned:
                n_empty += 1
                continue
            raw[(str(code), cleaned, str(group))] = None
        self._raw: List[Tuple[str, str, str]] = list(raw)
        self._preferred_given: Dict[str, str] = {
            str(c): fast_clean_name(n) for c, n in (preferred or {}).items() if fast_clean_name(n)
        }
        self._definitions: Dict[str, str] = {
            str(c): d for c, d in (definitions or {}).items() if d
        }
        self.aliases: Dict[str, str] = {str(a): str(c) for a, c in (aliases or {}).items()}
        self.report: Dict[str, Any] = {
            "source": self.source,
            "rows": n_rows,
            "duplicate_rows": n_rows - n_empty - len(self._raw),
            "empty_names": n_empty,
            "groups": {},
        }
        self._build(warn)

    # ------------------------------------------------------------------ build
    def _build(self, warn: bool) -> None:
        # per group: name -> list of codes (input order, unique)
        by_group: Dict[str, Dict[str, List[str]]] = {}
        all_names: Dict[str, List[str]] = {}
        groups_of: Dict[str, Set[str]] = {}
        for code, name, group in self._raw:
            by_group.setdefault(group, {}).setdefault(name, []).append(code)
            all_names.setdefault(code, []).append(name)
            groups_of.setdefault(code, set()).add(group)
        # unique synonyms per code in input order
        self._synonyms: Dict[str, List[str]] = {
            c: list(dict.fromkeys(ns)) for c, ns in all_names.items()
        }
        self._groups_of: Dict[str, List[str]] = {c: sorted(g) for c, g in groups_of.items()}
        self._name2code: Dict[str, Dict[str, str]] = {}
        self._code2names: Dict[str, Dict[str, List[str]]] = {}
        for group in sorted(by_group):
            self._disambiguate(group, by_group[group], warn)
        # cross-group lookup: first group in sorted order wins
        self._lookup_all: Dict[str, str] = {}
        for group in sorted(self._name2code, reverse=True):
            self._lookup_all.update(self._name2code[group])
        self._preferred: Dict[str, str] = {}
        for code, names in self._synonyms.items():
            given = self._preferred_given.get(code)
            self._preferred[code] = given if given else names[0]

    def _disambiguate(self, group: str, name2codes: Dict[str, List[str]], warn: bool) -> None:
        kept: Dict[str, str] = {}
        ambiguous: Dict[str, List[str]] = {}
        code_names: Dict[str, List[str]] = {}
        for name, codes in name2codes.items():
            for code in codes:
                code_names.setdefault(code, []).append(name)
            if len(codes) == 1:
                kept[name] = codes[0]
            else:
                ambiguous[name] = codes
        has_name = set(kept.values())
        nameless = [c for c in code_names if c not in has_name]
        if nameless:
            nameless_set = set(nameless)
            # step 2: ambiguous names re-tested among nameless codes only
            recovered: Dict[str, str] = {}
            for code in nameless:
                for name in code_names[code]:
                    if name in recovered or name not in ambiguous:
                        continue
                    among = [c for c in ambiguous[name] if c in nameless_set]
                    if len(among) == 1:
                        recovered[name] = among[0]
            kept.update(recovered)
            has_name.update(recovered.values())
            # step 3: deterministic tie-break, sorted codes take their smallest free name
            for code in sorted(c for c in nameless if c not in has_name):
                free = sorted(n for n in code_names[code] if n in ambiguous and n not in kept)
                if free:
                    kept[free[0]] = code
                    has_name.add(code)
        dropped = sorted(
            (name, sorted(codes)) for name, codes in ambiguous.items() if name not in kept
        )
        no_name = sorted(c for c in code_names if c not in has_name)
        self._name2code[group] = kept
        c2n: Dict[str, List[str]] = {}
        for name, code in kept.items():
            c2n.setdefault(code, []).append(name)
        # names_of keeps input order
        order = {n: i for i, n in enumerate(name2codes)}
        for names in c2n.values():
            names.sort(key=order.__getitem__)
        self._code2names[group] = c2n
        self.report["groups"][group] = {
            "codes": len(code_names),
            "names": len(kept),
            "dropped_names": [(n, cs) for n, cs in dropped],
            "nameless_codes": no_name,
        }
        if warn and (dropped or no_name):
            warnings.warn(
                Warnings.W001.format(n_names=len(dropped), n_codes=len(no_name), group=group),
                stacklevel=4,
            )

    # ------------------------------------------------------------------ access
    @property
    def groups(self) -> List[str]:
        return sorted(self._name2code)

    @property
    def codes(self) -> Set[str]:
        return set(self._synonyms)

    def __len__(self) -> int:
        return len(self._synonyms)

    def __contains__(self, code: object) -> bool:
        return code in self._synonyms

    def __repr__(self) -> str:
        return (f"ConceptKB({len(self)} codes, {sum(len(m) for m in self._name2code.values())} "
                f"names, groups={self.groups}, source={self.source!r})")

    def canonical_code(self, code: str) -> str:
        """The main code for an alternative code (``aliases``), else the code itself."""
        return code if code in self._synonyms else self.aliases.get(code, code)

    def names(self, group: Optional[str] = None) -> List[str]:
        """Sorted unambiguous names of one group, or of all groups (union)."""
        if group is not None:
            return sorted(self._name2code.get(group, ()))
        return sorted(self._lookup_all)

    def lookup(self, name: str, group: Optional[str] = None) -> Optional[str]:
        """Code of an (unambiguous) name; across all groups if ``group`` is None."""
        name = fast_clean_name(name)
        if group is not None:
            return self._name2code.get(group, {}).get(name)
        return self._lookup_all.get(name)

    def names_of(self, code: str, group: Optional[str] = None) -> List[str]:
        """Unambiguous names of a code (input order), in one group or all its groups."""
        if group is not None:
            return list(self._code2names.get(group, {}).get(code, ()))
        out: List[str] = []
        for g in self._groups_of.get(code, ()):
            out.extend(self._code2names[g].get(code, ()))
        return list(dict.fromkeys(out))

    def synonyms_of(self, code: str) -> List[str]:
        """All names of a code, ambiguous ones included (input order)."""
        return list(self._synonyms.get(code, ()))

    def groups_of(self, code: str) -> List[str]:
        return list(self._groups_of.get(code, ()))

    def preferred_name(self, code: str) -> str:
        """The given preferred name, else the code's first name in input order."""
        try:
            return self._preferred[code]
        except KeyError:
            raise KeyError(code) from None

    def definition(self, code: str) -> Optional[str]:
        return self._definitions.get(code)

    def entries(self, group: Optional[str] = None) -> Iterator[Tuple[str, str, str]]:
        """Iterate ``(code, name, group)`` of the unambiguous names (sorted by group, name)."""
        groups = [group] if group is not None else self.groups
        for g in groups:
            mapping = self._name2code.get(g, {})
            for name in sorted(mapping):
                yield mapping[name], name, g

    def fingerprint(self) -> str:
        """sha256 over the sorted ``(group, name, code)`` of the unambiguous names."""
        h = hashlib.sha256()
        for g in self.groups:
            mapping = self._name2code[g]
            for name in sorted(mapping):
                h.update(f"{g}\t{name}\t{mapping[name]}\n".encode("utf8"))
        return h.hexdigest()

    # ------------------------------------------------------------- serialize
    def _meta(self) -> Dict[str, Any]:
        return {
            "source": self.source,
            "preferred": self._preferred_given,
            "definitions": self._definitions,
            "aliases": self.aliases,
            "duplicate_rows": self.report["duplicate_rows"],
            "fingerprint": self.fingerprint(),
        }

    def _raw_dicts(self) -> List[Dict[str, str]]:
        return [{"code": c, "name": n, "group": g} for c, n, g in self._raw]

    @classmethod
    def _from_parts(cls, lines: Iterable[Dict[str, str]], meta: Dict[str, Any]) -> "ConceptKB":
        kb = cls(
            ((d["code"], d["name"], d["group"]) for d in lines),
            preferred=meta.get("preferred"),
            definitions=meta.get("definitions"),
            source=meta.get("source", ""),
            aliases=meta.get("aliases"),
            warn=False,
        )
        kb.report["duplicate_rows"] = meta.get("duplicate_rows", 0)
        return kb

    def to_disk(self, path: Union[str, Path], exclude: Iterable[str] = tuple()) -> None:
        """Write ``kb.jsonl`` (one raw entry a line) and ``meta.json`` into folder ``path``.
        ``meta.json`` goes last: a write cut short leaves a folder :meth:`load` rejects."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / _META_FILE).unlink(missing_ok=True)
        srsly.write_jsonl(path / _KB_FILE, self._raw_dicts())
        srsly.write_json(path / _META_FILE, self._meta())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "ConceptKB":
        """Read a folder written by :meth:`to_disk`. A missing file is E192, invalid JSON
        E191/E196 (file and line), a ``kb.jsonl`` that does not give the fingerprint saved in
        ``meta.json`` (truncated or edited) E193."""
        path = Path(path)
        for name, what in ((_KB_FILE, "no concepts"),
                           (_META_FILE, "without its preferred names, definitions and code "
                                        "aliases")):
            if not (path / name).is_file():
                raise ValueError(Errors.E192.format(path=path, missing=name, what=what))
        meta = read_json(path / _META_FILE)
        if not isinstance(meta, dict):
            raise ValueError(Errors.E191.format(path=path / _META_FILE, line=1,
                                                err="expected a JSON object"))
        kb = cls._from_parts(_read_kb_lines(path / _KB_FILE), meta)
        expected = meta.get("fingerprint")
        if expected and kb.fingerprint() != expected:
            raise ValueError(Errors.E193.format(
                path=path, problem=f"{len(kb._raw)} row(s) give fingerprint "
                                   f"{kb.fingerprint()[:12]}, meta.json has {str(expected)[:12]}"))
        return kb

    @_hybridmethod
    def from_disk(self, path: Union[str, Path], exclude: Iterable[str] = tuple()) -> "ConceptKB":
        """Load from a folder written by :meth:`to_disk`.

        Works both as ``ConceptKB.from_disk(path)`` (returns a new KB) and, spaCy
        style, as ``kb.from_disk(path)`` (loads in place and returns ``kb``).
        """
        other = type(self).load(path)
        self.__dict__.update(other.__dict__)
        return self

    @from_disk.classmethod
    def from_disk(cls, path: Union[str, Path], exclude: Iterable[str] = tuple()) -> "ConceptKB":
        return cls.load(path)

    def to_bytes(self, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps({"entries": self._raw, "meta": self._meta()})

    def from_bytes(self, data: bytes, exclude: Iterable[str] = tuple()) -> "ConceptKB":
        msg = srsly.msgpack_loads(data)
        lines = ({"code": c, "name": n, "group": g} for c, n, g in msg["entries"])
        other = type(self)._from_parts(lines, msg["meta"])
        self.__dict__.update(other.__dict__)
        return self


def _read_kb_lines(path: Path) -> Iterator[Dict[str, str]]:
    """The rows of a saved ``kb.jsonl``; E191 on invalid JSON, E196 on a malformed row."""
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj, dict) or not all(
                isinstance(obj.get(k), str) for k in ("code", "name", "group")):
            raise ValueError(Errors.E196.format(
                path=path, line=lineno, problem=f"got {str(obj)[:80]!r}"))
        yield obj
