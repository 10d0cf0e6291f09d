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
from itertools import chain
from pathlib import Path
from typing import (TYPE_CHECKING, Callable, Dict, FrozenSet, Iterable, Iterator, List, Mapping,
                    Optional, Sequence, Tuple, Union)

import marisa_trie
import numpy as np

from ..errors import Errors, Warnings
from ..prompting import SEP_TOKEN, after_sep_ids, strip_sep

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB

ROOT = 0
_TOKENIZE_CHUNK = 65536
_WIDE = 512  # nodes with at least this many children keep their allowed tokens


def _token_dtype(max_token: int):
    return np.uint16 if max_token < 2 ** 16 else np.int32


def build_arrays(tokens: np.ndarray, offsets: np.ndarray, eos_id: int,
                 group_bits: Optional[np.ndarray] = None):
    """Trie arrays for sequences ``tokens[offsets[i]:offsets[i + 1]]`` (EOS is appended).

    Returns ``(child_ptr, child_tok, seq_leaf, masks)``: the CSR arrays (breadth-first node
    order), the leaf node of each sequence and, when ``group_bits`` (one uint64 bitmask per
    sequence and 64-group chunk, shape ``(n, chunks)``) is given, the OR of the bits of the
    sequences through each node (shape ``(n_nodes, chunks)``).
    """
    n = len(offsets) - 1
    lengths = np.diff(offsets).astype(np.int64) + 1  # + EOS
    starts = offsets[:-1].astype(np.int64)
    max_tok = max(int(tokens.max()) if len(tokens) else 0, eos_id)
    width = np.int64(max_tok + 1)
    node = np.zeros(n, dtype=np.int64)
    alive = np.arange(n, dtype=np.int64)
    parents: List[np.ndarray] = []
    toks: List[np.ndarray] = []
    level_masks: List[np.ndarray] = []
    next_id = 1
    depth = 0
    while len(alive):
        ending = lengths[alive] == depth + 1
        tok = np.empty(len(alive), dtype=np.int64)
        tok[ending] = eos_id
        inner = ~ending
        tok[inner] = tokens[starts[alive[inner]] + depth]
        key = node[alive] * width + tok
        uniq, inv = np.unique(key, return_inverse=True)
        parents.append(uniq // width)
        toks.append(uniq % width)
        if group_bits is not None:
            m = np.zeros((len(uniq), group_bits.shape[1]), dtype=np.uint64)
            np.bitwise_or.at(m, inv, group_bits[alive])
            level_masks.append(m)
        node[alive] = next_id + inv
        next_id += len(uniq)
        alive = alive[inner]
        depth += 1
    parent = np.concatenate(parents) if parents else np.zeros(0, dtype=np.int64)
    counts = np.bincount(parent, minlength=next_id)
    ptr_dtype = np.int32 if next_id < 2 ** 31 - 1 else np.int64
    child_ptr = np.zeros(next_id + 1, dtype=ptr_dtype)
    np.cumsum(counts, out=child_ptr[1:])
    child_tok = (np.concatenate(toks) if toks else np.zeros(0, np.int64)).astype(
        _token_dtype(max_tok))
    masks = None
    if group_bits is not None:
        root = np.bitwise_or.reduce(group_bits, axis=0, keepdims=True) if n else \
            np.zeros((1, group_bits.shape[1]), dtype=np.uint64)
        masks = np.concatenate([root] + level_masks)
    return child_ptr, child_tok, node, masks


def tokenize_names(tokenizer, names: Sequence[str]) -> List[List[int]]:
    """Token ids of ``" " + name`` for each name, without special tokens."""
    if not names:
        return []
    enc = tokenizer([" " + n for n in names], add_special_tokens=False)
    return [list(ids) for ids in enc["input_ids"]]


def _batch_encoder(tokenizer, probe: Sequence[str], sep_token: Optional[str] = None,
                   ) -> Callable[[Sequence[str]], List[List[int]]]:
    """The fastest way to get :func:`tokenize_names`'s ids (with ``sep_token``:
    :func:`~spacy_syncabel.prompting.after_sep_ids`'s): the Rust tokenizer of a fast tokenizer
    (no Python objects per token), if it gives the same ids on ``probe``."""
    if sep_token is None:
        def slow(names: Sequence[str]) -> List[List[int]]:
            return tokenize_names(tokenizer, names)
    else:
        def slow(names: Sequence[str]) -> List[List[int]]:
            return after_sep_ids(tokenizer, names, sep_token)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    encode = getattr(backend, "encode_batch_fast", getattr(backend, "encode_batch", None))
    if encode is None:
        return slow
    if sep_token is None:
        def fast(names: Sequence[str]) -> List[List[int]]:
            return [e.ids for e in encode([" " + n for n in names], add_special_tokens=False)]
    else:
        sep_ids = encode([sep_token], add_special_tokens=False)[0].ids

        def fast(names: Sequence[str]) -> List[List[int]]:
            enc = encode([sep_token + n for n in names], add_special_tokens=False)
            return [strip_sep(sep_ids, e.ids, n, sep_token) for e, n in zip(enc, names)]
    try:
        same = fast(probe) == slow(probe)
    except Exception:  # an unusual backend: keep the reference path
        same = False
    return fast if same else slow


def tokenize_flat(tokenizer, names: Sequence[str], chunk: int = _TOKENIZE_CHUNK,
                  sep_token: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Token ids of ``" " + name`` (with ``sep_token``: of the name right after the separator)
    for each name as one flat int64 array + offsets, tokenized in batches (a fast tokenizer
    encodes a batch in parallel; no per-name lists are kept)."""
    encode = _batch_encoder(tokenizer, names[:32], sep_token)
    parts: List[np.ndarray] = []
    lengths: List[np.ndarray] = []
    for lo in range(0, len(names), chunk):
        ids = encode(names[lo:lo + chunk])
        lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        parts.append(np.fromiter(chain.from_iterable(ids), dtype=np.int64,
                                 count=int(lens.sum())))
        lengths.append(lens)
    offsets = np.zeros(len(names) + 1, dtype=np.int64)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
    tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return tokens, offsets


def _flatten(sequences: Sequence[Sequence[int]]) -> Tuple[np.ndarray, np.ndarray]:
    lens = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    tokens = np.fromiter((t for s in sequences for t in s), dtype=np.int64,
                         count=int(offsets[-1]))
    return tokens, offsets


class PackedPtr:
    """``child_ptr`` in about 2 bytes a node: an int every 64 nodes plus a uint16 offset from
    it (the few offsets that do not fit, near a root with thousands of children, kept apart).
    """

    BLOCK = 64
    BIG = 2 ** 16 - 1

    def __init__(self, base: np.ndarray, delta: np.ndarray, big: np.ndarray) -> None:
        self.base = base  # ptr[i * BLOCK]
        self.delta = delta  # ptr[i] - base[i // BLOCK], or BIG
        self.big = {int(i): int(v) for i, v in zip(big[0].tolist(), big[1].tolist())}
        self.big_array = big  # (2, k): node ids, exact values

    @classmethod
    def pack(cls, ptr: np.ndarray) -> "PackedPtr":
        ptr = np.asarray(ptr, dtype=np.int64)
        base = ptr[::cls.BLOCK].copy()
        delta = ptr - np.repeat(base, cls.BLOCK)[:len(ptr)]
        over = np.nonzero(delta >= cls.BIG)[0]
        big = np.stack([over, ptr[over]]).astype(np.int64)
        base_dtype = np.int32 if len(ptr) and ptr[-1] < 2 ** 31 else np.int64
        return cls(base.astype(base_dtype), np.minimum(delta, cls.BIG).astype(np.uint16), big)

    def unpack(self) -> np.ndarray:
        """The full int64 array (for bulk work: validation, benchmarks)."""
        ptr = np.repeat(np.asarray(self.base, dtype=np.int64), self.BLOCK)[:len(self.delta)]
        ptr += self.delta
        ptr[self.big_array[0]] = self.big_array[1]
        return ptr

    def __len__(self) -> int:
        return len(self.delta)

    def __getitem__(self, i: int) -> int:
        d = int(self.delta[i])
        if d == self.BIG:
            return self.big[int(i)]
        return int(self.base[i // self.BLOCK]) + d

    def owner(self, edge: int) -> int:
        """The node whose children include ``edge`` (the parent of node ``edge + 1``)."""
        k = int(np.searchsorted(self.base, edge, side="right")) - 1
        lo = k * self.BLOCK
        hi = min(lo + self.BLOCK, len(self.delta))
        vals = self.delta[lo:hi].astype(np.int64) + int(self.base[k])
        for i in np.nonzero(self.delta[lo:hi] == self.BIG)[0].tolist():
            vals[i] = self.big[lo + i]
        return lo + int(np.searchsorted(vals, edge, side="right")) - 1

    @property
    def nbytes(self) -> int:
        return self.base.nbytes + self.delta.nbytes + self.big_array.nbytes


class SetIds:
    """Per node, the id of its set of groups in one byte: ids are given by frequency, and the
    nodes of the rare sets past the 255th (near the root, where names of many groups meet)
    hold 255 and are listed apart."""

    OVER = 255

    def __init__(self, ids: np.ndarray, over: np.ndarray) -> None:
        self.ids = ids  # uint8
        self.over = over  # (2, k) int64: node ids (sorted), set ids

    @classmethod
    def pack(cls, ids: np.ndarray) -> "SetIds":
        small = np.minimum(ids, cls.OVER).astype(np.uint8)
        nodes = np.nonzero(ids >= cls.OVER)[0]
        return cls(small, np.stack([nodes, ids[nodes]]).astype(np.int64))

    def full(self) -> np.ndarray:
        out = self.ids.astype(np.int64)
        out[self.over[0]] = self.over[1]
        return out

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, key):
        if isinstance(key, slice):
            out = self.ids[key].astype(np.int64)
            pos = np.nonzero(out == self.OVER)[0]
            if len(pos):
                nodes = pos + (key.start or 0)
                out[pos] = self.over[1][np.searchsorted(self.over[0], nodes)]
            return out
        i = int(self.ids[key])
        if i == self.OVER:
            return int(self.over[1][np.searchsorted(self.over[0], key)])
        return i

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.over.nbytes


class TokenTrie:
    """A token-id trie over names; node 0 is the root.

    ``mask_ids``/``member`` make the trie a view of one group in a shared trie: node ``i``
    exists in it when ``member[mask_ids[i]]``. Composite mentions: :class:`CompositeTrie`.
    """

    def __init__(self, child_ptr: Union[np.ndarray, PackedPtr], child_tok: np.ndarray,
                 leaf_nodes: np.ndarray,
                 leaf_names: np.ndarray, names, eos_id: int, collisions: int = 0,
                 mask_ids: Optional[SetIds] = None,
                 member: Optional[np.ndarray] = None, group_index: Optional[int] = None,
                 shared_leaves: Optional[Dict[int, List[Tuple[int, FrozenSet[int]]]]] = None
                 ) -> None:
        self.ptr = child_ptr if isinstance(child_ptr, PackedPtr) else PackedPtr.pack(child_ptr)
        self.child_tok = child_tok
        self.leaf_nodes = leaf_nodes  # sorted leaf (EOS) node ids
        self.leaf_names = leaf_names  # name index of each leaf, into ``names``
        self.names = names  # list of str or marisa_trie.Trie (index = key id)
        self.eos_id = int(eos_id)
        self.collisions = collisions
        self.mask_ids = mask_ids  # per node: id of its set of groups
        self.member = member  # per set of groups: is this view's group in it (None: all nodes)
        self.group_index = group_index
        # leaf -> [(name index, group indices)] for leaves several names tokenize to (rare)
        self.shared_leaves = shared_leaves or {}
        self._max_tok = int(np.iinfo(child_tok.dtype).max)
        self._wide: Dict[int, np.ndarray] = {}  # allowed tokens of nodes with many children
        self._n_nodes: Optional[int] = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]], names: Sequence[str],
                       eos_id: int) -> "TokenTrie":
        """Build from token sequences (without EOS); ``names[i]`` is the name of sequence i.
        When two sequences are equal the first one keeps the leaf (``collisions`` counts the
        others)."""
        tokens, offsets = _flatten(sequences)
        child_ptr, child_tok, seq_leaf, _ = build_arrays(tokens, offsets, eos_id)
        leaf_nodes, first = np.unique(seq_leaf, return_index=True)
        return cls(child_ptr, child_tok, leaf_nodes.astype(np.int32), first.astype(np.int32),
                   list(names), eos_id, len(sequences) - len(leaf_nodes))

    def view(self, mask_ids: SetIds, mask_table: np.ndarray, group_index: int
             ) -> "TokenTrie":
        """The same arrays seen through group ``group_index`` (its bit in ``mask_table``)."""
        member = ((mask_table[:, group_index // 64] >> np.uint64(group_index % 64))
                  & np.uint64(1)).astype(bool)
        return TokenTrie(self.ptr, self.child_tok, self.leaf_nodes, self.leaf_names,
                         self.names, self.eos_id, self.collisions, mask_ids,
                         member, group_index, self.shared_leaves)

    # -- queries --------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        if self._n_nodes is None:
            self._n_nodes = (len(self.ptr) - 1 if self.member is None
                             else int(np.count_nonzero(self.member[self.mask_ids.full()])))
        return self._n_nodes

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (shared by the group views of one trie)."""
        return self.ptr.nbytes + sum(a.nbytes for a in (self.child_tok, self.leaf_nodes,
                                                        self.leaf_names))

    @property
    def child_ptr(self) -> np.ndarray:
        """node -> first edge, as one full array (built on each call: for bulk work only)."""
        return self.ptr.unpack()

    def _has(self, node: int) -> bool:
        return self.member is None or bool(self.member[self.mask_ids[node]])

    def _children(self, node: int) -> Tuple[int, int, np.ndarray]:
        lo, hi = self.ptr[node], self.ptr[node + 1]
        return lo, hi, self.child_tok[lo:hi]

    def is_end(self, node: int) -> bool:
        """Whether a name of this trie is complete at ``node`` (EOS may follow)."""
        return self.step(node, self.eos_id) >= 0

    def allowed(self, node: int) -> np.ndarray:
        """Token ids allowed after ``node`` (never empty for a non-leaf node; read-only).
        The answers of the few nodes with thousands of children (the root) are kept, so a
        step costs the same in a 100k- and a 1M-name trie."""
        wide = self._wide.get(node)
        if wide is not None:
            return wide
        lo, hi, toks = self._children(node)
        if hi - lo >= _WIDE:
            toks = self._allowed(node, lo, hi, toks)
            toks.flags.writeable = False
            self._wide[node] = toks
            return toks
        return self._allowed(node, lo, hi, toks)

    def _allowed(self, node: int, lo: int, hi: int, toks: np.ndarray) -> np.ndarray:
        if self.member is not None:
            toks = toks[self.member[self.mask_ids[lo + 1:hi + 1]]]
        return toks

    def step(self, node: int, token: int) -> int:
        """The node reached from ``node`` by ``token``, or -1 when not allowed."""
        if not 0 <= token <= self._max_tok or node < 0:
            return -1
        lo, hi, toks = self._children(node)
        j = lo + int(np.searchsorted(toks, token))
        if j < hi and self.child_tok[j] == token and self._has(j + 1):
            return j + 1
        return -1

    def walk(self, tokens: Iterable[int], node: int = ROOT) -> int:
        for t in tokens:
            node = self.step(node, int(t))
            if node < 0:
                return -1
        return node

    def parent(self, node: int) -> int:
        """The parent of a non-root node (binary search in ``child_ptr``)."""
        return self.ptr.owner(node - 1)

    def path(self, node: int) -> List[int]:
        """Token ids from the root to ``node``."""
        out: List[int] = []
        while node > ROOT:
            out.append(int(self.child_tok[node - 1]))
            node = self.parent(node)
        return out[::-1]

    def leaf_name(self, node: int) -> Optional[int]:
        """Name index of a leaf node of this trie, or None."""
        if node < 0 or not self._has(node):
            return None
        k = int(np.searchsorted(self.leaf_nodes, node))
        if k == len(self.leaf_nodes) or self.leaf_nodes[k] != node:
            return None
        if self.group_index is not None and node in self.shared_leaves:
            for name_idx, groups in self.shared_leaves[node]:
                if self.group_index in groups:
                    return name_idx
        return int(self.leaf_names[k])

    def _name(self, idx: int) -> str:
        names = self.names
        return names.restore_key(idx) if isinstance(names, marisa_trie.Trie) else names[idx]

    def name_of(self, tokens: Sequence[int]) -> Optional[str]:
        """The name spelled by ``tokens`` (ending with EOS), or None."""
        idx = self.leaf_name(self.walk(tokens))
        return None if idx is None else self._name(idx)

    def names_of(self, tokens: Sequence[int]) -> Optional[List[str]]:
        """``[name]`` spelled by a completion (EOS optional), or None."""
        name = self.name_of([t for t in tokens if t != self.eos_id] + [self.eos_id])
        return None if name is None else [name]


class CompositeTrie:
    """Composite mentions, ``" a<SEP>b<SEP>c"``: names of ``first`` (spelled ``" " + name``),
    then, after the separator, names of ``second`` (the same names spelled as the tokenizer
    spells them right after ``<SEP>``), as many as the model writes.

    Offers :class:`TokenTrie`'s decoding interface over one node space: node ``n`` is node
    ``n`` of ``first`` below ``offset`` (its number of nodes), else node ``n - offset`` of
    ``second``. After a complete name (of either part), ``sep_id`` leads to ``second``'s root.
    """

    def __init__(self, first: TokenTrie, second: TokenTrie, sep_id: int) -> None:
        self.first, self.second, self.sep_id = first, second, int(sep_id)
        self.eos_id = first.eos_id
        self.offset = len(first.ptr) - 1

    def _part(self, node: int) -> Tuple[TokenTrie, int]:
        return (self.first, node) if node < self.offset else (self.second, node - self.offset)

    @property
    def n_nodes(self) -> int:
        return self.first.n_nodes + self.second.n_nodes

    @property
    def nbytes(self) -> int:
        return self.first.nbytes + self.second.nbytes

    def is_end(self, node: int) -> bool:
        trie, n = self._part(node)
        return trie.is_end(n)

    def allowed(self, node: int) -> np.ndarray:
        """Token ids allowed after ``node``: its part's, plus the separator after a name."""
        trie, n = self._part(node)
        toks = trie.allowed(n)
        return np.append(toks, self.sep_id) if trie.is_end(n) else toks

    def step(self, node: int, token: int) -> int:
        """The node reached from ``node`` by ``token``, or -1 when not allowed."""
        if node < 0:
            return -1
        trie, n = self._part(node)
        if token == self.sep_id:
            return self.offset + ROOT if trie.is_end(n) else -1
        nxt = trie.step(n, token)
        if nxt < 0 or trie is self.first:
            return nxt
        return nxt + self.offset

    def walk(self, tokens: Iterable[int], node: int = ROOT) -> int:
        for t in tokens:
            node = self.step(node, int(t))
            if node < 0:
                return -1
        return node

    def name_of(self, tokens: Sequence[int]) -> Optional[str]:
        """The single name spelled by ``tokens`` (ending with EOS), or None."""
        return self.first.name_of(tokens)

    def names_of(self, tokens: Sequence[int]) -> Optional[List[str]]:
        """The names spelled by a completion (EOS optional), split at the separators: the
        first in ``first``, the others in ``second``; None unless every part is a name."""
        parts: List[List[int]] = [[]]
        for t in tokens:
            if t == self.sep_id:
                parts.append([])
            elif t != self.eos_id:
                parts[-1].append(t)
        names = [trie.name_of(p + [self.eos_id]) for trie, p in
                 zip([self.first] + [self.second] * (len(parts) - 1), parts)]
        return None if any(n is None for n in names) else names  # type: ignore[return-value]


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
        from .trie_io import save_trie_set

        save_trie_set(self, Path(path))

    @classmethod
    def from_disk(cls, path: Union[str, Path], tokenizer=None,
                  kb_fingerprint: Optional[str] = None, mmap: bool = True,
                  names: Optional[marisa_trie.Trie] = None) -> "TrieSet":
        """Load what :meth:`to_disk` wrote, checking every file (E140-E143) and, when given,
        that ``tokenizer`` and the KB (``kb.fingerprint()``) are those the tries were built
        with (E142). ``mmap``: map the arrays instead of reading them. ``names``: a name table
        to share (``kb.name_table``), used when it is byte for byte the saved one."""
        from .trie_io import load_trie_set

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
