"""Hard negatives for preference optimization (ANGEL), mined from the linker's own beams.

As ANGEL publishes it (``train_negative_aware.py``, ``--num_beams 10 --dpo_topk 5``): the
trained linker decodes every training mention with its constrained beam search, ``num_beams``
beams (10) as *names* (``merge_by_code`` is switched off while mining), and the top ``k`` (5)
of them are labelled correct or wrong by their codes. The correctness rule (``match``):

* ``"intersect"`` (ANGEL's, the default): a beam is correct when its codes share one with the
  gold's (a composite gold ``a+b`` is matched by a beam coding ``a``);
* ``"exact"``: the beam's code set is the gold's (Recall@k's rule).

Preference pairs ``(prompt, chosen, rejected)``:

* ``top1_correct``: rank 1 is correct and a wrong beam exists → rank 1 against the first
  (highest ranked) wrong beam;
* ``correct_below_wrong``: each correct beam below rank 1 against every wrong beam ranked
  above it;
* ``gold_fallback`` (only with ``gold_fallback=True``): no beam is correct → the gold target
  name (the SFT target: the gold code's name closest to the mention, one per part of a
  composite) against the top wrong beam.

Mentions whose labelled beams are all correct, or (without the fallback) all wrong, give no
pair. Pairs are written as inspectable JSONL (:func:`write_pairs`): prompt text, chosen/rejected
names, codes, ranks and beam log-probabilities, the mention id and the case.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import (TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple, Union)

from ..errors import Errors
from ..evaluation.metrics import code_set, hit
from ..prompting import SEP_TOKEN, encode_prompt
from ..textio import iter_lines, json_loads
from ..types import COMPOSITE_SEP, NIL, NO_CODE, Candidate, CorpusDoc
from .examples import iter_mention_prompts
from .linker import Linker
from .targets import NameSelector, canonical_parts, gold_target_name  # noqa: F401 - importable here

if TYPE_CHECKING:  # pragma: no cover
    from ..linking import LinkingEngine

PathLike = Union[str, Path]

CASE_TOP1 = "top1_correct"
CASE_BELOW = "correct_below_wrong"
CASE_GOLD = "gold_fallback"
CASES = (CASE_TOP1, CASE_BELOW, CASE_GOLD)

MATCH_INTERSECT = "intersect"
MATCH_EXACT = "exact"
MATCH_RULES = (MATCH_INTERSECT, MATCH_EXACT)
NUM_BEAMS = 10  # ANGEL's beams decoded per mention
TOP_K = 5  # ANGEL's beams labelled (dpo_topk)


def check_match(match: str) -> str:
    """``match`` when it is a known correctness rule (E363 otherwise)."""
    if match not in MATCH_RULES:
        raise ValueError(Errors.E363.format(rule=match))
    return match


def is_correct(gold: str, code: str, match: str = MATCH_INTERSECT) -> bool:
    """A beam is correct when its codes intersect the gold's (``"intersect"``, ANGEL's rule)
    or are the gold's code set (``"exact"``, Recall@k's rule)."""
    check_match(match)
    if not code or code in (NIL, NO_CODE):
        return False
    if match == MATCH_EXACT:
        return hit(gold, [code], 1)
    return bool((code_set(code) & code_set(gold)) - {NIL, NO_CODE})


@dataclass(frozen=True)
class Beam:
    """One decoded beam of a mention: 1-based ``rank``, its name(s) and code."""

    rank: int
    name: str  # composite names joined by <SEP>
    code: str
    logprob: float = 0.0
    correct: bool = False


def label_beams(gold: str, candidates: Sequence[Union[Candidate, Tuple[str, str]]],
                match: str = MATCH_INTERSECT, top_k: Optional[int] = None) -> List[Beam]:
    """The first ``top_k`` (all: None) beams of a mention, best first, each labelled correct
    or wrong against ``gold`` by the ``match`` rule (:func:`is_correct`).

    ``candidates``: :class:`Candidate` objects, or ``(name, code)`` tuples.
    """
    check_match(match)
    beams = []
    for rank, c in enumerate(candidates[:top_k] if top_k is not None else candidates, start=1):
        if isinstance(c, Candidate):
            name, code, logprob = c.name, c.code, float(c.logprob)
        else:
            name, code, logprob = c[0], c[1], 0.0
        beams.append(Beam(rank, name, code, logprob, is_correct(gold, code, match)))
    return beams


def pair_beams(beams: Sequence[Beam], *, gold_name: Optional[str] = None,
               gold_code: Optional[str] = None, gold_fallback: bool = False,
               ) -> List[Tuple[Beam, Beam, str]]:
    """``(chosen, rejected, case)`` preference pairs of one mention's labelled beams (see the
    module docstring for the rules). The gold fallback's chosen beam has rank 0."""
    beams = sorted(beams, key=lambda b: b.rank)
    wrong = [b for b in beams if not b.correct]
    if not wrong or not beams:
        return []
    pairs: List[Tuple[Beam, Beam, str]] = []
    if beams[0].correct:
        pairs.append((beams[0], wrong[0], CASE_TOP1))
    for b in beams[1:]:
        if b.correct:
            pairs.extend((b, w, CASE_BELOW) for w in wrong if w.rank < b.rank)
    if not any(b.correct for b in beams) and gold_fallback and gold_name:
        gold = Beam(0, gold_name, gold_code or "", 0.0, True)
        pairs.append((gold, wrong[0], CASE_GOLD))
    return pairs


@dataclass
class TrainMention:
    """A coded training mention and the prompt the component renders for it."""

    mention_id: str
    doc_id: str
    prompt: str
    mention: str
    code: str  # canonical KB code(s), composite parts joined by "+"
    group: Optional[str]


@dataclass
class PreferencePair:
    """One (prompt, chosen, rejected) pair, as written in ``pairs.jsonl``."""

    mention_id: str
    prompt: str
    chosen: str  # name(s), composite joined by <SEP>
    rejected: str
    chosen_code: str
    rejected_code: str
    chosen_rank: int  # 0: the gold name (not among the beams)
    rejected_rank: int
    case: str
    gold_code: str
    mention: str = ""
    group: Optional[str] = None
    doc_id: str = ""
    chosen_logprob: Optional[float] = None  # beam log-prob under the mining model
    rejected_logprob: Optional[float] = None

    @property
    def chosen_names(self) -> List[str]:
        return self.chosen.split(SEP_TOKEN)

    @property
    def rejected_names(self) -> List[str]:
        return self.rejected.split(SEP_TOKEN)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PreferencePair":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class MiningStats:
    """What mining found: mentions by outcome and pairs by case."""

    mentions: int = 0  # gold mentions seen
    no_code: int = 0  # NIL / no gold code: skipped
    missing_code: int = 0  # gold code (a part) not in the KB: skipped
    unaligned: int = 0
    decoded: int = 0
    no_beams: int = 0
    top1_correct: int = 0  # mentions whose rank-1 beam is correct
    correct_below: int = 0  # mentions with a correct beam, but not at rank 1
    no_correct: int = 0  # mentions without a correct beam
    all_correct: int = 0  # mentions without a wrong beam (no pair)
    no_gold_name: int = 0  # gold fallback impossible: no producible name of the gold code
    pairs: int = 0
    mentions_with_pairs: int = 0
    by_case: Dict[str, int] = field(default_factory=lambda: {c: 0 for c in CASES})

    def to_dict(self) -> dict:
        return asdict(self)


def collect_mentions(docs: Sequence[CorpusDoc], linker: Linker,
                     stats: Optional[MiningStats] = None, nlp=None) -> List[TrainMention]:
    """The coded training mentions of ``docs`` whose code is in the KB, with the prompt the
    component renders (the same as :func:`build_examples` uses). Mention ids are
    ``DOC_ID#i`` (i-th aligned mention of the document)."""
    kb = linker.kb
    stats = stats if stats is not None else MiningStats()
    internal = MiningStats()
    out: List[TrainMention] = []
    per_doc: Counter = Counter()
    for cdoc, prompt, mention, raw_code, group in iter_mention_prompts(docs, linker, internal, nlp):
        i = per_doc[cdoc.id]
        per_doc[cdoc.id] += 1
        if not raw_code or raw_code in (NIL, NO_CODE):
            stats.no_code += 1
            continue
        parts = canonical_parts(kb, raw_code)
        if not parts or any(p not in kb for p in parts):
            stats.missing_code += 1
            continue
        out.append(TrainMention(f"{cdoc.id}#{i}", cdoc.id, prompt, mention,
                                COMPOSITE_SEP.join(parts), group))
    stats.mentions += internal.mentions
    stats.unaligned += internal.unaligned
    return out


def mine_negatives(engine: "LinkingEngine", mentions: Sequence[TrainMention], *, k: int = TOP_K,
                   num_beams: int = NUM_BEAMS, match: str = MATCH_INTERSECT,
                   gold_fallback: bool = False, selector: Optional[NameSelector] = None,
                   stats: Optional[MiningStats] = None,
                   ) -> Tuple[List[PreferencePair], MiningStats]:
    """Decode ``mentions`` with :meth:`LinkingEngine.mine` (``num_beams`` beams in the whole
    group's trie, names not merged by code, whatever mode the pipeline links in), label the
    top ``k`` by the ``match`` rule and build the preference pairs (ANGEL: 5 of 10 beams,
    codes intersecting the gold's)."""
    if k < 2:
        raise ValueError(Errors.E080.format(problem=f"negative mining needs k >= 2 beams, got {k}"))
    if num_beams < k:
        raise ValueError(Errors.E080.format(
            problem=f"mining labels the top {k} of {num_beams} beams: num_beams must be >= k"))
    check_match(match)
    stats = stats if stats is not None else MiningStats()
    tok = engine.tokenizer
    cands = engine.mine([encode_prompt(tok, m.prompt) for m in mentions],
                        [m.group for m in mentions], num_beams)
    if gold_fallback and selector is None:
        selector = NameSelector(engine.kb)
    pairs: List[PreferencePair] = []
    for m, cs in zip(mentions, cands):
        stats.decoded += 1
        beams = label_beams(m.code, cs, match, k)
        if not beams:
            stats.no_beams += 1
            continue
        n_correct = sum(b.correct for b in beams)
        if beams[0].correct:
            stats.top1_correct += 1
        elif n_correct:
            stats.correct_below += 1
        else:
            stats.no_correct += 1
        if n_correct == len(beams):
            stats.all_correct += 1
        gold_name = None
        if gold_fallback and not n_correct:
            gold_name = gold_target_name(selector, m.mention, m.code, m.group)
            if gold_name is None:
                stats.no_gold_name += 1
        found = pair_beams(beams, gold_name=gold_name, gold_code=m.code,
                           gold_fallback=gold_fallback)
        if found:
            stats.mentions_with_pairs += 1
        for chosen, rejected, case in found:
            stats.by_case[case] = stats.by_case.get(case, 0) + 1
            pairs.append(PreferencePair(
                mention_id=m.mention_id, prompt=m.prompt, chosen=chosen.name,
                rejected=rejected.name, chosen_code=chosen.code, rejected_code=rejected.code,
                chosen_rank=chosen.rank, rejected_rank=rejected.rank, case=case,
                gold_code=m.code, mention=m.mention, group=m.group, doc_id=m.doc_id,
                chosen_logprob=chosen.logprob if chosen.rank else None,
                rejected_logprob=rejected.logprob))
    stats.pairs += len(pairs)
    return pairs, stats


def write_pairs(pairs: Iterable[PreferencePair], path: PathLike) -> Path:
    """Write pairs as JSONL (one object per line), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf8") as f:
        for p in pairs:
            f.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def read_pairs(path: PathLike) -> List[PreferencePair]:
    """Read pairs written by :func:`write_pairs`."""
    out = []
    for i, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            out.append(PreferencePair.from_dict(json_loads(line)))
        except (ValueError, TypeError) as err:
            raise ValueError(Errors.E084.format(path=path, line=i, problem=err)) from None
    return out


__all__ = ["Beam", "TrainMention", "PreferencePair", "MiningStats", "label_beams", "pair_beams",
           "is_correct", "check_match", "collect_mentions", "gold_target_name",
           "mine_negatives", "write_pairs", "read_pairs", "CASES", "MATCH_RULES"]
