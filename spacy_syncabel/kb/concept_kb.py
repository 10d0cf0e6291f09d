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

Storage (a name index that fits UMLS-sized KBs): every name string and every code lives once in
a ``marisa_trie.Trie`` (string <-> id); the rows (grouped by code), the kept (group, name) ->
code pairs and the preferred names are int arrays, about 40 bytes a name.
"""
from __future__ import annotations

import hashlib
import itertools
import marshal
import unicodedata
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple, Union

import marisa_trie
import numpy as np
import srsly

from ..errors import Errors, Warnings
from ..text import clean_name
from ..textio import iter_jsonl, read_json
from .validation import code_problem, name_problem, repair_code

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
        :func:`clean_name`. Exact duplicate triples are collapsed (counted in
        ``report["duplicate_rows"]``). Codes and names are checked (see
        :mod:`.validation`): a code that the gold readers, the outputs or the decoder would read
        as something else (control characters, white space, ``+ | ,``, ``<SEP>``, ``NIL`` /
        ``NO_CODE`` / ``-1`` / ``CUI-less``) is E340 and a name with nothing to generate once
        cleaned (empty, only combining marks...) or holding ``<SEP>`` is E341; only white space
        or separators at a code's ends are dropped (``C1+`` -> ``C1``, W340, listed in
        ``report["repaired_codes"]``).
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
        cache: Dict[str, str] = {}
        codes: Dict[str, str] = {}  # code as given -> code kept ("" if refused)
        bad_codes: Dict[str, Tuple[str, str, str]] = {}  # code -> (name, group, problem)
        bad_names: Dict[str, Tuple[str, str, str]] = {}  # name -> (code, group, problem)
        repaired: List[str] = []
        for code, name, group in entries:
            n_rows += 1
            cleaned = cache.get(name)
            if cleaned is None:
                cleaned = cache[name] = fast_clean_name(name)
                problem = name_problem(cleaned)
                if problem is not None:
                    bad_names.setdefault(name, (str(code), str(group), problem))
            kept_code = codes.get(code)
            if kept_code is None:
                kept_code = codes[code] = self._check_code(str(code), name, str(group),
                                                            bad_codes, repaired)
            if kept_code and name not in bad_names:
                raw[(kept_code, cleaned, str(group))] = None
        self._refuse(bad_codes, bad_names)
        if repaired and warn:
            warnings.warn(Warnings.W340.format(source=self.source, n=len(repaired),
                                               first=", ".join(map(repr, repaired[:5]))),
                          stacklevel=2)
        self._raw: List[Tuple[str, str, str]] = list(raw)
        n_raw = len(self._raw)
        del raw, cache, codes  # free the build's temporaries as early as possible
        self._given: Dict[str, str] = {
            repair_code(str(c)): fast_clean_name(n) for c, n in (preferred or {}).items()
            if fast_clean_name(n)
        }
        self._definitions: Dict[str, str] = {
            repair_code(str(c)): d for c, d in (definitions or {}).items() if d
        }
        self.aliases: Dict[str, str] = {}
        for alt, code in (aliases or {}).items():
            alt = repair_code(str(alt))
            problem = code_problem(alt)
            if problem is not None:
                self._refuse({alt: (f"alternative code of {code}", "", problem)}, {})
            self.aliases[alt] = repair_code(str(code))
        self.report: Dict[str, Any] = {
            "source": self.source,
            "rows": n_rows,
            "duplicate_rows": n_rows - n_raw,
            "repaired_codes": repaired,
            "groups": {},
        }
        self._build(warn)

    @staticmethod
    def _check_code(code: str, name: str, group: str, bad: Dict[str, Tuple[str, str, str]],
                    repaired: List[str]) -> str:
        """The code to keep for ``code`` ("" if it is refused: noted in ``bad``)."""
        problem = code_problem(code)
        if problem is None:
            return code
        fixed = repair_code(code)
        if fixed != code and code_problem(fixed) is None:
            repaired.append(code)
            return fixed
        bad[code] = (name, group, problem)
        return ""

    def _refuse(self, bad_codes: Dict[str, Tuple[str, str, str]],
                bad_names: Dict[str, Tuple[str, str, str]]) -> None:
        """E340 for codes that cannot be KB codes, E341 for names that cannot be KB names."""
        if bad_codes:
            (code, (name, group, problem)), *rest = bad_codes.items()
            raise ValueError(Errors.E340.format(
                source=self.source, n=len(bad_codes), code=code, name=name, group=group,
                problem=problem, others=", ".join(repr(c) for c, _ in rest[:5]) or "none"))
        if bad_names:
            (name, (code, group, problem)), *rest = bad_names.items()
            raise ValueError(Errors.E341.format(
                source=self.source, n=len(bad_names), code=code, name=name, group=group,
                problem=problem,
                others=", ".join(f"{n!r} ({c})" for n, (c, _, _) in rest[:5]) or "none"))

    # ------------------------------------------------------------------ build
    def _build(self, warn: bool) -> None:
        # per group: name -> list of codes (input order, unique)
        by_group: Dict[str, Dict[str, List[str]]] = {}
        for code, name, group in self._raw:
            by_group.setdefault(group, {}).setdefault(name, []).append(code)
        kept = {g: self._disambiguate(g, by_group[g], warn) for g in sorted(by_group)}
        del by_group
        self._compact(kept)
        del kept
        self._renew_strings()

    def _renew_strings(self) -> None:
        """Re-create the Python objects that outlive the build (report, aliases, ...) once the
        build's millions of temporary strings are freed: a surviving string among them keeps
        its whole memory arena resident (at 1M names, ~125 MB more RSS than the arrays)."""
        keys = ("source", "report", "aliases", "_definitions", "_preferred_extra", "_groups")
        frozen = marshal.dumps([self.__dict__[k] for k in keys])  # our own data, in memory
        for k in keys:
            self.__dict__[k] = None
        for k, v in zip(keys, marshal.loads(frozen)):
            self.__dict__[k] = v

    def _disambiguate(self, group: str, name2codes: Dict[str, List[str]],
                      warn: bool) -> Dict[str, str]:
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
            # step 2: each ambiguous name re-tested once among the nameless codes only (one
            # pass over the ambiguous rows: linear in the group's size however many codes
            # share a name)
            recovered: Dict[str, str] = {}
            for name, codes in ambiguous.items():
                among = [c for c in codes if c not in has_name]
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
        self.report["groups"][group] = {
            "codes": len(code_names),
            "names": len(kept),
            "dropped_names": [(n, cs) for n, cs in dropped],
            "nameless_codes": no_name,
        }
        if warn and (dropped or no_name):
            warnings.warn(
                Warnings.W001.format(n_names=len(dropped), n_codes=len(no_name), group=group),
                stacklevel=5,
            )
        return kept

    def _compact(self, kept: Dict[str, Dict[str, str]]) -> None:
        """Store the KB as a name index: names and codes in marisa tries (string <-> id),
        everything else in int arrays (about 40 bytes a name at 1M names, not ~1 KB)."""
        raw = self._raw
        self._groups: List[str] = sorted(kept)
        gidx = {g: i for i, g in enumerate(self._groups)}
        strings = marisa_trie.Trie(itertools.chain((n for _, n, _ in raw),
                                                   self._given.values()))
        codes = marisa_trie.Trie(c for c, _, _ in raw)
        n_rows, n_str = len(raw), max(len(strings), 1)
        raw_cid = np.fromiter((codes[c] for c, _, _ in raw), dtype=np.int32, count=n_rows)
        raw_nid = np.fromiter((strings[n] for _, n, _ in raw), dtype=np.int32, count=n_rows)
        raw_gid = np.fromiter((gidx[g] for _, _, g in raw), dtype=np.int32, count=n_rows)
        # (group, name) -> code of the kept names, sorted by key = group * n_strings + name
        key_dtype = np.int32 if (len(self._groups) + 1) * n_str < 2 ** 31 else np.int64
        keys = np.fromiter((gidx[g] * n_str + strings[n] for g in self._groups for n in kept[g]),
                           dtype=key_dtype)
        cids = np.fromiter((codes[c] for g in self._groups for c in kept[g].values()),
                           dtype=np.int32, count=len(keys))
        order = np.argsort(keys, kind="stable")
        self._kept_key, self._kept_cid = keys[order], cids[order]
        # first input row of each kept (group, name): names_of keeps input order
        row_keys = raw_gid.astype(key_dtype) * n_str + raw_nid
        uniq, first = np.unique(row_keys, return_index=True)
        self._kept_first = first[np.searchsorted(uniq, self._kept_key)].astype(np.int32)
        # the rows, grouped by code (input order within a code): code i has rows
        # _code_ptr[i]:_code_ptr[i + 1] of _row_nid (name) and _row_gid (group)
        by_code = np.argsort(raw_cid, kind="stable")
        ptr = np.zeros(len(codes) + 1, dtype=np.int32 if n_rows < 2 ** 31 else np.int64)
        np.cumsum(np.bincount(raw_cid, minlength=len(codes)), out=ptr[1:])
        small = np.uint8 if len(self._groups) <= 256 else np.int32
        self._code_ptr = ptr
        self._row_nid, self._row_gid = raw_nid[by_code], raw_gid[by_code].astype(small)
        del raw_cid, raw_nid, raw_gid, by_code, row_keys
        pref = np.full(len(codes), -1, dtype=np.int32)
        self._preferred_extra: Dict[str, str] = {}
        for code, name in self._given.items():
            if code in codes:
                pref[codes[code]] = strings[name]
            else:
                self._preferred_extra[code] = name
        self._pref_nid = pref
        self._strings, self._codes, self._n_str = strings, codes, n_str
        self._fingerprint: Optional[str] = None
        del self._raw, self._given

    # ------------------------------------------------------------------ ids
    def _name(self, nid: int) -> str:
        return self._strings.restore_key(int(nid))

    def _code(self, cid: int) -> str:
        return self._codes.restore_key(int(cid))

    def _kept_range(self, gid: int) -> Tuple[int, int]:
        lo, hi = np.searchsorted(self._kept_key, [gid * self._n_str, (gid + 1) * self._n_str])
        return int(lo), int(hi)

    def _kept_index(self, gid: int, nid: int) -> int:
        """Index of (group, name) in the kept arrays, or -1."""
        key = gid * self._n_str + nid
        j = int(np.searchsorted(self._kept_key, key))
        return j if j < len(self._kept_key) and self._kept_key[j] == key else -1

    def _rows_of(self, code: str) -> slice:
        cid = self._codes.get(code)
        if cid is None:
            return slice(0, 0)
        return slice(int(self._code_ptr[cid]), int(self._code_ptr[cid + 1]))

    @property
    def name_table(self) -> marisa_trie.Trie:
        """Every name string of the KB (ambiguous and preferred ones included) <-> its id."""
        return self._strings

    def name_ids(self, group: Optional[str] = None) -> np.ndarray:
        """Sorted ids (in :attr:`name_table`) of the unambiguous names of one group, or of all
        groups: :meth:`names` without building the strings."""
        if group is not None:
            if group not in self._groups:
                return np.zeros(0, dtype=np.int64)
            lo, hi = self._kept_range(self._groups.index(group))
            return np.sort(self._kept_key[lo:hi] % self._n_str)
        return np.unique(self._kept_key % self._n_str)

    # ------------------------------------------------------------------ access
    @property
    def groups(self) -> List[str]:
        return list(self._groups)

    @property
    def codes(self) -> Set[str]:
        return set(self._codes.keys())

    def __len__(self) -> int:
        return len(self._codes)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self._codes

    def __repr__(self) -> str:
        return (f"ConceptKB({len(self)} codes, {len(self._kept_key)} "
                f"names, groups={self.groups}, source={self.source!r})")

    def canonical_code(self, code: str) -> str:
        """The main code for an alternative code (``aliases``), else the code itself."""
        return code if code in self else self.aliases.get(code, code)

    def names(self, group: Optional[str] = None) -> List[str]:
        """Sorted unambiguous names of one group, or of all groups (union)."""
        if group is not None:
            if group not in self._groups:
                return []
            lo, hi = self._kept_range(self._groups.index(group))
            nids = self._kept_key[lo:hi] % self._n_str
        else:
            nids = np.unique(self._kept_key % self._n_str)
        return sorted(map(self._strings.restore_key, nids.tolist()))

    def lookup(self, name: str, group: Optional[str] = None) -> Optional[str]:
        """Code of an (unambiguous) name; across all groups if ``group`` is None (then the
        first group in sorted order that has the name wins)."""
        nid = self._strings.get(fast_clean_name(name))
        if nid is None:
            return None
        if group is not None:
            gids = [self._groups.index(group)] if group in self._groups else []
        else:
            gids = range(len(self._groups))
        for gid in gids:
            j = self._kept_index(gid, nid)
            if j >= 0:
                return self._code(self._kept_cid[j])
        return None

    def names_of(self, code: str, group: Optional[str] = None) -> List[str]:
        """Unambiguous names of a code (input order), in one group or all its groups."""
        if group is None:
            out: List[str] = []
            for g in self.groups_of(code):
                out.extend(self.names_of(code, g))
            return list(dict.fromkeys(out))
        if group not in self._groups or code not in self._codes:
            return []
        gid, cid = self._groups.index(group), self._codes[code]
        rows = self._rows_of(code)
        found: Dict[int, int] = {}
        for nid in self._row_nid[rows][self._row_gid[rows] == gid].tolist():
            j = self._kept_index(gid, nid)
            if j >= 0 and self._kept_cid[j] == cid:
                found[nid] = int(self._kept_first[j])
        return [self._name(n) for n in sorted(found, key=found.__getitem__)]

    def synonyms_of(self, code: str) -> List[str]:
        """All names of a code, ambiguous ones included (input order)."""
        nids = dict.fromkeys(self._row_nid[self._rows_of(code)].tolist())
        return [self._name(n) for n in nids]

    def groups_of(self, code: str) -> List[str]:
        gids = np.unique(self._row_gid[self._rows_of(code)])
        return [self._groups[g] for g in gids.tolist()]

    def preferred_name(self, code: str) -> str:
        """The given preferred name, else the code's first name in input order."""
        cid = self._codes.get(code)
        if cid is None:
            raise KeyError(code)
        nid = int(self._pref_nid[cid])
        if nid < 0:
            nid = int(self._row_nid[self._code_ptr[cid]])
        return self._name(nid)

    def definition(self, code: str) -> Optional[str]:
        return self._definitions.get(code)

    def entries(self, group: Optional[str] = None) -> Iterator[Tuple[str, str, str]]:
        """Iterate ``(code, name, group)`` of the unambiguous names (sorted by group, name)."""
        groups = [group] if group is not None else self.groups
        for g in groups:
            if g not in self._groups:
                continue
            lo, hi = self._kept_range(self._groups.index(g))
            pairs = sorted(zip(map(self._strings.restore_key,
                                   (self._kept_key[lo:hi] % self._n_str).tolist()),
                               self._kept_cid[lo:hi].tolist()))
            for name, cid in pairs:
                yield self._code(cid), name, g

    def fingerprint(self) -> str:
        """sha256 over the sorted ``(group, name, code)`` of the unambiguous names."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for code, name, g in self.entries():
                h.update(f"{g}\t{name}\t{code}\n".encode("utf8"))
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    # ------------------------------------------------------------- serialize
    @property
    def _preferred_given(self) -> Dict[str, str]:
        given = {self._code(c): self._name(n) for c, n in enumerate(self._pref_nid.tolist())
                 if n >= 0}
        given.update(self._preferred_extra)
        return given

    def _raw_rows(self) -> Iterator[Tuple[str, str, str]]:
        """The deduplicated input rows ``(code, name, group)``, grouped by code (each code's
        rows in input order: what the preferred name and name orders depend on)."""
        counts = np.diff(self._code_ptr).tolist()
        cids = itertools.chain.from_iterable(itertools.repeat(c, k) for c, k in enumerate(counts))
        for c, n, g in zip(cids, self._row_nid.tolist(), self._row_gid.tolist()):
            yield self._code(c), self._name(n), self._groups[g]

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
        return [{"code": c, "name": n, "group": g} for c, n, g in self._raw_rows()]

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
    def load(cls, path: Union[str, Path], root: Optional[Union[str, Path]] = None,
             ) -> "ConceptKB":
        """Read a folder written by :meth:`to_disk`. A missing file is E192, invalid JSON
        E191/E196 (file and line), a ``kb.jsonl`` that does not give the fingerprint saved in
        ``meta.json`` (truncated or edited) E193. Its files are read as untrusted
        (``spacy_syncabel.guarded``): regular files inside ``root`` (default: the folder
        itself), no link, size-capped (E320-E322)."""
        from ..guarded import check_dir, exists_in

        path = Path(path)
        root = path if root is None else Path(root)
        if root != path:
            check_dir(root, path)
        for name, what in ((_KB_FILE, "no concepts"),
                           (_META_FILE, "without its preferred names, definitions and code "
                                        "aliases")):
            if not exists_in(path, name):
                raise ValueError(Errors.E192.format(path=path, missing=name, what=what))
        meta = read_json(path / _META_FILE, root=root, kind="kb")  # names, definitions
        if not isinstance(meta, dict):
            raise ValueError(Errors.E191.format(path=path / _META_FILE, line=1,
                                                err="expected a JSON object"))
        kb = cls._from_parts(_read_kb_lines(path / _KB_FILE, root), meta)
        expected = meta.get("fingerprint")
        if expected and kb.fingerprint() != expected:
            raise ValueError(Errors.E193.format(
                path=path, problem=f"{len(kb._row_nid)} row(s) give fingerprint "
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
        return srsly.msgpack_dumps({"entries": list(self._raw_rows()), "meta": self._meta()})

    def from_bytes(self, data: bytes, exclude: Iterable[str] = tuple()) -> "ConceptKB":
        msg = srsly.msgpack_loads(data)
        lines = ({"code": c, "name": n, "group": g} for c, n, g in msg["entries"])
        other = type(self)._from_parts(lines, msg["meta"])
        self.__dict__.update(other.__dict__)
        return self


def _read_kb_lines(path: Path, root: Path) -> Iterator[Dict[str, str]]:
    """The rows of a saved ``kb.jsonl``; E191 on invalid JSON, E196 on a malformed row."""
    for lineno, obj in iter_jsonl(path, root=root, kind="kb"):
        if not isinstance(obj, dict) or not all(
                isinstance(obj.get(k), str) for k in ("code", "name", "group")):
            raise ValueError(Errors.E196.format(
                path=path, line=lineno, problem=f"got {str(obj)[:80]!r}"))
        yield obj
