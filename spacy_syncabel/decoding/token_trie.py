"""Token tries over KB names as flat CSR arrays: :class:`TokenTrie`, its packed pointers and
group sets, and :class:`CompositeTrie` (layout: :mod:`.trie`)."""
from __future__ import annotations

from itertools import chain
from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple, Union

import marisa_trie
import numpy as np

from ..prompting import after_sep_ids, strip_sep

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


class _Walks:
    """``walk`` for any trie with ``step(node, token) -> node or -1``."""

    def step(self, node: int, token: int) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def walk(self, tokens: Iterable[int], node: int = ROOT) -> int:
        """The node reached from ``node`` by ``tokens``, or -1 once a token is not allowed."""
        for t in tokens:
            node = self.step(node, int(t))
            if node < 0:
                return -1
        return node


class TokenTrie(_Walks):
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


class CompositeTrie(_Walks):
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
