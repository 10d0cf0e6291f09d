"""The ``syncabel_linker`` spaCy component: a thin adapter over the linking engine.

It turns every entity of ``doc.ents`` into a plain mention record, which its
:class:`~spacy_syncabel.prompting.PromptBuilder` renders as a prompt (the mention marked in its
context), asks the :class:`~spacy_syncabel.linking.LinkingEngine` for ranked candidates and
writes them back (``ent.kb_id_``, ``ent._.syncabel``). Settings come only from the component's config block; the
KB and model loaders live under ``[initialize.components.syncabel_linker]`` and run in
:meth:`SynCABELLinker.initialize`. A saved folder holds the KB, the tokenizer, safetensors
weights, the retrieval aliases and fingerprints: nothing in it decides what code runs.
"""

import copy
import json
import math
import multiprocessing
import os
import tempfile
import unicodedata
import warnings
from pathlib import Path
from types import MappingProxyType
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence,
                    Set, Tuple)

import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import minibatch

from . import segmentation as _segmentation  # noqa: F401 - registers syncabel_sentencizer
from .decoding import TrieSet
from .errors import Errors, Warnings
from .pipes import LINKER_FACTORY
from .linking import LinkingEngine, LinkSettings
from .linking.candidates import GeneratorFactory
from .models import is_fine_tuned, mark_fine_tuned  # noqa: F401 - importable here as before
from .prompting import DEFAULT_TEMPLATE, SEP_TOKEN, Mention, PromptBuilder, PromptTemplate, verb_for
from .prompting.docs import doc_mention
from .linking.composite_gate import GATE_FILE, CompositeGate
from .linking.probability import ProbabilityCalibrator
from .text import clean_name
from .types import NIL

EXTENSION = "syncabel"
#: ``Span._.syncabel_nil_reason``: why a mention the linker decoded was set to NIL anyway
NIL_REASON = "syncabel_nil_reason"
NONFINITE = "non-finite model scores"
UNDER_NIL_THRESHOLD = "probability under the NIL threshold"
#: ``Span._.kb_ents``: scispaCy's ``[(code, probability)]``, best first (shared with scispaCy)
KB_ENTS = "kb_ents"
PROBABILITY_FILE = "probability.json"
STATE_VERSION = 2
SCORE_KS = (1, 5)
ModelLoader = Callable[..., Tuple[Any, Any]]
KBLoader = Callable[[], Any]
# serialization fields `exclude` understands
FIELDS = ("kb", "model", "aliases")

DEFAULT_CONFIG: Dict[str, Any] = {
    "label_map": {},
    "template": DEFAULT_TEMPLATE,
    "verb": None,
    **{k: v for k, v in LinkSettings().to_dict().items()},
    "candidate_generator": {"@misc": "spacy_syncabel.TfidfCandidates.v1"},
    "device": "auto",
    "dtype": "auto",
    "overwrite": True,
    "labels_discard": [],
    # null: off; true: nlp.evaluate links the gold entities (spaCy EntityLinker's name)
    "use_gold_ents": None,
    # deprecated name of use_gold_ents (W450); saved configs that set it still load
    "score_gold_ents": None,
    # null: link doc.ents; a key: link the spans of doc.spans[key] (they may overlap)
    "spans_key": None,
}
#: the component's own settings (not decode settings): ``with_settings`` changes them too
COMPONENT_SETTINGS = ("label_map", "labels_discard", "overwrite", "use_gold_ents", "spans_key")


def resolve_use_gold_ents(name: str, use_gold_ents: Optional[bool],
                          score_gold_ents: Optional[bool]) -> bool:
    """``use_gold_ents``, or its deprecated name ``score_gold_ents`` (W450); both set to
    different values is E450."""
    if score_gold_ents is None:
        return bool(use_gold_ents)
    warnings.warn(Warnings.W450.format(name=name))
    if use_gold_ents is not None and bool(use_gold_ents) != bool(score_gold_ents):
        raise ValueError(Errors.E450.format(name=name, use=str(use_gold_ents).lower(),
                                            score=str(score_gold_ents).lower()))
    return bool(score_gold_ents)


def register_extensions() -> None:
    """Register ``Span._.syncabel`` (the n-best list) once; safe to call again."""
    if not Span.has_extension(EXTENSION):
        Span.set_extension(EXTENSION, default=None)
    if not Span.has_extension(NIL_REASON):
        Span.set_extension(NIL_REASON, default=None)
    if not Span.has_extension(KB_ENTS):  # scispaCy's linker may have registered it: reused
        Span.set_extension(KB_ENTS, default=[])


class _NilCandidates(list):
    """An empty n-best that says why the mention is NIL (``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def _finite(cand: Dict[str, Any]) -> bool:
    return all(math.isfinite(cand[k]) for k in ("score", "logprob", "similarity")
               if isinstance(cand.get(k), (int, float)))


def is_blank_mention(text: str) -> bool:
    """True for a mention with nothing to link: white space, control or invisible characters."""
    cleaned = clean_name(text).replace(" ", "")
    return all(unicodedata.category(ch) in ("Cf", "Mn", "Me") for ch in cleaned)


@Language.factory(
    LINKER_FACTORY,
    assigns=["token.ent_kb_id", f"span._.{EXTENSION}", f"span._.{NIL_REASON}",
             f"span._.{KB_ENTS}"],
    requires=["doc.ents"],
    default_config=DEFAULT_CONFIG,
    default_score_weights={"nel_micro_f": 1.0, "nel_micro_r": None, "nel_micro_p": None,
                           **{f"syncabel_recall@{k}": None for k in SCORE_KS}},
)
def make_syncabel_linker(nlp: Language, name: str, label_map: Dict[str, Optional[str]],
                         template: str, verb: Optional[str], mode: str, num_beams: int,
                         n_best: int, length_penalty: float, constrained: bool, composite: bool,
                         merge_by_code: bool, candidates: int, composite_pairs: int,
                         composite_margin: Optional[float], composite_expand: bool,
                         composite_split: Optional[float], composite_gate: bool,
                         prior_weight: float,
                         threshold: float, cascade: bool, cascade_margin: Optional[float],
                         batch_size: int, max_batch_tokens: int, max_context_tokens: int,
                         max_mention_tokens: int, context_chars: int, max_new_tokens: int,
                         candidate_generator: GeneratorFactory,
                         device: str, dtype: str, overwrite: bool,
                         labels_discard: List[str], use_gold_ents: Optional[bool],
                         score_gold_ents: Optional[bool],
                         spans_key: Optional[str] = None) -> "SynCABELLinker":
    settings = LinkSettings(
        mode=mode, num_beams=num_beams, n_best=n_best, length_penalty=length_penalty,
        constrained=constrained, composite=composite, merge_by_code=merge_by_code,
        candidates=candidates, composite_pairs=composite_pairs,
        composite_margin=composite_margin, composite_expand=composite_expand,
        composite_split=composite_split, composite_gate=composite_gate,
        prior_weight=prior_weight,
        threshold=threshold, cascade=cascade, cascade_margin=cascade_margin,
        batch_size=batch_size, max_batch_tokens=max_batch_tokens,
        max_context_tokens=max_context_tokens, max_mention_tokens=max_mention_tokens,
        context_chars=context_chars, max_new_tokens=max_new_tokens)
    return SynCABELLinker(nlp.vocab, name=name, settings=settings, label_map=label_map,
                          template=template, verb=verb or verb_for(nlp.lang),
                          candidate_generator=candidate_generator, device=device, dtype=dtype,
                          overwrite=overwrite, labels_discard=labels_discard,
                          use_gold_ents=resolve_use_gold_ents(name, use_gold_ents,
                                                              score_gold_ents),
                          verb_from_model=verb is None, spans_key=spans_key)


class SynCABELLinker(Pipe):
    """Links every entity of ``doc.ents`` to a KB code by (trie-constrained) generation.

    The KB and the LM load in :meth:`initialize` or :meth:`from_disk`, never in ``__init__``.
    """

    def __init__(self, vocab, name: str = LINKER_FACTORY, *,
                 settings: Optional[LinkSettings] = None,
                 label_map: Optional[Dict[str, Optional[str]]] = None,
                 template: str = DEFAULT_TEMPLATE, verb: str = "is",
                 candidate_generator: Optional[GeneratorFactory] = None,
                 device: str = "auto", dtype: str = "auto", overwrite: bool = True,
                 labels_discard: Iterable[str] = (), use_gold_ents: bool = False,
                 verb_from_model: bool = False, spans_key: Optional[str] = None) -> None:
        """``labels_discard``: entity labels left unlinked (no kb_id set, no n-best), as
        spaCy's EntityLinker. ``use_gold_ents``: ``score`` links the gold entities.
        ``verb_from_model``: the verb was not set in the config, so a model whose config
        declares its language (``lang``, as SynCABEL checkpoints do) gets that language's verb,
        the one it was trained with. ``spans_key``: link the spans of ``doc.spans[spans_key]``
        (nested or overlapping mentions) instead of ``doc.ents``."""
        self.vocab = vocab
        self.name = name
        self.settings = settings or LinkSettings()
        self.label_map: Dict[str, Optional[str]] = dict(label_map or {})
        self.template = PromptTemplate(template, verb, SEP_TOKEN)
        self.verb_from_model = verb_from_model
        self.candidate_generator = candidate_generator
        self.device, self.dtype = device, dtype
        self.overwrite, self.use_gold_ents = overwrite, bool(use_gold_ents)
        self.labels_discard: Tuple[str, ...] = tuple(labels_discard)
        self.spans_key: Optional[str] = spans_key
        self.engine: Optional[LinkingEngine] = None
        #: the fitted probability calibrator and NIL threshold (``calibrate``), or None
        self.calibrator: Optional[ProbabilityCalibrator] = None
        self.fingerprint: Optional[Dict[str, str]] = None
        self._warned_labels: set = set()
        self._builder: Optional[PromptBuilder] = None
        self._threads_checked = False
        register_extensions()

    # -- read-only views ------------------------------------------------------------------
    @property
    def cfg(self) -> Mapping[str, Any]:
        """The component's settings as a read-only mapping (change them in the config)."""
        return MappingProxyType({**self.settings.to_dict(), "label_map": dict(self.label_map),
                                 "template": self.template.prompt, "verb": self.template.verb,
                                 "device": self.device, "dtype": self.dtype,
                                 "overwrite": self.overwrite,
                                 "labels_discard": list(self.labels_discard),
                                 "use_gold_ents": self.use_gold_ents,
                                 "spans_key": self.spans_key})

    @property
    def score_gold_ents(self) -> bool:
        """Deprecated name of :attr:`use_gold_ents`."""
        return self.use_gold_ents

    @property
    def nil_threshold(self) -> Optional[float]:
        """The calibrated probability under which a mention is NIL (None: no such threshold)."""
        return self.calibrator.nil_threshold if self.calibrator is not None else None

    @property
    def is_ready(self) -> bool:
        return self.engine is not None

    def _ready_engine(self) -> LinkingEngine:
        if self.engine is None:
            raise ValueError(Errors.E020)
        return self.engine

    @property
    def kb(self):
        return self.engine.kb if self.engine is not None else None

    @property
    def lm(self):
        return self.engine.lm if self.engine is not None else None

    @property
    def tokenizer(self):
        return self.engine.tokenizer if self.engine is not None else None

    @property
    def tries(self):
        return self.engine.tries if self.engine is not None else None

    @property
    def aliases(self) -> List[Tuple[str, str, Optional[str]]]:
        return list(self.engine.aliases) if self.engine is not None else []

    @property
    def candidate_index(self):
        """The TF-IDF index of KB names and aliases (baseline and training targets)."""
        return self._ready_engine().tfidf_index

    # -- set-up ---------------------------------------------------------------------------
    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *,
                   nlp: Optional[Language] = None, kb_loader: Optional[KBLoader] = None,
                   model: Optional[ModelLoader] = None) -> None:
        """Load the KB and the LM (``[initialize.components.syncabel_linker]``), build the
        engine. Called again without loaders on a ready linker, it keeps what it has."""
        if kb_loader is None and model is None and self.is_ready:
            return
        if kb_loader is None:
            raise ValueError(Errors.E023.format(name=self.name))
        if model is None:
            raise ValueError(Errors.E022.format(name=self.name))
        kb = kb_loader()
        texts: List[str] = []
        if get_examples is not None:
            for i, eg in enumerate(get_examples()):
                if i >= 2000:
                    break
                texts.append(eg.reference.text)
        lm, tokenizer = model(kb, texts)
        self.set_model(lm, tokenizer, kb)

    def set_model(self, lm, tokenizer, kb, aliases: Iterable[Sequence[Any]] = (),
                  tries: Optional[TrieSet] = None) -> None:
        """Use this LM, tokenizer and KB: adds <SEP>, places the model, builds the engine
        (and the tries, unless ``tries`` built for this KB and tokenizer are given)."""
        from .models import ensure_sep_token, resolve_device, resolve_dtype, tokenizer_fingerprint

        ensure_sep_token(lm, tokenizer, SEP_TOKEN)
        self._use_model_verb(lm)
        if lm.get_input_embeddings().weight.shape[0] < len(tokenizer):
            raise ValueError(Errors.E014.format(model_vocab=lm.get_input_embeddings().weight.shape[0],
                                                tok_vocab=len(tokenizer)))
        self._check_label_map(kb)
        dev = resolve_device(self.device)
        lm.to(device=dev, dtype=resolve_dtype(self.dtype, dev))
        lm.eval()
        tokenizer.padding_side = "left"
        self.engine = LinkingEngine(kb, tokenizer, lm, self.settings,
                                    generator=self.candidate_generator, aliases=aliases,
                                    tries=tries)
        self.engine.warn_unreachable()
        if not is_fine_tuned(lm):
            warnings.warn(Warnings.W103)
        self.fingerprint = {"tokenizer": tokenizer_fingerprint(tokenizer),
                            "kb": kb.fingerprint()}

    def _use_model_verb(self, lm) -> None:
        """Prompt with the verb of the model's own language (W382 when it is not the
        pipeline's), unless the config sets the verb."""
        from .models import model_language

        lang = model_language(lm)
        if not self.verb_from_model or lang is None:
            return
        verb = verb_for(lang)
        if verb != self.template.verb:
            warnings.warn(Warnings.W382.format(model_lang=lang, nlp_lang=self.vocab.lang,
                                               verb=verb))
            self.template = PromptTemplate(self.template.prompt, verb, self.template.sep)

    def with_settings(self, **changes: Any) -> "SynCABELLinker":
        """A copy of this component with other settings that shares the KB, tries, weights
        and retriever (evaluation grids, benchmarks). The component itself never changes:
        settings of a loaded pipeline change through its config
        (``spacy.load(path, config={"components.syncabel_linker.num_beams": 10})``)."""
        if "score_gold_ents" in changes:  # the deprecated name (W450, E450)
            changes["use_gold_ents"] = resolve_use_gold_ents(
                self.name, changes.get("use_gold_ents"), changes.pop("score_gold_ents"))
        own = {k: changes.pop(k) for k in COMPONENT_SETTINGS if k in changes}
        new = copy.copy(self)
        new.settings = self.settings.replace(**changes)
        if self.engine is not None:
            new.engine = self.engine.with_settings(new.settings)
        if "label_map" in own:
            new.label_map = dict(own["label_map"] or {})
            if self.engine is not None:
                new._check_label_map(self.engine.kb)
        if "labels_discard" in own:
            new.labels_discard = tuple(own["labels_discard"] or ())
        new.overwrite = own.get("overwrite", self.overwrite)
        new.use_gold_ents = bool(own.get("use_gold_ents", self.use_gold_ents))
        new.spans_key = own.get("spans_key", self.spans_key)
        new._warned_labels = set()
        return new

    def set_weights(self, lm) -> None:
        """Decode with other weights of the same model (e.g. after a training round)."""
        self._ready_engine().lm = lm

    def _check_label_map(self, kb) -> None:
        for label, group in self.label_map.items():
            if group is not None and group not in kb.groups:
                raise ValueError(Errors.E104.format(label=label, group=group,
                                                    groups=list(kb.groups)))

    def set_aliases(self, aliases: Iterable[Sequence[Any]]) -> None:
        """Searchable aliases of KB names for candidate retrieval: ``(text, name, group)``
        (e.g. training mentions, each standing for its target name). Saved by ``to_disk``."""
        self._ready_engine().set_aliases(aliases)

    # -- prediction -----------------------------------------------------------------------
    def group_for(self, label: str) -> Optional[str]:
        """The KB group a label is linked against (None: all groups)."""
        tries = self._ready_engine().tries
        if label in self.label_map:
            return self.label_map[label]
        if label in tries:
            return label
        if label not in self._warned_labels:
            self._warned_labels.add(label)
            warnings.warn(Warnings.W002.format(label=label))
        return None

    @property
    def prompt_builder(self) -> PromptBuilder:
        """The :class:`~spacy_syncabel.prompting.PromptBuilder` of this linker's template,
        tokenizer and context settings (training and ``render`` use it too)."""
        b = self._builder
        if b is None or b.template != self.template or b.tokenizer is not self.tokenizer or (
                b.context_chars, b.max_context_tokens, b.max_mention_tokens) != (
                self.settings.context_chars, self.settings.max_context_tokens,
                self.settings.max_mention_tokens):
            new = PromptBuilder.from_settings(self.template, self.tokenizer, self.settings)
            new.warned_long = b is not None and b.warned_long
            b = self._builder = new
        return b

    def mention(self, ent: Span, group: Optional[str], has_sents: Optional[bool] = None,
                text: Optional[str] = None) -> Mention:
        """``ent`` as the plain mention the prompt builder renders."""
        return doc_mention(ent, group, has_sents, text)

    def mention_end(self, ent: Span) -> int:
        """The mention's end char, cut so the mention fits ``max_mention_tokens`` (W100)."""
        return self.prompt_builder.mention_end(ent.doc.text, ent.start_char, ent.end_char)

    def mention_text(self, ent: Span) -> str:
        """The mention as linked (cut to the token budget)."""
        return ent.doc.text[ent.start_char:self.mention_end(ent)]

    def mention_prompt(self, doc: Doc, ent: Span, group: Optional[str],
                       fit: bool = True, has_sents: Optional[bool] = None,
                       text: Optional[str] = None) -> str:
        """The prompt text for one entity (within the token budget when ``fit``).
        ``has_sents`` (whether ``doc`` has sentence starts) and ``text`` (``doc.text``) are
        computed when None; a caller rendering many entities of one doc passes them, since
        both walk the whole doc."""
        return self.prompt_builder.prompt(self.mention(ent, group, has_sents, text), fit=fit)

    def mention_prompt_ids(self, doc: Doc, ent: Span, group: Optional[str],
                           has_sents: Optional[bool] = None,
                           text: Optional[str] = None) -> List[int]:
        """Token ids of the entity's prompt; tokenizes once unless the context must shrink."""
        return self.prompt_builder.prompt_ids(self.mention(ent, group, has_sents, text))

    def predict(self, docs: Iterable[Doc]) -> List[List[Optional[List[Dict[str, Any]]]]]:
        """Decode every entity of ``docs``; returns per doc, per entity, the n-best (or None
        for an entity left as it is)."""
        engine = self._ready_engine()
        docs = list(docs)
        out: List[List[Optional[List[Dict[str, Any]]]]] = [[None] * len(self.mentions(d))
                                                           for d in docs]
        builder = self.prompt_builder
        refs: List[Tuple[int, int, Optional[str], str]] = []  # doc, entity, group, text linked
        mentions: List[Mention] = []
        for i, doc in enumerate(docs):
            has_sents, text = doc.has_annotation("SENT_START"), doc.text
            for j, ent in enumerate(self.mentions(doc)):
                if ent.label_ in self.labels_discard or (
                        not self.overwrite and ent.kb_id_ not in ("", NIL)):
                    continue
                if is_blank_mention(ent.text):
                    warnings.warn(Warnings.W003.format(text=ent.text, start=ent.start_char,
                                                       end=ent.end_char))
                    out[i][j] = []
                    continue
                group = self.group_for(ent.label_)
                mention = doc_mention(ent, group, has_sents, text)
                refs.append((i, j, group, builder.mention_text(mention)))
                mentions.append(mention)
        prompts = builder.lazy_ids(mentions)
        linked = engine.link(prompts, [r[2] for r in refs], [r[3] for r in refs])
        nonfinite: List[str] = []
        for k, ((doc_i, ent_i, _, mention_text), cands) in enumerate(zip(refs, linked)):
            dicts = [c.to_dict() for c in cands]
            if self.calibrator is not None:
                for d, p in zip(dicts, self.calibrator.probabilities(dicts)):
                    d["probability"] = p
            # beam search drops non-finite beams: a mention left with none is checked
            if all(_finite(d) for d in dicts) and (
                    dicts or not self._nonfinite_logits(prompts[k])):
                out[doc_i][ent_i] = dicts
            else:  # NaN/inf never reach ent._.syncabel nor outputs: NIL, with the reason
                nonfinite.append(mention_text)
                out[doc_i][ent_i] = _NilCandidates(NONFINITE)
        if nonfinite:
            warnings.warn(Warnings.W320.format(n=len(nonfinite), first=nonfinite[0],
                                               reason=NONFINITE))
        return out

    def _nonfinite_logits(self, prompt: Sequence[int]) -> bool:
        """Whether the LM's next-token logits after ``prompt`` hold NaN or infinity (damaged
        or overflowing weights): asked only for a mention that got no candidate at all."""
        import torch

        lm = self._ready_engine().lm
        with torch.inference_mode():
            logits = lm(input_ids=torch.tensor([list(prompt)], device=lm.device)).logits
        return not bool(torch.isfinite(logits[0, -1]).all())

    def mentions(self, doc: Doc) -> Sequence[Span]:
        """The spans this linker links: ``doc.ents``, or ``doc.spans[spans_key]``."""
        if self.spans_key is None:
            return doc.ents
        return doc.spans[self.spans_key] if self.spans_key in doc.spans else []


    def _set_group(self, doc: Doc, preds) -> None:
        """The span group ``spans_key`` again, its linked spans with their ``kb_id_`` (a span
        of a group is a copy: setting its ``kb_id_`` would not stay) and ``_.syncabel``."""
        from spacy.tokens import SpanGroup

        group = doc.spans[self.spans_key]
        decisions = [None if cands is None else self._decision(cands) for cands in preds]
        spans = [s if dec is None else Span(doc, s.start, s.end, label=s.label, kb_id=dec[0],
                                            span_id=s.id)
                 for s, dec in zip(group, decisions)]
        doc.spans[self.spans_key] = SpanGroup(doc, name=group.name, attrs=dict(group.attrs),
                                              spans=spans)
        for span, cands, dec in zip(spans, preds, decisions):
            if cands is not None:
                span._.set(EXTENSION, list(cands))
                span._.set(NIL_REASON, dec[1])
                span._.set(KB_ENTS, self._kb_ents(cands))

    def set_annotations(self, docs: Iterable[Doc], preds) -> None:
        """Write ``ent.kb_id_`` (NIL under the score threshold, or with a calibrator under the
        NIL threshold: the n-best stays), ``ent._.syncabel`` and ``ent._.kb_ents`` (on the spans
        of ``doc.spans[spans_key]`` with ``spans_key``)."""
        for doc, doc_preds in zip(docs, preds):
            if self.spans_key is not None:
                if doc_preds:
                    self._set_group(doc, doc_preds)
                continue
            reasons = []
            for ent, cands in zip(doc.ents, doc_preds):
                if cands is None:
                    reasons.append(None)
                    continue
                kb_id, reason = self._decision(cands)
                reasons.append(reason)
                for token in ent:
                    token.ent_kb_id_ = kb_id
            # span extensions are keyed by (start, end, label, kb_id): set them on the new ents
            for ent, cands, reason in zip(doc.ents, doc_preds, reasons):
                if cands is not None:
                    ent._.set(EXTENSION, list(cands))
                    ent._.set(NIL_REASON, reason)
                    ent._.set(KB_ENTS, self._kb_ents(cands))

    def _decision(self, cands: Sequence[Dict[str, Any]]) -> Tuple[str, Optional[str]]:
        """``(kb_id, NIL reason)`` of a mention's n-best."""
        best = cands[0] if cands else None
        if best is None:
            return NIL, getattr(cands, "reason", None)
        if best["score"] < self.settings.threshold:
            return NIL, None
        prob = best.get("probability")
        if self.calibrator is not None and prob is not None and self.calibrator.is_nil(prob):
            return NIL, UNDER_NIL_THRESHOLD
        return best["code"], None

    def _kb_ents(self, cands: Sequence[Dict[str, Any]]) -> List[Tuple[str, float]]:
        """scispaCy's ``kb_ents``: ``(code, probability)`` (the raw score without a
        calibrator) of the entries at or above the thresholds, best first."""
        key = "probability" if self.calibrator is not None else "score"
        floor = self.nil_threshold or 0.0
        out = [(c["code"], float(c[key])) for c in cands if c.get(key) is not None
               and c[key] >= floor and c["score"] >= self.settings.threshold]
        return sorted(out, key=lambda x: -x[1])

    def _one_thread_in_child(self) -> None:
        """In a child of ``nlp.pipe(n_process=N)``: one torch thread (OpenMP pools do not
        survive a fork, and N processes should use one core each)."""
        if not self._threads_checked:
            self._threads_checked = True
            if multiprocessing.parent_process() is not None:
                import torch

                torch.set_num_threads(1)

    def __call__(self, doc: Doc) -> Doc:
        self._one_thread_in_child()
        error_handler = self.get_error_handler()
        try:
            self.set_annotations([doc], self.predict([doc]))
            return doc
        except Exception as e:  # noqa: BLE001 - handed to spaCy's error handler
            error_handler(self.name, self, [doc], e)
            return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Link docs in batches of ``batch_size`` docs; mentions of a batch decode together.
        A failing batch is retried doc by doc, so only the failing docs reach the error
        handler (``nlp.set_error_handler``) and the rest are linked."""
        self._one_thread_in_child()
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
            except Exception:  # noqa: BLE001 - retried one by one below
                for doc in docs:
                    try:
                        self.set_annotations([doc], self.predict([doc]))
                    except Exception as e:  # noqa: BLE001 - handed to the error handler
                        error_handler(self.name, self, [doc], e)
            yield from docs

    # -- scoring --------------------------------------------------------------------------
    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """spaCy's link scores (unlinked gold = NIL) plus Recall@1 and Recall@5.

        With ``use_gold_ents`` the gold entities are linked here, so ``spacy evaluate``
        works on a pipeline that holds only the linker.
        """
        from .evaluation.metrics import recall_at_k_from_docs

        examples = list(examples)
        if self.use_gold_ents:
            examples = [self._gold_linked(eg) for eg in examples]
        scores = Scorer.score_links(examples, negative_labels=[NIL])
        scores.update(recall_at_k_from_docs(
            [(eg.predicted, eg.reference) for eg in examples], ks=SCORE_KS,
            prefix="syncabel_", kb=self.kb))
        return scores

    def _gold_linked(self, eg: Example) -> Example:
        pred = eg.reference.copy()
        for token in pred:
            token.ent_kb_id_ = ""
        self.set_annotations([pred], self.predict([pred]))
        return Example(pred, eg.reference)

    # -- serialization --------------------------------------------------------------------
    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        """Save the KB, tokenizer and weights (safetensors), the tries (npy + marisa),
        aliases and fingerprints, then state.json with the sha256 of the weights, model
        config, tries.json and aliases; the settings are the pipeline's config.cfg. The
        folder is written new beside ``path`` and renamed into place once complete (the parts
        in ``exclude`` carried over from the old one): saving over the folder a pipeline was
        loaded from never truncates the files its tries and weights are memory-mapped from."""
        import shutil
        import tempfile

        from .output_paths import swap_into_place

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        exclude = set(exclude)
        new = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".saving", dir=path.parent))
        try:
            kept = {"kb": ("kb", "tries"), "model": ("model",), "aliases": ("aliases.jsonl",)}
            for part in exclude & set(kept):
                for name in kept[part]:
                    old = path / name
                    if old.is_dir() and not old.is_symlink():
                        shutil.copytree(old, new / name)
                    elif old.is_file() and not old.is_symlink():
                        shutil.copy2(old, new / name)
            self._write_folder(new, exclude)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        swap_into_place(new, path)

    def _write_folder(self, path: Path, exclude: Set[str]) -> None:
        from .models import save_pretrained
        from .saved_folder import CHECKSUM_KEY, record_checksums

        engine = self._ready_engine()
        # state.json goes last: it holds the checksums of what was written
        (path / "state.json").unlink(missing_ok=True)
        if "kb" not in exclude:
            engine.kb.to_disk(path / "kb")
            engine.tries.to_disk(path / "tries")
        if "model" not in exclude:
            save_pretrained(engine.lm, engine.tokenizer, path / "model")
        if "aliases" not in exclude:
            (path / "aliases.jsonl").unlink(missing_ok=True)  # no stale aliases
            if engine.aliases:
                srsly.write_jsonl(path / "aliases.jsonl", [{"text": t, "name": n, "group": g}
                                                           for t, n, g in engine.aliases])
        (path / PROBABILITY_FILE).unlink(missing_ok=True)
        if self.calibrator is not None:
            srsly.write_json(path / PROBABILITY_FILE, self.calibrator.to_dict())
        (path / GATE_FILE).unlink(missing_ok=True)
        if engine.composite_gate is not None:
            # every digit: the loaded gate is the saved one
            (path / GATE_FILE).write_text(json.dumps(engine.composite_gate.to_dict(), indent=1),
                                          encoding="utf8")
        checksums = record_checksums(path, model=None if "model" in exclude else "model",
                                     extra=(PROBABILITY_FILE, GATE_FILE) if "aliases" in exclude
                                     else ("aliases.jsonl", PROBABILITY_FILE, GATE_FILE))
        if "kb" in exclude:
            checksums = {k: v for k, v in checksums.items() if not k.startswith("tries/")}
        srsly.write_json(path / "state.json", {"version": STATE_VERSION,
                                               "fingerprint": self.fingerprint,
                                               CHECKSUM_KEY: checksums})

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "SynCABELLinker":
        """Load what :meth:`to_disk` saved, offline. Weights load from safetensors only and
        never with remote code; fingerprints are checked. The folder is untrusted: only its
        regular files are read, size-capped (``guarded.py``), the model folder is checked
        before ``transformers`` reads it and the checksums in state.json are verified
        (``saved_folder.py``)."""
        from .guarded import check_tree, exists_in
        from .kb import ConceptKB
        from .models import load_causal_lm, tokenizer_fingerprint
        from .saved_folder import (check_model_folder, checksums_of_state, is_model_state,
                                   verify_checksums)

        exclude = set(exclude)
        path = Path(path)
        if path.is_symlink():  # the pipeline's own folder may be a link, not the linker's
            raise ValueError(Errors.E320.format(path=path, target=os.readlink(path)))
        state = _read_json(path / "state.json", root=path)
        fingerprint = state.get("fingerprint") if isinstance(state, dict) else None
        if not isinstance(fingerprint, dict):
            raise ValueError(Errors.E103.format(path=path / "state.json",
                                                err="no 'fingerprint' object"))
        checksums = checksums_of_state(path, state)
        if "kb" in exclude or "model" in exclude:
            if self.engine is None:
                raise ValueError(Errors.E106.format(path=path))
        kb = self.engine.kb if "kb" in exclude else ConceptKB.load(path / "kb", root=path)
        if "model" in exclude:
            lm, tokenizer = self.engine.lm, self.engine.tokenizer
        else:
            check_model_folder(path, "model")
            # weights and configs before transformers reads them; the tokenizer's files
            # after its fingerprint (E021 says more about a tokenizer from another run)
            verify_checksums(path, checksums, "model", "the model's weights and config",
                             select=is_model_state)
            lm, tokenizer = load_causal_lm(str(path / "model"), dtype="float32", device="cpu",
                                           trust_remote_code=False, use_safetensors=True,
                                           strict=True)
        found = tokenizer_fingerprint(tokenizer)
        if found != fingerprint.get("tokenizer"):
            raise ValueError(Errors.E021.format(path=path, found=found[:12],
                                                expected=str(fingerprint.get("tokenizer"))[:12]))
        if kb.fingerprint() != fingerprint.get("kb"):
            raise ValueError(Errors.E021.format(path=path, found="kb:" + kb.fingerprint()[:12],
                                                expected="kb:" + str(fingerprint.get("kb"))[:12]))
        if "model" not in exclude:
            verify_checksums(path, checksums, "model", "the model's tokenizer",
                             select=lambda rel: not is_model_state(rel))
        aliases: List[Tuple[str, str, Optional[str]]] = []
        # a folder with checksums lists its aliases file: missing, it is E326; an older
        # folder has aliases when the file is there
        if "aliases" not in exclude and (
                "aliases.jsonl" in checksums if checksums is not None
                else exists_in(path, "aliases.jsonl")):
            verify_checksums(path, checksums, "aliases.jsonl", "the linker's aliases")
            aliases = _read_aliases(path, "aliases.jsonl")
        tries = None  # folders saved before the tries were: rebuilt from the KB
        if "kb" not in exclude and (exists_in(path, "tries/tries.json") or any(
                k.startswith("tries/") for k in checksums or ())):
            check_tree(path, "tries", lambda rel: "tries")
            verify_checksums(path, checksums, "tries", "the token tries")
            tries = TrieSet.from_disk(path / "tries", tokenizer, kb.fingerprint(),
                                      names=kb.name_table)
            if self.settings.composite and tries.meta.get("legacy_composite"):
                warnings.warn(Warnings.W210.format(path=path / "tries"))
        calibrator = None
        if (PROBABILITY_FILE in checksums if checksums is not None
                else exists_in(path, PROBABILITY_FILE)):
            verify_checksums(path, checksums, PROBABILITY_FILE, "the probability calibrator")
            calibrator = ProbabilityCalibrator.from_dict(
                _read_json(path / PROBABILITY_FILE, root=path), str(path / PROBABILITY_FILE))
        gate = None
        if (GATE_FILE in checksums if checksums is not None else exists_in(path, GATE_FILE)):
            verify_checksums(path, checksums, GATE_FILE, "the composite gate")
            gate = CompositeGate.from_dict(_read_json(path / GATE_FILE, root=path),
                                           str(path / GATE_FILE))
        # the engine fits them to the composite setting (the first part serves both)
        self.set_model(lm, tokenizer, kb, aliases, tries)
        self.calibrator = calibrator
        self.engine.composite_gate = gate
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        """Everything :meth:`to_disk` writes, as one msgpack blob of ``{file: bytes}``."""
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp, exclude=exclude)
            root = Path(tmp)
            files = {p.relative_to(root).as_posix(): p.read_bytes()
                     for p in sorted(root.rglob("*")) if p.is_file()}
        return srsly.msgpack_dumps({"syncabel_linker": STATE_VERSION, "files": files})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple(),
                   ) -> "SynCABELLinker":
        """Load bytes written by :meth:`to_bytes` (file names are checked: no path escapes)."""
        try:
            data = srsly.msgpack_loads(bytes_data)
            files = data["files"]
            assert data.get("syncabel_linker") == STATE_VERSION and isinstance(files, dict)
        except Exception as err:  # noqa: BLE001 - re-raised with a code
            raise ValueError(Errors.E105.format(err=f"{type(err).__name__}: {err}")) from err
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp).resolve()
            for rel, content in files.items():
                target = (root / str(rel)).resolve()
                if root not in target.parents or not isinstance(content, bytes):
                    raise ValueError(Errors.E105.format(err=f"bad entry {rel!r}"))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            self.from_disk(root, exclude=exclude)
        return self


def _read_json(path: Path, root: Optional[Path] = None) -> Any:
    from .textio import read_json

    try:
        return read_json(path, root=root, kind="json")
    except OSError as err:
        raise ValueError(Errors.E103.format(path=path, err=f"{type(err).__name__}: {err}")) from err


def _read_aliases(root: Path, name: str) -> List[Tuple[str, str, Optional[str]]]:
    from .textio import iter_jsonl

    path = root / name
    out = []
    try:
        for i, row in iter_jsonl(path, root=root, kind="aliases"):
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) \
                    or not isinstance(row.get("name"), str):
                raise ValueError(f"line {i}: expected {{'text', 'name', 'group'}}")
            group = row.get("group")
            out.append((row["text"], row["name"], None if group is None else str(group)))
    except (OSError, ValueError) as err:
        if str(err).startswith("[E"):  # already coded (link, size, depth...)
            raise
        raise ValueError(Errors.E103.format(path=path, err=str(err))) from err
    return out
