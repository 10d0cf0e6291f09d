"""A phrase dictionary over tokens: KB names and training mentions, matched on folded text.

Phrases are sequences of token texts, lowercased and with accents folded (:func:`fold`), so
``Neoplasia`` matches ``neoplasia`` and ``metástasis`` matches ``metastasis``. Matching is
greedy longest-first from left to right, one token-keyed dict lookup per candidate length;
a set of the phrases' prefixes stops a start as soon as no phrase continues it. The
dictionary is plain data (phrase -> label, with its training counts) saved as JSON.

:func:`build_dictionary` keeps a phrase only when it is precise enough on the training texts:
of the places the dictionary finds it, the share that are gold mentions of its label
(``min_precision``), counted only in documents annotated for that label. Phrases never found
in the training texts (KB names the training texts do not use) are kept only with
``keep_unseen``.
"""
from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set,
                    Tuple)

from ..types import CorpusDoc

# a matched phrase: (start token, end token, label)
Match = Tuple[int, int, str]
SEP = " "


def fold(text: str) -> str:
    """Lowercase, accents and other combining marks removed (``Metástasis`` -> ``metastasis``)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def phrase_key(tokens: Iterable[str]) -> str:
    """The dictionary key of a token sequence: folded token texts joined by one space."""
    return SEP.join(fold(t) for t in tokens)


class PhraseDictionary:
    """Folded token phrases -> label, matched longest-first over a document's tokens."""

    def __init__(self, entries: Optional[Dict[str, str]] = None, max_tokens: int = 0,
                 stats: Optional[Dict[str, Sequence[int]]] = None) -> None:
        self.entries: Dict[str, str] = {}
        self.stats: Dict[str, Tuple[int, int]] = {}
        self.max_tokens = max_tokens
        self._prefixes: Set[str] = set()
        for key, label in (entries or {}).items():
            self.add(key, label)
        for key, pair in (stats or {}).items():
            self.stats[key] = (int(pair[0]), int(pair[1]))

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def add(self, key: str, label: str) -> None:
        """Add the phrase ``key`` (a :func:`phrase_key`) with ``label``."""
        parts = key.split(SEP)
        self.entries[key] = label
        self.max_tokens = max(self.max_tokens, len(parts))
        for n in range(1, len(parts)):
            self._prefixes.add(SEP.join(parts[:n]))

    def find(self, tokens: Sequence[str]) -> List[Match]:
        """Non-overlapping matches in the token texts ``tokens``, longest first from the left."""
        folded = [fold(t) for t in tokens]
        out: List[Match] = []
        i, n = 0, len(folded)
        while i < n:
            best, key = 0, ""
            for j in range(i, min(n, i + self.max_tokens)):
                key = folded[j] if j == i else key + SEP + folded[j]
                if key in self.entries:
                    best = j + 1
                if key not in self._prefixes:
                    break
            if best:
                out.append((i, best, self.entries[SEP.join(folded[i:best])]))
                i = best
            else:
                i += 1
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {"max_tokens": self.max_tokens, "entries": self.entries,
                "stats": {k: list(v) for k, v in self.stats.items()}}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PhraseDictionary":
        return cls(dict(data.get("entries", {})), int(data.get("max_tokens", 0)),
                   dict(data.get("stats", {})))


def _char_tokens(tokenize: Callable[[str], Any], text: str) -> Tuple[List[str], List[int],
                                                                       List[int]]:
    doc = tokenize(text)
    return ([t.text for t in doc], [t.idx for t in doc], [t.idx + len(t.text) for t in doc])


def usable(key: str, min_chars: int) -> bool:
    """A phrase worth matching: at least ``min_chars`` characters, and some letter."""
    return len(key) >= min_chars and any(ch.isalpha() for ch in key)


def build_dictionary(tokenize: Callable[[str], Any], corpus: Sequence[CorpusDoc],
                     names: Iterable[Tuple[str, str]] = (), *,
                     min_precision: float = 0.5, min_count: int = 1,
                     keep_unseen: bool = False, min_chars: int = 3,
                     labels: Optional[Iterable[str]] = None) -> PhraseDictionary:
    """A dictionary of the training mentions of ``corpus`` and the ``(name, label)`` pairs of
    ``names`` (KB names with their group mapped to a label), filtered by precision on the
    training texts. ``tokenize``: the pipeline's tokenizer (``nlp.make_doc``). A phrase
    several labels claim takes the label it has most often in training (else its first).
    ``labels``: only these labels (default: all)."""
    allowed = None if labels is None else set(labels)
    votes: Dict[str, Counter] = defaultdict(Counter)
    for doc in corpus:
        for m in doc.mentions:
            if allowed is None or m.label in allowed:
                tokens = [t.text for t in tokenize(doc.text[m.start:m.end])]
                votes[phrase_key(tokens)][m.label] += 1
    for name, label in names:
        if allowed is None or label in allowed:
            key = phrase_key(t.text for t in tokenize(name))
            if key not in votes:
                votes[key][label] += 0
    full = PhraseDictionary()
    for key, counter in votes.items():
        if usable(key, min_chars):
            full.add(key, max(counter.items(), key=lambda kv: kv[1])[0])
    found: Counter = Counter()
    right: Counter = Counter()
    for doc in corpus:
        tokens, starts, ends = _char_tokens(tokenize, doc.text)
        gold = {(m.start, m.end, m.label) for m in doc.mentions}
        for i, j, label in full.find(tokens):
            if not doc.is_annotated(label):
                continue
            key = phrase_key(tokens[i:j])
            found[key] += 1
            right[key] += (starts[i], ends[j - 1], label) in gold
    out = PhraseDictionary()
    for key, label in full.entries.items():
        n = found[key]
        if (n == 0 and keep_unseen) or (n and right[key] >= min_count
                                        and right[key] / n >= min_precision):
            out.add(key, label)
            out.stats[key] = (right[key], n)
    return out


def iter_entity_matches(dictionary: PhraseDictionary, doc) -> Iterator[Match]:
    """Matches of ``dictionary`` over the tokens of a spaCy ``doc``."""
    yield from dictionary.find([t.text for t in doc])


__all__ = ["PhraseDictionary", "build_dictionary", "fold", "phrase_key", "usable",
           "iter_entity_matches"]
