"""A dev-masked view of the linker: the KB as unseen text meets it.

A KB built from a corpus (SPACCC-lite, QUAERO-lite: "surface forms of training mentions") holds
the surface of every annotated mention as a name of its gold code, the calibration split's
mentions included when that split was carved out of the annotated training data. Linked
against such a KB, a calibration mention matches its own surface exactly (the dictionary path
settles it) far more often than a mention of unseen text does (SPACCC: 68% of dev mentions
against 46% of test_half's), so probabilities and a NIL threshold fitted on it are
over-confident on unseen text.

The masked view hides what only the calibration split contributed:

* a KB entry ``(code, name)`` is hidden when the folded name (:func:`~.candidates.fold`) is the
  surface of a calibration mention whose gold code is ``code`` and of no training mention with
  that code (a pair the training split also gives stays: unseen text meets it as often as the
  linker's own training data did);
* a retrieval alias is hidden when its folded text is the surface of a calibration mention and
  of no training mention (the linker's aliases come from training mentions: normally none); a
  composite alias (a code set's names) also when its text is the surface of a calibration
  mention coded as a code set and of no such training mention;
* a code keeps its names when hiding would leave it none (the mention would become
  unlinkable, which is not what unseen text meets: every code of a KB has a name).

Where the KB's names do not come from the corpus (a terminology: eCIE-O, MEDIC, UMLS), a name
equal to a calibration surface (with its gold code) and to no training surface is rare
(CANTEMIST dev2: none) and hiding it makes the calibration split slightly harder than unseen
text: the threshold errs on the safe side.
"""
from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, FrozenSet, Iterable, List, Sequence, Set, Tuple

from ..types import COMPOSITE_SEP, CorpusDoc
from .candidates import Alias, fold

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB
    from .engine import LinkingEngine

#: a mention's folded surface and gold code
Pair = Tuple[str, str]


def surface_pairs(docs: Iterable[CorpusDoc]) -> Set[Pair]:
    """``(folded surface, code)`` of every mention with a single gold code (composite parts
    included: a composite's surface names none of its parts alone)."""
    out: Set[Pair] = set()
    for doc in docs:
        for m in doc.mentions:
            code = str(m.code or "").strip()
            if code and COMPOSITE_SEP not in code:
                out.add((fold(doc.text[m.start:m.end]), code))
    return out


def composite_surfaces(docs: Iterable[CorpusDoc]) -> Set[str]:
    """The folded surfaces of the mentions coded as a code set."""
    return {fold(doc.text[m.start:m.end]) for doc in docs for m in doc.mentions
            if COMPOSITE_SEP in str(m.code or "")}


@dataclass
class Masking:
    """What the masked view hides: KB entries ``(code, name, group)`` and aliases, with the
    counts the calibration report records."""

    entries: FrozenSet[Tuple[str, str, str]] = frozenset()
    aliases: FrozenSet[Alias] = frozenset()
    kept_last_names: int = 0  # codes whose only names were calibration surfaces: kept
    stats: Dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.entries or self.aliases)

    def summary(self) -> Dict[str, int]:
        return {"hidden_kb_names": len(self.entries), "hidden_aliases": len(self.aliases),
                "codes_kept_whole": self.kept_last_names, **self.stats}


def plan_masking(kb: "ConceptKB", aliases: Sequence[Alias], calibration: Iterable[CorpusDoc],
                 training: Iterable[CorpusDoc]) -> Masking:
    """The entries and aliases only the ``calibration`` split contributed (module docstring)."""
    from ..prompting import SEP_TOKEN

    calibration, training = list(calibration), list(training)
    calib = surface_pairs(calibration)
    train = surface_pairs(training)
    composite_only = composite_surfaces(calibration) - composite_surfaces(training)
    only = calib - train
    train_surfaces = {s for s, _ in train}
    calib_surfaces = {s for s, _ in calib}
    hidden: Dict[str, List[Tuple[str, str, str]]] = {}
    n_names: Counter = Counter()
    for code, name, group in kb._raw_rows():
        n_names[code] += 1
        if (fold(name), code) in only:
            hidden.setdefault(code, []).append((code, name, group))
    entries: Set[Tuple[str, str, str]] = set()
    kept = 0
    for code, rows in hidden.items():
        if len(rows) >= n_names[code]:
            kept += 1
            continue
        entries.update(rows)
    hidden_aliases = frozenset(
        a for a in aliases if (fold(a[0]) in calib_surfaces and fold(a[0]) not in train_surfaces)
        or (SEP_TOKEN in a[1] and fold(a[0]) in composite_only))
    return Masking(frozenset(entries), hidden_aliases, kept,
                   {"calibration_pairs": len(calib), "calibration_only_pairs": len(only)})


def masked_kb(kb: "ConceptKB", masking: Masking) -> "ConceptKB":
    """``kb`` without the hidden entries (its preferred names, definitions and alternative
    codes kept where their code keeps a name)."""
    from ..kb import ConceptKB

    hidden = masking.entries
    rows = [r for r in kb._raw_rows() if r not in hidden]
    gone = {(c, n) for c, n, _ in hidden}
    preferred = {c: n for c, n in kb._preferred_given.items() if (c, n) not in gone}
    return ConceptKB(rows, preferred=preferred, definitions=dict(kb._definitions),
                     source=f"{kb.source} (masked)", aliases=dict(kb.aliases), warn=False)


def masked_engine(engine: "LinkingEngine", masking: Masking) -> "LinkingEngine":
    """A view of ``engine`` linking against the masked KB and aliases (weights and settings
    shared). Its retriever and dictionary are rebuilt; so are its tries when it decodes in
    the whole KB (beam mode), where a hidden name must not be generated, and when the masked
    KB holds a name the saved one does not: a name of several codes, which the KB drops, names
    one code once the others' entries are hidden (or goes to a code masking left nameless),
    is retrieved and must be scored."""
    from ..prompting import SEP_TOKEN
    from ..decoding.trie import TrieSet

    if not masking:
        return engine
    view = copy.copy(engine)
    view.kb = masked_kb(engine.kb, masking)
    view.aliases = [a for a in engine.aliases if a not in masking.aliases]
    view._generator = None
    view._tfidf = None
    view._exact = None
    view._composite_aliases = None  # rebuilt on the view's aliases and KB
    view._codes = {}
    if not engine.settings.uses_candidates or any(
            not engine.has_name(name) for _, name, _ in view.kb.entries()):
        view.tries = TrieSet.build(view.kb, engine.tokenizer, SEP_TOKEN,
                                   composite=engine.settings.composite)
    return view


__all__ = ["Masking", "composite_surfaces", "masked_engine", "masked_kb", "plan_masking",
           "surface_pairs"]
