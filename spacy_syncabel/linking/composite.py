"""Composite candidates for the candidate modes (``rerank``, ``beam_in_candidates``).

A composite mention ("dolor abdominal y vómitos") has a gold code set of two or more parts,
which a list of single retrieved names can never hold. With ``composite`` on, each mention also
gets up to ``composite_pairs`` composite candidates, names joined by ``<SEP>``, from two
sources, in this order:

1. **Conjuncts.** A mention with a coordinator (" y ", " e ", " o ", " ni ", ",", ";", "/",
   " and ", " or ", " et ", " ou ") is split into its conjuncts, and each conjunct is retrieved
   on its own, also with the words it shares with its neighbours by ellipsis ("biopsia pleural
   y pulmonar": "pulmonar" and "biopsia pulmonar"; "dolor y distensión abdominal": "dolor" and
   "dolor abdominal"). The best name of each conjunct makes one candidate (as many parts as
   conjuncts); then each conjunct's second name in turn replaces its best.
2. **Pairs of the whole mention's retrieved names**: among its first ``top_m`` retrieved
   names, every pair of distinct codes, best retrieval scores first.

Every part of a candidate has a distinct code. A candidate's retrieval score (its prior) is,
for a conjunct candidate, the retriever's similarity of the mention to the candidate written
as one string (parts joined by a blank) and, for a pair, the mean of its parts' retrieval
scores (never above the best single name's: the LM has to prefer a pair). On SPACCC dev, the
mean of the parts' scores for conjunct candidates too (each against its own conjunct) gives
more composite answers to mentions whose gold is one code, and the mean of the whole mention's
similarities to the parts never lets a composite win at a calibrated weight
(``benchmarks/bench_composite_rerank.py``). The parts are written in mention order
(conjuncts) or retrieval order (pairs), as the training targets mostly list them; the engine
reports the code as the metric compares it, parts sorted.
"""
from __future__ import annotations

import itertools
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..prompting import SEP_TOKEN
from ..text import clean_name
from .candidates import Retrieved

#: the words that coordinate conjuncts (Spanish, English, French)
CONJUNCTIONS = ("y", "e", "o", "ni", "and", "or", "et", "ou")
_WORDS = "|".join(CONJUNCTIONS)
_SPLIT = re.compile(rf"\s*[,;/]\s*(?:(?:{_WORDS})\s+)?|\s+(?:{_WORDS})\s+", re.IGNORECASE)
#: a mention with more conjuncts gets no conjunct candidate (a list, not a composite)
MAX_CONJUNCTS = 6
#: names retrieved per conjunct query (its best two are used)
CONJUNCT_DEPTH = 2
#: retrieved names of the whole mention whose pairs are candidates
TOP_M = 4

#: ``(queries, groups, n) -> each query's retrieved names``, best first
Retrieve = Callable[[Sequence[str], Sequence[Optional[str]], int], List[List[Retrieved]]]
#: ``(name, group) -> code`` (None when the name is not the group's)
Lookup = Callable[[str, Optional[str]], Optional[str]]
#: ``(mention, texts, group) -> the retriever's score of the mention against each text``
Similarity = Callable[[str, Sequence[str], Optional[str]], List[float]]


def conjuncts(mention: str) -> List[str]:
    """The conjuncts of a coordinated mention, in order; [] when it has fewer than two or
    more than :data:`MAX_CONJUNCTS`."""
    parts = [p.strip() for p in _SPLIT.split(clean_name(mention))]
    parts = [p for p in parts if p]
    return parts if 2 <= len(parts) <= MAX_CONJUNCTS else []


def conjunct_queries(parts: Sequence[str]) -> List[List[str]]:
    """Each conjunct's retrieval queries: itself, and, when it is shorter than the first
    (last) conjunct, the first's leading (the last's trailing) words it lacks around it."""
    words = [p.split() for p in parts]
    first, last = words[0], words[-1]
    out = []
    for i, w in enumerate(words):
        queries = [parts[i]]
        if i > 0 and len(w) < len(first):
            queries.append(" ".join(first[:len(first) - len(w)] + w))
        if i < len(words) - 1 and len(w) < len(last):
            queries.append(" ".join(w + last[len(w):]))
        out.append(list(dict.fromkeys(queries)))
    return out


def pair_candidates(top: Sequence[Retrieved], group: Optional[str], lookup: Lookup,
                    top_m: int = TOP_M) -> List[Tuple[List[Retrieved], float]]:
    """Pairs of distinct codes among the first ``top_m`` names, best summed score first."""
    head = [(r, lookup(r.name, group)) for r in top[:top_m]]
    pairs = [([a, b], (a.score + b.score) / 2)
             for (a, ca), (b, cb) in itertools.combinations(head, 2)
             if ca is not None and cb is not None and ca != cb]
    return sorted(pairs, key=lambda p: -p[1])


def conjunct_candidates(per_conjunct: Sequence[Sequence[Retrieved]], group: Optional[str],
                        lookup: Lookup) -> List[Tuple[List[Retrieved], float]]:
    """The best name of every conjunct, then each conjunct's second name in its place; the
    parts' codes must be distinct. Scored by the mean of the parts' scores (each against its
    conjunct): :func:`composite_candidates` scores them against the whole mention."""
    if any(not names for names in per_conjunct):
        return []
    choices = [[0] * len(per_conjunct)]
    for i, names in enumerate(per_conjunct):
        if len(names) > 1:
            choices.append([int(j == i) for j in range(len(per_conjunct))])
    out = []
    for choice in choices:
        parts = [names[k] for names, k in zip(per_conjunct, choice)]
        codes = [lookup(p.name, group) for p in parts]
        if None not in codes and len(set(codes)) == len(codes):
            out.append((parts, sum(p.score for p in parts) / len(parts)))
    return out


def composite_candidates(mentions: Sequence[str], groups: Sequence[Optional[str]],
                         top: Sequence[Sequence[Retrieved]], retrieve: Retrieve,
                         similarity: Similarity, lookup: Lookup, limit: int,
                         ) -> List[List[Retrieved]]:
    """Each mention's composite candidates (see the module docstring), at most ``limit``:
    ``Retrieved("a<SEP>b", retrieval score)``, distinct code sets."""
    out: List[List[Retrieved]] = [[] for _ in mentions]
    if limit < 1:
        return out
    per_conj = _retrieve_conjuncts(mentions, groups, retrieve)
    for i, (mention, group, cands) in enumerate(zip(mentions, groups, top)):
        proposals = conjunct_candidates(per_conj[i], group, lookup) if per_conj[i] else []
        if proposals:
            joined = [" ".join(p.name for p in parts) for parts, _ in proposals]
            proposals = [(parts, sim) for (parts, _), sim in
                         zip(proposals, similarity(mention, joined, group))]
        proposals += pair_candidates(cands, group, lookup)
        seen = set()
        for parts, score in proposals:
            key = frozenset(lookup(p.name, group) for p in parts)
            if key in seen:
                continue
            seen.add(key)
            out[i].append(Retrieved(SEP_TOKEN.join(p.name for p in parts), float(score)))
            if len(out[i]) == limit:
                break
    return out


def _retrieve_conjuncts(mentions: Sequence[str], groups: Sequence[Optional[str]],
                        retrieve: Retrieve) -> List[List[List[Retrieved]]]:
    """Per mention, per conjunct, its best names over its queries (one retrieval call for
    the whole batch; a name scores its best query)."""
    queries: List[str] = []
    query_groups: List[Optional[str]] = []
    owners: List[Tuple[int, int]] = []
    shape: List[int] = []
    for i, (mention, group) in enumerate(zip(mentions, groups)):
        parts = conjuncts(mention)
        shape.append(len(parts))
        for c, qs in enumerate(conjunct_queries(parts) if parts else []):
            for q in qs:
                queries.append(q)
                query_groups.append(group)
                owners.append((i, c))
    found = retrieve(queries, query_groups, CONJUNCT_DEPTH) if queries else []
    best: List[List[Dict[str, float]]] = [[{} for _ in range(n)] for n in shape]
    for (i, c), names in zip(owners, found):
        for r in names:
            slot = best[i][c]
            slot[r.name] = max(slot.get(r.name, float("-inf")), r.score)
    return [[[Retrieved(n, s) for n, s in sorted(b.items(), key=lambda x: -x[1])[:CONJUNCT_DEPTH]]
             for b in conj] for conj in best]


__all__ = ["CONJUNCTIONS", "conjuncts", "conjunct_queries", "pair_candidates",
           "conjunct_candidates", "composite_candidates"]
