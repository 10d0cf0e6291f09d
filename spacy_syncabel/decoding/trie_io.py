"""Saving and loading a :class:`~spacy_syncabel.decoding.trie.TrieSet` (no pickle).

A tries folder holds ``tries.json`` (format, ids, groups, sizes, a sha256 per file), one ``.npy``
file per array and ``names.marisa``; composite tries add their after-separator part in
``after_sep/`` (the same files but the names, which the parts share), its ``tries.json``
checksummed in the first part's. Saved files are untrusted: every file is checked against
its checksum, every array's dtype, shape and invariants are checked before use (so a walk
always ends: a child's id is greater than its parent's), and the tokenizer and KB the tries are
used with can be checked against the ones they were built with.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Type, TypeVar

import marisa_trie
import numpy as np

from ..errors import Errors
from ..prompting import SEP_TOKEN, after_sep_ids
from .token_trie import PackedPtr, SetIds, TokenTrie, tokenize_names

#: the TrieSet class (``decoding/trie.py``) these functions save and build
TrieSetT = TypeVar("TrieSetT")
FORMAT = 1
META_FILE = "tries.json"
NAMES_FILE = "names.marisa"
AFTER_SEP = "after_sep"  # the after-separator part of composite tries
_N_CHECKED_NAMES = 16  # names re-tokenized on load to check the tokenizer


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_trie_set(tries: Any, path: Path, names: bool = True) -> None:
    """Write ``tries`` to ``path`` (``names``: also the name table; an after-separator part
    shares its first part's)."""
    path.mkdir(parents=True, exist_ok=True)
    trie = tries.trie
    arrays = {"ptr_base": trie.ptr.base, "ptr_delta": trie.ptr.delta,
              "ptr_big": trie.ptr.big_array, "child_tok": trie.child_tok,
              "leaf_nodes": trie.leaf_nodes, "leaf_names": trie.leaf_names,
              "name_leaf": tries.name_leaf, "mask_ids": tries.mask_ids.ids,
              "mask_over": tries.mask_ids.over,
              "mask_table": tries.mask_table}
    digests: Dict[str, str] = {}
    for key, arr in arrays.items():
        np.save(path / f"{key}.npy", np.ascontiguousarray(arr), allow_pickle=False)
        digests[f"{key}.npy"] = sha256(path / f"{key}.npy")
    if names:
        tries.names.save(str(path / NAMES_FILE))
        digests[NAMES_FILE] = sha256(path / NAMES_FILE)
    else:
        (path / NAMES_FILE).unlink(missing_ok=True)
    extra: Dict[str, Any] = {}
    if tries.after_sep is not None:
        save_trie_set(tries.after_sep, path / AFTER_SEP, names=False)
        digests[f"{AFTER_SEP}/{META_FILE}"] = sha256(path / AFTER_SEP / META_FILE)
        extra = {AFTER_SEP: AFTER_SEP}
    elif (path / AFTER_SEP).is_dir():  # a composite save overwritten by a single-part one
        import shutil

        shutil.rmtree(path / AFTER_SEP)
    if not names:
        extra["names_sha256"] = hashlib.sha256(tries.names.tobytes()).hexdigest()
    meta = dict(tries.meta, **extra, format=FORMAT, eos_id=trie.eos_id, sep_id=tries.sep_id,
                groups=tries.groups, n_nodes=len(trie.ptr) - 1, n_names=len(tries.names),
                collisions=trie.collisions,
                shared_leaves=[[leaf, [[i, sorted(gs)] for i, gs in entries]]
                               for leaf, entries in sorted(trie.shared_leaves.items())],
                sha256=digests)
    (path / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _int(meta: Dict[str, Any], key: str, path: Path, optional: bool = False) -> Optional[int]:
    value = meta.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(Errors.E141.format(path=path, problem=f"'{key}' is not a count/id"))
    return value


def _read_meta(path: Path) -> Dict[str, Any]:
    from ..guarded import exists_in
    from ..textio import read_json

    meta_path = path / META_FILE
    if not exists_in(path, META_FILE):
        raise ValueError(Errors.E140.format(path=path, problem=f"no {META_FILE}"))
    try:
        meta = read_json(meta_path, root=path, kind="json")
    except ValueError as err:
        if "[E191]" not in str(err) and "[E190]" not in str(err):
            raise  # a link, a device, too large or too deep: its own code
        raise ValueError(Errors.E141.format(path=meta_path, problem=str(err))) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(Errors.E141.format(
            path=meta_path, problem=f"not a tries.json of format {FORMAT}"))
    for key in ("eos_id", "n_nodes", "n_names", "collisions", "vocab_size"):
        _int(meta, key, meta_path)
    _int(meta, "sep_id", meta_path, optional=True)
    groups, digests = meta.get("groups"), meta.get("sha256")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups) \
            or len(set(groups)) != len(groups):
        raise ValueError(Errors.E141.format(path=meta_path, problem="'groups' is not a list "
                                                                    "of distinct strings"))
    if not isinstance(digests, dict) or not all(isinstance(v, str) for v in digests.values()):
        raise ValueError(Errors.E141.format(path=meta_path, problem="'sha256' is not a map"))
    if not isinstance(meta.get("shared_leaves", []), list):
        raise ValueError(Errors.E141.format(path=meta_path, problem="'shared_leaves'"))
    return meta


def _checked_file(path: Path, name: str, digests: Dict[str, str]) -> Path:
    from ..guarded import check_file, exists_in

    p = path / name
    if not exists_in(path, name):
        raise ValueError(Errors.E140.format(path=path, problem=f"no {name}"))
    check_file(path, name, "tries")  # a regular file inside the folder, no link
    if digests.get(name) != sha256(p):
        raise ValueError(Errors.E143.format(path=p))
    return p


def _load_array(path: Path, key: str, digests: Dict[str, str], dtypes, ndim: int,
                mmap: bool) -> np.ndarray:
    p = _checked_file(path, f"{key}.npy", digests)
    try:
        arr = np.load(p, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(Errors.E141.format(path=p, problem=str(err))) from None
    if not isinstance(arr, np.ndarray) or arr.dtype not in dtypes or arr.ndim != ndim:
        raise ValueError(Errors.E141.format(
            path=p, problem=f"expected a {ndim}-D array of {[np.dtype(d).name for d in dtypes]}"))
    return arr


def _require(ok: bool, path: Path, key: str, problem: str) -> None:
    if not ok:
        raise ValueError(Errors.E141.format(path=path / f"{key}.npy", problem=problem))


def _check_arrays(path: Path, meta: Dict[str, Any], a: Dict[str, np.ndarray]) -> None:
    n_nodes, n_names, eos_id = meta["n_nodes"], meta["n_names"], meta["eos_id"]
    base, delta, big = a["ptr_base"], a["ptr_delta"], a["ptr_big"]
    block = PackedPtr.BLOCK
    _require(len(delta) == n_nodes + 1 and len(base) == (len(delta) + block - 1) // block
             and big.shape[0] == 2, path, "ptr_delta", "wrong length")
    starts = delta[::block]
    _require(bool(np.all((starts == 0) | (starts == PackedPtr.BIG)))
             and np.array_equal(np.nonzero(delta == PackedPtr.BIG)[0], big[0]), path,
             "ptr_delta", "offsets do not match their bases")
    ptr, tok = PackedPtr(base, delta, big).unpack(), a["child_tok"]
    _require(n_nodes >= 1 and len(ptr) == n_nodes + 1 and int(ptr[0]) == 0
             and int(ptr[-1]) == n_nodes - 1, path, "ptr_delta", "wrong length or bounds")
    _require(bool(np.all(ptr[1:] >= ptr[:-1])), path, "ptr_delta", "not non-decreasing")
    # breadth-first numbering: a node's children have larger ids, so every walk ends
    _require(bool(np.all(ptr[:-1] >= np.arange(n_nodes, dtype=np.int64))), path, "ptr_delta",
             "a child's id is not greater than its parent's")
    _require(len(tok) == n_nodes - 1, path, "child_tok", "length is not n_nodes - 1")
    if len(tok):
        _require(int(tok.max()) < meta["vocab_size"], path, "child_tok",
                 "a token id is outside the vocabulary")
        first = np.zeros(len(tok), dtype=bool)
        starts = ptr[:-1][ptr[:-1] < ptr[1:]]
        first[starts] = True
        rising = np.diff(tok.astype(np.int64)) > 0
        _require(bool(np.all(rising | first[1:])), path, "child_tok",
                 "the children of a node are not sorted by token")
    leaves, leaf_names, name_leaf = a["leaf_nodes"], a["leaf_names"], a["name_leaf"]
    _require(len(leaves) == len(leaf_names) and len(name_leaf) == n_names, path, "leaf_nodes",
             "leaf arrays do not match the number of names")
    if len(leaves):
        _require(int(leaves[0]) >= 1 and int(leaves[-1]) < n_nodes
                 and bool(np.all(np.diff(leaves.astype(np.int64)) > 0)), path, "leaf_nodes",
                 "not sorted node ids")
        _require(bool(np.all(tok[leaves.astype(np.int64) - 1] == eos_id)), path, "leaf_nodes",
                 "a leaf is not reached by EOS")
        _require(int(leaf_names.min()) >= 0 and int(leaf_names.max()) < n_names, path,
                 "leaf_names", "a name index is out of range")
    if len(name_leaf):
        _require(int(name_leaf.min()) >= -1 and int(name_leaf.max()) < n_nodes, path,
                 "name_leaf", "a node id is out of range")
        named = name_leaf[name_leaf >= 0].astype(np.int64)
        _require(bool(np.all(np.isin(named, leaves))), path, "name_leaf",
                 "a name points to a node that is not a leaf")
    small, over, table = a["mask_ids"], a["mask_over"], a["mask_table"]
    _require(over.shape[0] == 2 and len(small) == n_nodes
             and np.array_equal(np.nonzero(small == SetIds.OVER)[0], over[0]), path,
             "mask_over", "the listed nodes are not those marked in mask_ids")
    ids = SetIds(small, over).full()
    n_chunks = max(1, (len(meta["groups"]) + 63) // 64)
    _require(table.ndim == 2 and table.shape[1] == n_chunks and len(table) >= 1, path,
             "mask_table", f"expected {n_chunks} column(s)")
    _require(len(ids) == n_nodes and int(ids.min()) >= 0 and int(ids.max()) < len(table), path,
             "mask_ids", "wrong length or a set id out of range")


def _shared_leaves(path: Path, meta: Dict[str, Any], leaves: np.ndarray):
    out = {}
    n_groups, n_names = len(meta["groups"]), meta["n_names"]
    for item in meta.get("shared_leaves", []):
        try:
            leaf, entries = int(item[0]), [(int(i), frozenset(int(g) for g in gs))
                                           for i, gs in item[1]]
        except (TypeError, ValueError, IndexError):
            raise ValueError(Errors.E141.format(path=path / META_FILE,
                                                problem="bad 'shared_leaves' entry")) from None
        if leaf not in leaves or any(not 0 <= i < n_names or any(not 0 <= g < n_groups
                                                                 for g in gs)
                                     for i, gs in entries):
            raise ValueError(Errors.E141.format(path=path / META_FILE,
                                                problem="'shared_leaves' out of range"))
        out[leaf] = entries
    return out


def load_trie_set(cls: Type[TrieSetT], path: Path, tokenizer=None,
                  kb_fingerprint: Optional[str] = None, mmap: bool = True,
                  names: Optional[marisa_trie.Trie] = None) -> TrieSetT:
    meta, arrays = _load_arrays(path, mmap)
    digests = meta["sha256"]
    names_path = _checked_file(path, NAMES_FILE, digests)
    if names is None or hashlib.sha256(names.tobytes()).hexdigest() != digests[NAMES_FILE]:
        names = marisa_trie.Trie()  # not the given table (e.g. the KB's): read the file
        try:
            names.mmap(str(names_path)) if mmap else names.load(str(names_path))
        except Exception as err:  # marisa raises plain Exceptions on bad files
            raise ValueError(Errors.E141.format(path=names_path, problem=str(err))) from None
    if len(names) != meta["n_names"]:
        raise ValueError(Errors.E141.format(path=names_path, problem="wrong number of names"))
    after, sep_id = None, None
    if meta.get(AFTER_SEP) is not None:
        after = _load_after_sep(cls, path, meta, names, mmap)
        sep_id = meta["sep_id"]
        if sep_id is None:
            raise ValueError(Errors.E141.format(path=path / META_FILE,
                                                problem="composite tries without 'sep_id'"))
    keep = {k: meta[k] for k in ("kb_fingerprint", "vocab_size", "sep_token") if k in meta}
    if after is None and meta.get("sep_id") is not None:
        # saved before the after-separator part existed: the separator restarted at the root
        keep["legacy_composite"] = True
    tries = _trie_set(cls, path, meta, arrays, names, keep, after, sep_id)
    if kb_fingerprint is not None and meta.get("kb_fingerprint") != kb_fingerprint:
        raise ValueError(Errors.E142.format(path=path, what="KB",
                                            found=str(meta.get("kb_fingerprint"))[:12],
                                            expected=kb_fingerprint[:12]))
    if tokenizer is not None:
        check_tokenizer(tries, tokenizer, path)
    return tries


def _load_arrays(path: Path, mmap: bool):
    """``(meta, arrays)`` of one part, every file checked."""
    if not path.is_dir():
        raise ValueError(Errors.E140.format(path=path, problem="not a folder"))
    meta = _read_meta(path)
    digests = meta["sha256"]
    ints = (np.int32, np.int64)
    arrays = {
        "ptr_base": _load_array(path, "ptr_base", digests, ints, 1, mmap),
        "ptr_delta": _load_array(path, "ptr_delta", digests, (np.uint16,), 1, mmap),
        "ptr_big": _load_array(path, "ptr_big", digests, (np.int64,), 2, False),
        "child_tok": _load_array(path, "child_tok", digests, (np.uint16, np.int32), 1, mmap),
        "leaf_nodes": _load_array(path, "leaf_nodes", digests, (np.int32,), 1, mmap),
        "leaf_names": _load_array(path, "leaf_names", digests, (np.int32,), 1, mmap),
        "name_leaf": _load_array(path, "name_leaf", digests, (np.int32,), 1, mmap),
        "mask_ids": _load_array(path, "mask_ids", digests, (np.uint8,), 1, mmap),
        "mask_over": _load_array(path, "mask_over", digests, (np.int64,), 2, False),
        "mask_table": _load_array(path, "mask_table", digests, (np.uint64,), 2, False),
    }
    _check_arrays(path, meta, arrays)
    return meta, arrays


def _trie_set(cls: Type[TrieSetT], path: Path, meta: Dict[str, Any],
              arrays: Dict[str, np.ndarray], names, keep: Dict[str, Any], after=None,
              sep_id: Optional[int] = None) -> TrieSetT:
    shared = _shared_leaves(path, meta, set(arrays["leaf_nodes"].tolist())
                            if meta.get("shared_leaves") else set())
    packed = PackedPtr(arrays["ptr_base"], arrays["ptr_delta"], arrays["ptr_big"])
    trie = TokenTrie(packed, arrays["child_tok"], arrays["leaf_nodes"],
                     arrays["leaf_names"], names, meta["eos_id"], meta["collisions"],
                     shared_leaves=shared)
    return cls(trie, meta["groups"], SetIds(arrays["mask_ids"], arrays["mask_over"]),
               arrays["mask_table"], arrays["name_leaf"], keep, after, sep_id)


def _load_after_sep(cls: Type[TrieSetT], path: Path, meta: Dict[str, Any], names,
                    mmap: bool) -> TrieSetT:
    """The after-separator part saved in ``path/after_sep``: checked against its checksum
    in the first part's tries.json, and against the first part (E211)."""
    folder = path / AFTER_SEP
    if meta[AFTER_SEP] != AFTER_SEP:
        raise ValueError(Errors.E141.format(path=path / META_FILE, problem=f"'{AFTER_SEP}'"))
    _checked_file(path, f"{AFTER_SEP}/{META_FILE}", meta["sha256"])
    sub, arrays = _load_arrays(folder, mmap)
    problems = [what for what, ok in (
        ("other names", sub.get("names_sha256") == meta["sha256"].get(NAMES_FILE)),
        ("other groups", sub["groups"] == meta["groups"]),
        ("another EOS", sub["eos_id"] == meta["eos_id"]),
        ("another KB", sub.get("kb_fingerprint") == meta.get("kb_fingerprint")),
        ("another vocabulary", sub["vocab_size"] == meta["vocab_size"]),
        ("another separator", sub.get("sep_token") == meta.get("sep_token")),
        ("a nested part", sub.get(AFTER_SEP) is None)) if not ok]
    if problems:
        raise ValueError(Errors.E211.format(path=folder, problem=", ".join(problems)))
    keep = {k: sub[k] for k in ("kb_fingerprint", "vocab_size", "sep_token") if k in sub}
    return _trie_set(cls, folder, sub, arrays, names, keep)


def check_tokenizer(tries: Any, tokenizer, path: Path) -> None:
    """The tokenizer's EOS, separator and vocabulary size, and the tokens of a spread of
    names (in both parts of composite tries), must be those the tries were built with."""
    trie = tries.trie
    found = {"EOS id": tokenizer.eos_token_id, "vocabulary size": len(tokenizer)}
    expected = {"EOS id": trie.eos_id, "vocabulary size": tries.meta.get("vocab_size")}
    sep_token = tries.meta.get("sep_token")
    if tries.sep_id is not None and sep_token is not None:
        found["separator id"] = tokenizer.convert_tokens_to_ids(sep_token)
        expected["separator id"] = tries.sep_id
    for what, value in found.items():
        if value != expected[what]:
            raise ValueError(Errors.E142.format(path=path, what=f"tokenizer ({what})",
                                                found=value, expected=expected[what]))
    n = len(tries.names)
    ids = sorted({int(i) for i in np.linspace(0, n - 1, num=min(n, _N_CHECKED_NAMES))})
    names: List[str] = [tries.names.restore_key(i) for i in ids]
    parts = [(tries, tokenize_names(tokenizer, names), "tokens of")]
    if tries.after_sep is not None:
        sep_token = sep_token or SEP_TOKEN
        parts.append((tries.after_sep, after_sep_ids(tokenizer, names, sep_token),
                      f"tokens after {sep_token} of"))
    for part, spelled, what in parts:
        for name, toks in zip(names, spelled):
            stored = part.tokens_of(name)
            if stored is not None and stored != toks:
                raise ValueError(Errors.E142.format(path=path,
                                                    what=f"tokenizer ({what} {name!r})",
                                                    found=toks[:8], expected=stored[:8]))
