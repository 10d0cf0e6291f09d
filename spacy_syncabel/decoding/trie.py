"""Prefix tries over the token ids of KB names, stored as flat CSR arrays.

Each name is stored as the token ids of ``" " + name`` (tokenized on its own, no special
tokens, exactly as the completion is tokenized after the prompt) followed by EOS. A node's
allowed next tokens are a contiguous slice of ``child_tok``: no per-node Python objects, so a
100k-name trie is a few int32 arrays.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence

import numpy as np

from ..errors import Errors

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB

ROOT = 0


class TokenTrie:
    """A token-id trie over names; node 0 is the root.

    ``sep_id``, when set, lets a completed name be followed by the separator, which restarts
    at the root (composite mentions).
    """

    def __init__(self, child_ptr: np.ndarray, child_tok: np.ndarray, child_node: np.ndarray,
                 leaf_name: np.ndarray, names: List[str], eos_id: int,
                 sep_id: Optional[int] = None, collisions: int = 0) -> None:
        self.child_ptr = child_ptr
        self.child_tok = child_tok
        self.child_node = child_node
        self.leaf_name = leaf_name
        self.names = names
        self.eos_id = eos_id
        self.sep_id = sep_id
        self.collisions = collisions
        # nodes at which a name is complete (EOS is one of their children)
        ends = np.zeros(len(child_ptr) - 1, dtype=bool)
        eos_pos = np.nonzero(child_tok == eos_id)[0]
        owners = np.searchsorted(child_ptr, eos_pos, side="right") - 1
        ends[owners] = True
        self.is_end = ends

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]], names: Sequence[str],
                       eos_id: int, sep_id: Optional[int] = None) -> "TokenTrie":
        """Build from token sequences (without EOS); ``names[i]`` is the name of sequence i."""
        order = sorted(range(len(sequences)), key=lambda i: tuple(sequences[i]))
        parent: List[int] = [-1]
        token: List[int] = [-1]
        leaf: Dict[int, int] = {}
        path: List[int] = [ROOT]  # node ids along the previous sequence (incl. EOS leaf)
        prev: Sequence[int] = ()
        collisions = 0
        for i in order:
            seq = list(sequences[i]) + [eos_id]
            # longest common prefix with the previous sequence
            lcp = 0
            limit = min(len(seq), len(prev))
            while lcp < limit and seq[lcp] == prev[lcp]:
                lcp += 1
            if lcp == len(seq):  # identical token sequence: two names tokenize the same
                collisions += 1
                continue
            del path[lcp + 1:]
            for tok in seq[lcp:]:
                parent.append(path[-1])
                token.append(tok)
                path.append(len(parent) - 1)
            leaf[path[-1]] = i
            prev = seq
        n_nodes = len(parent)
        par = np.asarray(parent, dtype=np.int64)
        tok = np.asarray(token, dtype=np.int64)
        kids = np.arange(1, n_nodes)
        kid_order = kids[np.lexsort((tok[1:], par[1:]))]
        counts = np.bincount(par[1:], minlength=n_nodes)
        child_ptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(counts, out=child_ptr[1:])
        leaf_name = np.full(n_nodes, -1, dtype=np.int32)
        if leaf:
            leaf_name[np.fromiter(leaf.keys(), dtype=np.int64)] = np.fromiter(leaf.values(),
                                                                              dtype=np.int32)
        return cls(child_ptr.astype(np.int32 if n_nodes < 2**31 else np.int64),
                   tok[kid_order].astype(np.int32), kid_order.astype(np.int32), leaf_name,
                   list(names), eos_id, sep_id, collisions)

    # -- queries --------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.child_ptr) - 1

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.child_ptr, self.child_tok, self.child_node,
                                      self.leaf_name, self.is_end))

    def allowed(self, node: int) -> np.ndarray:
        """Token ids allowed after ``node`` (never empty for a non-leaf node)."""
        toks = self.child_tok[self.child_ptr[node]:self.child_ptr[node + 1]]
        if self.sep_id is not None and self.is_end[node]:
            toks = np.append(toks, self.sep_id)
        return toks

    def step(self, node: int, token: int) -> int:
        """The node reached from ``node`` by ``token``, or -1 when not allowed."""
        if self.sep_id is not None and token == self.sep_id and self.is_end[node]:
            return ROOT
        lo, hi = int(self.child_ptr[node]), int(self.child_ptr[node + 1])
        j = lo + int(np.searchsorted(self.child_tok[lo:hi], token))
        if j < hi and self.child_tok[j] == token:
            return int(self.child_node[j])
        return -1

    def walk(self, tokens: Iterable[int], node: int = ROOT) -> int:
        for t in tokens:
            node = self.step(node, t)
            if node < 0:
                return -1
        return node

    def name_of(self, tokens: Sequence[int]) -> Optional[str]:
        """The name spelled by ``tokens`` (ending with EOS), or None."""
        node = self.walk(tokens)
        if node < 0 or self.leaf_name[node] < 0:
            return None
        return self.names[int(self.leaf_name[node])]

    def names_of(self, tokens: Sequence[int]) -> Optional[List[str]]:
        """The names spelled by a completion, split at separator tokens (composite)."""
        parts: List[List[int]] = [[]]
        for t in tokens:
            if self.sep_id is not None and t == self.sep_id:
                parts.append([])
            elif t != self.eos_id:
                parts[-1].append(t)
        names = [self.name_of(p + [self.eos_id]) for p in parts]
        return None if any(n is None for n in names) else names  # type: ignore[return-value]


def tokenize_names(tokenizer, names: Sequence[str]) -> List[List[int]]:
    """Token ids of ``" " + name`` for each name, without special tokens."""
    if not names:
        return []
    enc = tokenizer([" " + n for n in names], add_special_tokens=False)
    return [list(ids) for ids in enc["input_ids"]]


class TrieSet:
    """One trie per KB group plus one over all groups (key ``None``)."""

    def __init__(self, tries: Dict[Optional[str], TokenTrie],
                 sequences: Optional[Dict[str, List[int]]] = None) -> None:
        self.tries = tries
        self.sequences = sequences or {}  # name -> token ids of " " + name (no EOS)

    @classmethod
    def build(cls, kb: "ConceptKB", tokenizer, sep_token: Optional[str] = None,
              composite: bool = False) -> "TrieSet":
        eos_id = tokenizer.eos_token_id
        if eos_id is None:
            raise ValueError(Errors.E011)
        sep_id = None
        if composite and sep_token is not None:
            sep_id = tokenizer.convert_tokens_to_ids(sep_token)
        all_names = kb.names()
        seqs = tokenize_names(tokenizer, all_names)
        index = {n: i for i, n in enumerate(all_names)}
        tries: Dict[Optional[str], TokenTrie] = {}
        tries[None] = TokenTrie.from_sequences(seqs, all_names, eos_id, sep_id)
        for group in kb.groups:
            names = kb.names(group)
            if not names:
                raise ValueError(Errors.E012.format(group=group))
            tries[group] = TokenTrie.from_sequences([seqs[index[n]] for n in names], names,
                                                    eos_id, sep_id)
        return cls(tries, dict(zip(all_names, seqs)))

    def restricted(self, names: Sequence[str], group: Optional[str] = None) -> TokenTrie:
        """A small trie over some names only (a mention's candidates)."""
        base = self.tries[group]
        return TokenTrie.from_sequences([self.sequences[n] for n in names], list(names),
                                        base.eos_id, base.sep_id)

    def __getitem__(self, group: Optional[str]) -> TokenTrie:
        return self.tries[group]

    def __contains__(self, group: Optional[str]) -> bool:
        return group in self.tries

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tries.values())
