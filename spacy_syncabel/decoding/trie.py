"""Prefix tries over the token ids of KB names, stored as flat CSR arrays.

Each name is stored as the token ids of ``" " + name`` (tokenized on its own, no special
tokens, exactly as the completion is tokenized after the prompt) followed by EOS. With
composite mentions on, a second trie holds the same names as the tokenizer spells them right
after ``<SEP>`` (SynCABEL's composite target is ``" a<SEP>b"``: no blank after the separator);
:class:`CompositeTrie` joins the two.

Layout (one trie over all names; each KB group is a *view* of it):

- nodes are numbered breadth-first with the children of a node sorted by token, so the child
  reached by edge ``j`` is node ``j + 1``: ``child_ptr`` (node -> first edge) and ``child_tok``
  (edge -> token, ``uint16`` when the vocabulary fits) are the whole structure, 6 bytes a node;
- a node's allowed next tokens are one slice of ``child_tok``; a group view keeps the children
  with a name of its group below them: each node has the id of its set of groups
  (``mask_ids``, one byte a node while there are at most 256 distinct sets), a set being one row
  of ``mask_table`` (one bit per group);
- a leaf (the EOS node) maps to its name through two sorted arrays; the names themselves live in
  a ``marisa_trie.Trie`` (compact, memory-mapped after loading).

A node's parent is found by binary search in ``child_ptr``, so a name's token ids are read back
from its leaf (:meth:`TrieSet.tokens_of`): no per-name token lists are kept.
"""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import (TYPE_CHECKING, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import marisa_trie
import numpy as np

from ..errors import Errors, Warnings
from ..prompting import SEP_TOKEN

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB

# the trie's parts, importable from here as before
from .token_trie import (ROOT, CompositeTrie, PackedPtr, SetIds, TokenTrie,  # noqa: F401
                         build_arrays, tokenize_flat, tokenize_names)
from .trie_io import load_trie_set, save_trie_set


class _Sequences(Mapping):
    """``name -> token ids of " " + name`` (no EOS), read back from the trie on demand."""

    def __init__(self, tries: "TrieSet") -> None:
        self._tries = tries

    def __getitem__(self, name: str) -> List[int]:
        tokens = self._tries.tokens_of(name)
        if tokens is None:
            raise KeyError(name)
        return tokens

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._tries.tokens_of(name) is not None

    def __iter__(self) -> Iterator[str]:
        names = self._tries.names
        return (names.restore_key(i) for i in np.nonzero(self._tries.name_leaf >= 0)[0].tolist())

    def items(self) -> Iterator[Tuple[str, List[int]]]:  # type: ignore[override]
        """Every (name, token ids), read back from the arrays in bulk (not name by name)."""
        return self._tries.all_tokens()

    def __len__(self) -> int:
        return int(np.count_nonzero(self._tries.name_leaf >= 0))


class TrieSet:
    """One trie over all KB names (key ``None``) and a view of it per KB group.

    With composite mentions on (:meth:`with_composite`), ``after_sep`` is a second TrieSet
    over the same names, spelled as the tokenizer spells them right after the separator
    ``sep_id``, and every key gives a :class:`CompositeTrie` of the two parts' views.
    """

    def __init__(self, trie: TokenTrie, groups: Sequence[str], mask_ids: SetIds,
                 mask_table: np.ndarray, name_leaf: np.ndarray, meta: Optional[Dict] = None,
                 after_sep: Optional["TrieSet"] = None, sep_id: Optional[int] = None,
                 ) -> None:
        self.trie = trie
        self.groups = list(groups)
        self.mask_ids = mask_ids  # per node: row of mask_table
        self.mask_table = mask_table  # (sets of groups, ceil(groups / 64)) uint64 bits
        self.name_leaf = name_leaf  # name index -> leaf node (-1: collided)
        self.meta = dict(meta or {})
        if (after_sep is None) != (sep_id is None):
            raise ValueError("A composite TrieSet needs both its after-separator part and the "
                             "separator id.")
        self.after_sep = after_sep
        self.sep_id = None if sep_id is None else int(sep_id)
        self.tries: Dict[Optional[str], Union[TokenTrie, CompositeTrie]] = {None: trie}
        for g, group in enumerate(self.groups):
            self.tries[group] = trie.view(mask_ids, mask_table, g)
        if after_sep is not None:
            for key in list(self.tries):
                self.tries[key] = CompositeTrie(self.tries[key], after_sep.tries[key],
                                                self.sep_id)

    @property
    def names(self) -> marisa_trie.Trie:
        return self.trie.names

    @property
    def composite(self) -> bool:
        """Whether a separator may follow a complete name (composite mentions)."""
        return self.after_sep is not None

    @classmethod
    def build(cls, kb: "ConceptKB", tokenizer, sep_token: Optional[str] = None,
              composite: bool = False) -> "TrieSet":
        """The tries of ``kb``'s names; with ``composite``, also the after-separator part
        (only then: it costs about as much memory as the first)."""
        tries = cls._build(kb, tokenizer)
        return tries.with_composite(kb, tokenizer, sep_token or SEP_TOKEN) if composite \
            else tries

    @classmethod
    def _build(cls, kb: "ConceptKB", tokenizer, sep_token: Optional[str] = None,
               table: Optional[marisa_trie.Trie] = None) -> "TrieSet":
        """One part: names spelled ``" " + name``, or right after ``sep_token`` when given.
        ``table``: a name table equal to the KB's to share (the first part's)."""
        eos_id = tokenizer.eos_token_id
        if eos_id is None:
            raise ValueError(Errors.E011)
        groups = kb.groups
        own_table, all_ids, group_ids = _name_ids(kb)
        if table is None or (table is not own_table and table.tobytes() != own_table.tobytes()):
            table = own_table
        for group, ids in zip(groups, group_ids):
            if not len(ids):
                raise ValueError(Errors.E012.format(group=group))
        bits = np.zeros((len(all_ids), max(1, (len(groups) + 63) // 64)), dtype=np.uint64)
        for g, ids in enumerate(group_ids):
            bits[np.searchsorted(all_ids, ids), g // 64] |= np.uint64(1 << (g % 64))
        del group_ids
        names = [table.restore_key(i) for i in all_ids.tolist()]
        # the KB's fingerprint (Python) while the tokenizer (Rust, without the GIL) works
        with ThreadPoolExecutor(max_workers=1) as pool:
            fingerprint = pool.submit(kb.fingerprint)
            tokens, offsets = tokenize_flat(tokenizer, names, sep_token=sep_token)
            kb_fingerprint = fingerprint.result()
        del names
        child_ptr, child_tok, seq_leaf, masks = build_arrays(tokens, offsets, eos_id, bits)
        del tokens, offsets
        leaf_nodes, first, counts = np.unique(seq_leaf, return_index=True, return_counts=True)
        name_leaf = np.full(len(table), -1, dtype=np.int32)
        name_leaf[all_ids] = seq_leaf
        shared = {}
        for leaf in leaf_nodes[counts > 1]:  # several names tokenize the same (rare)
            idx = np.nonzero(seq_leaf == leaf)[0]
            shared[int(leaf)] = [(int(all_ids[i]), _groups_in(bits[i])) for i in idx]
        trie = TokenTrie(child_ptr, child_tok, leaf_nodes.astype(np.int32),
                         all_ids[first].astype(np.int32), table, eos_id,
                         int(len(all_ids) - len(leaf_nodes)), shared_leaves=shared)
        mask_table, mask_ids = group_sets(masks)
        del masks
        meta = {"kb_fingerprint": kb_fingerprint, "vocab_size": len(tokenizer),
                "sep_token": sep_token}
        return cls(trie, groups, mask_ids, mask_table, name_leaf, meta)

    # -- composite mentions -----------------------------------------------------------------
    def single_part(self) -> "TrieSet":
        """These tries without composite mentions (the first part's arrays, shared)."""
        if not self.composite:
            return self
        meta = dict(self.meta, sep_token=None)
        return TrieSet(self.trie, self.groups, self.mask_ids, self.mask_table, self.name_leaf,
                       meta)

    def with_composite(self, kb: "ConceptKB", tokenizer, sep_token: str = SEP_TOKEN
                       ) -> "TrieSet":
        """These tries with composite mentions: the after-separator part is built from
        ``kb`` (the KB these tries were built from) and the first part's arrays are shared.
        W211 when the tokenizer spells a composite completion differently as one string."""
        if self.composite:
            return self
        sep_id = _single_token(tokenizer, sep_token)
        after = TrieSet._build(kb, tokenizer, sep_token, table=self.names)
        meta = dict(self.meta, sep_token=sep_token)
        tries = TrieSet(self.trie, self.groups, self.mask_ids, self.mask_table, self.name_leaf,
                        meta, after_sep=after, sep_id=sep_id)
        tries.check_whole_strings(tokenizer, sep_token)
        return tries

    def fitted(self, composite: bool, kb: "ConceptKB", tokenizer,
               sep_token: str = SEP_TOKEN) -> "TrieSet":
        """These tries with or without composite mentions, as ``composite`` asks."""
        return self.with_composite(kb, tokenizer, sep_token) if composite \
            else self.single_part()

    def check_whole_strings(self, tokenizer, sep_token: str = SEP_TOKEN,
                            n: int = 8) -> int:
        """Compare, on ``n`` pairs of names spread over the KB, the ids the tries spell for
        ``" a<SEP>b"`` with the tokenizer's ids of that whole string; warn (W211) and return
        the number that differ."""
        if not self.composite or len(self.names) < 2:
            return 0
        total = len(self.names)
        ids = sorted({int(i) for i in np.linspace(0, total - 1, num=min(total, n + 1))})
        pairs = [(self.names.restore_key(a), self.names.restore_key(b))
                 for a, b in zip(ids, ids[1:])]
        bad = []
        for a, b in pairs:
            parts, after = self.tokens_of(a), self.after_sep.tokens_of(b)
            if parts is None or after is None:
                continue
            text = " " + a + sep_token + b
            whole = list(tokenizer(text, add_special_tokens=False)["input_ids"])
            spelled = parts + [self.sep_id] + after
            if whole != spelled:
                bad.append((text, whole, spelled))
        if bad:
            text, whole, spelled = bad[0]
            warnings.warn(Warnings.W211.format(n=len(bad), total=len(pairs), text=text,
                                               whole=whole, parts=spelled))
        return len(bad)

    # -- names ------------------------------------------------------------------------------
    def tokens_of(self, name: str) -> Optional[List[int]]:
        """Token ids of ``" " + name`` (no EOS; in an after-separator part, of the name right
        after the separator), or None for a name not in the tries."""
        idx = self.names.get(name)
        if idx is None:
            return None
        leaf = int(self.name_leaf[idx])
        if leaf < 0:
            return None
        return self.trie.path(leaf)[:-1]

    def _climb(self, leaves: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Token ids from many leaves up to the root at once: ``(matrix, lengths)``, row i
        holding leaf i's path (EOS included) right-aligned, -1 before it."""
        ptr = self.trie.ptr.unpack()
        tok = np.asarray(self.trie.child_tok)
        nodes = leaves.astype(np.int64)
        cols: List[np.ndarray] = []
        lengths = np.zeros(len(nodes), dtype=np.int64)
        while len(nodes) and (nodes > 0).any():
            live = nodes > 0
            col = np.full(len(nodes), -1, dtype=np.int64)
            col[live] = tok[nodes[live] - 1]
            cols.append(col)
            lengths += live
            nodes = np.where(live, np.searchsorted(ptr, nodes - 1, side="right") - 1, 0)
        matrix = np.stack(cols[::-1], axis=1) if cols else np.zeros((len(nodes), 0), np.int64)
        return matrix, lengths

    def token_lengths(self) -> np.ndarray:
        """Per name id (index of :attr:`names`): its number of tokens without EOS, -1 for a
        string that is not a name of the tries. One pass over the arrays."""
        out = np.full(len(self.name_leaf), -1, dtype=np.int64)
        ids = np.nonzero(self.name_leaf >= 0)[0]
        for lo in range(0, len(ids), 1 << 17):
            chunk = ids[lo:lo + (1 << 17)]
            out[chunk] = self._climb(self.name_leaf[chunk])[1] - 1
        return out

    def names_longer_than(self, n_tokens: int) -> List[str]:
        """The names whose token ids (EOS excluded) are more than ``n_tokens`` long."""
        ids = np.nonzero(self.token_lengths() > n_tokens)[0]
        return [self.names.restore_key(int(i)) for i in ids]

    def all_tokens(self, chunk: int = 1 << 16) -> Iterator[Tuple[str, List[int]]]:
        """Every ``(name, token ids without EOS)``, in name-id order, read in bulk."""
        ids = np.nonzero(self.name_leaf >= 0)[0]
        for lo in range(0, len(ids), chunk):
            part = ids[lo:lo + chunk]
            matrix, lengths = self._climb(self.name_leaf[part])
            width = matrix.shape[1]
            for i, row, n in zip(part.tolist(), matrix.tolist(), lengths.tolist()):
                yield self.names.restore_key(i), row[width - n:-1]

    @property
    def sequences(self) -> Mapping[str, List[int]]:
        """``name -> token ids`` (kept for callers of the old dict; prefer :meth:`tokens_of`)."""
        return _Sequences(self)

    def restricted(self, names: Sequence[str], group: Optional[str] = None
                   ) -> Union[TokenTrie, CompositeTrie]:
        """A small trie over some names only (a mention's candidates); composite when these
        tries are."""
        first = TokenTrie.from_sequences([self.sequences[n] for n in names], list(names),
                                         self.trie.eos_id)
        if self.after_sep is None:
            return first
        second = TokenTrie.from_sequences([self.after_sep.sequences[n] for n in names],
                                          list(names), self.trie.eos_id)
        return CompositeTrie(first, second, self.sep_id)

    def __getitem__(self, group: Optional[str]) -> Union[TokenTrie, CompositeTrie]:
        return self.tries[group]

    def __contains__(self, group: Optional[str]) -> bool:
        return group in self.tries

    @property
    def nbytes(self) -> int:
        """Bytes of all arrays, both parts (the name strings live in the marisa trie:
        :attr:`names`, shared by the parts)."""
        own = (self.trie.nbytes + self.mask_ids.nbytes + self.mask_table.nbytes
               + self.name_leaf.nbytes)
        return own + (self.after_sep.nbytes if self.after_sep is not None else 0)

    # -- serialization ------------------------------------------------------------------------
    def to_disk(self, path: Union[str, Path]) -> None:
        """Write the arrays (``.npy``, no pickle), the names (marisa) and ``tries.json``."""
        save_trie_set(self, Path(path))

    @classmethod
    def from_disk(cls, path: Union[str, Path], tokenizer=None,
                  kb_fingerprint: Optional[str] = None, mmap: bool = True,
                  names: Optional[marisa_trie.Trie] = None) -> "TrieSet":
        """Load what :meth:`to_disk` wrote, checking every file (E140-E143) and, when given,
        that ``tokenizer`` and the KB (``kb.fingerprint()``) are those the tries were built
        with (E142). ``mmap``: map the arrays instead of reading them. ``names``: a name table
        to share (``kb.name_table``), used when it is byte for byte the saved one."""
        return load_trie_set(cls, Path(path), tokenizer, kb_fingerprint, mmap, names)


def _name_ids(kb) -> Tuple[marisa_trie.Trie, np.ndarray, List[np.ndarray]]:
    """``(table, ids of all names, ids of each group's names)``: the KB's own name table when it
    has one (shared, not copied), else a marisa trie of its names."""
    if isinstance(getattr(kb, "name_table", None), marisa_trie.Trie):
        return kb.name_table, kb.name_ids(), [kb.name_ids(g) for g in kb.groups]
    table = marisa_trie.Trie(kb.names())

    def ids(names: Sequence[str]) -> np.ndarray:
        return np.sort(np.fromiter((table[n] for n in names), dtype=np.int64, count=len(names)))

    return table, ids(kb.names()), [ids(kb.names(g)) for g in kb.groups]


def _single_token(tokenizer, token: str) -> int:
    """The id of ``token``, which must tokenize to itself alone (E210 otherwise)."""
    ids = list(tokenizer(token, add_special_tokens=False)["input_ids"])
    if len(ids) != 1:
        raise ValueError(Errors.E210.format(sep=token, name="", ids=ids, sep_ids=ids))
    return int(ids[0])


def _groups_in(bits: np.ndarray) -> FrozenSet[int]:
    """Group indices whose bit is set in one row of chunked uint64 bitmasks."""
    return frozenset(c * 64 + b for c, word in enumerate(bits.tolist()) for b in range(64)
                     if (word >> b) & 1)


def group_sets(masks: np.ndarray) -> Tuple[np.ndarray, SetIds]:
    """``(table, ids)``: the distinct rows of per-node group bitmasks, most frequent first,
    and each node's row id."""
    if masks.shape[1] == 1:
        table, ids, counts = np.unique(masks[:, 0], return_inverse=True, return_counts=True)
        table = table.reshape(-1, 1)
    else:
        table, ids, counts = np.unique(masks, axis=0, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return table[order].astype(np.uint64), SetIds.pack(rank[ids.reshape(-1)])
