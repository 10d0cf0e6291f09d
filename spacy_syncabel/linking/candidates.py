"""Candidate generators: where the engine gets a mention's candidate names from.

A candidate generator proposes, for each mention, up to N KB names with a retrieval score, and
scores a mention against given names (the prior added to the LM's score). The engine does not
know which one it has. Generators are built from the KB (and the training-mention aliases) at
``initialize``/load time, so the config references a *factory*:

.. code-block:: ini

    [components.syncabel_linker.candidate_generator]
    @misc = "spacy_syncabel.TfidfCandidates.v1"

To plug a dense (SapBERT-style) index, register a function returning a factory
``(kb, aliases) -> CandidateGenerator`` whose object has :meth:`CandidateGenerator.top` and
:meth:`CandidateGenerator.similarity` (README: "Candidate generators").
"""
from __future__ import annotations

import unicodedata
from typing import (TYPE_CHECKING, Callable, Dict, List, NamedTuple, Optional, Protocol,
                    Sequence, Tuple, runtime_checkable)

from spacy.util import registry

from ..text import clean_name

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB

Alias = Tuple[str, str, Optional[str]]  # (alias text, KB name it stands for, group)


class Retrieved(NamedTuple):
    """One retrieved candidate: a KB name of the mention's group and its retrieval score."""

    name: str
    score: float


@runtime_checkable
class CandidateGenerator(Protocol):
    """What the engine needs from a candidate generator."""

    def top(self, mentions: Sequence[str], groups: Sequence[Optional[str]], n: int,
            ) -> List[List[Retrieved]]:
        """For each mention, up to ``n`` KB names of its group (None: all), best first."""

    def similarity(self, mention: str, names: Sequence[str],
                   group: Optional[str] = None) -> List[float]:
        """The retrieval score of ``mention`` against each of ``names`` (the prior)."""


GeneratorFactory = Callable[["ConceptKB", Sequence[Alias]], CandidateGenerator]


class TfidfCandidates:
    """Char 3-gram TF-IDF over the KB names and the aliases (scispaCy's retriever)."""

    def __init__(self, kb: "ConceptKB", aliases: Sequence[Alias] = ()) -> None:
        from ..decoding.candidates import CandidateIndex

        self.index = CandidateIndex(kb, list(aliases))

    def top(self, mentions, groups, n):
        return [[Retrieved(name, sim) for name, sim in cands]
                for cands in self.index.top(mentions, groups, n)]

    def similarity(self, mention, names, group=None):
        return self.index.similarity(mention, names, group)


def fold(text: str) -> str:
    """Case- and accent-insensitive key of a name or mention (exact-match lookups)."""
    text = unicodedata.normalize("NFKD", clean_name(text).casefold())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


class ExactIndex:
    """The KB names and aliases of each group by their folded text (:func:`fold`).

    ``names(mention, group)`` are the KB names the mention matches exactly (a name, or the
    name an alias stands for), KB names first; ``codes(mention, group)`` their distinct codes.
    A group the KB lacks (None included) looks in every group, where a name two groups give
    different codes counts both.
    """

    def __init__(self, kb: "ConceptKB", aliases: Sequence[Alias] = ()) -> None:
        self.kb = kb
        self.entries: Dict[Tuple[Optional[str], str], List[Tuple[str, str]]] = {}
        for code, name, group in kb.entries():
            self._add(group, fold(name), name, code)
        for text, name, group in aliases:
            code = kb.lookup(name, group)
            if code is not None:
                self._add(group, fold(text), name, code)

    def _add(self, group: Optional[str], key: str, name: str, code: str) -> None:
        for g in (group, None):
            found = self.entries.setdefault((g, key), [])
            if (name, code) not in found:
                found.append((name, code))

    def _found(self, mention: str, group: Optional[str]) -> List[Tuple[str, str]]:
        group = group if group in self.kb.groups else None
        return self.entries.get((group, fold(mention)), [])

    def names(self, mention: str, group: Optional[str]) -> List[str]:
        """The KB names the mention matches exactly (folded), KB names before aliases."""
        return list(dict.fromkeys(name for name, _ in self._found(mention, group)))

    def codes(self, mention: str, group: Optional[str]) -> List[str]:
        """The distinct codes of :meth:`names`, in their order."""
        return list(dict.fromkeys(code for _, code in self._found(mention, group)))


class DictionaryCandidates:
    """Exact lookup of the mention among the KB names and aliases (case and accents folded).

    A mention matching a name (or an alias of it) gets that name with score 1.0. With a
    ``fallback`` generator the rest of the N slots (and every similarity) come from it.
    """

    def __init__(self, kb: "ConceptKB", aliases: Sequence[Alias] = (),
                 fallback: Optional[CandidateGenerator] = None) -> None:
        self.kb = kb
        self.fallback = fallback
        self.index = ExactIndex(kb, aliases)

    def exact(self, mention: str, group: Optional[str]) -> List[str]:
        """The KB names the mention matches exactly (folded)."""
        return self.index.names(mention, group)

    def top(self, mentions, groups, n):
        rest = self.fallback.top(mentions, groups, n) if self.fallback is not None else None
        out: List[List[Retrieved]] = []
        for i, (mention, group) in enumerate(zip(mentions, groups)):
            found = [Retrieved(name, 1.0) for name in self.exact(mention, group)][:n]
            if rest is not None:
                have = {r.name for r in found}
                found += [r for r in rest[i] if r.name not in have][:n - len(found)]
            out.append(found)
        return out

    def similarity(self, mention, names, group=None):
        if self.fallback is not None:
            return self.fallback.similarity(mention, names, group)
        key = fold(mention)
        return [1.0 if fold(name) == key else 0.0 for name in names]


@registry.misc("spacy_syncabel.TfidfCandidates.v1")
def tfidf_candidates() -> GeneratorFactory:
    """Char 3-gram TF-IDF candidates over the KB names and training-mention aliases."""
    return TfidfCandidates


@registry.misc("spacy_syncabel.DictionaryCandidates.v1")
def dictionary_candidates(fallback: Optional[GeneratorFactory] = None) -> GeneratorFactory:
    """Exact/alias lookup (case and accents folded); ``fallback`` (e.g. TF-IDF) fills the rest."""
    def make(kb: "ConceptKB", aliases: Sequence[Alias] = ()) -> DictionaryCandidates:
        return DictionaryCandidates(kb, aliases,
                                    fallback(kb, aliases) if fallback is not None else None)
    return make


__all__ = ["Alias", "Retrieved", "CandidateGenerator", "GeneratorFactory", "TfidfCandidates",
           "ExactIndex", "DictionaryCandidates", "tfidf_candidates", "dictionary_candidates", "fold"]
