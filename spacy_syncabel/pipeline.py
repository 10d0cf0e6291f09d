"""The ``syncabel_linker`` spaCy component: generative entity linking of ``doc.ents``."""

import os
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import minibatch

from .decoding import BeamSearchConfig, TrieSet, beam_search
from .decoding.candidates import CandidateIndex
from .errors import Errors, Warnings
from .prompting import (DEFAULT_TEMPLATE, SEP_TOKEN, PromptTemplate, encode_prompt,
                        render_prompt, verb_for)
from .types import COMPOSITE_SEP, NIL, NO_CODE, Candidate

EXTENSION = "syncabel"


def _one_thread_after_fork() -> None:
    """``nlp.pipe(n_process=N)`` forks: OpenMP thread pools do not survive a fork (the child
    hangs in its first parallel op), and N processes should use one core each anyway."""
    import torch

    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_one_thread_after_fork)
ModelLoader = Callable[..., Tuple[Any, Any]]
KBLoader = Callable[[], Any]

DEFAULT_CONFIG: Dict[str, Any] = {
    "model": {"@misc": "spacy_syncabel.SmolLM2.v1"},
    "kb_loader": None,
    "label_map": {},
    "template": DEFAULT_TEMPLATE,
    "verb": None,
    "num_beams": 5,
    "n_best": 5,
    "constrained": True,
    "composite": False,
    "merge_by_code": True,
    "candidates": 0,
    "prior_weight": 0.0,
    "rerank": False,
    "batch_size": 32,
    "max_context_tokens": 128,
    "context_chars": 300,
    "max_new_tokens": 48,
    "device": "auto",
    "dtype": "auto",
    "threshold": 0.0,
    "overwrite": True,
    "score_gold_ents": False,
    "trust_remote_code": False,
}


def _sentence_bounds(doc: Doc, ent: Span) -> Tuple[int, int]:
    """Character bounds of the sentence(s) holding ``ent``, found from its tokens' neighbours
    (``Span.sent`` walks every sentence of the doc: quadratic over a long note)."""
    start = ent.start
    while start > 0 and not doc[start].is_sent_start:
        start -= 1
    end = ent.end
    while end < len(doc) and not doc[end].is_sent_start:
        end += 1
    return doc[start].idx, doc[end - 1].idx + len(doc[end - 1])


def register_extensions() -> None:
    """Register ``Span._.syncabel`` (the n-best list) once; safe to call again."""
    if not Span.has_extension(EXTENSION):
        Span.set_extension(EXTENSION, default=None)


@Language.factory(
    "syncabel_linker",
    assigns=["token.ent_kb_id", f"span._.{EXTENSION}"],
    requires=["doc.ents"],
    default_config=DEFAULT_CONFIG,
    default_score_weights={"nel_micro_f": 1.0, "nel_micro_r": None, "nel_micro_p": None,
                           "syncabel_recall@1": None, "syncabel_recall@5": None},
)
def make_syncabel_linker(nlp: Language, name: str, model: Optional[ModelLoader],
                         kb_loader: Optional[KBLoader], label_map: Dict[str, Optional[str]],
                         template: str, verb: Optional[str], num_beams: int, n_best: int,
                         constrained: bool, composite: bool, merge_by_code: bool,
                         candidates: int, prior_weight: float, rerank: bool,
                         batch_size: int, max_context_tokens: int, context_chars: int,
                         max_new_tokens: int, device: str, dtype: str, threshold: float,
                         overwrite: bool, score_gold_ents: bool, trust_remote_code: bool,
                         ) -> "SynCABELLinker":
    return SynCABELLinker(
        nlp.vocab, name=name, model=model, kb_loader=kb_loader, label_map=label_map,
        template=template, verb=verb or verb_for(nlp.lang), num_beams=num_beams, n_best=n_best,
        constrained=constrained, composite=composite, merge_by_code=merge_by_code,
        candidates=candidates, prior_weight=prior_weight, rerank=rerank, batch_size=batch_size, max_context_tokens=max_context_tokens,
        context_chars=context_chars, max_new_tokens=max_new_tokens, device=device, dtype=dtype,
        threshold=threshold, overwrite=overwrite, score_gold_ents=score_gold_ents,
        trust_remote_code=trust_remote_code)


class _MentionRef:
    """Where a mention lives (doc, ent) and what is decoded for it."""

    __slots__ = ("doc_i", "ent_i", "group", "prompt_ids", "text")

    def __init__(self, doc_i: int, ent_i: int, group: Optional[str], prompt_ids: List[int],
                 text: str):
        self.doc_i, self.ent_i, self.group, self.prompt_ids = doc_i, ent_i, group, prompt_ids
        self.text = text


class SynCABELLinker(Pipe):
    """Links every entity of ``doc.ents`` to a KB code by (trie-constrained) generation.

    The KB and the LM load in :meth:`initialize` or :meth:`from_disk`, never in ``__init__``.
    """

    def __init__(self, vocab, name: str = "syncabel_linker", *, model: Optional[ModelLoader] = None,
                 kb_loader: Optional[KBLoader] = None,
                 label_map: Optional[Dict[str, Optional[str]]] = None,
                 template: str = DEFAULT_TEMPLATE, verb: str = "is", num_beams: int = 5,
                 n_best: int = 5, constrained: bool = True, composite: bool = False,
                 merge_by_code: bool = True, candidates: int = 0, prior_weight: float = 0.0,
                 rerank: bool = False, batch_size: int = 32,
                 max_context_tokens: int = 128, context_chars: int = 300,
                 max_new_tokens: int = 48, device: str = "auto", dtype: str = "auto",
                 threshold: float = 0.0, overwrite: bool = True, score_gold_ents: bool = False,
                 trust_remote_code: bool = False) -> None:
        self.vocab = vocab
        self.name = name
        self.model_loader = model
        self.kb_loader = kb_loader
        self.cfg: Dict[str, Any] = {
            "label_map": dict(label_map or {}), "template": template, "verb": verb,
            "num_beams": num_beams, "n_best": n_best, "constrained": constrained,
            "composite": composite, "merge_by_code": merge_by_code, "candidates": candidates,
            "prior_weight": prior_weight, "rerank": rerank, "batch_size": batch_size,
            "max_context_tokens": max_context_tokens, "context_chars": context_chars,
            "max_new_tokens": max_new_tokens, "device": device, "dtype": dtype,
            "threshold": threshold, "overwrite": overwrite, "score_gold_ents": score_gold_ents,
            "trust_remote_code": trust_remote_code,
        }
        self.template = PromptTemplate(template, verb, SEP_TOKEN)
        self.search_config = BeamSearchConfig(num_beams=num_beams, n_best=n_best,
                                              max_new_tokens=max_new_tokens)
        self.kb = None
        self.lm = None
        self.tokenizer = None
        self.tries: Optional[TrieSet] = None
        self._candidate_index: Optional[CandidateIndex] = None
        self.aliases: List[Tuple[str, str, Optional[str]]] = []
        self.fingerprint: Optional[Dict[str, str]] = None
        self._warned_labels: set = set()
        register_extensions()

    # -- set-up ---------------------------------------------------------------------------
    @property
    def is_ready(self) -> bool:
        return self.lm is not None and self.kb is not None and self.tokenizer is not None

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *,
                   nlp: Optional[Language] = None, kb_loader: Optional[KBLoader] = None,
                   model: Optional[ModelLoader] = None) -> None:
        """Load the KB and the LM (the heavy part), then build the tries."""
        kb_loader = kb_loader or self.kb_loader
        model = model or self.model_loader
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

    def set_model(self, lm, tokenizer, kb) -> None:
        """Use this LM, tokenizer and KB (adds <SEP>, moves to device, builds the tries)."""
        from .models import ensure_sep_token, resolve_device, resolve_dtype, tokenizer_fingerprint

        ensure_sep_token(lm, tokenizer, SEP_TOKEN)
        if lm.get_input_embeddings().weight.shape[0] < len(tokenizer):
            raise ValueError(Errors.E014.format(model_vocab=lm.get_input_embeddings().weight.shape[0],
                                                tok_vocab=len(tokenizer)))
        dev = resolve_device(self.cfg["device"])
        lm.to(device=dev, dtype=resolve_dtype(self.cfg["dtype"], dev))
        lm.eval()
        tokenizer.padding_side = "left"
        self.kb, self.lm, self.tokenizer = kb, lm, tokenizer
        self.tries = TrieSet.build(kb, tokenizer, SEP_TOKEN, composite=self.cfg["composite"])
        self._candidate_index = None
        self.fingerprint = {"tokenizer": tokenizer_fingerprint(tokenizer),
                            "kb": kb.fingerprint()}

    def set_aliases(self, aliases: Iterable[Sequence[Any]]) -> None:
        """Searchable aliases of KB names for candidate retrieval: ``(text, name, group)``
        (e.g. training mentions, each standing for its target name; see
        :class:`~spacy_syncabel.decoding.candidates.CandidateIndex`). Saved by ``to_disk``."""
        self.aliases = [(str(t), str(n), None if g is None else str(g)) for t, n, g in aliases]
        self._candidate_index = None

    def set_beams(self, num_beams: int, n_best: Optional[int] = None) -> None:
        """Change the beam count (and n-best size) of a loaded linker."""
        n_best = min(n_best or self.cfg["n_best"], num_beams)
        self.search_config = BeamSearchConfig(num_beams=num_beams, n_best=n_best,
                                              max_new_tokens=self.cfg["max_new_tokens"])
        self.cfg.update(num_beams=num_beams, n_best=n_best)

    # -- prediction -----------------------------------------------------------------------
    def group_for(self, label: str) -> Optional[str]:
        """The KB group a label is linked against (None: all groups)."""
        lmap = self.cfg["label_map"]
        if label in lmap:
            group = lmap[label]
            if group is not None and group not in self.tries:  # type: ignore[operator]
                raise ValueError(Errors.E010.format(group=group, groups=self.kb.groups))
            return group
        if label in self.tries:  # type: ignore[operator]
            return label
        if label not in self._warned_labels:
            self._warned_labels.add(label)
            warnings.warn(Warnings.W002.format(label=label))
        return None

    def _count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def mention_prompt(self, doc: Doc, ent: Span, group: Optional[str],
                       fit: bool = True, has_sents: Optional[bool] = None,
                       text: Optional[str] = None) -> str:
        """The prompt text for one entity (within the token budget when ``fit``).
        ``has_sents`` (whether ``doc`` has sentence starts) and ``text`` (``doc.text``) are
        computed when None; a caller rendering many entities of one doc passes them, since
        both walk the whole doc."""
        if has_sents is None:
            has_sents = doc.has_annotation("SENT_START")
        if text is None:
            text = doc.text
        sentence = _sentence_bounds(doc, ent) if has_sents else None
        type_ = group if group is not None else ent.label_
        return render_prompt(text, ent.start_char, ent.end_char, type_, sentence=sentence,
                             template=self.template, window_chars=self.cfg["context_chars"],
                             count_tokens=self._count_tokens if fit else None,
                             max_tokens=self.cfg["max_context_tokens"])

    def mention_prompt_ids(self, doc: Doc, ent: Span, group: Optional[str],
                           has_sents: Optional[bool] = None,
                           text: Optional[str] = None) -> List[int]:
        """Token ids of the entity's prompt; tokenizes once unless the context must shrink."""
        if has_sents is None:
            has_sents = doc.has_annotation("SENT_START")
        text = doc.text if text is None else text
        ids = encode_prompt(self.tokenizer, self.mention_prompt(
            doc, ent, group, fit=False, has_sents=has_sents, text=text))
        if len(ids) > self.cfg["max_context_tokens"]:
            ids = encode_prompt(self.tokenizer, self.mention_prompt(
                doc, ent, group, has_sents=has_sents, text=text))
        return ids

    def predict(self, docs: Iterable[Doc]) -> List[List[Optional[List[Dict[str, Any]]]]]:
        """Decode every entity of ``docs``; returns per doc, per entity, the n-best (or None
        for an entity left as it is)."""
        if not self.is_ready:
            raise ValueError(Errors.E020)
        docs = list(docs)
        out: List[List[Optional[List[Dict[str, Any]]]]] = [[None] * len(d.ents) for d in docs]
        refs: List[_MentionRef] = []
        for i, doc in enumerate(docs):
            has_sents, text = doc.has_annotation("SENT_START"), doc.text
            for j, ent in enumerate(doc.ents):
                if not self.cfg["overwrite"] and ent.kb_id_ not in ("", NIL):
                    continue
                if not ent.text.strip():
                    warnings.warn(Warnings.W003.format(text=ent.text, start=ent.start_char,
                                                         end=ent.end_char))
                    out[i][j] = []
                    continue
                group = self.group_for(ent.label_)
                refs.append(_MentionRef(i, j, group, self.mention_prompt_ids(doc, ent, group,
                                                                               has_sents, text),
                                        ent.text))
        for ref, cands in zip(refs, self.decode([r.prompt_ids for r in refs],
                                                [r.group for r in refs],
                                                [r.text for r in refs])):
            out[ref.doc_i][ref.ent_i] = [c.to_dict() for c in cands]
        return out

    @property
    def candidate_index(self) -> CandidateIndex:
        """The TF-IDF index of KB names (built on first use)."""
        if self._candidate_index is None:
            self._candidate_index = CandidateIndex(self.kb, self.aliases)
        return self._candidate_index

    def mention_tries(self, groups: Sequence[Optional[str]],
                      mentions: Optional[Sequence[str]] = None) -> List[Any]:
        """The trie each mention decodes in: its group's, or (``candidates`` > 0) one over the
        names of its top TF-IDF candidates; None in unconstrained mode."""
        if not self.cfg["constrained"]:
            return [None] * len(groups)
        n = self.cfg["candidates"]
        if n <= 0 or mentions is None:
            return [self.tries[g] for g in groups]
        top = self.candidate_index.top(mentions, groups, n)
        return [self.tries.restricted([name for name, _ in cands], g) if cands else self.tries[g]
                for g, cands in zip(groups, top)]

    def decode(self, prompts: Sequence[List[int]], groups: Sequence[Optional[str]],
               mentions: Optional[Sequence[str]] = None) -> List[List[Candidate]]:
        """Run the beam search over encoded prompts, longest first, in model batches."""
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        results: List[List[Candidate]] = [[] for _ in prompts]
        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if self.cfg["rerank"] and self.cfg["candidates"] > 0 and mentions is not None:
            for chunk in minibatch(order, self.cfg["batch_size"]):
                scored = self._rerank([prompts[i] for i in chunk], [groups[i] for i in chunk],
                                      [mentions[i] for i in chunk])
                for i, cands in zip(chunk, scored):
                    results[i] = cands
            return results
        for chunk in minibatch(order, self.cfg["batch_size"]):
            chunk_mentions = [mentions[i] for i in chunk] if mentions is not None else None
            tries = self.mention_tries([groups[i] for i in chunk], chunk_mentions)
            hyps = beam_search(self.lm, [prompts[i] for i in chunk], tries, tok.eos_token_id,
                               pad_id, self.search_config)
            for pos, (i, hs) in enumerate(zip(chunk, hyps)):
                results[i] = self._to_candidates(
                    hs, groups[i], tries[pos], chunk_mentions[pos] if chunk_mentions else None)
        return results

    def candidate_scores(self, prompts: Sequence[List[int]], groups: Sequence[Optional[str]],
                         mentions: Sequence[str]) -> List[List[Tuple[str, float, float, int]]]:
        """Per mention, each of its top-N TF-IDF candidate names scored by teacher forcing:
        ``(name, cosine, summed log-prob, tokens)`` (EOS counted), in retrieval order."""
        from .decoding.scoring import score_completions

        top = self.candidate_index.top(mentions, groups, self.cfg["candidates"])
        eos = self.tokenizer.eos_token_id
        completions = [[self.tries.sequences[n] + [eos] for n, _ in cands] for cands in top]
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        logps = score_completions(self.lm, prompts, completions, pad_id)
        return [[(name, sim, lp, len(comp)) for (name, sim), comp, lp in zip(cands, comps, lps)]
                for cands, comps, lps in zip(top, completions, logps)]

    def _rerank(self, prompts: Sequence[List[int]], groups: Sequence[Optional[str]],
                mentions: Sequence[str]) -> List[List[Candidate]]:
        """Score every top-N TF-IDF candidate name by teacher forcing and rank them
        (exhaustive: the TF-IDF best is never pruned)."""
        return [self.rank_scored(scored, g, self.cfg["prior_weight"])
                for g, scored in zip(groups, self.candidate_scores(prompts, groups, mentions))]

    def rank_scored(self, scored: Sequence[Tuple[str, float, float, int]],
                    group: Optional[str], weight: float) -> List[Candidate]:
        """The n-best of one mention's :meth:`candidate_scores`, ranked by mean token
        log-prob + ``weight`` × cosine (merged by code unless ``merge_by_code`` is off)."""
        ranked = sorted(scored, key=lambda x: -(x[2] / x[3] + weight * x[1]))
        result: List[Candidate] = []
        seen = set()
        for name, sim, lp, n in ranked:
            code = self.kb.lookup(name, group) or NO_CODE
            if self.cfg["merge_by_code"] and code in seen:
                continue
            seen.add(code)
            result.append(Candidate(name, code, float(np.exp(lp / n)), lp, sim))
            if len(result) == self.cfg["n_best"]:
                break
        return result

    def _to_candidates(self, hyps, group: Optional[str], trie,
                       mention: Optional[str] = None) -> List[Candidate]:
        """Hypotheses → (name, code, score) candidates, re-ranked with the TF-IDF prior when
        ``prior_weight`` > 0 (mean log-prob + weight × cosine), merged by code."""
        decoded = []
        for h in hyps:
            names = trie.names_of(h.tokens) if trie is not None else self._free_names(h.tokens)
            if not names:
                continue
            codes = [self.kb.lookup(n, group) for n in names]
            code = NO_CODE if any(c is None for c in codes) else COMPOSITE_SEP.join(codes)
            decoded.append((SEP_TOKEN.join(names), code, h))
        weight = self.cfg["prior_weight"]
        sims: List[Optional[float]] = [None] * len(decoded)
        if weight > 0 and mention is not None and decoded:
            sims = self.candidate_index.similarity(mention, [d[0] for d in decoded], group)
            order = sorted(range(len(decoded)), key=lambda i: -(
                decoded[i][2].logprob / decoded[i][2].n_tokens + weight * sims[i]))
            decoded, sims = [decoded[i] for i in order], [sims[i] for i in order]
        cands: List[Candidate] = []
        seen = set()
        for (name, code, h), sim in zip(decoded, sims):
            if self.cfg["merge_by_code"] and code in seen:
                continue
            seen.add(code)
            cands.append(Candidate(name, code, h.score, h.logprob, sim))
        return cands

    def _free_names(self, tokens: List[int]) -> List[str]:
        """Split a free-generated completion into names (unconstrained mode)."""
        sep_id = self.tokenizer.convert_tokens_to_ids(SEP_TOKEN)
        parts: List[List[int]] = [[]]
        for t in tokens:
            if t == sep_id and self.cfg["composite"]:
                parts.append([])
            elif t != self.tokenizer.eos_token_id:
                parts[-1].append(t)
        names = [self.tokenizer.decode(p, skip_special_tokens=True).strip() for p in parts]
        return [n for n in names if n]

    def set_annotations(self, docs: Iterable[Doc], preds) -> None:
        """Write ``ent.kb_id_`` (NIL under the threshold) and ``ent._.syncabel``."""
        thr = self.cfg["threshold"]
        for doc, doc_preds in zip(docs, preds):
            for ent, cands in zip(doc.ents, doc_preds):
                if cands is None:
                    continue
                best = cands[0] if cands else None
                kb_id = best["code"] if best is not None and best["score"] >= thr else NIL
                for token in ent:
                    token.ent_kb_id_ = kb_id
            # span extensions are keyed by (start, end, label, kb_id): set them on the new ents
            for ent, cands in zip(doc.ents, doc_preds):
                if cands is not None:
                    ent._.set(EXTENSION, cands)

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Link docs in batches of ``batch_size`` docs; mentions of a batch decode together."""
        for docs in minibatch(stream, size=batch_size):
            self.set_annotations(docs, self.predict(docs))
            yield from docs

    # -- scoring --------------------------------------------------------------------------
    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """spaCy's link scores (unlinked gold = NIL) plus Recall@1 and Recall@k.

        With ``score_gold_ents`` the gold entities are linked here, so ``spacy evaluate``
        works on a pipeline that holds only the linker.
        """
        from .evaluation.metrics import recall_at_k_from_docs

        examples = list(examples)
        if self.cfg["score_gold_ents"]:
            examples = [self._gold_linked(eg) for eg in examples]
        scores = Scorer.score_links(examples, negative_labels=[NIL])
        scores.update(recall_at_k_from_docs(
            [(eg.predicted, eg.reference) for eg in examples], ks=(1, self.cfg["n_best"]),
            prefix="syncabel_"))
        return scores

    def _gold_linked(self, eg: Example) -> Example:
        pred = eg.reference.copy()
        for token in pred:
            token.ent_kb_id_ = ""
        self.set_annotations([pred], self.predict([pred]))
        return Example(pred, eg.reference)

    # -- serialization --------------------------------------------------------------------
    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        """Save cfg, KB, tokenizer and weights (safetensors); tries rebuild from the KB."""
        from .models import save_pretrained

        if not self.is_ready:
            raise ValueError(Errors.E020)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg.json", self.cfg)
        srsly.write_json(path / "fingerprint.json", self.fingerprint)
        self.kb.to_disk(path / "kb")
        save_pretrained(self.lm, self.tokenizer, path / "model")
        if self.aliases:
            srsly.write_jsonl(path / "aliases.jsonl", [{"text": t, "name": n, "group": g}
                                                       for t, n, g in self.aliases])

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "SynCABELLinker":
        """Load everything saved by :meth:`to_disk`, offline; checks the fingerprints."""
        from .kb import ConceptKB
        from .models import load_causal_lm, tokenizer_fingerprint

        path = Path(path)
        cfg = srsly.read_json(path / "cfg.json")
        self.cfg.update({k: v for k, v in cfg.items() if k not in ("device", "dtype")})
        self.template = PromptTemplate(self.cfg["template"], self.cfg["verb"], SEP_TOKEN)
        self.search_config = BeamSearchConfig(num_beams=self.cfg["num_beams"],
                                              n_best=self.cfg["n_best"],
                                              max_new_tokens=self.cfg["max_new_tokens"])
        kb = ConceptKB.from_disk(path / "kb")
        lm, tokenizer = load_causal_lm(str(path / "model"), dtype="float32", device="cpu",
                                       trust_remote_code=self.cfg["trust_remote_code"])
        expected = srsly.read_json(path / "fingerprint.json")
        found = tokenizer_fingerprint(tokenizer)
        if found != expected["tokenizer"]:
            raise ValueError(Errors.E021.format(path=path, found=found[:12],
                                                expected=expected["tokenizer"][:12]))
        if kb.fingerprint() != expected["kb"]:
            raise ValueError(Errors.E021.format(path=path, found="kb:" + kb.fingerprint()[:12],
                                                expected="kb:" + expected["kb"][:12]))
        self.set_model(lm, tokenizer, kb)
        if (path / "aliases.jsonl").is_file():
            self.set_aliases((a["text"], a["name"], a["group"])
                             for a in srsly.read_jsonl(path / "aliases.jsonl"))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:  # pragma: no cover
        raise NotImplementedError("syncabel_linker serializes to a folder: use to_disk/from_disk.")
