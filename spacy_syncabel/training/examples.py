"""Training examples for the ``syncabel_linker``: (prompt, completion) pairs, tokenized.

The prompt of a mention is rendered by the linker's
:class:`~spacy_syncabel.prompting.PromptBuilder` (the one inference uses) on a spaCy ``Doc``
built exactly as at inference (:func:`~spacy_syncabel.prompting.docs.prepare_doc`), so training
and inference prompts cannot drift apart. The completion is a KB name of the gold code
(:mod:`.targets`); ``top_k_targets > 1`` adds the next closest names as extra examples
(ANGEL-style).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple

import spacy

from ..errors import Warnings
from ..evaluation.metrics import hit
from ..prompting import SEP_TOKEN, encode_completion, encode_prompt
from ..prompting.docs import doc_mention, gold_spans, prepare_doc
from ..text import clean_name
from ..types import COMPOSITE_SEP, NIL, NO_CODE, CorpusDoc
from .linker import Linker
from .targets import NameSelector, canonical_parts  # noqa: F401 - importable here as before

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language

    from ..linking import LinkingEngine

IGNORE_INDEX = -100


@dataclass
class TrainExample:
    """One tokenized example; ``labels`` is -100 on the prompt tokens."""

    input_ids: List[int]
    labels: List[int]
    prompt: str
    completion: str  # the target names joined by <SEP>
    mention: str
    code: str
    group: Optional[str]
    doc_id: str = ""
    source: str = "real"  # real | synthetic | kb_name

    @property
    def n_prompt(self) -> int:
        return len(self.input_ids) - sum(1 for x in self.labels if x != IGNORE_INDEX)

    def features(self) -> Dict[str, List[int]]:
        return {"input_ids": self.input_ids, "labels": self.labels}


@dataclass
class ExampleStats:
    """What happened to the gold mentions while building examples."""

    mentions: int = 0
    examples: int = 0
    no_code: int = 0  # NIL / empty gold code: skipped
    missing_code: int = 0  # gold code (or a part) not in the KB: skipped
    missing_codes: List[str] = field(default_factory=list)  # distinct, first seen first
    undecodable: int = 0  # code in the KB but none of its names is producible in the group
    unaligned: int = 0  # offsets that do not map onto spaCy tokens
    too_long: int = 0  # completion longer than max_new_tokens
    kb_name_examples: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["missing_codes"] = d["missing_codes"][:50]
        d["n_missing_codes"] = len(self.missing_codes)
        return d


#: ``train`` turns composite mentions on when at least this share of the training corpus's
#: coded gold mentions are composite (SPACCC: 5.4%)
COMPOSITE_MIN_SHARE = 0.01


@dataclass(frozen=True)
class CompositeGold:
    """How many coded gold mentions of a corpus are composite (``a+b``)."""

    composite: int
    coded: int

    @property
    def share(self) -> float:
        return self.composite / self.coded if self.coded else 0.0

    def wants_composite(self, min_share: float = COMPOSITE_MIN_SHARE) -> bool:
        """The ``train`` default: composite mentions on when the share reaches
        ``min_share``."""
        return self.coded > 0 and self.share >= min_share

    def to_dict(self) -> Dict[str, float]:
        return {"composite": self.composite, "coded": self.coded,
                "share": round(self.share, 5)}


def composite_gold(docs: Iterable[CorpusDoc]) -> CompositeGold:
    """Count the gold mentions with a code (not NIL / NO_CODE) and those with several
    ``+``-joined parts."""
    composite = coded = 0
    for doc in docs:
        for m in doc.mentions:
            code = (m.code or "").strip()
            if not code or code in (NIL, NO_CODE):
                continue
            coded += 1
            composite += sum(1 for p in code.split(COMPOSITE_SEP) if p.strip()) > 1
    return CompositeGold(composite, coded)


def _warn_missing(stats: ExampleStats, what: str) -> None:
    if stats.missing_code:
        warnings.warn(Warnings.W060.format(n=stats.missing_code, n_codes=len(stats.missing_codes),
                                           what=what, first=stats.missing_codes[:5]),
                      stacklevel=3)
    if stats.undecodable:
        warnings.warn(Warnings.W061.format(n=stats.undecodable, what=what), stacklevel=3)


def _make_example(linker: Linker, prompt: str, names: Sequence[str], *,
                  mention: str, code: str, group: Optional[str], doc_id: str, source: str,
                  sep_id: int, max_new_tokens: int, stats: ExampleStats,
                  prompt_ids: Optional[List[int]] = None) -> Optional[TrainExample]:
    tok = linker.tokenizer
    if prompt_ids is None:
        prompt_ids = encode_prompt(tok, prompt)
    completion_ids = encode_completion(tok, names, sep_id)
    if len(completion_ids) > max_new_tokens:
        stats.too_long += 1
        return None
    return TrainExample(
        input_ids=list(prompt_ids) + completion_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + completion_ids,
        prompt=prompt, completion=SEP_TOKEN.join(names), mention=mention, code=code,
        group=group, doc_id=doc_id, source=source)


def iter_mention_prompts(docs: Sequence[CorpusDoc], linker: Linker,
                         stats: Optional[ExampleStats] = None, nlp: Optional["Language"] = None,
                         ) -> Iterable[Tuple[CorpusDoc, str, str, str, Optional[str]]]:
    """Yield ``(doc, prompt, mention text, gold code, group)`` per gold mention, the prompt
    rendered by the component on the doc as the linker sees it in ``nlp`` (its components
    before the linker, e.g. the sentence segmenter, run first; tokens split at the gold
    bounds); overlapping mentions are all kept, each a training example of its own."""
    builder = linker.prompt_builder
    if nlp is None:
        nlp = spacy.blank(linker.vocab.lang or "xx", vocab=linker.vocab)
    for cdoc in docs:
        doc = prepare_doc(nlp, cdoc)
        has_sents, text = doc.has_annotation("SENT_START"), doc.text
        for m, span in gold_spans(doc, cdoc):
            if stats is not None:
                stats.mentions += 1
            if span is None:
                if stats is not None:
                    stats.unaligned += 1
                continue
            group = linker.group_for(m.label)
            prompt = builder.prompt(doc_mention(span, group, has_sents, text))
            yield cdoc, prompt, span.text, (m.code or ""), group


def build_examples(docs: Sequence[CorpusDoc], linker: Linker, *,
                   top_k_targets: int = 1, kb_name_examples: bool = False,
                   source: str = "real", selector: Optional[NameSelector] = None,
                   max_examples: Optional[int] = None, warn: bool = True,
                   nlp: Optional["Language"] = None,
                   ) -> Tuple[List[TrainExample], ExampleStats]:
    """Tokenized training examples for the gold mentions of ``docs``.

    ``linker`` is a ready :class:`SynCABELLinker` (``set_model`` called): its KB, tokenizer,
    label map, template and context settings define the prompts and targets.

    * target: the ``top_k_targets`` names of the gold code (producible by the group's trie)
      closest to the mention by char 3-gram TF-IDF; one example each.
    * composite codes ``a+b``: the closest name of each part, joined by ``<SEP>``.
    * gold codes missing from the KB (after ``kb.canonical_code``) are counted in the stats
      and reported with W060; codes whose names the group cannot produce with W061.
    * ``kb_name_examples``: also one example per KB name (its own target), rendered with the
      name alone as context.
    * ``max_examples``: stop after this many coded mentions (KB-name examples excluded).
    """
    kb = linker.kb
    tok = linker.tokenizer
    selector = selector or NameSelector(kb)
    sep_id = int(tok.convert_tokens_to_ids(SEP_TOKEN))
    max_new = linker.settings.max_new_tokens
    stats = ExampleStats()
    out: List[TrainExample] = []
    missing_seen: Dict[str, None] = {}
    items = []
    for cdoc, prompt, mention, raw_code, group in iter_mention_prompts(docs, linker, stats, nlp):
        if max_examples is not None and len(items) >= max_examples:
            stats.mentions -= 1
            break
        if not raw_code or raw_code in (NIL, NO_CODE):
            stats.no_code += 1
            continue
        parts = canonical_parts(kb, raw_code)
        missing = [p for p in parts if p not in kb]
        if missing:
            stats.missing_code += 1
            for p in missing:
                missing_seen.setdefault(p, None)
            continue
        items.append((cdoc, prompt, mention, parts, group))
    queries = selector.vectorize([it[2] for it in items]) if items else None
    for i, (cdoc, prompt, mention, parts, group) in enumerate(items):
        query = queries[i]
        ranked = [selector.rank(mention, selector.candidates(p, group), query) for p in parts]
        if any(not r for r in ranked):
            stats.undecodable += 1
            continue
        code = COMPOSITE_SEP.join(parts)
        if len(parts) == 1:
            targets = [[n] for n in ranked[0][:max(1, top_k_targets)]]
        else:
            targets = [[r[0] for r in ranked]]
        prompt_ids = encode_prompt(tok, prompt)
        for names in targets:
            ex = _make_example(linker, prompt, names, mention=mention, code=code, group=group,
                               doc_id=cdoc.id, source=source, sep_id=sep_id,
                               max_new_tokens=max_new, stats=stats, prompt_ids=prompt_ids)
            if ex is not None:
                out.append(ex)
    stats.missing_codes = list(missing_seen)
    if kb_name_examples:
        names_out = build_kb_name_examples(linker, sep_id=sep_id, stats=stats)
        out.extend(names_out)
    stats.examples = len(out)
    if warn:
        _warn_missing(stats, f"the {source} corpus")
    return out, stats


def build_kb_name_examples(linker: Linker, *, sep_id: Optional[int] = None,
                           stats: Optional[ExampleStats] = None) -> List[TrainExample]:
    """One example per (group, name) of the KB: the name is the mention, its own sentence,
    and the target."""
    kb, tok = linker.kb, linker.tokenizer
    builder = linker.prompt_builder
    sep_id = sep_id if sep_id is not None else int(tok.convert_tokens_to_ids(SEP_TOKEN))
    stats = stats if stats is not None else ExampleStats()
    nlp = spacy.blank(linker.vocab.lang or "xx", vocab=linker.vocab)
    out: List[TrainExample] = []
    for code, name, group in kb.entries():
        doc = nlp.make_doc(name)
        if not len(doc):
            continue
        prompt = builder.prompt(doc_mention(doc[0:len(doc)], group))
        ex = _make_example(linker, prompt, [name], mention=name, code=code, group=group,
                           doc_id=f"kb:{group}", source="kb_name", sep_id=sep_id,
                           max_new_tokens=linker.settings.max_new_tokens, stats=stats)
        if ex is not None:
            out.append(ex)
            stats.kb_name_examples += 1
    return out


def _majority_aliases(rows: Iterable[Tuple[str, str, Optional[str]]],
                      ) -> List[Tuple[str, str, Optional[str]]]:
    """``(mention, target, group)`` rows (mentions cleaned, non-empty) voted into one alias
    per distinct mention form and group (case-insensitive): its most frequent target, the
    first form seen."""
    from collections import Counter

    votes: Dict[Tuple[str, Optional[str]], Counter] = {}
    text_of: Dict[Tuple[str, Optional[str]], str] = {}
    for mention, target, group in rows:
        key = (mention.lower(), group)
        votes.setdefault(key, Counter())[target] += 1
        text_of.setdefault(key, mention)
    return [(text_of[key], c.most_common(1)[0][0], key[1]) for key, c in votes.items()]


def mention_aliases(examples: Sequence[TrainExample]) -> List[Tuple[str, str, Optional[str]]]:
    """Training mentions as aliases of their target names, ``(mention, name, group)``, for
    candidate retrieval (:meth:`SynCABELLinker.set_aliases`): one per distinct mention form
    and group (case-insensitive), its most frequent target; composite targets, KB-name
    examples and mentions written as their target are left out."""
    def rows() -> Iterable[Tuple[str, str, Optional[str]]]:
        for ex in examples:
            if ex.source == "kb_name" or SEP_TOKEN in ex.completion:
                continue
            mention = clean_name(ex.mention)
            if mention and mention.lower() != ex.completion.lower():
                yield mention, ex.completion, ex.group

    return _majority_aliases(rows())


def composite_aliases(rows: Iterable[Tuple[str, str, Optional[str]]], kb: Any,
                      ) -> List[Tuple[str, str, Optional[str]]]:
    """Composite gold mentions as aliases of their code set, ``(mention, "a<SEP>b", group)``
    (each part a KB name of its code in the group), from ``(mention, code, group)`` rows: one
    per distinct mention form and group (case-insensitive), its most frequent code set; parts
    without a name in the group, and single codes, are left out. The engine settles a mention
    that is exactly such an alias on its code set (``composite_expand``)."""
    def named() -> Iterable[Tuple[str, str, Optional[str]]]:
        for mention, code, group in rows:
            parts = sorted({p.strip() for p in str(code or "").split(COMPOSITE_SEP) if p.strip()})
            mention = clean_name(mention)
            if len(parts) < 2 or not mention or NO_CODE in parts or NIL in parts:
                continue
            names = [next(iter(kb.names_of(p, group)), None) for p in parts]
            if None not in names:
                yield mention, SEP_TOKEN.join(names), group

    return _majority_aliases(named())


@dataclass
class DevSet:
    """Encoded dev prompts, their groups and gold codes (for Recall@1 by decoding)."""

    prompt_ids: List[List[int]]
    groups: List[Optional[str]]
    codes: List[str]
    mentions: List[str]

    def __len__(self) -> int:
        return len(self.codes)


def build_dev_set(docs: Sequence[CorpusDoc], linker: Linker, size: int = 200,
                  seed: int = 0, nlp: Optional["Language"] = None) -> DevSet:
    """A deterministic sample of ``size`` coded dev mentions (all when ``size`` <= 0)."""
    import random

    items = [(p, m, c, g) for _, p, m, c, g in iter_mention_prompts(docs, linker, nlp=nlp)
             if c and c not in (NIL, NO_CODE)]
    if 0 < size < len(items):
        rng = random.Random(seed)
        idx = sorted(rng.sample(range(len(items)), size))
        items = [items[i] for i in idx]
    tok = linker.tokenizer
    return DevSet(prompt_ids=[encode_prompt(tok, p) for p, _, _, _ in items],
                  groups=[g for _, _, _, g in items], codes=[c for _, _, c, _ in items],
                  mentions=[m for _, m, _, _ in items])


def dev_recall_at_1(engine: "LinkingEngine", dev: DevSet) -> float:
    """Recall@1 of the engine on the dev set, in its own decoding mode."""
    if not len(dev):
        return 0.0
    cands = engine.link(dev.prompt_ids, dev.groups, dev.mentions)
    hits = sum(hit(gold, [c[0].code] if c else [], 1, kb=engine.kb)
               for gold, c in zip(dev.codes, cands))
    return hits / len(dev)
