"""The linking engine: KB + tries + causal LM + candidate generator + settings -> candidates.

No spaCy here: the engine takes encoded prompts, the mentions' KB groups and their texts, and
returns ranked :class:`~spacy_syncabel.types.Candidate` lists. The ``syncabel_linker``
component, training, calibration, DPO mining and evaluation all call it; none of them mutates
it. A different way of decoding is a different engine view (:meth:`LinkingEngine.with_settings`)
that shares the KB, tries, weights and candidate generator.
"""
from __future__ import annotations

import copy
import dataclasses
import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..decoding import BeamSearchConfig, TrieSet, beam_search
from ..errors import Errors, Warnings
from ..prompting import SEP_TOKEN, encode_completion
from ..types import COMPOSITE_SEP, NO_CODE, PATH_DICTIONARY, PATH_LM, Candidate
from .candidates import (Alias, CandidateGenerator, ExactIndex, GeneratorFactory, Retrieved,
                         TfidfCandidates, tfidf_candidates)
from .cascade import Settlement, settle
from .composite import CompositeAliases, composite_proposals, conjuncts, expanded_conjuncts
from .composite_gate import CompositeGate, candidate_features, gate_features
from .settings import MODE_BEAM, MODE_RERANK, LinkSettings

#: ``rank_scored``'s gate when none is given: the engine's ``composite_margin``
_SETTING = object()
#: (name, retrieval score, summed log-prob, tokens incl. EOS, <SEP> margin) of one scored
#: candidate; the margin (:func:`sep_margins`) is None for a single name
ScoredName = Tuple[str, float, float, int, Optional[float]]


def rank_value(logprob: float, n_tokens: int, length_penalty: float) -> float:
    """HF generate's beam score: summed log-prob / length ** length_penalty."""
    return logprob / (max(n_tokens, 1) ** length_penalty)


def sep_positions(tokens: Sequence[int], sep_id: int) -> List[int]:
    """Where a completion's separators are (each follows a complete name)."""
    return [i for i, t in enumerate(tokens) if t == sep_id]


def gate_completions(tokens: Sequence[int], sep_id: int, eos_id: int) -> List[List[int]]:
    """What the gate scores for a composite completion: for each of its separators, the
    completion up to the name before it, ended by EOS, then by ``<SEP>``. Each is a prefix of
    the completion plus one token, so teacher forcing runs no extra position for them."""
    out: List[List[int]] = []
    for i in sep_positions(tokens, sep_id):
        out += [list(tokens[:i]) + [eos_id], list(tokens[:i + 1])]
    return out


def sep_margins(logprobs: Sequence[float]) -> Optional[float]:
    """A composite's gate value from its :func:`gate_completions`' summed log-probs: the
    smallest ``log P(<SEP>) - log P(EOS)`` over its separators (None: no separator)."""
    pairs = [logprobs[i + 1] - logprobs[i] for i in range(0, len(logprobs) - 1, 2)]
    return min(pairs) if pairs else None


def passes_gate(margin: Optional[float], gate: Optional[float]) -> bool:
    """Whether a scored candidate may be an answer: a single name (margin None) always; a
    composite when there is no gate or the model ranks each ``<SEP>`` at least ``gate``
    above stopping."""
    return margin is None or gate is None or margin >= gate


def is_composite_answer(cands: Sequence[Candidate]) -> bool:
    """Whether an n-best's first answer is a composite code."""
    return bool(cands) and COMPOSITE_SEP in cands[0].code


def best_composite_only(ranked: Sequence[ScoredName]) -> List[ScoredName]:
    """Ranked candidates with the composite ones after the first left out: composite
    candidates are mostly variants of one another (a conjunct's second name): on SPACCC
    test_half, all of them in the n-best cost 4.8 points of Recall@5, the best one 0.3."""
    out: List[ScoredName] = []
    seen = False
    for row in ranked:
        if SEP_TOKEN in row[0]:
            if seen:
                continue
            seen = True
        out.append(row)
    return out


class LinkingEngine:
    """Links encoded mention prompts to KB candidates (see the module docstring).

    ``kb``: a :class:`~spacy_syncabel.kb.ConceptKB`; ``tokenizer``/``lm``: a Hugging Face
    tokenizer (with ``<SEP>``) and causal LM, already on their device; ``generator``: a factory
    ``(kb, aliases) -> CandidateGenerator`` (default: TF-IDF); ``aliases``: extra searchable
    strings for retrieval, ``(text, name, group)``.
    """

    def __init__(self, kb, tokenizer, lm, settings: LinkSettings,
                 generator: Optional[GeneratorFactory] = None,
                 aliases: Iterable[Sequence[Any]] = (), tries: Optional[TrieSet] = None,
                 ) -> None:
        self.kb, self.tokenizer, self.lm = kb, tokenizer, lm
        self.settings = settings
        self.tries = TrieSet.build(kb, tokenizer, SEP_TOKEN, composite=settings.composite) \
            if tries is None else tries.fitted(settings.composite, kb, tokenizer, SEP_TOKEN)
        if generator is not None and not callable(generator):
            raise ValueError(Errors.E102.format(generator=generator))
        self._generator_factory: GeneratorFactory = generator or tfidf_candidates()
        self.aliases: List[Alias] = [(str(t), str(n), None if g is None else str(g))
                                     for t, n, g in aliases]
        self._generator: Optional[CandidateGenerator] = None
        self._tfidf = None
        self._exact: Optional[ExactIndex] = None
        self._composite_aliases: Optional[CompositeAliases] = None
        self._codes: Dict[Tuple[str, Optional[str]], Optional[str]] = {}
        #: the learned composite gate (``composite_gate.json``; used with the setting
        #: ``composite_gate``), or None
        self.composite_gate: Optional[CompositeGate] = None

    # -- views and state --------------------------------------------------------------------
    def with_settings(self, settings: Optional[LinkSettings] = None, **changes: Any,
                      ) -> "LinkingEngine":
        """A view of this engine with other settings; KB, weights, retriever and tries are
        shared (turning ``composite`` on builds only the after-separator trie)."""
        new = (settings or self.settings).replace(**changes)
        view = copy.copy(self)
        view.settings = new
        if new.composite != self.settings.composite:
            view.tries = self.tries.fitted(new.composite, self.kb, self.tokenizer, SEP_TOKEN)
        return view

    def with_lm(self, lm) -> "LinkingEngine":
        """A view decoding with other weights of the same architecture and tokenizer
        (training evaluates its live model through this)."""
        view = copy.copy(self)
        view.lm = lm
        return view

    def set_aliases(self, aliases: Iterable[Sequence[Any]]) -> None:
        """Replace the retrieval aliases (the candidate generator is rebuilt on next use)."""
        self.aliases = [(str(t), str(n), None if g is None else str(g)) for t, n, g in aliases]
        self._generator = None
        self._tfidf = None
        self._exact = None
        self._composite_aliases = None

    @property
    def generator(self) -> CandidateGenerator:
        """The candidate generator, built from the KB and aliases on first use."""
        if self._generator is None:
            self._generator = self._generator_factory(self.kb, self.aliases)
        return self._generator

    @property
    def tfidf_index(self):
        """The char 3-gram TF-IDF index of KB names and aliases (the baseline and training
        targets): the generator's own when it is TF-IDF, else built once."""
        gen = self.generator
        if isinstance(gen, TfidfCandidates):
            return gen.index
        if self._tfidf is None:
            from ..decoding.candidates import CandidateIndex

            self._tfidf = CandidateIndex(self.kb, self.aliases)
        return self._tfidf

    @property
    def exact_index(self) -> ExactIndex:
        """KB names and aliases by folded text (the cascade's dictionary), built on first use."""
        if self._exact is None:
            self._exact = ExactIndex(self.kb, self.aliases)
        return self._exact

    @property
    def composite_aliases(self) -> CompositeAliases:
        """The aliases that stand for a code set (``"a<SEP>b"`` names: training mentions
        whose gold is composite), by folded text; built on first use."""
        if self._composite_aliases is None:
            self._composite_aliases = CompositeAliases(self.aliases, self.lookup)
        return self._composite_aliases

    def coordinated(self, mention: str) -> bool:
        """Whether a mention may be a composite (it has conjuncts, as the composite settings
        split it)."""
        return bool(expanded_conjuncts(mention) if self.settings.composite_expand
                    else conjuncts(mention))

    def has_name(self, name: str) -> bool:
        """Whether the tries hold ``name`` (a KB name the engine can produce)."""
        return self.tries.tokens_of(name) is not None

    def name_tokens(self, name: str) -> List[int]:
        """The token ids the tries hold for a KB name (without EOS)."""
        tokens = self.tries.tokens_of(name)
        if tokens is None:
            raise KeyError(name)
        return tokens

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def unreachable_names(self) -> List[str]:
        """KB names longer than ``max_new_tokens`` (with EOS): beam search never ends them."""
        limit = self.settings.max_new_tokens
        return self.tries.names_longer_than(limit - 1)

    def warn_unreachable(self) -> None:
        """Warn (W101) when some KB names can never be generated within ``max_new_tokens``."""
        if not self.settings.constrained or self.settings.mode == MODE_RERANK:
            return
        names = self.unreachable_names()
        if names:
            warnings.warn(Warnings.W101.format(n=len(names), limit=self.settings.max_new_tokens,
                                               first=names[0]))

    # -- linking ---------------------------------------------------------------------------
    def link(self, prompts: Sequence[Sequence[int]], groups: Sequence[Optional[str]],
             mentions: Optional[Sequence[str]] = None) -> List[List[Candidate]]:
        """Ranked candidates of every mention, in batches bounded by count and tokens. With
        ``cascade`` on, mentions the dictionary or the retriever settle skip the LM (their
        prompts are not even read: ``prompts`` may render lazily on ``__getitem__``)."""
        s = self.settings
        if s.cascade and mentions is None:
            raise ValueError(Errors.E220)
        if s.uses_candidates and mentions is None:
            raise ValueError(Errors.E100.format(problems=f"mode {s.mode!r} needs the mention "
                                                         "texts"))
        if not s.cascade:
            return self._link_lm(prompts, groups, mentions)
        retrieved = self.retrieve_in_batches(mentions, groups, self.cascade_depth)
        plan = self.settle(mentions, groups, retrieved)
        results: List[Optional[List[Candidate]]] = [
            list(p.ranked) if p.settled(s.cascade_margin) and not p.composite_open else None
            for p in plan]
        rest = [i for i, r in enumerate(results) if r is None]
        if rest:
            linked = self._link_lm([prompts[i] for i in rest], [groups[i] for i in rest],
                                   [mentions[i] for i in rest],
                                   [retrieved[i] for i in rest] if s.uses_candidates else None)
            for i, cands in zip(rest, linked):
                results[i] = cands if not plan[i].settled(s.cascade_margin) or \
                    is_composite_answer(cands) else list(plan[i].ranked)
        return results  # type: ignore[return-value]

    def _link_lm(self, prompts: Sequence[Sequence[int]], groups: Sequence[Optional[str]],
                 mentions: Optional[Sequence[str]],
                 retrieved: Optional[Sequence[Sequence[Retrieved]]] = None,
                 ) -> List[List[Candidate]]:
        """Every mention decoded or scored by the LM (``retrieved``: candidates already
        retrieved for candidate modes)."""
        s = self.settings
        if s.mode != MODE_RERANK:
            # one search: at most a batch of mentions at once, the next ones joining as
            # others finish (continuous batching, decoding/beam_search.py)
            return self._beam_link(prompts, groups, mentions, retrieved)
        results: List[List[Candidate]] = [[] for _ in prompts]
        for chunk in self.batches(prompts):
            sub_prompts = [prompts[i] for i in chunk]
            sub_groups = [groups[i] for i in chunk]
            sub_mentions = [mentions[i] for i in chunk] if mentions is not None else None
            sub_retrieved = [retrieved[i] for i in chunk] if retrieved is not None else None
            ranked = [self.rank_scored(sc, g, s.prior_weight) for g, sc in zip(
                sub_groups, self.score_candidates(sub_prompts, sub_groups, sub_mentions,
                                                  sub_retrieved))]
            for i, cands in zip(chunk, ranked):
                results[i] = cands
        return results

    @property
    def cascade_depth(self) -> int:
        """Names retrieved per mention for the cascade: the candidate modes' own
        ``candidates`` (retrieved once, reused by the LM), else at least ``n_best``."""
        s = self.settings
        return s.candidates if s.uses_candidates else max(s.candidates, s.n_best)

    def settle(self, mentions: Sequence[str], groups: Sequence[Optional[str]],
               retrieved: Optional[Sequence[Sequence[Retrieved]]] = None,
               ) -> List[Settlement]:
        """What the dictionary and the retriever say about each mention before the LM (the
        cascade, ``linking/cascade.py``); ``retrieved``: each mention's retrieved names."""
        s = self.settings
        if retrieved is None:
            retrieved = self.retrieve_in_batches(mentions, groups, self.cascade_depth)
        exact = self.exact_index
        plan = [settle(m, g, r, exact, self.lookup, s.n_best, s.merge_by_code)
                for m, g, r in zip(mentions, groups, retrieved)]
        if s.composite_candidates > 0 and s.composite_margin is None and not s.composite_gate:
            # a coordinated mention may be a composite the retriever cannot propose: its
            # margin never settles it (an exact match still does)
            plan = [dataclasses.replace(p, margin=float("-inf")) if self.coordinated(m)
                    else p for p, m in zip(plan, mentions)]
        elif s.composite_candidates > 0:
            # under the composite gate, the margin settles its single answer as any other
            # mention's; the LM only decides whether it is a composite (under the learned
            # gate, only when one of its composite candidates passes: else it cannot be)
            open_ = [self.coordinated(m) and p.exact is None for p, m in zip(plan, mentions)]
            if s.composite_gate:
                idx = [i for i, o in enumerate(open_) if o]
                found = self.composite_candidates(
                    [mentions[i] for i in idx], [groups[i] for i in idx],
                    [list(retrieved[i])[:s.candidates] for i in idx])
                for i, cands in zip(idx, found):
                    open_[i] = bool(cands)
            plan = [dataclasses.replace(p, composite_open=True) if o else p
                    for p, o in zip(plan, open_)]
        if s.composite_candidates > 0 and s.composite_expand and len(self.composite_aliases):
            plan = [self._settle_composite_alias(p, m, g)
                    for p, m, g in zip(plan, mentions, groups)]
        return plan

    def _settle_composite_alias(self, plan: Settlement, mention: str,
                                group: Optional[str]) -> Settlement:
        """A mention that is exactly a composite alias of ONE code set (and no single-code
        name or alias) is settled on that code set, as the dictionary settles names."""
        if plan.exact is not None or plan.ambiguous:
            return plan
        found = {}
        for parts in self.composite_aliases(mention, group):
            names, code = self.canonical_names(parts, group)
            found.setdefault(code, SEP_TOKEN.join(names))
        if len(found) != 1:
            return plan
        code, name = next(iter(found.items()))
        head = Candidate(name, code, 1.0, 0.0, 1.0, PATH_DICTIONARY)
        ranked = (head, *[c for c in plan.ranked if c.code != code])[:self.settings.n_best]
        return dataclasses.replace(plan, ranked=ranked, exact=code, margin=float("inf"),
                                   composite_open=False)

    def lookup(self, name: str, group: Optional[str]) -> Optional[str]:
        """``kb.lookup``, remembered (the same few thousand names come back mention after
        mention; at most one entry per KB name and group)."""
        key = (name, group)
        if key not in self._codes:
            self._codes[key] = self.kb.lookup(name, group)
        return self._codes[key]

    def mine(self, prompts: Sequence[Sequence[int]], groups: Sequence[Optional[str]],
             k: int) -> List[List[Candidate]]:
        """ANGEL's hard negatives: the model's own top-``k`` beams in the whole group's trie,
        unmerged and without prior, whatever mode this engine links in."""
        view = self.with_settings(mode=MODE_BEAM, num_beams=k, n_best=k, merge_by_code=False,
                                  prior_weight=0.0, constrained=True, cascade=False)
        return view.link(prompts, groups)

    def batches(self, prompts: Sequence[Sequence[int]]) -> List[List[int]]:
        """Mention indices, longest prompt first, in chunks of at most ``batch_size``
        mentions and ``max_batch_tokens`` (prompt + completion) × beams tokens."""
        s = self.settings
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        width = s.candidates + s.composite_candidates if s.mode == MODE_RERANK \
            else s.num_beams
        chunks: List[List[int]] = []
        current: List[int] = []
        used = 0
        for i in order:
            cost = (len(prompts[i]) + s.max_new_tokens) * width
            if current and (len(current) >= s.batch_size or used + cost > s.max_batch_tokens):
                chunks.append(current)
                current, used = [], 0
            current.append(i)
            used += cost
        if current:
            chunks.append(current)
        return chunks

    def mention_tries(self, groups: Sequence[Optional[str]],
                      mentions: Optional[Sequence[str]] = None,
                      retrieved: Optional[Sequence[Sequence[Retrieved]]] = None) -> List[Any]:
        """The trie each mention decodes in: its group's, or (beam in candidates) one over
        its retrieved candidates' names (``retrieved``, else retrieved here); None when
        unconstrained."""
        s = self.settings
        if not s.constrained:
            return [None] * len(groups)
        if not s.uses_candidates or mentions is None:
            return [self.tries[g] for g in groups]
        top = retrieved if retrieved is not None else self.generator.top(mentions, groups,
                                                                         s.candidates)
        top = self.with_composite_parts(mentions, groups, top)
        return [self.tries.restricted([r.name for r in cands], g) if cands else self.tries[g]
                for g, cands in zip(groups, top)]

    def _beam_link(self, prompts, groups, mentions, retrieved=None) -> List[List[Candidate]]:
        s = self.settings
        tries = self.mention_tries(groups, mentions, retrieved)
        gated = s.composite and s.composite_margin is not None
        config = BeamSearchConfig(num_beams=s.num_beams, n_best=s.n_best,
                                  max_new_tokens=s.max_new_tokens,
                                  length_penalty=s.length_penalty,
                                  sep_id=self.tries.sep_id if gated else None,
                                  sep_margin=s.composite_margin if gated else None)
        # as many mentions at once as the longest prompts' batch holds (``batches``)
        at_once = len(self.batches(prompts)[0]) if len(prompts) else 1
        hyps = beam_search(self.lm, list(prompts), tries, self.eos_id, self.pad_id, config,
                           batch_size=at_once)
        return [self._to_candidates(hs, g, trie, m) for hs, g, trie, m in zip(
            hyps, groups, tries, mentions if mentions is not None else [None] * len(groups))]

    def code_of(self, names: Sequence[str], group: Optional[str]) -> str:
        """The (composite) code of generated names, parts sorted and each once (as the metric
        compares code sets); NO_CODE when one is not in the KB."""
        return self.canonical_names(names, group)[1]

    def canonical_names(self, names: Sequence[str], group: Optional[str]
                        ) -> Tuple[List[str], str]:
        """``(names, code)`` of generated names: one name per distinct code, in the order of
        the sorted codes, and the codes joined by ``+`` (``a<SEP>b`` and ``b<SEP>a`` are one
        code set); the names as they are and NO_CODE when one is not in the KB."""
        codes = [self.kb.lookup(n, group) for n in names]
        if not codes or any(c is None for c in codes):
            return list(names), NO_CODE
        first = {}
        for name, code in zip(names, codes):
            first.setdefault(code, name)
        order = sorted(first)
        return [first[c] for c in order], COMPOSITE_SEP.join(order)

    def _to_candidates(self, hyps, group: Optional[str], trie,
                       mention: Optional[str]) -> List[Candidate]:
        """Beam hypotheses -> candidates, re-ranked with the retrieval prior when
        ``prior_weight`` > 0, merged by code."""
        s = self.settings
        decoded = []
        for h in hyps:
            names = trie.names_of(h.tokens) if trie is not None else self._free_names(h.tokens)
            if names:
                names, code = self.canonical_names(names, group)
                decoded.append((SEP_TOKEN.join(names), code, h.logprob, h.n_tokens))
        sims: List[Optional[float]] = [None] * len(decoded)
        if s.prior_weight > 0 and mention is not None and decoded:
            sims = self.prior(mention, [d[0] for d in decoded], group)
            order = sorted(range(len(decoded)), key=lambda i: -(
                rank_value(decoded[i][2], decoded[i][3], s.length_penalty)
                + s.prior_weight * sims[i]))
            decoded, sims = [decoded[i] for i in order], [sims[i] for i in order]
        return self._merge([(name, code, lp, n, sim)
                            for (name, code, lp, n), sim in zip(decoded, sims)])

    def _merge(self, ranked: Sequence[Tuple[str, str, float, int, Optional[float]]],
               ) -> List[Candidate]:
        """The n-best of ranked (name, code, log-prob, tokens, similarity), one per code
        unless ``merge_by_code`` is off; score = exp(length-normalised log-prob); path "lm"."""
        s = self.settings
        out: List[Candidate] = []
        seen = set()
        for name, code, lp, n, sim in ranked:
            if s.merge_by_code and code in seen:
                continue
            seen.add(code)
            out.append(Candidate(name, code, float(np.exp(rank_value(lp, n, s.length_penalty))),
                                 lp, sim, PATH_LM))
            if len(out) == s.n_best:
                break
        return out

    def _free_names(self, tokens: Sequence[int]) -> List[str]:
        """Split a free-generated completion into names (unconstrained mode)."""
        tok = self.tokenizer
        sep_id = tok.convert_tokens_to_ids(SEP_TOKEN)
        parts: List[List[int]] = [[]]
        for t in tokens:
            if t == sep_id and self.settings.composite:
                parts.append([])
            elif t != tok.eos_token_id:
                parts[-1].append(t)
        names = [tok.decode(p, skip_special_tokens=True).strip() for p in parts]
        return [n for n in names if n]

    def prior(self, mention: str, names: Sequence[str], group: Optional[str]) -> List[float]:
        """The retrieval prior of each name for ``mention``; a composite name (parts joined
        by ``<SEP>``) scores the mean of its parts (inference and training alike)."""
        parts = [n.split(SEP_TOKEN) for n in names]
        flat = [p for ps in parts for p in ps]
        sims = self.generator.similarity(mention, flat, group) if flat else []
        out, pos = [], 0
        for ps in parts:
            out.append(float(sum(sims[pos:pos + len(ps)]) / max(1, len(ps))))
            pos += len(ps)
        return out

    # -- exhaustive candidate scoring (rerank, calibration) ---------------------------------
    def retrieve(self, mentions: Sequence[str], groups: Sequence[Optional[str]],
                 n: Optional[int] = None) -> List[List[Retrieved]]:
        """Each mention's top-``n`` (default ``candidates``) retrieved KB names."""
        return self.generator.top(mentions, groups, n or self.settings.candidates)

    def retrieve_in_batches(self, mentions: Sequence[str], groups: Sequence[Optional[str]],
                            n: int) -> List[List[Retrieved]]:
        """:meth:`retrieve` ``batch_size`` mentions at a time (a retriever may hold a dense
        mentions × names matrix: memory stays bounded whatever the input)."""
        step = self.settings.batch_size
        out: List[List[Retrieved]] = []
        for i in range(0, len(mentions), step):
            out += self.retrieve(mentions[i:i + step], groups[i:i + step], n)
        return out

    def score_candidates(self, prompts: Sequence[Sequence[int]],
                         groups: Sequence[Optional[str]], mentions: Sequence[str],
                         retrieved: Optional[Sequence[Sequence[Retrieved]]] = None,
                         ) -> List[List[ScoredName]]:
        """Each mention's retrieved candidates (``retrieved``, else retrieved here), then its
        composite candidates (with ``composite`` on), scored by teacher forcing: ``(name,
        retrieval score, summed log-prob, tokens, <SEP> margin)`` (EOS counted; the margin,
        :func:`sep_margins`, None for a single name), in that order."""
        from ..decoding.scoring import score_completions

        top = retrieved if retrieved is not None else self.retrieve(mentions, groups)
        top = self.with_composites(mentions, groups, top)
        completions = [[self.completion_tokens(r.name) for r in cands] for cands in top]
        sep_id = self.tries.sep_id if self.tries.sep_id is not None else \
            self.tokenizer.convert_tokens_to_ids(SEP_TOKEN)
        # the gate's completions (a composite's prefixes ended by EOS and by <SEP>) share the
        # composite's positions: scored in the same pass
        gates = [[gate_completions(c, sep_id, self.eos_id) if SEP_TOKEN in r.name else []
                  for r, c in zip(cands, comps)] for cands, comps in zip(top, completions)]
        flat = [comps + [g for gs in gate for g in gs]
                for comps, gate in zip(completions, gates)]
        logps = score_completions(self.lm, list(prompts), flat, self.pad_id)
        out: List[List[ScoredName]] = []
        for cands, comps, gate, lps in zip(top, completions, gates, logps):
            pos = len(comps)
            rows: List[ScoredName] = []
            for r, comp, lp, gs in zip(cands, comps, lps, gate):
                margin = sep_margins(lps[pos:pos + len(gs)]) if gs else None
                pos += len(gs)
                rows.append((r.name, r.score, lp, len(comp), margin))
            out.append(rows)
        return out

    def rank_scored(self, scored: Sequence[ScoredName], group: Optional[str],
                    weight: float, gate: Any = _SETTING) -> List[Candidate]:
        """The n-best of one mention's :meth:`score_candidates`, ranked by length-normalised
        log-prob + ``weight`` × retrieval score; one composite candidate at most (the best),
        and only one that passes the composite gate (``gate``, default the setting
        ``composite_margin``; None: no gate)."""
        lp_ = self.settings.length_penalty
        gate = self.settings.composite_margin if gate is _SETTING else gate
        kept = [x for x in scored if passes_gate(x[4], gate)]
        ranked = sorted(kept, key=lambda x: -(rank_value(x[2], x[3], lp_) + weight * x[1]))
        ranked = best_composite_only(ranked)
        return self._merge([(*self.scored_name_code(name, group), lp, n, sim)
                            for name, sim, lp, n, _ in ranked])

    # -- composite candidates (candidate modes; linking/composite.py) ------------------------
    def composite_candidates(self, mentions: Sequence[str], groups: Sequence[Optional[str]],
                             top: Sequence[Sequence[Retrieved]]) -> List[List[Retrieved]]:
        """Each mention's composite candidates, ``Retrieved("a<SEP>b", retrieval score)``
        (``linking/composite.py``), at most ``composite_pairs`` (none unless ``composite`` is
        on in a candidate mode); ``top``: the mentions' retrieved names."""
        return [[r for r, _ in rows] for rows in self.composite_proposals(mentions, groups, top)]

    def composite_proposals(self, mentions: Sequence[str], groups: Sequence[Optional[str]],
                            top: Sequence[Sequence[Retrieved]], split: Any = _SETTING,
                            ) -> List[List[Tuple[Retrieved, float]]]:
        """:meth:`composite_candidates` with each one's split evidence; ``split`` (default
        the setting ``composite_split``; None: none) the lowest evidence kept."""
        s = self.settings
        limit = s.composite_candidates
        if limit < 1:
            return [[] for _ in mentions]
        gen = self.generator
        aliases = self.composite_aliases if s.composite_expand else None
        split = s.composite_split if split is _SETTING else split
        if not s.composite_gate:
            return composite_proposals(mentions, groups, top, gen.top, gen.similarity,
                                       self.kb.lookup, limit, expand=s.composite_expand,
                                       aliases=aliases if aliases else None, split=split)
        gate = self.composite_gate
        if gate is None:
            raise ValueError(Errors.E632)
        every = composite_proposals(mentions, groups, top, gen.top, gen.similarity,
                                    self.kb.lookup, limit, expand=s.composite_expand,
                                    aliases=aliases if aliases else None, split=None)
        return [[row for row, p in zip(rows, probs) if p >= gate.threshold
                 and (split is None or row[1] >= split)]
                for rows, probs in zip(every, self.composite_gate_probabilities(
                    mentions, groups, top, every))]

    def composite_gate_features(self, mentions: Sequence[str], groups: Sequence[Optional[str]],
                                top: Sequence[Sequence[Retrieved]],
                                proposals: Sequence[Sequence[Tuple[Retrieved, float]]],
                                ) -> List[List[Dict[str, float]]]:
        """The learned gate's features of each mention's composite candidates
        (``proposals``: every one, with its split evidence; ``top``: its retrieved names)."""
        exact = self.exact_index
        aliases = self.composite_aliases
        out: List[List[Dict[str, float]]] = []
        for m, g, t, rows in zip(mentions, groups, top, proposals):
            feats = gate_features(m, g, t, rows, len(exact.codes(m, g)) == 1,
                                  bool(aliases(m, g))) if rows else None
            out.append([] if feats is None else
                       [candidate_features(feats, rows, i) for i in range(len(rows))])
        return out

    def composite_gate_probabilities(self, mentions: Sequence[str],
                                     groups: Sequence[Optional[str]],
                                     top: Sequence[Sequence[Retrieved]],
                                     proposals: Sequence[Sequence[Tuple[Retrieved, float]]],
                                     ) -> List[List[float]]:
        """The learned gate's probability that each composite candidate is the gold."""
        gate = self.composite_gate
        if gate is None:
            raise ValueError(Errors.E632)
        return [[gate.probability(f) for f in feats] + [0.0] * (len(rows) - len(feats))
                for feats, rows in zip(self.composite_gate_features(mentions, groups, top,
                                                                    proposals), proposals)]

    def with_composites(self, mentions: Sequence[str], groups: Sequence[Optional[str]],
                        top: Sequence[Sequence[Retrieved]]) -> List[List[Retrieved]]:
        """``top`` followed by each mention's composite candidates (rerank scores both)."""
        extra = self.composite_candidates(mentions, groups, top)
        return [list(cands) + more for cands, more in zip(top, extra)]

    def with_composite_parts(self, mentions: Sequence[str], groups: Sequence[Optional[str]],
                             top: Sequence[Sequence[Retrieved]]) -> List[List[Retrieved]]:
        """``top`` followed by the names of its composite candidates' parts that it lacks
        (beam in candidates: the candidate trie then spells those composites)."""
        extra = self.composite_candidates(mentions, groups, top)
        out = []
        for cands, more in zip(top, extra):
            have = {r.name for r in cands}
            parts = [p for r in more for p in r.name.split(SEP_TOKEN)]
            out.append(list(cands) + [Retrieved(p, 0.0) for p in dict.fromkeys(parts)
                                      if p not in have])
        return out

    def completion_tokens(self, name: str) -> List[int]:
        """Token ids of a candidate's completion, EOS included: ``" " + name``, or for a
        composite ``"a<SEP>b"`` the reference's spelling (as ``prompting.encode_completion``),
        read from the tries when they hold the after-separator part."""
        parts = name.split(SEP_TOKEN)
        if len(parts) == 1:
            return self.name_tokens(name) + [self.eos_id]
        after = self.tries.after_sep
        if after is None or any(after.tokens_of(p) is None for p in parts[1:]):
            return encode_completion(self.tokenizer, parts,
                                     self.tokenizer.convert_tokens_to_ids(SEP_TOKEN))
        ids = self.name_tokens(parts[0])
        for part in parts[1:]:
            ids += [self.tries.sep_id] + after.tokens_of(part)
        return ids + [self.eos_id]

    def scored_name_code(self, name: str, group: Optional[str]) -> Tuple[str, str]:
        """``(name, code)`` of a scored candidate: a composite's parts in the order of its
        sorted codes (as beam search reports them), its code the parts' codes joined by
        ``+``."""
        if SEP_TOKEN not in name:
            return name, self.kb.lookup(name, group) or NO_CODE
        names, code = self.canonical_names(name.split(SEP_TOKEN), group)
        return SEP_TOKEN.join(names), code


__all__ = ["LinkingEngine", "ScoredName", "Settlement", "best_composite_only", "gate_completions",
           "passes_gate", "rank_value", "sep_margins"]
