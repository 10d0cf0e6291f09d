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

With ``composite_expand`` on (:func:`expanded_conjuncts`, :func:`expanded_queries`), the
conjuncts are read the way coordination-ellipsis resolution reads them: leading determiners
dropped ("la fosa ilíaca derecha"), a hyphenated compound of a combining form split into its
members ("ecografía abdomino-pélvica": "ecografía abdomino", "ecografía pélvica"), and a shared
head distributed with every number of its words ("metástasis en ganglios regionales e hígado":
"metástasis en hígado" too). Composite aliases (training mentions whose gold is a code set,
``composite_aliases``) come first with score 1.0.

Each candidate carries its *split evidence* (:func:`split_evidence`): the mean of its parts'
scores, each against its own conjunct (1.0 for a composite alias), minus the whole mention's
best single retrieval score. ``composite_split`` keeps only candidates with evidence at least
that high, so a coordinated mention that a single name matches better than its conjuncts match
theirs ("ictericia de piel y mucosas") stays single.
"""
from __future__ import annotations

import itertools
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..prompting import SEP_TOKEN
from ..text import clean_name
from .candidates import Retrieved, fold

#: the words that coordinate conjuncts (Spanish, English, French)
CONJUNCTIONS = ("y", "e", "o", "ni", "and", "or", "et", "ou")
_WORDS = "|".join(CONJUNCTIONS)
_SPLIT = re.compile(rf"\s*[,;/]\s*(?:(?:{_WORDS})\s+)?|\s+(?:{_WORDS})\s+", re.IGNORECASE)
#: a mention with more conjuncts gets no conjunct candidate (a list, not a composite)
MAX_CONJUNCTS = 6
#: names retrieved per conjunct query (its best two are used)
CONJUNCT_DEPTH = 2
#: names per conjunct with ``composite_expand`` (the best, then each conjunct's 2nd and 3rd)
EXPANDED_DEPTH = 3
#: retrieved names of the whole mention whose pairs are candidates
TOP_M = 4

#: leading function words a conjunct drops before retrieval (determiners, "así como")
LEADING_WORDS = ("el", "la", "los", "las", "un", "una", "unos", "unas", "lo", "del", "al",
                 "the", "a", "an", "le", "les", "des", "du")
_LEADING = re.compile(r"^(?:(?:así|tanto)\s+como\s+|(?:%s)\s+)+" % "|".join(LEADING_WORDS),
                      re.IGNORECASE)
#: a hyphenated compound whose first member is a combining form ("abdomino-pélvica",
#: "cardio-pulmonar", "esófago-gástricas"): at least four letters ending in -o
_COMPOUND = re.compile(r"^(\w{3,}[oO])-(\w{3,})$")
#: shared-head variants per conjunct (the head's first k words, k = 1, 2, ...)
MAX_HEAD_VARIANTS = 3

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


def expanded_conjuncts(mention: str) -> List[str]:
    """:func:`conjuncts` with leading determiners dropped; a mention without a coordinator
    that holds one hyphenated compound of a combining form gives one conjunct per member
    ("TAC toraco-abdominal normal": "TAC toraco normal", "TAC abdominal normal")."""
    parts = conjuncts(mention)
    if parts:
        stripped = [_LEADING.sub("", p).strip() for p in parts]
        return [s if s else p for s, p in zip(stripped, parts)]
    words = clean_name(mention).split()
    hits = [i for i, w in enumerate(words) if _COMPOUND.match(w)]
    if len(hits) != 1:
        return []
    i = hits[0]
    first, second = _COMPOUND.match(words[i]).groups()  # type: ignore[union-attr]
    return [" ".join(words[:i] + [m] + words[i + 1:]) for m in (first, second)]


def expanded_queries(parts: Sequence[str]) -> List[List[str]]:
    """:func:`conjunct_queries` plus the shared head distributed with each number of its
    words (up to :data:`MAX_HEAD_VARIANTS`): a conjunct shorter than the first gets the
    first's first k words before it, one shorter than the last the last's last k words after
    it."""
    base = conjunct_queries(parts)
    words = [p.split() for p in parts]
    first, last = words[0], words[-1]
    out = []
    for i, (w, queries) in enumerate(zip(words, base)):
        extra = []
        if i > 0 and len(w) < len(first):
            extra += [" ".join(first[:k] + w)
                      for k in range(1, min(len(first) - len(w), MAX_HEAD_VARIANTS) + 1)]
        if i < len(words) - 1 and len(w) < len(last):
            extra += [" ".join(w + last[len(last) - k:])
                      for k in range(1, min(len(last) - len(w), MAX_HEAD_VARIANTS) + 1)]
        out.append(list(dict.fromkeys(queries + extra)))
    return out


def split_evidence(part_scores: Sequence[float], whole_best: float) -> float:
    """How much better a composite's parts match their conjuncts than any single name matches
    the whole mention: mean part score minus the whole mention's best retrieval score."""
    return float(sum(part_scores) / max(1, len(part_scores)) - whole_best)


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
    """The best name of every conjunct, then each conjunct's second name in its place, then
    each one's third (when retrieved); the parts' codes must be distinct. Scored by the mean of the parts' scores (each against its
    conjunct): :func:`composite_candidates` scores them against the whole mention."""
    if any(not names for names in per_conjunct):
        return []
    choices = [[0] * len(per_conjunct)]
    for k in range(1, max(len(names) for names in per_conjunct)):
        for i, names in enumerate(per_conjunct):
            if len(names) > k:
                choices.append([k if j == i else 0 for j in range(len(per_conjunct))])
    out = []
    for choice in choices:
        parts = [names[k] for names, k in zip(per_conjunct, choice)]
        codes = [lookup(p.name, group) for p in parts]
        if None not in codes and len(set(codes)) == len(codes):
            out.append((parts, sum(p.score for p in parts) / len(parts)))
    return out


#: ``(mention, group) -> the part names of each composite alias the mention matches``
AliasLookup = Callable[[str, Optional[str]], List[List[str]]]


def composite_proposals(mentions: Sequence[str], groups: Sequence[Optional[str]],
                        top: Sequence[Sequence[Retrieved]], retrieve: Retrieve,
                        similarity: Similarity, lookup: Lookup, limit: int, *,
                        expand: bool = False, aliases: Optional[AliasLookup] = None,
                        split: Optional[float] = None,
                        ) -> List[List[Tuple[Retrieved, float]]]:
    """Each mention's composite candidates with their split evidence (:func:`split_evidence`),
    at most ``limit``: ``(Retrieved("a<SEP>b", retrieval score), evidence)``, distinct code
    sets, only those with evidence >= ``split`` (None: all). ``expand``: the expanded
    conjuncts and queries; ``aliases``: composite aliases, first (score 1.0)."""
    out: List[List[Tuple[Retrieved, float]]] = [[] for _ in mentions]
    if limit < 1:
        return out
    per_conj = _retrieve_conjuncts(mentions, groups, retrieve, expand)
    for i, (mention, group, cands) in enumerate(zip(mentions, groups, top)):
        best = float(cands[0].score) if cands else 0.0
        proposals: List[Tuple[List[Retrieved], float, float]] = []
        for names in (aliases(mention, group) if aliases is not None else []):
            proposals.append(([Retrieved(n, 1.0) for n in names], 1.0,
                              split_evidence([1.0], best)))
        conj = conjunct_candidates(per_conj[i], group, lookup) if per_conj[i] else []
        if conj:
            joined = [" ".join(p.name for p in parts) for parts, _ in conj]
            proposals += [(parts, sim, split_evidence([p.score for p in parts], best))
                          for (parts, _), sim in zip(conj, similarity(mention, joined, group))]
        proposals += [(parts, score, split_evidence([p.score for p in parts], best))
                      for parts, score in pair_candidates(cands, group, lookup)]
        seen = set()
        for parts, score, evidence in proposals:
            key = frozenset(lookup(p.name, group) for p in parts)
            if key in seen or None in key or len(key) < 2 or (split is not None
                                                               and evidence < split):
                continue
            seen.add(key)
            out[i].append((Retrieved(SEP_TOKEN.join(p.name for p in parts), float(score)),
                           evidence))
            if len(out[i]) == limit:
                break
    return out


def composite_candidates(mentions: Sequence[str], groups: Sequence[Optional[str]],
                         top: Sequence[Sequence[Retrieved]], retrieve: Retrieve,
                         similarity: Similarity, lookup: Lookup, limit: int, *,
                         expand: bool = False, aliases: Optional[AliasLookup] = None,
                         split: Optional[float] = None) -> List[List[Retrieved]]:
    """Each mention's composite candidates (see the module docstring and
    :func:`composite_proposals`), at most ``limit``: ``Retrieved("a<SEP>b", retrieval
    score)``, distinct code sets."""
    return [[r for r, _ in rows] for rows in composite_proposals(
        mentions, groups, top, retrieve, similarity, lookup, limit, expand=expand,
        aliases=aliases, split=split)]


class CompositeAliases:
    """Training mentions whose gold is a code set, by folded text and group: the part names
    of each (``(text, "a<SEP>b", group)`` aliases whose parts are all KB names of the group)."""

    def __init__(self, aliases: Sequence[Sequence[Optional[str]]], lookup: Lookup) -> None:
        self.entries: Dict[Tuple[Optional[str], str], List[List[str]]] = {}
        for text, name, group in aliases:
            if not text or not name or SEP_TOKEN not in name:
                continue
            parts = [p for p in name.split(SEP_TOKEN) if p]
            codes = [lookup(p, group) for p in parts]
            if None in codes or len(set(codes)) < 2:
                continue
            for g in (group, None):
                found = self.entries.setdefault((g, fold(text)), [])
                if parts not in found:
                    found.append(parts)

    def __len__(self) -> int:
        return len({k[1] for k in self.entries})

    def __call__(self, mention: str, group: Optional[str]) -> List[List[str]]:
        return self.entries.get((group, fold(mention)), [])


def _retrieve_conjuncts(mentions: Sequence[str], groups: Sequence[Optional[str]],
                        retrieve: Retrieve, expand: bool = False,
                        ) -> List[List[List[Retrieved]]]:
    """Per mention, per conjunct, its best names over its queries (one retrieval call for
    the whole batch; a name scores its best query)."""
    queries: List[str] = []
    query_groups: List[Optional[str]] = []
    owners: List[Tuple[int, int]] = []
    shape: List[int] = []
    for i, (mention, group) in enumerate(zip(mentions, groups)):
        parts = expanded_conjuncts(mention) if expand else conjuncts(mention)
        shape.append(len(parts))
        make_queries = expanded_queries if expand else conjunct_queries
        for c, qs in enumerate(make_queries(parts) if parts else []):
            for q in qs:
                queries.append(q)
                query_groups.append(group)
                owners.append((i, c))
    depth = EXPANDED_DEPTH if expand else CONJUNCT_DEPTH
    found = retrieve(queries, query_groups, depth) if queries else []
    best: List[List[Dict[str, float]]] = [[{} for _ in range(n)] for n in shape]
    for (i, c), names in zip(owners, found):
        for r in names:
            slot = best[i][c]
            slot[r.name] = max(slot.get(r.name, float("-inf")), r.score)
    return [[[Retrieved(n, s) for n, s in sorted(b.items(), key=lambda x: -x[1])[:depth]]
             for b in conj] for conj in best]


__all__ = ["CONJUNCTIONS", "conjuncts", "conjunct_queries", "expanded_conjuncts",
           "expanded_queries", "split_evidence", "pair_candidates", "conjunct_candidates",
           "composite_proposals", "composite_candidates", "CompositeAliases"]
